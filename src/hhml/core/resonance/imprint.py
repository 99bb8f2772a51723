"""Imprinting vortices consistently with the seam identification.

A vortex of charge ``q`` at chart point ``z₀ = u₀ + i v₀`` is imprinted by
multiplying the field with ``F = ρ(z) e^{iΦ(z)}``, where the phase ``Φ`` is
single-valued on the band and winds by ``2πq`` around ``z₀`` only:

- Möbius: lift to the double cover (a cylinder of length 2L on which the deck
  map ``σ(u, v) = (u+L, −v)`` reverses orientation). With
  ``φ₁(z) = q·arg(e^{iπ(z−z₀)/L} − 1)`` (2L-periodic, one zero at ``z₀``),
  ``Φ = φ₁ + φ₁∘σ`` satisfies ``Φ∘σ = Φ``, i.e. ``F(u+L, v) = F(u, −v)``.
  The image zero of ``φ₁∘σ`` (charge −q, at ``σ⁻¹(z₀)``) lies outside the
  fundamental domain — it is ``z₀`` itself seen through the seam.
- Cylinder: ``Φ = q·arg(e^{2πi(z−z₀)/L} − 1)`` (L-periodic).
- Torus: only neutral pairs exist on a closed orientable surface; a pair gets
  a small linear phase in v that makes the phase periodic across ``v = ±w``.

The amplitude is ``ρ = tanh(d/ξ)^{|q|}`` with ``d`` the chart distance to the
nearest image of ``z₀`` and ξ the core radius. ``F`` satisfies the untwisted
identification, so ``ψ·F`` keeps the field's own twist θ.

Public names: :func:`imprint_vortex`, :func:`imprint_pair`, :func:`vortex_factor`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from hhml.errors import LatticeError

if TYPE_CHECKING:
    from hhml.core.mobius import MobiusStrip

ScalarOrTensor = float | Tensor


def _arg_exp_minus_one(a: Tensor, b: Tensor) -> Tensor:
    """``arg(e^{a+ib} − 1)`` without overflow for large ``a``."""
    big = a > 0
    # for a > 0: e^{a+ib} − 1 = e^{a} (e^{ib} − e^{−a}) and e^{a} > 0 does not change arg
    ea = torch.exp(torch.where(big, -a, a))
    re = torch.where(big, torch.cos(b) - ea, ea * torch.cos(b) - 1.0)
    im = torch.where(big, torch.sin(b), ea * torch.sin(b))
    return torch.atan2(im, re)


def _image_distance(
    lattice: MobiusStrip, uu: Tensor, vv: Tensor, u0: ScalarOrTensor, v0: ScalarOrTensor
) -> Tensor:
    """Chart distance from every node to the nearest image of ``(u0, v0)``."""
    L, w = lattice.length, lattice.half_width
    images: list[tuple[float, float]] = [(0.0, 1.0), (L, 1.0), (-L, 1.0)]
    if lattice.topology == "mobius":
        images = [(0.0, 1.0), (2 * L, 1.0), (-2 * L, 1.0), (L, -1.0), (-L, -1.0)]
    best: Tensor | None = None
    v_shifts = [0.0, 2 * w, -2 * w] if lattice.periodic_v else [0.0]
    for du_shift, v_sign in images:
        for dv_shift in v_shifts:
            d2 = (uu - (u0 + du_shift)) ** 2 + (vv - (v_sign * v0 + dv_shift)) ** 2
            best = d2 if best is None else torch.minimum(best, d2)
    assert best is not None
    return torch.sqrt(best)


def _phase(
    lattice: MobiusStrip, uu: Tensor, vv: Tensor, u0: ScalarOrTensor, v0: ScalarOrTensor
) -> Tensor:
    """Unit-charge phase field Φ around ``(u0, v0)`` (radians), see module docstring."""
    L = lattice.length
    if lattice.topology == "mobius":
        k = math.pi / L
        # φ₁(z) = arg(e^{ik(z − z0)} − 1):  ik(z − z0) = −k(v − v0) + i k(u − u0)
        direct = _arg_exp_minus_one(-k * (vv - v0), k * (uu - u0))
        # φ₁(σ z) with σ z = (u + L) − i v
        image = _arg_exp_minus_one(k * (vv + v0), k * (uu + L - u0))
        return direct + image
    k = 2.0 * math.pi / L
    return _arg_exp_minus_one(-k * (vv - v0), k * (uu - u0))


def vortex_factor(
    lattice: MobiusStrip,
    position: tuple[ScalarOrTensor, ScalarOrTensor],
    charge: int,
    core_radius: float,
) -> Tensor:
    """The multiplicative imprint ``F = ρ e^{iqΦ}`` of one vortex.

    Parameters
    ----------
    lattice
        A :class:`~hhml.core.mobius.MobiusStrip` (use one strip of a stack).
    position
        ``(u0, v0)`` chart coordinates; floats, or tensors broadcastable to
        ``[..., 1, 1]`` for per-batch positions.
    charge
        Integer winding ``q`` (chart orientation).
    core_radius
        ξ in ``tanh(d/ξ)`` (length units); ≤ 0 means no amplitude core.

    Returns
    -------
    Tensor
        Complex factor of shape ``[..., nu, nv]`` on the lattice's device.
    """
    uu, vv = lattice.coordinates()
    u0, v0 = position
    phase = charge * _phase(lattice, uu, vv, u0, v0)
    factor = torch.polar(torch.ones_like(phase), phase)
    if core_radius > 0 and charge != 0:
        d = _image_distance(lattice, uu, vv, u0, v0)
        factor = factor * torch.tanh(d / core_radius) ** abs(charge)
    return factor.to(lattice.dtype)


def _check_position(lattice: MobiusStrip, position: tuple[float, float]) -> None:
    u0, v0 = position
    if not (0.0 <= u0 < lattice.length) or not (-lattice.half_width < v0 < lattice.half_width):
        raise LatticeError(
            f"position = {position} is outside the chart; need 0 ≤ u < {lattice.length:g} "
            f"and |v| < {lattice.half_width:g}"
        )


def imprint_vortex(
    psi: Tensor,
    lattice: MobiusStrip,
    position: tuple[float, float],
    charge: int = 1,
    core_radius: float = 0.1,
) -> Tensor:
    """Return ``psi`` with one vortex of integer ``charge`` imprinted at ``position``.

    ``psi`` has shape ``[..., nu, nv]``; the result has the same shape and
    dtype. Not available on the torus (a closed orientable surface carries
    zero net charge): use :func:`imprint_pair`.
    """
    lattice.check_field(psi)
    if isinstance(charge, bool) or not isinstance(charge, int):
        raise LatticeError(f"charge = {charge!r} is not valid; it must be an integer")
    if lattice.topology == "torus":
        raise LatticeError(
            "imprint_vortex: a single vortex cannot be imprinted on a torus (net charge "
            "must be zero); use imprint_pair"
        )
    _check_position(lattice, position)
    return psi * vortex_factor(lattice, position, charge, core_radius).to(psi.dtype)


def imprint_pair(
    psi: Tensor,
    lattice: MobiusStrip,
    position: tuple[float, float],
    separation: float,
    charge: int = 1,
    core_radius: float = 0.1,
) -> Tensor:
    """Imprint a vortex (``+charge``) and an antivortex (``−charge``).

    They sit at ``position ∓ (separation/2, 0)`` along u (wrapped through the
    seam with the identification if needed) — a neutral, locally created pair.
    """
    lattice.check_field(psi)
    _check_position(lattice, position)
    rd, dev = lattice.real_dtype, lattice.device
    u0, v0 = (torch.tensor([x], dtype=rd, device=dev) for x in position)
    sign = torch.tensor([float(charge)], dtype=rd, device=dev)
    factor = pair_factors(lattice, u0, v0, separation, sign, core_radius, abs(charge))[0]
    return psi * factor.to(psi.dtype)


def pair_factors(
    lattice: MobiusStrip,
    u0: Tensor,
    v0: Tensor,
    separation: float,
    sign: Tensor,
    core_radius: float,
    abs_charge: int = 1,
) -> Tensor:
    """Multiplicative imprints of ``M`` neutral pairs at once (batched :func:`imprint_pair`).

    Parameters
    ----------
    lattice
        The chart (one strip).
    u0, v0
        Pair centres ``[M]`` (chart coordinates, length units), inside the chart.
    separation
        Distance between the two cores along u (length units).
    sign
        ``[M]`` real, ±|q|: the charge of the first core (at ``u0 − separation/2``).
    core_radius
        ξ of the ``tanh(d/ξ)^{|q|}`` amplitude (≤ 0: none).
    abs_charge
        ``|q|``, the same for every pair.

    Returns
    -------
    Tensor
        Complex factors ``[M, nu, nv]`` of the lattice's dtype. No host
        synchronisation: positions and charges stay tensors.
    """
    uu, vv = lattice.coordinates()
    shape = (-1, 1, 1)
    factor: Tensor | None = None
    wrapped_u = []
    for offset, first in ((-0.5 * separation, True), (0.5 * separation, False)):
        u, v, orientation = _wrap_tensor(lattice, u0 + offset, v0)
        wrapped_u.append(u)
        # crossing the Möbius seam flips the chart orientation, hence the chart charge
        q = (sign if first else -sign) * orientation
        uc, vc, qc = u.reshape(shape), v.reshape(shape), q.reshape(shape)
        phase = qc * _phase(lattice, uu, vv, uc, vc)
        f = torch.polar(torch.ones_like(phase), phase)
        if core_radius > 0 and abs_charge != 0:
            d = _image_distance(lattice, uu, vv, uc, vc)
            f = f * torch.tanh(d / core_radius) ** abs_charge
        factor = f if factor is None else factor * f
    assert factor is not None
    if lattice.topology == "torus":
        # the pair's phase jumps by `gauge` across v = ±w; a linear ramp removes the jump
        du = (wrapped_u[0] - wrapped_u[1]).reshape(shape)
        gauge = 2.0 * math.pi * sign.reshape(shape) * du / lattice.length
        ramp = gauge * (vv + lattice.half_width) / (2 * lattice.half_width)
        factor = factor * torch.polar(torch.ones_like(ramp), -ramp)
    return factor.to(lattice.dtype)


def _wrap_tensor(lattice: MobiusStrip, u: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Map chart points with u outside [0, L) back: ``(u, v, orientation sign)``, each ``[M]``."""
    L = lattice.length
    n = torch.floor(u / L)
    wrapped = u - n * L
    if lattice.topology != "mobius":
        return wrapped, v, torch.ones_like(u)
    odd = torch.remainder(n, 2.0) != 0
    return wrapped, torch.where(odd, -v, v), torch.where(odd, -1.0, 1.0).to(u.dtype)
