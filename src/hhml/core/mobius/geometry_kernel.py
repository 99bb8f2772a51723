"""C++/OpenMP CPU kernel for the geometry update of a batched Miller band ensemble.

Every environment step changes the shape (aspect, κ, δ) and the coupling range of each
of the ``B`` elements of a :class:`~hhml.core.mobius.LatticeEnsemble`, which then needs
new finite-volume coefficients, cell areas and inter-strip coupling weights on the whole
``[B, S, nu, nv]`` grid. The torch path (:meth:`MillerBandGeometry.coefficients
<hhml.core.mobius.ensemble_geometry.MillerBandGeometry.coefficients>`, ``distances``,
then casts and ``exp``) makes ~15 passes over the grid plus ~30 small ones for the
centreline frames; :func:`cpp_band_update` makes one: per element, the closed-form
Miller frame of every strip at the ``2nu`` angles, the metric features, and then per
node the four coefficients ``(c_u+, c_u−, c_v+, c_v−)`` (seam-aware ``u``-minus face),
the area ``√g Δu Δv`` and the weight ``exp(−d/ℓ)`` of the distance ``d`` to the next
strip, written in float64 and/or float32 as requested (each float32 value is the
float64 one rounded to nearest).

The source is ``csrc/geometry.cpp``; every formula is evaluated in float64 in the
operation order of the torch code, compiled without fused multiply-adds, with SLEEF's
1-ulp vector ``sin``, ``cos``, ``asin``, ``exp`` (the functions torch's vectorised CPU
kernels call) where the build has AVX2 and FMA. Results agree with the torch path to a
few ulp (its matrix product of the features with the ``v``-basis may round differently).
The kernel is compiled with ``torch.utils.cpp_extension.load`` on first use (under a
minute, then cached). :func:`cpp_band_update` returns None where it does not apply
(geometry or inputs not on the CPU, other dtypes or shapes, inputs that require
gradients, inside :func:`~hhml.utils.host_sync.forbid_host_sync`, where tests check the
path a GPU takes) or when the kernel cannot be built; the reason is recorded in
:data:`GEOMETRY_STATUS` (and a failed build is logged once) — never silently. Set
``HHML_CPP_KERNELS=0`` to disable it. It reads no tensor value on the host.

Public names: :func:`cpp_band_update`, :class:`BandUpdate`, :data:`GEOMETRY_STATUS` (a
:class:`~hhml.utils.cpp_build.KernelStatus`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, cast

import torch
from torch import Tensor

from hhml.core.mobius.ensemble_geometry import MillerBandGeometry
from hhml.utils.cpp_build import CppKernel, simd_flags
from hhml.utils.host_sync import device_paths_only

__all__ = ["GEOMETRY_STATUS", "BandUpdate", "cpp_band_update"]

_SOURCE = Path(__file__).parent / "csrc" / "geometry.cpp"
_TOPOLOGY = {"mobius": 0, "cylinder": 1, "torus": 2}
_BITS = {torch.float32: 32, torch.float64: 64}

_KERNEL = CppKernel(
    "hhml_miller_geometry_v1",
    _SOURCE,
    # no FMA contraction: keep the rounding of the torch operation sequence; no errno from
    # sqrt (lets its loops vectorise); 256-bit vectors on AVX-512 CPUs (rows of nv nodes)
    [
        "-O3",
        "-fopenmp",
        "-ffp-contract=off",
        "-fno-math-errno",
        *(["-mprefer-vector-width=256"] if simd_flags() else []),
    ],
    what="geometry kernel",
    fallback="use the torch geometry path",
)
#: Build state of the geometry kernel (and why the last call returned None).
GEOMETRY_STATUS = _KERNEL.status


class BandUpdate(NamedTuple):
    """What :func:`cpp_band_update` computed for ``B`` elements of ``S`` strips.

    Attributes
    ----------
    coefficients : dict
        ``{dtype: (c_u+, c_u−, c_v+, c_v−)}`` for each requested dtype, each
        ``[B, S, nu, nv]`` (1/length²), as :meth:`MillerBandGeometry.coefficients`.
    area : Tensor or None
        Cell areas ``√g Δu Δv``, ``[B, S, nu, nv]`` (length²), if requested.
    weights : Tensor or None
        Coupling weights ``exp(−d/ℓ)`` between strips ``s`` and ``s + 1``,
        ``[B, S − 1, nu, nv]`` (dimensionless), if requested.
    """

    coefficients: dict[torch.dtype, tuple[Tensor, Tensor, Tensor, Tensor]]
    area: Tensor | None
    weights: Tensor | None


def _skip(reason: str) -> BandUpdate | None:
    """Record why the kernel does not apply; returns None (for ``return _skip(...)``)."""
    GEOMETRY_STATUS.last_skip = reason
    return None


def _check_inputs(geometry: MillerBandGeometry, named: dict[str, Tensor]) -> str:
    """``""`` when the geometry and the ``[B]`` inputs fit the kernel, else the reason."""
    if geometry.device.type != "cpu":
        return f"the geometry is on {geometry.device}; the kernel runs on the CPU"
    if geometry.topology not in _TOPOLOGY:
        return f"topology {geometry.topology!r} is not one of {sorted(_TOPOLOGY)}"
    size = None
    for name, x in named.items():
        if not isinstance(x, Tensor):
            return f"{name} is {type(x).__name__}; expected a torch.float64 tensor"
        if x.device.type != "cpu":
            return f"{name} is on {x.device}; the kernel runs on the CPU"
        if x.dtype != torch.float64:
            return f"{name} is {x.dtype}; expected torch.float64"
        if x.dim() != 1 or x.shape[0] < 1 or (size is not None and x.shape[0] != size):
            return f"{name} has shape {tuple(x.shape)}; expected one length B ≥ 1 for all"
        if x.requires_grad:
            return f"{name} requires grad; the kernel is not differentiable"
        size = x.shape[0]
    return ""


def cpp_band_update(
    geometry: MillerBandGeometry,
    aspect: Tensor,
    kappa: Tensor,
    delta: Tensor,
    coupling_range: Tensor | None = None,
    *,
    coefficient_dtypes: Sequence[torch.dtype] = (),
    area_dtype: torch.dtype | None = None,
    weight_dtype: torch.dtype | None = None,
    follow_device_paths: bool = True,
) -> BandUpdate | None:
    """Coefficients, areas and coupling weights of ``B`` elements in one pass, or None.

    Parameters
    ----------
    geometry
        The chart and strip layout (:class:`MillerBandGeometry`, on the CPU).
    aspect, kappa, delta
        ``R0/w``, ``κ``, ``δ`` of each element, float64 ``[B]`` on the CPU (values are
        trusted, as in :meth:`MillerBandGeometry.coefficients`).
    coupling_range
        ``ℓ`` of each element (length units), float64 ``[B]``; required for the weights.
    coefficient_dtypes
        Dtypes (``torch.float32``, ``torch.float64``) in which to write the four
        coefficients; empty: none.
    area_dtype, weight_dtype
        Dtype of the areas and of the weights; None: not computed.
    follow_device_paths
        Return None inside :func:`~hhml.utils.host_sync.forbid_host_sync` (where
        :func:`~hhml.utils.host_sync.device_paths_only` asks for the path a GPU takes);
        False: compute anyway (values that must match an earlier kernel result).

    Returns
    -------
    BandUpdate or None
        New tensors (see :class:`BandUpdate`); float64 values agree with the torch path
        to a few ulp, float32 ones are the float64 ones rounded. None (reason in
        ``GEOMETRY_STATUS.last_skip``) for a geometry or inputs off the CPU, other dtypes
        or shapes, inputs that require grad, inside ``forbid_host_sync`` (see
        ``follow_device_paths``), or when the kernel is unavailable.
    """
    if follow_device_paths and device_paths_only():
        return _skip("inside forbid_host_sync: the device (GPU) path runs")
    named = {"aspect": aspect, "kappa": kappa, "delta": delta}
    if weight_dtype is not None:
        if coupling_range is None:
            return _skip("weights requested without coupling_range")
        named["coupling_range"] = coupling_range
    reason = _check_inputs(geometry, named)
    if reason:
        return _skip(reason)
    wanted = [*coefficient_dtypes, area_dtype, weight_dtype]
    for dtype in wanted:
        if dtype is not None and dtype not in _BITS:
            return _skip(f"dtype {dtype} is not supported; expected torch.float32 or float64")
    module = _KERNEL.load()
    if module is None:
        return _skip(f"kernel unavailable: {GEOMETRY_STATUS.reason}")
    g = geometry
    ell = named["coupling_range"].contiguous() if weight_dtype is not None else aspect
    out: list[Tensor | None] = module.band_update(
        aspect.contiguous(),
        kappa.contiguous(),
        delta.contiguous(),
        ell,
        *g.kernel_tensors(),
        g.nu,
        g.nv,
        _TOPOLOGY[g.topology],
        g.half_width,
        g.du * g.dv,
        torch.float64 in coefficient_dtypes,
        torch.float32 in coefficient_dtypes,
        0 if area_dtype is None else _BITS[area_dtype],
        0 if weight_dtype is None else _BITS[weight_dtype],
    )
    GEOMETRY_STATUS.last_skip = ""
    coefficients: dict[torch.dtype, tuple[Tensor, Tensor, Tensor, Tensor]] = {}
    for dtype, first in ((torch.float64, 0), (torch.float32, 4)):
        if dtype in coefficient_dtypes:
            # the four tensors asked for (the extension returns None only for the others)
            coefficients[dtype] = cast(
                tuple[Tensor, Tensor, Tensor, Tensor], tuple(out[first : first + 4])
            )
    return BandUpdate(coefficients, out[8], out[9])
