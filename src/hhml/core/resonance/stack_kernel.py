"""One fused RK4 step for ``B`` stacks of ``S`` Möbius strips with per-env parameters.

The right-hand side for env ``b``, strip ``s``, node ``(i, j)`` is

    F(ψ, t) = g_b ψ + D_b Δψ − f_b Δ(Δψ) − c_b |ψ|²ψ − V_b ψ + S_b e^{−iω_b t} + κ_b C(ψ)

with Δ the seam-aware finite-volume Laplacian of
:func:`~hhml.core.mobius.lattice.band_laplacian` (per-node face coefficients, per-env seam
phase ``e^{iθ_b}``) and ``C(ψ)_s = W_s(ψ_{s+1} − ψ_s) − W_{s−1}(ψ_s − ψ_{s−1})`` the
inter-strip coupling of :meth:`~hhml.core.mobius.TokamakStack.coupling`. One classical RK4
step of this equation is computed by

- :func:`stack_rk4_step_reference` — plain torch, built from ``band_laplacian`` and the
  coupling exactly as :class:`~hhml.core.resonance.Simulator` evaluates them; the
  definition the kernel is tested against, and the path for non-CPU devices.
- :func:`cpp_stack_rk4_step` — the C++/OpenMP kernel ``csrc/stack_rk4.cpp``: each stage
  is one pass per strip that forms ``ψ + a·k`` on the fly and accumulates the RK4 sum;
  ``Δ(Δψ)`` is formed in the same pass (the stencil never leaves a strip), only for envs
  with ``f_b ≠ 0`` — decided in C++, per env. Threads take whole envs (all four stages
  back to back, in cache); only with fewer envs than threads and ≥ 2¹⁶ nodes do they share
  the strips ``(b, s)`` stage by stage. It is compiled with
  ``torch.utils.cpp_extension.load`` on first use (about a minute, then cached by torch in
  ``~/.cache/torch_extensions``). It returns None where it does not apply (non-CPU,
  non-contiguous, arguments outside the contract below) or cannot be built; the reason is
  recorded in :data:`STACK_STATUS` (and a failed build is logged) — never silently. Set
  ``HHML_CPP_KERNELS=0`` to disable it.

Argument contract (both functions; ``R`` is the real dtype of ``psi``'s precision)
    psi
        complex64 or complex128 ``[B, S, nu, nv]`` (``nu, nv ≥ 2``).
    coefficients
        ``(c_u+, c_u−, c_v+, c_v−)``, each ``R`` ``[B, S, nu, nv]`` (or, shared by all envs,
        ``[S, nu, nv]`` / ``[1, S, nu, nv]``; the four of one shape), already divided by
        the cell area factor, as ``band_laplacian`` takes them (1/length²).
    seam_phase
        ``e^{iθ_b}``: complex (psi's dtype) tensor with ``B`` elements, shape ``[B]`` or
        ``[B, 1, …]``; a Python complex; or None for θ = 0.
    growth, filter, frequency, coupling
        ``1 − γ`` (1/time), ν₄ (length⁴/time), ω (1/time), c (1/time): ``R`` tensors with
        ``B`` elements (``[B]`` or ``[B, 1, …]``) or Python reals (same for every env).
    diffusion, cubic
        ``D + iα`` (length²/time), ``g + iβ`` (1/(|ψ|²·time)): tensors of psi's dtype with
        ``B`` elements, or Python numbers.
    weights
        ``R`` ``[B, S−1, nu, nv]`` (or shared: ``[S−1, nu, nv]``, ``[1, S−1, nu, nv]``), or
        None (no coupling); dimensionless.
    potential
        ``R`` ``[B, nu, nv]`` (also ``[nu, nv]``, ``[1, nu, nv]``, ``[B or 1, 1, nu, nv]``)
        or None; the same for every strip of an env (1/time).
    source
        psi's dtype, shapes as ``potential``, amplitude included, or None.
    flip, periodic_v, ghost_sign
        The chart's seam rule (``True`` for topology ``"mobius"``), v-periodicity
        (``True`` for ``"torus"``; not together with ``flip``) and v-edge ghost sign
        (−1 Dirichlet, +1 Neumann; ignored when periodic).

All tensors on psi's device. Violations raise :class:`~hhml.errors.LatticeError` (shapes,
dtypes, chart flags) or :class:`~hhml.errors.ConfigError` (``t``, ``dt``) in the reference;
the kernel wrapper returns None for them instead.

Public names: :func:`cpp_stack_rk4_step`, :func:`cpp_stack_rk4_plan` (the checks of one
parameter set done once; :meth:`StackRK4Plan.step` per step), :func:`stack_rk4_step_reference`,
:data:`STACK_STATUS` (a :class:`~hhml.utils.cpp_build.KernelStatus`).
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from hhml.core.mobius.lattice import MobiusStrip, band_laplacian
from hhml.errors import ConfigError, HHmLError, LatticeError
from hhml.utils.cpp_build import CppKernel

__all__ = [
    "STACK_STATUS",
    "StackRK4Plan",
    "cpp_stack_rk4_plan",
    "cpp_stack_rk4_step",
    "stack_rk4_step_reference",
]

_SOURCE = Path(__file__).parent / "csrc" / "stack_rk4.cpp"

RealParam = Tensor | float
ComplexParam = Tensor | complex | float


_KERNEL = CppKernel(
    "hhml_stack_rk4_v1",
    _SOURCE,
    ["-O3", "-fopenmp"],
    what="stack RK4 kernel",
    fallback="use stack_rk4_step_reference",
)
#: Build state of the stack RK4 kernel (and why the last call returned None).
STACK_STATUS = _KERNEL.status
_load = _KERNEL.load


# ------------------------------------------------------------------- argument contract
@dataclass
class _Args:
    """Validated arguments; per-env tensors are ``[B]`` views, Python numbers kept."""

    psi: Tensor
    coefficients: tuple[Tensor, Tensor, Tensor, Tensor]
    seam_phase: Tensor | complex | None
    growth: Tensor | float
    diffusion: Tensor | complex
    cubic: Tensor | complex
    filter: Tensor | float
    frequency: Tensor | float
    coupling: Tensor | float
    weights: Tensor | None
    potential: Tensor | None  # [1 or B, nu, nv]
    source: Tensor | None  # [1 or B, nu, nv]
    flip: bool
    periodic_v: bool
    ghost_sign: float


def _tensor_param(name: str, value: Tensor, psi: Tensor, dtype: torch.dtype) -> Tensor:
    batch = psi.shape[0]
    if value.dtype != dtype or value.device != psi.device:
        raise LatticeError(
            f"{name} is a {value.dtype} tensor on {value.device}; expected {dtype} on "
            f"{psi.device}"
        )
    shape = tuple(value.shape)
    if value.dim() == 0 or shape[0] != batch or value.numel() != batch:
        raise LatticeError(f"{name} has shape {shape}; expected [{batch}] or [{batch}, 1, …]")
    return value.reshape(batch)


def _real_param(name: str, value: object, psi: Tensor, dtype: torch.dtype) -> Tensor | float:
    if isinstance(value, Tensor):
        return _tensor_param(name, value, psi, dtype)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise LatticeError(
            f"{name} = {value!r} is not valid; expected a real number or a {dtype} tensor"
        )
    return float(value)


def _complex_param(name: str, value: object, psi: Tensor) -> Tensor | complex:
    if isinstance(value, Tensor):
        return _tensor_param(name, value, psi, psi.dtype)
    if isinstance(value, bool) or not isinstance(value, numbers.Complex):
        raise LatticeError(
            f"{name} = {value!r} is not valid; expected a number or a {psi.dtype} tensor"
        )
    return complex(value)


def _shared_or_per_env(
    name: str, value: object, psi: Tensor, trailing: tuple[int, ...], dtype: torch.dtype
) -> Tensor:
    """``[B, *trailing]``, or ``[*trailing]`` / ``[1, *trailing]`` shared by all envs →
    ``[B or 1, *trailing]``."""
    batch = psi.shape[0]
    expected = f"{dtype} [{batch} or 1, {', '.join(map(str, trailing))}]"
    if not isinstance(value, Tensor):
        raise LatticeError(f"{name} is {type(value).__name__}; expected a tensor {expected}")
    shape = tuple(value.shape)
    if shape not in ((batch, *trailing), (1, *trailing), trailing) or value.dtype != dtype:
        raise LatticeError(f"{name} is {value.dtype} {list(shape)}; expected {expected}")
    if value.device != psi.device:
        raise LatticeError(f"{name} is on {value.device}; psi is on {psi.device}")
    return value if value.dim() == len(trailing) + 1 else value.unsqueeze(0)


def _profile(name: str, value: Tensor | None, psi: Tensor, dtype: torch.dtype) -> Tensor | None:
    if value is None:
        return None
    batch, _, nu, nv = psi.shape
    if not isinstance(value, Tensor) or value.dtype != dtype or value.device != psi.device:
        got = f"{value.dtype} on {value.device}" if isinstance(value, Tensor) else type(value)
        raise LatticeError(f"{name} is {got}; expected a {dtype} tensor on {psi.device}")
    shape = tuple(value.shape)
    lead = shape[:-2]
    ok = shape[-2:] == (nu, nv) and (
        lead in ((), (1,), (batch,)) or (len(lead) == 2 and lead[0] in (1, batch) and lead[1] == 1)
    )
    if not ok:
        raise LatticeError(
            f"{name} has shape {shape}; expected [{batch}, {nu}, {nv}] (or [{nu}, {nv}], "
            f"[1, {nu}, {nv}], [{batch} or 1, 1, {nu}, {nv}])"
        )
    return value.reshape(-1, nu, nv)


def _time_error(t: object, dt: object) -> str:
    """``""`` when ``t`` and ``dt`` are finite real numbers, else the reason."""
    for name, x in (("t", t), ("dt", dt)):
        if isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(x):
            return f"{name} = {x!r} is not valid; it must be a finite number"
    return ""


def _validate(
    psi: Tensor,
    t: float,
    dt: float,
    coefficients: Sequence[Tensor],
    seam_phase: Tensor | complex | None,
    growth: RealParam,
    diffusion: ComplexParam,
    cubic: ComplexParam,
    filter: RealParam,
    frequency: RealParam,
    coupling: RealParam,
    weights: Tensor | None,
    potential: Tensor | None,
    source: Tensor | None,
    flip: bool,
    periodic_v: bool,
    ghost_sign: float,
) -> _Args:
    """Check the contract of the module docstring; raise LatticeError/ConfigError."""
    reason = _time_error(t, dt)
    if reason:
        raise ConfigError(reason)
    if not isinstance(psi, Tensor) or psi.dtype not in (torch.complex64, torch.complex128):
        got = psi.dtype if isinstance(psi, Tensor) else type(psi).__name__
        raise LatticeError(f"psi is {got}; expected a complex64 or complex128 tensor")
    if psi.dim() != 4 or psi.shape[2] < 2 or psi.shape[3] < 2:
        raise LatticeError(f"psi has shape {tuple(psi.shape)}; expected [B, S, nu, nv], nu, nv ≥ 2")
    real = torch.float64 if psi.dtype == torch.complex128 else torch.float32
    strips, nu, nv = psi.shape[1:]
    if len(coefficients) != 4:
        raise LatticeError(
            f"coefficients has {len(coefficients)} entries; expected (cup, cum, cvp, cvm)"
        )
    coefs = tuple(
        _shared_or_per_env(f"coefficient {name}", c, psi, (strips, nu, nv), real)
        for name, c in zip(("cup", "cum", "cvp", "cvm"), coefficients, strict=True)
    )
    if len({c.shape for c in coefs}) > 1:
        shapes = [list(c.shape) for c in coefs]
        raise LatticeError(f"coefficients have shapes {shapes}; all four must have one shape")
    phase = None if seam_phase is None else _complex_param("seam_phase", seam_phase, psi)
    if weights is not None:
        weights = _shared_or_per_env("weights", weights, psi, (strips - 1, nu, nv), real)
    if flip and periodic_v:
        raise LatticeError(
            "flip=True with periodic_v=True is not a chart of this library; use flip for "
            "topology 'mobius', periodic_v for 'torus'"
        )
    if ghost_sign not in (-1.0, 1.0):
        raise LatticeError(
            f"ghost_sign = {ghost_sign!r} is not valid; use -1 (Dirichlet) or +1 (Neumann)"
        )
    return _Args(
        psi=psi,
        coefficients=(coefs[0], coefs[1], coefs[2], coefs[3]),
        seam_phase=phase,
        growth=_real_param("growth", growth, psi, real),
        diffusion=_complex_param("diffusion", diffusion, psi),
        cubic=_complex_param("cubic", cubic, psi),
        filter=_real_param("filter", filter, psi, real),
        frequency=_real_param("frequency", frequency, psi, real),
        coupling=_real_param("coupling", coupling, psi, real),
        weights=weights,
        potential=_profile("potential", potential, psi, real),
        source=_profile("source", source, psi, psi.dtype),
        flip=bool(flip),
        periodic_v=bool(periodic_v),
        ghost_sign=float(ghost_sign),
    )


# ------------------------------------------------------------------------- reference
@functools.lru_cache(maxsize=32)
def _chart(nu: int, nv: int, flip: bool, periodic_v: bool, ghost_sign: float) -> MobiusStrip:
    """A flat chart carrying the seam rule and edge ghosts (θ = 0; coefficients are passed)."""
    topology = "mobius" if flip else ("torus" if periodic_v else "cylinder")
    edge = "dirichlet" if ghost_sign < 0 else "neumann"
    return MobiusStrip(nu, nv, topology=topology, edge=edge)


def _column(x: Tensor | float | complex) -> Tensor | float | complex:
    """``[B]`` → ``[B, 1, 1, 1]`` (broadcasts against ``[B, S, nu, nv]``); numbers as is."""
    return x.reshape(-1, 1, 1, 1) if isinstance(x, Tensor) else x


def _is_zero(x: Tensor | float | complex) -> bool:
    """True only for a Python zero (a tensor is never inspected: no device sync)."""
    return not isinstance(x, Tensor) and x == 0


def _coupling(psi: Tensor, weights: Tensor) -> Tensor:
    """``W_s(ψ_{s+1} − ψ_s) − W_{s−1}(ψ_s − ψ_{s−1})``, as ``TokamakStack.coupling``."""
    out = torch.zeros_like(psi)
    if psi.shape[1] == 1:
        return out
    diff = weights * (psi[:, 1:] - psi[:, :-1])
    out[:, :-1] += diff
    out[:, 1:] -= diff
    return out


def _reference_rhs(a: _Args, psi: Tensor, t: float) -> Tensor:
    nu, nv = psi.shape[-2:]
    chart = _chart(nu, nv, a.flip, a.periodic_v, a.ghost_sign)
    phase = None if a.seam_phase is None else _column(a.seam_phase)
    lap = band_laplacian(psi, chart, a.coefficients, phase)
    growth, diffusion, cubic = _column(a.growth), _column(a.diffusion), _column(a.cubic)
    out: Tensor = (
        growth * psi + diffusion * lap - cubic * (psi.real.square() + psi.imag.square()) * psi
    )
    if not _is_zero(a.filter):
        out = out - _column(a.filter) * band_laplacian(lap, chart, a.coefficients, phase)
    if a.potential is not None:
        out = out - a.potential.unsqueeze(1) * psi
    if a.source is not None:
        if isinstance(a.frequency, Tensor):
            angle = a.frequency.reshape(-1, 1, 1) * t
            rot: Tensor | complex = torch.polar(torch.ones_like(angle), -angle)
        else:
            rot = complex(math.cos(a.frequency * t), -math.sin(a.frequency * t))
        out = out + (a.source * rot).unsqueeze(1)
    if a.weights is not None and not _is_zero(a.coupling):
        out = out + _column(a.coupling) * _coupling(psi, a.weights)
    return out


def stack_rk4_step_reference(
    psi: Tensor,
    t: float,
    dt: float,
    *,
    coefficients: Sequence[Tensor],
    seam_phase: Tensor | complex | None,
    growth: RealParam,
    diffusion: ComplexParam,
    cubic: ComplexParam,
    filter: RealParam,
    frequency: RealParam,
    coupling: RealParam,
    weights: Tensor | None,
    potential: Tensor | None,
    source: Tensor | None,
    flip: bool,
    periodic_v: bool,
    ghost_sign: float,
) -> Tensor:
    """One classical RK4 step of the stack equation, eager torch (any device).

    Parameters are described in the module docstring (shapes, dtypes, units); ``t`` and
    ``dt`` are the current time and the step (lattice time units).

    Returns
    -------
    Tensor
        ``ψ(t + dt)``, shape and dtype of ``psi``.

    Raises
    ------
    LatticeError, ConfigError
        If an argument breaks the contract (the message names it and what is valid).
    """
    a = _validate(
        psi,
        t,
        dt,
        coefficients,
        seam_phase,
        growth,
        diffusion,
        cubic,
        filter,
        frequency,
        coupling,
        weights,
        potential,
        source,
        flip,
        periodic_v,
        ghost_sign,
    )
    t, dt = float(t), float(dt)
    # the stage combinations of hhml.core.resonance.integrators.runge_kutta.RK4.step
    k = _reference_rhs(a, psi, t)
    acc = k.clone()
    k = _reference_rhs(a, torch.add(psi, k, alpha=0.5 * dt), t + 0.5 * dt)
    acc.add_(k, alpha=2.0)
    k = _reference_rhs(a, torch.add(psi, k, alpha=0.5 * dt), t + 0.5 * dt)
    acc.add_(k, alpha=2.0)
    k = _reference_rhs(a, torch.add(psi, k, alpha=dt), t + dt)
    acc.add_(k)
    return torch.add(psi, acc, alpha=dt / 6.0)


# ---------------------------------------------------------------------------- kernel
def _vector(x: Tensor | float | complex, psi: Tensor, dtype: torch.dtype) -> Tensor:
    """A contiguous ``[B]`` tensor (Python numbers are broadcast to every env)."""
    if isinstance(x, Tensor):
        return x.contiguous()
    return torch.full((psi.shape[0],), x, dtype=dtype)


def _skip(reason: str) -> Tensor | None:
    """Record why the kernel does not apply; returns None (for ``return _skip(...)``)."""
    STACK_STATUS.last_skip = reason
    return None


@dataclass(frozen=True)
class StackRK4Plan:
    """The checked kernel arguments of one parameter set (:func:`cpp_stack_rk4_plan`).

    :meth:`step` runs the kernel for any ``psi`` of the planned shape and dtype with only
    ``psi``, ``t`` and ``dt`` checked: the per-step cost of a simulator whose parameters
    stay fixed between steps. The plan holds the parameter tensors themselves (a
    non-contiguous one as a contiguous copy), so the kernel reads their values at each
    step; a caller whose parameters change makes a new plan (``FieldEquation`` keys its
    plan on the argument objects, and every rebuild of the parameters makes new ones).
    """

    shape: tuple[int, ...]
    dtype: torch.dtype
    arguments: tuple[object, ...]
    chart: tuple[bool, bool, float]

    def step(self, psi: Tensor, t: float, dt: float) -> Tensor | None:
        """One RK4 step of ``psi`` by the kernel, or None (reason in
        ``STACK_STATUS.last_skip``) for a ``psi`` other than planned (shape, dtype, a
        non-CPU device, non-contiguous) or a non-finite ``t``/``dt``."""
        if (
            not isinstance(psi, Tensor)
            or tuple(psi.shape) != self.shape
            or psi.dtype != self.dtype
            or psi.device.type != "cpu"
            or not psi.is_contiguous()
        ):
            got = f"{psi.dtype} {tuple(psi.shape)}" if isinstance(psi, Tensor) else type(psi)
            return _skip(
                f"psi is {got}; the plan is for a contiguous CPU {self.dtype} {self.shape}"
            )
        reason = _time_error(t, dt)
        if reason:
            return _skip(reason)
        module = _load()
        if module is None:
            return _skip(f"kernel unavailable: {STACK_STATUS.reason}")
        out: Tensor = module.stack_rk4_step(psi, *self.arguments, float(t), float(dt), *self.chart)
        STACK_STATUS.last_skip = ""
        return out


def cpp_stack_rk4_plan(
    psi: Tensor,
    *,
    coefficients: Sequence[Tensor],
    seam_phase: Tensor | complex | None,
    growth: RealParam,
    diffusion: ComplexParam,
    cubic: ComplexParam,
    filter: RealParam,
    frequency: RealParam,
    coupling: RealParam,
    weights: Tensor | None,
    potential: Tensor | None,
    source: Tensor | None,
    flip: bool,
    periodic_v: bool,
    ghost_sign: float,
) -> StackRK4Plan | None:
    """The arguments of :func:`cpp_stack_rk4_step` but ``t`` and ``dt``, checked once.

    ``psi`` fixes the planned shape and dtype (its values are not read). Returns None —
    with the reason in ``STACK_STATUS.last_skip`` — where :func:`cpp_stack_rk4_step` would
    for these arguments (a non-CPU ``psi``, non-contiguous tensors, arguments outside the
    contract, the kernel unavailable).
    """
    try:
        a = _validate(
            psi,
            0.0,
            0.0,
            coefficients,
            seam_phase,
            growth,
            diffusion,
            cubic,
            filter,
            frequency,
            coupling,
            weights,
            potential,
            source,
            flip,
            periodic_v,
            ghost_sign,
        )
    except HHmLError as exc:
        _skip(f"arguments outside the contract: {exc}")
        return None
    if psi.device.type != "cpu":
        _skip(f"psi is on {psi.device}; the kernel runs on the CPU")
        return None
    named = {
        "psi": psi,
        "cup": a.coefficients[0],
        "cum": a.coefficients[1],
        "cvp": a.coefficients[2],
        "cvm": a.coefficients[3],
        "weights": a.weights,
        "potential": a.potential,
        "source": a.source,
    }
    for name, x in named.items():
        if x is not None and not x.is_contiguous():
            _skip(f"{name} is not contiguous")
            return None
    if _load() is None:
        _skip(f"kernel unavailable: {STACK_STATUS.reason}")
        return None
    real = a.coefficients[0].dtype
    empty_r = torch.empty(0, dtype=real)
    empty_c = torch.empty(0, dtype=psi.dtype)
    seam = empty_c if a.seam_phase is None else _vector(a.seam_phase, psi, psi.dtype)
    with_coupling = a.weights is not None and psi.shape[1] > 1
    arguments = (
        *a.coefficients,
        seam,
        _vector(a.growth, psi, real),
        _vector(a.diffusion, psi, psi.dtype),
        _vector(a.cubic, psi, psi.dtype),
        _vector(a.filter, psi, real),
        _vector(a.frequency, psi, real),
        _vector(a.coupling, psi, real),
        a.weights if with_coupling and a.weights is not None else empty_r,
        empty_r if a.potential is None else a.potential,
        empty_c if a.source is None else a.source,
    )
    return StackRK4Plan(
        shape=tuple(psi.shape),
        dtype=psi.dtype,
        arguments=arguments,
        chart=(a.flip, a.periodic_v, a.ghost_sign),
    )


def cpp_stack_rk4_step(
    psi: Tensor,
    t: float,
    dt: float,
    *,
    coefficients: Sequence[Tensor],
    seam_phase: Tensor | complex | None,
    growth: RealParam,
    diffusion: ComplexParam,
    cubic: ComplexParam,
    filter: RealParam,
    frequency: RealParam,
    coupling: RealParam,
    weights: Tensor | None,
    potential: Tensor | None,
    source: Tensor | None,
    flip: bool,
    periodic_v: bool,
    ghost_sign: float,
) -> Tensor | None:
    """One RK4 step by the C++/OpenMP kernel, or None where it does not apply.

    Same arguments and result as :func:`stack_rk4_step_reference` (equal to rounding).
    Returns None — with the reason in ``STACK_STATUS.last_skip`` — for tensors not on the
    CPU, non-contiguous ``psi``/coefficients/weights/potential/source, arguments outside
    the contract, or when the kernel cannot be built (``STACK_STATUS.reason``). A
    simulator stepping with fixed parameters keeps a :class:`StackRK4Plan` instead
    (:func:`cpp_stack_rk4_plan`: the checks once, not at every step).
    """
    plan = cpp_stack_rk4_plan(
        psi,
        coefficients=coefficients,
        seam_phase=seam_phase,
        growth=growth,
        diffusion=diffusion,
        cubic=cubic,
        filter=filter,
        frequency=frequency,
        coupling=coupling,
        weights=weights,
        potential=potential,
        source=source,
        flip=flip,
        periodic_v=periodic_v,
        ghost_sign=ghost_sign,
    )
    return None if plan is None else plan.step(psi, t, dt)
