"""Vortex statistics over field snapshots, each beside its null model.

Vortices come from the fixed detector (:func:`hhml.core.resonance.vortices.detect_vortices`:
plaquettes with non-zero phase winding). Over a set of snapshots this module reports

* :func:`vortex_counts` — counts per snapshot, the ``|q|`` histogram, and the vortex density
  (fraction of plaquettes with ``q ≠ 0``) beside two nulls: i.i.d. uniform phases (1/3 of
  plaquettes; its interval simulated with the same lattice and number of snapshots) and the
  band-limited Gaussian field of the same ``⟨k²⟩`` (Berry & Dennis: ``⟨k²⟩/4π`` per unit area,
  :func:`hhml.ml.env.observables.berry_dennis_density`);
* :func:`vortex_point_statistics` — pair correlation g(r), mean nearest-neighbour distance and
  ``⟨|ψ₆|⟩`` of the vortex positions, each beside CSR on the same chart
  (:mod:`hhml.analysis.point_process`);
* :func:`tracking_statistics` — lifetimes and seam crossings from
  :class:`~hhml.core.resonance.tracking.VortexTracker`, beside the same tracker run on the
  snapshots in shuffled order (no temporal persistence beyond chance links).

Public names: ``VortexCounts``, ``vortex_counts``, ``vortex_patterns``,
``VortexPointStatistics``, ``vortex_point_statistics``, ``TrackingStatistics``,
``tracking_statistics``, ``mean_wavenumber_squared_per_snapshot``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from hhml.analysis.bootstrap import (
    Estimate,
    Seed,
    as_generator,
    check_count,
    check_level,
    percentile_interval,
)
from hhml.analysis.point_process import (
    BandChart,
    PairCorrelation,
    hexatic_statistic,
    nearest_neighbour_distance,
    pair_correlation,
)
from hhml.core.mobius.stack import chart_of
from hhml.core.resonance.tracking import VortexTracker
from hhml.core.resonance.vortices import (
    IID_PHASE_VORTEX_FRACTION,
    detect_vortices,
    winding_numbers,
)
from hhml.errors import ConfigError, ValidationError
from hhml.ml.env.observables import berry_dennis_density

if TYPE_CHECKING:
    from hhml.core.mobius import MobiusStrip, TokamakStack

__all__ = [
    "TrackingStatistics",
    "VortexCounts",
    "VortexPointStatistics",
    "mean_wavenumber_squared_per_snapshot",
    "tracking_statistics",
    "vortex_counts",
    "vortex_patterns",
    "vortex_point_statistics",
]

FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.int64]
Lattice: TypeAlias = "MobiusStrip | TokamakStack"


def _check_snapshots(psi: Tensor, lattice: Lattice) -> int:
    """Validate ``psi [T, *field_shape]``; return ``T``."""
    if not isinstance(psi, Tensor):
        raise ValidationError(f"psi must be a torch.Tensor, got {type(psi).__name__}")
    lattice.check_field(psi)
    expected = 1 + len(lattice.field_shape)
    if psi.dim() != expected:
        raise ValidationError(
            f"psi must have shape [T, {', '.join(map(str, lattice.field_shape))}] "
            f"(snapshots first), got {tuple(psi.shape)}"
        )
    if not bool(torch.isfinite(torch.view_as_real(psi)).all()):
        raise ValidationError("psi contains non-finite values")
    return int(psi.shape[0])


def mean_wavenumber_squared_per_snapshot(psi: Tensor, lattice: Lattice) -> FloatArray:
    """``⟨k²⟩ = ⟨|∇ψ|²⟩ / ⟨|ψ|²⟩`` of each snapshot (1/length²), ``[T]``.

    The same area-weighted definition as :func:`hhml.ml.env.observables.field_moments`
    (``⟨|∇ψ|²⟩ = −Re⟨ψ, Δψ⟩`` with the lattice's seam-aware Laplacian), for snapshots
    ``[T, *field_shape]`` of a single strip or stack; all strips of a snapshot are pooled.
    """
    _check_snapshots(psi, lattice)
    area = lattice.area_weights().to(psi.real.dtype)
    dims = tuple(range(1, psi.dim()))
    dens = psi.real.square() + psi.imag.square()
    norm = (area * dens).sum(dim=dims)
    grad = -(area * (psi.conj() * lattice.laplacian(psi)).real).sum(dim=dims)
    k2 = grad.clamp_min(0.0) / norm.clamp_min(torch.finfo(norm.dtype).tiny)
    return np.asarray(k2.detach().to("cpu", torch.float64).numpy(), dtype=np.float64)


@dataclass(frozen=True)
class VortexCounts:
    """Counts and density of vortices over snapshots.

    Attributes
    ----------
    counts : ndarray, shape ``[T]``, int64
        Vortices per snapshot (all strips).
    n_plaquettes : int
        Plaquettes per snapshot.
    abs_charge_histogram : dict of int to int
        ``|q| → number of vortices`` over all snapshots.
    density_vs_iid : Estimate
        Fraction of plaquettes with ``q ≠ 0`` (bootstrap over snapshots) beside i.i.d.
        uniform phases (null 1/3; its interval simulated for ``T`` snapshots).
    density_vs_band_limited : Estimate
        The same fraction beside the Berry–Dennis prediction ``⟨k²⟩ a / 4π`` of a Gaussian
        field with each snapshot's ``⟨k²⟩`` (``a`` the mean cell area; interval over
        snapshots).
    k2 : ndarray, shape ``[T]``
        ``⟨k²⟩`` per snapshot (1/length²).
    """

    counts: IntArray
    n_plaquettes: int
    abs_charge_histogram: dict[int, int]
    density_vs_iid: Estimate
    density_vs_band_limited: Estimate
    k2: FloatArray


def vortex_counts(
    psi: Tensor,
    lattice: Lattice,
    *,
    n_null: int = 200,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: Seed = 0,
) -> VortexCounts:
    """Vortex counts, ``|q|`` distribution and density beside the i.i.d. and band-limited nulls.

    Parameters
    ----------
    psi : Tensor, shape ``[T, nu, nv]`` (``[T, S, nu, nv]`` for a stack), complex
        Snapshots.
    lattice : MobiusStrip or TokamakStack
    n_null : int
        i.i.d.-phase fields simulated on the lattice; the null interval is that of the mean
        of ``T`` of them (resampled).
    n_resamples : int
        Bootstrap replicates over snapshots.
    level : float
    seed : int or numpy.random.Generator

    Returns
    -------
    VortexCounts
    """
    n_snap = _check_snapshots(psi, lattice)
    level = check_level(level)
    n_null = check_count("n_null", n_null, 2)
    n_resamples = check_count("n_resamples", n_resamples, 1)
    rng = as_generator(seed)
    charges = winding_numbers(psi, lattice).reshape(n_snap, -1)
    n_plaq = int(charges.shape[1])
    nonzero = charges != 0
    counts = nonzero.sum(dim=1).to(torch.int64).numpy()
    q = charges[nonzero].abs()
    values, numbers = torch.unique(q, return_counts=True)
    histogram = {int(a): int(b) for a, b in zip(values.tolist(), numbers.tolist(), strict=True)}
    dens = counts.astype(np.float64) / n_plaq
    idx = rng.integers(0, n_snap, size=(n_resamples, n_snap))
    low, high = (
        percentile_interval(dens[idx].mean(axis=1), level)
        if n_snap >= 2
        else (
            math.nan,
            math.nan,
        )
    )
    # i.i.d. phase null on the same lattice
    gen = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
    phases = 2.0 * math.pi * torch.rand((n_null, *lattice.field_shape), generator=gen)
    random_field = torch.polar(torch.ones_like(phases), phases).to(psi.dtype)
    null_dens = (winding_numbers(random_field, lattice) != 0).reshape(n_null, -1).double()
    null_dens_np = null_dens.mean(dim=1).numpy()
    null_means = null_dens_np[rng.integers(0, n_null, size=(n_resamples, n_snap))].mean(axis=1)
    null_low, null_high = percentile_interval(null_means, level)
    iid = Estimate(
        float(dens.mean()),
        low,
        high,
        IID_PHASE_VORTEX_FRACTION,
        null_low,
        null_high,
        method=(
            f"fraction of plaquettes with q != 0; interval: bootstrap over {n_snap} snapshots; "
            f"null: i.i.d. uniform phases (exact 1/3; interval from {n_null} simulated fields, "
            f"mean of {n_snap})"
        ),
        level=level,
    )
    k2 = mean_wavenumber_squared_per_snapshot(psi, lattice)
    cell_area = float(lattice.area_weights().double().mean())
    predicted = berry_dennis_density(k2, cell_area)
    bd_low, bd_high = (
        percentile_interval(predicted[idx].mean(axis=1), level)
        if n_snap >= 2
        else (math.nan, math.nan)
    )
    band_limited = Estimate(
        float(dens.mean()),
        low,
        high,
        float(predicted.mean()),
        bd_low,
        bd_high,
        method=(
            "fraction of plaquettes with q != 0; null: Berry–Dennis <k^2>/(4 pi) per unit "
            f"area x mean cell area {cell_area:.4g}, <k^2> per snapshot (interval: bootstrap "
            f"over {n_snap} snapshots)"
        ),
        level=level,
    )
    return VortexCounts(
        counts=np.asarray(counts, dtype=np.int64),
        n_plaquettes=n_plaq,
        abs_charge_histogram=histogram,
        density_vs_iid=iid,
        density_vs_band_limited=band_limited,
        k2=k2,
    )


def vortex_patterns(
    psi: Tensor, lattice: Lattice, strip: int = 0
) -> tuple[list[FloatArray], list[IntArray]]:
    """Vortex chart positions and charges per snapshot (one strip of a stack).

    Parameters
    ----------
    psi : Tensor, shape ``[T, nu, nv]`` (``[T, S, nu, nv]`` for a stack), complex
    lattice : MobiusStrip or TokamakStack
    strip : int
        Which strip of a stack (ignored for a single strip).

    Returns
    -------
    positions : list of ndarray, each ``[K_t, 2]``
        Chart ``(u, v)`` per snapshot.
    charges : list of ndarray, each ``[K_t]``, int64
    """
    n_snap = _check_snapshots(psi, lattice)
    stacked = len(lattice.field_shape) == 3
    if stacked:
        n_strips = lattice.field_shape[0]
        if not 0 <= strip < n_strips:
            raise ConfigError(f"strip = {strip} is out of range [0, {n_strips})")
    found = detect_vortices(psi, lattice)
    index = found.index.numpy()
    position = found.position.detach().to("cpu", torch.float64).numpy()
    charge = found.charge.numpy().astype(np.int64)
    keep = index[:, 1] == strip if stacked else np.ones(index.shape[0], dtype=bool)
    positions, charges = [], []
    for t in range(n_snap):
        sel = keep & (index[:, 0] == t)
        positions.append(position[sel])
        charges.append(charge[sel])
    return positions, charges


@dataclass(frozen=True)
class VortexPointStatistics:
    """Spatial statistics of vortex positions beside CSR on the same chart.

    Attributes
    ----------
    pair_correlation : PairCorrelation
        g(r) with bootstrap band and CSR envelope.
    nearest_neighbour : Estimate
        Mean NN distance (length units) beside CSR.
    hexatic : Estimate or None
        ``⟨|ψ₆|⟩`` beside CSR; ``None`` if no snapshot has more than 6 vortices.
    mean_count : float
        Mean vortices per snapshot on the strip analysed.
    """

    pair_correlation: PairCorrelation
    nearest_neighbour: Estimate
    hexatic: Estimate | None
    mean_count: float


def vortex_point_statistics(
    psi: Tensor,
    lattice: Lattice,
    *,
    strip: int = 0,
    r_max: float | None = None,
    n_bins: int = 20,
    n_null: int = 99,
    n_resamples: int = 200,
    level: float = 0.95,
    seed: Seed = 0,
) -> VortexPointStatistics:
    """g(r), nearest-neighbour distance and ``|ψ₆|`` of the vortices, each beside CSR.

    CSR is sampled on the chart of ``strip`` with density ∝ its cell areas, with the same
    number of points as each snapshot (:mod:`hhml.analysis.point_process`).

    Raises
    ------
    ValidationError
        No snapshot has 2 or more vortices.
    """
    positions, _ = vortex_patterns(psi, lattice, strip)
    chart = BandChart.from_lattice(lattice, strip)
    rng = as_generator(seed)
    g = pair_correlation(
        positions,
        chart,
        r_max=r_max,
        n_bins=n_bins,
        n_null=n_null,
        n_resamples=n_resamples,
        level=level,
        seed=rng,
    )
    nn = nearest_neighbour_distance(
        positions, chart, n_null=n_null, n_resamples=n_resamples, level=level, seed=rng
    )
    hexatic = None
    if any(p.shape[0] > 6 for p in positions):
        hexatic = hexatic_statistic(
            positions, chart, n_null=n_null, n_resamples=n_resamples, level=level, seed=rng
        )
    mean_count = float(np.mean([p.shape[0] for p in positions]))
    return VortexPointStatistics(g, nn, hexatic, mean_count)


@dataclass(frozen=True)
class TrackingStatistics:
    """Lifetimes and seam crossings of tracked vortices beside shuffled-time tracking.

    Attributes
    ----------
    lifetime : Estimate
        Mean lifetime of tracks that were born and died within the record (time units);
        interval: bootstrap over tracks; null: the same with snapshots in shuffled order.
    seam_crossing_rate : Estimate
        Seam crossings per unit time (all tracks); interval: bootstrap over tracks; null:
        shuffled order.
    summary : dict
        :meth:`VortexTracker.summary` of the real record.
    """

    lifetime: Estimate
    seam_crossing_rate: Estimate
    summary: dict[str, float]


def _track(
    positions: list[FloatArray],
    charges: list[IntArray],
    times: FloatArray,
    order: npt.NDArray[np.intp],
    chart: MobiusStrip,
    max_distance: float,
) -> VortexTracker:
    tracker = VortexTracker(
        chart.length,
        chart.half_width,
        chart.topology,  # type: ignore[arg-type]
        max_distance=max_distance,
    )
    for k, t in zip(order, times, strict=True):
        tracker.update(positions[k], charges[k], float(t))
    return tracker


def _track_stats(tracker: VortexTracker, duration: float) -> tuple[FloatArray, FloatArray]:
    """Lifetimes of complete tracks, and per-track seam crossings (all tracks)."""
    life = tracker.lifetimes(include_alive=False, include_initial=False)
    crossings = np.array([tr.seam_crossings for tr in tracker.tracks], dtype=np.float64)
    return life, crossings / duration


def tracking_statistics(
    psi: Tensor,
    lattice: Lattice,
    times: npt.ArrayLike,
    *,
    max_distance: float,
    strip: int = 0,
    n_null: int = 20,
    n_resamples: int = 500,
    level: float = 0.95,
    seed: Seed = 0,
) -> TrackingStatistics:
    """Track vortices through the snapshots; lifetimes and seam-crossing rate beside a null.

    Parameters
    ----------
    psi : Tensor, shape ``[T, nu, nv]`` (``[T, S, nu, nv]`` for a stack), complex
        Snapshots in time order, ``T >= 3``.
    lattice : MobiusStrip or TokamakStack
    times : array_like, shape ``[T]``
        Increasing snapshot times (simulation time units).
    max_distance : float
        Tracker gate (chart length units), see :class:`VortexTracker`.
    strip : int
        Which strip of a stack.
    n_null : int
        Shuffled-order tracker runs for the null.
    n_resamples, level, seed
        Bootstrap over tracks.

    Returns
    -------
    TrackingStatistics
    """
    n_snap = _check_snapshots(psi, lattice)
    t = np.asarray(times, dtype=np.float64)
    if t.shape != (n_snap,) or n_snap < 3:
        raise ValidationError(f"times must have shape [T] = [{n_snap}] with T >= 3, got {t.shape}")
    if not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0.0):
        raise ValidationError("times must be finite and strictly increasing")
    level = check_level(level)
    n_null = check_count("n_null", n_null, 1)
    n_resamples = check_count("n_resamples", n_resamples, 1)
    rng = as_generator(seed)
    positions, charges = vortex_patterns(psi, lattice, strip)
    chart = chart_of(lattice)
    duration = float(t[-1] - t[0])
    tracker = _track(positions, charges, t, np.arange(n_snap), chart, max_distance)
    life, rate = _track_stats(tracker, duration)
    null_life, null_rate = [], []
    for _ in range(n_null):
        shuffled = _track(positions, charges, t, rng.permutation(n_snap), chart, max_distance)
        nl, nr = _track_stats(shuffled, duration)
        null_life.append(float(nl.mean()) if nl.size else math.nan)
        null_rate.append(float(nr.sum()))

    def boot(values: FloatArray, stat: str) -> tuple[float, float]:
        if values.size < 2:
            return math.nan, math.nan
        idx = rng.integers(0, values.size, size=(n_resamples, values.size))
        reps = values[idx].mean(axis=1) if stat == "mean" else values[idx].sum(axis=1)
        return percentile_interval(reps, level)

    null_life_arr = np.asarray(null_life)
    finite = null_life_arr[np.isfinite(null_life_arr)]
    lifetime = Estimate(
        float(life.mean()) if life.size else math.nan,
        *boot(life, "mean"),
        float(finite.mean()) if finite.size else math.nan,
        *percentile_interval(finite, level),
        method=(
            f"mean lifetime of {life.size} tracks born and ended within the record; interval: "
            f"bootstrap over tracks; null: {n_null} runs on snapshots in shuffled order"
        ),
        level=level,
    )
    crossing = Estimate(
        float(rate.sum()),
        *boot(rate, "sum"),
        float(np.mean(null_rate)),
        *percentile_interval(null_rate, level),
        method=(
            f"seam crossings per unit time over {rate.size} tracks; interval: bootstrap over "
            f"tracks; null: {n_null} runs on snapshots in shuffled order"
        ),
        level=level,
    )
    return TrackingStatistics(lifetime, crossing, tracker.summary())
