"""Fidelity, its exact Beta(1, n − 1) null, and norm conservation under unitary evolution."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from hhml.analysis.dark_matter import (
    evolve_branches,
    fidelity,
    fidelity_matrix,
    field_norm,
    inner_product,
    isotropic_gaussian_fields,
    null_fidelity_survival,
    phase_aligned_centroid,
)
from hhml.config.schema import FieldParams
from hhml.core.mobius import MobiusStrip
from hhml.core.resonance import Simulator
from hhml.errors import LatticeError


def _gen(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def test_inner_product_is_area_weighted() -> None:
    lat = MobiusStrip(6, 4, metric="embedded", dtype=torch.complex128)
    w = lat.area_weights()
    a, b = torch.randn(2, 6, 4, dtype=torch.complex128, generator=_gen(1))
    expected = (w * a.conj() * b).sum()
    assert torch.allclose(inner_product(a, b, w), expected)
    assert torch.allclose(field_norm(a, w) ** 2, inner_product(a, a, w).real)


def test_fidelity_is_phase_invariant_and_bounded() -> None:
    lat = MobiusStrip(8, 4, dtype=torch.complex128)
    w = lat.area_weights()
    psi = torch.randn(5, 8, 4, dtype=torch.complex128, generator=_gen(2))
    rotated = psi * torch.polar(
        torch.ones(5, 1, 1, dtype=torch.float64), torch.arange(5.0)[:, None, None].double()
    )
    assert torch.allclose(fidelity(psi, rotated, w), torch.ones(5, dtype=torch.float64))
    fm = fidelity_matrix(psi, w)
    assert fm.shape == (5, 5)
    assert torch.allclose(fm, fm.T)
    assert torch.allclose(fm.diagonal(), torch.ones(5, dtype=torch.float64))
    assert bool(((fm >= 0) & (fm <= 1)).all())
    for i in range(5):
        for j in range(5):
            assert math.isclose(float(fm[i, j]), float(fidelity(psi[i], psi[j], w)), rel_tol=1e-12)
    # a zero field has no direction
    assert float(fidelity(torch.zeros(8, 4, dtype=torch.complex128), psi[0], w)) == 0.0


def test_centroid_ignores_global_phases() -> None:
    lat = MobiusStrip(8, 4, dtype=torch.complex128)
    w = lat.area_weights()
    base = torch.randn(8, 4, dtype=torch.complex128, generator=_gen(3))
    phases = torch.polar(
        torch.ones(4, dtype=torch.float64), torch.tensor([0.0, 1.0, 2.5, -2.0]).double()
    )
    copies = base * phases[:, None, None]
    centroid = phase_aligned_centroid(copies, w)
    assert float(fidelity(centroid, base, w)) == pytest.approx(1.0, abs=1e-12)


def test_fidelity_squared_of_isotropic_fields_is_beta_1_n_minus_1() -> None:
    # embedded metric: non-uniform cell areas, so the weighting is part of the check
    lat = MobiusStrip(8, 4, metric="embedded", dtype=torch.complex128)
    w = lat.area_weights()
    n = 8 * 4
    m = 4000
    g = _gen(12345)
    a = isotropic_gaussian_fields(m, w, g, torch.complex128)
    b = isotropic_gaussian_fields(m, w, g, torch.complex128)
    f2 = fidelity(a, b, w).numpy() ** 2
    ks = stats.kstest(f2, stats.beta(1, n - 1).cdf)
    assert ks.pvalue > 0.01
    se = math.sqrt((n - 1) / (n**2 * (n + 1)) / m)
    assert abs(f2.mean() - 1.0 / n) < 4 * se
    # survival function of the null used by the retention curve
    tau = np.array([0.0, 0.1, 0.3, 0.5])
    np.testing.assert_allclose(
        null_fidelity_survival(tau, n), stats.beta(1, n - 1).sf(tau**2), rtol=1e-12
    )


@pytest.mark.parametrize("topology", ["mobius", "cylinder", "torus"])
def test_linear_unitary_evolution_keeps_separation(topology: str) -> None:
    # iψ_t = −αΔψ: growth 1 − γ = 0, D = 0, α ≠ 0, no cubic term; ETD is exact for it
    lat = MobiusStrip(16, 6, topology=topology, edge="dirichlet", dtype=torch.complex128)
    params = FieldParams(
        damping=1.0, diffusion=0.0, dispersion=0.05, nonlinearity=0.0, nonlinear_frequency=0.0
    )
    sim = Simulator(lat, params, dt=0.05, integrator="etd", batch=2, initial="zero")
    psi = torch.randn(2, 16, 6, dtype=torch.complex128, generator=_gen(7))
    sim.psi = psi
    w = lat.area_weights()
    d0 = float(field_norm(psi[0] - psi[1], w))
    sim.step(200)
    d1 = float(field_norm(sim.psi[0] - sim.psi[1], w))
    assert abs(d1 - d0) / d0 < 1e-10
    # the fields did move: a conservation check on a frozen state would be empty
    assert float(field_norm(sim.psi[0] - psi[0], w)) > 1e-2


def test_branch_separation_is_constant_under_unitary_dynamics() -> None:
    lat = MobiusStrip(16, 6, dtype=torch.complex128)
    params = FieldParams(
        damping=1.0, diffusion=0.0, dispersion=0.05, nonlinearity=0.0, nonlinear_frequency=0.0
    )
    psi0 = torch.randn(16, 6, dtype=torch.complex128, generator=_gen(8))
    ens = evolve_branches(
        lat,
        params,
        psi0,
        n_branches=4,
        kind="noise",
        epsilon=0.1,
        t_end=5.0,
        seed=3,
        integrator="etd",
        n_records=10,
    )
    drift = np.abs(ens.separation / ens.separation[0] - 1.0).max()
    assert drift < 1e-10
    np.testing.assert_allclose(ens.reference_norm, ens.reference_norm[0], rtol=1e-10)


def test_shape_errors_name_the_argument() -> None:
    w = MobiusStrip(4, 4).area_weights()
    with pytest.raises(LatticeError, match="psi1"):
        inner_product(
            torch.zeros(3, 3, dtype=torch.complex64), torch.zeros(4, 4, dtype=torch.complex64), w
        )
    with pytest.raises(LatticeError, match="fidelity_matrix"):
        fidelity_matrix(torch.zeros(2, 2, 4, 4, dtype=torch.complex64), w)
