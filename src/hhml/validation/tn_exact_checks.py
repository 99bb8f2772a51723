"""Validation checks of the exact and free-fermion entanglement tools (group ``tensor-networks``).

Each check compares :mod:`hhml.core.tensor_networks` against a closed-form result or an
independent computation:

- ``tn-ising-ground-energy``: Lanczos ground energies of the periodic critical Ising chain
  vs ``−2/sin(π/2L)``, and of the XX chain vs its free-fermion spectrum.
- ``tn-entropy-identities``: ``S(A) = S(Ā)`` for pure states, subadditivity and strong
  subadditivity on random states, SVD vs density-matrix entropies.
- ``tn-page-entropy``: sample mean of Haar-random entanglement vs Page's formula.
- ``tn-peschel-vs-ed``: correlation-matrix entropies vs exact diagonalisation at L = 12.
- ``tn-central-charge``: Calabrese–Cardy fits of Peschel entropies, c = 1/2 (Ising), 1 (XX).

Public names: :data:`CHECKS`, :data:`CENTRAL_CHARGE_TOLERANCES` and the ``check_*``
functions.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from hhml.core.tensor_networks import exact, free_fermions
from hhml.core.tensor_networks.central_charge import fit_central_charge
from hhml.core.tensor_networks.entanglement import (
    density_matrix_entropy,
    entanglement_entropy,
    haar_random_state,
    page_entropy,
    reduced_density_matrix,
)
from hhml.validation.checks import CheckResult


def check_ising_ground_energy(quick: bool, device: torch.device) -> CheckResult:
    """Lanczos E₀ of the critical periodic Ising chain vs −2/sin(π/2L); XX vs free fermions."""
    sizes = [4, 6, 8, 10, 12] if quick else [4, 6, 8, 10, 12, 14, 16, 18]
    details: dict[str, Any] = {}
    worst = 0.0
    for L in sizes:
        e_ising, _ = exact.ground_state(exact.ising_hamiltonian(L, g=1.0, boundary="periodic"))
        err_i = abs(e_ising - exact.ising_critical_ground_energy(L))
        e_xx, _ = exact.ground_state(exact.xx_hamiltonian(L, boundary="periodic"))
        err_x = abs(e_xx - exact.xx_ground_energy(L, boundary="periodic"))
        worst = max(worst, err_i, err_x)
        details[f"L={L}"] = {"ising_E0": e_ising, "ising_error": err_i, "xx_error": err_x}
    return CheckResult(
        "tn-ising-ground-energy",
        "Lanczos ground energy of H = −Σσˣσˣ − Σσᶻ (periodic, L = "
        f"{sizes[0]}…{sizes[-1]}) vs −2/sin(π/2L); XX chain vs its free-fermion spectrum",
        worst,
        "−2/sin(π/2L) (exact); Σ_{occupied} −2cos k",
        "max |E₀ − E_exact| ≤ 1e-10",
        worst <= 1e-10,
        details,
    )


def check_entropy_identities(quick: bool, device: torch.device) -> CheckResult:
    """S(A) = S(Ā); subadditivity and strong subadditivity on random states."""
    rng = np.random.default_rng(20240601)
    n_states = 10 if quick else 60
    sym_defect = 0.0
    svd_vs_rho = 0.0
    min_sa = math.inf
    min_ssa = math.inf
    for trial in range(n_states):
        # Five parties; the fifth purifies the first four, so their marginals are mixed.
        # Every third state is a product ψ_{01} ⊗ ψ_{234}, for which some subadditivity and
        # strong-subadditivity instances are saturated (slack exactly 0).
        dims = [2, 2, 2, 2, 2] if trial % 3 != 1 else [2, 3, 2, 2, 1]
        if trial % 3 == 2:
            state = np.kron(haar_random_state(4, rng), haar_random_state(8, rng))
        else:
            state = haar_random_state(math.prod(dims), rng)
        n = len(dims)
        parties = list(range(n))
        for r in range(1, n):
            for keep in itertools.combinations(parties, r):
                rest = [p for p in parties if p not in keep]
                s_a = entanglement_entropy(state, dims, keep)
                sym_defect = max(sym_defect, abs(s_a - entanglement_entropy(state, dims, rest)))
        for sub_rho in ((0, 2), (1, 3, 4)):
            rho = reduced_density_matrix(state, dims, sub_rho)
            svd_vs_rho = max(
                svd_vs_rho,
                abs(density_matrix_entropy(rho) - entanglement_entropy(state, dims, sub_rho)),
            )

        def entropy(
            sub: tuple[int, ...],
            st: NDArray[np.complexfloating[Any, Any]] = state,
            dm: list[int] = dims,
        ) -> float:
            return entanglement_entropy(st, dm, sub) if sub else 0.0

        for a, b in itertools.permutations(range(4), 2):
            min_sa = min(min_sa, entropy((a,)) + entropy((b,)) - entropy(tuple(sorted((a, b)))))
        for a, b, c in itertools.permutations(range(4), 3):
            ab, bc = tuple(sorted((a, b))), tuple(sorted((b, c)))
            abc = tuple(sorted((a, b, c)))
            min_ssa = min(min_ssa, entropy(ab) + entropy(bc) - entropy((b,)) - entropy(abc))
    worst_eq = max(sym_defect, svd_vs_rho)
    margin = 1e-10
    passed = worst_eq <= 1e-10 and min_sa >= -margin and min_ssa >= -margin
    return CheckResult(
        "tn-entropy-identities",
        f"{n_states} random 5-party pure states (a third of them products): S(A) = S(Ā) for "
        "every bipartition, "
        "S(A)+S(B) ≥ S(AB), S(AB)+S(BC) ≥ S(B)+S(ABC), SVD vs ρ_A eigenvalue entropies",
        worst_eq,
        "0 (identities); inequalities hold",
        "|S(A) − S(Ā)| and |S_SVD − S_ρ| ≤ 1e-10; min slack ≥ −1e-10",
        passed,
        {
            "max_symmetry_defect": sym_defect,
            "max_svd_vs_rho": svd_vs_rho,
            "min_subadditivity_slack": min_sa,
            "min_strong_subadditivity_slack": min_ssa,
        },
    )


def check_page_entropy(quick: bool, device: torch.device) -> CheckResult:
    """Mean entanglement of Haar-random states vs Page's formula, in standard errors."""
    rng = np.random.default_rng(7)
    cases = (
        [(2, 2), (2, 8), (4, 4), (8, 16)] if quick else [(2, 2), (2, 8), (4, 4), (8, 16), (16, 32)]
    )
    n_samples = 400 if quick else 4000
    details: dict[str, Any] = {}
    worst_z = 0.0
    for m, n in cases:
        s = np.array(
            [
                entanglement_entropy(haar_random_state(m * n, rng), [m, n], [0])
                for _ in range(n_samples)
            ]
        )
        ref = page_entropy(m, n)
        se = float(s.std(ddof=1) / math.sqrt(n_samples))
        z = abs(float(s.mean()) - ref) / se
        worst_z = max(worst_z, z)
        details[f"{m}x{n}"] = {"mean": float(s.mean()), "page": ref, "stderr": se, "z": z}
    return CheckResult(
        "tn-page-entropy",
        f"mean von Neumann entropy of {n_samples} Haar-random m×n states vs "
        "S_Page = Σ_{k=n+1}^{mn} 1/k − (m−1)/2n",
        worst_z,
        "Page (1993)",
        "|mean − S_Page| ≤ 4 standard errors for every (m, n)",
        worst_z <= 4.0,
        details,
    )


