"""Per-environment measurements of a batched field: the observation features.

All functions take a field ``psi`` of shape ``[B, S, nu, nv]`` on a
:class:`~hhml.core.mobius.LatticeEnsemble` (or the vortices found in it) and
return one value per environment, ``[B]``.

Public names: ``mean_wavenumber_squared``, ``field_moments``, ``moment_tensors``,
``hexatic_order``, ``berry_dennis_density``.
"""

from __future__ import annotations

import math
from typing import overload

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from hhml.core.mobius import LatticeEnsemble
from hhml.ml.env.measure_kernel import moment_sums_cpu

__all__ = [
    "berry_dennis_density",
    "field_moments",
    "hexatic_order",
    "mean_wavenumber_squared",
    "moment_tensors",
]

FloatArray = npt.NDArray[np.float64]


def field_moments(psi: Tensor, lattice: LatticeEnsemble) -> dict[str, FloatArray]:
    """:func:`moment_tensors` as float64 NumPy arrays ``[B]`` (a host copy)."""
    return {
        k: v.detach().to("cpu", torch.float64).numpy()
        for k, v in moment_tensors(psi, lattice).items()
    }


def moment_tensors(psi: Tensor, lattice: LatticeEnsemble) -> dict[str, Tensor]:
    """Area-weighted moments of the field, per environment, on the field's device.

    Returns
    -------
    dict
        ``norm`` ⟨|ψ|²⟩, ``quartic`` ⟨|ψ|⁴⟩, ``gradient`` ⟨|∇ψ|²⟩ = −Re⟨ψ, Δψ⟩ / area
        (1/length² × field²; exact summation by parts for the seam-aware
        finite-volume Laplacian), and ``k2`` = gradient / norm, the mean squared
        wavenumber ⟨k²⟩ (1/length²). Each ``[B]`` float64 tensor.

    Notes
    -----
    On the CPU, for an embedded ensemble, the C++ pass
    :func:`~hhml.ml.env.measure_kernel.moment_sums_cpu` computes the same per-node
    products and sums them in float64 (the torch code sums in the field's precision): the
    results differ by the rounding of those sums (~1e-7 relative for complex64).
    """
    sums = moment_sums_cpu(psi, lattice) if psi.device.type == "cpu" else None
    if sums is not None:  # the C++ pass: the same products, float64 sums
        s = sums.sum(dim=1)
        total, norm = s[:, 0], s[:, 1] / s[:, 0]
        tiny64 = torch.finfo(psi.real.dtype).tiny
        grad64 = (-s[:, 3] / total).clamp_min(0.0)
        return {
            "norm": norm,
            "quartic": s[:, 2] / total,
            "gradient": grad64,
            "k2": grad64 / norm.clamp_min(tiny64),
        }
    area = lattice.area_weights().to(psi.real.dtype)
    total = area.sum(dim=(-3, -2, -1))
    dens = psi.real.square() + psi.imag.square()
    norm = (area * dens).sum(dim=(-3, -2, -1)) / total
    quartic = (area * dens.square()).sum(dim=(-3, -2, -1)) / total
    lap = lattice.laplacian(psi)
    grad = -(area * (psi.conj() * lap).real).sum(dim=(-3, -2, -1)) / total
    grad = grad.clamp_min(0.0)
    tiny = torch.finfo(norm.dtype).tiny
    k2 = grad / norm.clamp_min(tiny)
    out = {"norm": norm, "quartic": quartic, "gradient": grad, "k2": k2}
    return {k: v.detach().to(torch.float64) for k, v in out.items()}


def mean_wavenumber_squared(psi: Tensor, lattice: LatticeEnsemble) -> FloatArray:
    """⟨k²⟩ = ⟨|∇ψ|²⟩/⟨|ψ|²⟩ per environment (1/length²), ``[B]``."""
    return field_moments(psi, lattice)["k2"]


@overload
def berry_dennis_density(k2: Tensor, plaquette_area: float | FloatArray) -> Tensor: ...


@overload
def berry_dennis_density(k2: FloatArray, plaquette_area: float | FloatArray) -> FloatArray: ...


def berry_dennis_density(
    k2: FloatArray | Tensor, plaquette_area: float | FloatArray
) -> FloatArray | Tensor:
    """Vortices per plaquette of an isotropic Gaussian random field with ⟨k²⟩ = ``k2``.

    Berry & Dennis (Proc. R. Soc. A 456, 2059 (2000)): phase singularities of an
    isotropic Gaussian random wave field have density ``⟨k²⟩/(4π)`` per unit
    area. Multiplying by the plaquette area gives the null-model value to set
    beside the measured vortex density (capped at 1).
    """
    if isinstance(k2, Tensor):
        area = (
            plaquette_area
            if isinstance(plaquette_area, float)
            else torch.as_tensor(plaquette_area, dtype=k2.dtype, device=k2.device)
        )
        return torch.clamp(k2 / (4.0 * math.pi) * area, max=1.0)
    return np.minimum(np.asarray(k2) / (4.0 * math.pi) * plaquette_area, 1.0)


def _chart_displacements(
    p: FloatArray, length: float, half_width: float, topology: str
) -> tuple[FloatArray, FloatArray]:
    """Shortest chart displacements ``(du, dv)`` ``[n, n]`` between points ``p [n, 2]``.

    The images of a point under the identification are ``(u ± L, ∓v)`` on the
    Möbius band and ``(u ± L, v)`` otherwise (and ``v ± 2w`` on the torus).
    """
    u, v = p[:, 0], p[:, 1]
    flip = -1.0 if topology == "mobius" else 1.0
    best_d2 = np.full((len(p), len(p)), np.inf)
    best_du = np.zeros_like(best_d2)
    best_dv = np.zeros_like(best_d2)
    images = [(0.0, 1.0), (length, flip), (-length, flip)]
    v_shifts = [0.0, 2 * half_width, -2 * half_width] if topology == "torus" else [0.0]
    for shift, sign in images:
        for vs in v_shifts:
            du = (u[None, :] + shift) - u[:, None]
            dv = (sign * v[None, :] + vs) - v[:, None]
            d2 = du * du + dv * dv
            better = d2 < best_d2
            best_d2 = np.where(better, d2, best_d2)
            best_du = np.where(better, du, best_du)
            best_dv = np.where(better, dv, best_dv)
    return best_du, best_dv


def hexatic_order(
    positions: FloatArray,
    length: float,
    half_width: float,
    topology: str,
    min_points: int,
    neighbours: int = 6,
) -> float:
    """Mean local bond-orientational order ⟨|ψ₆|⟩ of a point set on the band.

    ``ψ₆(j) = (1/6) Σ_k e^{6iθ_jk}`` over the 6 nearest neighbours of point ``j``
    (shortest chart displacements through the identification); the result is
    the mean of ``|ψ₆(j)|`` over all points: 1 for a perfect triangular lattice,
    ≈ 0.3–0.4 for uniformly random points. Returns 0 for fewer than
    ``min_points`` points.
    """
    n = len(positions)
    if n < max(min_points, neighbours + 1):
        return 0.0
    du, dv = _chart_displacements(
        np.asarray(positions, dtype=np.float64), length, half_width, topology
    )
    d2 = du * du + dv * dv
    np.fill_diagonal(d2, np.inf)
    nearest = np.argsort(d2, axis=1)[:, :neighbours]
    rows = np.arange(n)[:, None]
    angles = np.arctan2(dv[rows, nearest], du[rows, nearest])
    psi6 = np.exp(6j * angles).mean(axis=1)
    return float(np.abs(psi6).mean())
