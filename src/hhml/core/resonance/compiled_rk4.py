"""Compiled fused RK4 steps: four stages and their combinations in one ``torch.compile`` graph.

The classical RK4 step ``ψ' = ψ + dt/6·(k₁ + 2k₂ + 2k₃ + k₄)`` written as four right-hand
side calls plus torch axpys spends most of its time in the stage combinations (each is a
full pass over the field). Here the whole step is one function compiled by inductor, so
each stage input ``ψ + a·k`` can be formed inside the stencil pass that reads it and the
RK4 sum accumulated in that pass's epilogue (inductor decides what it materialises; each
graph gets a private code object, so kernels never evict each other from TorchDynamo's
cache). It is the device-portable counterpart of the
C++ CPU kernels (:func:`~hhml.core.resonance.cpp_kernels.cpp_flat_rk4_step`,
:func:`~hhml.core.resonance.stack_kernel.cpp_stack_rk4_step`): the path for CUDA, and for
CPUs where the C++ kernels cannot be built or are disabled (``HHML_CPP_KERNELS=0``).

* :func:`compiled_stack_rk4_step` — ``B`` stacks of ``S`` strips with per-env parameter
  tensors ``[B]`` (the batched environment's case). Same arguments and result as
  :func:`~hhml.core.resonance.stack_kernel.stack_rk4_step_reference` (the equation and
  the argument contract are in :mod:`~hhml.core.resonance.stack_kernel`). Inductor does
  not fuse complex arithmetic, so the graph works on the real and imaginary parts as two
  real fields (split from ``psi`` by one copy before the graph, written back interleaved
  by its last pass); seam and edge neighbours are zero-padded shifts with the ghost
  selected in by index, which inductor fuses into the stencil passes.
* :func:`compiled_flat_rk4_step` — flat-metric strips ``[..., nu, nv]`` (numbers or
  per-batch coefficient tensors), built from the interleaved-real stencil of
  :mod:`~hhml.core.resonance.flat_kernels`; the step of the RK4 of
  :func:`~hhml.core.resonance.flat_kernels.flat_cgl_rhs` with the source rotated as
  ``S·e^{−iωt}`` at each stage time.

Every number that changes between calls (``t``, ``dt``, the parameters) enters the graph as
a tensor, so a kernel is compiled once per (kind, chart flags, terms present, shapes, dtype,
device, thread count) and never for new values (``dynamic=False``). The first call of each
compiles it (seconds on a GPU, a minute or more on a small CPU). Both functions return
None when compilation is unavailable — with the reason in :data:`RK4_COMPILE_STATUS` and a
warning logged once — never silently; the caller then runs the unfused RK4.

Public names: :func:`compiled_stack_rk4_step`, :func:`compiled_flat_rk4_step`,
:data:`RK4_COMPILE_STATUS`, :class:`FusedStepStatus`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.nn.functional import pad

from hhml.core.resonance.flat_kernels import (
    Coefficient,
    CompileStatus,
    _cgl_coefficients,
    _fresh_function,
    _interleaved_potential,
    _real_kernel,
    _v_mode,
    check_cgl_arguments,
    dynamo_disabled_reason,
)
from hhml.core.resonance.stack_kernel import ComplexParam, RealParam, _validate
from hhml.errors import ConfigError, LatticeError

__all__ = [
    "RK4_COMPILE_STATUS",
    "FusedStepStatus",
    "compiled_flat_rk4_step",
    "compiled_stack_rk4_step",
]

_log = logging.getLogger(__name__)


@dataclass
class FusedStepStatus(CompileStatus):
    """Whether the compiled fused RK4 steps are in use, and why not.

    Attributes
    ----------
    state, reason, kernels, compile_seconds
        As in :class:`~hhml.core.resonance.flat_kernels.CompileStatus`: ``"untried"``,
        ``"ok"`` once a step compiled, ``"unavailable"`` after compilation failed (then
        every call returns None and the reason says why).
    last_skip
        Why the most recent request for a compiled step was declined (set by callers
        that decide, e.g. :meth:`Simulator.fused_rk4_step`, and by the functions here
        when compilation is unavailable); ``""`` after a compiled step ran.
    """

    last_skip: str = ""


#: Process-wide status of the compiled fused RK4 steps; see :class:`FusedStepStatus`.
RK4_COMPILE_STATUS = FusedStepStatus()

_KernelFn = Callable[..., Tensor]


@dataclass
class _Entry:
    kernel: _KernelFn
    compiled_once: bool


_STEPS: dict[tuple[object, ...], _Entry] = {}
_LOCK = threading.Lock()


# ---------------------------------------------------------------------- compile plumbing
def _disabled_reason() -> str:
    if not RK4_COMPILE_STATUS.available:
        return RK4_COMPILE_STATUS.reason
    return dynamo_disabled_reason()


def _mark_unavailable(reason: str) -> None:
    RK4_COMPILE_STATUS.state = "unavailable"
    RK4_COMPILE_STATUS.reason = reason
    RK4_COMPILE_STATUS.last_skip = f"compilation unavailable: {reason}"
    _log.warning(
        "torch.compile is unavailable (%s); hhml RK4 steps run unfused from now on (same "
        "equations, slower). See hhml.core.resonance.compiled_rk4.RK4_COMPILE_STATUS.",
        reason,
    )


def _run(
    key: tuple[object, ...], make: Callable[[], _KernelFn], args: tuple[Tensor | None, ...]
) -> Tensor | None:
    """Run the compiled kernel of ``key`` (built by ``make`` on first use), or None."""
    entry = _STEPS.get(key)
    if entry is None:
        with _LOCK:
            entry = _STEPS.get(key)
            if entry is None:
                reason = _disabled_reason()
                if reason:
                    if RK4_COMPILE_STATUS.state != "unavailable":
                        _mark_unavailable(reason)
                    RK4_COMPILE_STATUS.last_skip = f"compilation unavailable: {reason}"
                    return None
                entry = _Entry(torch.compile(make(), dynamic=False, fullgraph=True), False)
                _STEPS[key] = entry
    if entry.compiled_once:
        out = entry.kernel(*args)
    else:
        start = time.perf_counter()
        try:
            out = entry.kernel(*args)
        except Exception as err:  # any backend failure means "no working compiler"
            with _LOCK:
                _STEPS.pop(key, None)
            _mark_unavailable(f"{type(err).__name__}: {err}".splitlines()[0][:300])
            return None
        elapsed = time.perf_counter() - start
        entry.compiled_once = True
        RK4_COMPILE_STATUS.state = "ok"
        RK4_COMPILE_STATUS.kernels += 1
        RK4_COMPILE_STATUS.compile_seconds += elapsed
        _log.info("compiled the fused RK4 step %s in %.1f s", key[:2], elapsed)
    RK4_COMPILE_STATUS.last_skip = ""
    return out


def _host_vector(values: Sequence[float], dtype: torch.dtype, device: torch.device) -> Tensor:
    """A small tensor of Python numbers on ``device``, without waiting for the device
    (pinned host memory and an asynchronous copy on CUDA)."""
    host = torch.tensor(values, dtype=dtype)
    if device.type == "cpu":
        return host
    if device.type == "cuda":
        host = host.pin_memory()
    return host.to(device, non_blocking=True)


def _stage_times(
    t: float, dt: float, frequency: Tensor | float, real: torch.dtype, device: torch.device
) -> Tensor:
    """``[dt/2, dt, dt/6]`` followed by the source rotation data.

    A number ``ω``: ``cos ωτ, −sin ωτ`` for τ = t, t + dt/2, t + dt, in double precision
    on the host (as ``Simulator._source_at`` forms them). A tensor ``ω``: the three times
    τ, and the graph forms ``ω·τ`` in the field's precision (as the reference does).
    """
    taus = (t, t + 0.5 * dt, t + dt)
    values = [0.5 * dt, dt, dt / 6.0]
    if isinstance(frequency, Tensor):
        values += list(taus)
    else:
        for tau in taus:
            phase = float(frequency) * tau
            values += [math.cos(phase), -math.sin(phase)]
    return _host_vector(values, real, device)


def _rotation(hv: Tensor, freq: Tensor | None, stage: int) -> tuple[Tensor, Tensor]:
    """``(cos ωτ, −sin ωτ)`` of stage time ``stage`` (0: t, 1: t + dt/2, 2: t + dt)."""
    if freq is None:
        return hv[3 + 2 * stage], hv[4 + 2 * stage]
    angle = freq * hv[3 + stage]
    return torch.cos(angle), -torch.sin(angle)


class _TensorKeyedCache:
    """One cached value derived from a tuple of tensors/numbers, reused while every tensor
    is the same memory with the same version (``Tensor._version`` counts in-place writes).
    The cache keeps the tensors alive, so their memory cannot be reused meanwhile."""

    def __init__(self) -> None:
        self._key: tuple[object, ...] | None = None
        self._held: tuple[object, ...] = ()
        self._value: Tensor | None = None

    @staticmethod
    def _describe(x: object) -> object:
        if isinstance(x, Tensor):
            return ("T", x.data_ptr(), x._version, x.shape, x.stride(), x.dtype, x.device)
        return ("N", x)

    def get(self, items: tuple[object, ...], make: Callable[[], Tensor]) -> Tensor:
        key = tuple(self._describe(x) for x in items)
        if self._value is not None and key == self._key:
            return self._value
        value = make()
        self._key, self._held, self._value = key, items, value
        return value


# ------------------------------------------------------------------------ stack step
# Columns of the per-env parameter matrix [B or 1, 10].
_P_GROWTH, _P_DR, _P_DI, _P_CR, _P_CI, _P_FILTER, _P_COUPLING, _P_SR, _P_SI, _P_FREQ = range(10)
_STACK_PARAMS = _TensorKeyedCache()


def _parameter_matrix(values: Sequence[Tensor | float], real: torch.dtype, psi: Tensor) -> Tensor:
    """``[B, K]`` (``[1, K]`` when every value is a number) of the real values, column by
    column: tensor copies and scalar fills on the device, no host round trip."""
    batch = psi.shape[0] if any(isinstance(v, Tensor) for v in values) else 1
    out = torch.empty((batch, len(values)), dtype=real, device=psi.device)
    for k, v in enumerate(values):
        out[:, k] = v
    return out


def _stack_kernel(
    flip: bool,
    periodic_v: bool,
    ghost_sign: float,
    seam: bool,
    use_filter: bool,
    use_coupling: bool,
    use_potential: bool,
    use_source: bool,
    freq_tensor: bool,
    rhs_only: bool = False,
) -> _KernelFn:
    """The fused step of the stack equation for one chart and set of terms (planar real);
    ``rhs_only``: the right-hand side at the first stage time instead (a benchmark
    baseline: the compiled right-hand side with the stage combinations in torch)."""

    def kernel(
        x: Tensor,
        cup: Tensor,
        cum: Tensor,
        cvp: Tensor,
        cvm: Tensor,
        p: Tensor,
        hv: Tensor,
        weights: Tensor | None,
        potential: Tensor | None,
        source: Tensor | None,
    ) -> Tensor:
        def col(k: int) -> Tensor:
            return p[:, k].reshape(-1, 1, 1, 1)

        nu, nv = x.shape[-2], x.shape[-1]
        rows = torch.arange(nu, device=x.device).reshape(nu, 1)
        cols = torch.arange(nv, device=x.device)
        first_row, last_row = rows == 0, rows == nu - 1
        first_col, last_col = cols == 0, cols == nv - 1

        def lap(yr: Tensor, yi: Tensor) -> tuple[Tensor, Tensor]:
            def seam_rows(y: Tensor) -> tuple[Tensor, Tensor]:
                first, last = y[..., :1, :], y[..., -1:, :]
                if flip:
                    first, last = first.flip(-1), last.flip(-1)
                return first, last

            fr, lr = seam_rows(yr)
            fi, li = seam_rows(yi)
            if seam:
                # above the last row e^{iθ}·ψ(first), below the first e^{−iθ}·ψ(last)
                pr, pi = col(_P_SR), col(_P_SI)
                fr, fi = fr * pr - fi * pi, fr * pi + fi * pr
                lr, li = lr * pr + li * pi, li * pr - lr * pi

            def one(y: Tensor, above: Tensor, below: Tensor) -> Tensor:
                # Neighbours as zero-padded shifts with the seam/edge ghost selected in by
                # index: pointwise with masked loads, which inductor fuses into the pass
                # that reads them (a cat would be materialised, one buffer per neighbour).
                up = torch.where(last_row, above, pad(y[..., 1:, :], (0, 0, 0, 1)))
                dn = torch.where(first_row, below, pad(y[..., :-1, :], (0, 0, 1, 0)))
                if periodic_v:
                    right_edge, left_edge = y[..., :, :1], y[..., :, -1:]
                else:
                    right_edge, left_edge = y[..., :, -1:] * ghost_sign, y[..., :, :1] * ghost_sign
                rt = torch.where(last_col, right_edge, pad(y[..., :, 1:], (0, 1)))
                lt = torch.where(first_col, left_edge, pad(y[..., :, :-1], (1, 0)))
                return cup * (up - y) + cum * (dn - y) + cvp * (rt - y) + cvm * (lt - y)

            return one(yr, fr, lr), one(yi, fi, li)

        def coupled(y: Tensor) -> Tensor:
            assert weights is not None
            diff = weights * (y[:, 1:] - y[:, :-1])
            # pads along the strip axis: masked loads, no materialised cat
            return pad(diff, (0, 0, 0, 0, 0, 1)) - pad(diff, (0, 0, 0, 0, 1, 0))

        def rhs(yr: Tensor, yi: Tensor, stage: int) -> tuple[Tensor, Tensor]:
            lr, li = lap(yr, yi)
            dr, di = col(_P_DR), col(_P_DI)
            growth = col(_P_GROWTH)
            density = yr * yr + yi * yi
            cr, ci = col(_P_CR) * density, col(_P_CI) * density
            outr = growth * yr + (dr * lr - di * li) - (cr * yr - ci * yi)
            outi = growth * yi + (dr * li + di * lr) - (cr * yi + ci * yr)
            if use_filter:
                l2r, l2i = lap(lr, li)
                outr = outr - col(_P_FILTER) * l2r
                outi = outi - col(_P_FILTER) * l2i
            if potential is not None:
                v = potential.unsqueeze(1)
                outr, outi = outr - v * yr, outi - v * yi
            if source is not None:
                cos, msin = _rotation(hv, col(_P_FREQ) if freq_tensor else None, stage)
                sr, si = source[..., 0].unsqueeze(1), source[..., 1].unsqueeze(1)
                outr = outr + (sr * cos - si * msin)
                outi = outi + (sr * msin + si * cos)
            if weights is not None:
                kappa = col(_P_COUPLING)
                outr = outr + kappa * coupled(yr)
                outi = outi + kappa * coupled(yi)
            return outr, outi

        half, full, sixth = hv[0], hv[1], hv[2]
        xr, xi = x[0], x[1]
        kr, ki = rhs(xr, xi, 0)
        if rhs_only:
            return torch.stack((kr, ki), dim=-1)
        ar, ai = kr, ki
        kr, ki = rhs(xr + half * kr, xi + half * ki, 1)
        ar, ai = ar + 2.0 * kr, ai + 2.0 * ki
        kr, ki = rhs(xr + half * kr, xi + half * ki, 1)
        ar, ai = ar + 2.0 * kr, ai + 2.0 * ki
        kr, ki = rhs(xr + full * kr, xi + full * ki, 2)
        ar, ai = ar + kr, ai + ki
        return torch.stack((xr + sixth * ar, xi + sixth * ai), dim=-1)

    flags = "".join(
        str(int(f))
        for f in (flip, periodic_v, ghost_sign > 0, seam, use_filter, use_coupling, freq_tensor)
    )
    kind = "rhs" if rhs_only else "rk4"
    return _fresh_function(kernel, f"stack_{kind}_{flags}_{len(_STEPS)}")


def compiled_stack_rk4_step(
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
    """One classical RK4 step of the stack equation as one compiled graph, or None.

    Same arguments and result as
    :func:`~hhml.core.resonance.stack_kernel.stack_rk4_step_reference` (equal to rounding;
    the argument contract, shapes and units are in
    :mod:`~hhml.core.resonance.stack_kernel`), on any device. A term whose Python-number
    coefficient is 0 (``filter``, ``coupling``) or whose tensor is None is left out of the
    graph; per-env tensors are always evaluated (no host read of their values).

    Returns
    -------
    Tensor or None
        ``ψ(t + dt)``, ``[B, S, nu, nv]``, dtype of ``psi``; None when compilation is
        unavailable (reason in :data:`RK4_COMPILE_STATUS`, warned once).

    Raises
    ------
    LatticeError, ConfigError
        If an argument breaks the contract (the message names it and what is valid).
    """
    return _stack(
        psi,
        t,
        dt,
        False,
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


def _compiled_stack_rhs(psi: Tensor, t: float, **kwargs: Any) -> Tensor | None:
    """The stack right-hand side ``F(ψ, t)`` alone, compiled the same way (a benchmark
    baseline for the unfused RK4); arguments as :func:`compiled_stack_rk4_step`."""
    return _stack(psi, t, 0.0, True, **kwargs)


def _stack(
    psi: Tensor,
    t: float,
    dt: float,
    rhs_only: bool,
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
    """The compiled stack step (``rhs_only``: the right-hand side at ``t``), or None."""
    raw = (growth, diffusion, cubic, filter, frequency, coupling, seam_phase)
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
    real = a.coefficients[0].dtype
    use_filter = isinstance(a.filter, Tensor) or a.filter != 0.0
    use_coupling = (
        a.weights is not None
        and psi.shape[1] > 1
        and (isinstance(a.coupling, Tensor) or a.coupling != 0.0)
    )
    freq_tensor = isinstance(a.frequency, Tensor)

    def split(z: Tensor | complex) -> tuple[Tensor | float, Tensor | float]:
        return z.real, z.imag  # views of a complex tensor, or floats

    def make_params() -> Tensor:
        dr, di = split(a.diffusion)
        cr, ci = split(a.cubic)
        sr, si = (1.0, 0.0) if a.seam_phase is None else split(a.seam_phase)
        values: list[Tensor | float] = [
            a.growth,
            dr,
            di,
            cr,
            ci,
            a.filter,
            a.coupling,
            sr,
            si,
            a.frequency if freq_tensor else 0.0,
        ]
        return _parameter_matrix(values, real, psi)

    p = _STACK_PARAMS.get((*raw, real, psi.device, psi.shape[0]), make_params)
    hv = _stage_times(float(t), float(dt), a.frequency, real, psi.device)
    # planar [2, B, S, nu, nv]: the stencil passes then read unit-stride rows (one copy)
    x = torch.view_as_real(psi.resolve_conj()).movedim(-1, 0).contiguous()
    src = None if a.source is None else torch.view_as_real(a.source.resolve_conj().contiguous())
    weights_in = a.weights.contiguous() if use_coupling and a.weights is not None else None
    potential_in = None if a.potential is None else a.potential.contiguous()
    coefs = tuple(c.contiguous() for c in a.coefficients)
    args = (*coefs, p, hv, weights_in, potential_in, src)
    flags = (
        a.flip,
        a.periodic_v,
        a.ghost_sign,
        a.seam_phase is not None,
        use_filter,
        use_coupling,
        potential_in is not None,
        src is not None,
        freq_tensor,
    )
    key = (
        "stack_rhs" if rhs_only else "stack",
        flags,
        tuple(psi.shape),
        psi.dtype,
        psi.device,
        tuple(None if y is None else tuple(y.shape) for y in args),
        torch.get_num_threads(),
    )
    out = _run(key, lambda: _stack_kernel(*flags, rhs_only=rhs_only), (x, *args))
    return None if out is None else torch.view_as_complex(out)


# ------------------------------------------------------------------------- flat step
_FLAT_SOURCE = _TensorKeyedCache()


def _source_pair(source: Tensor, nv: int, cdtype: torch.dtype, device: torch.device) -> Tensor:
    """``S`` and ``i·S`` interleaved, stacked: real ``[2, ..., nu|1, 2·nv]`` (cached while
    ``source`` is unchanged), so the stage rotation ``cos·S − sin·(iS)`` is pointwise."""

    def make() -> Tensor:
        s = source.to(dtype=cdtype, device=device).resolve_conj()
        s = s.reshape((1,) * max(0, 2 - s.dim()) + tuple(s.shape))
        s = s.expand(*s.shape[:-1], nv)
        both = torch.stack((s, 1j * s)).contiguous()
        return torch.view_as_real(both).flatten(-2)

    return _FLAT_SOURCE.get((source, cdtype, device, nv), make)


def _flat_kernel(flip: bool, v_mode: str, freq_tensor: bool) -> _KernelFn:
    """The fused flat-metric step for one seam/edge rule (interleaved real layout)."""

    def kernel(
        x: Tensor,
        coef: Tensor,
        parity: Tensor,
        hv: Tensor,
        freq: Tensor | None,
        potential: Tensor | None,
        source: Tensor | None,
    ) -> Tensor:
        def rhs(y: Tensor, stage: int) -> Tensor:
            src = None
            if source is not None:
                cos, msin = _rotation(hv, freq if freq_tensor else None, stage)
                src = cos * source[0] + msin * source[1]
            return _real_kernel(
                y, coef, parity, potential, src, flip=flip, v_mode=v_mode, laplacian_only=False
            )

        half, full, sixth = hv[0], hv[1], hv[2]
        k = rhs(x, 0)
        acc = k
        k = rhs(x + half * k, 1)
        acc = acc + 2.0 * k
        k = rhs(x + half * k, 1)
        acc = acc + 2.0 * k
        k = rhs(x + full * k, 2)
        acc = acc + k
        return x + sixth * acc

    return _fresh_function(kernel, f"flat_rk4_{int(flip)}{v_mode}{int(freq_tensor)}_{len(_STEPS)}")


def compiled_flat_rk4_step(
    psi: Tensor,
    t: float,
    dt: float,
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
    frequency: Coefficient = 0.0,
) -> Tensor | None:
    """One classical RK4 step of the flat-metric CGL equation as one compiled graph, or None.

    The right-hand side is that of :func:`~hhml.core.resonance.flat_kernels.flat_cgl_rhs`
    with the source ``S·e^{−iωτ}`` at the stage times τ = t, t + dt/2 (twice), t + dt, as
    :class:`~hhml.core.resonance.Simulator` forms it; the result equals ``RK4`` over that
    right-hand side to rounding. There is no spectral-filter term.

    Parameters
    ----------
    psi
        Field, complex64 or complex128, ``[..., nu, nv]`` with nu ≥ 2 and nv ≥ 4.
    t, dt
        Time of ``psi`` and the step (time units).
    topology, edge, twist, du, dv, damping, diffusion, dispersion, nonlinearity, \
