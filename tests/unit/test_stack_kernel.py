"""The fused C++ stack RK4 kernel against the eager reference, and the reference against
one ``RK4.step`` of a :class:`Simulator` on a :class:`LatticeEnsemble`.

Errors are measured relative to the size of the RK4 increment, ``max|a − b| / max|ψ' − ψ|``
(stricter than relative to ``ψ'``). Measured kernel vs reference, maximum over 1152 random
cases per dtype (every chart, edge, S = 1..3, each term on/off, 6 seeds; 2-core AVX-512
VM) and the simulator case: 1.7e-15 (complex128) and 1.04e-6 (complex64). Tolerances below
are 1.5e-14 and 1e-5, under 10× those.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor

from hhml.config import FieldParams
from hhml.core.mobius import LatticeEnsemble
from hhml.core.resonance import Simulator
from hhml.core.resonance.stack_kernel import (
    STACK_STATUS,
    _load,
    cpp_stack_rk4_plan,
    cpp_stack_rk4_step,
    stack_rk4_step_reference,
)
from hhml.errors import LatticeError

# under 10 × the largest error measured (see the module docstring)
TOL = {torch.complex128: 1.5e-14, torch.complex64: 1e-5}
CHARTS = {"mobius": (True, False), "cylinder": (False, False), "torus": (False, True)}
T0, DT = 0.37, 0.05


@pytest.fixture(scope="module", autouse=True)
def _kernel_built() -> None:
    if _load() is None:
        pytest.skip(f"stack RK4 kernel cannot be built here: {STACK_STATUS.reason}")


def _case(
    dtype: torch.dtype,
    strips: int = 2,
    topology: str = "mobius",
    edge: str = "neumann",
    terms: tuple[bool, bool, bool, bool] = (True, True, True, True),
    batch: int = 3,
    seed: int = 0,
    grid: tuple[int, int] = (7, 5),
) -> tuple[Tensor, dict[str, Any]]:
    """Random field and parameters (O(1) terms) for a [batch, strips, *grid] stack."""
    use_filter, use_potential, use_source, use_coupling = terms
    gen = torch.Generator().manual_seed(seed)
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    nu, nv = grid
    shape = (batch, strips, nu, nv)

    def rand(*size: int, lo: float = 0.0, hi: float = 1.0) -> Tensor:
        return lo + (hi - lo) * torch.rand(*size, generator=gen, dtype=real)

    def crand(*size: int, scale: float = 1.0) -> Tensor:
        return scale * torch.randn(*size, generator=gen, dtype=dtype)

    flip, periodic_v = CHARTS[topology]
    filt = rand(batch, hi=0.02)
    filt[0] = 0.0  # one env without the filter: the kernel skips Lap(Lap y) for it alone
    kwargs: dict[str, Any] = dict(
        coefficients=tuple(rand(*shape, lo=0.5, hi=1.5) for _ in range(4)),
        seam_phase=torch.polar(torch.ones(batch, dtype=real), rand(batch, lo=-3.0, hi=3.0)),
        growth=rand(batch, lo=-0.5, hi=1.0),
        diffusion=crand(batch, scale=0.1),
        cubic=crand(batch),
        filter=filt if use_filter else 0.0,
        frequency=rand(batch, lo=-3.0, hi=3.0),
        coupling=rand(batch, hi=2.0) if use_coupling else 0.0,
        weights=rand(batch, strips - 1, nu, nv) if use_coupling else None,
        potential=rand(batch, nu, nv, hi=2.0) if use_potential else None,
        source=crand(batch, nu, nv) if use_source else None,
        flip=flip,
        periodic_v=periodic_v,
        ghost_sign=-1.0 if edge == "dirichlet" else 1.0,
    )
    return crand(*shape), kwargs


def _relative_error(out: Tensor, ref: Tensor, psi: Tensor) -> float:
    """``max|out − ref|`` relative to the RK4 increment ``max|ref − ψ|``."""
    return float((out - ref).abs().max()) / float((ref - psi).abs().max())


def _kernel(psi: Tensor, **kwargs: Any) -> Tensor:
    out = cpp_stack_rk4_step(psi, T0, DT, **kwargs)
    assert out is not None, STACK_STATUS.last_skip
    assert out.dtype == psi.dtype and out.shape == psi.shape
    return out


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("strips", [1, 2, 3])
@pytest.mark.parametrize("edge", ["dirichlet", "neumann"])
@pytest.mark.parametrize("topology", ["mobius", "cylinder", "torus"])
def test_kernel_matches_reference_on_every_chart(
    topology: str, edge: str, strips: int, dtype: torch.dtype
) -> None:
    psi, kw = _case(dtype, strips, topology, edge, seed=strips)
    ref = stack_rk4_step_reference(psi, T0, DT, **kw)
    assert _relative_error(_kernel(psi, **kw), ref, psi) < TOL[dtype]


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("terms", [tuple(bool(k >> b & 1) for b in range(4)) for k in range(16)])
def test_kernel_matches_reference_with_and_without_each_term(
    terms: tuple[bool, bool, bool, bool], dtype: torch.dtype
) -> None:
    psi, kw = _case(dtype, 3, "mobius", "dirichlet", terms, seed=7)
    ref = stack_rk4_step_reference(psi, T0, DT, **kw)
    assert _relative_error(_kernel(psi, **kw), ref, psi) < TOL[dtype]


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_kernel_stage_major_schedule_matches_reference(dtype: torch.dtype) -> None:
    # fewer envs than threads and ≥ 2^16 nodes: the stage-by-stage schedule (barriers)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        psi, kw = _case(dtype, 2, "mobius", "neumann", batch=1, seed=3, grid=(256, 128))
        ref = stack_rk4_step_reference(psi, T0, DT, **kw)
        assert _relative_error(_kernel(psi, **kw), ref, psi) < TOL[dtype]
    finally:
        torch.set_num_threads(threads)


def test_scalar_and_shared_parameter_forms() -> None:
    """Python numbers, θ = 0, coefficients, weights and profiles shared by all envs, and
    [B, 1, nu, nv] profiles give the same step as the corresponding per-env tensors."""
    dtype, real = torch.complex128, torch.float64
    psi, kw = _case(dtype, 2, "torus", "dirichlet", seed=11)
    batch = psi.shape[0]
    shape = tuple(psi.shape)
    scalars = dict(
        kw,
        coefficients=tuple(c[0] for c in kw["coefficients"]),  # [S, nu, nv]
        weights=kw["weights"][1:2],  # [1, S - 1, nu, nv]
        seam_phase=None,
        growth=0.7,
        diffusion=0.05 + 0.02j,
        cubic=1.0 - 0.3j,
        filter=0.01,
        frequency=1.3,
        coupling=0.4,
        potential=kw["potential"][0],  # [nu, nv]: the same for every env
        source=kw["source"][1:2],  # [1, nu, nv]
    )

    def full(value: complex, dtype: torch.dtype) -> Tensor:
        return torch.full((batch, 1, 1, 1), value, dtype=dtype)

    tensors = dict(
        kw,
        coefficients=tuple(c[0].expand(shape).contiguous() for c in kw["coefficients"]),
        weights=kw["weights"][1:2].expand(batch, -1, -1, -1).contiguous(),
        seam_phase=full(1.0, dtype),
        growth=full(0.7, real),
        diffusion=full(0.05 + 0.02j, dtype),
        cubic=full(1.0 - 0.3j, dtype),
        filter=full(0.01, real),
        frequency=full(1.3, real),
        coupling=full(0.4, real),
        potential=kw["potential"][0].expand(batch, 1, 7, 5).contiguous(),
        source=kw["source"][1:2].expand(batch, 1, 7, 5).contiguous(),
    )
    ref = stack_rk4_step_reference(psi, T0, DT, **tensors)
    assert _relative_error(stack_rk4_step_reference(psi, T0, DT, **scalars), ref, psi) < 1e-15
    for kwargs in (scalars, tensors):
        assert _relative_error(_kernel(psi, **kwargs), ref, psi) < TOL[dtype]


def _ensemble_simulator(dtype: torch.dtype) -> Simulator:
    batch = 3
    ens = LatticeEnsemble(
        batch,
        2,
        16,
        6,
        aspect=[8.0, 11.0, 6.5],
        kappa=[1.0, 1.7, 0.8],
        delta=[0.0, 0.4, -0.3],
        coupling_range=[1.0, 0.4, 2.5],
        twist=[0.0, 1.1, -2.0],
        strip_spacing=2.0,
        edge="dirichlet",
        metric="embedded",
        dtype=dtype,
    )
    params = [
        FieldParams(
            damping=0.1 * b,
            diffusion=0.02 + 0.01 * b,
            dispersion=0.01 - 0.01 * b,
            nonlinearity=1.0 + 0.5 * b,
            nonlinear_frequency=0.5 - 0.4 * b,
            spectral_filter=1e-5 * (b > 0),  # env 0 without the filter
            source_amplitude=0.5 + 0.2 * b,
            source_frequency=1.0 - 0.8 * b,
            boundary_winding=b,
            coupling=0.3 * (b + 1),
            pinning=0.5 * b,
        )
        for b in range(batch)
    ]
    # compiled=False: the eager RK4 of rhs_unchecked (with the default, a CPU stack's
    # RK4 step is the kernel itself, checked in test_simulator_uses_the_kernel_on_cpu)
    return Simulator(ens, params, dt=0.05, seed=5, compiled=False)


def _simulator_arguments(sim: Simulator) -> dict[str, Any]:
    """The simulator's own coefficient tensors, in the form the kernel takes.

    Reads the simulator's private precomputed terms on purpose: the reference must be
    tied to exactly what ``Simulator.rhs_unchecked`` evaluates.
    """
    ens = sim.lattice
    assert isinstance(ens, LatticeEnsemble)
    real = torch.float64 if sim.dtype == torch.complex128 else torch.float32
    c = sim.equation.coefficients
    return dict(
        coefficients=tuple(x.to(real) for x in ens._coef64),
        seam_phase=ens.seam_phase.to(sim.dtype),
        growth=c.growth,
        diffusion=c.diffusion,
        cubic=c.cubic,
        filter=c.filter,
        frequency=c.frequency,
        coupling=c.coupling,
        weights=ens.coupling_weights(),
        potential=sim.equation.potential,
        source=sim.equation.source,
        flip=ens.strip.flip,
        periodic_v=ens.strip.periodic_v,
        ghost_sign=ens.strip.ghost_sign,
    )


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_reference_and_kernel_equal_simulator_rk4_step(dtype: torch.dtype) -> None:
    sim = _ensemble_simulator(dtype)
    c = sim.equation.coefficients
    assert c.use_filter and c.use_sources and c.use_pinning and c.use_coupling
    assert sim.equation.source is not None and sim.equation.potential is not None
    psi = sim.psi + 0.3 * torch.randn(
        sim.psi.shape, dtype=dtype, generator=torch.Generator().manual_seed(2)
    )
    t, dt = 1.3, sim.dt
    expected = sim.integrator.step(psi, t, dt)
    kw = _simulator_arguments(sim)
    ref = stack_rk4_step_reference(psi, t, dt, **kw)
    # the same torch operations in the same order: equal to the last bit (measured 0.0)
    assert _relative_error(ref, expected, psi) == 0.0
    out = cpp_stack_rk4_step(psi, t, dt, **kw)
    assert out is not None, STACK_STATUS.last_skip
    assert _relative_error(out, expected, psi) < TOL[dtype]


def test_simulator_uses_the_kernel_on_cpu() -> None:
    eager = _ensemble_simulator(torch.complex128)
    fused = _ensemble_simulator(torch.complex128)
    fused.compiled = None  # the default: the kernel on a CPU stack
    psi = eager.psi.clone()
    kw = _simulator_arguments(fused)
    kernel = cpp_stack_rk4_step(psi, 0.7, fused.dt, **kw)
    assert kernel is not None, STACK_STATUS.last_skip
    assert torch.equal(fused.integrator.step(psi, 0.7, fused.dt), kernel)
    assert (
        _relative_error(eager.integrator.step(psi, 0.7, eager.dt), kernel, psi)
        < TOL[torch.complex128]
    )


def test_not_applicable_returns_none_with_reason() -> None:
    psi, kw = _case(torch.complex128)
    strided = psi.transpose(-1, -2).contiguous().transpose(-1, -2)
    assert cpp_stack_rk4_step(strided, T0, DT, **kw) is None
    assert STACK_STATUS.last_skip == "psi is not contiguous"
    # the reference accepts it (and gives the same step)
    ref = stack_rk4_step_reference(strided, T0, DT, **kw)
    assert _relative_error(ref, stack_rk4_step_reference(psi, T0, DT, **kw), psi) == 0.0
    wrong = dict(kw, coefficients=tuple(c.float() for c in kw["coefficients"]))
    assert cpp_stack_rk4_step(psi, T0, DT, **wrong) is None
    assert "coefficient cup" in STACK_STATUS.last_skip
    with pytest.raises(LatticeError, match="coefficient cup"):
        stack_rk4_step_reference(psi, T0, DT, **wrong)
    klein = dict(kw, flip=True, periodic_v=True)
    assert cpp_stack_rk4_step(psi, T0, DT, **klein) is None
    with pytest.raises(LatticeError, match="periodic_v"):
        stack_rk4_step_reference(psi, T0, DT, **klein)
    short = dict(kw, growth=kw["growth"][:2])
    with pytest.raises(LatticeError, match="growth has shape"):
        stack_rk4_step_reference(psi, T0, DT, **short)
    assert _kernel(psi, **kw) is not None and STACK_STATUS.last_skip == ""


def test_every_env_evolves_independently() -> None:
    """Env b's step depends only on env b's field and parameters."""
    psi, kw = _case(torch.complex128, 2, "mobius", "dirichlet", batch=4, seed=21)
    out = _kernel(psi, **kw)
    other = psi.clone()
    other[1] = torch.randn(psi.shape[1:], dtype=psi.dtype, generator=torch.Generator())
    changed = _kernel(other, **kw)
    keep = [0, 2, 3]
    assert torch.equal(out[keep], changed[keep])
    assert not torch.equal(out[1], changed[1])
    assert math.isfinite(float(np.abs(out.numpy()).max()))


def test_non_cpu_tensors_go_to_the_reference_which_never_reads_values() -> None:
    """On another device the kernel declines; the reference runs there without reading any
    value on the host (``meta`` tensors have no data, so a sync such as ``.item()`` fails)."""
    psi, kw = _case(torch.complex64)

    def meta(x: Any) -> Any:
        if isinstance(x, Tensor):
            return x.to("meta")
        return tuple(meta(y) for y in x) if isinstance(x, tuple) else x

    kw_meta = {k: meta(v) for k, v in kw.items()}
    assert cpp_stack_rk4_step(psi.to("meta"), T0, DT, **kw_meta) is None
    assert STACK_STATUS.last_skip == "psi is on meta; the kernel runs on the CPU"
    out = stack_rk4_step_reference(psi.to("meta"), T0, DT, **kw_meta)
    assert out.device.type == "meta" and out.shape == psi.shape and out.dtype == psi.dtype


def test_a_plan_steps_as_the_kernel_call_and_declines_another_psi() -> None:
    """``cpp_stack_rk4_plan(...).step`` is the same kernel call (bit for bit) with the
    argument checks done once; a ``psi`` other than planned, or a non-finite ``dt``, is
    declined with the reason, as ``cpp_stack_rk4_step`` declines it."""
    psi, kw = _case(torch.complex64)
    plan = cpp_stack_rk4_plan(psi, **kw)
    assert plan is not None, STACK_STATUS.last_skip
    assert torch.equal(plan.step(psi, T0, DT), _kernel(psi, **kw))
    for other, reason in (
        (psi[:2].contiguous(), "the plan is for"),
        (psi.to(torch.complex128), "the plan is for"),
        (psi.transpose(-1, -2).contiguous().transpose(-1, -2), "the plan is for"),
    ):
        assert plan.step(other, T0, DT) is None
        assert reason in STACK_STATUS.last_skip
    assert plan.step(psi, T0, float("nan")) is None
    assert "dt = nan" in STACK_STATUS.last_skip
    assert cpp_stack_rk4_step(psi, T0, float("inf"), **kw) is None
    assert "dt = inf" in STACK_STATUS.last_skip


def test_the_simulator_replans_when_its_parameters_change() -> None:
    """A simulator keeps the kernel plan between steps of fixed parameters and makes a new
    one when they change: every step equals a fresh kernel call with the arguments of
    that moment (a stale plan would step with the previous damping)."""
    from hhml.core.resonance.simulator import TENSOR_PARAMETERS

    sim = _ensemble_simulator(torch.complex128)
    sim.compiled = None
    plist = sim.equation.param_list
    base = {
        k: torch.tensor([float(getattr(p, k)) for p in plist], dtype=torch.float64)
        for k in TENSOR_PARAMETERS
    }
    plans = []
    for damping in (0.05, 0.3, None, 0.9):
        if damping is not None:  # None: the same parameters as the step before
            sim.set_parameter_tensors(dict(base, damping=torch.full((3,), damping)))
        psi = sim.psi.clone()
        expected = cpp_stack_rk4_step(psi, sim.t, sim.dt, **_simulator_arguments(sim))
        assert expected is not None, STACK_STATUS.last_skip
        assert torch.equal(sim.integrator.step(psi, sim.t, sim.dt), expected)
        cache = sim.equation._plan_cache
        assert cache is not None
        plans.append(cache[1])
    assert plans[1] is not plans[0] and plans[2] is plans[1] and plans[3] is not plans[2]
