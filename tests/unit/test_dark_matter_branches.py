"""Perturbation kinds, branch evolution, pruning curve, residue and growth-rate fits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hhml.analysis.dark_matter import (
    JITTERED_PARAMETERS,
    PruningCriterion,
    evolve_branches,
    field_norm,
    fit_separation_growth,
    ginzburg_landau_energy,
    jitter_params,
    perturb_snapshot,
    retention_curve,
    summarise_residue,
    vortex_statistics,
    with_topology,
)
from hhml.config.schema import FieldParams
from hhml.config.specs import field_specs
from hhml.core.mobius import LatticeEnsemble, MobiusStrip, TokamakStack
from hhml.errors import ConfigError, LatticeError


def _lattice(topology: str = "mobius") -> MobiusStrip:
    return MobiusStrip(24, 8, topology=topology, edge="neumann", dtype=torch.complex128)


def _field(seed: int, shape: tuple[int, ...] = (24, 8)) -> torch.Tensor:
    g = torch.Generator()
    g.manual_seed(seed)
    return 1.0 + 0.2 * torch.randn(shape, dtype=torch.complex128, generator=g)


def test_noise_has_the_declared_relative_rms_and_is_seeded() -> None:
    lat = _lattice()
    psi0 = _field(0)
    w = lat.area_weights()
    out = perturb_snapshot(psi0, lat, kind="noise", epsilon=0.05, n_branches=400, seed=1)
    rel = (field_norm(out - psi0, w) ** 2).mean() / field_norm(psi0, w) ** 2
    assert float(rel.sqrt()) == pytest.approx(0.05, rel=0.02)
    again = perturb_snapshot(psi0, lat, kind="noise", epsilon=0.05, n_branches=400, seed=1)
    assert torch.equal(out, again)
    other = perturb_snapshot(psi0, lat, kind="noise", epsilon=0.05, n_branches=400, seed=2)
    assert not torch.equal(out, other)


def test_phase_kicks_keep_the_modulus() -> None:
    lat = _lattice()
    psi0 = _field(1)
    out = perturb_snapshot(psi0, lat, kind="phase", epsilon=0.1, n_branches=3, seed=0)
    assert torch.allclose(out.abs(), psi0.abs().expand_as(out))
    assert not torch.allclose(out, psi0.expand_as(out))


@pytest.mark.parametrize("topology", ["mobius", "cylinder", "torus"])
def test_pair_imprint_adds_two_opposite_vortices(topology: str) -> None:
    lat = _lattice(topology)
    psi0 = torch.ones(24, 8, dtype=torch.complex128)
    out = perturb_snapshot(psi0, lat, kind="pair", epsilon=1.0, n_branches=40, seed=4)
    count, total, _ = vortex_statistics(out, lat)
    np.testing.assert_array_equal(count, 2.0)
    np.testing.assert_array_equal(total, 2.0)


def test_pair_imprint_on_a_stack() -> None:
    stack = TokamakStack(2, 16, 6, aspect=8.0, strip_spacing=2.0, dtype=torch.complex128)
    psi0 = torch.ones(2, 16, 6, dtype=torch.complex128)
    out = perturb_snapshot(psi0, stack, kind="pair", epsilon=1.0, n_branches=3, seed=0)
    count, _, _ = vortex_statistics(out, stack)
    np.testing.assert_array_equal(count, 2.0)


def test_parameter_jitter_is_seeded_and_valid() -> None:
    base = FieldParams(damping=0.0, nonlinearity=1.0, diffusion=0.01)
    jittered = jitter_params(base, epsilon=0.5, n_branches=20, seed=3)
    specs = field_specs(base)
    for p in jittered:
        p.validate()
        for name in JITTERED_PARAMETERS:
            lo = specs[name].low
            assert lo is None or getattr(p, name) >= lo
    assert len({p.nonlinearity for p in jittered}) == 20
    assert jittered == jitter_params(base, epsilon=0.5, n_branches=20, seed=3)


def test_bad_arguments_are_named() -> None:
    lat = _lattice()
    with pytest.raises(ConfigError, match="kind"):
        perturb_snapshot(_field(0), lat, kind="quantum", epsilon=0.1, n_branches=2, seed=0)
    with pytest.raises(ConfigError, match="epsilon"):
        perturb_snapshot(_field(0), lat, kind="noise", epsilon=-1.0, n_branches=2, seed=0)
    with pytest.raises(LatticeError, match="psi0"):
        perturb_snapshot(_field(0, (5, 5)), lat, kind="noise", epsilon=0.1, n_branches=2, seed=0)
    with pytest.raises(LatticeError, match="norm"):
        perturb_snapshot(
            torch.zeros(24, 8, dtype=torch.complex128),
            lat,
            kind="noise",
            epsilon=0.1,
            n_branches=2,
            seed=0,
        )
    ens = LatticeEnsemble(2, 1, 8, 4)
    with pytest.raises(LatticeError, match="LatticeEnsemble"):
        perturb_snapshot(
            torch.ones(2, 1, 8, 4, dtype=torch.complex64),
            ens,
            kind="noise",
            epsilon=0.1,
            n_branches=2,
            seed=0,
        )
    with pytest.raises(ConfigError, match="threshold"):
        PruningCriterion(threshold=1.5)
    with pytest.raises(ConfigError, match="reference"):
        PruningCriterion(reference="median")


def test_evolve_branches_records_and_is_deterministic() -> None:
    lat = _lattice()
    params = FieldParams(noise_temperature=0.05, pair_seeding=1.0)
    kwargs = dict(n_branches=3, kind="params", epsilon=0.05, t_end=1.0, seed=5, n_records=5)
    ens = evolve_branches(lat, params, _field(2), **kwargs)  # type: ignore[arg-type]
    assert ens.params.noise_temperature == 0.0 and ens.params.pair_seeding == 0.0
    assert ens.separation.shape == (len(ens.times), 3)
    assert ens.times[0] == 0.0 and ens.t_end == pytest.approx(1.0)
    np.testing.assert_array_equal(ens.separation[0], 0.0)  # params kind: same start
    assert np.all(ens.separation[-1] > 0)
    again = evolve_branches(lat, params, _field(2), **kwargs)  # type: ignore[arg-type]
    assert torch.equal(ens.branches, again.branches)


def test_retention_curve_band_and_null() -> None:
    rng = np.random.default_rng(0)
    f = 1.0 - 10.0 ** rng.uniform(-4, -1, size=30)
    tau = np.array([0.0, 0.9, 0.99, 0.999, 1.0])
    curve = retention_curve(f, tau, dof=100, n_boot=500, seed=1)
    assert curve.retained[0] == 1.0 and curve.retained[-1] == 0.0
    assert np.all(np.diff(curve.retained) <= 0)
    assert np.all(curve.lower <= curve.retained) and np.all(curve.retained <= curve.upper)
    np.testing.assert_allclose(curve.null_retained, (1 - tau**2) ** 99)
    crit = PruningCriterion(threshold=0.99)
    assert crit.kept(f).mean() == pytest.approx(curve.retained[2])
    assert "declared before evolution" in crit.statement()


def test_growth_rate_fit_recovers_an_exponential() -> None:
    t = np.linspace(0.0, 5.0, 51)
    rates = np.array([0.6, 0.8, 1.0])
    sep = 1e-4 * np.exp(np.outer(t, rates))
    ref = np.full_like(t, 1.0)
    fit = fit_separation_growth(t, sep, ref, saturation=10.0, n_boot=200, seed=0)
    np.testing.assert_allclose(fit.exponents, rates, rtol=1e-10)
    assert fit.ci[0] <= fit.mean <= fit.ci[1]
    # saturation: points with δ > s‖ψ_ref‖ and everything after them are excluded
    sep_sat = np.minimum(sep, 2e-3)
    fit_sat = fit_separation_growth(t, sep_sat, ref, saturation=1e-3, n_boot=50)
    np.testing.assert_allclose(fit_sat.exponents, rates, rtol=1e-10)
    assert np.all(fit_sat.n_points < t.size)
    too_short = fit_separation_growth(t, sep, ref, saturation=1.01e-4, n_boot=50)
    assert np.all(np.isnan(too_short.exponents))


def test_energy_of_a_uniform_field_and_summation_by_parts() -> None:
    params = FieldParams(damping=0.2, diffusion=0.03, nonlinearity=1.5)
    lat = _lattice("cylinder")
    a = 0.7
    uniform = torch.full((24, 8), a, dtype=torch.complex128)
    area = float(lat.area_weights().sum())
    expected = area * (-(0.8) * a**2 + 0.75 * a**4)
    assert float(ginzburg_landau_energy(uniform, lat, params)) == pytest.approx(expected)
    # torus: −Re⟨ψ, Δψ⟩ equals the sum of squared forward differences
    torus = _lattice("torus")
    psi = _field(9)
    dx = (torch.roll(psi, -1, 0) - psi) / torus.du
    dy = (torch.roll(psi, -1, 1) - psi) / torus.dv
    grad = float((torus.du * torus.dv * (dx.abs() ** 2 + dy.abs() ** 2)).sum())
    params_grad = FieldParams(damping=1.0, diffusion=0.1, nonlinearity=0.0)
    assert float(ginzburg_landau_energy(psi, torus, params_grad)) == pytest.approx(0.1 * grad)


def test_residue_shares_and_comparisons() -> None:
    lat = _lattice()
    psi = _field(3).expand(6, 24, 8).clone()
    psi[:2] *= 2.0  # the two pruned branches carry 4× the norm²
    kept = np.array([False, False, True, True, True, True])
    res = summarise_residue(psi, psi[2], kept, lat, FieldParams(), n_boot=100, n_permutations=200)
    assert res.n_pruned == 2 and res.norm_share_null == pytest.approx(2 / 6)
    assert res.norm_share_pruned == pytest.approx(8 / 12)
    assert res.norm.rank_biserial == pytest.approx(1.0)
    assert res.vortex_count.note == "all values equal"
    assert res.vortex_density_null == pytest.approx(1 / 3)
    all_kept = summarise_residue(psi, psi[2], np.ones(6, bool), lat, FieldParams(), n_boot=10)
    assert math.isnan(all_kept.energy.mann_whitney_p) and "empty" in all_kept.energy.note


def test_with_topology_changes_only_the_topology() -> None:
    lat = MobiusStrip(12, 6, edge="dirichlet", twist=0.3, metric="embedded", aspect=4.0)
    for topo in ("cylinder", "torus"):
        other = with_topology(lat, topo)
        assert isinstance(other, MobiusStrip) and other.topology == topo
        a, b = lat.state_dict(), other.state_dict()
        a.pop("topology"), b.pop("topology")
        assert a == b
    stack = TokamakStack(2, 8, 4, aspect=8.0, strip_spacing=2.0)
    assert with_topology(stack, "torus").strip.topology == "torus"  # type: ignore[union-attr]
    with pytest.raises(LatticeError, match="topology"):
        with_topology(lat, "sphere")
