"""Tests of the scale-invariant ternary MERA (hhml.core.tensor_networks.mera)."""

from __future__ import annotations

import itertools
import time

import pytest
import torch

from hhml.core.tensor_networks.mera import (
    EXACT_ENERGY_PER_SITE,
    MeraLayer,
    ascend,
    descend,
    fixed_point_density,
    ising_two_site_hamiltonian,
    isometry_defect,
    optimize_ising_mera,
    random_layer,
)
from hhml.errors import ConfigError


def test_hamiltonian_is_symmetric_and_bounded() -> None:
    h = ising_two_site_hamiltonian().reshape(16, 16)
    assert torch.allclose(h, h.T)
    # Energy per blocked bond is above the infinite-chain ground energy of two spins.
    assert float(torch.linalg.eigvalsh(h).min()) <= 2 * EXACT_ENERGY_PER_SITE


def test_descend_is_adjoint_of_ascend() -> None:
    gen = torch.Generator().manual_seed(1)
    layer = random_layer(4, 5, gen)
    q, _ = torch.linalg.qr(torch.randn(16, 16, generator=gen, dtype=torch.float64))
    layer = MeraLayer(q.reshape(4, 4, 4, 4), layer.isometry)
    h = torch.randn(4, 4, 4, 4, generator=gen, dtype=torch.float64)
    rho = torch.randn(5, 5, 5, 5, generator=gen, dtype=torch.float64)
    lhs = torch.einsum("ijkl,klij->", rho, ascend(h, layer))
    rhs = torch.einsum("ijkl,klij->", descend(rho, layer), h)
    assert abs(float(lhs - rhs)) < 1e-12


def test_ascend_preserves_identity_and_density_trace() -> None:
    gen = torch.Generator().manual_seed(2)
    layer = random_layer(4, 4, gen)
    eye = torch.eye(16, dtype=torch.float64).reshape(4, 4, 4, 4)
    assert torch.allclose(ascend(eye, layer), eye, atol=1e-12)
    rho = fixed_point_density(layer, iterations=5)
    assert abs(float(torch.einsum("ijij->", rho)) - 1.0) < 1e-12


def test_invalid_sizes_raise() -> None:
    with pytest.raises(ConfigError):
        random_layer(2, 9, torch.Generator().manual_seed(0))
    with pytest.raises(ConfigError):
        optimize_ising_mera(chi=1, sweeps=1)


def test_constraints_hold_and_energy_decreases() -> None:
    res = optimize_ising_mera(chi=4, sweeps=60, seed=3)
    for layer in [*res.layers, res.scale_invariant]:
        assert isometry_defect(layer.disentangler, 2) < 1e-10
        assert isometry_defect(layer.isometry, 1) < 1e-10
    e = res.energies
    # Monotone up to small wiggles from the stale top density matrix.
    assert all(b <= a + 1e-3 for a, b in itertools.pairwise(e[5:]))
    assert e[-1] < e[5] < e[0]


def test_seeded_runs_are_reproducible() -> None:
    a = optimize_ising_mera(chi=4, sweeps=5, seed=7)
    b = optimize_ising_mera(chi=4, sweeps=5, seed=7)
    assert a.energies == b.energies


def test_energy_within_half_percent_in_a_minute() -> None:
    start = time.perf_counter()
    res = optimize_ising_mera(chi=4, sweeps=600, seed=0)
    assert time.perf_counter() - start < 60.0
    assert res.relative_error < 5e-3


@pytest.mark.slow
def test_scaling_dimensions_near_ising_cft() -> None:
    res = optimize_ising_mera(chi=4, sweeps=3000, seed=0)
    dims = res.scaling_dimensions
    assert dims[0] == pytest.approx(0.0, abs=1e-8)
    assert dims[1] == pytest.approx(0.125, abs=0.05)
    assert dims[2] == pytest.approx(1.0, abs=0.05)
