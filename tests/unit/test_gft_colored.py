"""Tests of :mod:`hhml.core.gft.colored_tensors` against closed-form results."""

from __future__ import annotations

import math

import pytest

from hhml.core.gft.colored_tensors import (
    ColoredGraph,
    critical_coupling,
    critical_gap,
    critical_two_point,
    degree_census,
    fit_susceptibility_exponent,
    fuss_catalan,
    is_melonic,
    melonic_series_coefficients,
    melonic_two_point,
    melonic_two_point_series,
)
from hhml.errors import ConfigError


@pytest.mark.parametrize("D", [2, 3, 4])
def test_critical_point_solves_sd_and_its_derivative(D: int) -> None:
    zc, gc = critical_coupling(D), critical_two_point(D)
    assert zc == pytest.approx(D**D / (D + 1) ** (D + 1), rel=1e-15)
    assert 1 + zc * gc ** (D + 1) - gc == pytest.approx(0.0, abs=1e-14)
    assert (D + 1) * zc * gc**D == pytest.approx(1.0, abs=1e-14)


@pytest.mark.parametrize("D", [2, 3, 4])
def test_series_coefficients_are_fuss_catalan(D: int) -> None:
    assert melonic_series_coefficients(25, D) == [fuss_catalan(n, D) for n in range(26)]
    assert fuss_catalan(3, 3) == 22  # binom(12, 3)/10


@pytest.mark.parametrize("frac", [-0.9, 0.1, 0.6, 0.95])
def test_root_finding_matches_series_on_the_branch(frac: float) -> None:
    D = 3
    z = frac * critical_coupling(D)
    assert melonic_two_point(z, D) == pytest.approx(melonic_two_point_series(z, D), abs=1e-13)


def test_branch_continuous_from_one_and_ends_at_g_c() -> None:
    D = 3
    assert melonic_two_point(0.0, D) == 1.0
    assert melonic_two_point(1e-12, D) == pytest.approx(1.0 + 1e-12, abs=1e-15)
    assert melonic_two_point(critical_coupling(D) * (1 - 1e-14), D) == pytest.approx(
        critical_two_point(D), abs=1e-6
    )
    with pytest.raises(ConfigError):
        melonic_two_point(1.01 * critical_coupling(D), D)


def test_critical_gap_agrees_with_root_finding_away_from_z_c() -> None:
    D = 3
    zc, gc = critical_coupling(D), critical_two_point(D)
    dz = 0.3 * zc
    assert critical_gap(dz, D) == pytest.approx(gc - melonic_two_point(zc - dz, D), rel=1e-12)


@pytest.mark.parametrize("D", [2, 3, 5])
def test_susceptibility_exponent_is_one_half(D: int) -> None:
    fit = fit_susceptibility_exponent(D)
    assert abs(fit.exponent - 0.5) < 1e-5
    assert fit.amplitude == pytest.approx(fit.amplitude_exact, rel=1e-4)


def test_elementary_melon_and_faces() -> None:
    melon = ColoredGraph(((0,), (0,), (0,), (0,)))
    assert melon.faces() == 6 and melon.gurau_degree() == 0 and is_melonic(melon)
    # p = 2, two colors swapped relative to color 0: ω = 1 (not melonic)
    g = ColoredGraph(((0, 1), (1, 0), (1, 0), (0, 1)))
    assert g.is_connected()
    assert g.faces() == 8 and g.gurau_degree() == 1 and not is_melonic(g)
    assert sum(g.jacket_genera()) == g.gurau_degree()


def test_disconnected_graph_detected() -> None:
    g = ColoredGraph(((0, 1),) * 4)
    assert not g.is_connected()
    with pytest.raises(ConfigError):
        is_melonic(g)


def test_invalid_permutation_rejected() -> None:
    with pytest.raises(ConfigError):
        ColoredGraph(((0, 0), (0, 1), (0, 1), (0, 1)))


@pytest.mark.parametrize("p", [1, 2, 3])
def test_degree_census_d3(p: int) -> None:
    c = degree_census(p, 3)
    assert c.n_graphs == math.factorial(p) ** 3
    assert c.n_formula_violations == 0 and c.n_melonic_mismatch == 0
    assert all(w >= 0 for w in c.omega_counts)
    assert c.omega_counts[0] == c.n_melonic_by_reduction == c.expected_melonic
    assert sum(c.omega_counts.values()) == c.n_connected
    if p == 3:
        assert c.omega_counts == {0: 44, 1: 72, 2: 42, 3: 24, 4: 12}
