"""Fused flat-metric stencils: the lattice Laplacian and the CGL right-hand side.

This module holds the hot numerical path of :class:`~hhml.core.resonance.Simulator` for
lattices with the flat metric (docs/physics.md): the seam-aware five-point Laplacian and the
complex Ginzburg–Landau right-hand side

    ∂ψ/∂t = (1 − γ)ψ + (D + iα)Δψ − (g + iβ)|ψ|²ψ − Vψ + S,

each in two implementations that agree to rounding:

* a **compiled** kernel (``torch.compile``, inductor backend), built lazily on first use and
  cached per (kind, topology, edge, shapes, dtype, device);
* an **eager** kernel in plain complex tensor arithmetic, used when ``compiled=False``, for
  grids too small for compilation to pay off, and — with a one-time logged warning and
  :data:`COMPILE_STATUS` saying so — when compilation is unavailable.

Why a real representation: inductor does not fuse complex-dtype arithmetic, so the compiled
kernel works on ``torch.view_as_real(psi)`` flattened to rows of interleaved
``(re, im)`` pairs, shape ``[..., nu, 2·nv]``. Inductor's C++ backend vectorises only
unit-stride loads, so every load in the bulk of the grid is an offset slice of that buffer:
a v-neighbour is two columns away, and multiplication by ``i`` swaps each pair with a sign
(``(iψ).re = −ψ.im``, ``(iψ).im = ψ.re``), which is a select between the columns one to the
right and one to the left, chosen by column parity. Inner-dimension masks are slow in the
generated code, so the two v-edges are computed from small ghost-padded strips and the result
is assembled with one ``cat`` whose pieces inductor writes straight into the output; the
u-seam enters through realised ghost rows (the seam flips and twists them, see
:func:`seam_ghost_rows`).

Public names: :func:`flat_cgl_rhs`, :func:`flat_laplacian`, :data:`COMPILE_STATUS`,
:class:`CompileStatus`, :data:`TOPOLOGIES`, :data:`EDGES`, :data:`MIN_COMPILED_NODES`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import types
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

import torch
from torch import Tensor
from torch.nn.functional import pad

from hhml.errors import ConfigError, LatticeError

__all__ = [
    "COMPILE_STATUS",
    "EDGES",
    "MIN_COMPILED_NODES",
    "TOPOLOGIES",
    "CompileStatus",
    "flat_cgl_rhs",
    "flat_laplacian",
]

_log = logging.getLogger(__name__)

#: A physical coefficient: a Python number or a real tensor broadcastable to ``[..., 1, 1]``
#: (one value per batch element).
Coefficient = float | Tensor

#: Seam identifications of the u direction (docs/physics.md, geometry).
TOPOLOGIES: Final[tuple[str, ...]] = ("mobius", "cylinder", "torus")
#: Boundary conditions at the v edges (ignored by ``torus``, which is periodic in v).
EDGES: Final[tuple[str, ...]] = ("dirichlet", "neumann")
#: With ``compiled=None``, grids with fewer nodes per field than this use the eager kernel:
#: compiling a new shape costs seconds, which only pays off on large grids.
MIN_COMPILED_NODES: Final[int] = 128 * 128

# The compiled stencil reads up to 3 columns (doubles) beyond the block it computes. The bulk
# block therefore leaves out _PAD = 4 columns (2 nodes) at each v edge; those come from edge
# strips holding the outer _STRIP = 8 field columns plus _PAD ghost-padding columns. The
# compiled path needs nv >= 4 nodes, so that the two strips cover the grid.
_STRIP: Final[int] = 8
_PAD: Final[int] = 4
_MIN_NV_COMPILED: Final[int] = 4

# Layout of the packed coefficient vector (last dimension of ``coef``).
# CGL: ψ, u-neighbour sum, v-neighbour sum, i·(u-sum), i·(v-sum), i·ψ, g, β, cos θ, sin θ.
_C_PSI, _C_U, _C_V, _C_IU, _C_IV, _C_IPSI, _C_G, _C_BETA, _C_COS, _C_SIN = range(10)
# Laplacian: 1/du², 1/dv², −2(1/du² + 1/dv²), cos θ, sin θ.
_L_U, _L_V, _L_PSI, _L_COS, _L_SIN = range(5)


@dataclass
class CompileStatus:
    """Whether the compiled kernels are in use, readable by any caller.

    Attributes
    ----------
    state
        ``"untried"`` before the first compiled call, ``"ok"`` once a kernel compiled,
        ``"unavailable"`` after compilation failed (every later call runs eagerly).
    reason
        Why compilation is unavailable (the exception text), empty otherwise.
    kernels
        Number of compiled kernels built in this process.
    compile_seconds
        Wall-clock seconds spent building them (first call of each, including codegen and
        the C++ compiler).
    """

    state: Literal["untried", "ok", "unavailable"] = "untried"
    reason: str = ""
    kernels: int = 0
    compile_seconds: float = 0.0

    @property
    def available(self) -> bool:
        """``False`` once compilation has failed in this process."""
        return self.state != "unavailable"


#: Process-wide compile status; see :class:`CompileStatus`.
COMPILE_STATUS: Final[CompileStatus] = CompileStatus()

_KernelFn = Callable[..., Tensor]


@dataclass
class _KernelEntry:
    """A compiled kernel with the constant inputs it is called with."""

    kernel: _KernelFn
    parity: Tensor
    compiled_once: bool


_KERNELS: dict[tuple[object, ...], _KernelEntry] = {}
_KERNELS_LOCK = threading.Lock()


# --------------------------------------------------------------------------------------
# Input checks and coefficient packing
# --------------------------------------------------------------------------------------


def _check_field(psi: Tensor, topology: str, edge: str) -> None:
    if not isinstance(psi, Tensor) or psi.dtype not in (torch.complex64, torch.complex128):
        got = psi.dtype if isinstance(psi, Tensor) else type(psi).__name__
        raise LatticeError(f"psi must be a complex64 or complex128 tensor, got {got}")
    if psi.dim() < 2 or psi.shape[-2] < 2 or psi.shape[-1] < 1:
        raise LatticeError(
            f"psi must have shape [..., nu, nv] with nu >= 2 and nv >= 1, got {tuple(psi.shape)}"
        )
    if topology not in TOPOLOGIES:
        raise LatticeError(f"topology must be one of {TOPOLOGIES}, got {topology!r}")
    if edge not in EDGES:
        raise LatticeError(f"edge must be one of {EDGES}, got {edge!r}")


def _check_spacing(du: float, dv: float) -> None:
    for name, value in (("du", du), ("dv", dv)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise LatticeError(f"{name} must be a positive finite number, got {value!r}")


def _v_mode(topology: str, edge: str) -> str:
    """How the v edges close: ``periodic`` on the torus, else the edge condition."""
    return "periodic" if topology == "torus" else edge


_PACKED: OrderedDict[tuple[object, ...], Tensor] = OrderedDict()
_PACKED_MAX: Final[int] = 64


def _broadcast_shapes(*shapes: tuple[int, ...] | torch.Size) -> tuple[int, ...]:
    """Numpy broadcasting of shapes; :class:`ValueError` when they do not broadcast."""
    ndim = max((len(s) for s in shapes), default=0)
    out = [1] * ndim
    for shape in shapes:
        for axis, size in enumerate(shape, start=ndim - len(shape)):
            if size != 1:
                if out[axis] not in (1, size):
                    raise ValueError(f"shapes {[tuple(s) for s in shapes]} do not broadcast")
                out[axis] = size
    return tuple(out)


def _pack(values: list[Coefficient], dtype: torch.dtype, device: torch.device) -> Tensor:
    """Stack coefficients into ``[K]`` (all numbers) or ``[*B, 1, 1, K]`` (per batch).

    All-number coefficient sets are cached (LRU): an integrator calls the kernel several
    times per step with the same values, and building a small tensor costs as much as the
    kernel on small grids.
    """
    tensors = [v for v in values if isinstance(v, Tensor)]
    if not tensors:
        key = (*(float(v) for v in values), dtype, device)
        packed = _PACKED.get(key)
        if packed is None:
            packed = torch.tensor(key[:-2], dtype=dtype, device=device)
            _PACKED[key] = packed
            if len(_PACKED) > _PACKED_MAX:
                _PACKED.popitem(last=False)
        else:
            _PACKED.move_to_end(key)
        return packed
    shape = _broadcast_shapes(*(t.shape for t in tensors))
    cols = [torch.as_tensor(v, dtype=dtype, device=device).expand(shape) for v in values]
    return torch.stack(cols, dim=-1)


def _check_coefficient(name: str, value: Coefficient, psi: Tensor) -> None:
    if isinstance(value, Tensor):
        if value.is_complex():
            raise ConfigError(f"{name} must be real, got a {value.dtype} tensor")
        per_batch = value.numel() != 1
        if per_batch and (value.dim() < 3 or value.shape[-1] != 1 or value.shape[-2] != 1):
            raise ConfigError(
                f"{name} must be a number or a tensor of shape [..., 1, 1] (one value per "
                f"batch element), got shape {tuple(value.shape)}"
            )
        try:
            shape = _broadcast_shapes(value.shape, psi.shape)
        except ValueError:
            shape = ()
        if shape != psi.shape:
            raise ConfigError(
                f"{name} of shape {tuple(value.shape)} does not match the batch dimensions "
                f"of the field shape {tuple(psi.shape)}"
            )
    elif not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a real number or tensor, got {type(value).__name__}")


def _twist_cos_sin(twist: Coefficient) -> tuple[Coefficient, Coefficient]:
    if isinstance(twist, Tensor):
        t = twist.to(torch.float64) if not twist.is_floating_point() else twist
        return torch.cos(t), torch.sin(t)
    return math.cos(float(twist)), math.sin(float(twist))


def check_cgl_arguments(
    psi: Tensor,
    topology: str,
    edge: str,
    du: float,
    dv: float,
    coefficients: Mapping[str, Coefficient],
    potential: Tensor | None,
    source: Tensor | None,
) -> None:
    """The argument checks every flat CGL kernel (right-hand side or RK4 step) makes:
    field and chart, spacings, each named coefficient, potential and source.

    Raises
    ------
    LatticeError, ConfigError
        The first argument that does not fit, by name.
    """
    _check_field(psi, topology, edge)
    _check_spacing(du, dv)
    for name, value in coefficients.items():
        _check_coefficient(name, value, psi)
    _check_extra("potential", potential, psi, complex_ok=False)
    _check_extra("source", source, psi, complex_ok=True)


def _check_extra(name: str, value: Tensor | None, psi: Tensor, *, complex_ok: bool) -> None:
    if value is None:
        return
    if not isinstance(value, Tensor):
        raise ConfigError(f"{name} must be a tensor or None, got {type(value).__name__}")
    if value.is_complex() and not complex_ok:
        raise ConfigError(f"{name} must be real, got a {value.dtype} tensor")
    try:
        shape = _broadcast_shapes(value.shape, psi.shape)
    except ValueError as err:
        raise ConfigError(
            f"{name} of shape {tuple(value.shape)} does not broadcast to the field shape "
            f"{tuple(psi.shape)}"
        ) from err
    if shape != psi.shape:
        raise ConfigError(
            f"{name} of shape {tuple(value.shape)} would enlarge the field shape "
            f"{tuple(psi.shape)} to {tuple(shape)}"
        )


# --------------------------------------------------------------------------------------
# Eager kernels (complex arithmetic)
# --------------------------------------------------------------------------------------


def _real_dtype(cdtype: torch.dtype) -> torch.dtype:
    return torch.float64 if cdtype == torch.complex128 else torch.float32


def _complex_coef(re: Coefficient, im: Coefficient, psi: Tensor) -> complex | Tensor:
    """``re + i·im`` as a Python complex or a complex tensor matching ``psi``."""
    if not isinstance(re, Tensor) and not isinstance(im, Tensor):
        return complex(float(re), float(im))
    real = _real_dtype(psi.dtype)
    re_t = torch.as_tensor(re, dtype=real, device=psi.device)
    im_t = torch.as_tensor(im, dtype=real, device=psi.device)
    shape = _broadcast_shapes(re_t.shape, im_t.shape)
    return torch.complex(re_t.expand(shape), im_t.expand(shape))


def _real_coef(value: Coefficient, psi: Tensor) -> float | Tensor:
    if isinstance(value, Tensor):
        return value.to(dtype=_real_dtype(psi.dtype), device=psi.device)
    return float(value)


def _eager_seam_rows(psi: Tensor, topology: str, twist: Coefficient) -> tuple[Tensor, Tensor]:
    """Complex ghost rows ``(above_last, below_first)``, each ``[..., 1, nv]``."""
    phase = _complex_coef(*_twist_cos_sin(twist), psi)
    first, last = psi[..., :1, :], psi[..., -1:, :]
    if topology == "mobius":
        # The seam identifies v with −v: cell j meets cell nv−1−j.
        first, last = first.flip(-1), last.flip(-1)
    if isinstance(phase, Tensor):
        return first * phase, last * phase.conj()
    return first * phase, last * phase.conjugate()


def _eager_laplacian(
    psi: Tensor, topology: str, edge: str, twist: Coefficient, du: float, dv: float
) -> Tensor:
    """Seam-aware five-point Laplacian by in-place slice updates; ``[..., nu, nv]``."""
    a, b = 1.0 / du**2, 1.0 / dv**2
    above, below = _eager_seam_rows(psi, topology, twist)
    lap = psi * (-2.0 * (a + b))
    lap[..., :-1, :].add_(psi[..., 1:, :], alpha=a)
    lap[..., 1:, :].add_(psi[..., :-1, :], alpha=a)
    lap[..., -1:, :].add_(above, alpha=a)
    lap[..., :1, :].add_(below, alpha=a)
    lap[..., :, :-1].add_(psi[..., :, 1:], alpha=b)
    lap[..., :, 1:].add_(psi[..., :, :-1], alpha=b)
    mode = _v_mode(topology, edge)
    if mode == "periodic":
        lap[..., :, -1:].add_(psi[..., :, :1], alpha=b)
        lap[..., :, :1].add_(psi[..., :, -1:], alpha=b)
    else:
        # Cell-centred ghosts: −ψ(edge) makes ψ vanish on the edge, +ψ(edge) its derivative.
        sign = -1.0 if mode == "dirichlet" else 1.0
        lap[..., :, -1:].add_(psi[..., :, -1:], alpha=sign * b)
        lap[..., :, :1].add_(psi[..., :, :1], alpha=sign * b)
    return lap


def _eager_cgl_rhs(
    psi: Tensor,
    topology: str,
    edge: str,
    twist: Coefficient,
    du: float,
    dv: float,
    damping: Coefficient,
    diffusion: Coefficient,
    dispersion: Coefficient,
    nonlinearity: Coefficient,
    nonlinear_frequency: Coefficient,
    potential: Tensor | None,
    source: Tensor | None,
) -> Tensor:
    """CGL right-hand side in complex arithmetic; ``[..., nu, nv]``."""
    lap = _eager_laplacian(psi, topology, edge, twist, du, dv)
    out = lap.mul_(_complex_coef(diffusion, dispersion, psi))
    out.add_(psi * (1.0 - _real_coef(damping, psi)))
    density = torch.view_as_real(psi).square().sum(-1)
    # coefficient times density first: with g = β = 0 the term is exactly 0 even if |ψ|²ψ overflows
    out.sub_(psi * (density * _complex_coef(nonlinearity, nonlinear_frequency, psi)))
    if potential is not None:
        out.sub_(psi * potential.to(dtype=density.dtype, device=psi.device))
    if source is not None:
        out.add_(source.to(dtype=psi.dtype, device=psi.device))
    return out


# --------------------------------------------------------------------------------------
# Compiled kernels (real, interleaved representation)
# --------------------------------------------------------------------------------------


def _shift_columns(t: Tensor, k: int) -> Tensor:
    """``t`` read ``k`` columns to the right (``t[..., j + k]``), zero outside."""
    if k > 0:
        return pad(t[..., k:], (0, k))
    return pad(t[..., :k], (-k, 0))


def _times_i(left: Tensor, right: Tensor, real_slot: Tensor) -> Tensor:
    """Multiplication by i in the interleaved layout, given the columns beside each slot.

    ``(i·z).re = −z.im`` sits one column left of ``z.im`` and ``(i·z).im = z.re`` one column
    right of ``z.re``: so a real slot takes ``−right`` and an imaginary slot ``left``.
    """
    return torch.where(real_slot, -right, left)


def seam_ghost_rows(
    x: Tensor, cos: Tensor, sin: Tensor, parity: Tensor, flip: bool
) -> tuple[Tensor, Tensor]:
    """Ghost rows across the u seam, in the interleaved real layout.

    Parameters
    ----------
    x
        Field rows, shape ``[..., nu, 2·nv]`` (``re, im`` interleaved).
    cos, sin
        cos θ and sin θ of the seam twist, broadcastable to ``[..., 1, 1]``.
    parity
        ``[2·nv]``, 1 on real columns.
    flip
        ``True`` for the Möbius seam (cell j meets cell nv−1−j).

    Returns
    -------
    above_last, below_first
        ``e^{iθ}·ψ(0, ·)`` and ``e^{−iθ}·ψ(nu−1, ·)`` (flipped for Möbius), each
        ``[..., 1, 2·nv]``.
    """
    nv = x.shape[-1] // 2
    real_slot = parity > 0.5

    def twisted(row: Tensor, s: Tensor) -> Tensor:
        if flip:
            # Reverse the node order, keep (re, im) order inside each node.
            row = row.reshape(*row.shape[:-1], nv, 2).flip(-2).flatten(-2)
        i_row = _times_i(_shift_columns(row, -1), _shift_columns(row, 1), real_slot)
        return cos * row + s * i_row

    return twisted(x[..., :1, :], sin), twisted(x[..., -1:, :], -sin)


def _edge_strips(t: Tensor, v_mode: str) -> tuple[Tensor, Tensor]:
    """The 8 edge columns at each side of ``t`` (``[..., R, W]``) with 4 ghost columns.

    Returns ``left, right``, each ``[..., R, 12]``: next to the field columns sits the
    v-ghost node, and outside it 2 zero columns that only unselected lanes of the parity
    select ever read. Built with ``cat`` so inductor materialises the strips: inlined, their
    masked loads would be repeated for every stencil load of the edge blocks.
    """
    width = t.shape[-1]
    zero = torch.zeros_like(t[..., :2])
    first, last = t[..., :2], t[..., width - 2 :]
    if v_mode == "periodic":
        ghost_left, ghost_right = last, first
    elif v_mode == "dirichlet":
        ghost_left, ghost_right = -first, -last
    else:
        ghost_left, ghost_right = first, last
    left = torch.cat((zero, ghost_left, t[..., :_STRIP]), dim=-1)
    right = torch.cat((t[..., width - _STRIP :], ghost_right, zero), dim=-1)
    return left, right


def _block(
    p: Tensor,
    real_slot: Tensor,
    c0: int,
    c1: int,
    coef: Tensor,
    potential: Tensor | None,
    source: Tensor | None,
    laplacian_only: bool,
) -> Tensor:
    """Output columns ``[c0, c1)`` of the row-padded strip ``p`` (``[..., nu + 2, Ws]``).

    Rows 0 and nu + 1 of ``p`` are the seam ghost rows; columns ``c0 − 3 … c1 + 2`` must
    exist, so every load is an offset slice with unit stride along the vectorised
    dimension. ``real_slot`` is ``[c1 − c0]``, true on real columns (``c0`` is even).
    ``potential``/``source`` are already cut to the block's output columns.
    """

    def at(k: int) -> Tensor:
        return p[..., 1:-1, c0 + k : c1 + k]

    def u_sum(k: int) -> Tensor:
        return p[..., 2:, c0 + k : c1 + k] + p[..., :-2, c0 + k : c1 + k]

    x = at(0)
    if laplacian_only:
        return (
            coef[..., _L_U] * u_sum(0) + coef[..., _L_V] * (at(2) + at(-2)) + coef[..., _L_PSI] * x
        )
    # i·ψ and i·(neighbour sums): the v-neighbours of a slot's partner are 1 and 3
    # columns away, the u-neighbours' partners 1 column away in the rows above and below.
    i_psi = _times_i(at(-1), at(1), real_slot)
    i_u = _times_i(u_sum(-1), u_sum(1), real_slot)
    i_v = _times_i(at(1) + at(-3), at(3) + at(-1), real_slot)
    density = x * x + i_psi * i_psi
    out = (
        coef[..., _C_PSI] * x
        + coef[..., _C_U] * u_sum(0)
        + coef[..., _C_V] * (at(2) + at(-2))
        + coef[..., _C_IU] * i_u
        + coef[..., _C_IV] * i_v
        - coef[..., _C_IPSI] * i_psi
        - density * (coef[..., _C_G] * x + coef[..., _C_BETA] * i_psi)
    )
    if potential is not None:
        out = out - potential * x
    if source is not None:
        out = out + source
    return out


def _columns(extra: Tensor | None, start: int, stop: int) -> Tensor | None:
    """Columns ``[start, stop)`` of a potential/source; ``None`` and v-constant pass through."""
    if extra is None or extra.shape[-1] == 1:
        return extra
    return extra[..., start:stop]


def _real_kernel(
    x: Tensor,
    coef: Tensor,
    parity: Tensor,
    potential: Tensor | None,
    source: Tensor | None,
    *,
    flip: bool,
    v_mode: str,
    laplacian_only: bool,
) -> Tensor:
    """Flat-metric Laplacian or CGL rhs in the interleaved real layout.

    Parameters
    ----------
    x
        Field, ``[..., nu, 2·nv]`` with ``nv >= 4``, real dtype.
    coef
        Packed coefficients, ``[K]`` or ``[*B, 1, 1, K]`` (see ``_C_*`` / ``_L_*``).
    parity
        ``[2·nv]``, 1 on real (even) columns and 0 on imaginary ones.
    potential, source
        Real tensors broadcastable to ``x`` (interleaved already), or ``None``.
    flip, v_mode, laplacian_only
        Möbius seam, v closure (``periodic``/``dirichlet``/``neumann``), kernel kind.

    Returns
    -------
    Tensor
        ``[..., nu, 2·nv]``, contiguous.
    """
    width = x.shape[-1]
    cos_i, sin_i = (_L_COS, _L_SIN) if laplacian_only else (_C_COS, _C_SIN)
    above, below = seam_ghost_rows(x, coef[..., cos_i], coef[..., sin_i], parity, flip)
    real_slot = parity > 0.5
    # One copy of the field between its seam ghost rows: the stencil then reads the u
    # neighbours as plain row offsets, with no per-row masks in the vectorised loop (and the
    # ghost rows, built with a reversed load for Möbius, are not inlined into it). Reading
    # the seam rows through row masks instead measured 2-3x slower on 512² and no faster on
    # 2048², where the kernel is memory-bound.
    padded = torch.cat((below, x, above), dim=-2)
    left, right = _edge_strips(padded, v_mode)

    def block(strip: Tensor, c0: int, first: int, count: int) -> Tensor:
        # Output columns [c0, c0 + count) of ``strip`` are field columns [first, +count).
        return _block(
            strip,
            real_slot[first : first + count],
            c0,
            c0 + count,
            coef,
            _columns(potential, first, first + count),
            _columns(source, first, first + count),
            laplacian_only,
        )

    # The bulk reads only unmasked column offsets; the 4 columns at each v edge come from
    # small ghost-padded strips. One cat writes all pieces straight into the output.
    pieces = [block(left, _PAD, 0, _PAD)]
    if width > _STRIP:
        pieces.append(block(padded, _PAD, _PAD, width - _STRIP))
    pieces.append(block(right, _PAD, width - _PAD, _PAD))
    return torch.cat(pieces, dim=-1)


def _fresh_function(fn: Callable[..., Tensor], name: str) -> Callable[..., Tensor]:
    """A copy of ``fn`` with its own code object.

    TorchDynamo keeps its compiled-graph cache (and its recompile limit) per code object, so
    each cache entry of this module gets a private code object: specialising one kernel to a
    new shape or topology can then neither evict nor count against another.
    """
    code = fn.__code__.replace(co_name=name)
    copy = types.FunctionType(code, fn.__globals__, name, fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__ = fn.__kwdefaults__
    return copy


def _make_compiled(flip: bool, v_mode: str, lap_only: bool) -> _KernelFn:
    def kernel(
        x: Tensor, coef: Tensor, parity: Tensor, potential: Tensor | None, source: Tensor | None
    ) -> Tensor:
        return _real_kernel(
            x,
            coef,
            parity,
            potential,
            source,
            flip=flip,
            v_mode=v_mode,
            laplacian_only=lap_only,
        )

    name = f"flat_{'laplacian' if lap_only else 'cgl_rhs'}_{len(_KERNELS)}"
    compiled = torch.compile(_fresh_function(kernel, name), dynamic=False, fullgraph=True)
    return compiled


def dynamo_disabled_reason() -> str:
    """``""``, or why TorchDynamo is switched off in this process (``TORCH_COMPILE_DISABLE``
    or ``torch._dynamo.config.disable``); shared by every compiled hhml kernel."""
    import torch._dynamo

    if bool(torch._dynamo.config.disable):
        return "TorchDynamo is disabled (TORCH_COMPILE_DISABLE or torch._dynamo.config.disable)"
    return ""


def _compile_disabled_reason() -> str:
    """Why compilation cannot be used in this process, or ``""``."""
    if not COMPILE_STATUS.available:
        return COMPILE_STATUS.reason
    return dynamo_disabled_reason()


def _mark_unavailable(reason: str) -> None:
    COMPILE_STATUS.state = "unavailable"
    COMPILE_STATUS.reason = reason
    _log.warning(
        "torch.compile is unavailable (%s); hhml flat-metric kernels run eagerly from now on "
        "(same equations, slower). See hhml.core.resonance.flat_kernels.COMPILE_STATUS.",
        reason,
    )


def _use_compiled(compiled: bool | None, psi: Tensor) -> bool:
    if compiled is False or psi.shape[-1] < _MIN_NV_COMPILED:
        return False
    if compiled is None and psi.shape[-2] * psi.shape[-1] < MIN_COMPILED_NODES:
        return False
    return COMPILE_STATUS.state != "unavailable"


class _InterleavedCache:
    """Last interleaved copy of a potential/source, reused while the tensor is unchanged.

    Identity plus ``Tensor._version`` (bumped by every in-place write through torch) decide
    whether the cached copy is still valid; the cache holds a reference so the identity
    cannot be recycled.
    """

    def __init__(self) -> None:
        self._src: Tensor | None = None
        self._version = -1
        self._dtype: torch.dtype | None = None
        self._value: Tensor | None = None

    def get(self, src: Tensor, dtype: torch.dtype, make: Callable[[], Tensor]) -> Tensor:
        if (
            self._src is src
            and self._version == src._version
            and self._dtype == dtype
            and self._value is not None
        ):
            return self._value
        value = make()
        self._src, self._version, self._dtype, self._value = src, src._version, dtype, value
        return value


_POTENTIAL_CACHE = _InterleavedCache()
_SOURCE_CACHE = _InterleavedCache()


def _interleaved_potential(potential: Tensor, real: torch.dtype, device: torch.device) -> Tensor:
    """Real potential ``[..., nu|1, nv|1]`` → broadcastable to ``[..., nu, 2·nv]``."""
    if potential.dim() == 0 or potential.shape[-1] == 1:
        return potential.to(dtype=real, device=device)

    def make() -> Tensor:
        v = potential.to(dtype=real, device=device)
        return v.unsqueeze(-1).expand(*v.shape, 2).flatten(-2).contiguous()

    return _POTENTIAL_CACHE.get(potential, real, make)


def _interleaved_source(
    source: Tensor, nv: int, cdtype: torch.dtype, device: torch.device
) -> Tensor:
    """Complex source broadcastable to ``[..., nu, nv]`` → real ``[..., nu|1, 2·nv]``."""
    if (
        source.dim() >= 1
        and source.shape[-1] == nv
        and source.dtype == cdtype
        and source.device == device
        and source.stride(-1) == 1
        and not source.is_conj()
    ):
        # A view: no copy for the common full-width source.
        return torch.view_as_real(source).flatten(-2)

    def make() -> Tensor:
        s = source.to(dtype=cdtype, device=device).resolve_conj()
        s = s.reshape((1,) * max(0, 2 - s.dim()) + tuple(s.shape))
        s = s.expand(*s.shape[:-1], nv).contiguous()
        return torch.view_as_real(s).flatten(-2)

    return _SOURCE_CACHE.get(source, cdtype, make)


def _build_kernel(key: tuple[object, ...], x: Tensor) -> _KernelEntry | None:
    """Create the compiled kernel for ``key``; ``None`` if compilation is unavailable."""
    reason = _compile_disabled_reason()
    if reason:
        _mark_unavailable(reason)
        return None
    kind, topology, v_mode = str(key[0]), str(key[1]), str(key[2])
    kernel = _make_compiled(topology == "mobius", v_mode, kind == "laplacian")
    parity = (torch.arange(x.shape[-1], device=x.device) % 2 == 0).to(x.dtype)
    return _KernelEntry(kernel, parity, compiled_once=False)


def _run_compiled(
    psi: Tensor,
    kind: str,
    topology: str,
    v_mode: str,
    coef: Tensor,
    potential: Tensor | None,
    source: Tensor | None,
) -> Tensor | None:
    """Run (building on first use) the compiled kernel; ``None`` if compilation failed."""
    shape = psi.shape
    x = torch.view_as_real(psi).view(*shape[:-1], 2 * shape[-1])
    key = (
        kind,
        topology,
        v_mode,
        shape,
        psi.dtype,
        psi.device,
        coef.shape,
        None if potential is None else potential.shape,
        None if source is None else source.shape,
        # Inductor fixes the OpenMP thread count of a kernel when it compiles it.
        torch.get_num_threads(),
    )
    entry = _KERNELS.get(key)
    if entry is None:
        with _KERNELS_LOCK:
            entry = _KERNELS.get(key) or _build_kernel(key, x)
            if entry is None:
                return None
            _KERNELS[key] = entry
    if entry.compiled_once:
        out = entry.kernel(x, coef, entry.parity, potential, source)
    else:
        start = time.perf_counter()
        try:
            out = entry.kernel(x, coef, entry.parity, potential, source)
        except Exception as err:  # any backend failure means "no working compiler"
            with _KERNELS_LOCK:
                _KERNELS.pop(key, None)
            _mark_unavailable(f"{type(err).__name__}: {err}".splitlines()[0][:300])
            return None
        elapsed = time.perf_counter() - start
        entry.compiled_once = True
        COMPILE_STATUS.state = "ok"
        COMPILE_STATUS.kernels += 1
        COMPILE_STATUS.compile_seconds += elapsed
        _log.info("compiled %s kernel for %s %s in %.1f s", kind, tuple(shape), psi.dtype, elapsed)
    return torch.view_as_complex(out.view(*shape, 2))


def _cgl_coefficients(
    twist: Coefficient,
    du: float,
    dv: float,
    damping: Coefficient,
    diffusion: Coefficient,
    dispersion: Coefficient,
    nonlinearity: Coefficient,
    nonlinear_frequency: Coefficient,
    real: torch.dtype,
    device: torch.device,
) -> Tensor:
    """The packed CGL coefficient vector of the compiled kernel (layout ``_C_*``):
    ``[10]`` for numbers, ``[*B, 1, 1, 10]`` with per-batch tensors."""
    a, b = 1.0 / du**2, 1.0 / dv**2
    cos, sin = _twist_cos_sin(twist)
    # Fold the −2ψ of both stencil directions into the ψ coefficient.
    return _pack(
        [
            1.0 - damping - 2.0 * (a + b) * diffusion,
            diffusion * a,
            diffusion * b,
            dispersion * a,
            dispersion * b,
            2.0 * (a + b) * dispersion,
            nonlinearity,
            nonlinear_frequency,
            cos,
            sin,
        ],
        real,
        device,
    )


# --------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------


def flat_laplacian(
    psi: Tensor,
    *,
    topology: str,
    edge: str,
    twist: Coefficient,
    du: float,
    dv: float,
    compiled: bool | None = None,
) -> Tensor:
    """Seam-aware five-point Laplacian of a field on a flat-metric strip.

    Δψ = (ψ[i+1,j] − 2ψ + ψ[i−1,j])/du² + (ψ[i,j+1] − 2ψ + ψ[i,j−1])/dv², with the u seam
    ψ[nu, j] = e^{iθ}ψ[0, j*] and ψ[−1, j] = e^{−iθ}ψ[nu−1, j*] (j* = nv−1−j for
    ``mobius``, j otherwise) and, across v, periodic closure (``torus``) or cell-centred
    ghosts −ψ (``dirichlet``) / +ψ (``neumann``) at the edge cells.

    Parameters
    ----------
    psi
        Field, complex64 or complex128, shape ``[..., nu, nv]`` (leading batch dims allowed),
        nu ≥ 2.
    topology
        ``"mobius"``, ``"cylinder"`` or ``"torus"``.
    edge
        ``"dirichlet"`` or ``"neumann"`` (ignored for ``torus``).
    twist
        Seam twist θ in radians: a number or a real tensor broadcastable to ``[..., 1, 1]``.
    du, dv
        Cell sizes along u (L/nu) and v (2w/nv), in length units.
    compiled
        ``True``: use the compiled kernel; ``False``: the eager one; ``None`` (default): the
        compiled kernel for grids of at least :data:`MIN_COMPILED_NODES` nodes. Where
        compilation is unavailable the eager kernel runs (logged once, see
        :data:`COMPILE_STATUS`).

    Returns
    -------
    Tensor
        Δψ, same shape and dtype as ``psi``, contiguous, in units of ψ / length².
    """
    _check_field(psi, topology, edge)
    _check_spacing(du, dv)
    _check_coefficient("twist", twist, psi)
    if psi.is_conj():
        psi = psi.resolve_conj()
    if not psi.is_contiguous():
        psi = psi.contiguous()
    if _use_compiled(compiled, psi):
        real = torch.float64 if psi.dtype == torch.complex128 else torch.float32
        a, b = 1.0 / du**2, 1.0 / dv**2
        cos, sin = _twist_cos_sin(twist)
        coef = _pack([a, b, -2.0 * (a + b), cos, sin], real, psi.device)
        out = _run_compiled(psi, "laplacian", topology, _v_mode(topology, edge), coef, None, None)
        if out is not None:
            return out
    return _eager_laplacian(psi, topology, edge, twist, du, dv)


def flat_cgl_rhs(
    psi: Tensor,
    *,
    topology: str,
    edge: str,
    twist: Coefficient,
    du: float,
    dv: float,
    damping: Coefficient,
    diffusion: Coefficient,
    dispersion: Coefficient,
    nonlinearity: Coefficient,
    nonlinear_frequency: Coefficient,
    potential: Tensor | None = None,
    source: Tensor | None = None,
    compiled: bool | None = None,
) -> Tensor:
    """Complex Ginzburg–Landau right-hand side on a flat-metric strip.

    rhs = (1 − γ)ψ + (D + iα)Δψ − (g + iβ)|ψ|²ψ − Vψ + S, with Δ the seam-aware Laplacian
    of :func:`flat_laplacian`.

    Parameters
    ----------
    psi
        Field, complex64 or complex128, shape ``[..., nu, nv]``, nu ≥ 2.
    topology, edge, twist, du, dv
        Lattice, as in :func:`flat_laplacian`.
    damping, diffusion, dispersion, nonlinearity, nonlinear_frequency
        γ, D, α, g, β (1/time, length²/time, length²/time, 1/(|ψ|²·time), 1/(|ψ|²·time)):
        numbers, or real tensors broadcastable to ``[..., 1, 1]`` for per-batch values.
    potential
        V, real, broadcastable to ``psi`` (1/time), or ``None``.
    source
        S, complex, broadcastable to ``psi`` (ψ/time), or ``None``. A full-width contiguous
        complex ``source`` of the field's dtype is used without a copy; other shapes are
        interleaved once and cached while the tensor is unchanged (same for ``potential``
        with a v-dependence).
    compiled
        As in :func:`flat_laplacian`.

    Returns
    -------
    Tensor
        ∂ψ/∂t, same shape and dtype as ``psi``, contiguous.
    """
    named = {
        "twist": twist,
        "damping": damping,
        "diffusion": diffusion,
        "dispersion": dispersion,
        "nonlinearity": nonlinearity,
        "nonlinear_frequency": nonlinear_frequency,
    }
    check_cgl_arguments(psi, topology, edge, du, dv, named, potential, source)
    if psi.is_conj():
        psi = psi.resolve_conj()
    if not psi.is_contiguous():
        psi = psi.contiguous()
    if _use_compiled(compiled, psi):
        real = torch.float64 if psi.dtype == torch.complex128 else torch.float32
        coef = _cgl_coefficients(
            twist,
            du,
            dv,
            damping,
            diffusion,
            dispersion,
            nonlinearity,
            nonlinear_frequency,
            real,
            psi.device,
        )
        v2 = None if potential is None else _interleaved_potential(potential, real, psi.device)
        s2 = (
            None
            if source is None
            else _interleaved_source(source, psi.shape[-1], psi.dtype, psi.device)
        )
        out = _run_compiled(psi, "cgl", topology, _v_mode(topology, edge), coef, v2, s2)
        if out is not None:
            return out
    return _eager_cgl_rhs(
        psi,
        topology,
        edge,
        twist,
        du,
        dv,
        damping,
        diffusion,
        dispersion,
        nonlinearity,
        nonlinear_frequency,
        potential,
        source,
    )
