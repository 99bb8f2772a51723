"""Drifts of quantities that should be conserved (norm, energy), with intervals.

In the conservative limit of the dynamics (docs/physics.md: ``D = g = 0``, ``γ = 1``, no sources,
noise or pinning) the equation is the defocusing NLS / Gross–Pitaevskii equation
``∂ψ/∂t = iαΔψ − iβ|ψ|²ψ``, which conserves the norm ``N = ∫|ψ|² dA`` and the energy
``E = ∫ (α|∇ψ|² + β/2 |ψ|⁴) dA``. An integrator's drift of these is a measurement of its
error; its null value is 0.

* :func:`field_norm`, :func:`nls_energy` — the two integrals per snapshot.
* :func:`drift` — least-squares slope of a series against time, with a moving-block
  residual-bootstrap interval, and the relative changes.
* :func:`conservation_drifts` — :func:`drift` for several named series.

Public names: ``Drift``, ``drift``, ``conservation_drifts``, ``field_norm``, ``nls_energy``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
import numpy.typing as npt
import torch

from hhml.analysis.bootstrap import (
    Seed,
    as_series,
    block_bootstrap_indices,
    check_count,
    check_level,
    default_block_length,
    percentile_interval,
)
from hhml.errors import ValidationError

if TYPE_CHECKING:
    from torch import Tensor

    from hhml.core.mobius import MobiusStrip, TokamakStack

__all__ = ["Drift", "conservation_drifts", "drift", "field_norm", "nls_energy"]

FloatArray: TypeAlias = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Drift:
    """Drift of one series over time.

    Attributes
    ----------
    quantity : str
        Name of the series.
    initial : float
        First value ``x₀``.
    slope : float
        Least-squares slope of ``x`` against ``t`` (units of ``x`` per time unit).
    slope_low, slope_high : float
        Moving-block residual-bootstrap interval of the slope.
    relative_slope : float
        ``slope / |x₀|`` (per time unit); ``nan`` if ``x₀ = 0``.
    final_relative_change : float
        ``(x_end − x₀) / |x₀|``.
    max_relative_deviation : float
        ``max_t |x_t − x₀| / |x₀|``.
    null : float
        0: a conserved quantity does not drift.
    method : str
    level : float
    """

    quantity: str
    initial: float
    slope: float
    slope_low: float
    slope_high: float
    relative_slope: float
    final_relative_change: float
    max_relative_deviation: float
    null: float
    method: str
    level: float

    def to_dict(self) -> dict[str, float | str]:
        """Plain ``dict`` (JSON-ready)."""
        return asdict(self)


def drift(
    series: npt.ArrayLike,
    times: npt.ArrayLike | None = None,
    *,
    name: str = "series",
    block_length: int | None = None,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: Seed = 0,
) -> Drift:
    """Linear drift of a series, with an autocorrelation-aware interval.

    Parameters
    ----------
    series : array_like, shape ``[T]``
        Values (e.g. norm or energy per snapshot), ``T >= 4``.
    times : array_like, shape ``[T]``, optional
        Increasing times (simulation time units); default ``0, 1, …, T−1``.
    name : str
        Name of the quantity (in the result and in errors).
    block_length : int, optional
        Block length of the residual bootstrap; default
        :func:`~hhml.analysis.bootstrap.default_block_length` of the residuals.
    n_resamples : int
        Bootstrap replicates (0: no interval).
    level : float
    seed : int or numpy.random.Generator

    Returns
    -------
    Drift
        A constant series has slope 0 with interval ``[0, 0]``; ``x = a + b t`` has slope
        ``b`` exactly.
    """
    x = as_series(series, name, min_length=4)
    t = np.arange(x.size, dtype=np.float64) if times is None else as_series(times, "times", 4)
    if t.shape != x.shape:
        raise ValidationError(f"times has {t.size} values for {x.size} values of {name}")
    if np.any(np.diff(t) <= 0.0):
        raise ValidationError("times must be strictly increasing")
    level = check_level(level)
    n_resamples = check_count("n_resamples", n_resamples, 0)
    design = np.stack([np.ones_like(t), t - t.mean()], axis=1)
    coef, *_ = np.linalg.lstsq(design, x, rcond=None)
    slope = float(coef[1])
    fitted = design @ coef
    resid = x - fitted
    low = high = math.nan
    if n_resamples > 0:
        if np.ptp(resid) <= 1e-14 * max(1.0, float(np.abs(x).max())):
            low = high = slope
        else:
            b = default_block_length(resid) if block_length is None else block_length
            b = min(check_count("block_length", b, 1), x.size)
            idx = block_bootstrap_indices(x.size, b, n_resamples, seed, circular=True)
            y = fitted[None, :] + resid[idx]
            slopes = np.linalg.lstsq(design, y.T, rcond=None)[0][1]
            low, high = percentile_interval(slopes, level)
    x0 = float(x[0])
    scale = abs(x0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = slope / scale if scale > 0 else math.nan
        final = (float(x[-1]) - x0) / scale if scale > 0 else math.nan
        worst = float(np.max(np.abs(x - x0))) / scale if scale > 0 else math.nan
    method = (
        "least-squares slope against time; interval: circular-block bootstrap of the "
        f"residuals ({n_resamples} resamples)"
    )
    return Drift(name, x0, slope, low, high, rel, final, worst, 0.0, method, level)


def conservation_drifts(
    series: Mapping[str, npt.ArrayLike],
    times: npt.ArrayLike | None = None,
    *,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: Seed = 0,
) -> dict[str, Drift]:
    """:func:`drift` of each named series (e.g. ``{"norm": …, "energy": …}``)."""
    if not series:
        raise ValidationError("series is empty; give at least one named series")
    return {
        key: drift(values, times, name=key, n_resamples=n_resamples, level=level, seed=seed)
        for key, values in series.items()
    }


def _area_sum_dims(lattice: MobiusStrip | TokamakStack) -> tuple[Tensor, tuple[int, ...]]:
    area = lattice.area_weights()
    return area, tuple(range(-area.dim(), 0))


def field_norm(psi: Tensor, lattice: MobiusStrip | TokamakStack) -> FloatArray:
    """``N = ∫|ψ|² dA`` (area-weighted sum over cells; all strips of a stack).

    Parameters
    ----------
    psi : Tensor, shape ``[..., nu, nv]`` (``[..., S, nu, nv]`` for a stack), complex

    Returns
    -------
    ndarray, shape ``[...]``, float64
        Field units² × length².
    """
    lattice.check_field(psi)
    area, dims = _area_sum_dims(lattice)
    dens = psi.real.square() + psi.imag.square()
    out = (area.to(dens.dtype) * dens).sum(dim=dims)
    return np.asarray(out.detach().to("cpu", torch.float64).numpy(), dtype=np.float64)


def nls_energy(
    psi: Tensor, lattice: MobiusStrip | TokamakStack, alpha: float, beta: float
) -> FloatArray:
    """``E = ∫ (α|∇ψ|² + β/2 |ψ|⁴) dA`` of the conservative limit ``∂ψ/∂t = iαΔψ − iβ|ψ|²ψ``.

    ``∫|∇ψ|² dA = −Re ∫ ψ* Δψ dA`` with the lattice's own seam-aware Laplacian, so this is
    exactly the energy its semi-discrete dynamics conserves (summation by parts).

    Parameters
    ----------
    psi : Tensor, shape ``[..., nu, nv]`` (``[..., S, nu, nv]`` for a stack), complex
    lattice : MobiusStrip or TokamakStack
    alpha : float
        Linear dispersion α (length² per time unit).
    beta : float
        Nonlinear frequency β.

    Returns
    -------
    ndarray, shape ``[...]``, float64
    """
    lattice.check_field(psi)
    area, dims = _area_sum_dims(lattice)
    area = area.to(psi.real.dtype)
    dens = psi.real.square() + psi.imag.square()
    grad = -(area * (psi.conj() * lattice.laplacian(psi)).real).sum(dim=dims)
    quartic = (area * dens.square()).sum(dim=dims)
    out = alpha * grad + 0.5 * beta * quartic
    return np.asarray(out.detach().to("cpu", torch.float64).numpy(), dtype=np.float64)
