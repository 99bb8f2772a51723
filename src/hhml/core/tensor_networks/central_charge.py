"""Central-charge fits of entanglement profiles with the Calabrese–Cardy formula.

For the ground state of a periodic chain of ``L`` sites described at long distances by a
CFT of central charge ``c``, a block of ``ℓ`` contiguous sites has

    ``S(ℓ) = (c/3) ln[(L/π) sin(πℓ/L)] + c′``

(Calabrese & Cardy, J. Stat. Mech. P06002, 2004). :func:`fit_central_charge` is the linear
least-squares fit of ``S`` against the chord length ``x = (1/3) ln[(L/π) sin(πℓ/L)]`` over a
window ``ℓ_min ≤ ℓ ≤ L − ℓ_min`` that leaves out the short blocks where lattice corrections
are largest.

Public names: :class:`CentralChargeFit`, :func:`chord_log`, :func:`fit_central_charge`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hhml.errors import ConfigError


@dataclass(frozen=True)
class CentralChargeFit:
    """Result of a Calabrese–Cardy fit.

    Attributes
    ----------
    central_charge : float
        Fitted ``c``.
    offset : float
        Fitted non-universal constant ``c′`` (nats).
    stderr : float
        Least-squares standard error of ``c`` (statistical only: the residuals are lattice
        corrections, not noise, so this understates the systematic error).
    ell_min, ell_max : int
        Fit window (block lengths, inclusive).
    n_points : int
        Number of block lengths used.
    residual_rms : float
        Root-mean-square residual of the fit (nats).
    """

    central_charge: float
    offset: float
    stderr: float
    ell_min: int
    ell_max: int
    n_points: int
    residual_rms: float

    def interval(self, k: float = 2.0) -> tuple[float, float]:
        """``c ± k·stderr``."""
        return (self.central_charge - k * self.stderr, self.central_charge + k * self.stderr)


def chord_log(lengths: NDArray[np.integer], L: int) -> NDArray[np.float64]:
    """``ln[(L/π) sin(πℓ/L)]`` for block lengths ``ℓ`` of a periodic chain of ``L`` sites."""
    ells = np.asarray(lengths, dtype=np.float64)
    return np.asarray(np.log(L / np.pi * np.sin(np.pi * ells / L)), dtype=np.float64)


def fit_central_charge(
    lengths: NDArray[np.integer],
    entropies: NDArray[np.floating],
    L: int,
    ell_min: int | None = None,
    ell_max: int | None = None,
) -> CentralChargeFit:
    """Fit ``S(ℓ) = (c/3) ln[(L/π) sin(πℓ/L)] + c′`` by least squares.

    Parameters
    ----------
    lengths : ndarray of int, shape ``[n]``
        Block lengths ``ℓ`` (``0 < ℓ < L`` are usable).
    entropies : ndarray, shape ``[n]``
        Von Neumann entropies ``S(ℓ)`` in nats.
    L : int
        Chain length (periodic).
    ell_min : int, optional
        Smallest block length in the fit; default ``max(2, L // 16)``.
    ell_max : int, optional
        Largest block length; default ``L − ell_min``.

    Returns
    -------
    CentralChargeFit

    Raises
    ------
    ConfigError
        Mismatched shapes or fewer than 3 points in the window.
    """
    ells = np.asarray(lengths, dtype=np.int64)
    s = np.asarray(entropies, dtype=np.float64)
    if ells.shape != s.shape or ells.ndim != 1:
        raise ConfigError(f"lengths {ells.shape} and entropies {s.shape} must be equal 1-D shapes")
    lo = max(2, L // 16) if ell_min is None else int(ell_min)
    hi = L - lo if ell_max is None else int(ell_max)
    mask = (ells >= max(lo, 1)) & (ells <= min(hi, L - 1))
    if int(mask.sum()) < 3:
        raise ConfigError(
            f"fit window ℓ ∈ [{lo}, {hi}] holds {int(mask.sum())} points of L={L}; need ≥ 3"
        )
    x = chord_log(ells[mask], L) / 3.0
    y = s[mask]
    design = np.stack([x, np.ones_like(x)], axis=1)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    n = int(mask.sum())
    dof = max(n - 2, 1)
    sigma2 = float(resid @ resid) / dof
    cov = sigma2 * np.linalg.inv(design.T @ design)
    return CentralChargeFit(
        central_charge=float(coef[0]),
        offset=float(coef[1]),
        stderr=float(np.sqrt(cov[0, 0])),
        ell_min=int(ells[mask].min()),
        ell_max=int(ells[mask].max()),
        n_points=n,
        residual_rms=float(np.sqrt(np.mean(resid**2))),
    )
