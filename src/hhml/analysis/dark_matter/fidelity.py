"""Phase-invariant fidelity between fields on a lattice, and its exact null model.

The inner product is the lattice L² product with the cell areas ``w`` as
weights (:meth:`~hhml.core.mobius.MobiusStrip.area_weights`),

    ⟨ψ₁, ψ₂⟩ = Σ_x w(x) · conj(ψ₁(x)) · ψ₂(x),

and the fidelity is ``F = |⟨ψ₁, ψ₂⟩| / (‖ψ₁‖ ‖ψ₂‖) ∈ [0, 1]``. It is invariant
under a global phase of either field, so two branches that differ only by a
rotation of the overall phase (a zero mode of the U(1)-symmetric dynamics) have
``F = 1``.

Null model: for independent isotropic complex Gaussian vectors in ``Cⁿ``
(isotropic with respect to the weighted product, i.e. ``ψ = ξ/√w`` with ``ξ``
standard complex normal per node), ``F²`` follows ``Beta(1, n − 1)`` exactly:
mean ``1/n`` and ``P(F ≥ τ) = (1 − τ²)^{n−1}``.

Public names: :func:`inner_product`, :func:`field_norm`, :func:`fidelity`,
:func:`fidelity_matrix`, :func:`phase_aligned_centroid`, :func:`isotropic_gaussian_fields`,
:func:`null_fidelity_survival`, :func:`null_fidelity_squared_mean`,
:func:`degrees_of_freedom`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from hhml.errors import LatticeError

__all__ = [
    "degrees_of_freedom",
    "fidelity",
    "fidelity_matrix",
    "field_norm",
    "inner_product",
    "isotropic_gaussian_fields",
    "null_fidelity_squared_mean",
    "null_fidelity_survival",
    "phase_aligned_centroid",
]


def _check_weights(psi: Tensor, weights: Tensor, name: str) -> int:
    """Number of trailing field dims, after checking ``weights`` matches ``psi``'s tail."""
    if not isinstance(psi, Tensor) or not psi.is_complex():
        raise LatticeError(f"{name} must be a complex torch.Tensor")
    nd = weights.dim()
    if tuple(psi.shape[psi.dim() - nd :]) != tuple(weights.shape) or psi.dim() < nd:
        raise LatticeError(
            f"{name} has shape {tuple(psi.shape)}; its trailing dims must equal the "
            f"area-weight shape {tuple(weights.shape)}"
        )
    return nd


def inner_product(psi1: Tensor, psi2: Tensor, weights: Tensor) -> Tensor:
    """Area-weighted inner product ``Σ w conj(ψ₁) ψ₂`` over the field dims.

    Parameters
    ----------
    psi1, psi2
        Complex fields ``[..., *field_shape]`` (broadcastable leading dims).
    weights
        Real cell areas ``field_shape`` (length²).

    Returns
    -------
    Tensor
        Complex ``[...]`` (field units² · length²).
    """
    nd = _check_weights(psi1, weights, "psi1")
    _check_weights(psi2, weights, "psi2")
    dims = tuple(range(-nd, 0))
    w = weights.to(device=psi1.device, dtype=psi1.real.dtype)
    return (w * psi1.conj() * psi2).sum(dim=dims)


def field_norm(psi: Tensor, weights: Tensor) -> Tensor:
    """Weighted L² norm ``‖ψ‖ = √⟨ψ, ψ⟩``, real ``[...]`` for ``psi`` of ``[..., *field_shape]``."""
    nd = _check_weights(psi, weights, "psi")
    w = weights.to(device=psi.device, dtype=psi.real.dtype)
    sq = w * (psi.real.square() + psi.imag.square())
    return sq.sum(dim=tuple(range(-nd, 0))).sqrt()


def fidelity(psi1: Tensor, psi2: Tensor, weights: Tensor) -> Tensor:
    """Phase-invariant fidelity ``|⟨ψ₁, ψ₂⟩| / (‖ψ₁‖ ‖ψ₂‖)``, real ``[...]`` in [0, 1].

    A zero field has no direction: its fidelity with anything is defined as 0.
    """
    num = inner_product(psi1, psi2, weights).abs()
    den = field_norm(psi1, weights) * field_norm(psi2, weights)
    tiny = torch.finfo(den.dtype).tiny
    return torch.where(den > tiny, num / den.clamp_min(tiny), torch.zeros_like(num)).clamp(0, 1)


