"""Hand-written C++/OpenMP kernel for the flat-metric CGL right-hand side (CPU).

One pass over the field computes ``(1 − γ)ψ + (D + iα)Δψ − (g + iβ)|ψ|²ψ − Vψ + S``
with the seam-aware five-point Laplacian; the two seam rows enter as small ghost rows
(flip and twist applied here, in Python), the v edges as periodic neighbours or
cell-centred ghosts. The source is ``csrc/flat_cgl.cpp``; it is compiled with
``torch.utils.cpp_extension.load`` on first use (about a minute, then cached by torch in
``~/.cache/torch_extensions``).

This is the fastest CPU path (the inductor-generated kernels of
:mod:`~hhml.core.resonance.flat_kernels` are the portable one). If compilation is not
possible the caller falls back to those, and :data:`CPP_STATUS` records why — never
silently. Set ``HHML_CPP_KERNELS=0`` to disable it.

The same extension holds one whole classical RK4 step (:func:`cpp_flat_rk4_step`): each
stage is one pass that forms its input ``ψ + a·k_prev`` on the fly, evaluates the
right-hand side and accumulates the stage combination, so no torch axpys remain.

Public names: :func:`cpp_flat_cgl_rhs`, :func:`cpp_flat_rk4_step`, :data:`CPP_STATUS`.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from hhml.errors import LatticeError
from hhml.utils.cpp_build import CppKernel

if TYPE_CHECKING:
    from hhml.core.mobius import MobiusStrip

_SOURCE = Path(__file__).parent / "csrc" / "flat_cgl.cpp"


_KERNEL = CppKernel(
    "hhml_flat_cgl_v5",
    _SOURCE,
    ["-O3", "-fopenmp"],
    what="C++ kernel",
    fallback="using the torch kernels",
)
#: Build state of the C++ kernel.
CPP_STATUS = _KERNEL.status
_load = _KERNEL.load


def _applicable(
    psi: Tensor,
    chart: MobiusStrip,
    coefficients: tuple[object, ...],
    potential: Tensor | None,
    source: Tensor | None,
) -> ModuleType | None:
    """The built kernel module if the flat kernels apply to these arguments, else None.

    They apply to CPU, contiguous complex ``[..., nu, nv]`` fields with scalar (non-tensor)
    coefficients, a real ``[nu, nv]`` potential and a complex ``[nu, nv]`` source of the
    field's precision (or None). A field whose last two dimensions are not
    ``(nu, nv)`` is a :class:`LatticeError`.
    """
    if psi.device.type != "cpu" or not psi.is_contiguous() or psi.dim() < 2:
        return None
    if psi.dtype not in (torch.complex64, torch.complex128):
        return None
    if any(isinstance(c, Tensor) for c in coefficients):
        return None
    shape = (chart.nu, chart.nv)
    if tuple(psi.shape[-2:]) != shape:
        raise LatticeError(
            f"psi shape {tuple(psi.shape)} is not valid for this chart; the last two "
            f"dimensions must be (nu, nv) = {shape}"
        )
    real = torch.float64 if psi.dtype == torch.complex128 else torch.float32
    if potential is not None and (tuple(potential.shape) != shape or potential.dtype != real):
        return None
    if source is not None and (tuple(source.shape) != shape or source.dtype != psi.dtype):
        return None
    return _load()


def cpp_flat_cgl_rhs(
    psi: Tensor,
    chart: MobiusStrip,
    growth: float,
    diffusion: complex,
    cubic: complex,
    potential: Tensor | None,
    source: Tensor | None,
) -> Tensor | None:
    """The CGL right-hand side by the C++ kernel, or None where it does not apply.

    Applies to CPU, contiguous ``[..., nu, nv]`` complex fields with scalar coefficients,
    a real ``[nu, nv]`` potential (or None) and a complex ``[nu, nv]`` source (or None)
    of the field's precision. Returns None otherwise, or when the kernel cannot be built;
    a field whose last two dimensions are not ``(nu, nv)`` is a :class:`LatticeError`.

    Parameters
    ----------
    growth, diffusion, cubic
        ``1 − γ`` (1/time), ``D + iα`` (length²/time), ``g + iβ`` (1/(|ψ|²·time)).
    """
    module = _applicable(psi, chart, (growth, diffusion, cubic), potential, source)
    if module is None:
        return None
    real = torch.float64 if psi.dtype == torch.complex128 else torch.float32
    first, last = psi[..., 0, :], psi[..., -1, :]
    if chart.flip:
        first, last = first.flip(-1), last.flip(-1)
    phase = chart.seam_phase
    ghost_up = (first * phase if phase is not None else first).contiguous()
    ghost_dn = (last * phase.conjugate() if phase is not None else last).contiguous()
    empty_r = torch.empty(0, dtype=real)
    empty_c = torch.empty(0, dtype=psi.dtype)
    diffusion, cubic = complex(diffusion), complex(cubic)
    out: Tensor = module.flat_cgl_rhs(
        psi,
        ghost_up,
        ghost_dn,
        empty_r if potential is None else potential.contiguous(),
        empty_c if source is None else source.contiguous(),
        chart.periodic_v,
        chart.ghost_sign,
        1.0 / chart.du**2,
        1.0 / chart.dv**2,
        float(growth),
        diffusion.real,
        diffusion.imag,
        cubic.real,
        cubic.imag,
    )
    return out


def cpp_flat_rk4_step(
    psi: Tensor,
    t: float,
    dt: float,
    chart: MobiusStrip,
    growth: float,
    diffusion: complex,
    cubic: complex,
    potential: Tensor | None,
    source: Tensor | None,
    frequency: float,
) -> Tensor | None:
    """One classical RK4 step of the right-hand side of :func:`cpp_flat_cgl_rhs`, or None.

    The source term is ``source · e^{−iωt}`` at ``t``, ``t + dt/2`` (twice) and ``t + dt``
    (as ``Simulator._source_at`` forms it). The four stages are four passes over the
    field, OpenMP over rows; each forms its input ``ψ + a·k_prev`` on the fly (the seam
    ghost rows, with flip and twist, included) and fuses the stage combination; the last
    writes ``ψ + dt/6·(k₁ + 2k₂ + 2k₃ + k₄)``. Same numbers as the torch RK4 to rounding.

    There is no spectral-filter term: a caller whose filter ``ν₄`` is non-zero must not
    use this step (it would silently drop ``−ν₄Δ²ψ``).

    Parameters
    ----------
    psi
        Complex field ``[..., nu, nv]`` (any leading batch shape).
    t, dt
        Time of ``psi`` and the step (time units).
    chart
        The flat :class:`~hhml.core.mobius.MobiusStrip` (seam flip, twist, v edges).
    growth, diffusion, cubic
        ``1 − γ`` (1/time), ``D + iα`` (length²/time), ``g + iβ`` (1/(|ψ|²·time)).
    potential
        Real ``[nu, nv]`` potential ``V`` (1/time) of the field's precision, or None.
    source
        Complex ``[nu, nv]`` source profile ``S`` (field/time) of the field's dtype, or None.
    frequency
        Source frequency ``ω`` (rad/time).

    Returns
    -------
    Tensor or None
        The field at ``t + dt``, ``[..., nu, nv]``; None where :func:`cpp_flat_cgl_rhs`
        would return None, for a tensor-valued ``frequency``, or when the kernel cannot
        be built (the reason is in :data:`CPP_STATUS`).

    Raises
    ------
    LatticeError
        If the last two dimensions of ``psi`` are not ``(chart.nu, chart.nv)``.
    """
    module = _applicable(psi, chart, (growth, diffusion, cubic, frequency), potential, source)
    if module is None:
        return None
    real = torch.float64 if psi.dtype == torch.complex128 else torch.float32
    rot: list[float] = []
    for time in (t, t + 0.5 * dt, t + dt):
        phase = float(frequency) * time
        rot += [math.cos(phase), -math.sin(phase)]
    seam = chart.seam_phase if chart.seam_phase is not None else 1.0 + 0.0j
    diffusion, cubic = complex(diffusion), complex(cubic)
    out: Tensor = module.flat_rk4_step(
        psi,
        torch.empty(0, dtype=real) if potential is None else potential.contiguous(),
        torch.empty(0, dtype=psi.dtype) if source is None else source.contiguous(),
        rot,
        chart.flip,
        seam.real,
        seam.imag,
        chart.periodic_v,
        chart.ghost_sign,
        1.0 / chart.du**2,
        1.0 / chart.dv**2,
        float(growth),
        diffusion.real,
        diffusion.imag,
        cubic.real,
        cubic.imag,
        float(dt),
    )
    return out