def check_peschel_vs_ed(quick: bool, device: torch.device) -> CheckResult:
    """Correlation-matrix (Peschel) block entropies equal exact-diagonalisation ones."""
    L = 10 if quick else 12
    details: dict[str, Any] = {}
    worst = 0.0
    for boundary in ("periodic", "open"):
        for model in ("ising", "xx"):
            if model == "ising":
                h = exact.ising_hamiltonian(L, g=1.0, boundary=boundary)
                ff = free_fermions.majorana_entropy_profile(
                    free_fermions.ising_majorana_correlation(L, boundary=boundary)
                )
            else:
                h = exact.xx_hamiltonian(L, boundary=boundary)
                ff = free_fermions.hopping_entropy_profile(
                    free_fermions.xx_correlation_matrix(L, boundary=boundary)
                )
            _, psi = exact.ground_state(h)
            st = exact.site_major_state(psi, L)
            ed = np.array([entanglement_entropy(st, [2] * L, range(ell)) for ell in range(L + 1)])
            err = float(np.abs(ed - ff).max())
            worst = max(worst, err)
            details[f"{model}, {boundary}"] = {
                "max_abs_difference": err,
                "S(L/2)": float(ed[L // 2]),
            }
    return CheckResult(
        "tn-peschel-vs-ed",
        f"block entropies S(ℓ), ℓ = 0…{L}, of the critical Ising and XX ground states (L = {L}, "
        "periodic and open): Peschel correlation matrix vs SVD of the Lanczos state",
        worst,
        "exact diagonalisation",
        "max |S_Peschel − S_ED| ≤ 1e-8",
        worst <= 1e-8,
        details,
    )


CENTRAL_CHARGE_TOLERANCES: dict[bool, tuple[float, float]] = {
    True: (3e-4, 3e-3),
    False: (2e-5, 1.5e-4),
}
"""``(Ising, XX)`` absolute tolerances on c, keyed by ``quick``. Measured errors: L = 128
(quick) 3.9e-5 and 3.2e-4 (tolerances 7.7 × and 9.4 ×); L = 512 (full) 2.3e-6 and 1.9e-5
(8.6 × and 8.1 ×). The errors are finite-size corrections of the fit, not noise."""


def check_central_charge(quick: bool, device: torch.device) -> CheckResult:
    """Calabrese–Cardy fit of Peschel entropies: c = 1/2 (critical Ising), c = 1 (XX)."""
    L = 128 if quick else 512
    tol_i, tol_x = CENTRAL_CHARGE_TOLERANCES[quick]
    ells = np.arange(1, L // 2 + 1)
    lo = L // 16
    s_ising = free_fermions.majorana_entropy_profile(
        free_fermions.ising_majorana_correlation(L), ells
    )
    s_xx = free_fermions.hopping_entropy_profile(free_fermions.xx_correlation_matrix(L), ells)
    fit_i = fit_central_charge(ells, s_ising, L, ell_min=lo)
    fit_x = fit_central_charge(ells, s_xx, L, ell_min=lo)
    err_i = abs(fit_i.central_charge - 0.5)
    err_x = abs(fit_x.central_charge - 1.0)
    return CheckResult(
        "tn-central-charge",
        f"Calabrese–Cardy fit S = (c/3) ln[(L/π) sin(πℓ/L)] + c′ (periodic L = {L}, "
        f"ℓ = {lo}…{L // 2}) of Peschel entropies",
        max(err_i / tol_i, err_x / tol_x),
        "c = 1/2 (critical Ising), c = 1 (XX)",
        f"|c − 1/2| ≤ {tol_i:g} and |c − 1| ≤ {tol_x:g} " "(measured: worst error / tolerance ≤ 1)",
        err_i <= tol_i and err_x <= tol_x,
        {
            "ising_c": fit_i.central_charge,
            "ising_c_stderr": fit_i.stderr,
            "ising_error": err_i,
            "ising_tolerance": tol_i,
            "xx_c": fit_x.central_charge,
            "xx_c_stderr": fit_x.stderr,
            "xx_error": err_x,
            "xx_tolerance": tol_x,
        },
    )


CHECKS: dict[str, Callable[[bool, torch.device], CheckResult]] = {
    "tn-ising-ground-energy": check_ising_ground_energy,
    "tn-entropy-identities": check_entropy_identities,
    "tn-page-entropy": check_page_entropy,
    "tn-peschel-vs-ed": check_peschel_vs_ed,
    "tn-central-charge": check_central_charge,
}
"""Named checks for the ``tensor-networks`` group of ``hhml-validate``."""
