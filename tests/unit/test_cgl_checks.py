"""Tests of the closed-form CGL / Gross–Pitaevskii checks and of the physical schema ranges.

The checks themselves compare the simulator with closed forms (their tolerances and
measured errors are in :mod:`hhml.validation.cgl_checks` and docs/validation.md); here
each one passes in quick mode, each one fails on a deliberately wrong simulator, and the
schema accepts the canonical CGL (unit diffusion) while refusing non-physical values.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hhml.config import load_config
from hhml.config.schema import FieldParams, LatticeConfig
from hhml.core.factory import build_lattice
from hhml.core.resonance import Simulator
from hhml.errors import ConfigError, NumericalInstabilityError, ValidationError
from hhml.ml.env.controls import ControlMap
from hhml.validation import cgl_checks
from hhml.validation.checks import CHECKS, GROUPS

CPU = torch.device("cpu")
REPO = Path(__file__).resolve().parents[2]


def _perturbed_simulator(monkeypatch: pytest.MonkeyPatch, **delta: float) -> None:
    """Make the checks' Simulator run with parameters shifted by ``delta`` (a wrong code)."""
    real = cgl_checks.Simulator

    def wrong(lattice: Any, params: FieldParams, **kwargs: Any) -> Simulator:
        changes = {k: getattr(params, k) + v for k, v in delta.items()}
        return real(lattice, params.replace(**changes), **kwargs)

    monkeypatch.setattr(cgl_checks, "Simulator", wrong)


# --------------------------------------------------------------------- the checks pass
def test_checks_are_registered_as_a_group() -> None:
    assert GROUPS["cgl"] == ["cgl-plane-waves", "cgl-linear-growth", "gp-conservation"]
    assert all(name in CHECKS for name in GROUPS["cgl"])


@pytest.mark.parametrize("name", ["cgl-plane-waves", "cgl-linear-growth", "gp-conservation"])
def test_check_passes_in_quick_mode(name: str) -> None:
    result = CHECKS[name](True, CPU)
    assert result.passed, (result.measured, result.details)
    assert result.name == name and result.measured >= 0.0


# ------------------------------------------------------------ the checks catch errors
def test_plane_wave_check_fails_for_a_wrong_dispersion(monkeypatch: pytest.MonkeyPatch) -> None:
    # b off by 1e-3 shifts ω by 1e-3·q²: a phase error 1e-3·0.076·5 ≈ 4e-4 at t = 5,
    # against a tolerance of 5e-10 on this case
    name = "möbius b=c=0.5 n=1 θ=0.7"
    monkeypatch.setattr(cgl_checks, "PLANE_WAVE_CASES", {name: cgl_checks.PLANE_WAVE_CASES[name]})
    _perturbed_simulator(monkeypatch, dispersion=1e-3)
    result = cgl_checks.check_cgl_plane_waves(True, CPU)
    assert not result.passed
    assert result.details["failures"] == [name]
    assert 1e-4 < result.details[name]["max_relative_error"] < 1e-3


