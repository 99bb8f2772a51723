"""The stochastic increments applied after each deterministic step (operator splitting).

Thermal noise (Euler–Maruyama): ``ψ ← ψ + √(2T·dt)·ξ`` with ``ξ`` a standard complex
normal per node (``⟨|ξ|²⟩ = 1``); on the CPU through the C++ kernel of
:mod:`~hhml.core.resonance.noise_kernel` (Philox4x32-10 keyed by one 64-bit draw from the
generator), elsewhere through torch's ``normal_``. Pair seeding: with probability
``pair_seeding·dt`` per step and batch element, a vortex–antivortex pair is imprinted at a
random place. Every random number comes from the ``torch.Generator`` passed in, so a seeded
simulator replays exactly (and generator state snapshots resume exactly).

Public names: :class:`NoiseIncrement`, :func:`seed_pairs`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from hhml.core.mobius import MobiusStrip, TokamakStack
from hhml.core.resonance.imprint import pair_factors
from hhml.core.resonance.imprint_kernel import cpp_pair_factors
from hhml.core.resonance.noise_kernel import cpp_noise_increment
from hhml.utils.host_sync import device_paths_only

__all__ = ["NoiseIncrement", "seed_pairs"]


class NoiseIncrement:
    """``ψ + amplitude·√dt·ξ``: the C++ kernel on the CPU, else torch draws into a buffer kept
    between steps."""

    def __init__(self) -> None:
        self._buffer: Tensor | None = None
        self._key = torch.empty(1, dtype=torch.int64)

    def apply(
        self,
        psi: Tensor,
        amplitude: float | Tensor,
        dt: float,
        generator: torch.Generator,
        in_place: bool,
    ) -> Tensor:
        """Add the noise increment to ``psi`` (complex, any shape).

        Which numbers ξ takes:

        - CPU ``psi`` (complex64/128) with the kernel available
          (:func:`~hhml.core.resonance.noise_kernel.cpp_noise_increment`): one int64 key is
          drawn from ``generator`` (one 64-bit draw per call, whatever the shape), and ξ is
          the kernel's Philox4x32-10 / Box–Muller stream of that key (see
          :mod:`~hhml.core.resonance.noise_kernel`); ``σ = amplitude·√dt`` in float64,
          rounded to ψ's real dtype. The same numbers under any thread count, and inside
          :func:`~hhml.utils.host_sync.forbid_host_sync` too (the key is read in C++: no
          host synchronisation). Where it does not apply (reason in
          ``noise_kernel.NOISE_STATUS.last_skip``), the torch path below.
        - Otherwise (CUDA, ``HHML_CPP_KERNELS=0``, a kernel that cannot be built): ξ takes
          the numbers ``torch.randn(psi.shape, dtype=psi.dtype, generator=...)`` would (the
          same draws: real and imaginary parts normal with standard deviation ``1/√2``, as
          torch draws a complex normal), scaled in the buffer (a real scale times a complex
          number: the same roundings as the complex product); ``2·numel`` normals drawn.

        Parameters
        ----------
        psi
            The field, complex, any shape.
        amplitude
            ``√(2T)`` (ψ units per √time): a float, or a real tensor ``[B, 1, ...]``
            broadcasting over ψ.
        dt
            Time step (time units).
        generator
            Source of every random number (on ψ's device).
        in_place
            Add into ``psi`` (which the caller owns) instead of allocating.

        Raises
        ------
        ConfigError
            If an ``amplitude`` tensor does not broadcast to ``psi`` (kernel path).
        """
        if psi.device.type == "cpu":
            out = cpp_noise_increment(psi, amplitude, dt, generator, in_place, key=self._key)
            if out is not None:
                return out
        return self.apply_torch(psi, amplitude, dt, generator, in_place)

    def apply_torch(
        self,
        psi: Tensor,
        amplitude: float | Tensor,
        dt: float,
        generator: torch.Generator,
        in_place: bool,
    ) -> Tensor:
        """The torch path of :meth:`apply` on any device: ξ the numbers of
        ``torch.randn(psi.shape, dtype=psi.dtype, generator=generator)`` (``2·numel``
        normals), scaled in a buffer kept between steps. Arguments as :meth:`apply`."""
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
    strips = lattice.field_shape[0] if is_stack else 1
    strip = torch.randint(strips, (n,), generator=generator, device=dev)
    full = psi if batched else psi.unsqueeze(0)
    if not is_stack:
        full = full.unsqueeze(1)  # a strip axis of length 1
    if dev.type == "cpu" and not device_paths_only():
        # the seeding elements only (their centres, signs and imprints)
        idx = torch.nonzero(seeding).reshape(-1)
        if idx.numel() == 0:
            return psi
        fac = _pair_imprints(chart, draws.index_select(0, idx), separation, core_radius, True)
        out = full if in_place else full.clone()
        at = (idx, strip.index_select(0, idx))
        out[at] = full[at] * fac.to(psi.dtype)
    else:
        hit = seeding[:, None] & (strip[:, None] == torch.arange(strips, device=dev))
        fac = _pair_imprints(chart, draws, separation, core_radius, False)
        imprinted = full * fac.to(psi.dtype)[:, None]
        out = torch.where(hit[:, :, None, None], imprinted, full)
    if not is_stack:
        out = out.squeeze(1)
    return out if batched else out.squeeze(0)


def _pair_imprints(
    chart: MobiusStrip, draws: Tensor, separation: float, core_radius: float, on_host: bool
) -> Tensor:
    """The pair factors ``[M, nu, nv]`` (the chart's complex dtype) of ``M`` rows of
    uniform draws (columns 1–3: centre u, centre v, sign; column 0 is the seeding draw):
    ``u0 = L·x₁``, ``v0 = (1.6·x₂ − 0.8)·w``, sign ``+1`` if ``x₃ < 0.5`` else ``−1``. The
    C++ kernel where ``on_host`` and it applies, else the torch code (the same numbers to
    rounding)."""
    rd = chart.real_dtype
    u0 = (draws[:, 1] * chart.length).to(rd)
    v0 = ((draws[:, 2] * 1.6 - 0.8) * chart.half_width).to(rd)
    sign = torch.where(draws[:, 3] < 0.5, 1.0, -1.0).to(rd)
    out = cpp_pair_factors(chart, u0, v0, separation, sign, core_radius) if on_host else None
    if out is None:  # a device, or the kernel does not apply (IMPRINT_STATUS)
        out = pair_factors(chart, u0, v0, separation, sign, core_radius)
    return out
