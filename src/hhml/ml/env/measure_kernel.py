"""C++/OpenMP kernel for the vortex measurement of the environments (CPU fast path).

:func:`measure_cpu` does on the CPU what the padded torch code of
:func:`hhml.ml.env.measure.measure_vortices` does on any device — winding numbers,
statistics of all vortices, positions and depths of the first ``K`` per strip, hexatic
order and ages — in one pass per strip (OpenMP over the ``B·S`` strips), with work
∝ plaquettes + n_s·(neighbours found) instead of dense ``[B·S, K, K]`` tensors, and
reduces the per-strip sums to the per-environment features itself. Its numbers equal the
torch code's (same integers, positions and ages; depths, hexatic order and the mean age
to rounding) and do not depend on the thread count.

Version 4 of the kernel (this one) gives version 3's results (the mean age to rounding)
with ``measure_vortices`` 1.6x faster at 128 environments and 1.7x at one, and
:func:`moment_sums_cpu` about 2x faster at 128 (1 thread; ``benchmarks/bench_measure.py``):
each edge angle of the winding numbers is computed once for both plaquettes beside it;
the nearest neighbours of the hexatic order are ranked without branches (the insertion
list only where distances tie) and ψ₆ is evaluated for all points of a strip at once; the
matching keeps the allowed links in flat arrays and each round after the first visits
only the links between still unlinked points; the per-environment features are reduced
in C++; the moment pass runs one vectorised loop per strip.

The source is ``csrc/measure.cpp``; it is compiled with
``torch.utils.cpp_extension.load`` on first use (tens of seconds, then cached by torch
in ``~/.cache/torch_extensions``). If compilation is not possible,
:data:`KERNEL_STATUS` records why and a warning is logged — never silently — and
``measure_vortices`` runs the torch code. Set ``HHML_CPP_KERNELS=0`` to disable it.

:func:`moment_sums_cpu` gives the per-strip sums behind
:func:`hhml.ml.env.observables.moment_tensors` (area, ``|ψ|²``, ``|ψ|⁴`` and the gradient
energy through the ensemble's five-point Laplacian) in one pass, in place of a torch
Laplacian and four weighted reductions (one vectorised loop over each strip's nodes).

Public names: :func:`load`, :func:`measure_cpu`, :func:`moment_sums_cpu`, :data:`KERNEL`,
:data:`KERNEL_STATUS`, ``KernelStatus`` (from :mod:`hhml.utils.cpp_build`).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from hhml.core.mobius.stack import chart_of
from hhml.errors import ConfigError
from hhml.utils.cpp_build import CppKernel, KernelStatus

if TYPE_CHECKING:
    from hhml.core.mobius import LatticeEnsemble, MobiusStrip, TokamakStack
    from hhml.ml.env.measure import VortexMeasurement, VortexTracks

__all__ = ["KERNEL", "KERNEL_STATUS", "KernelStatus", "load", "measure_cpu", "moment_sums_cpu"]

_SOURCE = Path(__file__).parent / "csrc" / "measure.cpp"
_TOPOLOGY = {"mobius": 0, "cylinder": 1, "torus": 2}
# the rows of the kernel's per-environment features [8, B]
_FEATURES = (
    "count",
    "vortex_density",
    "mean_abs_charge",
    "multi_charge_fraction",
    "net_charge_density",
    "core_depth",
    "hexatic_order",
    "mean_age",
)


#: The measurement kernel (built on first use).
KERNEL = CppKernel(
    "hhml_env_measure_v4",
    _SOURCE,
    # no FMA contraction: the kernel reproduces the torch code's roundings
    ["-O3", "-fopenmp", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math"],
    what="measurement kernel",
    fallback="using the torch code",
    warn_disabled=True,
)
#: Build state of the measurement kernel.
KERNEL_STATUS = KERNEL.status


def load() -> ModuleType | None:
    """The compiled kernel module, building it on first call; None if unavailable."""
    return KERNEL.load()


def measure_cpu(
    psi: Tensor,
    lattice: MobiusStrip | TokamakStack,
    seam_row: Tensor,
    tracks: VortexTracks,
    dt: Tensor,
    *,
    max_vortices: int,
    track_distance: float,
    min_points: int,
    neighbours: int,
    rounds: int,
) -> tuple[VortexMeasurement, VortexTracks]:
    """The measurement of :func:`~hhml.ml.env.measure.measure_vortices` by the kernel.

    Parameters
    ----------
    psi
        CPU complex field ``[B, S, nu, nv]`` of the lattice's dtype.
    lattice
        Its lattice.
    seam_row
        ``[B, S, 1, nv]``: the +u neighbours of the last row (seam flip and twist
        applied, as :func:`~hhml.core.mobius.neighbours.u_plus` gives them).
    tracks, dt
        Tracker state ``[B, S, K]`` and time steps float64 ``[B]``.
    max_vortices, track_distance, neighbours
        As in ``measure_vortices``.
    min_points
        ``max(min_vortices_for_order, neighbours + 1)``.
    rounds
        Mutual-nearest-neighbour rounds.

    Returns
    -------
    VortexMeasurement, VortexTracks
        As ``measure_vortices``. The eight per-environment features are rows of one
        float64 ``[8, B]`` tensor computed by the kernel (the torch code's reductions; the
        mean age from compensated sums).

    Raises
    ------
    ConfigError
        The kernel is not built (callers check :func:`load` first).
    """
    from hhml.ml.env.measure import VortexMeasurement, VortexTracks

    module = load()
    if module is None:
        raise ConfigError(f"the C++ measurement kernel is unavailable: {KERNEL_STATUS.reason}")
    chart = chart_of(lattice)
    f64 = torch.float64
    B, S, nu, nv = (int(n) for n in psi.shape)
    K, N = max_vortices, B * S
    ghost = seam_row.to(psi.dtype).reshape(N, nv).contiguous()
    features, overflow, oi, oj, charge, position, depth, age, valid = module.measure_strips(
        psi.reshape(N, nu, nv).contiguous(),
        ghost,
        tracks.position.to(f64).reshape(N, K, 2).contiguous(),
        tracks.charge.to(torch.int64).reshape(N, K).contiguous(),
        tracks.age.to(f64).reshape(N, K).contiguous(),
        tracks.valid.to(torch.bool).reshape(N, K).contiguous(),
        dt[:, None].expand(B, S).reshape(N).contiguous(),
        K,
        S,
        _TOPOLOGY[chart.topology],
        chart.length,
        chart.half_width,
        chart.du,
        chart.dv,
        float(torch.finfo(chart.u.dtype).tiny),
        track_distance,
        min_points,
        neighbours,
        rounds,
    )
    shape = (B, S, K)
    valid = valid.reshape(shape)
    age = age.reshape(shape)
    meas = VortexMeasurement(
        valid=valid,
        i=oi.reshape(shape),
        j=oj.reshape(shape),
        charge=charge.reshape(shape),
        position=position.reshape(B, S, K, 2),
        depth=depth.reshape(shape),
        overflow=overflow.reshape(B, S),
        **dict(zip(_FEATURES, features.unbind(0), strict=True)),
    )
    tracks_out = VortexTracks(position=meas.position, charge=meas.charge, age=age, valid=valid)
    return meas, tracks_out


def moment_sums_cpu(psi: Tensor, lattice: LatticeEnsemble) -> Tensor | None:
    """Per-strip sums of :func:`~hhml.ml.env.observables.moment_tensors`, or None.

    Parameters
    ----------
    psi
        CPU complex field ``[B, S, nu, nv]`` of the lattice's dtype.
    lattice
        A :class:`~hhml.core.mobius.LatticeEnsemble` with an embedded metric.

    Returns
    -------
    Tensor or None
        float64 ``[B, S, 4]``: ``Σ area``, ``Σ area·|ψ|²``, ``Σ area·|ψ|⁴`` and
        ``Σ area·Re(ψ̄ Δψ)`` over each strip (``Δ`` the ensemble's Laplacian; each
        per-node product rounded in the field's precision as the torch code rounds it,
        the sums accumulated in float64). None where it does not apply (another device,
        dtype, lattice or metric) or when the kernel is unavailable.
    """
    from hhml.core.mobius import LatticeEnsemble
    from hhml.core.mobius.neighbours import u_minus, u_plus

    if not isinstance(lattice, LatticeEnsemble) or lattice.metric == "flat":
        return None
    chart = lattice.strip
    if psi.device.type != "cpu" or psi.dtype != chart.dtype or psi.dim() != 4:
        return None
    module = load()
    if module is None:
        return None
    B, S, nu, nv = (int(n) for n in psi.shape)
    N = B * S
    real = chart.real_dtype
    phase = lattice.seam_phase.to(psi.dtype)
    # the ghost rows of band_laplacian: the +u neighbours of the last row, −u of the first
    up = u_plus(psi[..., :1, :], chart.flip, phase).reshape(N, nv).contiguous()
    dn = u_minus(psi[..., -1:, :], chart.flip, phase).reshape(N, nv).contiguous()
    coefs = [c.expand(B, S, nu, nv).reshape(N, nu, nv) for c in lattice.face_coefficients(real)]
    area = lattice.area_weights().to(real).expand(B, S, nu, nv).reshape(N, nu, nv)
    out: Tensor = module.moment_sums(
        psi.reshape(N, nu, nv).contiguous(),
        up,
        dn,
        *(c.contiguous() for c in coefs),
        area.contiguous(),
        chart.periodic_v,
        float(chart.ghost_sign),
    )
    return out.reshape(B, S, 4)