nonlinear_frequency
        As in :func:`~hhml.core.resonance.flat_kernels.flat_cgl_rhs` (numbers, or real
        tensors broadcastable to ``[..., 1, 1]`` for per-batch values).
    potential
        V, real, broadcastable to ``psi`` (1/time), or None.
    source
        Source profile S (unrotated), complex, broadcastable to ``psi`` (ψ/time), or None.
    frequency
        ω (rad/time): a number or a real tensor broadcastable to ``[..., 1, 1]``.

    Returns
    -------
    Tensor or None
        ``ψ(t + dt)``, shape and dtype of ``psi``; None when compilation is unavailable (the
        reason in :data:`RK4_COMPILE_STATUS`, warned once).

    Raises
    ------
    LatticeError, ConfigError
        For a field, lattice or coefficient outside the contract of ``flat_cgl_rhs`` or
        nv < 4 (LatticeError), or a non-finite ``t``/``dt`` (ConfigError).
    """
    for label, number in (("t", t), ("dt", dt)):
        if (
            isinstance(number, bool)
            or not isinstance(number, (int, float))
            or not math.isfinite(number)
        ):
            raise ConfigError(f"{label} = {number!r} is not valid; it must be a finite number")
    named = {
        "twist": twist,
        "damping": damping,
        "diffusion": diffusion,
        "dispersion": dispersion,
        "nonlinearity": nonlinearity,
        "nonlinear_frequency": nonlinear_frequency,
        "frequency": frequency,
    }
    check_cgl_arguments(psi, topology, edge, du, dv, named, potential, source)
    if psi.shape[-1] < 4:
        raise LatticeError(
            f"psi has nv = {psi.shape[-1]}; the compiled flat step needs nv ≥ 4 (use the "
            "eager RK4 for narrower grids)"
        )
    psi = psi.resolve_conj().contiguous()
    real = torch.float64 if psi.dtype == torch.complex128 else torch.float32
    device = psi.device
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
        device,
    )
    freq = frequency.to(dtype=real, device=device) if isinstance(frequency, Tensor) else None
    hv = _stage_times(float(t), float(dt), frequency, real, device)
    v2 = None if potential is None else _interleaved_potential(potential, real, device)
    s2 = None if source is None else _source_pair(source, psi.shape[-1], psi.dtype, device)
    shape = psi.shape
    x = torch.view_as_real(psi).view(*shape[:-1], 2 * shape[-1])
    parity = _parity(x.shape[-1], real, device)
    v_mode = _v_mode(topology, edge)
    flip = topology == "mobius"
    args = (coef, parity, hv, freq, v2, s2)
    key = (
        "flat",
        (flip, v_mode, freq is not None),
        tuple(shape),
        psi.dtype,
        device,
        tuple(None if y is None else tuple(y.shape) for y in args),
        torch.get_num_threads(),
    )
    out = _run(key, lambda: _flat_kernel(flip, v_mode, freq is not None), (x, *args))
    return None if out is None else torch.view_as_complex(out.view(*shape, 2))


_PARITY: dict[tuple[int, torch.dtype, torch.device], Tensor] = {}


def _parity(width: int, real: torch.dtype, device: torch.device) -> Tensor:
    """``[width]``: 1 on real (even) columns of the interleaved layout, 0 on imaginary."""
    key = (width, real, device)
    if key not in _PARITY:
        _PARITY[key] = (torch.arange(width, device=device) % 2 == 0).to(real)
    return _PARITY[key]
