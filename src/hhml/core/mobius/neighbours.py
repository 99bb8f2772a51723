"""Neighbour shifts on a band lattice, with the seam identification.

These are the hot-path primitives every stencil is built from. A field has
shape ``[..., nu, nv]``; the shifts act on the last two dimensions only, so
leading batch (and strip) dimensions pass through.

Seam rule (docs/physics.md, geometry): the +u neighbour of ``(nu−1, j)`` is
``e^{iθ} ψ(0, nv−1−j)`` on the Möbius band (``flip=True``) and
``e^{iθ} ψ(0, j)`` on cylinder/torus. The −u neighbour of ``(0, j)`` is the
inverse map: ``e^{−iθ} ψ(nu−1, nv−1−j)`` (resp. without the flip).

Public names: :func:`u_plus`, :func:`u_minus`, :func:`v_plus`, :func:`v_minus`.
"""

from __future__ import annotations

import torch
from torch import Tensor


def u_plus(psi: Tensor, flip: bool, phase: complex | Tensor | None = None) -> Tensor:
    """Value of the +u neighbour at every node, shape as ``psi``.

    ``phase`` is ``e^{iθ}`` (None for θ = 0 or for real coefficient arrays); a
    complex tensor broadcastable to ``psi[..., :1, :]`` gives one phase per element.
    """
    seam = psi[..., :1, :]
    if flip:
        seam = seam.flip(-1)
    if phase is not None:
        seam = seam * phase
    return torch.cat([psi[..., 1:, :], seam], dim=-2)


def u_minus(psi: Tensor, flip: bool, phase: complex | Tensor | None = None) -> Tensor:
    """Value of the −u neighbour at every node; ``phase`` is the same ``e^{iθ}``
    as in :func:`u_plus` (its conjugate is applied here)."""
    seam = psi[..., -1:, :]
    if flip:
        seam = seam.flip(-1)
    if phase is not None:
        seam = seam * (phase.conj() if isinstance(phase, Tensor) else phase.conjugate())
    return torch.cat([seam, psi[..., :-1, :]], dim=-2)


def v_plus(psi: Tensor, periodic: bool, ghost_sign: float) -> Tensor:
    """Value of the +v neighbour; beyond the edge ``v = +w`` the cell-centred
    ghost is ``ghost_sign · ψ(edge)`` (−1 Dirichlet, +1 Neumann)."""
    edge = psi[..., :, :1] if periodic else psi[..., :, -1:] * ghost_sign
    return torch.cat([psi[..., :, 1:], edge], dim=-1)


def v_minus(psi: Tensor, periodic: bool, ghost_sign: float) -> Tensor:
    """Value of the −v neighbour; ghost rule as in :func:`v_plus`."""
    edge = psi[..., :, -1:] if periodic else psi[..., :, :1] * ghost_sign
    return torch.cat([edge, psi[..., :, :-1]], dim=-1)