def fidelity_matrix(psi: Tensor, weights: Tensor) -> Tensor:
    """All pairwise fidelities of a batch of fields.

    Parameters
    ----------
    psi
        Complex ``[N, *field_shape]``.
    weights
        Real ``field_shape`` cell areas.

    Returns
    -------
    Tensor
        Real symmetric ``[N, N]``, ``F_ab = |⟨ψ_a, ψ_b⟩| / (‖ψ_a‖ ‖ψ_b‖)``; the
        diagonal is 1 for non-zero fields.
    """
    nd = _check_weights(psi, weights, "psi")
    if psi.dim() != nd + 1:
        raise LatticeError(
            f"psi has shape {tuple(psi.shape)}; fidelity_matrix needs [N, *field_shape]"
        )
    w = weights.to(device=psi.device, dtype=psi.real.dtype)
    flat = (psi * w.sqrt()).reshape(psi.shape[0], -1)
    gram = flat.conj() @ flat.T  # ⟨ψ_a, ψ_b⟩
    norms = gram.diagonal().real.clamp_min(0).sqrt()
    den = norms[:, None] * norms[None, :]
    tiny = torch.finfo(den.dtype).tiny
    out = torch.where(den > tiny, gram.abs() / den.clamp_min(tiny), torch.zeros_like(den))
    return out.clamp(0, 1)


def phase_aligned_centroid(psi: Tensor, weights: Tensor) -> Tensor:
    """Mean of ``[N, *field_shape]`` fields after removing each one's global phase.

    Each ``ψ_b`` is rotated by ``e^{−i arg⟨ψ₀, ψ_b⟩}`` (aligned to the first
    field) before averaging, so the centroid does not depend on the arbitrary
    global phases the fidelity ignores. Returns ``field_shape``.
    """
    nd = _check_weights(psi, weights, "psi")
    if psi.dim() != nd + 1:
        raise LatticeError(f"psi has shape {tuple(psi.shape)}; expected [N, *field_shape]")
    overlap = inner_product(psi[:1], psi, weights)  # [N]
    size = overlap.abs()
    tiny = torch.finfo(size.dtype).tiny
    phase = torch.where(size > tiny, overlap / size.clamp_min(tiny), torch.ones_like(overlap))
    rotated = psi * phase.conj().reshape(-1, *([1] * nd))
    return rotated.mean(dim=0)


def isotropic_gaussian_fields(
    n_fields: int, weights: Tensor, generator: torch.Generator, dtype: torch.dtype
) -> Tensor:
    """Fields ``ξ/√w`` that are isotropic complex Gaussian in the weighted product.

    Parameters
    ----------
    n_fields
        Number of fields ``N``.
    weights
        Real ``field_shape`` cell areas.
    generator
        Seeded torch generator (same device as ``weights``).
    dtype
        Complex dtype of the result ``[N, *field_shape]``.
    """
    xi = torch.randn(
        (n_fields, *weights.shape), dtype=dtype, device=weights.device, generator=generator
    )
    return xi / weights.to(xi.real.dtype).sqrt()


def null_fidelity_survival(
    thresholds: NDArray[np.float64] | list[float], n: int
) -> NDArray[np.float64]:
    """``P(F ≥ τ) = (1 − τ²)^{n−1}`` for independent isotropic fields in ``Cⁿ``.

    The retained fraction the pruning curve would show if the branches were
    unrelated to the reference (``n`` = number of complex degrees of freedom).
    """
    tau = np.asarray(thresholds, dtype=np.float64)
    if n < 1:
        raise LatticeError(f"n = {n} is not valid; need at least one degree of freedom")
    with np.errstate(divide="ignore"):
        out = np.exp((n - 1) * np.log1p(-np.clip(tau, 0.0, 1.0) ** 2))
    return np.where(tau <= 0.0, 1.0, out)


def null_fidelity_squared_mean(n: int) -> float:
    """``E[F²] = 1/n`` under the Beta(1, n − 1) null."""
    if n < 1:
        raise LatticeError(f"n = {n} is not valid; need at least one degree of freedom")
    return 1.0 / n


def degrees_of_freedom(field_shape: tuple[int, ...]) -> int:
    """Number of complex degrees of freedom ``n`` of a field of ``field_shape``."""
    return int(math.prod(field_shape))
