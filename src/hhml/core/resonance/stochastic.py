"""The stochastic increments applied after each deterministic step (operator splitting).

Thermal noise (Euler–Maruyama): ``ψ ← ψ + √(2T·dt)·ξ`` with ``ξ`` a standard complex
normal per node (``⟨|ξ|²⟩ = 1``). Pair seeding: with probability ``pair_seeding·dt`` per
step and batch element, a vortex–antivortex pair is imprinted at a random place. Every
random number comes from the ``torch.Generator`` passed in, so a seeded simulator
replays exactly.

Public names: :class:`NoiseIncrement`, :func:`seed_pairs`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from hhml.core.mobius import MobiusStrip, TokamakStack
from hhml.core.resonance.imprint import pair_factors
from hhml.core.resonance.imprint_kernel import cpp_pair_factors
from hhml.utils.host_sync import device_paths_only

__all__ = ["NoiseIncrement", "seed_pairs"]


class NoiseIncrement:
    """``ψ + amplitude·√dt·ξ``, drawing ξ into a buffer kept between steps."""

    def __init__(self) -> None:
        self._buffer: Tensor | None = None

    def apply(
        self,
        psi: Tensor,
        amplitude: float | Tensor,
        dt: float,
        generator: torch.Generator,
        in_place: bool,
    ) -> Tensor:
        """Add the noise increment to ``psi`` (complex, any shape).

        ξ takes the numbers ``torch.randn(psi.shape, dtype=psi.dtype, generator=...)``
        would (the same draws: real and imaginary parts normal with standard deviation
        ``1/√2``, as torch draws a complex normal), scaled in the buffer (a real scale
        times a complex number: the same roundings as the complex product).

        Parameters
        ----------
        amplitude
            ``√(2T)``: a float, or a real tensor ``[B, 1, ...]`` broadcasting over ψ.
        in_place
            Add into ``psi`` (which the caller owns) instead of allocating.
        """
        buf = self._buffer
        like = (psi.shape, psi.dtype, psi.device)
        if buf is None or (buf.shape, buf.dtype, buf.device) != like:
            buf = torch.empty(psi.shape, dtype=psi.dtype, device=psi.device)
            self._buffer = buf
        parts = torch.view_as_real(buf)
        # std / sqrt(2) in double, as at::normal_ computes it for a complex tensor
        parts.normal_(0.0, 1.0 / math.sqrt(2.0), generator=generator)
        scale = amplitude * math.sqrt(dt)
        parts.mul_(scale.unsqueeze(-1) if isinstance(scale, Tensor) else scale)
        return psi.add_(buf) if in_place else psi + buf


def seed_pairs(
    psi: Tensor,
    lattice: MobiusStrip | TokamakStack,
    rate: Tensor,
    dt: float,
    generator: torch.Generator,
    *,
    separation: float,
    core_radius: float,
    batched: bool,
    in_place: bool = False,
) -> Tensor:
    """Imprint a ±1 pair with probability ``rate·dt`` per batch element.

    Every element draws its uniform number, centre ``(u0, v0)`` (``v0 ∈ (−0.8w, 0.8w)``),
    sign and strip from ``generator`` whether or not it seeds, so the stream does not
    depend on the outcome. On CPU only the seeding elements' imprints are computed; on
    other devices all of them are, masked, so that nothing waits for the host. Both give
    the same numbers.

    Parameters
    ----------
    psi
        The state ``[B?, (S,) nu, nv]`` complex (a strip axis ``S`` for stacks).
    rate
        ``pair_seeding`` per element ``[B]`` (or ``[1]``), float64, 1/time.
    separation, core_radius
        Pair separation and core radius (lattice length units).
    batched
        Whether ``psi`` has the leading batch axis.
    in_place
        ``psi`` may be updated in place (on the CPU path).
    """
    is_stack = isinstance(lattice, TokamakStack)
    chart = lattice.strip if isinstance(lattice, TokamakStack) else lattice
    n = rate.shape[0]
    dev, f64 = psi.device, torch.float64
    draws = torch.rand(n, 4, generator=generator, dtype=f64, device=dev)
    seeding = draws[:, 0] < rate * dt
    u0 = draws[:, 1] * chart.length
    v0 = (draws[:, 2] * 1.6 - 0.8) * chart.half_width
    sign = torch.where(draws[:, 3] < 0.5, 1.0, -1.0).to(f64)
    strips = lattice.field_shape[0] if is_stack else 1
    strip = torch.randint(strips, (n,), generator=generator, device=dev)
    rd = chart.real_dtype
    on_host = dev.type == "cpu" and not device_paths_only()

    def factors(idx: Tensor | slice) -> Tensor:
        us, vs, signs = u0[idx].to(rd), v0[idx].to(rd), sign[idx].to(rd)
        out = cpp_pair_factors(chart, us, vs, separation, signs, core_radius) if on_host else None
        if out is None:  # a device, or the kernel does not apply (IMPRINT_STATUS)
            out = pair_factors(chart, us, vs, separation, signs, core_radius)
        return out.to(psi.dtype)

    full = psi if batched else psi.unsqueeze(0)
    if not is_stack:
        full = full.unsqueeze(1)  # a strip axis of length 1
    if on_host:
        idx = torch.nonzero(seeding).reshape(-1)
        if idx.numel() == 0:
            return psi
        out = full if in_place else full.clone()
        out[idx, strip[idx]] = full[idx, strip[idx]] * factors(idx)
    else:
        hit = seeding[:, None] & (strip[:, None] == torch.arange(strips, device=dev))
        imprinted = full * factors(slice(None))[:, None]
        out = torch.where(hit[:, :, None, None], imprinted, full)
    if not is_stack:
        out = out.squeeze(1)
    return out if batched else out.squeeze(0)
