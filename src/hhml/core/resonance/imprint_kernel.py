"""C++/OpenMP CPU kernels for batched vortex phase imprints (annihilation, pair seeding).

Two hot spots of the batched environment compute many full-strip phase fields from the
seam-consistent unit-charge phase ``Φ(x; u₀, v₀)`` (``imprint._phase``) and the
nearest-image chart distance ``d(x; u₀, v₀)`` (``imprint._image_distance``):

- :func:`cpp_imprint_angles` — ``out[g] = Σ_{t: group_t = g} w_t · Φ_t · exp(−d_t² / 2r_t²)``,
  the per-(env, strip) angle sum of :func:`hhml.ml.env.annihilation.annihilate` (which
  passes ``w_t = −strength·charge·chosen``). The targets of one group are accumulated in
  increasing ``t``, as ``index_add_`` does.
- :func:`cpp_pair_factors` — the same result as :func:`hhml.core.resonance.imprint.pair_factors`
  (two seam-wrapped cores per pair, ``tanh(d/ξ)^{|q|}`` amplitude, torus gauge ramp).

The source is ``csrc/imprint.cpp``; every formula is evaluated in the chart's real dtype in
the operation order of the torch code (no fused multiply-adds), so the results differ from
the torch path only by the last-bit differences of libm versus torch's vectorised
transcendental functions. It is compiled with ``torch.utils.cpp_extension.load`` on first
use (under a minute, then cached by torch in ``~/.cache/torch_extensions``). Both functions
return None where they do not apply (chart or tensors not on the CPU, dtypes or shapes
outside the contract) or when the kernel cannot be built; the reason is recorded in
:data:`IMPRINT_STATUS` (and a failed build is logged) — never silently. Set
``HHML_CPP_KERNELS=0`` to disable them.

Public names: :func:`cpp_imprint_angles`, :func:`cpp_pair_factors`, :data:`IMPRINT_STATUS`
(a :class:`~hhml.utils.cpp_build.KernelStatus`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from hhml.utils.cpp_build import CppKernel

if TYPE_CHECKING:
    from hhml.core.mobius import MobiusStrip

__all__ = ["IMPRINT_STATUS", "cpp_imprint_angles", "cpp_pair_factors"]

_SOURCE = Path(__file__).parent / "csrc" / "imprint.cpp"
_TOPOLOGY = {"mobius": 0, "cylinder": 1, "torus": 2}


_KERNEL = CppKernel(
    "hhml_imprint_v1",
    _SOURCE,
    # no FMA contraction: keep the rounding of the torch operation sequence
    ["-O3", "-fopenmp", "-ffp-contract=off"],
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
        targets of a group added in increasing ``t``. None (reason in
        ``IMPRINT_STATUS.last_skip``) for non-CPU input, other dtypes or shapes, group values
        outside ``[0, groups)``, or when the kernel is unavailable.
    """
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 0:
        return _skip(f"groups = {groups!r} is not valid; expected an integer ≥ 0")
    named = {"u0": u0, "v0": v0, "weight": weight, "radius": radius, "group": group}
    reason = _check(chart, named, chart.real_dtype)
    if reason:
        return _skip(reason)
    if group.numel() and (int(group.min()) < 0 or int(group.max()) >= groups):
        lo, hi = int(group.min()), int(group.max())
        return _skip(f"group values span [{lo}, {hi}]; expected values in [0, {groups})")
    module = _load()
    if module is None:
        return _skip(f"kernel unavailable: {IMPRINT_STATUS.reason}")
    out: Tensor = module.imprint_angles(
        chart.u.contiguous(),
        chart.v.contiguous(),
        u0.contiguous(),
        v0.contiguous(),
        weight.contiguous(),
        radius.contiguous(),
        group.contiguous(),
        groups,
        _TOPOLOGY[chart.topology],
        chart.length,
        chart.half_width,
    )
    IMPRINT_STATUS.last_skip = ""
    return out


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
    module = _load()
    if module is None:
        return _skip(f"kernel unavailable: {IMPRINT_STATUS.reason}")
    out: Tensor = module.pair_factors(
        chart.u.contiguous(),
        chart.v.contiguous(),
        u0.contiguous(),
        v0.contiguous(),
        sign.contiguous(),
        float(separation),
        float(core_radius),
        abs_charge,
        _TOPOLOGY[chart.topology],
        chart.length,
        chart.half_width,
    )
    IMPRINT_STATUS.last_skip = ""
    return out
