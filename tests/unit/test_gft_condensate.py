"""Tests of :mod:`hhml.core.gft.condensate` against the closed-form solution."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hhml.core.gft.condensate import (
    SpinMode,
    bounce_phi,
    classical_mass_squared,
    closed_form_rho_squared,
    friedmann_ratio,
    has_bounce,
    integrate_complex,
    integrate_radial,
    minimum_rho_squared,
    mode_from_initial_data,
    rho_squared_from_initial_data,
    volume,
)
from hhml.errors import ConfigError

M = math.sqrt(classical_mass_squared(1.0))


def _modes() -> list[SpinMode]:
    return [
        SpinMode(M, 1.0, 0.3, 0.5, 0.0, 1.0),
        mode_from_initial_data(M, -2.0, 0.0, 0.2, 2.0**1.5),
        mode_from_initial_data(M, 3.0, 0.7, -0.3, 3.0**1.5),
    ]


@pytest.mark.parametrize("integrate", [integrate_radial, integrate_complex])
def test_conserved_quantities_and_closed_form(integrate) -> None:  # type: ignore[no-untyped-def]
    modes = _modes()
    sol = integrate(modes, (-2.5, 2.5), 301)
    m = np.array([md.mass for md in modes])[:, None]
    e0 = np.array([md.energy for md in modes])[:, None]
    q0 = np.array([md.charge for md in modes])[:, None]
    scale = np.maximum(m**2 * sol.rho**2, np.abs(e0))
    assert np.max(np.abs(sol.energy - e0) / scale) < 1e-8
    assert np.max(np.abs(sol.charge - q0) / (m * sol.rho**2)) < 1e-8
    closed = np.array([rho_squared_from_initial_data(sol.phi, md) for md in modes])
    assert np.max(np.abs(sol.rho**2 - closed) / closed) < 1e-8
    assert np.allclose(sol.volume, volume(sol.phi, modes), rtol=1e-8)


def test_cosh_form_equals_initial_data_form() -> None:
    phi = np.linspace(-2, 2, 51)
    for md in _modes():
        cosh = closed_form_rho_squared(phi, md.mass, md.energy, md.charge, bounce_phi(md))
        np.testing.assert_allclose(cosh, rho_squared_from_initial_data(phi, md), rtol=1e-12)


def test_mode_from_initial_data_places_bounce() -> None:
    md = mode_from_initial_data(M, 1.0, 0.5, 0.4, phi_init=-0.3)
    assert bounce_phi(md) == pytest.approx(0.4, abs=1e-12)
    assert md.energy == pytest.approx(1.0, abs=1e-10)
    assert rho_squared_from_initial_data(0.4, md) == pytest.approx(
        minimum_rho_squared(M, 1.0, 0.5), rel=1e-12
    )


@pytest.mark.parametrize(
    ("energy", "charge"), [(1.0, 0.5), (-1.0, 0.0), (0.0, 0.4), (1.0, 0.0), (0.0, 0.0)]
)
def test_bounce_exactly_when_charge_or_negative_energy(energy: float, charge: float) -> None:
    mode = SpinMode(M, 1.0, -math.sqrt(energy - charge**2 + M**2), charge)
    sol = integrate_complex([mode], (-1.0, 3.0), 4001)
    rho2 = sol.rho[0] ** 2
    i = int(np.argmin(rho2))
    bounce = 0 < i < rho2.size - 1 and rho2[i] > 1e-3 * (abs(energy) / M**2 + charge / M)
    assert bounce == has_bounce(energy, charge)
    if bounce:
        assert rho2[i] == pytest.approx(minimum_rho_squared(M, energy, charge), rel=1e-4)


def test_friedmann_limit() -> None:
    span = 12.0 / M
    ratio = friedmann_ratio(integrate_radial(_modes(), (-span, span), 201), 1.0)
    assert abs(ratio[0] - 1) < 1e-7 and abs(ratio[-1] - 1) < 1e-7
    assert ratio.min() < 0.1  # strongly modified near the bounce


def test_radial_rejects_modes_without_bounce() -> None:
    with pytest.raises(ConfigError):
        integrate_radial([SpinMode(M, 1.0, -M, 0.0)], (-1.0, 1.0))
    with pytest.raises(ConfigError):
        mode_from_initial_data(M, 1.0, 0.0, 0.0)
    with pytest.raises(ConfigError):
        SpinMode(-1.0, 1.0, 0.0, 0.0)
