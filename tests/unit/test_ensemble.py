"""LatticeEnsemble: element b must equal the TokamakStack with element b's geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hhml.config import FieldParams
from hhml.core.mobius import LatticeEnsemble, TokamakStack
from hhml.core.resonance import Simulator, winding_numbers
from hhml.errors import ConfigError, LatticeError

GEOMETRY = dict(
    aspect=[8.0, 11.0, 6.5],
    kappa=[1.0, 1.7, 0.8],
    delta=[0.0, 0.4, -0.3],
    coupling_range=[1.0, 0.4, 2.5],
    twist=[0.0, 1.1, -2.0],
)
COMMON = dict(strip_spacing=2.0, edge="neumann", metric="embedded", dtype=torch.complex128)


def _ensemble() -> LatticeEnsemble:
    return LatticeEnsemble(3, 2, 24, 8, **GEOMETRY, **COMMON)  # type: ignore[arg-type]


def _stack(b: int) -> TokamakStack:
    g = {k: v[b] for k, v in GEOMETRY.items()}
    return TokamakStack(
        2,
        24,
        8,
        kappa=g["kappa"],
        delta=g["delta"],
        aspect=g["aspect"],
        coupling_range=g["coupling_range"],
        twist=g["twist"],
        **COMMON,  # type: ignore[arg-type]
    )


def _field(seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(3, 2, 24, 8, dtype=torch.complex128, generator=gen)


def test_laplacian_coupling_and_area_match_each_stack() -> None:
    ens, psi = _ensemble(), _field()
    lap, coup = ens.laplacian(psi), ens.coupling(psi)
    for b in range(3):
        stack = _stack(b)
        torch.testing.assert_close(lap[b], stack.laplacian(psi[b]), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(coup[b], stack.coupling(psi[b]), rtol=1e-12, atol=1e-12)
        # Batched and single-stack geometry take different (vectorised) paths through
        # sin/cos/sqrt: they agree to a few thousand ulp (4.9e-12 seen on an AVX-512 Xeon).
        torch.testing.assert_close(
            ens.area_weights()[b], stack.area_weights().to(torch.float64), rtol=1e-10, atol=0.0
        )
    assert ens.spectral_radius_bound() == pytest.approx(
        max(_stack(b).spectral_radius_bound() for b in range(3)), rel=1e-12
    )


def test_winding_numbers_use_each_elements_twist() -> None:
    ens, psi = _ensemble(), _field(1)
    q = winding_numbers(psi, ens)
    for b in range(3):
        assert torch.equal(q[b], winding_numbers(psi[b], _stack(b)))


def test_set_geometry_changes_only_that_element_and_validates() -> None:
    ens, psi = _ensemble(), _field(2)
    before = ens.laplacian(psi)
    ens.set_geometry(kappa=[1.0, 2.5, 0.8])
    after = ens.laplacian(psi)
    assert torch.equal(before[0], after[0]) and torch.equal(before[2], after[2])
    assert not torch.allclose(before[1], after[1])
    with pytest.raises(LatticeError, match=r"aspect = 2 \(ensemble element 1\)"):
        ens.set_geometry(aspect=[8.0, 2.0, 8.0])
    with pytest.raises(LatticeError, match="unknown geometry key"):
        ens.set_geometry(aspekt=3.0)


def test_simulator_on_ensemble_matches_per_element_simulators() -> None:
    params = [
        FieldParams(source_amplitude=0.5, boundary_winding=1, coupling=0.5, diffusion=0.02),
        FieldParams(source_amplitude=0.8, boundary_winding=-2, coupling=1.0, diffusion=0.01),
        FieldParams(source_amplitude=0.3, boundary_winding=0, coupling=0.2, diffusion=0.03),
    ]
    ens = _ensemble()
    sim = Simulator(ens, params, dt=0.01, seed=3)
    psi0 = _field(4) * 0.3
    sim.psi = psi0.clone()
    sim.step(5)
    for b in range(3):
        single = Simulator(_stack(b), params[b], dt=0.01, seed=3)
        single.psi = psi0[b].clone()
        single.step(5)
        torch.testing.assert_close(sim.psi[b], single.psi, rtol=1e-10, atol=1e-12)


def test_simulator_rejects_batch_that_differs_from_ensemble_size() -> None:
    with pytest.raises(ConfigError, match="LatticeEnsemble has 3 elements"):
        Simulator(_ensemble(), FieldParams(), dt=0.01, batch=2)


def test_ensemble_twist_is_per_element() -> None:
    ens = _ensemble()
    phases = ens.seam_phase.reshape(-1)
    np.testing.assert_allclose(torch.angle(phases).numpy(), GEOMETRY["twist"], atol=1e-12)
    with pytest.raises(LatticeError, match="one twist per element"):
        _ = ens.twist
    assert math.isclose(float(ens.twists()[2, 0]), -2.0)
