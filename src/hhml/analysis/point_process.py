"""Point-process statistics on the band, each beside complete spatial randomness (CSR).

Point patterns (vortex positions of snapshots) live in the chart ``u ∈ [0, L)``,
``v ∈ [−w, w]`` of a :class:`~hhml.core.mobius.MobiusStrip` (or a strip of a stack).
Distances are the shortest flat-chart distances through the identification
(:func:`hhml.core.resonance.tracking.band_distance`), so two points on either side of the
seam are close.

The null model is CSR *on the same chart*: points sampled independently with density
proportional to the cell areas ``√g Δu Δv`` (:meth:`MobiusStrip.area_weights`; uniform in the
chart for the flat metric). Every statistic is normalised by, or compared with, the same
statistic of CSR patterns with the same number of points, sampled by Monte Carlo with a
seed — so edge effects at ``v = ±w`` and the seam are in the null as they are in the data,
and no analytic edge correction is needed.

Also here: the correlation dimension (Grassberger–Procaccia), with generators for the known
sets it is validated on (uniform disk: 2; Sierpinski triangle: log 3 / log 2 ≈ 1.585).

Public names: ``BandChart``, ``sample_csr``, ``PairCorrelation``, ``pair_correlation``,
``nearest_neighbour_distance``, ``hexatic_statistic``, ``DimensionEstimate``,
``correlation_dimension``, ``uniform_disk_points``, ``sierpinski_points``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter
from scipy.spatial import cKDTree

from hhml.analysis.bootstrap import (
    Estimate,
    Seed,
    as_generator,
    check_count,
    check_level,
    percentile_interval,
    pointwise_interval,
)
from hhml.core.mobius.stack import chart_of
from hhml.core.resonance.tracking import band_distance
from hhml.errors import ConfigError, ValidationError
from hhml.ml.env.observables import hexatic_order

if TYPE_CHECKING:
    from hhml.core.mobius import MobiusStrip, TokamakStack

__all__ = [
    "BandChart",
    "DimensionEstimate",
    "PairCorrelation",
    "correlation_dimension",
    "hexatic_statistic",
    "nearest_neighbour_distance",
    "pair_correlation",
    "sample_csr",
    "sierpinski_points",
    "uniform_disk_points",
]

FloatArray: TypeAlias = npt.NDArray[np.float64]
Patterns: TypeAlias = "Sequence[npt.ArrayLike]"


# ---------------------------------------------------------------------------------------------
# The chart and CSR on it
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BandChart:
    """Chart geometry and cell areas of one band: what CSR sampling and distances need.

    Attributes
    ----------
    length, half_width : float
        ``L`` and ``w`` (lattice length units).
    topology : str
        ``"mobius"``, ``"cylinder"`` or ``"torus"``.
    area : ndarray, shape ``[nu, nv]``
        Cell areas ``√g Δu Δv`` (length²); CSR samples cells with these weights.
    """

    length: float
    half_width: float
    topology: str
    area: FloatArray

    @classmethod
    def from_lattice(cls, lattice: MobiusStrip | TokamakStack, strip: int = 0) -> BandChart:
        """The chart of ``lattice`` with the cell areas of strip ``strip`` (stacks)."""
        chart = chart_of(lattice)
        area = lattice.area_weights().detach().to("cpu").double().numpy()
        area = area.reshape(-1, chart.nu, chart.nv)
        if not 0 <= strip < area.shape[0]:
            raise ConfigError(f"strip = {strip} is out of range [0, {area.shape[0]})")
        return cls(chart.length, chart.half_width, chart.topology, np.array(area[strip]))

    @property
    def total_area(self) -> float:
        """Area of the band (length²)."""
        return float(self.area.sum())

    def distances(self, p: FloatArray, q: FloatArray) -> FloatArray:
        """Shortest chart distances between broadcasting point arrays ``[..., 2]``."""
        return band_distance(
            p,
            q,
            length=self.length,
            half_width=self.half_width,
            topology=self.topology,  # type: ignore[arg-type]
        )


ChartLike: TypeAlias = "BandChart | MobiusStrip | TokamakStack"


def _as_chart(chart: ChartLike) -> BandChart:
    return chart if isinstance(chart, BandChart) else BandChart.from_lattice(chart)


def sample_csr(chart: ChartLike, n_points: int, seed: Seed, *, n_patterns: int = 1) -> FloatArray:
    """Complete spatial randomness on the band: i.i.d. points with density ∝ area.

    Cell-weighted sampling: a cell is drawn with probability proportional to its area
    ``√g Δu Δv``, then a point uniformly inside it in chart coordinates. This is exact for
    the flat metric and for any region made of whole cells; inside a cell ``√g`` is taken as
    constant (its cell-centre value).

    Parameters
    ----------
    chart : BandChart, MobiusStrip or TokamakStack
        Where to sample (a stack: its first strip; use :meth:`BandChart.from_lattice`).
    n_points : int
        Points per pattern (>= 0).
    seed : int or numpy.random.Generator
    n_patterns : int
        Number of independent patterns.

    Returns
    -------
    ndarray, shape ``[n_patterns, n_points, 2]``
        Chart positions ``(u, v)``.
    """
    c = _as_chart(chart)
    n_points = check_count("n_points", n_points, 0)
    n_patterns = check_count("n_patterns", n_patterns, 1)
    rng = as_generator(seed)
    nu, nv = c.area.shape
    p = c.area.ravel() / c.area.sum()
    cells = rng.choice(p.size, size=(n_patterns, n_points), p=p)
    i, j = np.divmod(cells, nv)
    du, dv = c.length / nu, 2.0 * c.half_width / nv
    u = (i + rng.random(i.shape)) * du
    v = -c.half_width + (j + rng.random(j.shape)) * dv
    return np.stack([u, v], axis=-1)


def _check_patterns(patterns: Patterns, name: str = "patterns") -> list[FloatArray]:
    if isinstance(patterns, np.ndarray) and patterns.ndim == 2:
        raise ValidationError(
            f"{name} must be a sequence of [K, 2] arrays (one per snapshot); wrap a single "
            "pattern in a list"
        )
    out = []
    for k, pattern in enumerate(patterns):
        arr = np.asarray(pattern, dtype=np.float64)
        if arr.size == 0:
            arr = arr.reshape(0, 2)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValidationError(f"{name}[{k}] must have shape [K, 2], got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValidationError(f"{name}[{k}] contains non-finite positions")
        out.append(arr)
    if not out:
        raise ValidationError(f"{name} is empty")
    return out


def _pair_distances(chart: BandChart, pts: FloatArray) -> FloatArray:
    """Distances of the unordered pairs ``i < j`` of ``pts [..., K, 2]``: ``[..., K(K−1)/2]``."""
    k = pts.shape[-2]
    a, b = np.triu_indices(k, k=1)
    return chart.distances(pts[..., a, :], pts[..., b, :])


def _nn_distances(chart: BandChart, pts: FloatArray) -> FloatArray:
    """Nearest-neighbour distance of every point of ``pts [..., K, 2]``: ``[..., K]``."""
    d = chart.distances(pts[..., :, None, :], pts[..., None, :, :])
    k = pts.shape[-2]
    d[..., np.arange(k), np.arange(k)] = np.inf
    return np.asarray(d.min(axis=-1), dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# Pair correlation
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairCorrelation:
    """Pair correlation g(r) of point patterns, normalised by CSR on the same chart.

    Attributes
    ----------
    edges : ndarray, shape ``[B+1]``
        Distance bin edges (length units).
    r : ndarray, shape ``[B]``
        Bin centres.
    g : ndarray, shape ``[B]``
        Observed pair counts over the CSR expectation for the same numbers of points; 1 for
        CSR, > 1 where pairs are more frequent than at random.
    low, high : ndarray, shape ``[B]``
        Bootstrap interval of ``g`` (patterns resampled; ``nan`` for a single pattern).
    null_low, null_high : ndarray, shape ``[B]``
        Pointwise CSR envelope: the same estimator on ``n_null`` CSR pattern sets.
    n_patterns, n_pairs : int
        Patterns used and observed pairs in total.
    method : str
        In words.
    level : float
        Coverage of both bands.
    """

    edges: FloatArray
    r: FloatArray
    g: FloatArray
    low: FloatArray
    high: FloatArray
    null_low: FloatArray
    null_high: FloatArray
    n_patterns: int
    n_pairs: int
    method: str
    level: float


def _pair_distance_distribution(
    chart: BandChart, edges: FloatArray, n_reference: int, rng: np.random.Generator
) -> FloatArray:
    """Probability that two independent CSR points are a distance in each bin apart.

    All pairs of one CSR sample of ``n_reference`` points (computed in row blocks).
    """
    pts = sample_csr(chart, n_reference, rng)[0]
    counts = np.zeros(edges.size - 1)
    block = 256
    for start in range(0, n_reference, block):
        rows = pts[start : start + block]
        d = chart.distances(rows[:, None, :], pts[None, :, :])
        # keep pairs (i, j) with j > i only
        mask = np.arange(n_reference)[None, :] > (start + np.arange(rows.shape[0]))[:, None]
        counts += np.histogram(d[mask], bins=edges)[0]
    return counts / (n_reference * (n_reference - 1) / 2)


def pair_correlation(
    patterns: Patterns,
    chart: ChartLike,
    *,
    r_max: float | None = None,
    n_bins: int = 20,
    n_null: int = 99,
    n_reference: int = 2000,
    n_resamples: int = 200,
    level: float = 0.95,
    seed: Seed = 0,
) -> PairCorrelation:
    """Pair correlation function g(r) on the band, beside its CSR envelope.

    ``g(bin) = Σ_p H_p(bin) / Σ_p K_p(K_p − 1)/2 · F(bin)``, with ``H_p`` the pair-distance
    histogram of pattern ``p`` (``K_p`` points) and ``F`` the probability that two
    independent CSR points on the same chart lie a distance in the bin apart (Monte Carlo:
    all pairs of ``n_reference`` CSR points). Because ``F`` is sampled on the band itself,
    the seam identification and the edges ``v = ±w`` enter the normalisation exactly as
    they enter the data (Monte-Carlo edge correction).

    Parameters
    ----------
    patterns : sequence of array_like, each ``[K_p, 2]``
        Chart positions per snapshot (patterns with fewer than 2 points add nothing).
    chart : BandChart, MobiusStrip or TokamakStack
        The band (CSR density from its area weights).
    r_max : float, optional
        Largest distance; default ``min(L, 2w) / 2``.
    n_bins : int
        Number of equal-width bins in ``[0, r_max]``.
    n_null : int
        CSR pattern sets (same ``K_p``) for the null envelope.
    n_reference : int
        CSR points whose pair distances estimate ``F``.
    n_resamples : int
        Bootstrap resamples of the patterns for the interval of ``g``.
    level : float
        Coverage of the interval and the envelope.
    seed : int or numpy.random.Generator

    Returns
    -------
    PairCorrelation

    Raises
    ------
    ValidationError
        Malformed patterns, or fewer than 2 points in every pattern.
    """
    c = _as_chart(chart)
    pats = _check_patterns(patterns)
    level = check_level(level)
    n_bins = check_count("n_bins", n_bins, 1)
    n_null = check_count("n_null", n_null, 1)
    n_reference = check_count("n_reference", n_reference, 10)
    n_resamples = check_count("n_resamples", n_resamples, 0)
    rng = as_generator(seed)
    if r_max is None:
        r_max = 0.5 * min(c.length, 2.0 * c.half_width)
    if not (math.isfinite(r_max) and r_max > 0.0):
        raise ConfigError(f"r_max must be a positive length, got {r_max!r}")
    edges = np.linspace(0.0, r_max, n_bins + 1)
    used = [p for p in pats if p.shape[0] >= 2]
    if not used:
        raise ValidationError("pair_correlation needs a pattern with at least 2 points")
    f = _pair_distance_distribution(c, edges, n_reference, rng)
    obs = np.array([np.histogram(_pair_distances(c, p), bins=edges)[0] for p in used], float)
    n_pairs = np.array([p.shape[0] * (p.shape[0] - 1) / 2 for p in used])
    expected = n_pairs[:, None] * f[None, :]  # [P, B]
    with np.errstate(invalid="ignore", divide="ignore"):
        g = obs.sum(axis=0) / expected.sum(axis=0)
        null_counts = np.zeros((n_null, n_bins))
        for p in used:
            sims = sample_csr(c, p.shape[0], rng, n_patterns=n_null)
            d = _pair_distances(c, sims)
            null_counts += np.stack([np.histogram(row, bins=edges)[0] for row in d])
        null_g = null_counts / expected.sum(axis=0)[None, :]
        low = np.full(n_bins, math.nan)
        high = np.full(n_bins, math.nan)
        if len(used) >= 2 and n_resamples > 0:
            idx = rng.integers(0, len(used), size=(n_resamples, len(used)))
            reps = obs[idx].sum(axis=1) / expected[idx].sum(axis=1)
            low, high = pointwise_interval(reps, level)
    null_low, null_high = pointwise_interval(null_g, level)
    method = (
        f"g(r): pair counts over the CSR expectation on the same chart (Monte Carlo, "
        f"{n_reference} reference points); interval: bootstrap over {len(used)} patterns "
        f"({n_resamples}); envelope: {n_null} CSR pattern sets with the same point counts"
    )
    return PairCorrelation(
        edges=edges,
        r=0.5 * (edges[1:] + edges[:-1]),
        g=g,
        low=low,
        high=high,
        null_low=null_low,
        null_high=null_high,
        n_patterns=len(used),
        n_pairs=int(n_pairs.sum()),
        method=method,
        level=level,
    )


# ---------------------------------------------------------------------------------------------
# Nearest neighbours and hexatic order
# ---------------------------------------------------------------------------------------------


def _pattern_statistic_with_csr(
    pats: list[FloatArray],
    c: BandChart,
    per_pattern: npt.NDArray[np.float64],
    weights: npt.NDArray[np.float64],
    null_per_pattern: npt.NDArray[np.float64],
    n_resamples: int,
    level: float,
    rng: np.random.Generator,
    method: str,
) -> Estimate:
    """Weighted mean of a per-pattern statistic, with bootstrap interval and CSR null.

    ``per_pattern [P]``, ``weights [P]``, ``null_per_pattern [n_null, P]``.
    """
    value = float(np.sum(weights * per_pattern) / weights.sum())
    null_values = (null_per_pattern * weights[None, :]).sum(axis=1) / weights.sum()
    low = high = math.nan
    if len(pats) >= 2 and n_resamples > 0:
        idx = rng.integers(0, len(pats), size=(n_resamples, len(pats)))
        reps = (weights[idx] * per_pattern[idx]).sum(axis=1) / weights[idx].sum(axis=1)
        low, high = percentile_interval(reps, level)
    null_low, null_high = percentile_interval(null_values, level)
    return Estimate(
        value,
        low,
        high,
        float(null_values.mean()),
        null_low,
        null_high,
        method=method,
        level=level,
    )


def nearest_neighbour_distance(
    patterns: Patterns,
    chart: ChartLike,
    *,
    n_null: int = 99,
    n_resamples: int = 500,
    level: float = 0.95,
    seed: Seed = 0,
) -> Estimate:
    """Mean nearest-neighbour distance, beside CSR with the same numbers of points.

    The value is the mean over all points (of patterns with >= 2 points) of the distance to
    the nearest other point (band distance). Interval: bootstrap over patterns. Null: the
    same statistic for ``n_null`` CSR pattern sets with the same point counts (mean and
    percentile interval). ``value / null`` is the Clark–Evans ratio (< 1 clustered,
    > 1 more regular than random).

    Parameters
    ----------
    patterns : sequence of array_like, each ``[K_p, 2]``
    chart : BandChart, MobiusStrip or TokamakStack
    n_null, n_resamples, level, seed
        As in :func:`pair_correlation`.

    Returns
    -------
    Estimate
        In chart length units.
    """
    c = _as_chart(chart)
    level = check_level(level)
    n_null = check_count("n_null", n_null, 1)
    n_resamples = check_count("n_resamples", n_resamples, 0)
    rng = as_generator(seed)
    pats = [p for p in _check_patterns(patterns) if p.shape[0] >= 2]
    if not pats:
        raise ValidationError("nearest_neighbour_distance needs a pattern with >= 2 points")
    per = np.array([_nn_distances(c, p).mean() for p in pats])
    weights = np.array([p.shape[0] for p in pats], dtype=np.float64)
    null = np.stack(
        [
            _nn_distances(c, sample_csr(c, p.shape[0], rng, n_patterns=n_null)).mean(axis=-1)
            for p in pats
        ],
        axis=1,
    )
    method = (
        f"mean NN band distance; interval: bootstrap over {len(pats)} patterns "
        f"({n_resamples}); null: {n_null} CSR pattern sets on the same chart"
    )
    return _pattern_statistic_with_csr(pats, c, per, weights, null, n_resamples, level, rng, method)


def hexatic_statistic(
    patterns: Patterns,
    chart: ChartLike,
    *,
    neighbours: int = 6,
    n_null: int = 99,
    n_resamples: int = 500,
    level: float = 0.95,
    seed: Seed = 0,
) -> Estimate:
    """Bond-orientational order ⟨|ψ₆|⟩ beside CSR with the same numbers of points.

    Per pattern: :func:`hhml.ml.env.observables.hexatic_order` (mean ``|ψ₆|`` over points,
    ``neighbours`` nearest through the identification); the value is the point-weighted
    mean over patterns with more than ``neighbours`` points. 1 for a perfect triangular
    lattice; CSR gives ≈ 0.3–0.4 (the null, simulated, not assumed).

    Returns
    -------
    Estimate
        Dimensionless.
    """
    c = _as_chart(chart)
    level = check_level(level)
    neighbours = check_count("neighbours", neighbours, 1)
    n_null = check_count("n_null", n_null, 1)
    n_resamples = check_count("n_resamples", n_resamples, 0)
    rng = as_generator(seed)
    pats = [p for p in _check_patterns(patterns) if p.shape[0] > neighbours]
    if not pats:
        raise ValidationError(
            f"hexatic_statistic needs a pattern with more than {neighbours} points"
        )

    def order(points: FloatArray) -> float:
        return hexatic_order(points, c.length, c.half_width, c.topology, neighbours + 1, neighbours)

    per = np.array([order(p) for p in pats])
    weights = np.array([p.shape[0] for p in pats], dtype=np.float64)
    null = np.array(
        [[order(sim) for sim in sample_csr(c, p.shape[0], rng, n_patterns=n_null)] for p in pats]
    ).T
    method = (
        f"mean |psi_{neighbours}| over points; interval: bootstrap over {len(pats)} patterns "
        f"({n_resamples}); null: {n_null} CSR pattern sets on the same chart"
    )
    return _pattern_statistic_with_csr(pats, c, per, weights, null, n_resamples, level, rng, method)


# ---------------------------------------------------------------------------------------------
# Correlation dimension and known sets
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DimensionEstimate:
    """Grassberger–Procaccia correlation dimension.

    Attributes
    ----------
    value : float
        Slope of ``log C(r)`` against ``log r`` over the fit range.
    low, high : float
        Percentile interval over half-size subsamples (drawn without replacement).
    radii : ndarray, shape ``[M]``
        Radii of the fit (length units).
    correlation_sum : ndarray, shape ``[M]``
        ``C(r)``: fraction of distinct pairs closer than ``r``.
    method : str
        In words.
    level : float
        Coverage of the interval.
    """

    value: float
    low: float
    high: float
    radii: FloatArray
    correlation_sum: FloatArray
    method: str
    level: float


def _correlation_sum(points: FloatArray, radii: FloatArray) -> FloatArray:
    tree = cKDTree(points)
    n = points.shape[0]
    # count_neighbors counts ordered pairs with d <= r, including the n self-pairs
    counts = np.asarray(tree.count_neighbors(tree, radii), dtype=np.float64)
    return np.asarray((counts - n) / (n * (n - 1)), dtype=np.float64)


def _slope(radii: FloatArray, csum: FloatArray) -> float:
    ok = csum > 0.0
    if ok.sum() < 2:
        return math.nan
    return float(np.polyfit(np.log(radii[ok]), np.log(csum[ok]), 1)[0])


def correlation_dimension(
    points: npt.ArrayLike,
    *,
    c_range: tuple[float, float] = (3e-4, 1e-2),
    n_radii: int = 12,
    n_resamples: int = 40,
    level: float = 0.95,
    seed: Seed = 0,
) -> DimensionEstimate:
    """Correlation dimension of a point set (Grassberger & Procaccia 1983).

    ``C(r)`` is the fraction of distinct pairs closer than ``r`` (Euclidean, in the
    embedding space of ``points``); the dimension is the least-squares slope of
    ``log C`` against ``log r`` on ``n_radii`` log-spaced radii between the radii where
    ``C`` equals ``c_range[0]`` and ``c_range[1]`` (small ``C``: too few pairs; large
    ``C``: the set's finite extent bends the curve). The interval is the spread of the
    same estimate on ``n_resamples`` random halves of the set (the fit range is kept).

    Validation (``tests/unit/test_analysis_point_process.py``): 4000 uniform points in a
    disk give 2 ± 0.1; 4000 chaos-game points of the Sierpinski triangle give
    log 3 / log 2 ≈ 1.585 ± 0.1.

    Parameters
    ----------
    points : array_like, shape ``[N, d]``
        ``N >= 50`` points.
    c_range : (float, float)
        Correlation-sum range of the fit, ``0 < c_lo < c_hi < 1``.
    n_radii : int
        Radii in the fit (>= 3).
    n_resamples : int
        Half-size subsamples for the interval (0: none).
    level : float
    seed : int or numpy.random.Generator

    Returns
    -------
    DimensionEstimate
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[0] < 50:
        raise ValidationError(f"points must have shape [N, d] with N >= 50, got {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise ValidationError("points contains non-finite values")
    c_lo, c_hi = (float(x) for x in c_range)
    if not 0.0 < c_lo < c_hi < 1.0:
        raise ConfigError(f"c_range must satisfy 0 < low < high < 1, got {c_range!r}")
    n_radii = check_count("n_radii", n_radii, 3)
    n_resamples = check_count("n_resamples", n_resamples, 0)
    level = check_level(level)
    rng = as_generator(seed)
    # locate the fit range on a fine log grid
    tree = cKDTree(pts)
    nn = tree.query(pts, k=2)[0][:, 1]
    r_small = max(float(nn[nn > 0].min()) if np.any(nn > 0) else 1e-12, 1e-12)
    extent = float(np.linalg.norm(pts.max(axis=0) - pts.min(axis=0)))
    grid = np.geomspace(r_small, extent, 200)
    c_grid = _correlation_sum(pts, grid)
    r_lo = float(np.interp(c_lo, c_grid, grid))
    r_hi = float(np.interp(c_hi, c_grid, grid))
    if not r_hi > r_lo:
        raise ValidationError("the correlation sum does not span c_range; give more points")
    radii = np.geomspace(r_lo, r_hi, n_radii)
    csum = _correlation_sum(pts, radii)
    value = _slope(radii, csum)
    low = high = math.nan
    if n_resamples > 0:
        half = pts.shape[0] // 2
        reps = [
            _slope(
                radii, _correlation_sum(pts[rng.choice(pts.shape[0], half, replace=False)], radii)
            )
            for _ in range(n_resamples)
        ]
        low, high = percentile_interval(reps, level)
    method = (
        f"Grassberger–Procaccia slope of log C(r) on {n_radii} radii with C in "
        f"[{c_lo:g}, {c_hi:g}]; interval: {n_resamples} random half-subsamples"
    )
    return DimensionEstimate(value, low, high, radii, csum, method, level)


def uniform_disk_points(n_points: int, seed: Seed, radius: float = 1.0) -> FloatArray:
    """``n_points`` i.i.d. uniform points in a disk of ``radius``: ``[n_points, 2]``."""
    n_points = check_count("n_points", n_points, 1)
    rng = as_generator(seed)
    r = radius * np.sqrt(rng.random(n_points))
    phi = 2.0 * math.pi * rng.random(n_points)
    return np.stack([r * np.cos(phi), r * np.sin(phi)], axis=-1)


def sierpinski_points(n_points: int, seed: Seed, burn_in: int = 50) -> FloatArray:
    """Chaos-game points on the Sierpinski triangle (corners (0,0), (1,0), (½, √3/2)).

    Each step moves halfway to a randomly chosen corner; the first ``burn_in`` steps are
    dropped. The set's correlation (and Hausdorff) dimension is log 3 / log 2.

    Returns
    -------
    ndarray, shape ``[n_points, 2]``
    """
    n_points = check_count("n_points", n_points, 1)
    burn_in = check_count("burn_in", burn_in, 0)
    rng = as_generator(seed)
    corners = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3.0) / 2.0]])
    choice = rng.integers(0, 3, size=n_points + burn_in)
    # x_k = (x_{k-1} + c_k)/2  ⇒  x_k = Σ_{m≤k} c_m 2^{m−k−1} + x_0 2^{−k}: a linear filter
    targets = corners[choice]
    x = lfilter([0.5], [1.0, -0.5], targets, axis=0)
    return np.asarray(x[burn_in:], dtype=np.float64)
