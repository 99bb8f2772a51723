"""The C++ flat-lattice CGL kernel against the plain-torch right-hand side."""

from __future__ import annotations

import pytest
import torch

from hhml.core.mobius import MobiusStrip
from hhml.core.resonance import FieldParams, Simulator
from hhml.core.resonance.cpp_kernels import CPP_STATUS, cpp_flat_cgl_rhs
from hhml.core.resonance.forcing import pinning_profile, source_profile


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
