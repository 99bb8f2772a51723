"""C++/OpenMP CPU kernels for batched vortex phase imprints (annihilation, pair seeding).

Two hot spots of the batched environment compute many full-strip phase fields from the
seam-consistent unit-charge phase ``Φ(x; u₀, v₀)`` (``imprint._phase``) and the
nearest-image chart distance ``d(x; u₀, v₀)`` (``imprint._image_distance``):

- :func:`cpp_imprint_angles` — ``out[g] = Σ_{t: group_t = g} w_t · Φ_t · exp(−d_t² / 2r_t²)``,
  the per-(env, strip) angle sum of :func:`hhml.ml.env.annihilation.annihilate` (which
  passes ``w_t = −strength·charge·chosen``). The targets of one group are accumulated in
  increasing ``t``, as ``index_add_`` does.
- :func:`cpp_imprint_apply` — ``psi[g] · e^{i·out[g]}`` in one pass, without the angle
  tensor (what ``annihilate`` applies to the field).
- :func:`cpp_select_targets` — the vortices ``annihilate`` targets (the deepest candidates
  per env, ties in column order), packed as the target arrays of :func:`cpp_imprint_apply`:
  the selection of ``annihilation._select_torch`` in one pass instead of ~40 small tensor
  operations.
- :func:`cpp_pair_factors` — the same result as :func:`hhml.core.resonance.imprint.pair_factors`
  (two seam-wrapped cores per pair, ``tanh(d/ξ)^{|q|}`` amplitude, torus gauge ramp).

The source is ``csrc/imprint.cpp``; every formula is evaluated in the chart's real dtype in
the operation order of the torch code (no fused multiply-adds). Where the build has AVX2 and
FMA, the transcendental functions run 8 (float32) or 4 (float64) nodes at a time through
SLEEF's 1-ulp vector functions (those torch's own vectorised kernels use), else through
libm. Three shortcuts change results only in the last bits: an angle contribution whose
envelope bounds it below ``eps/256`` radians (``|w_t|·max|Φ|·exp(−d²/2r_t²)``, ``eps`` of the
real dtype) is left out, so each target visits only the rows near it; the Möbius phase
``arg A_d + arg A_i`` is one ``atan2`` of the product ``A_d·A_i`` plus the multiple of 2π
that the half-planes of ``A_d`` and ``A_i`` fix; and for an integer charge ``e^{iqΦ}`` is
the ``q``-th power of the unit complex numbers ``A/|A|`` whose arguments make up ``Φ`` (no
``atan2``, ``cos``, ``sin``). It is compiled with
``torch.utils.cpp_extension.load`` on first
use (under a minute, then cached by torch in ``~/.cache/torch_extensions``). Both functions
return None where they do not apply (chart or tensors not on the CPU, dtypes or shapes
outside the contract) or when the kernel cannot be built; the reason is recorded in
:data:`IMPRINT_STATUS` (and a failed build is logged) — never silently. Set
``HHML_CPP_KERNELS=0`` to disable them.

Public names: :func:`cpp_imprint_angles`, :func:`cpp_imprint_apply`, :func:`cpp_select_targets`,
:func:`cpp_pair_factors`,
:data:`IMPRINT_STATUS`
(a :class:`~hhml.utils.cpp_build.KernelStatus`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from hhml.utils.cpp_build import CppKernel, simd_flags

if TYPE_CHECKING:
    from hhml.core.mobius import MobiusStrip

__all__ = [
    "IMPRINT_STATUS",
    "cpp_imprint_angles",
    "cpp_imprint_apply",
    "cpp_pair_factors",
    "cpp_select_targets",
]

_SOURCE = Path(__file__).parent / "csrc" / "imprint.cpp"
_TOPOLOGY = {"mobius": 0, "cylinder": 1, "torus": 2}


_KERNEL = CppKernel(
    "hhml_imprint_v4",
    _SOURCE,
    # no FMA contraction: keep the rounding of the torch operation sequence; no errno from
    # sqrt (lets its loops vectorise); 256-bit vectors on AVX-512 CPUs (rows of a few
    # nodes: a 16-lane loop would leave most of a row to the scalar remainder)
    [
        "-O3",
        "-fopenmp",
        "-ffp-contract=off",
        "-fno-math-errno",
        *(["-mprefer-vector-width=256"] if simd_flags() else []),
    ],
    what="imprint kernel",
    fallback="use the torch imprint path",
)
#: Build state of the imprint kernels (and why the last call returned None).
IMPRINT_STATUS = _KERNEL.status
_load = _KERNEL.load


def _skip(reason: str) -> Tensor | None:
    """Record why the kernel does not apply; returns None (for ``return _skip(...)``)."""
    IMPRINT_STATUS.last_skip = reason
    return None


def _check(chart: MobiusStrip, named: dict[str, Tensor], dtype: torch.dtype) -> str:
    """``""`` when the chart and the ``[n]`` tensors fit the kernel, else the reason."""
    if chart.topology not in _TOPOLOGY:
        return f"chart topology {chart.topology!r} is not one of {sorted(_TOPOLOGY)}"
    if chart.device.type != "cpu":
        return f"the chart is on {chart.device}; the kernel runs on the CPU"
    n = None
    for name, x in named.items():
        want = torch.int64 if name == "group" else dtype
        if not isinstance(x, Tensor):
            return f"{name} is {type(x).__name__}; expected a {want} tensor"
        if x.device.type != "cpu":
            return f"{name} is on {x.device}; the kernel runs on the CPU"
        if x.dtype != want:
            return f"{name} is {x.dtype}; expected {want} (the chart's real dtype)"
        if x.dim() != 1 or (n is not None and x.numel() != n):
            return f"{name} has shape {tuple(x.shape)}; expected one 1-D length for all"
        n = x.numel()
    return ""


def _call(kernel: str, chart: MobiusStrip, *args: Any) -> Tensor | None:
    """Run C++ function ``kernel`` with ``args`` followed by the chart's topology code,
    length and half-width; None (reason recorded) if the kernel cannot be built."""
    module = _load()
    if module is None:
        return _skip(f"kernel unavailable: {IMPRINT_STATUS.reason}")
    out: Tensor = getattr(module, kernel)(
        *args, _TOPOLOGY[chart.topology], chart.length, chart.half_width
    )
    IMPRINT_STATUS.last_skip = ""
    return out


def _check_groups(group: Tensor, groups: int) -> str:
    """``""`` when every group value lies in ``[0, groups)``, else the reason."""
    if group.numel() and (int(group.min()) < 0 or int(group.max()) >= groups):
        lo, hi = int(group.min()), int(group.max())
        return f"group values span [{lo}, {hi}]; expected values in [0, {groups})"
    return ""


def cpp_imprint_angles(
    chart: MobiusStrip,
    u0: Tensor,
    v0: Tensor,
    weight: Tensor,
    radius: Tensor,
    group: Tensor,
    groups: int,
) -> Tensor | None:
    """Per-group sums of enveloped, weighted unit-charge phase fields, or None.

    Parameters
    ----------
    chart
        The chart (one strip; topology mobius, cylinder or torus) on the CPU.
    u0, v0
        Target centres ``[T]`` (chart coordinates, length units), the chart's real dtype.
    weight
        ``[T]`` real, dimensionless: the factor of each phase field (annihilation passes
        ``−strength·charge·chosen``).
    radius
        ``[T]`` real, envelope radii ``r_t`` (length units).
    group
        int64 ``[T]``, values in ``[0, groups)``: the output slab each target adds into.
    groups
        Number of output slabs ``G`` (≥ 0).

    Returns
    -------
    Tensor or None
        Real ``[G, nu, nv]`` (the chart's real dtype, radians):
        ``Σ_{t: group_t = g} weight_t · Φ(x; u0_t, v0_t) · exp(−d_t(x)² / (2 r_t²))``, the
        targets of a group added in increasing ``t``; a term below ``eps/256`` radians by
        its envelope bound is left out (see the module docstring). None (reason in
        ``IMPRINT_STATUS.last_skip``) for non-CPU input, other dtypes or shapes, group values
        outside ``[0, groups)``, or when the kernel is unavailable.
    """
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 0:
        return _skip(f"groups = {groups!r} is not valid; expected an integer ≥ 0")
    named = {"u0": u0, "v0": v0, "weight": weight, "radius": radius, "group": group}
    reason = _check(chart, named, chart.real_dtype)
    if reason:
        return _skip(reason)
    reason = _check_groups(group, groups)
    if reason:
        return _skip(reason)
    return _call(
        "imprint_angles",
        chart,
        chart.u.contiguous(),
        chart.v.contiguous(),
        u0.contiguous(),
        v0.contiguous(),
        weight.contiguous(),
        radius.contiguous(),
        group.contiguous(),
        groups,
    )


def cpp_imprint_apply(
    psi: Tensor,
    chart: MobiusStrip,
    u0: Tensor,
    v0: Tensor,
    weight: Tensor,
    radius: Tensor,
    group: Tensor,
) -> Tensor | None:
    """``psi · e^{i·angles}`` with the angles of :func:`cpp_imprint_angles`, or None.

    Parameters
    ----------
    psi
        Complex field ``[G, nu, nv]`` of the chart's dtype, on the CPU (``G`` groups, e.g.
        the ``B·S`` strips of an ensemble field reshaped).
    chart, u0, v0, weight, radius, group
        As in :func:`cpp_imprint_angles`, with ``groups = G``.

    Returns
    -------
    Tensor or None
        A new complex ``[G, nu, nv]``: ``psi[g] · (cos a + i sin a)`` with ``a`` the angle
        sum of group ``g`` (torch's complex product ``(ac − bd) + i(ad + bc)``); nodes that
        no target reaches are copied (``e^{i·0} = 1``: the same numbers for a finite
        field). None (reason in ``IMPRINT_STATUS.last_skip``) where
        :func:`cpp_imprint_angles` would return None, or for a ``psi`` of another shape,
        dtype or device.
    """
    if not isinstance(psi, Tensor):
        return _skip(f"psi is {type(psi).__name__}; expected a complex tensor")
    want = (chart.nu, chart.nv)
    if psi.dim() != 3 or tuple(psi.shape[1:]) != want or psi.dtype != chart.dtype:
        return _skip(
            f"psi is {psi.dtype} {tuple(psi.shape)}; expected {chart.dtype} [G, {want[0]}, "
            f"{want[1]}]"
        )
    if psi.device.type != "cpu":
        return _skip(f"psi is on {psi.device}; the kernel runs on the CPU")
    named = {"u0": u0, "v0": v0, "weight": weight, "radius": radius, "group": group}
    reason = _check(chart, named, chart.real_dtype) or _check_groups(group, psi.shape[0])
    if reason:
        return _skip(reason)
    return _call(
        "imprint_apply",
        chart,
        psi.contiguous(),
        chart.u.contiguous(),
        chart.v.contiguous(),
        u0.contiguous(),
        v0.contiguous(),
        weight.contiguous(),
        radius.contiguous(),
        group.contiguous(),
    )


def cpp_select_targets(
    depth: Tensor,
    valid: Tensor,
    count: Tensor,
    position: Tensor,
    charge: Tensor,
    strength: Tensor,
    radius: Tensor,
    quality_threshold: Tensor,
    preserve_ratio: Tensor,
    max_targets: int,
    slots_per_strip: int,
    real_dtype: torch.dtype,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor] | None:
    """The targets of :func:`hhml.ml.env.annihilation.annihilate`, packed, or None.

    Parameters
    ----------
    depth, valid, charge
        ``[B, S·K]`` float64, bool and int64: the core depth, slot occupancy and charge
        of every tracked vortex (``K`` = ``slots_per_strip`` slots per strip).
    count
        float64 ``[B]``: detected vortices per env (all, not only the tracked ones).
    position
        float64 ``[B, S·K, 2]``: chart positions ``(u, v)`` (length units).
    strength, radius, quality_threshold, preserve_ratio
        float64 ``[B]``: the four annihilation controls.
    max_targets
        ``M``, in ``[1, S·K]``.
    slots_per_strip
        ``K``.
    real_dtype
        The chart's real dtype: the dtype of the returned target arrays.

    Returns
    -------
    tuple or None
        ``u0, v0, weight, radius, group, targeted``: the first five ``[T]`` over the
        chosen targets, env-major and by decreasing depth inside an env (ties in column
        order); ``weight = −strength·charge``; ``group = b·S + column // K`` (the strip);
        ``targeted`` int64 ``[B]``. Equal, value for value, to what ``annihilate``
        computes with tensor operations. None (reason in ``IMPRINT_STATUS.last_skip``)
        for tensors that are not on the CPU or when the kernel is unavailable.
    """
    tensors = [depth, valid, count, position, charge]
    tensors += [strength, radius, quality_threshold, preserve_ratio]
    if any(x.device.type != "cpu" for x in tensors):
        _skip("select_targets runs on the CPU; a tensor is on another device")
        return None
    module = _load()
    if module is None:
        _skip(f"kernel unavailable: {IMPRINT_STATUS.reason}")
        return None
    like = torch.empty(0, dtype=real_dtype)
    f64 = torch.float64
    out = module.select_targets(
        depth.to(f64).contiguous(),
        valid.contiguous(),
        count.to(f64).contiguous(),
        position.to(f64).contiguous(),
        charge.to(torch.int64).contiguous(),
        strength.to(f64).contiguous(),
        radius.to(f64).contiguous(),
        quality_threshold.to(f64).contiguous(),
        preserve_ratio.to(f64).contiguous(),
        max_targets,
        slots_per_strip,
        like,
    )
    IMPRINT_STATUS.last_skip = ""
    return out[0], out[1], out[2], out[3], out[4], out[5]


def cpp_pair_factors(
    chart: MobiusStrip,
    u0: Tensor,
    v0: Tensor,
    separation: float,
    sign: Tensor,
    core_radius: float,
    abs_charge: int = 1,
) -> Tensor | None:
    """Multiplicative imprints of ``M`` neutral pairs (as ``imprint.pair_factors``), or None.

    Parameters
    ----------
    chart
        The chart (one strip) on the CPU.
    u0, v0
        Pair centres ``[M]`` (chart coordinates, length units), the chart's real dtype.
    separation
        Distance between the two cores along u (length units).
    sign
        ``[M]`` real, ±|q|: the charge of the first core (at ``u0 − separation/2``).
    core_radius
        ξ of the ``tanh(d/ξ)^{|q|}`` amplitude (length units; ≤ 0: none).
    abs_charge
        ``|q|`` (≥ 0), the same for every pair.

    Returns
    -------
    Tensor or None
        Complex ``[M, nu, nv]`` of the chart's dtype, equal to
        ``imprint.pair_factors(chart, u0, v0, separation, sign, core_radius, abs_charge)`` to
        rounding. None (reason in ``IMPRINT_STATUS.last_skip``) for non-CPU input, other
        dtypes or shapes, invalid scalars, or when the kernel is unavailable.
    """
    if isinstance(abs_charge, bool) or not isinstance(abs_charge, int) or abs_charge < 0:
        return _skip(f"abs_charge = {abs_charge!r} is not valid; expected an integer ≥ 0")
    for name, x in (("separation", separation), ("core_radius", core_radius)):
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            return _skip(f"{name} = {x!r} is not valid; expected a real number")
    reason = _check(chart, {"u0": u0, "v0": v0, "sign": sign}, chart.real_dtype)
    if reason:
        return _skip(reason)
    return _call(
        "pair_factors",
        chart,
        chart.u.contiguous(),
        chart.v.contiguous(),
        u0.contiguous(),
        v0.contiguous(),
        sign.contiguous(),
        float(separation),
        float(core_radius),
        abs_charge,
    )
