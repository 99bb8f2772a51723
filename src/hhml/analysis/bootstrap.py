"""Resampling helpers shared by the analysis modules.

Every statistic HHmL reports stands beside a null model or an interval; this module holds the
pieces that produce them, so each analysis module uses one implementation of each idea:

* :class:`Estimate` — a value, its interval, and the null model's value and interval.
* :func:`as_generator` — turn an ``int`` seed or a :class:`numpy.random.Generator` into a
  generator (every random function takes one).
* :func:`percentile_interval`, :func:`bootstrap_estimate` — i.i.d. percentile bootstrap.
* :func:`block_bootstrap_indices`, :func:`block_bootstrap_estimate` — moving-block or
  circular-block bootstrap for autocorrelated series (Künsch 1989; Politis & Romano 1992).
* :func:`integrated_autocorrelation_time`, :func:`default_block_length` — how long a block
  must be (Sokal's self-consistent window).
* :func:`circular_shift_correlations`, :func:`circular_shift_pvalue` — the circular-shift
  permutation null for the correlation of two autocorrelated series: shifting one series
  against the other keeps both autocorrelations and destroys their alignment.
* :func:`holm`, :func:`benjamini_hochberg` — multiple-comparison adjusted p-values.

Public names: ``Estimate``, ``Seed``, ``as_generator``, ``percentile_interval``,
``bootstrap_estimate``, ``block_bootstrap_indices``, ``block_bootstrap_estimate``,
``integrated_autocorrelation_time``, ``default_block_length``,
``circular_shift_correlations``, ``circular_shift_pvalue``, ``holm``, ``benjamini_hochberg``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from hhml.errors import ConfigError, ValidationError

__all__ = [
    "Estimate",
    "Seed",
    "as_generator",
    "benjamini_hochberg",
    "block_bootstrap_estimate",
    "block_bootstrap_indices",
    "bootstrap_estimate",
    "circular_shift_correlations",
    "circular_shift_pvalue",
    "default_block_length",
    "holm",
    "integrated_autocorrelation_time",
    "percentile_interval",
    "pointwise_interval",
]

FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.int64]
#: A seed: an ``int`` (a fresh ``numpy.random.default_rng(seed)``) or a generator used as is.
Seed: TypeAlias = "int | np.random.Generator"
Statistic: TypeAlias = Callable[[FloatArray], float]
Alternative: TypeAlias = Literal["two-sided", "greater", "less"]


@dataclass(frozen=True)
class Estimate:
    """A measured value beside its interval and its null model.

    Attributes
    ----------
    value : float
        The measured statistic.
    low, high : float
        Its interval (``level`` coverage); ``nan`` when none could be formed.
    null : float
        The statistic's value under the null model (``nan`` if there is none).
    null_low, null_high : float
        The null model's interval (e.g. 2.5–97.5 % of Monte-Carlo null replicates).
    method : str
        How the interval and the null were obtained, in words.
    level : float
        Coverage of both intervals, e.g. 0.95.
    """

    value: float
    low: float
    high: float
    null: float = math.nan
    null_low: float = math.nan
    null_high: float = math.nan
    method: str = ""
    level: float = 0.95

    def to_dict(self) -> dict[str, float | str]:
        """Plain ``dict`` (JSON-ready)."""
        return asdict(self)


def as_generator(seed: Seed) -> np.random.Generator:
    """Return ``seed`` if it is a generator, else ``numpy.random.default_rng(seed)``.

    Raises
    ------
    ConfigError
        ``seed`` is neither an ``int`` nor a :class:`numpy.random.Generator`.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
        return np.random.default_rng(int(seed))
    raise ConfigError(f"seed must be an int >= 0 or a numpy.random.Generator, got {seed!r}")


def check_level(level: float) -> float:
    """Validate an interval coverage ``0 < level < 1``."""
    if not (isinstance(level, (int, float)) and 0.0 < float(level) < 1.0):
        raise ConfigError(f"level must lie strictly between 0 and 1, got {level!r}")
    return float(level)


