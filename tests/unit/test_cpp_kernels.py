"""The C++ flat-lattice CGL kernels (right-hand side, fused RK4 step) against torch."""

from __future__ import annotations

import pytest
import torch

from hhml.core.mobius import MobiusStrip
from hhml.core.resonance import FieldParams, Simulator
from hhml.core.resonance.cpp_kernels import CPP_STATUS, cpp_flat_cgl_rhs, cpp_flat_rk4_step
from hhml.core.resonance.forcing import pinning_profile, source_profile
from hhml.errors import LatticeError


def _reference(psi, lat, potential, source):  # type: ignore[no-untyped-def]
    lap = lat.laplacian(psi)
    return (
        0.8 * psi
        + (0.05 + 0.03j) * lap
        - (1.0 + 0.5j) * psi.abs() ** 2 * psi
        - (potential * psi)
        + source
    )


@pytest.mark.parametrize("dtype, tol", [(torch.complex128, 1e-12), (torch.complex64, 1e-4)])
@pytest.mark.parametrize("topology", ["mobius", "cylinder", "torus"])
@pytest.mark.parametrize("edge", ["dirichlet", "neumann"])
def test_matches_torch_rhs(dtype: torch.dtype, tol: float, topology: str, edge: str) -> None:
    lat = MobiusStrip(9, 6, topology=topology, edge=edge, twist=0.7, dtype=dtype)
    gen = torch.Generator().manual_seed(1)
    psi = torch.randn(3, 9, 6, dtype=dtype, generator=gen)
    potential = pinning_profile(lat, 3, 0.3, 1)
    source = source_profile(lat, 2.0, 0.3, 1)
    out = cpp_flat_cgl_rhs(psi, lat, 0.8, 0.05 + 0.03j, 1.0 + 0.5j, potential, source)
    if out is None:
        pytest.fail(f"C++ kernel unavailable on this machine: {CPP_STATUS.reason}")
    ref = _reference(psi, lat, potential, source)
    scale = float(ref.abs().max())
    assert float((out - ref).abs().max()) / scale < tol


def test_not_applicable_returns_none() -> None:
    lat = MobiusStrip(8, 4, dtype=torch.complex128)
    psi = torch.randn(2, 8, 4, dtype=torch.complex128)
    per_batch = torch.tensor([0.1, 0.2], dtype=torch.float64).reshape(2, 1, 1)
    assert cpp_flat_cgl_rhs(psi, lat, per_batch, 0.1, 1.0, None, None) is None  # type: ignore[arg-type]
    assert (
        cpp_flat_cgl_rhs(
            psi.transpose(-1, -2).contiguous().transpose(-1, -2), lat, 0.9, 0.1, 1.0, None, None
        )
        is None
    )


def test_simulator_compiled_and_eager_trajectories_agree() -> None:
    lat = MobiusStrip(32, 12, edge="dirichlet", twist=0.4, dtype=torch.complex128)
    params = FieldParams(
        damping=0.1,
        diffusion=0.01,
        dispersion=0.01,
        nonlinear_frequency=0.5,
        source_amplitude=0.5,
        source_frequency=1.0,
        pinning=0.3,
    )
    fast = Simulator(lat, params, dt=0.02, compiled=True, seed=4)
    slow = Simulator(lat, params, dt=0.02, compiled=False, seed=4)
    fast.step(25)
    slow.step(25)
    assert CPP_STATUS.ok, CPP_STATUS.reason
    assert float((fast.psi - slow.psi).abs().max()) < 1e-12


# measured max |fused − RK4.step| / max |step increment| over all cases below: 1.1e-14
# (complex128) and 6.3e-6 (complex64); tolerances are 10x those
@pytest.mark.parametrize("dtype, tol", [(torch.complex128, 1.1e-13), (torch.complex64, 6.3e-5)])
@pytest.mark.parametrize("topology", ["mobius", "cylinder", "torus"])
@pytest.mark.parametrize("edge", ["dirichlet", "neumann"])
@pytest.mark.parametrize("forcing", [False, True])
@pytest.mark.parametrize("batch", [None, 3])
def test_fused_rk4_step_matches_eager_rk4(
    dtype: torch.dtype, tol: float, topology: str, edge: str, forcing: bool, batch: int | None
) -> None:
    lat = MobiusStrip(12, 7, topology=topology, edge=edge, twist=0.7, dtype=dtype)
    extra = {"pinning": 0.3, "source_amplitude": 0.5, "source_frequency": 1.3} if forcing else {}
    params = FieldParams(
        damping=0.1,
        diffusion=0.02,
        dispersion=0.03,
        nonlinearity=1.0,
        nonlinear_frequency=0.5,
        **extra,  # type: ignore[arg-type]
    )
    sim = Simulator(lat, params, batch=batch, dt=0.01, compiled=False, seed=3)
    eq = sim.equation
    assert (eq.potential is not None) == forcing and (eq.source is not None) == forcing
    psi, t, dt = sim.psi.clone(), 0.37, 0.01
    ref = sim.integrator.step(psi, t, dt)  # eager torch RK4 (compiled=False)
    c = sim.equation.coefficients
    out = cpp_flat_rk4_step(
        psi, t, dt, lat, c.growth, c.diffusion, c.cubic, eq.potential, eq.source, c.frequency
    )
    if out is None:
        pytest.fail(f"C++ kernel unavailable on this machine: {CPP_STATUS.reason}")
    assert out.shape == psi.shape and out.dtype == dtype
    increment = float((ref - psi).abs().max())
    assert float((out - ref).abs().max()) / increment < tol


def test_fused_rk4_step_not_applicable_or_wrong_shape() -> None:
    lat = MobiusStrip(8, 4, dtype=torch.complex128)
    psi = torch.randn(2, 8, 4, dtype=torch.complex128)
    per_batch = torch.tensor([0.1, 0.2], dtype=torch.float64).reshape(2, 1, 1)
    args = (0.9, 0.1, 1.0, None, None)
    assert cpp_flat_rk4_step(psi, 0.0, 0.01, lat, *args, per_batch) is None  # type: ignore[arg-type]
    assert cpp_flat_rk4_step(psi, 0.0, 0.01, lat, per_batch, *args[1:], 0.0) is None  # type: ignore[arg-type]
    assert cpp_flat_rk4_step(psi.real.contiguous(), 0.0, 0.01, lat, *args, 0.0) is None
    with pytest.raises(LatticeError, match="nu, nv"):
        cpp_flat_rk4_step(torch.randn(2, 4, 8, dtype=torch.complex128), 0.0, 0.01, lat, *args, 0.0)
