r"""Closed-form checks of the field dynamics (group ``cgl`` of ``hhml-validate``).

The simulator's equation (``FieldParams``, docs/physics.md §2) with no sources, pinning,
coupling, noise or filter,

    ∂ψ/∂t = Gψ + (D + iα)Δψ − (g + iβ)|ψ|²ψ,     G = 1 − γ,

is the complex Ginzburg–Landau equation; the canonical form
∂ψ/∂t = ψ + (1 + ib)∇²ψ − (1 + ic)|ψ|²ψ (Aranson & Kramer, Rev. Mod. Phys. 74, 99
(2002)) is γ = 0, D = g = 1, α = b, β = c (:func:`canonical_cgl_params`). Three checks
compare the simulator with closed forms in which the Laplacian enters only through its
discrete eigenvalue −q², so the spatial discretisation is exact and the remaining error
is the RK4 truncation error:

- ``cgl-plane-waves``: ψ = A e^{i(k·x − ωt)}, A² = (G − Dq²)/g, ω = αq² + βA²
  (canonical: A² = 1 − q², ω = c + (b − c)q²) on the torus and on the Möbius band, whose
  seam ψ(u + L, v) = e^{iθ}ψ(u, −v) admits the v-independent waves with
  k = (2πn + θ)/L; including Benjamin–Feir-unstable waves (1 + bc < 0) run for a time
  in which the instability, seeded by rounding, stays at rounding level.
- ``cgl-linear-growth``: small perturbations of the uniform state evolve with the
  eigenvalues of the 2 × 2 stability matrix (:func:`stability_matrix`), for a stable
  and a Benjamin–Feir-unstable parameter set, on the torus and on the Möbius band
  (there with a mode odd in v and antiperiodic in u).
- ``gp-conservation``: the Gross–Pitaevskii limit iψ_t = −αΔψ + β|ψ|²ψ on the embedded
  Möbius band conserves the norm and the energy up to the RK4 drift, which vanishes
  as dt⁵ (a non-conservative operator would leave a drift that does not).

Each tolerance is at most 10 × the error measured on the 2-core CPU in complex128
(numbers in docs/validation.md). Quick and full mode run the same cases, except that
``gp-conservation`` uses a finer grid in full mode.

Public names: :data:`CHECKS`, :class:`PlaneWaveCase`, :class:`GrowthCase`,
:func:`canonical_cgl_params`, :func:`discrete_q2`, :func:`plane_wave`,
:func:`stability_matrix`, :func:`gp_invariants`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from hhml.config.schema import FieldParams
from hhml.core.mobius import MobiusStrip
from hhml.core.resonance import Simulator
from hhml.errors import ValidationError
from hhml.validation.checks import CheckResult

__all__ = [
    "CHECKS",
    "GrowthCase",
    "PlaneWaveCase",
    "canonical_cgl_params",
    "discrete_q2",
    "gp_invariants",
    "plane_wave",
    "stability_matrix",
]

C128 = torch.complex128


def canonical_cgl_params(b: float, c: float) -> FieldParams:
    """``FieldParams`` of the canonical CGL ∂ψ/∂t = ψ + (1 + ib)∇²ψ − (1 + ic)|ψ|²ψ.

    Parameters
    ----------
    b, c
        Linear and nonlinear dispersion of the canonical form (dimensionless).

    Returns
    -------
    FieldParams
        γ = 0 (unit growth), D = 1, α = b, g = 1, β = c; every other term off.
    """
    return FieldParams(
        damping=0.0, nonlinearity=1.0, diffusion=1.0, dispersion=b, nonlinear_frequency=c
    )


def discrete_q2(lat: MobiusStrip, ku: float, kv: float = 0.0) -> float:
    """Minus the eigenvalue of the flat five-point Laplacian on ``e^{i(ku·u + kv·v)}``.

    Parameters
    ----------
    lat
        A flat-metric lattice (its cell sizes Δu, Δv are used).
    ku, kv
        Wavenumbers along u and v (1/length).

    Returns
    -------
    float
        q² = (4/Δu²) sin²(ku Δu/2) + (4/Δv²) sin²(kv Δv/2) (1/length²).
    """
    return (4.0 / lat.du**2) * math.sin(0.5 * ku * lat.du) ** 2 + (4.0 / lat.dv**2) * math.sin(
        0.5 * kv * lat.dv
    ) ** 2


def plane_wave(params: FieldParams, q2: float) -> tuple[float, float]:
    """Amplitude and frequency of the plane wave ψ = A e^{i(k·x − ωt)} with |k|² ↦ q².

    Parameters
    ----------
    params
        The CGL coefficients (G = 1 − γ, D, α, g > 0, β).
    q2
        Minus the Laplacian eigenvalue of the wave (1/length²).

    Returns
    -------
    tuple of float
        ``(A, ω)`` with A² = (G − Dq²)/g and ω = αq² + βA² (1/time).

    Raises
    ------
    ValidationError
        No such wave: g = 0 or G − Dq² ≤ 0.
    """
    growth = 1.0 - params.damping
    if params.nonlinearity <= 0.0 or growth - params.diffusion * q2 <= 0.0:
        raise ValidationError(
            f"no plane wave for q² = {q2:g}: need nonlinearity > 0 and 1 − damping − "
            f"diffusion·q² > 0 (got g = {params.nonlinearity:g}, 1 − γ = {growth:g}, "
            f"D = {params.diffusion:g})"
        )
    amp2 = (growth - params.diffusion * q2) / params.nonlinearity
    return math.sqrt(amp2), params.dispersion * q2 + params.nonlinear_frequency * amp2


def stability_matrix(params: FieldParams, q2: float) -> NDArray[np.float64]:
    """The 2 × 2 matrix of small perturbations of the uniform state.

    With ψ = (A + x + iy) e^{−iΩt}, A² = G/g, Ω = βA² and (x, y) ∝ a Laplacian
    eigenmode of eigenvalue −q², linearising the CGL gives d(x, y)/dt = M (x, y) with

        M = [[−Dq² − 2G, αq²], [−αq² − 2Ω, −Dq²]]

    (canonical form: trace −2(1 + q²), determinant (1 + b²)q⁴ + 2(1 + bc)q²; the
    uniform state is Benjamin–Feir unstable at small q exactly when 1 + bc < 0).

    Parameters
    ----------
    params
        The CGL coefficients; needs G = 1 − γ > 0 and g > 0.
    q2
        Minus the Laplacian eigenvalue of the perturbation (1/length²).

    Returns
    -------
    ndarray
        ``[2, 2]`` float64 (1/time).

    Raises
    ------
    ValidationError
        No uniform state: G ≤ 0 or g ≤ 0.
    """
    growth = 1.0 - params.damping
    if growth <= 0.0 or params.nonlinearity <= 0.0:
        raise ValidationError(
            f"no uniform state: need 1 − damping > 0 and nonlinearity > 0 (got "
            f"1 − γ = {growth:g}, g = {params.nonlinearity:g})"
        )
    omega = params.nonlinear_frequency * growth / params.nonlinearity
    d, a = params.diffusion * q2, params.dispersion * q2
    return np.array([[-d - 2.0 * growth, a], [-a - 2.0 * omega, -d]], dtype=np.float64)


def gp_invariants(
    lat: MobiusStrip, psi: torch.Tensor, alpha: float, beta: float
) -> tuple[float, float]:
    """Norm and energy of the Gross–Pitaevskii flow iψ_t = −αΔψ + β|ψ|²ψ.

    Parameters
    ----------
    lat
        The lattice (its cell areas weight the sums).
    psi
        Field ``[nu, nv]`` complex.
    alpha, beta
        Dispersion α (length²/time) and nonlinear frequency β (1/time).

    Returns
    -------
    tuple of float
        N = Σ w|ψ|² and E = −α Σ w ψ̄Δψ + (β/2) Σ w|ψ|⁴ (w the cell areas).
    """
    w = lat.area_weights().to(torch.float64)
    dens = psi.real.square() + psi.imag.square()
    norm = float((w * dens).sum())
    kinetic = float(-(w * (psi.conj() * lat.laplacian(psi))).sum().real)
    return norm, alpha * kinetic + 0.5 * beta * float((w * dens.square()).sum())


# ----------------------------------------------------------------- plane waves
@dataclass(frozen=True)
class PlaneWaveCase:
    """One plane-wave run of ``cgl-plane-waves``.

    Attributes
    ----------
    topology : str
        ``"torus"`` or ``"mobius"`` (Neumann edges; the wave is v-independent).
    nu, nv : int
        Grid.
    half_width : float
        w (length); the torus wave has kv = πm/w.
    n, m : int
        k_u = (2πn + θ)/L, k_v = πm/w (m = 0 on the Möbius band).
    twist : float
        θ (radians).
    params : FieldParams
        The CGL coefficients.
    tolerance : float
        Bound on max |ψ − ψ_exact| / A at ``t_end`` (10 × the measured error).
    """

    topology: str
    nu: int
    nv: int
    half_width: float
    n: int
    m: int
    twist: float
    params: FieldParams
    tolerance: float


#: Chart length of the plane-wave and growth-rate lattices (length): 8π, so that the
#: lowest wavenumbers lie inside the band q² < 1 of the canonical CGL.
CGL_LENGTH = 8.0 * math.pi
#: Time step and duration of the plane-wave runs (time units).
PLANE_WAVE_DT, PLANE_WAVE_T_END = 0.01, 5.0
#: Bound on the off-wave (sideband) content of the Benjamin–Feir-unstable runs at t_end.
SIDEBAND_TOLERANCE = 2e-14

_GENERAL = FieldParams(
    damping=0.3, nonlinearity=2.0, diffusion=0.5, dispersion=-0.8, nonlinear_frequency=0.7
)

#: The plane-wave cases; tolerances are 10 × the errors measured on the 2-core CPU.
PLANE_WAVE_CASES: dict[str, PlaneWaveCase] = {
    "torus b=c=0.5 n=1 m=1 θ=0.7": PlaneWaveCase(
        "torus", 16, 8, 8.0, 1, 1, 0.7, canonical_cgl_params(0.5, 0.5), 3e-10
    ),
    "möbius b=c=0.5 n=1 θ=0.7": PlaneWaveCase(
        "mobius", 16, 4, 1.0, 1, 0, 0.7, canonical_cgl_params(0.5, 0.5), 5e-10
    ),
    "möbius b=c=0.5 n=−1 θ=π": PlaneWaveCase(
        "mobius", 16, 4, 1.0, -1, 0, math.pi, canonical_cgl_params(0.5, 0.5), 6e-10
    ),
    "möbius general n=2 θ=−1.1": PlaneWaveCase("mobius", 16, 4, 1.0, 2, 0, -1.1, _GENERAL, 3.5e-12),
    "torus BF b=1 c=−2 n=1 m=1 θ=0.7": PlaneWaveCase(
        "torus", 16, 8, 8.0, 1, 1, 0.7, canonical_cgl_params(1.0, -2.0), 4e-8
    ),
    "möbius BF b=1 c=−2 n=1 θ=0.7": PlaneWaveCase(
        "mobius", 16, 4, 1.0, 1, 0, 0.7, canonical_cgl_params(1.0, -2.0), 1.5e-7
    ),
}


def _plane_wave_run(case: PlaneWaveCase, device: torch.device) -> dict[str, float]:
    lat = MobiusStrip(
        case.nu,
        case.nv,
        length=CGL_LENGTH,
        half_width=case.half_width,
        topology=case.topology,
        edge="neumann",
        twist=case.twist,
        dtype=C128,
        device=device,
    )
    ku = (2.0 * math.pi * case.n + case.twist) / lat.length
    kv = math.pi * case.m / case.half_width
    q2 = discrete_q2(lat, ku, kv)
    amp, omega = plane_wave(case.params, q2)
    uu, vv = lat.coordinates()
    mode = torch.polar(torch.ones_like(uu), ku * uu + kv * vv).to(C128)
    sim = Simulator(lat, case.params, dt=PLANE_WAVE_DT, seed=0)
    sim.psi = amp * mode
    sim.run(PLANE_WAVE_T_END)
    exact = amp * complex(math.cos(omega * sim.t), -math.sin(omega * sim.t)) * mode
    error = float((sim.psi - exact).abs().max()) / amp
    # what the instability feeds on: everything of ψ outside the single mode of the wave
    overlap = (sim.psi * mode.conj()).mean()
    sideband = float((sim.psi - overlap * mode).abs().max()) / amp
    p = case.params
    return {
        "q2": q2,
        "amplitude": amp,
        "omega": omega,
        "one_plus_bc": 1.0
        + (p.dispersion / p.diffusion) * (p.nonlinear_frequency / p.nonlinearity),
        "max_relative_error": error,
        "tolerance": case.tolerance,
        "sideband": sideband,
    }


def check_cgl_plane_waves(quick: bool, device: torch.device) -> CheckResult:
    """CGL plane waves on the torus and through the Möbius seam vs the closed form."""
    details: dict[str, Any] = {}
    failures: list[str] = []
    worst = 0.0
    for name, case in PLANE_WAVE_CASES.items():
        row = _plane_wave_run(case, device)
        details[name] = row
        worst = max(worst, row["max_relative_error"])
        if not row["max_relative_error"] <= case.tolerance:
            failures.append(name)
        if row["one_plus_bc"] < 0.0 and not row["sideband"] <= SIDEBAND_TOLERANCE:
            failures.append(f"{name} (sideband)")
    details["failures"] = failures
    return CheckResult(
        "cgl-plane-waves",
        "CGL plane waves ψ = A e^{i(k·x − ωt)}, A² = (1 − γ − Dq²)/g, ω = αq² + βA² "
        "(canonical: A² = 1 − q², ω = c + (b − c)q²) with q² the discrete Laplacian "
        f"eigenvalue, RK4 dt = {PLANE_WAVE_DT} to t = {PLANE_WAVE_T_END}: torus (k_u = "
        "(2πn + θ)/L, k_v = πm/w) and flat Möbius band with Neumann edges (v-independent "
        "waves, k = (2πn + θ)/L through the seam, θ = 0.7, π, −1.1), including "
        "Benjamin–Feir-unstable waves (b = 1, c = −2, 1 + bc = −1)",
        worst,
        "0 (closed form; the spatial operator is exact on the wave, the error is RK4's)",
        "per case max |ψ − ψ_exact| / A ≤ 10 × its measured error (3.5e-12 … 1.5e-7, "
        f"docs/validation.md); BF cases: off-wave content ≤ {SIDEBAND_TOLERANCE:g}",
        not failures,
        details,
    )


# ---------------------------------------------------------------- growth rates
@dataclass(frozen=True)
class GrowthCase:
    """One perturbation run of ``cgl-linear-growth``.

    Attributes
    ----------
    topology : str
        ``"torus"`` (mode cos(Qu + Pv), Q = 2πn/L, P = πk/w) or ``"mobius"`` (Neumann
        edges; mode cos(Qu)·cos(kπ(j + ½)/nv) with k odd and Q = (2n + 1)π/L, which is
        invariant under the seam map (u + L, v) → (u, −v)).
    nu, nv : int
        Grid.
    half_width : float
        w (length).
    n, k : int
        Mode numbers along u and across v.
    params : FieldParams
        The CGL coefficients (twist 0: the uniform state needs θ = 0).
    tolerance : float
        Bound on max |σ_measured − σ| over both eigenvalues (1/time).
    """

    topology: str
    nu: int
    nv: int
    half_width: float
    n: int
    k: int
    params: FieldParams
    tolerance: float


#: Perturbation size, time step and duration of the growth-rate runs.
GROWTH_EPS, GROWTH_DT, GROWTH_T_END = 1e-5, 0.005, 2.0

_STABLE = FieldParams(
    damping=0.2, nonlinearity=1.5, diffusion=1.0, dispersion=0.5, nonlinear_frequency=0.5
)

#: The growth-rate cases; tolerances are 10 × the errors measured on the 2-core CPU.
GROWTH_CASES: dict[str, GrowthCase] = {
    "torus stable n=1 k=1": GrowthCase("torus", 16, 8, 4.0, 1, 1, _STABLE, 4e-9),
    "torus BF b=1 c=−2 n=1 k=0": GrowthCase(
        "torus", 16, 8, 4.0, 1, 0, canonical_cgl_params(1.0, -2.0), 1e-6
    ),
    "möbius stable n=0 k=1": GrowthCase("mobius", 16, 4, 1.0, 0, 1, _STABLE, 3e-8),
    "möbius BF b=1 c=−2 n=0 k=1": GrowthCase(
        "mobius", 16, 4, 4.0, 0, 1, canonical_cgl_params(1.0, -2.0), 1.5e-6
    ),
}


def _growth_run(case: GrowthCase, device: torch.device) -> dict[str, Any]:
    lat = MobiusStrip(
        case.nu,
        case.nv,
        length=CGL_LENGTH,
        half_width=case.half_width,
        topology=case.topology,
        edge="neumann",
        dtype=C128,
        device=device,
    )
    uu, vv = lat.coordinates()
    if case.topology == "torus":
        q_u, q_v = 2.0 * math.pi * case.n / lat.length, math.pi * case.k / case.half_width
        profile = torch.cos(q_u * uu + q_v * vv)
        q2 = discrete_q2(lat, q_u, q_v)
    else:
        if case.k % 2 != 1:
            raise ValidationError(f"Möbius growth case needs an odd v-mode k, got {case.k}")
        q_u = math.pi * (2 * case.n + 1) / lat.length
        j = torch.arange(case.nv, dtype=uu.dtype, device=device)
        profile = torch.cos(q_u * uu) * torch.cos(case.k * math.pi * (j + 0.5) / case.nv)
        q2 = (
            discrete_q2(lat, q_u)
            + (4.0 / lat.dv**2) * math.sin(case.k * math.pi / (2 * case.nv)) ** 2
        )
    p = case.params
    amp = math.sqrt((1.0 - p.damping) / p.nonlinearity)
    omega = p.nonlinear_frequency * amp**2
    matrix = stability_matrix(p, q2)
    sigma, vectors = np.linalg.eig(matrix)
    start = (vectors[:, 0] + vectors[:, 1]).real  # real: the pair is real or conjugate
    # symmetric difference of ±ε runs: linear response to O(ε²)
    finals = []
    for sign in (1.0, -1.0):
        sim = Simulator(lat, p, dt=GROWTH_DT, seed=0)
        sim.psi = (amp + sign * GROWTH_EPS * complex(start[0], start[1]) * profile).to(C128)
        sim.run(GROWTH_T_END)
        finals.append(sim.psi * complex(math.cos(omega * sim.t), math.sin(omega * sim.t)))
    t_end = sim.t
    response = (finals[0] - finals[1]) / (2.0 * GROWTH_EPS)
    weight = float((profile * profile).sum())
    xy = (
        np.array([float((response.real * profile).sum()), float((response.imag * profile).sum())])
        / weight
    )
    off_mode = float((response - complex(xy[0], xy[1]) * profile).abs().max())
    coeff = np.linalg.solve(vectors, xy.astype(np.complex128))  # 1 at t = 0 for both
    measured = np.log(coeff) / t_end
    error = float(np.abs(measured - sigma).max())
    order = np.argsort(-sigma.real)
    return {
        "q2": q2,
        # [Re σ, Im σ] pairs, largest growth first (JSON has no complex numbers)
        "sigma": [[float(s.real), float(s.imag)] for s in sigma[order]],
        "sigma_measured": [[float(s.real), float(s.imag)] for s in measured[order]],
        "max_abs_error": error,
        "tolerance": case.tolerance,
        "off_mode_response": off_mode,
        "largest_growth_rate": float(sigma.real.max()),
    }


def check_cgl_linear_growth(quick: bool, device: torch.device) -> CheckResult:
    """Growth rates of small perturbations of the uniform state vs the 2 × 2 matrix."""
    details: dict[str, Any] = {}
    failures: list[str] = []
    worst = 0.0
    kinds = set()
    for name, case in GROWTH_CASES.items():
        row = _growth_run(case, device)
        details[name] = row
        worst = max(worst, row["max_abs_error"])
        kinds.add(row["largest_growth_rate"] > 0.0)
        if not row["max_abs_error"] <= case.tolerance:
            failures.append(name)
    if kinds != {True, False}:
        raise ValidationError("cgl-linear-growth needs a stable and an unstable case")
    details["failures"] = failures
    return CheckResult(
        "cgl-linear-growth",
        "perturbations ε(x₀ + iy₀)·mode of the uniform state A e^{−iβA²t} (ε = "
        f"{GROWTH_EPS:g}, ±ε symmetric difference, RK4 dt = {GROWTH_DT} to t = "
        f"{GROWTH_T_END}): both eigenvalues of the 2 × 2 stability matrix measured from "
        "the mode's (x, y) amplitudes, stable (γ = 0.2, g = 1.5, D = 1, α = β = 0.5) and "
        "Benjamin–Feir-unstable (b = 1, c = −2) on the torus and the flat Möbius band "
        "(odd v-mode, antiperiodic in u)",
        worst,
        "eigenvalues of M = [[−Dq² − 2G, αq²], [−αq² − 2βA², −Dq²]]",
        "per case max |σ_measured − σ| ≤ 10 × its measured error (4e-9 … 1.5e-6 per unit "
        "time, docs/validation.md)",
        not failures,
        details,
    )


# ------------------------------------------------------------ Gross–Pitaevskii
#: GP coefficients (α = ½, β = 1: iψ_t = −½Δψ + |ψ|²ψ), run length and dt fractions.
GP_ALPHA, GP_BETA, GP_T_END = 0.5, 1.0, 2.0
GP_DT_FRACTIONS = (0.5, 0.25, 0.125)
#: Bounds on the relative norm / energy drift at the finest dt, per mode (10 × measured).
GP_DRIFT_TOLERANCE = {True: (7e-8, 2e-6), False: (2e-8, 2e-6)}
#: Observed order of the drift on the finest refinement: 5 ± this (measured |p − 5| ≤ 0.05).
GP_ORDER_TOLERANCE = 0.5


def check_gp_conservation(quick: bool, device: torch.device) -> CheckResult:
    """Gross–Pitaevskii norm and energy on the embedded Möbius band: drift → 0 as dt⁵."""
    nu, nv = (32, 8) if quick else (64, 16)
    params = FieldParams(
        damping=1.0,
        diffusion=0.0,
        nonlinearity=0.0,
        dispersion=GP_ALPHA,
        nonlinear_frequency=GP_BETA,
    )
    twist = 0.5
    lat = MobiusStrip(
        nu, nv, edge="neumann", twist=twist, metric="embedded", dtype=C128, device=device
    )
    uu, vv = lat.coordinates()
    length = lat.length
    # smooth data obeying the seam rule: f(u + L, v) = f(u, −v), phase e^{iθu/L}
    envelope = (
        1.0
        + 0.5 * torch.cos(2 * math.pi * uu / length)
        + 0.4 * vv * torch.sin(math.pi * uu / length)
    )
    psi0 = (torch.polar(torch.ones_like(uu), twist * uu / length) * envelope).to(C128)
    n0, e0 = gp_invariants(lat, psi0, GP_ALPHA, GP_BETA)
    dt_max = Simulator(lat, params, dt=1e-6).max_stable_dt()
    dts, drift_n, drift_e = [], [], []
    for frac in GP_DT_FRACTIONS:
        sim = Simulator(lat, params, dt=frac * dt_max, seed=0)
        sim.psi = psi0.clone()
        sim.run(GP_T_END)
        n1, e1 = gp_invariants(lat, sim.psi, GP_ALPHA, GP_BETA)
        dts.append(sim.dt)
        drift_n.append(abs(n1 - n0) / n0)
        drift_e.append(abs(e1 - e0) / abs(e0))
    order_n = [math.log2(drift_n[k] / drift_n[k + 1]) for k in range(len(dts) - 1)]
    order_e = [math.log2(drift_e[k] / drift_e[k + 1]) for k in range(len(dts) - 1)]
    tol_n, tol_e = GP_DRIFT_TOLERANCE[quick]
    ok_drift = drift_n[-1] <= tol_n and drift_e[-1] <= tol_e
    ok_order = all(abs(p[-1] - 5.0) <= GP_ORDER_TOLERANCE for p in (order_n, order_e))
    return CheckResult(
        "gp-conservation",
        f"Gross–Pitaevskii iψ_t = −{GP_ALPHA:g}Δψ + {GP_BETA:g}|ψ|²ψ (γ = 1, D = g = 0) on "
        f"an embedded Möbius band ({nu}×{nv}, θ = {twist}, Neumann) to t = {GP_T_END:g}, "
        f"RK4 at {', '.join(f'{f:g}' for f in GP_DT_FRACTIONS)} × the largest stable dt: "
        "relative drift of N = Σw|ψ|² and E = −αΣwψ̄Δψ + (β/2)Σw|ψ|⁴",
        max(drift_n[-1], drift_e[-1]),
        "0 for the semi-discrete flow; RK4's drift per unit time ∝ dt⁵",
        f"finest-dt drift of N ≤ {tol_n:g} and of E ≤ {tol_e:g} (10 × measured); observed "
        f"drift order on the finest refinement within 5 ± {GP_ORDER_TOLERANCE:g}",
        ok_drift and ok_order,
        {
            "dts": dts,
            "norm_drift": drift_n,
            "energy_drift": drift_e,
            "norm_drift_orders": order_n,
            "energy_drift_orders": order_e,
            "norm": n0,
            "energy": e0,
        },
    )


CHECKS: dict[str, Callable[[bool, torch.device], CheckResult]] = {
    "cgl-plane-waves": check_cgl_plane_waves,
    "cgl-linear-growth": check_cgl_linear_growth,
    "gp-conservation": check_gp_conservation,
}
