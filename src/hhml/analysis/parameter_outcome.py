"""Parameter–outcome correlations of a training run, with autocorrelation-aware tests.

The 23 control parameters and the outcomes (reward, vortex density, ...) of a training run
are time series with long memory: two independent slowly drifting series are strongly
correlated by chance far more often than the textbook Pearson test admits. Every
correlation here is therefore reported with

* an effect size — Pearson ``r`` or Spearman ``ρ`` — and a circular-block-bootstrap
  interval of it (paired rows resampled in blocks, so the autocorrelation is kept);
* a circular-shift permutation p-value (:func:`hhml.analysis.bootstrap.circular_shift_pvalue`):
  the null distribution is the correlation of the parameter with every circular shift of the
  outcome, which keeps both autocorrelations and destroys their alignment;
* the naive p-value (independent samples assumed), for contrast only;
* Holm (family-wise) and Benjamini–Hochberg (false-discovery) adjusted p-values over the
  whole family of parameter × outcome tests.

The shift test is exact in its resolution only: its smallest p-value is ``1/(1 + n_shifts)``
with ``n_shifts ≈ 2T``, so after Holm over ``m`` tests nothing can reach ``α`` unless
``T ≳ m / (2α)`` (e.g. 23 parameters × 2 outcomes at α = 0.05: ``T ≳ 500`` logged steps).

Block lengths are ``max(⌈2τ⌉, ⌈T^{1/3}⌉)`` with τ the integrated autocorrelation time of the
more persistent of the two series (:func:`hhml.analysis.bootstrap.default_block_length`).

Public names: ``CorrelationTest``, ``ParameterOutcomeAnalysis``, ``correlation_test``,
``parameter_outcome_correlations``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt
from scipy import stats

from hhml.analysis.bootstrap import (
    Seed,
    as_generator,
    as_series,
    benjamini_hochberg,
    block_bootstrap_indices,
    check_count,
    check_level,
    circular_shift_pvalue,
    default_block_length,
    holm,
    integrated_autocorrelation_time,
    percentile_interval,
)
from hhml.errors import ConfigError, ValidationError

__all__ = [
    "CorrelationTest",
    "ParameterOutcomeAnalysis",
    "correlation_test",
    "parameter_outcome_correlations",
]

FloatArray: TypeAlias = npt.NDArray[np.float64]
Method: TypeAlias = Literal["pearson", "spearman"]


@dataclass(frozen=True)
class CorrelationTest:
    """One parameter–outcome correlation with its interval and p-values.

    Attributes
    ----------
    parameter, outcome : str
        Names of the two series.
    method : {"pearson", "spearman"}
        Effect size: Pearson ``r`` or Spearman ``ρ`` (Pearson of ranks).
    r : float
        The effect size (``nan`` if either series is constant).
    r_low, r_high : float
        Circular-block-bootstrap percentile interval of ``r`` (``nan`` if not computed).
    p_value : float
        Circular-shift permutation p-value (two-sided), autocorrelation-aware.
    p_naive : float
        Textbook p-value assuming independent samples (scipy); for contrast only.
    p_holm, p_bh : float
        ``p_value`` adjusted over the tested family (Holm; Benjamini–Hochberg). Equal to
        ``p_value`` for a single test.
    n : int
        Number of time points.
    n_shifts : int
        Number of circular shifts in the permutation null.
    block_length : int
        Block length (samples) of the bootstrap and the smallest shift of the null.
    tau_parameter, tau_outcome : float
        Integrated autocorrelation times of the two series (samples).
    level : float
        Coverage of ``[r_low, r_high]``.
    """

    parameter: str
    outcome: str
    method: str
    r: float
    r_low: float
    r_high: float
    p_value: float
    p_naive: float
    p_holm: float
    p_bh: float
    n: int
    n_shifts: int
    block_length: int
    tau_parameter: float
    tau_outcome: float
    level: float

    def to_dict(self) -> dict[str, float | int | str]:
        """Plain ``dict`` (JSON-ready)."""
        return asdict(self)


@dataclass(frozen=True)
class ParameterOutcomeAnalysis:
    """All parameter × outcome tests of one run.

    Attributes
    ----------
    tests : tuple of CorrelationTest
        Parameter-major order (all outcomes of parameter 0, then parameter 1, ...).
    method : str
        ``"pearson"`` or ``"spearman"``.
    n_tests : int
        Size of the family the adjustments were made over (tests with a finite p-value).
    description : str
        How the intervals, p-values and adjustments were obtained, in words.
    """

    tests: tuple[CorrelationTest, ...]
    method: str
    n_tests: int
    description: str

    def table(self) -> list[dict[str, float | int | str]]:
        """One plain ``dict`` per test (for reports and JSON)."""
        return [t.to_dict() for t in self.tests]

    def significant(self, alpha: float = 0.05, correction: str = "bh") -> list[CorrelationTest]:
        """Tests whose adjusted p-value (``"holm"`` or ``"bh"``) is at most ``alpha``."""
        if correction not in ("holm", "bh"):
            raise ConfigError(f"correction must be 'holm' or 'bh', got {correction!r}")
        key = "p_holm" if correction == "holm" else "p_bh"
        return [t for t in self.tests if getattr(t, key) <= alpha]


def _rowwise_pearson(x: FloatArray, y: FloatArray) -> FloatArray:
    """Pearson r of each row pair of ``x, y`` ``[R, T]``; ``nan`` for constant rows."""
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    den = np.sqrt((xc * xc).sum(axis=-1) * (yc * yc).sum(axis=-1))
    num = (xc * yc).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0.0, num / np.where(den > 0.0, den, 1.0), math.nan)


def correlation_test(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    method: Method = "pearson",
    block_length: int | None = None,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: Seed = 0,
    x_name: str = "x",
    y_name: str = "y",
) -> CorrelationTest:
    """Correlation of two autocorrelated series, with block-bootstrap interval and shift test.

    Parameters
    ----------
    x, y : array_like, shape ``[T]``
        Paired series (e.g. one parameter trajectory and one outcome), ``T >= 8``.
    method : {"pearson", "spearman"}
        Effect size; Spearman is Pearson on ranks (the test is then on ranks too).
    block_length : int, optional
        Block length in samples; default ``max`` of :func:`default_block_length` of ``x``
        and ``y``. It is also the smallest shift in the permutation null.
    n_resamples : int
        Bootstrap replicates for the interval of ``r`` (0: no interval).
    level : float
        Interval coverage.
    seed : int or numpy.random.Generator
        Randomness of the bootstrap (the shift test is exact and deterministic).
    x_name, y_name : str
        Names used in the result and in error messages.

    Returns
    -------
    CorrelationTest
        ``p_holm`` and ``p_bh`` equal ``p_value`` (a family of one).

    Raises
    ------
    ValidationError
        Wrong shapes, non-finite values, fewer than 8 points.
    ConfigError
        Unknown ``method``, bad ``block_length``, ``n_resamples`` or ``level``.
    """
    if method not in ("pearson", "spearman"):
        raise ConfigError(f"method must be 'pearson' or 'spearman', got {method!r}")
    xa = as_series(x, x_name, min_length=8)
    ya = as_series(y, y_name, min_length=8)
    if xa.shape != ya.shape:
        raise ValidationError(
            f"{x_name} and {y_name} must have the same length, got {xa.size} and {ya.size}"
        )
    level = check_level(level)
    n_resamples = check_count("n_resamples", n_resamples, 0)
    n = xa.size
    constant = bool(np.ptp(xa) == 0.0 or np.ptp(ya) == 0.0)
    tau_x = math.nan if np.ptp(xa) == 0.0 else integrated_autocorrelation_time(xa)
    tau_y = math.nan if np.ptp(ya) == 0.0 else integrated_autocorrelation_time(ya)
    if block_length is None:
        lengths = [default_block_length(s) for s in (xa, ya) if np.ptp(s) > 0.0]
        block_length = max(lengths) if lengths else 1
    block_length = check_count("block_length", block_length, 1)
    if block_length >= n // 2:
        raise ValidationError(
            f"series of length {n} are too short for block length {block_length}: the "
            f"block length must stay below T/2 = {n // 2} (too few independent samples)"
        )
    if method == "spearman":
        xs, ys = stats.rankdata(xa), stats.rankdata(ya)
    else:
        xs, ys = xa, ya
    if constant:
        r = p = p_naive = r_low = r_high = math.nan
        n_shifts = 0
    else:
        r, p, n_shifts = circular_shift_pvalue(xs, ys, min_shift=block_length)
        naive = stats.pearsonr(xa, ya) if method == "pearson" else stats.spearmanr(xa, ya)
        p_naive = float(naive.pvalue)
        r_low = r_high = math.nan
        if n_resamples > 0:
            idx = block_bootstrap_indices(n, block_length, n_resamples, as_generator(seed))
            xb, yb = xa[idx], ya[idx]
            if method == "spearman":
                xb, yb = stats.rankdata(xb, axis=1), stats.rankdata(yb, axis=1)
            r_low, r_high = percentile_interval(_rowwise_pearson(xb, yb), level)
    return CorrelationTest(
        parameter=x_name,
        outcome=y_name,
        method=method,
        r=float(r),
        r_low=r_low,
        r_high=r_high,
        p_value=p,
        p_naive=p_naive,
        p_holm=p,
        p_bh=p,
        n=n,
        n_shifts=n_shifts,
        block_length=block_length,
        tau_parameter=tau_x,
        tau_outcome=tau_y,
        level=level,
    )


def parameter_outcome_correlations(
    parameters: npt.ArrayLike,
    outcomes: Mapping[str, npt.ArrayLike],
    parameter_names: Sequence[str],
    *,
    method: Method = "spearman",
    n_resamples: int = 1000,
    level: float = 0.95,
    block_length: int | None = None,
    seed: Seed = 0,
) -> ParameterOutcomeAnalysis:
    """Correlate every parameter trajectory with every outcome of a run.

    Parameters
    ----------
    parameters : array_like, shape ``[T, P]``
        Parameter trajectories (e.g. the 23 physical parameters logged per step).
    outcomes : mapping of str to array_like, each shape ``[T]``
        Outcome series (reward, vortex density, ...) aligned with ``parameters``.
    parameter_names : sequence of str, length ``P``
        Column names of ``parameters``.
    method : {"pearson", "spearman"}
        Effect size (Spearman by default: robust to monotone non-linear relations).
    n_resamples, level, block_length, seed
        See :func:`correlation_test`; one generator drives all bootstrap draws.

    Returns
    -------
    ParameterOutcomeAnalysis
        ``P × K`` tests with Holm and BH adjustments over the whole family. A parameter
        that never changes has ``r = p = nan`` and is left out of the family.

    Raises
    ------
    ValidationError
        Shape mismatches, non-finite values, fewer than 8 time points, duplicate names.
    """
    params = np.asarray(parameters, dtype=np.float64)
    if params.ndim != 2:
        raise ValidationError(f"parameters must have shape [T, P], got {params.shape}")
    names = list(parameter_names)
    if len(names) != params.shape[1]:
        raise ValidationError(
            f"parameter_names has {len(names)} names for {params.shape[1]} parameter columns"
        )
    if len(set(names)) != len(names):
        raise ValidationError("parameter_names contains duplicates")
    if not outcomes:
        raise ValidationError("outcomes is empty; give at least one outcome series")
    for key, series in outcomes.items():
        arr = np.asarray(series)
        if arr.shape != (params.shape[0],):
            raise ValidationError(
                f"outcome {key!r} has shape {arr.shape}; expected [T] = [{params.shape[0]}]"
            )
    rng = as_generator(seed)
    tests = [
        correlation_test(
            params[:, i],
            outcomes[key],
            method=method,
            block_length=block_length,
            n_resamples=n_resamples,
            level=level,
            seed=rng,
            x_name=name,
            y_name=key,
        )
        for i, name in enumerate(names)
        for key in outcomes
    ]
    p = np.array([t.p_value for t in tests], dtype=np.float64)
    p_holm, p_bh = holm(p), benjamini_hochberg(p)
    adjusted = tuple(
        replace(t, p_holm=float(h), p_bh=float(b))
        for t, h, b in zip(tests, p_holm, p_bh, strict=True)
    )
    n_tests = int(np.isfinite(p).sum())
    description = (
        f"{method} correlation; interval: circular-block bootstrap of paired rows "
        f"({n_resamples} resamples, level {level}); p: circular-shift permutation of the "
        f"outcome (shifts ≥ block length), two-sided; Holm and Benjamini–Hochberg over "
        f"{n_tests} tests"
    )
    return ParameterOutcomeAnalysis(adjusted, method, n_tests, description)