def check_count(name: str, value: int, minimum: int) -> int:
    """Validate an integer count ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def as_series(x: npt.ArrayLike, name: str, min_length: int = 2) -> FloatArray:
    """Validate a finite 1-D real series of at least ``min_length`` samples."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValidationError(f"{name} must be a 1-D series [T], got shape {arr.shape}")
    if arr.shape[0] < min_length:
        raise ValidationError(
            f"{name} has {arr.shape[0]} samples; at least {min_length} are needed"
        )
    if not np.all(np.isfinite(arr)):
        raise ValidationError(f"{name} contains non-finite values (NaN or Inf)")
    return arr


def percentile_interval(samples: npt.ArrayLike, level: float = 0.95) -> tuple[float, float]:
    """Central percentile interval of ``samples`` (non-finite samples ignored).

    Returns ``(nan, nan)`` when no sample is finite.
    """
    level = check_level(level)
    arr = np.asarray(samples, dtype=np.float64).ravel()
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return math.nan, math.nan
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(arr, [tail, 100.0 - tail])
    return float(low), float(high)


def pointwise_interval(reps: FloatArray, level: float) -> tuple[FloatArray, FloatArray]:
    """Percentile interval of each column of ``reps [R, B]`` (``nan``-aware): two ``[B]`` arrays."""
    tail = 100.0 * (1.0 - level) / 2.0
    with np.errstate(invalid="ignore"):
        finite = np.where(np.isfinite(reps), reps, np.nan)
        if np.all(np.isnan(finite)):
            nan = np.full(reps.shape[1], math.nan)
            return nan, nan.copy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high = np.nanpercentile(finite, [tail, 100.0 - tail], axis=0)
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)


