"""Field correlation functions and power spectra on the band, beside their null models.

* :func:`field_correlation` — ``g₁(s) = ⟨ψ*(u, v) ψ(u + s, v)⟩ / ⟨|ψ|²⟩`` along ``u``
  through the seam: a shift past ``u = L`` continues on the identified side,
  ``ψ(u + L, v) = e^{iθ} ψ(u, −v)`` on the Möbius band (``ψ(u, v)`` on the controls). The
  average runs over all cells, all snapshots and any strip dimension (flat chart weights).
  The correlation length ``ξ`` is an exponential fit of ``|g₁|``. Intervals: percentile
  bootstrap over snapshots (snapshots are the independent units; give snapshots spaced
  further apart than the field's correlation time). Null: the same statistic on fields
  whose cells are shuffled within each snapshot (no spatial correlation, the same
  one-point distribution).
* :func:`power_spectrum` — ``|FFT along u|²`` averaged over ``v`` and snapshots, on the
  double cover for the Möbius band (wavenumbers ``π m / L``) with the seam twist
  demodulated, normalised so the modes sum to ``⟨|ψ|²⟩`` (Parseval). Null: white noise of
  the same ``⟨|ψ|²⟩``, flat at ``⟨|ψ|²⟩ / N``.

Public names: ``FieldCorrelation``, ``field_correlation``, ``PowerSpectrum``,
``power_spectrum``, ``double_cover``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
import numpy.typing as npt
import torch

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
from hhml.errors import ConfigError, ValidationError

if TYPE_CHECKING:
    from hhml.core.mobius import MobiusStrip, TokamakStack

__all__ = [
    "FieldCorrelation",
    "PowerSpectrum",
    "double_cover",
    "field_correlation",
    "power_spectrum",
]

FloatArray: TypeAlias = npt.NDArray[np.float64]
ComplexArray: TypeAlias = npt.NDArray[np.complex128]
FieldInput: TypeAlias = "torch.Tensor | npt.NDArray[np.complexfloating]"


def _snapshots(psi: FieldInput, lattice: MobiusStrip | TokamakStack) -> ComplexArray:
    """Validate snapshots ``[T, ..., nu, nv]`` and return them as complex128 NumPy."""
    if isinstance(psi, torch.Tensor):
        lattice.check_field(psi)
        arr = psi.detach().to("cpu", torch.complex128).numpy()
    else:
        arr = np.asarray(psi)
        if not np.iscomplexobj(arr):
            raise ValidationError(f"psi must be complex, got dtype {arr.dtype}")
        arr = arr.astype(np.complex128)
        lattice.check_field(torch.from_numpy(arr))
    if arr.ndim < len(getattr(lattice, "field_shape", (0, 0))) + 1:
        raise ValidationError(
            f"psi must have a leading snapshot axis [T, ..., nu, nv], got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValidationError("psi contains non-finite values")
    return arr


def double_cover(psi: ComplexArray, lattice: MobiusStrip | TokamakStack) -> ComplexArray:
    """Continue ``psi [..., nu, nv]`` once around the band: ``[..., 2 nu, nv]``.

    Row ``nu + i`` is the field at ``u_i + L`` through the identification:
    ``e^{iθ} ψ(u_i, −v)`` on the Möbius band, ``e^{iθ} ψ(u_i, v)`` on the controls.
    """
    chart = chart_of(lattice)
    phase = lattice.seam_phase
    factor = 1.0 + 0.0j if phase is None else complex(phase)
    continued = psi[..., ::-1] if chart.flip else psi
    return np.concatenate([psi, factor * continued], axis=-2)


@dataclass(frozen=True)
class FieldCorrelation:
    """``g₁`` along ``u`` with its bootstrap band, null envelope and correlation length.

    Attributes
    ----------
    lag : ndarray, shape ``[M]``
        Shift along ``u`` (length units), ``0, Δu, …``.
    g1 : ndarray, shape ``[M]``, complex
        ``⟨ψ*(u, v) ψ(u + s, v)⟩ / ⟨|ψ|²⟩``; ``g1[0] = 1``.
    abs_low, abs_high : ndarray, shape ``[M]``
        Bootstrap interval of ``|g₁|`` (snapshots resampled).
    null_high : ndarray, shape ``[M]``
        Upper ``level`` quantile of ``|g₁|`` for cell-shuffled fields (no spatial
        correlation); ``|g₁|`` above it is correlation beyond chance.
    correlation_length : Estimate
        ``ξ`` from ``|g₁(s)| ≈ A e^{−s/ξ}`` (length units), bootstrap interval; null 0.
    fit_lags : int
        Number of lags in the fit (``1 … fit_lags``).
    method : str
    """

    lag: FloatArray
    g1: ComplexArray
    abs_low: FloatArray
    abs_high: FloatArray
    null_high: FloatArray
    correlation_length: Estimate
    fit_lags: int
    method: str


def _lag_sums(psi: ComplexArray, lattice: MobiusStrip | TokamakStack) -> ComplexArray:
    """``Σ_{cells} ψ*(u, v) ψ(u + s, v)`` per snapshot: ``[T, nu]`` (lags ``0 … nu−1``)."""
    nu = psi.shape[-2]
    ext = double_cover(psi, lattice)
    padded = np.concatenate([psi, np.zeros_like(psi)], axis=-2)
    spec = np.conj(np.fft.fft(padded, axis=-2)) * np.fft.fft(ext, axis=-2)
    lagged = np.fft.ifft(spec, axis=-2)[..., :nu, :]
    # linear correlation: i < nu, i + s < 2 nu never wraps, so the circular FFT is exact
    return np.asarray(lagged.reshape(psi.shape[0], -1, nu, psi.shape[-1]).sum(axis=(1, 3)))


def _fit_lags(g_abs: FloatArray, floor: float) -> int:
    """Number of lags ``1, 2, …`` before ``|g|`` first drops below ``floor``."""
    below = np.flatnonzero(g_abs[1:] < floor)
    return int(below[0]) if below.size else g_abs.size - 1


def _fit_length(lag: FloatArray, g_abs: FloatArray, floor: float) -> float:
    """``ξ`` of a least-squares fit ``log|g| = a − s/ξ`` on the lags of :func:`_fit_lags`.

    ``nan`` when fewer than 2 lags qualify (``ξ`` below about one cell).
    """
    last = _fit_lags(g_abs, floor)
    if last < 2:
        return math.nan
    slope = np.polyfit(lag[1 : last + 1], np.log(g_abs[1 : last + 1]), 1)[0]
    return float(-1.0 / slope) if slope < 0.0 else math.inf


def field_correlation(
    psi: FieldInput,
    lattice: MobiusStrip | TokamakStack,
    *,
    max_lag: int | None = None,
    fit_floor: float = math.exp(-2.0),
    n_resamples: int = 500,
    n_null: int = 49,
    level: float = 0.95,
    seed: Seed = 0,
) -> FieldCorrelation:
    """First-order coherence ``g₁`` along ``u`` through the seam, with correlation length.

    Parameters
    ----------
    psi : Tensor or ndarray, shape ``[T, ..., nu, nv]``, complex
        ``T >= 2`` snapshots on ``lattice`` (extra dims, e.g. strips, are averaged).
    lattice : MobiusStrip or TokamakStack
        Gives the seam rule and twist.
    max_lag : int, optional
        Largest shift in cells; default ``nu // 2``.
    fit_floor : float
        The exponential fit uses lags ``1, 2, …`` up to the first with ``|g₁| < fit_floor``
        (default ``e^{−2}``: about two correlation lengths).
    n_resamples : int
        Snapshot bootstrap replicates (>= 1).
    n_null : int
        Cell-shuffled null fields (whole snapshot set each, >= 1).
    level : float
    seed : int or numpy.random.Generator

    Returns
    -------
    FieldCorrelation

    Raises
    ------
    ValidationError
        Wrong shape or dtype, non-finite values, fewer than 2 snapshots, zero field.
    """
    arr = _snapshots(psi, lattice)
    if arr.shape[0] < 2:
        raise ValidationError(
            f"field_correlation needs >= 2 snapshots to bootstrap, got {arr.shape[0]}"
        )
    level = check_level(level)
    n_resamples = check_count("n_resamples", n_resamples, 1)
    n_null = check_count("n_null", n_null, 1)
    if not 0.0 < fit_floor < 1.0:
        raise ConfigError(f"fit_floor must lie in (0, 1), got {fit_floor!r}")
    chart = chart_of(lattice)
    nu = chart.nu
    max_lag = nu // 2 if max_lag is None else check_count("max_lag", max_lag, 2)
    if max_lag > nu - 1:
        raise ConfigError(f"max_lag = {max_lag} exceeds nu − 1 = {nu - 1}")
    rng = as_generator(seed)
    num = _lag_sums(arr, lattice)[:, : max_lag + 1]  # [T, M]
    den = (np.abs(arr) ** 2).reshape(arr.shape[0], -1).sum(axis=1)  # [T]
    if den.sum() <= 0.0:
        raise ValidationError("psi is identically zero; g1 is undefined")
    lag = np.arange(max_lag + 1, dtype=np.float64) * chart.du
    g1 = num.sum(axis=0) / den.sum()
    xi = _fit_length(lag, np.abs(g1), fit_floor)
    idx = rng.integers(0, arr.shape[0], size=(n_resamples, arr.shape[0]))
    reps = np.abs(num[idx].sum(axis=1) / den[idx].sum(axis=1)[:, None])  # [R, M]
    abs_low, abs_high = pointwise_interval(reps, level)
    xi_reps = np.array([_fit_length(lag, row, fit_floor) for row in reps])
    xi_low, xi_high = percentile_interval(xi_reps, level)
    null = np.empty((n_null, max_lag + 1))
    flat = arr.reshape(arr.shape[0], -1)
    for k in range(n_null):
        shuffled = rng.permuted(flat, axis=1).reshape(arr.shape)
        null[k] = np.abs(_lag_sums(shuffled, lattice)[:, : max_lag + 1].sum(axis=0)) / den.sum()
    _, null_high = pointwise_interval(null, level)
    fit_lags = _fit_lags(np.abs(g1), fit_floor)
    method = (
        f"g1 along u through the seam (flat chart average over cells); interval: bootstrap "
        f"over {arr.shape[0]} snapshots ({n_resamples}); null: {n_null} cell-shuffled "
        f"fields; xi: least squares of log|g1| on lags 1..(first below {fit_floor:.3g})"
    )
    length = Estimate(xi, xi_low, xi_high, 0.0, method=method, level=level)
    return FieldCorrelation(lag, g1, abs_low, abs_high, null_high, length, fit_lags, method)


@dataclass(frozen=True)
class PowerSpectrum:
    """Power along ``u`` per wavenumber, beside white noise.

    Attributes
    ----------
    k : ndarray, shape ``[N]``
        Wavenumbers along ``u`` (radians per length), ascending; ``π m / L + θ / L`` on the
        Möbius band (double cover, ``N = 2 nu``), ``2π m / L + θ / L`` otherwise (``N = nu``).
    power : ndarray, shape ``[N]``
        Mean ``|ψ̂(k)|²`` (field units²); ``power.sum() = ⟨|ψ|²⟩``.
    low, high : ndarray, shape ``[N]``
        Bootstrap interval over snapshots.
    white : float
        Null: the flat spectrum ``⟨|ψ|²⟩ / N`` of white noise with the same power.
    method : str
    level : float
    """

    k: FloatArray
    power: FloatArray
    low: FloatArray
    high: FloatArray
    white: float
    method: str
    level: float


def power_spectrum(
    psi: FieldInput,
    lattice: MobiusStrip | TokamakStack,
    *,
    n_resamples: int = 500,
    level: float = 0.95,
    seed: Seed = 0,
) -> PowerSpectrum:
    """``|FFT along u|²`` averaged over ``v``, strips and snapshots.

    On the Möbius band the field is periodic only on the double cover (period ``2L``), so
    the transform runs over :func:`double_cover` and the band's modes are ``k = π m / L``
    (odd ``m`` need a field odd in ``v``). A seam twist θ makes the field quasi-periodic;
    it is demodulated by ``e^{−iθu/L}`` and the wavenumbers shifted by ``θ / L``.

    Parameters
    ----------
    psi : Tensor or ndarray, shape ``[T, ..., nu, nv]``, complex
        ``T >= 2`` snapshots.
    lattice : MobiusStrip or TokamakStack
    n_resamples, level, seed
        Snapshot bootstrap.

    Returns
    -------
    PowerSpectrum
    """
    arr = _snapshots(psi, lattice)
    if arr.shape[0] < 2:
        raise ValidationError(f"power_spectrum needs >= 2 snapshots, got {arr.shape[0]}")
    level = check_level(level)
    n_resamples = check_count("n_resamples", n_resamples, 1)
    rng = as_generator(seed)
    chart = chart_of(lattice)
    field = double_cover(arr, lattice) if chart.flip else arr
    n = field.shape[-2]
    u = (np.arange(n) + 0.5) * chart.du
    theta = lattice.twist
    demod = np.exp(-1j * theta * u / chart.length)[:, None]
    spec = np.abs(np.fft.fft(field * demod, axis=-2)) ** 2 / n**2  # [T, ..., N, nv]
    per = spec.reshape(arr.shape[0], -1, n, arr.shape[-1]).mean(axis=(1, 3))  # [T, N]
    k = np.asarray(2.0 * np.pi * np.fft.fftfreq(n, d=chart.du) + theta / chart.length, np.float64)
    order = np.argsort(k)
    per = per[:, order]
    idx = rng.integers(0, arr.shape[0], size=(n_resamples, arr.shape[0]))
    low, high = pointwise_interval(per[idx].mean(axis=1), level)
    power = per.mean(axis=0)
    method = (
        f"|FFT_u|^2 / N^2 averaged over v and snapshots ({'double cover, ' if chart.flip else ''}"
        f"twist demodulated); interval: bootstrap over {arr.shape[0]} snapshots "
        f"({n_resamples}); null: white noise of equal power"
    )
    return PowerSpectrum(k[order], power, low, high, float(power.sum() / n), method, level)
