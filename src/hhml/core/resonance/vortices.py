"""Vortices as plaquette phase windings (the fixed detector).

A vortex is a plaquette around which the phase winds by a non-zero multiple
of 2π. Nothing here has a tunable threshold: the charge of a plaquette is a
property of the four corner values alone.

Plaquette ``(i, j)`` has corners ``(i,j) → (i+1,j) → (i+1,j+1) → (i,j+1)``
(counter-clockwise in the chart orientation (u, v)); corners with ``i+1 = nu``
are the seam neighbours of docs/physics.md, including the ``e^{iθ}`` factor. The
charge is ``Σ wrap(Δ arg)/2π`` over the four directed edges, with the wrapped
phase difference computed as ``arg(ψ_b · conj(ψ_a)) ∈ (−π, π]``. A corner
with ψ = 0 exactly has no phase (it contributes arg(0) = 0), so a field that
is identically zero has no vortices.

Public names: :func:`winding_numbers`, :func:`detect_vortices`,
:class:`VortexSet`, :func:`vortex_density`, :func:`core_positions`,
:data:`IID_PHASE_VORTEX_FRACTION`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from hhml.core.mobius.neighbours import u_plus
from hhml.core.mobius.stack import chart_of

if TYPE_CHECKING:
    from hhml.core.mobius import MobiusStrip, TokamakStack

#: Null model: i.i.d. uniform phases on the corners of a square plaquette give a
#: non-zero winding with probability exactly 1/3.
IID_PHASE_VORTEX_FRACTION = 1.0 / 3.0


def _edge_angles(psi: Tensor, lattice: MobiusStrip | TokamakStack) -> Tensor:
    """Sum of the four wrapped edge phase differences of every plaquette (radians)."""
    chart = chart_of(lattice)
    up = u_plus(psi, chart.flip, lattice.seam_phase)  # corner (i+1, j) for every (i, j)
    if chart.periodic_v:
        a, b = psi, up
        c, d = torch.roll(up, -1, dims=-1), torch.roll(psi, -1, dims=-1)
    else:
        a, b = psi[..., :, :-1], up[..., :, :-1]
        c, d = up[..., :, 1:], psi[..., :, 1:]
    total = (
        torch.angle(b * a.conj())
        + torch.angle(c * b.conj())
        + torch.angle(d * c.conj())
        + torch.angle(a * d.conj())
    )
    return total


def winding_numbers(psi: Tensor, lattice: MobiusStrip | TokamakStack) -> Tensor:
    """Integer plaquette charges.

    Parameters
    ----------
    psi
        Complex field ``[..., nu, nv]`` (``[..., S, nu, nv]`` for a stack).
    lattice
        The lattice ``psi`` lives on (seam rule, twist, topology).

    Returns
    -------
    Tensor
        ``int64`` charges of shape ``[..., nu, nv−1]`` (``[..., nu, nv]`` for a
        torus); entry ``(i, j)`` is the plaquette with lower-left corner ``(i, j)``.
    """
    lattice.check_field(psi)
    return torch.round(_edge_angles(psi, lattice) / (2.0 * math.pi)).to(torch.int64)


def vortex_density(charges: Tensor) -> Tensor:
    """Fraction of plaquettes with non-zero charge, over the last two dims.

    Compare with :data:`IID_PHASE_VORTEX_FRACTION` (1/3) for a field of
    independent uniform random phases.
    """
    return (charges != 0).to(torch.float64).mean(dim=(-2, -1))


@dataclass(frozen=True)
class VortexSet:
    """Vortices found in a (possibly batched) field.

    Attributes
    ----------
    index : Tensor
        ``[K, ndim]`` int64 plaquette multi-index (leading batch/strip dims, then i, j).
    position : Tensor
        ``[K, 2]`` chart position ``(u, v)`` refined inside the plaquette
        (zero of the bilinear interpolant), lattice length units.
    charge : Tensor
        ``[K]`` int64 winding numbers in the chart orientation at ``position``.
        This is the plaquette's winding, except for a Möbius seam plaquette
        (i = nu−1) whose refined core lies past u = L: its position is mapped
        through the identification to ``(u − L, −v)`` and its chart charge
        changes sign there.
    depth : Tensor
        ``[K]`` core depth ``1 − mean|ψ_corner| / rms|ψ|`` of the field (1 for a
        perfect zero at the core, ~0 for a shallow phase defect).
    """

    index: Tensor
    position: Tensor
    charge: Tensor
    depth: Tensor

    def __len__(self) -> int:
        return int(self.charge.shape[0])

    def __repr__(self) -> str:
        """A summary (count by sign, index layout, device), never the tensors themselves."""
        n = len(self)
        positive = int((self.charge > 0).sum()) if n else 0
        negative = int((self.charge < 0).sum()) if n else 0
        return (
            f"VortexSet({n} vortices: {positive} positive, {negative} negative; "
            f"index [K, {int(self.index.shape[1])}], device={self.charge.device})"
        )


def detect_vortices(psi: Tensor, lattice: MobiusStrip | TokamakStack) -> VortexSet:
    """Find all non-zero-winding plaquettes, with sub-cell positions.

    Works batched: any leading dimensions of ``psi`` appear as the leading
    columns of :attr:`VortexSet.index`.
    """
    charges = winding_numbers(psi, lattice)
    chart = chart_of(lattice)
    idx = torch.nonzero(charges, as_tuple=False)
    up = u_plus(psi, chart.flip, lattice.seam_phase)
    if chart.periodic_v:
        corners = (psi, up, torch.roll(up, -1, dims=-1), torch.roll(psi, -1, dims=-1))
    else:
        corners = (psi[..., :, :-1], up[..., :, :-1], up[..., :, 1:], psi[..., :, 1:])
    sel = tuple(idx.T)
    f00, f10, f11, f01 = (c[sel] for c in corners)
    u, v, charge = core_positions(
        chart, idx[:, -2], idx[:, -1], charges[sel], corners=(f00, f10, f11, f01)
    )
    # rms per field (over the last two dims), so a batch neighbour cannot change a depth
    rms_field = psi.abs().pow(2).mean(dim=(-2, -1)).sqrt()
    rms = rms_field[tuple(idx[:, :-2].T)] if idx.shape[1] > 2 else rms_field.expand(len(idx))
    rms = rms.clamp_min(torch.finfo(chart.u.dtype).tiny)
    mean_corner = (f00.abs() + f10.abs() + f11.abs() + f01.abs()) / 4.0
    depth = (1.0 - mean_corner / rms).clamp(0.0, 1.0)
    return VortexSet(
        index=idx,
        position=torch.stack([u, v], dim=-1),
        charge=charge,
        depth=depth,
    )


def core_positions(
    chart: MobiusStrip, i: Tensor, j: Tensor, charge: Tensor, corners: tuple[Tensor, ...]
) -> tuple[Tensor, Tensor, Tensor]:
    """Refined core positions ``(u, v)`` and chart charges of plaquettes ``(i, j)``.

    ``corners`` are the plaquettes' ``(f00, f10, f11, f01)`` (seam factors applied);
    every argument has the same shape ``[...]``. The core is the zero of the bilinear
    interpolant; a core refined past ``u = L`` is mapped through the identification.
    """
    s, t = _bilinear_zero(*corners)
    u = (i.to(chart.u.dtype) + 0.5 + s) * chart.du
    v = -chart.half_width + (j.to(chart.u.dtype) + 0.5 + t) * chart.dv
    past_seam = u >= chart.length
    u = torch.where(past_seam, u - chart.length, u)
    if chart.flip:
        # a core refined past u = L lies in the chart at (u − L, −v), where the
        # orientation — and so the chart charge — is reversed
        v = torch.where(past_seam, -v, v)
        charge = torch.where(past_seam, -charge, charge)
    if chart.periodic_v:
        v = torch.remainder(v + chart.half_width, 2 * chart.half_width) - chart.half_width
    return u, v, charge


def _bilinear_zero(f00: Tensor, f10: Tensor, f11: Tensor, f01: Tensor) -> tuple[Tensor, Tensor]:
    """Zero ``(s, t) ∈ [0, 1]²`` of the bilinear interpolant of four complex corners.

    A few Newton steps from the plaquette centre, clamped to the plaquette.
    """
    s = torch.full_like(f00.real, 0.5)
    t = torch.full_like(f00.real, 0.5)
    a, b, c, d = f00, f10 - f00, f01 - f00, f00 - f10 - f01 + f11
    for _ in range(8):
        f = a + b * s + c * t + d * s * t
        fs, ft = b + d * t, c + d * s
        # real 2×2 Jacobian of (Re f, Im f) w.r.t. (s, t)
        det = fs.real * ft.imag - ft.real * fs.imag
        det = torch.where(det.abs() > 1e-30, det, torch.full_like(det, 1e-30))
        ds = (f.real * ft.imag - ft.real * f.imag) / det
        dt = (fs.real * f.imag - f.real * fs.imag) / det
        s = (s - ds).clamp(0.0, 1.0)
        t = (t - dt).clamp(0.0, 1.0)
    return s, t