def test_growth_check_fails_for_a_wrong_nonlinear_frequency(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cases = {k: v for k, v in cgl_checks.GROWTH_CASES.items() if k.startswith("möbius")}
    monkeypatch.setattr(cgl_checks, "GROWTH_CASES", cases)
    _perturbed_simulator(monkeypatch, nonlinear_frequency=1e-3)
    result = cgl_checks.check_cgl_linear_growth(True, CPU)
    assert not result.passed and set(result.details["failures"]) == set(cases)


def test_gp_check_fails_for_a_dissipative_flow(monkeypatch: pytest.MonkeyPatch) -> None:
    # D = 1e-4 makes the semi-discrete flow lose norm: the drift no longer vanishes as dt⁵
    _perturbed_simulator(monkeypatch, diffusion=1e-4)
    result = cgl_checks.check_gp_conservation(True, CPU)
    assert not result.passed
    assert result.details["norm_drift"][-1] > 1e-5


# ----------------------------------------------------------------- closed-form helpers
@pytest.mark.parametrize(("b", "c"), [(0.5, 0.5), (1.0, -2.0), (-1.5, 0.3)])
def test_stability_matrix_matches_the_canonical_closed_form(b: float, c: float) -> None:
    q2 = 0.37
    matrix = cgl_checks.stability_matrix(cgl_checks.canonical_cgl_params(b, c), q2)
    # trace −2(1 + q²), determinant (1 + b²)q⁴ + 2(1 + bc)q² (docs/physics.md §2);
    # float64 arithmetic on O(1) numbers: error ≤ 1e-15, asserted to 1e-14
    assert abs(np.trace(matrix) + 2.0 * (1.0 + q2)) <= 1e-14
    det = (1.0 + b * b) * q2 * q2 + 2.0 * (1.0 + b * c) * q2
    assert abs(np.linalg.det(matrix) - det) <= 1e-14
    growth = float(np.linalg.eigvals(matrix).real.max())
    small_q = float(
        np.linalg.eigvals(
            cgl_checks.stability_matrix(cgl_checks.canonical_cgl_params(b, c), 1e-3)
        ).real.max()
    )
    assert (small_q > 0.0) == (1.0 + b * c < 0.0)
    assert growth < 0.0 or 1.0 + b * c < 0.0


def test_plane_wave_dispersion_relation_in_both_conventions() -> None:
    b, c, q2 = 0.7, -0.4, 0.3
    amp, omega = cgl_checks.plane_wave(cgl_checks.canonical_cgl_params(b, c), q2)
    assert amp == pytest.approx(math.sqrt(1.0 - q2), abs=1e-15)
    assert omega == pytest.approx(c + (b - c) * q2, abs=1e-15)
    # rescaled general parameters: b = α/D, c = β/g, A = √(G/g)·A', ω = G·ω', q² = (G/D)q'²
    gamma, d, g = 0.4, 0.25, 2.0
    general = FieldParams(
        damping=gamma, diffusion=d, nonlinearity=g, dispersion=b * d, nonlinear_frequency=c * g
    )
    growth = 1.0 - gamma
    amp_g, omega_g = cgl_checks.plane_wave(general, q2 * growth / d)
    assert amp_g == pytest.approx(math.sqrt(growth / g) * amp, rel=1e-14)
    assert omega_g == pytest.approx(growth * omega, rel=1e-14)
    with pytest.raises(ValidationError, match="no plane wave"):
        cgl_checks.plane_wave(cgl_checks.canonical_cgl_params(b, c), 1.2)


# ---------------------------------------------------------------- physical schema
def test_canonical_cgl_with_unit_diffusion_simulates() -> None:
    params = FieldParams(diffusion=1.0, dispersion=1.0, nonlinear_frequency=-2.0)
    lat = build_lattice(LatticeConfig(nu=64, nv=16), device=CPU, dtype=torch.complex128)
    limit = Simulator(lat, params, dt=1e-5).max_stable_dt()
    with pytest.raises(NumericalInstabilityError, match="stability limit"):
        Simulator(lat, params, dt=1.05 * limit)
    dt = 0.9 * limit
    # the uniform state ψ = e^{−ict} (c = β = −2) is an exact solution on the embedded
    # Möbius band with Neumann edges; measured (RK4 phase) error 6.3e-10 after 100 steps
    sim = Simulator(lat, params, dt=dt, initial="uniform", initial_amplitude=1.0)
    sim.step(100)
    exact = complex(math.cos(2.0 * sim.t), math.sin(2.0 * sim.t))
    assert float((sim.psi - exact).abs().max()) <= 6e-9
    # and from noise (Benjamin–Feir unstable, 1 + bc = −1) the run stays finite
    noisy = Simulator(lat, params, dt=dt, seed=1, initial="noise", initial_amplitude=0.1)
    noisy.step(200)
    assert bool(torch.isfinite(torch.view_as_real(noisy.psi)).all())


def test_schema_accepts_physical_values_beyond_the_old_box() -> None:
    params = FieldParams(
        damping=3.0,
        nonlinearity=20.0,
        diffusion=1.0,
        noise_temperature=1.0,
        dispersion=-5.0,
        nonlinear_frequency=7.0,
        spectral_filter=1e-3,
        source_amplitude=10.0,
        source_frequency=-12.0,
        source_spread=2.0,
        boundary_winding=12,
        coupling=5.0,
        pinning=8.0,
        pair_seeding=50.0,
    )
    assert (params.diffusion, params.dispersion, params.spectral_filter) == (1.0, -5.0, 1e-3)


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("diffusion", -0.1, r"dynamics\.diffusion = -0\.1 is out of range; allowed >= 0"),
        ("noise_temperature", -1e-3, r"dynamics\.noise_temperature = -0\.001 is out of range"),
        ("spectral_filter", -1e-9, r"dynamics\.spectral_filter = -1e-09 is out of range"),
        ("damping", -0.5, r"dynamics\.damping = -0\.5 is out of range; allowed >= 0"),
        ("dispersion", math.nan, r"dynamics\.dispersion = nan is not a finite number"),
        ("nonlinear_frequency", math.inf, r"dynamics\.nonlinear_frequency = inf is not a finite"),
        ("diffusion", math.nan, r"dynamics\.diffusion = nan is not a finite number"),
    ],
)
def test_schema_refuses_non_physical_values(key: str, value: float, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        FieldParams(**{key: value})


def test_preset_is_the_canonical_cgl() -> None:
    cfg = load_config(REPO / "configs" / "default.yaml", ["dynamics=cgl_canonical"])
    assert cfg.dynamics == cgl_checks.canonical_cgl_params(1.0, -2.0)


def test_control_box_stays_in_the_controls_table() -> None:
    cfg = load_config(None)
    controls = ControlMap(cfg)
    k = controls.names.index("diffusion")
    assert (controls.low[k], controls.high[k]) == (0.002, 0.05)  # unchanged by the schema
    # a control range is still checked against the physical range of its field
    with pytest.raises(ConfigError, match=r"controls\.diffusion_low = -0\.01 is outside"):
        ControlMap(load_config(None, ["controls.diffusion_low=-0.01"]))
    # and an action outside [−1, 1] is clipped to the box, not to the schema's range
    values = controls.to_values(np.full((1, len(controls.names)), 5.0))
    assert values[0, k] == 0.05
