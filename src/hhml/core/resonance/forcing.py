"""Spatial profiles of the external forcing: boundary sources and pinning.

Both are computed once per parameter set (host-side randomness from a seeded
NumPy generator, so they never synchronise the device in the step loop).

Boundary sources
    The Möbius band has one boundary circle: row ``j = 0`` followed, through
    the seam, by row ``j = nv−1`` (2·nu source cells). With arc coordinate
    ``s`` (``s = u_i`` on row 0, ``s = L + u_i`` on row nv−1) a source cell
    carries ``(1 + σ_A ζ_k) e^{iΦ(s)}`` with seeded ``ζ_k ~ N(0, 1)`` and
    ``Φ(s) = (mπ + θ) s / L`` on row 0, ``Φ(s) = (mπ + θ) s / L − θ`` on row
    nv−1 (the chart value past the seam is the continued value times
    ``e^{−iθ}``). Every wrapped increment along the circle, the two seam steps
    with their ``e^{iθ}`` factors included, is then the same, and the boundary
    winding is ``W = m + θ/π`` — i.e. ``W − θ/π = m``, the integer that enters
    the parity identity. On the cylinder each edge row is its own circle,
    ``Φ(u) = (2πm + θ) u / L``; the torus has no boundary, and the sources sit
    on row 0 with the cylinder phase.
    The source term of the equation is ``S(x, t) = A · profile(x) · e^{−iωt}``.

Pinning
    ``V(x) = V₀ Σ_p exp(−d_p(x)² / 2r²)`` over ``pinning_sites`` sites drawn
    uniformly in the chart (seeded); ``d_p`` is the chart distance to the
    nearest image of site p under the identification.

Public names: :func:`boundary_cells`, :class:`SourceLayout`, :func:`source_layout`,
:func:`source_profile`, :func:`pinning_profile`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from hhml.core.resonance.imprint import _image_distance

if TYPE_CHECKING:
    from hhml.core.mobius import MobiusStrip


def boundary_cells(
    lattice: MobiusStrip,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Source cells and their boundary arc coordinate.

    Returns
    -------
    i, j, s
        Cell indices ``[K]`` and arc coordinate ``s`` ``[K]`` (length units),
        ordered along the boundary. ``K = 2·nu`` except on the torus (``nu``).
    """
    nu, nv, L = lattice.nu, lattice.nv, lattice.length
    i = np.arange(nu, dtype=np.int64)
    u = np.asarray((i + 0.5) * lattice.du, dtype=np.float64)
    if lattice.topology == "torus":
        return i, np.zeros(nu, dtype=np.int64), u
    ii = np.concatenate([i, i])
    jj = np.concatenate([np.zeros(nu, dtype=np.int64), np.full(nu, nv - 1, dtype=np.int64)])
    s = np.concatenate([u, u + L]) if lattice.topology == "mobius" else np.concatenate([u, u])
    return ii, jj, s


@dataclass(frozen=True)
class SourceLayout:
    """The quenched part of the boundary sources, as device tensors (built once).

    Attributes
    ----------
    i, j : Tensor
        Source cell indices ``[K]`` (int64), ordered along the boundary.
    s : Tensor
        Boundary arc coordinate ``[K]`` (length units), real dtype.
    zeta : Tensor
        Seeded standard normal amplitudes ``ζ_k`` ``[K]``, real dtype.
    second_row : Tensor
        ``[K]`` real, 1 on the cells past the Möbius seam (row nv−1), else 0.
    """

    i: Tensor
    j: Tensor
    s: Tensor
    zeta: Tensor
    second_row: Tensor


def source_layout(lattice: MobiusStrip, seed: int) -> SourceLayout:
    """Source cells, arc coordinates and the seeded amplitudes ``ζ`` on the device."""
    ii, jj, s = boundary_cells(lattice)
    zeta = np.random.default_rng(seed).standard_normal(len(s))
    rd, dev = lattice.real_dtype, lattice.device
    second = (jj == lattice.nv - 1) if lattice.topology == "mobius" else np.zeros(len(s), bool)
    return SourceLayout(
        i=torch.as_tensor(ii, device=dev),
        j=torch.as_tensor(jj, device=dev),
        s=torch.as_tensor(s, dtype=rd, device=dev),
        zeta=torch.as_tensor(zeta, dtype=rd, device=dev),
        second_row=torch.as_tensor(second, device=dev).to(rd),
    )


def source_profile(
    lattice: MobiusStrip,
    winding: Tensor | float,
    spread: Tensor | float,
    seed: int,
    twist: Tensor | float | None = None,
    layout: SourceLayout | None = None,
) -> Tensor:
    """``(1 + σ_A ζ) e^{iΦ}`` on the boundary cells, zero elsewhere.

    Parameters
    ----------
    lattice
        The chart (a single strip).
    winding, spread
        ``m`` and ``σ_A``; floats, or tensors with ``B`` elements (any shape,
        e.g. ``[B, 1, 1]``) for per-batch values.
    seed
        Seed of the quenched amplitudes ζ.
    twist
        Seam twist θ; default the lattice's. A tensor ``[B, 1]`` gives per-batch
        twists (a :class:`~hhml.core.mobius.LatticeEnsemble`).
    layout
        :func:`source_layout` of ``lattice`` and ``seed``, to skip rebuilding it
        (then nothing is copied from the host: the hot path of a batched env).

    Returns
    -------
    Tensor
        Complex profile ``[nu, nv]`` or ``[B, nu, nv]``.
    """
    lay = source_layout(lattice, seed) if layout is None else layout
    rd = lattice.real_dtype
    L = lattice.length
    theta = lattice.twist if twist is None else twist
    per_length = math.pi if lattice.topology == "mobius" else 2.0 * math.pi
    m = winding.reshape(-1, 1).to(rd) if isinstance(winding, Tensor) else winding
    sigma = spread.reshape(-1, 1).to(rd) if isinstance(spread, Tensor) else spread
    phase = (m * per_length + theta) * lay.s / L
    if lattice.topology == "mobius":
        # past the seam the chart value is the smooth value times e^{−iθ}
        phase = phase - theta * lay.second_row
    amp = 1.0 + sigma * lay.zeta
    values = torch.polar(amp * torch.ones_like(phase), phase * torch.ones_like(amp))
    batch = values.shape[:-1]
    out = torch.zeros(*batch, lattice.nu, lattice.nv, dtype=lattice.dtype, device=lattice.device)
    out[..., lay.i, lay.j] = values.to(lattice.dtype)
    return out


def pinning_profile(lattice: MobiusStrip, sites: int, radius: float, seed: int) -> Tensor:
    """Unit-strength pinning landscape ``Σ_p exp(−d_p²/2r²)``, real ``[nu, nv]``."""
    rng = np.random.default_rng(seed)
    out = torch.zeros(lattice.nu, lattice.nv, dtype=lattice.real_dtype, device=lattice.device)
    if sites == 0:
        return out
    uu, vv = lattice.coordinates()
    w = lattice.half_width
    sites_u = rng.uniform(0, lattice.length, sites)
    sites_v = rng.uniform(-w, w, sites)
    for u0, v0 in zip(sites_u, sites_v, strict=True):
        d = _image_distance(lattice, uu, vv, float(u0), float(v0))
        out += torch.exp(-(d**2) / (2.0 * radius**2))
    return out
