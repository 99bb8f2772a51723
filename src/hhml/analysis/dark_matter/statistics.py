"""Resampling statistics used by the dark-matter analysis.

Every estimate here comes with an interval or a test: percentile-bootstrap
intervals of means and of retained fractions (resampling branches, the
independent units of the ensemble), and two-sample comparisons by the
Mann–Whitney U test with the rank-biserial effect size and a permutation test
of the difference of means.

Public names: :class:`GroupComparison`, :func:`bootstrap_mean_ci`,
:func:`compare_samples`, :func:`json_number`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from hhml.errors import ConfigError

__all__ = ["GroupComparison", "bootstrap_mean_ci", "compare_samples", "json_number"]

FloatArray = NDArray[np.float64]


def json_number(x: float | int | np.floating[Any] | np.integer[Any] | None) -> float | int | None:
    """A plain Python number for JSON; NaN and ±inf become None."""
    if x is None:
        return None
    if isinstance(x, (bool, np.bool_)):
        return int(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    value = float(x)
    return value if math.isfinite(value) else None


def check_confidence(confidence: float) -> None:
    """Raise :class:`ConfigError` unless ``0 < confidence < 1``."""
    if not (isinstance(confidence, (int, float)) and 0.0 < confidence < 1.0):
        raise ConfigError(f"confidence = {confidence!r} is not valid; need 0 < confidence < 1")


def check_count(name: str, value: int, minimum: int) -> None:
    """Raise :class:`ConfigError` unless ``value`` is an integer ≥ ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} = {value!r} is not valid; it must be an integer ≥ {minimum}")


def bootstrap_mean_ci(
    values: FloatArray, n_boot: int, confidence: float, rng: np.random.Generator
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of ``values`` ``[n]`` (NaNs dropped).

    Returns ``(nan, nan)`` for fewer than two finite values (no interval exists).
    """
    check_count("n_boot", n_boot, 1)
    check_confidence(confidence)
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return (math.nan, math.nan)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    means = x[idx].mean(axis=1)
    alpha = 1.0 - confidence
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return (float(lo), float(hi))


@dataclass(frozen=True)
class GroupComparison:
    """Two samples ``a`` and ``b`` compared without distributional assumptions.

    Attributes
    ----------
    quantity : str
        What was compared (e.g. ``"lyapunov_exponent"``).
    label_a, label_b : str
        Names of the two groups.
    n_a, n_b : int
        Finite sample sizes.
    mean_a, mean_b : float
        Sample means (NaN for an empty group).
    ci_a, ci_b : tuple of float
        Percentile-bootstrap intervals of the means.
    difference : float
        ``mean_a − mean_b``.
    mann_whitney_u : float
        U statistic of sample ``a`` (two-sided test; NaN when undefined).
    mann_whitney_p : float
        Two-sided p-value of the Mann–Whitney U test.
    rank_biserial : float
        ``2U/(n_a n_b) − 1`` ∈ [−1, 1]: the probability that a value of ``a``
        exceeds one of ``b`` minus the reverse; 0 under the null of exchangeability.
    permutation_p : float
        Two-sided permutation p-value of ``|mean_a − mean_b|`` (with the +1
        correction, so never 0).
    n_permutations : int
        Number of label permutations drawn.
    confidence : float
        Level of the bootstrap intervals.
    note : str
        Why a test is undefined (an empty group, fewer than 1 value), else ``""``.
    """

    quantity: str
    label_a: str
    label_b: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    ci_a: tuple[float, float]
    ci_b: tuple[float, float]
    difference: float
    mann_whitney_u: float
    mann_whitney_p: float
    rank_biserial: float
    permutation_p: float
    n_permutations: int
    confidence: float
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able numbers (NaN → None)."""
        return {
            "quantity": self.quantity,
            "label_a": self.label_a,
            "label_b": self.label_b,
            "n_a": self.n_a,
            "n_b": self.n_b,
            "mean_a": json_number(self.mean_a),
            "mean_b": json_number(self.mean_b),
            "ci_a": [json_number(v) for v in self.ci_a],
            "ci_b": [json_number(v) for v in self.ci_b],
            "difference": json_number(self.difference),
            "mann_whitney_u": json_number(self.mann_whitney_u),
            "mann_whitney_p": json_number(self.mann_whitney_p),
            "rank_biserial": json_number(self.rank_biserial),
            "permutation_p": json_number(self.permutation_p),
            "n_permutations": self.n_permutations,
            "confidence": self.confidence,
            "note": self.note,
        }


def compare_samples(
    a: FloatArray,
    b: FloatArray,
    *,
    quantity: str,
    labels: tuple[str, str] = ("a", "b"),
    n_boot: int = 1000,
    n_permutations: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> GroupComparison:
    """Compare two samples: means with bootstrap CIs, Mann–Whitney U, permutation test.

    Parameters
    ----------
    a, b
        1-D samples (NaNs are dropped).
    quantity
        Name of the compared quantity (stored in the result).
    labels
        Names of the groups ``a`` and ``b``.
    n_boot, n_permutations
        Bootstrap resamples and label permutations.
    confidence
        Level of the bootstrap intervals.
    seed
        Seeds the bootstrap and the permutations.
    """
    check_count("n_permutations", n_permutations, 1)
    rng = np.random.default_rng(seed)
    xa = np.asarray(a, dtype=np.float64).ravel()
    xb = np.asarray(b, dtype=np.float64).ravel()
    xa, xb = xa[np.isfinite(xa)], xb[np.isfinite(xb)]
    na, nb = int(xa.size), int(xb.size)
    mean_a = float(xa.mean()) if na else math.nan
    mean_b = float(xb.mean()) if nb else math.nan
    ci_a = bootstrap_mean_ci(xa, n_boot, confidence, rng)
    ci_b = bootstrap_mean_ci(xb, n_boot, confidence, rng)
    u = p_mw = rbc = p_perm = math.nan
    note = ""
    if na == 0 or nb == 0:
        note = f"no test: group {labels[0] if na == 0 else labels[1]!r} is empty"
    elif np.all(np.concatenate([xa, xb]) == xa[0]):
        # every value equal: the samples are indistinguishable by construction
        u, p_mw, rbc, p_perm = na * nb / 2.0, 1.0, 0.0, 1.0
        note = "all values equal"
    else:
        res = stats.mannwhitneyu(xa, xb, alternative="two-sided", method="auto")
        u, p_mw = float(res.statistic), float(res.pvalue)
        rbc = 2.0 * u / (na * nb) - 1.0
        pooled = np.concatenate([xa, xb])
        observed = abs(mean_a - mean_b)
        perms = np.argsort(rng.random((n_permutations, na + nb)), axis=1)
        shuffled = pooled[perms]
        diffs = np.abs(shuffled[:, :na].mean(axis=1) - shuffled[:, na:].mean(axis=1))
        # a small tolerance so that exact ties with the observed value count as "as extreme"
        extreme = int(np.count_nonzero(diffs >= observed - 1e-12 * max(1.0, observed)))
        p_perm = (extreme + 1) / (n_permutations + 1)
    return GroupComparison(
        quantity=quantity,
        label_a=labels[0],
        label_b=labels[1],
        n_a=na,
        n_b=nb,
        mean_a=mean_a,
        mean_b=mean_b,
        ci_a=ci_a,
        ci_b=ci_b,
        difference=mean_a - mean_b,
        mann_whitney_u=u,
        mann_whitney_p=p_mw,
        rank_biserial=rbc,
        permutation_p=p_perm,
        n_permutations=n_permutations,
        confidence=confidence,
        note=note,
    )
