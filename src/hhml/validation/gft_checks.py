"""Validation checks for :mod:`hhml.core.gft` (group ``gft`` of ``hhml-validate``).

Each check compares the colored-tensor or condensate code with a closed-form result:
the melonic critical point, Fuss–Catalan coefficients, the exponent 1/2, the Gurau degree
formula, conservation of ``E_j`` and ``Q_j``, the bounce criterion and the Friedmann limit.
All run on the CPU in well under a second each (the ``device`` argument is unused: the
computations are scalar/ODE work in float64 numpy).

Public names: :data:`CHECKS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from hhml.core.gft.colored_tensors import (
    critical_coupling,
    critical_two_point,
    degree_census,
    fit_susceptibility_exponent,
    fuss_catalan,
    melonic_series_coefficients,
    melonic_two_point,
    melonic_two_point_series,
)
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
)
from hhml.validation.checks import CheckResult

__all__ = ["CHECKS"]

_DIMENSIONS = (2, 3, 4, 5)


def check_melonic_critical_point(quick: bool, device: torch.device) -> CheckResult:
    """Melonic SD equation: critical point, and series = root finding below it."""
    details: dict[str, Any] = {}
    worst = 0.0
    for D in _DIMENSIONS:
        zc, gc = critical_coupling(D), critical_two_point(D)
        # both critical conditions: F(G_c) = 0 and F'(G_c) = 0 for F = 1 + z G^{D+1} − G
        f0 = abs(1.0 + zc * gc ** (D + 1) - gc)
        f1 = abs((D + 1) * zc * gc**D - 1.0)
        branch = 0.0
        for frac in (-0.8, 0.2, 0.5, 0.8):
            z = frac * zc
            branch = max(branch, abs(melonic_two_point(z, D) - melonic_two_point_series(z, D)))
        # G → G_c as z → z_c from the root finder
        approach = abs(melonic_two_point(zc * (1 - 1e-14), D) - gc)
        worst = max(worst, f0, f1, branch)
        details[f"D={D}"] = {
            "z_c": zc,
            "G_c": gc,
            "|F(G_c)|": f0,
            "|F'(G_c)|": f1,
            "max |G_root − G_series|": branch,
            "|G(z_c(1−1e-14)) − G_c|": approach,
        }
    return CheckResult(
        "gft-melonic-critical-point",
        "melonic SD G = 1 + z G^{D+1} (D = 2…5): (z_c, G_c) = (D^D/(D+1)^{D+1}, (D+1)/D) "
        "solve F = F' = 0; Brent root on the G(0)=1 branch vs the Fuss–Catalan series",
        worst,
        "0 (closed form)",
        "max residual / |G_root − G_series| ≤ 1e-12",
        worst <= 1e-12,
        details,
    )


def check_fuss_catalan(quick: bool, device: torch.device) -> CheckResult:
    """Series coefficients of the SD solution are the Fuss–Catalan numbers (exact integers)."""
    n_max = 20 if quick else 40
    details: dict[str, Any] = {}
    mismatches = 0
    for D in _DIMENSIONS:
        series = melonic_series_coefficients(n_max, D)
        closed = [fuss_catalan(n, D) for n in range(n_max + 1)]
        bad = sum(a != b for a, b in zip(series, closed, strict=True))
        mismatches += bad
        details[f"D={D}"] = {"mismatches": bad, "first": series[:6]}
    return CheckResult(
        "gft-fuss-catalan",
        f"Taylor coefficients of G(z) to order {n_max} (exact power-series iteration) vs "
        "C_n = binom((D+1)n, n)/(Dn+1), D = 2…5",
        float(mismatches),
        "0 mismatches",
        "exact integer equality",
        mismatches == 0,
        details,
    )


def check_susceptibility_exponent(quick: bool, device: torch.device) -> CheckResult:
    """``G_c − G ∝ (z_c − z)^{1/2}``: fitted exponent and amplitude."""
    details: dict[str, Any] = {}
    worst = 0.0
    for D in _DIMENSIONS:
        fit = fit_susceptibility_exponent(D)
        err = abs(fit.exponent - 0.5)
        amp_err = abs(fit.amplitude / fit.amplitude_exact - 1.0)
        worst = max(worst, err)
        details[f"D={D}"] = {
            "exponent": fit.exponent,
            "|γ − 1/2|": err,
            "amplitude relative error": amp_err,
        }
    return CheckResult(
        "gft-susceptibility-exponent",
        "log–log fit of G_c − G vs z_c − z ∈ z_c·[1e-14, 1e-10] (cancellation-free gap), D = 2…5",
        worst,
        "1/2",
        "|γ − 1/2| ≤ 1e-4",
        worst <= 1e-4,
        details,
    )


def check_gurau_degree(quick: bool, device: torch.device) -> CheckResult:
    """All D = 3 colored graphs of order p: ω integer ≥ 0, ω = 0 ⟺ melonic, melonic count."""
    orders = (1, 2, 3) if quick else (1, 2, 3, 4)
    details: dict[str, Any] = {}
    failures = 0
    for p in orders:
        census = degree_census(p, 3)
        count_ok = census.n_melonic_by_reduction == census.expected_melonic
        failures += census.n_formula_violations + census.n_melonic_mismatch + int(not count_ok)
        details[f"p={p}"] = {
            "graphs (σ_0 = id)": census.n_graphs,
            "connected": census.n_connected,
            "omega distribution": {str(k): v for k, v in census.omega_counts.items()},
            "formula violations": census.n_formula_violations,
            "ω=0 vs melonic-by-reduction mismatches": census.n_melonic_mismatch,
            "melonic": census.n_melonic_by_reduction,
            "(p−1)!·C_p^{(4)}": census.expected_melonic,
        }
    return CheckResult(
        "gft-gurau-degree",
        f"D = 3 colored graphs, p = {', '.join(map(str, orders))}: F = 3p + 3 − ω with ω = Σ "
        "jacket genera a non-negative integer; ω = 0 ⟺ D-dipole reducible; melonic count = "
        "(p−1)!·Fuss–Catalan",
        float(failures),
        "0 failures",
        "exact",
        failures == 0,
        details,
    )


def _modes(newton_g: float) -> list[SpinMode]:
    m = math.sqrt(classical_mass_squared(newton_g))
    return [
        SpinMode(m, 1.0, 0.3, 0.5, 0.0, 0.5**1.5),
        mode_from_initial_data(m, -2.0, 0.0, 0.2, 1.0),
        mode_from_initial_data(m, 3.0, 0.7, -0.3, 1.5**1.5),
        mode_from_initial_data(m, 0.5, -1.2, 0.1, 2.0**1.5),
    ]


def check_condensate_conservation(quick: bool, device: torch.device) -> CheckResult:
    """E_j and Q_j conserved (rtol 1e-10) and ρ_j(φ) equal to the closed form."""
    modes = _modes(1.0)
    n = 401 if quick else 2001
    details: dict[str, Any] = {}
    worst_cons = worst_cf = 0.0
    m = np.array([md.mass for md in modes])[:, None]
    e0 = np.array([md.energy for md in modes])[:, None]
    q0 = np.array([md.charge for md in modes])[:, None]
    for integrate in (integrate_radial, integrate_complex):
        sol = integrate(modes, (-3.0, 3.0), n)
        scale = m**2 * sol.rho**2  # the size of the terms that cancel in E_j
        de = float(np.max(np.abs(sol.energy - e0) / np.maximum(scale, np.abs(e0))))
        dq = float(np.max(np.abs(sol.charge - q0) / (m * sol.rho**2)))
        closed = np.array([rho_squared_from_initial_data(sol.phi, md) for md in modes])
        cf = float(np.max(np.abs(sol.rho**2 - closed) / closed))
        worst_cons, worst_cf = max(worst_cons, de, dq), max(worst_cf, cf)
        details[integrate.__name__] = {
            "max relative drift E_j": de,
            "max relative drift Q_j": dq,
            "max relative |ρ² − ρ²_closed|": cf,
        }
    # the cosh form (derived) equals the exponential form built from initial data
    cosh_err = 0.0
    phi = np.linspace(-3.0, 3.0, 101)
    for md in modes:
        ref = rho_squared_from_initial_data(phi, md)
        cosh = closed_form_rho_squared(phi, md.mass, md.energy, md.charge, bounce_phi(md))
        cosh_err = max(cosh_err, float(np.max(np.abs(cosh - ref) / ref)))
    details["cosh form vs initial-data form"] = cosh_err
    worst = max(worst_cons, worst_cf, cosh_err)
    return CheckResult(
        "gft-condensate-conservation",
        "4 spin modes, m² = 3πG, φ ∈ [−3, 3], DOP853 rtol 1e-10: E_j = ρ'² + Q²/ρ² − m²ρ², "
        "Q_j = Im(σ̄σ') conserved; ρ_j² = −E/2m² + √(E²+4m²Q²)/2m² cosh 2m(φ−φ_0)",
        worst,
        "0 (conserved / closed form)",
        "relative error ≤ 1e-8",
        worst <= 1e-8,
        details,
    )


def check_bounce(quick: bool, device: torch.device) -> CheckResult:
    """A non-zero minimum of ρ² exactly when Q ≠ 0 or E < 0; minimum equals the closed form."""
    m = math.sqrt(classical_mass_squared(1.0))
    n = 6001
    cases = [(1.0, 0.5), (-1.0, 0.0), (-1.0, 0.3), (0.0, 0.4), (1.0, 0.0), (0.0, 0.0)]
    details: dict[str, Any] = {}
    misclassified = 0
    worst_min = 0.0
    for energy, charge in cases:
        # data at φ = 0 with ρ = 1 and ρ' < 0, so the trajectory moves towards small volume
        rho_p2 = energy - charge**2 + m**2
        mode = SpinMode(m, 1.0, -math.sqrt(rho_p2), charge)
        sol = integrate_complex([mode], (-1.0, 3.0), n)
        rho2 = sol.rho[0] ** 2
        i = int(np.argmin(rho2))
        scale = abs(energy) / m**2 + abs(charge) / m
        interior = 0 < i < n - 1
        numeric_bounce = bool(interior and rho2[i] > 1e-3 * scale)
        expected = has_bounce(energy, charge)
        misclassified += int(numeric_bounce != expected)
        exact_min = minimum_rho_squared(m, energy, charge)
        entry: dict[str, Any] = {
            "expected bounce": expected,
            "numerical bounce": numeric_bounce,
            "min ρ² (grid)": float(rho2[i]),
            "min ρ² (closed form)": exact_min,
        }
        if expected:
            rel = abs(rho2[i] - exact_min) / exact_min
            # grid min: quadratic error ≈ ½ u'' (Δφ/2)² relative to u_min
            worst_min = max(worst_min, rel)
            entry["relative error of minimum"] = rel
        details[f"E={energy:+g}, Q={charge:+g}"] = entry
    ok = misclassified == 0 and worst_min <= 1e-4
    return CheckResult(
        "gft-bounce",
        "ρ² along σ'' = m²σ trajectories (grid Δφ = 6.7e-4) for six (E, Q): bounce ⟺ Q ≠ 0 or "
        "E < 0; min ρ² = (√(E²+4m²Q²) − E)/2m²",
        float(misclassified),
        "0 misclassified",
        "all six classified; bounce minimum within 1e-4 (grid resolution)",
        ok,
        details | {"max relative error of minimum": worst_min},
    )


def check_friedmann_limit(quick: bool, device: torch.device) -> CheckResult:
    """(V'/3V)² → 4πG/3 at large volume for m_j² = 3πG (several G, several spins)."""
    details: dict[str, Any] = {}
    worst = 0.0
    for newton_g in (1.0, 0.25):
        modes = _modes(newton_g)
        m = math.sqrt(classical_mass_squared(newton_g))
        span = 12.0 / m  # e^{−4mφ} corrections ~ e^{−48}: far below integrator tolerance
        sol = integrate_radial(modes, (-span, span), 401)
        ratio = friedmann_ratio(sol, newton_g)
        err = float(max(abs(ratio[0] - 1.0), abs(ratio[-1] - 1.0)))
        worst = max(worst, err)
        details[f"G={newton_g}"] = {
            "ratio at φ_min": float(ratio[0]),
            "ratio at φ_max": float(ratio[-1]),
            "min ratio (at the bounce)": float(ratio.min()),
        }
    return CheckResult(
        "gft-friedmann-limit",
        "(V'/3V)²/(4πG/3) at |φ| = 12/m (V = Σ V_j ρ_j², 4 spins, m_j² = 3πG, G = 1, 1/4)",
        worst,
        "1",
        "|ratio − 1| ≤ 1e-7",
        worst <= 1e-7,
        details,
    )


CHECKS: dict[str, Callable[[bool, torch.device], CheckResult]] = {
    "gft-melonic-critical-point": check_melonic_critical_point,
    "gft-fuss-catalan": check_fuss_catalan,
    "gft-susceptibility-exponent": check_susceptibility_exponent,
    "gft-gurau-degree": check_gurau_degree,
    "gft-condensate-conservation": check_condensate_conservation,
    "gft-bounce": check_bounce,
    "gft-friedmann-limit": check_friedmann_limit,
}
