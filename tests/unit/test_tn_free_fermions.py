"""Peschel entropies, central-charge fits and the boundary-entanglement helper."""

from __future__ import annotations

import numpy as np
import pytest

from hhml.core.tensor_networks import exact, free_fermions
from hhml.core.tensor_networks.central_charge import chord_log, fit_central_charge
from hhml.core.tensor_networks.entanglement import block_entropy_profile
from hhml.core.tensor_networks.holography import (
    boundary_entanglement,
    field_correlation_matrix,
    mode_occupations,
    occupation_jumps,
)
from hhml.errors import ConfigError


@pytest.mark.parametrize("boundary", ["periodic", "open"])
def test_peschel_matches_exact_diagonalisation(boundary: str) -> None:
    L = 12
    _, psi = exact.ground_state(exact.ising_hamiltonian(L, boundary=boundary))
    ed = block_entropy_profile(exact.site_major_state(psi, L), L)
    ff = free_fermions.majorana_entropy_profile(
        free_fermions.ising_majorana_correlation(L, boundary=boundary)
    )
    assert np.abs(ed - ff).max() < 1e-8
    _, psi = exact.ground_state(exact.xx_hamiltonian(L, boundary=boundary))
    ed = block_entropy_profile(exact.site_major_state(psi, L), L)
    ff = free_fermions.hopping_entropy_profile(free_fermions.xx_correlation_matrix(L, boundary))
    assert np.abs(ed - ff).max() < 1e-8


def test_majorana_energy_matches_closed_form() -> None:
    L = 16
    A = free_fermions.ising_majorana_matrix(L)
    e0 = -0.25 * np.abs(np.linalg.eigvalsh(1j * A)).sum()
    assert e0 == pytest.approx(exact.ising_critical_ground_energy(L), abs=1e-10)
    gamma = free_fermions.ising_majorana_correlation(L)
    np.testing.assert_allclose(gamma @ gamma, -np.eye(2 * L), atol=1e-10)


def test_xx_correlation_is_half_filled_projector() -> None:
    c = free_fermions.xx_correlation_matrix(64)
    np.testing.assert_allclose(c @ c, c, atol=1e-12)
    assert np.trace(c) == pytest.approx(32.0)
    with pytest.raises(ConfigError, match="even L"):
        free_fermions.xx_correlation_matrix(7)


@pytest.mark.parametrize(("model", "c_exact", "tol"), [("ising", 0.5, 0.01), ("xx", 1.0, 0.02)])
def test_central_charge(model: str, c_exact: float, tol: float) -> None:
    L = 256
    ells = np.arange(1, L // 2 + 1)
    if model == "ising":
        s = free_fermions.majorana_entropy_profile(
            free_fermions.ising_majorana_correlation(L), ells
        )
    else:
        s = free_fermions.hopping_entropy_profile(free_fermions.xx_correlation_matrix(L), ells)
    fit = fit_central_charge(ells, s, L)
    assert abs(fit.central_charge - c_exact) < tol
    lo, hi = fit.interval()
    assert lo < fit.central_charge < hi


def test_fit_recovers_synthetic_profile_and_rejects_tiny_window() -> None:
    L = 100
    ells = np.arange(1, L)
    s = (0.7 / 3) * chord_log(ells, L) + 0.3
    fit = fit_central_charge(ells, s, L)
    assert fit.central_charge == pytest.approx(0.7)
    assert fit.offset == pytest.approx(0.3)
    with pytest.raises(ConfigError, match="need ≥ 3"):
        fit_central_charge(ells, s, L, ell_min=49, ell_max=50)


def test_boundary_entanglement_kinds() -> None:
    prof = boundary_entanglement(free_fermions.xx_correlation_matrix(128), "correlation")
    assert prof.fit is not None and abs(prof.fit.central_charge - 1.0) < 0.02
    # a ring field whose strong modes form one contiguous band → a Fermi sea, c = 1
    rng = np.random.default_rng(0)
    n = 128
    amp = np.where(np.arange(n) < n // 2, 1.0, 0.01)
    field = np.fft.ifft(amp * np.exp(2j * np.pi * rng.random(n)))
    prof = boundary_entanglement(field, "field", occupation="fermi_sea")
    assert prof.fit is not None and abs(prof.fit.central_charge - 1.0) < 0.02
    c = field_correlation_matrix(field)
    np.testing.assert_allclose(c, c.conj().T, atol=1e-12)
    L = 10
    _, psi = exact.ground_state(exact.ising_hamiltonian(L))
    prof = boundary_entanglement(exact.site_major_state(psi, L), "state", ell_min=1)
    assert prof.entropies.shape == (L // 2,)
    assert prof.as_dict()["kind"] == "state"
    with pytest.raises(ConfigError, match="kind"):
        boundary_entanglement(field, "bulk")  # type: ignore[arg-type]


def test_fermi_sea_central_charge_is_half_its_jumps() -> None:
    """Widom: a Slater determinant with m contiguous bands of momenta (2m Fermi points) has
    S(ℓ) ≈ (m/3) ln ℓ. One band: c = 1.0003 (error 3.2e-4, tolerance 3e-3); two bands:
    c = 2.0056 (error 5.6e-3, tolerance 0.05), N = 128."""
    rng = np.random.default_rng(0)
    n = 128
    k = np.arange(n)
    one = np.where(k < n // 2, 1.0, 0.01)
    two = np.where((k < n // 4) | ((k >= n // 2) & (k < 3 * n // 4)), 1.0, 0.01)
    for amp, jumps, tol in ((one, 2, 3e-3), (two, 4, 0.05)):
        field = np.fft.ifft(amp * np.exp(2j * np.pi * rng.random(n)))
        assert occupation_jumps(field) == jumps
        prof = boundary_entanglement(field, "field", occupation="fermi_sea")
        assert prof.fit is not None and abs(prof.fit.central_charge - jumps / 2) < tol
        occ = mode_occupations(field, "fermi_sea")
        assert occ.sum() == n // 2 and set(np.unique(occ)) == {0.0, 1.0}
