"""Exponential growth rate of branch separation (a finite-time Lyapunov exponent).

For each branch ``b`` the separation ``δ_b(t) = ‖ψ_b(t) − ψ_ref(t)‖`` is fitted
by least squares as ``log δ_b(t) ≈ c_b + λ_b t`` over its linear-growth window:
the recorded times ``t ≥ t_min`` (and ``≤ t_max``) with ``δ_b > 0``, up to (not
including) the first time ``δ_b(t) > s · ‖ψ_ref(t)‖`` (saturation fraction
``s``). Once branches are as far apart as the fields are large the growth is
no longer exponential, so those times are excluded. A branch with fewer than
three points in its window has no exponent (NaN).

The ensemble estimate is the mean of the per-branch ``λ_b`` with a
percentile-bootstrap interval over branches (the independent units).

Public names: :class:`LyapunovFit`, :func:`fit_separation_growth`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hhml.analysis.dark_matter.statistics import (
    bootstrap_mean_ci,
    check_confidence,
    check_count,
    json_number,
)
from hhml.errors import ConfigError

__all__ = ["LyapunovFit", "fit_separation_growth"]

FloatArray = NDArray[np.float64]

#: Minimum number of points in a branch's window for a fitted exponent.
MIN_POINTS = 3


@dataclass(frozen=True)
class LyapunovFit:
    """Per-branch separation growth rates and their ensemble mean.

    Attributes
    ----------
    exponents : ndarray
        ``λ_b`` (1/time), ``[N]``; NaN where the window had < 3 points.
    n_points : ndarray
        Points in each branch's window, ``[N]`` int.
    mean : float
        Mean of the finite ``λ_b``.
    ci : tuple of float
        Percentile-bootstrap interval of the mean.
    confidence : float
        Level of ``ci``.
    t_min, t_max : float
        The declared fitting window.
    saturation : float
        ``s``: points with ``δ > s‖ψ_ref‖`` (and all later ones) are excluded.
    """

    exponents: FloatArray
    n_points: NDArray[np.int64]
    mean: float
    ci: tuple[float, float]
    confidence: float
    t_min: float
    t_max: float
    saturation: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able numbers (NaN → None)."""
        return {
            "exponents": [json_number(v) for v in self.exponents],
            "n_points": [int(v) for v in self.n_points],
            "n_fitted": int(np.count_nonzero(np.isfinite(self.exponents))),
            "mean": json_number(self.mean),
            "ci": [json_number(v) for v in self.ci],
            "confidence": self.confidence,
            "t_min": self.t_min,
            "t_max": json_number(self.t_max),
            "saturation": self.saturation,
        }


def fit_separation_growth(
    times: FloatArray,
    separation: FloatArray,
    reference_norm: FloatArray,
    *,
    t_min: float = 0.0,
    t_max: float = math.inf,
    saturation: float = 0.3,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> LyapunovFit:
    """Fit ``λ_b`` to ``separation [K, N]`` recorded at ``times [K]``.

    Parameters
    ----------
    times
        Recording times ``[K]`` (increasing).
    separation
        ``‖ψ_b − ψ_ref‖`` ``[K, N]``.
    reference_norm
        ``‖ψ_ref‖`` ``[K]`` (sets the saturation level).
    t_min, t_max
        Window bounds (time units).
    saturation
        ``s > 0`` (see module docstring).
    n_boot, confidence, seed
        Bootstrap of the ensemble mean.
    """
    check_count("n_boot", n_boot, 1)
    check_confidence(confidence)
    if not (math.isfinite(saturation) and saturation > 0):
        raise ConfigError(f"saturation = {saturation!r} is not valid; it must be > 0")
    if not (t_max > t_min):
        raise ConfigError(f"t_max = {t_max!r} must exceed t_min = {t_min!r}")
    t = np.asarray(times, dtype=np.float64)
    sep = np.asarray(separation, dtype=np.float64)
    ref = np.asarray(reference_norm, dtype=np.float64)
    if sep.ndim != 2 or sep.shape[0] != t.size or ref.shape != t.shape:
        raise ConfigError(
            f"separation has shape {sep.shape}, times {t.shape}, reference_norm {ref.shape}; "
            "expected [K, N], [K], [K]"
        )
    n = sep.shape[1]
    exponents = np.full(n, math.nan)
    n_points = np.zeros(n, dtype=np.int64)
    in_range = (t >= t_min) & (t <= t_max)
    for b in range(n):
        saturated = sep[:, b] > saturation * ref
        # everything from the first saturated time on is outside the window
        first = int(np.argmax(saturated)) if saturated.any() else t.size
        mask = in_range & (sep[:, b] > 0) & np.isfinite(sep[:, b])
        mask[first:] = False
        n_points[b] = int(mask.sum())
        if n_points[b] >= MIN_POINTS:
            slope, _ = np.polyfit(t[mask], np.log(sep[mask, b]), 1)
            exponents[b] = float(slope)
    finite = exponents[np.isfinite(exponents)]
    mean = float(finite.mean()) if finite.size else math.nan
    ci = bootstrap_mean_ci(exponents, n_boot, confidence, np.random.default_rng(seed))
    return LyapunovFit(
        exponents=exponents,
        n_points=n_points,
        mean=mean,
        ci=ci,
        confidence=confidence,
        t_min=float(t_min),
        t_max=float(t_max),
        saturation=float(saturation),
    )