def bootstrap_estimate(
    data: npt.ArrayLike,
    statistic: Statistic,
    *,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: Seed = 0,
) -> Estimate:
    """Percentile bootstrap interval of ``statistic(data)``, resampling rows i.i.d.

    Parameters
    ----------
    data : array_like, shape ``[n, ...]``
        Independent units along axis 0 (snapshots, tracks, ...).
    statistic : callable
        Maps an array shaped like ``data`` to a float.
    n_resamples : int
        Bootstrap replicates (>= 1).
    level : float
        Interval coverage.
    seed : int or numpy.random.Generator
        Randomness of the resampling.

    Returns
    -------
    Estimate
        ``value = statistic(data)``, percentile interval; no null.
    """
    arr = np.asarray(data, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[0] < 2:
        raise ValidationError(
            f"data needs at least 2 units along axis 0 to bootstrap, got shape {arr.shape}"
        )
    n_resamples = check_count("n_resamples", n_resamples, 1)
    rng = as_generator(seed)
    n = arr.shape[0]
    idx = rng.integers(0, n, size=(n_resamples, n))
    reps = np.array([statistic(arr[row]) for row in idx], dtype=np.float64)
    low, high = percentile_interval(reps, level)
    return Estimate(
        float(statistic(arr)), low, high, method=f"iid percentile bootstrap ({n_resamples})"
    )


def block_bootstrap_indices(
    n: int, block_length: int, n_resamples: int, seed: Seed, *, circular: bool = True
) -> IntArray:
    """Indices of block-bootstrap resamples of a series of length ``n``.

    Blocks of ``block_length`` consecutive indices start at uniformly drawn positions and are
    concatenated until ``n`` indices are collected. ``circular=True`` wraps blocks around the
    end (circular block bootstrap, every index equally likely); ``circular=False`` draws
    starts in ``[0, n − block_length]`` only (moving-block bootstrap).

    Returns
    -------
    ndarray, shape ``[n_resamples, n]``, int64
    """
    n = check_count("n", n, 2)
    block_length = check_count("block_length", block_length, 1)
    if block_length > n:
        raise ConfigError(f"block_length = {block_length} exceeds the series length n = {n}")
    n_resamples = check_count("n_resamples", n_resamples, 1)
    rng = as_generator(seed)
    n_blocks = -(-n // block_length)
    high = n if circular else n - block_length + 1
    starts = rng.integers(0, high, size=(n_resamples, n_blocks))
    idx = starts[:, :, None] + np.arange(block_length)[None, None, :]
    idx = idx.reshape(n_resamples, -1)[:, :n]
    return np.asarray(idx % n, dtype=np.int64)


def block_bootstrap_estimate(
    data: npt.ArrayLike,
    statistic: Statistic,
    *,
    block_length: int | None = None,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: Seed = 0,
    circular: bool = True,
) -> Estimate:
    """Block-bootstrap percentile interval of ``statistic(data)`` for a time series.

    Parameters
    ----------
    data : array_like, shape ``[T, ...]``
        Time along axis 0 (rows are kept together, so paired series stay paired).
    statistic : callable
        Maps an array shaped like ``data`` to a float.
    block_length : int, optional
        Block length in samples; default :func:`default_block_length` of the first column.
    n_resamples, level, seed, circular
        See :func:`block_bootstrap_indices` and :func:`bootstrap_estimate`.
    """
    arr = np.asarray(data, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[0] < 2:
        raise ValidationError(f"data needs at least 2 samples along axis 0, got {arr.shape}")
    if block_length is None:
        block_length = default_block_length(arr.reshape(arr.shape[0], -1)[:, 0])
    idx = block_bootstrap_indices(arr.shape[0], block_length, n_resamples, seed, circular=circular)
    reps = np.array([statistic(arr[row]) for row in idx], dtype=np.float64)
    low, high = percentile_interval(reps, level)
    kind = "circular" if circular else "moving"
    return Estimate(
        float(statistic(arr)),
        low,
        high,
        method=f"{kind}-block bootstrap (block {block_length}, {n_resamples} resamples)",
        level=level,
    )


def integrated_autocorrelation_time(x: npt.ArrayLike, window_factor: float = 5.0) -> float:
    """Integrated autocorrelation time ``τ = 1/2 + Σ_{k≥1} ρ(k)`` in samples.

    The sum is cut at the smallest window ``M ≥ window_factor · τ(M)`` (Sokal's
    self-consistent window), which keeps the noise of the far tail out. For independent
    samples ``τ = 1/2``; the effective number of independent samples is ``T / (2τ)``. For an
    AR(1) series with coefficient φ, ``τ = 1/2 + φ/(1 − φ)``.

    Parameters
    ----------
    x : array_like, shape ``[T]``
    window_factor : float
        Sokal's ``c`` (5 is customary).

    Returns
    -------
    float
        ``τ`` in samples (>= 1/2 is not enforced: anti-correlated series give less).
        A constant series returns ``nan``.
    """
    arr = as_series(x, "x", min_length=4)
    centred = arr - arr.mean()
    n = arr.shape[0]
    size = 1 << math.ceil(math.log2(2 * n))
    spectrum = np.fft.rfft(centred, size)
    acov = np.fft.irfft(spectrum * np.conj(spectrum), size)[:n]
    if acov[0] <= 0.0:
        return math.nan
    rho = acov / acov[0]
    tau_m = 0.5 + np.cumsum(rho[1:])
    window = np.arange(1, n)
    ok = window >= window_factor * tau_m
    m = int(np.argmax(ok)) if ok.any() else n - 2
    return float(tau_m[m])


def default_block_length(x: npt.ArrayLike) -> int:
    """Block length for block resampling of ``x``: ``max(⌈2τ⌉, ⌈T^{1/3}⌉)``, capped at T/2.

    ``2τ`` (:func:`integrated_autocorrelation_time`) is the decorrelation length of the
    series; ``T^{1/3}`` is the rate-optimal length for the block bootstrap of a mean
    (Hall, Horowitz & Jing 1995) and a floor for weakly correlated series.
    """
    arr = as_series(x, "x", min_length=4)
    n = arr.shape[0]
    tau = integrated_autocorrelation_time(arr)
    from_tau = math.ceil(2.0 * tau) if math.isfinite(tau) else 1
    return int(max(1, min(max(from_tau, math.ceil(n ** (1.0 / 3.0))), n // 2)))


def _standardise(x: FloatArray) -> FloatArray:
    centred = x - x.mean()
    scale = math.sqrt(float(np.dot(centred, centred)))
    return centred / scale if scale > 0.0 else np.full_like(x, math.nan)


def circular_shift_correlations(
    x: npt.ArrayLike, y: npt.ArrayLike, *, reflect: bool = True
) -> FloatArray:
    """Pearson correlation of ``x`` with every circular shift of ``y``.

    Parameters
    ----------
    x, y : array_like, shape ``[T]``
        Paired series.
    reflect : bool
        ``False``: shift ``y`` itself around a circle of period ``T``; the shifted series
        then has a jump where its end meets its start, which lowers its memory and makes the
        null too narrow for strongly autocorrelated series. ``True`` (default): shift
        windows of length ``T`` around ``y`` followed by its time reversal (period ``2T``,
        continuous everywhere), which removes the jump.

    Returns
    -------
    ndarray, shape ``[T]`` (``[2T]`` if ``reflect``)
        Entry ``s`` is the Pearson correlation of ``x`` with the window starting at offset
        ``s``; entry 0 is the ordinary Pearson r. All ``nan`` when ``x`` is constant.
        Computed with FFTs and running sums (O(T log T)).
    """
    xa = as_series(x, "x", min_length=3)
    ya = as_series(y, "y", min_length=3)
    if xa.shape != ya.shape:
        raise ValidationError(f"x and y must have the same length, got {xa.shape} and {ya.shape}")
    n = xa.shape[0]
    cycle = np.concatenate([ya, ya[::-1]]) if reflect else ya
    period = cycle.shape[0]
    xs = np.zeros(period)
    xs[:n] = _standardise(xa)
    cycle = cycle - cycle.mean()  # conditioning only: correlations are shift invariant
    num = np.fft.irfft(np.conj(np.fft.rfft(xs)) * np.fft.rfft(cycle), period)
    twice = np.concatenate([cycle, cycle])
    s1 = np.concatenate([[0.0], np.cumsum(twice)])
    s2 = np.concatenate([[0.0], np.cumsum(twice * twice)])
    start = np.arange(period)
    total = s1[start + n] - s1[start]
    sq = s2[start + n] - s2[start] - total * total / n
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(sq > 1e-300, num / np.sqrt(np.maximum(sq, 1e-300)), math.nan)
    return np.asarray(out, dtype=np.float64)


def _tail_pvalue(observed: float, null: FloatArray, alternative: Alternative) -> float:
    """``(1 + #{null at least as extreme}) / (1 + n_null)``."""
    if not math.isfinite(observed) or null.size == 0:
        return math.nan
    if alternative == "two-sided":
        extreme = np.abs(null) >= abs(observed) - 1e-12
    elif alternative == "greater":
        extreme = null >= observed - 1e-12
    elif alternative == "less":
        extreme = null <= observed + 1e-12
    else:
        raise ConfigError(
            f"alternative must be 'two-sided', 'greater' or 'less', got {alternative!r}"
        )
    return float((1 + int(extreme.sum())) / (1 + null.size))


def circular_shift_pvalue(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    min_shift: int | None = None,
    alternative: Alternative = "two-sided",
    reflect: bool = True,
) -> tuple[float, float, int]:
    """Circular-shift permutation p-value of the Pearson correlation of two series.

    The null distribution is the correlation of ``x`` with every shift of ``y`` at least
    ``min_shift`` away from the observed alignment (see :func:`circular_shift_correlations`;
    all shifts, exactly — no randomness). A shift keeps the autocorrelation of both series
    and destroys their alignment, so strongly autocorrelated but independent series do not
    produce false positives at the naive rate. Shifts closer than ``min_shift`` still
    overlap the observed alignment and are left out.

    Measured false-positive rates at α = 0.05 for two independent AR(1) series
    (1000 replicates, default ``min_shift``): φ = 0.5, T = 200: 0.042; φ = 0.9, T = 200:
    0.066; φ = 0.9, T = 500: 0.052; φ = 0.95, T = 300: 0.082 (the naive Pearson test:
    0.14, 0.49, —, 0.64). The test is approximate; it approaches α as ``T/τ`` grows.

    Parameters
    ----------
    x, y : array_like, shape ``[T]``
        Paired series (apply a rank transform first for a Spearman test).
    min_shift : int, optional
        Smallest shift in the null; default ``max`` of :func:`default_block_length` of
        ``x`` and ``y``.
    alternative : {"two-sided", "greater", "less"}
    reflect : bool
        Shift around ``y`` and its time reversal (default), or ``y`` alone.

    Returns
    -------
    r : float
        Observed Pearson correlation.
    p : float
        ``(1 + #{null at least as extreme}) / (1 + n_shifts)``.
    n_shifts : int
        Number of shifts in the null.
    """
    r_all = circular_shift_correlations(x, y, reflect=reflect)
    period = r_all.shape[0]
    n = period // 2 if reflect else period
    if min_shift is None:
        min_shift = max(
            default_block_length(np.asarray(x, dtype=np.float64)),
            default_block_length(np.asarray(y, dtype=np.float64)),
        )
    min_shift = check_count("min_shift", min_shift, 1)
    offset = np.arange(period)
    distance = np.minimum(offset, period - offset)
    null = r_all[distance >= min_shift]
    if null.size < 1 or min_shift >= n:
        raise ValidationError(
            f"series of length {n} is too short for circular shifts of at least {min_shift}"
        )
    observed = float(r_all[0])
    return observed, _tail_pvalue(observed, null[np.isfinite(null)], alternative), int(null.size)


def _check_pvalues(p: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(p, dtype=np.float64)
    if arr.ndim != 1:
        raise ValidationError(f"p-values must be a 1-D array, got shape {arr.shape}")
    finite = arr[np.isfinite(arr)]
    if np.any((finite < 0.0) | (finite > 1.0)):
        raise ValidationError("p-values must lie in [0, 1]")
    return arr


def holm(pvalues: npt.ArrayLike) -> FloatArray:
    """Holm (1979) step-down adjusted p-values (family-wise error rate).

    ``p̃_(i) = max_{j ≤ i} min(1, (m − j + 1) p_(j))`` for the sorted p-values; reject where
    ``p̃ ≤ α``. ``nan`` entries are passed through and not counted in ``m``.

    Parameters
    ----------
    pvalues : array_like, shape ``[m]``

    Returns
    -------
    ndarray, shape ``[m]``
    """
    p = _check_pvalues(pvalues)
    out = np.full_like(p, math.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = np.argsort(p[ok], kind="stable")
    ranked = p[ok][order] * (m - np.arange(m))
    adjusted = np.minimum(np.maximum.accumulate(ranked), 1.0)
    out[ok[order]] = adjusted
    return out


def benjamini_hochberg(pvalues: npt.ArrayLike) -> FloatArray:
    """Benjamini–Hochberg (1995) adjusted p-values (false discovery rate).

    ``p̃_(i) = min_{j ≥ i} min(1, m p_(j) / j)`` for the sorted p-values; reject where
    ``p̃ ≤ q``. Valid under independence or positive dependence. ``nan`` entries are passed
    through and not counted in ``m``.

    Parameters
    ----------
    pvalues : array_like, shape ``[m]``

    Returns
    -------
    ndarray, shape ``[m]``
    """
    p = _check_pvalues(pvalues)
    out = np.full_like(p, math.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = np.argsort(p[ok], kind="stable")
    ranked = p[ok][order] * m / np.arange(1, m + 1)
    adjusted = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    out[ok[order]] = adjusted
    return out
