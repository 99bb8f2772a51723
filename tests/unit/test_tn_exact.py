"""Exact diagonalisation and pure-state entanglement (hhml.core.tensor_networks)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hhml.core.tensor_networks import exact
from hhml.core.tensor_networks.entanglement import (
    block_entropy_profile,
    density_matrix_entropy,
    entanglement_entropy,
    entropy_from_spectrum,
    haar_random_state,
    page_entropy,
    reduced_density_matrix,
    schmidt_values,
)
from hhml.errors import ConfigError


@pytest.mark.parametrize("L", [4, 7, 10, 13])
def test_critical_ising_periodic_ground_energy(L: int) -> None:
    e0, psi = exact.ground_state(exact.ising_hamiltonian(L, g=1.0, boundary="periodic"))
    assert abs(e0 - exact.ising_critical_ground_energy(L)) < 1e-10
    assert np.linalg.norm(psi) == pytest.approx(1.0)


@pytest.mark.parametrize("boundary", ["periodic", "open"])
@pytest.mark.parametrize("L", [6, 8, 12])
def test_xx_ground_energy_matches_free_fermions(L: int, boundary: str) -> None:
    e0, _ = exact.ground_state(exact.xx_hamiltonian(L, boundary=boundary))
    assert abs(e0 - exact.xx_ground_energy(L, boundary=boundary)) < 1e-10


def test_ising_hamiltonian_is_symmetric_and_paramagnet_limit() -> None:
    h = exact.ising_hamiltonian(6, g=1.3, J=0.7, boundary="open")
    assert abs(h - h.T).max() == 0.0
    # J = 0: all spins up, E0 = −g L
    e0, psi = exact.ground_state(exact.ising_hamiltonian(6, g=2.0, J=0.0))
    assert e0 == pytest.approx(-12.0)
    assert abs(psi[0]) == pytest.approx(1.0)


def test_site_major_state_orders_sites() -> None:
    psi = np.zeros(2**3)
    psi[0b001] = 1.0  # site 0 flipped
    st = exact.site_major_state(psi, 3)
    assert st[1, 0, 0] == 1.0


def test_bad_chain_arguments() -> None:
    with pytest.raises(ConfigError, match="boundary"):
        exact.ising_hamiltonian(4, boundary="twisted")
    with pytest.raises(ConfigError, match="chain length"):
        exact.xx_hamiltonian(40)


def test_entropy_symmetry_and_rdm_consistency() -> None:
    rng = np.random.default_rng(1)
    dims = [2, 3, 2, 2]
    psi = haar_random_state(24, rng)
    for r in (1, 2):
        for keep in itertools.combinations(range(4), r):
            rest = [i for i in range(4) if i not in keep]
            s_a = entanglement_entropy(psi, dims, keep)
            assert s_a == pytest.approx(entanglement_entropy(psi, dims, rest), abs=1e-12)
            rho = reduced_density_matrix(psi, dims, keep)
            assert np.trace(rho).real == pytest.approx(1.0)
            assert density_matrix_entropy(rho) == pytest.approx(s_a, abs=1e-12)
    assert np.sum(schmidt_values(psi, dims, [0, 2]) ** 2) == pytest.approx(1.0)


def test_subadditivity_and_strong_subadditivity() -> None:
    rng = np.random.default_rng(2)
    dims = [2, 2, 2, 2, 2]
    for _ in range(5):
        psi = haar_random_state(32, rng)

        def ent(sub: tuple[int, ...], psi: np.ndarray = psi) -> float:
            return entanglement_entropy(psi, dims, sub)

        for a, b, c in itertools.permutations(range(4), 3):
            assert ent((a,)) + ent((b,)) >= ent(tuple(sorted((a, b)))) - 1e-12
            ab, bc, abc = (tuple(sorted(x)) for x in ((a, b), (b, c), (a, b, c)))
            assert ent(ab) + ent(bc) >= ent((b,)) + ent(abc) - 1e-12


def test_renyi_and_known_states() -> None:
    bell = np.array([1.0, 0.0, 0.0, 1.0]) / np.sqrt(2)
    for alpha in (0.5, 1.0, 2.0, np.inf):
        assert entanglement_entropy(bell, [2, 2], [0], alpha) == pytest.approx(np.log(2))
    assert entanglement_entropy(np.array([1.0, 0, 0, 0]), [2, 2], [0]) == 0.0
    p = np.array([0.5, 0.25, 0.25])
    assert entropy_from_spectrum(p, 2.0) == pytest.approx(-np.log(0.375))


def test_ground_state_block_profile_is_symmetric() -> None:
    L = 10
    _, psi = exact.ground_state(exact.ising_hamiltonian(L))
    s = block_entropy_profile(exact.site_major_state(psi, L), L)
    assert s[0] == 0.0 and s[-1] == 0.0
    np.testing.assert_allclose(s, s[::-1], atol=1e-10)


def test_page_formula_values_and_sampling() -> None:
    assert page_entropy(2, 2) == pytest.approx(1 / 3 + 1 / 4 - 1 / 4)
    assert page_entropy(8, 4) == page_entropy(4, 8)
    m, n = 4, 8
    assert page_entropy(m, n) < np.log(m)
    rng = np.random.default_rng(3)
    s = np.array(
        [entanglement_entropy(haar_random_state(m * n, rng), [m, n], [0]) for _ in range(600)]
    )
    assert abs(s.mean() - page_entropy(m, n)) < 4 * s.std(ddof=1) / np.sqrt(s.size)


def test_entanglement_errors() -> None:
    with pytest.raises(ConfigError, match="amplitudes"):
        entanglement_entropy(np.ones(5), [2, 2], [0])
    with pytest.raises(ConfigError, match="keep"):
        entanglement_entropy(np.ones(4), [2, 2], [3])
    with pytest.raises(ConfigError, match="alpha"):
        entropy_from_spectrum(np.array([1.0]), -1.0)


def test_central_charge_check_quick_is_tight() -> None:
    import torch

    from hhml.validation.tn_exact_checks import CENTRAL_CHARGE_TOLERANCES, check_central_charge

    res = check_central_charge(True, torch.device("cpu"))
    assert res.passed, res.details
    tol_i, tol_x = CENTRAL_CHARGE_TOLERANCES[True]
    # Measured at L = 128: |c − 1/2| = 3.9e-5, |c − 1| = 3.2e-4 (deterministic finite-size
    # errors of the fit); the tolerances stay within 10 × of them.
    assert res.details["ising_error"] == pytest.approx(3.9e-5, rel=0.05)
    assert res.details["xx_error"] == pytest.approx(3.2e-4, rel=0.05)
    assert res.details["ising_error"] <= tol_i <= 10 * res.details["ising_error"]
    assert res.details["xx_error"] <= tol_x <= 10 * res.details["xx_error"]
