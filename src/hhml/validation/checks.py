"""The named physics checks run by ``hhml-validate``.

Each check compares a measured number with an independent reference (an
analytic result or a separate implementation, see
:mod:`hhml.validation.references`) and returns a :class:`CheckResult`.
``quick=True`` uses smaller lattices so the whole suite runs in CI.

Public names: :class:`CheckResult`, :data:`CHECKS`, :data:`GROUPS`, :func:`run_checks`,
:func:`expand_names`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse.linalg as spla
import torch

from hhml.config.controls import LATTICE_CONTROLS
from hhml.config.schema import FieldParams, LatticeConfig
from hhml.config.specs import field_specs
from hhml.core.factory import build_lattice
from hhml.core.mobius import MobiusStrip
from hhml.core.resonance import (
    IID_PHASE_VORTEX_FRACTION,
    Simulator,
    detect_vortices,
    imprint_vortex,
    winding_numbers,
)
from hhml.core.resonance.tracking import band_displacement
from hhml.errors import ValidationError
from hhml.validation.references import (
    DoubleCoverSolver,
    analytic_flat_spectrum,
    boundary_winding,
    operator_matrix,
)

C128 = torch.complex128


@dataclass
class CheckResult:
    """Outcome of one validation check.

    Attributes
    ----------
    name : str
        Check name (``hhml-validate --only NAME``).
    description : str
        What is compared with what.
    measured : float
        The measured quantity (e.g. a maximum error or an observed order).
    reference : str
        The reference value or bound it is compared with.
    tolerance : str
        Acceptance criterion in words.
    passed : bool
        Whether the criterion holds.
    details : dict
        Per-case numbers (written to ``--json``).
    """

    name: str
    description: str
    measured: float
    reference: str
    tolerance: str
    passed: bool
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- 1
def check_laplacian_spectrum(quick: bool, device: torch.device) -> CheckResult:
    """Flat Möbius Laplacian eigenvalues equal the analytic discrete spectrum."""
    nu, nv = (10, 6) if quick else (24, 10)
    details: dict[str, Any] = {}
    worst = 0.0
    for edge in ("dirichlet", "neumann"):
        for twist in (0.0, 0.7, math.pi):
            lat = MobiusStrip(nu, nv, edge=edge, twist=twist, dtype=C128, device=device)
            mat = operator_matrix(lat).toarray()
            measured = np.sort(np.linalg.eigvalsh(0.5 * (mat + mat.conj().T)))
            hermitian_defect = float(np.abs(mat - mat.conj().T).max())
            ref = analytic_flat_spectrum(nu, nv, lat.length, lat.half_width, edge, twist)
            err = float(np.abs(measured - ref).max() / np.abs(ref).max())
            worst = max(worst, err, hermitian_defect)
            details[f"{edge}, twist={twist:.4g}"] = {
                "max_relative_error": err,
                "hermitian_defect": hermitian_defect,
            }
    return CheckResult(
        "laplacian-spectrum",
        f"flat Möbius Laplacian ({nu}×{nv}; Dirichlet/Neumann; θ = 0, 0.7, π) vs the analytic "
        "discrete spectrum",
        worst,
        "0 (analytic)",
        "max |λ − λ_exact| / max|λ| ≤ 1e-10",
        worst <= 1e-10,
        details,
    )


# --------------------------------------------------------------------------- 2
def _lowest_eigenvalues(lat: MobiusStrip, count: int) -> np.ndarray:
    a = operator_matrix(lat)
    w = lat.area_weights().double().cpu().numpy().reshape(-1)
    # W·Δ is symmetric (twist 0: real); solve the generalised problem A x = λ W x
    sym = (a.multiply(w[:, None])).real.tocsc()
    import scipy.sparse as sp

    m = sp.diags(w).tocsc()
    n = sym.shape[0]
    if n <= 600:
        vals = scipy.linalg.eigh(sym.toarray(), m.toarray(), eigvals_only=True)
    else:
        vals = spla.eigsh(sym, k=count + 2, M=m, sigma=1.0, which="LM", return_eigenvectors=False)
    vals = np.sort(np.asarray(vals))[::-1]  # least negative first
    return vals[:count]


def check_embedded_convergence(quick: bool, device: torch.device) -> CheckResult:
    """Second-order convergence of the embedded-metric Laplace–Beltrami eigenvalues."""
    grids = [(16, 4), (32, 8), (64, 16)] if quick else [(32, 8), (64, 16), (128, 32), (256, 64)]
    count = 4
    values = []
    for nu, nv in grids:
        lat = MobiusStrip(
            nu, nv, metric="embedded", edge="dirichlet", aspect=3.0, dtype=C128, device=device
        )
        values.append(_lowest_eigenvalues(lat, count))
    vals = np.array(values)  # [grids, count]
    diffs = np.abs(np.diff(vals, axis=0))  # successive refinements
    orders = np.log2(diffs[:-1] / diffs[1:])  # [grids-2, count]
    finest = orders[-1]
    measured = float(np.min(finest))
    passed = bool(np.all(np.abs(finest - 2.0) <= 0.3))
    return CheckResult(
        "embedded-convergence",
        "embedded-metric Möbius Laplace–Beltrami: observed order of the 4 lowest Dirichlet "
        f"eigenvalues on grids {grids}",
        measured,
        "2 (second-order finite volumes)",
        "observed order on the finest refinement within 2 ± 0.3 for every eigenvalue",
        passed,
        {"eigenvalues": vals.tolist(), "observed_orders": orders.tolist()},
    )


# --------------------------------------------------------------------------- 3
def check_double_cover(quick: bool, device: torch.device) -> CheckResult:
    """Möbius evolution equals an independent spectral solver on the double cover."""
    nu, nv, steps = (24, 8, 40) if quick else (64, 16, 200)
    params = FieldParams(
        damping=0.2, diffusion=0.02, dispersion=0.01, nonlinearity=1.0, nonlinear_frequency=0.3
    )
    details: dict[str, Any] = {}
    worst = 0.0
    for edge in ("dirichlet", "neumann"):
        for twist in (0.0, 0.9):
            lat = MobiusStrip(nu, nv, edge=edge, twist=twist, dtype=C128, device=device)
            sim = Simulator(lat, params, dt=0.02, seed=3, initial="noise", initial_amplitude=0.5)
            psi0 = sim.psi.cpu().numpy()
            sim.step(steps)
            cover = DoubleCoverSolver(
                nu,
                nv,
                lat.length,
                lat.half_width,
                edge,
                twist,
                growth=1.0 - params.damping,
                diffusion=params.diffusion + 1j * params.dispersion,
                cubic=params.nonlinearity + 1j * params.nonlinear_frequency,
            )
            out = cover.evolve(cover.lift(psi0), 0.02, steps)
            scale = float(np.abs(out).max())
            err = float(np.abs(out[:nu] - sim.psi.cpu().numpy()).max() / scale)
            symmetry = float(np.abs(out[nu:] - np.exp(1j * twist) * out[:nu, ::-1]).max() / scale)
            worst = max(worst, err, symmetry)
            details[f"{edge}, twist={twist}"] = {
                "max_relative_difference": err,
                "cover_mirror_defect": symmetry,
            }
    return CheckResult(
        "double-cover",
        f"CGL on the flat Möbius band ({nu}×{nv}, RK4, {steps} steps) vs an independent "
        "FFT-in-u solver on the length-2L double cover with mirror-symmetric data",
        worst,
        "0 (same discrete equation)",
        "max |ψ_möbius − ψ_cover| / max|ψ| ≤ 1e-8",
        worst <= 1e-8,
        details,
    )


# --------------------------------------------------------------------------- 4
def _imprint_cases(nu: int, nv: int) -> list[tuple[int, int, int]]:
    mid = nv // 2 - 2
    cases = []
    for q in (1, -1, 2, -2):
        for i in (nu // 3, 0, nu - 2, nu - 1):  # interior, beside the seam, across the seam
            cases.append((q, i, mid))
    return cases


def check_imprinted_vortices(quick: bool, device: torch.device) -> CheckResult:
    """Imprinted ±1, ±2 vortices are found at the right plaquettes with the right charge."""
    nu, nv = (48, 12) if quick else (96, 24)
    failures: list[str] = []
    n_cases = 0
    for topology in ("mobius", "cylinder"):
        for twist in (0.0, 0.9):
            lat = MobiusStrip(nu, nv, topology=topology, twist=twist, dtype=C128, device=device)
            uu, _ = lat.coordinates()
            # smooth vortex-free background obeying the twisted identification
            base = torch.polar(torch.ones_like(uu), twist * uu / lat.length).to(C128)
            for q, i, j in _imprint_cases(nu, nv):
                n_cases += 1
                u_c, v_c = (i + 1) * lat.du, float(lat.v[j]) + lat.dv / 2  # plaquette centre
                charge = q
                if i == nu - 1:  # centre on the seam: the chart point is (0, ∓v) there
                    u_c = 0.0
                    if topology == "mobius":
                        v_c, charge = -v_c, -q
                psi = imprint_vortex(base, lat, (u_c, v_c), charge, core_radius=2 * lat.du)
                tag = f"{topology} θ={twist} q={q} plaquette=({i},{j})"
                if abs(q) == 1:
                    w = winding_numbers(psi, lat)
                    got = [(tuple(ix.tolist()), int(w[tuple(ix)])) for ix in torch.nonzero(w)]
                    if got != [((i, j), q)]:
                        failures.append(f"{tag}: expected [(({i}, {j}), {q})], found {got}")
                    continue
                found = detect_vortices(psi, lat)
                # |q| = 2 splits into two unit windings on neighbouring plaquettes; count them
                # in the orientation of the target plaquette (flip across the Möbius seam)
                target = np.array([(i + 1) * lat.du, float(lat.v[j]) + lat.dv / 2])
                disp = band_displacement(
                    target,
                    found.position.cpu().numpy(),
                    length=lat.length,
                    half_width=lat.half_width,
                    topology=topology,  # type: ignore[arg-type]
                )
                sign = np.where(disp.crosses_seam & (topology == "mobius"), -1, 1)
                total = int((found.charge.cpu().numpy() * sign).sum())
                near = bool(np.all(disp.distance <= 2.5 * max(lat.du, lat.dv)))
                if total != q or not near or int(found.charge.abs().sum()) != 2:
                    failures.append(
                        f"{tag}: oriented charge {total}, |q| sum {int(found.charge.abs().sum())},"
                        f" all within 2.5 cells: {near}"
                    )
    return CheckResult(
        "imprinted-vortices",
        f"imprint q = ±1, ±2 at plaquette centres ({nu}×{nv}; interior, beside and across the "
        "seam; Möbius and cylinder; θ = 0, 0.9) and detect",
        float(len(failures)),
        "0 misplaced or mis-charged vortices",
        "±1: exactly the target plaquette with charge q; ±2: total oriented charge q within "
        "2.5 cells",
        not failures,
        {"cases": n_cases, "failures": failures},
    )


# --------------------------------------------------------------------------- 5
def check_null_model(quick: bool, device: torch.device) -> CheckResult:
    """I.i.d. uniform phases give non-zero winding on 1/3 of plaquettes."""
    fields, nu, nv = (64, 64, 16) if quick else (256, 128, 32)
    lat = MobiusStrip(nu, nv, dtype=C128, device=device)
    gen = torch.Generator(device=device).manual_seed(12345)
    phases = (
        2 * math.pi * torch.rand(fields, nu, nv, generator=gen, device=device, dtype=torch.float64)
    )
    psi = torch.polar(torch.ones_like(phases), phases)
    frac = (winding_numbers(psi, lat) != 0).double().mean(dim=(-2, -1)).cpu().numpy()
    mean, se = float(frac.mean()), float(frac.std(ddof=1) / math.sqrt(fields))
    z = abs(mean - IID_PHASE_VORTEX_FRACTION) / se
    return CheckResult(
        "null-model",
        f"fraction of plaquettes with non-zero winding for i.i.d. uniform phases "
        f"({fields} fields of {nu}×{nv}; standard error from the spread between fields)",
        mean,
        "1/3",
        f"|mean − 1/3| ≤ 4 standard errors (SE = {se:.2e}; z = {z:.2f})",
        z <= 4.0,
        {"mean": mean, "standard_error": se, "z": z},
    )


# --------------------------------------------------------------------------- 6
def check_boundary_parity(quick: bool, device: torch.device) -> CheckResult:
    """Σ plaquette charges ≡ W − θ/π (mod 2) on the Möbius band."""
    fields, nu, nv = (50, 16, 6) if quick else (400, 32, 10)
    rng = np.random.default_rng(7)
    violations = 0
    worst = 0.0
    cases = 0
    for twist in (0.0, 0.7, math.pi / 2, math.pi, -2.0):
        lat = MobiusStrip(nu, nv, twist=twist, dtype=C128, device=device)
        for k in range(fields):
            if k % 2 == 0:  # rough: random complex Gaussian values
                z = rng.standard_normal((nu, nv)) + 1j * rng.standard_normal((nu, nv))
            else:  # smooth: a few imprinted vortices on a twisted background
                uu, _ = lat.coordinates()
                z_t = torch.polar(torch.ones_like(uu), twist * uu / lat.length).to(C128)
                for _ in range(3):
                    pos = (float(rng.uniform(0, lat.length)), float(rng.uniform(-0.7, 0.7)))
                    z_t = imprint_vortex(z_t, lat, pos, int(rng.choice([-1, 1])), 0.2)
                z = z_t.cpu().numpy()
            psi = torch.tensor(z, dtype=C128, device=device)
            total = int(winding_numbers(psi, lat).sum())
            w = boundary_winding(z, twist)
            residue = (total - w + twist / math.pi) / 2.0
            dev = abs(residue - round(residue))
            worst = max(worst, dev)
            violations += dev > 1e-9
            cases += 1
    return CheckResult(
        "boundary-parity",
        f"Σ charges − (W − θ/π) is even for {cases} random and smooth fields on {nu}×{nv} "
        "Möbius bands (θ = 0, 0.7, π/2, π, −2)",
        worst,
        "0 (exact lattice identity)",
        "max distance of (Σq − W + θ/π)/2 from an integer ≤ 1e-9",
        violations == 0,
        {"cases": cases, "violations": violations},
    )


# --------------------------------------------------------------------------- 7
def _nls_invariants(
    lat: MobiusStrip, psi: torch.Tensor, alpha: float, beta: float
) -> tuple[float, float]:
    w = lat.area_weights().to(torch.float64)
    dens = psi.abs() ** 2
    norm = float((w * dens).sum())
    kinetic = float(-(w * (psi.conj() * lat.laplacian(psi))).sum().real)
    energy = alpha * kinetic + 0.5 * beta * float((w * dens**2).sum())
    return norm, energy


def check_conservative_limit(quick: bool, device: torch.device) -> CheckResult:
    """Defocusing NLS: norm and energy conserved; RK4 observed order 4."""
    nu, nv = (24, 8) if quick else (48, 12)
    alpha, beta, t_end = 0.05, 1.0, 1.0
    params = FieldParams(
        damping=1.0, diffusion=0.0, nonlinearity=0.0, dispersion=alpha, nonlinear_frequency=beta
    )
    lat = MobiusStrip(
        nu, nv, edge="neumann", twist=0.5, metric="embedded", dtype=C128, device=device
    )
    gen = torch.Generator(device=device).manual_seed(5)
    psi0 = torch.randn(nu, nv, dtype=C128, generator=gen, device=device)
    for _ in range(20):  # smooth the initial data so the error constant is moderate
        psi0 = psi0 + 0.1 * lat.laplacian(psi0) * min(lat.du, lat.dv) ** 2
    n0, e0 = _nls_invariants(lat, psi0, alpha, beta)

    def evolve(dt: float) -> torch.Tensor:
        sim = Simulator(lat, params, dt=dt, seed=0)
        sim.psi = psi0.clone()
        sim.run(t_end)
        return sim.psi

    dt0 = 0.2 * Simulator(lat, params, dt=1e-4).max_stable_dt()
    dts = [dt0, dt0 / 2, dt0 / 4]
    ref = evolve(dt0 / 32)
    errors = [float((evolve(dt) - ref).abs().max()) for dt in dts]
    orders = [math.log2(errors[k] / errors[k + 1]) for k in range(2)]
    n1, e1 = _nls_invariants(lat, ref, alpha, beta)
    drift_n, drift_e = abs(n1 - n0) / n0, abs(e1 - e0) / abs(e0)
    ok_order = all(abs(p - 4.0) <= 0.3 for p in orders)
    ok_cons = drift_n <= 1e-8 and drift_e <= 1e-8
    return CheckResult(
        "conservative-limit",
        f"defocusing NLS iψ_t = −αΔψ + β|ψ|²ψ on an embedded Möbius band ({nu}×{nv}, θ = 0.5) "
        f"to t = {t_end}: RK4 order from dt = {dt0:.3g}, /2, /4 against dt/32",
        min(orders),
        "order 4; norm and energy exactly conserved by the semi-discrete flow",
        "observed orders within 4 ± 0.3; relative norm and energy drift at dt/32 ≤ 1e-8",
        ok_order and ok_cons,
        {
            "dts": dts,
            "errors": errors,
            "observed_orders": orders,
            "norm_drift": drift_n,
            "energy_drift": drift_e,
        },
    )


# --------------------------------------------------------------------------- 8
SENSITIVITY_BASE = dict(
    damping=0.2,
    nonlinearity=1.0,
    diffusion=0.01,
    noise_temperature=0.001,
    dispersion=0.01,
    nonlinear_frequency=0.3,
    spectral_filter=1e-7,
    source_amplitude=0.5,
    source_frequency=1.0,
    source_spread=0.3,
    boundary_winding=1,
    coupling=0.5,
    pinning=0.5,
    pair_seeding=5.0,
    pinning_sites=4,
    pinning_radius=0.2,
    pair_separation=0.4,
    core_radius=0.1,
)
#: A value of every lattice control (:data:`~hhml.config.controls.LATTICE_CONTROLS`).
GEOMETRY_BASE = dict(aspect=12.0, kappa=1.3, delta=0.2, coupling_range=2.0, twist=0.3)


def _perturbed(value: float, low: float, high: float, integer: bool) -> float:
    """A value 20 % of the allowed span (1 for integers; the value itself where the range is
    unbounded) away from ``value``, inside the range."""
    step = 1.0 if integer else 0.2 * (high - low) if math.isfinite(high - low) else value
    up = value + step
    return up if up <= high else value - step


def check_parameter_sensitivity(quick: bool, device: torch.device) -> CheckResult:
    """Every FieldParams field and every lattice control parameter changes the state."""
    nu, nv, steps = (24, 6, 6) if quick else (48, 12, 20)
    dt = 0.1

    def final_state(field_kw: dict[str, Any], geom_kw: dict[str, Any]) -> torch.Tensor:
        lat_cfg = LatticeConfig(strips=2, nu=nu, nv=nv, metric="embedded", edge="neumann")
        stack = build_lattice(lat_cfg.replace(**geom_kw), device=device, dtype=C128)
        sim = Simulator(stack, FieldParams(**field_kw), dt=dt, seed=11)
        sim.step(steps)
        return sim.psi

    base = final_state(SENSITIVITY_BASE, GEOMETRY_BASE)
    scale = float(base.abs().max())
    changes: dict[str, float] = {}
    specs = field_specs(FieldParams)
    for name, value in SENSITIVITY_BASE.items():
        spec_ = specs[name]
        integer = spec_.kind is int
        low = -math.inf if spec_.low is None else float(spec_.low)
        high = math.inf if spec_.high is None else float(spec_.high)
        new = _perturbed(float(value), low, high, integer)
        kw = dict(SENSITIVITY_BASE, **{name: int(new) if integer else new})
        changes[f"dynamics.{name}"] = (
            float((final_state(kw, GEOMETRY_BASE) - base).abs().max()) / scale
        )
    for name in LATTICE_CONTROLS:  # every lattice control of the table (KeyError if not in base)
        geom = dict(GEOMETRY_BASE, **{name: GEOMETRY_BASE[name] * 1.2})
        changes[f"lattice.{name}"] = (
            float((final_state(SENSITIVITY_BASE, geom) - base).abs().max()) / scale
        )
    dead = [k for k, v in changes.items() if not v > 1e-6]
    return CheckResult(
        "parameter-sensitivity",
        f"perturb each of the {len(SENSITIVITY_BASE)} FieldParams fields and the "
        f"{len(GEOMETRY_BASE)} lattice controls ({', '.join(GEOMETRY_BASE)}) alone "
        f"(2-strip embedded stack {nu}×{nv}, "
        f"{steps} steps, same seed) and compare final states",
        min(changes.values()),
        "> 0 for every parameter (no dead parameter)",
        "max |Δψ| / max |ψ| > 1e-6 for every parameter",
        not dead,
        {"relative_change": changes, "dead": dead},
    )


CHECKS: dict[str, Callable[[bool, torch.device], CheckResult]] = {
    "laplacian-spectrum": check_laplacian_spectrum,
    "embedded-convergence": check_embedded_convergence,
    "double-cover": check_double_cover,
    "imprinted-vortices": check_imprinted_vortices,
    "null-model": check_null_model,
    "boundary-parity": check_boundary_parity,
    "conservative-limit": check_conservative_limit,
    "parameter-sensitivity": check_parameter_sensitivity,
}


#: Named groups of checks (``hhml-validate --only GROUP``): the lattice and field physics,
#: and the science modules, registered by :func:`_register_science_checks`.
GROUPS: dict[str, list[str]] = {"physics": list(CHECKS)}


def _register_science_checks() -> None:
    """Add the tensor-network and group-field-theory checks (their modules import
    :class:`CheckResult` from here, so they are registered after it is defined)."""
    from hhml.validation import cgl_checks, gft_checks, happy_checks, mera_checks, tn_exact_checks

    groups = {
        "tensor-networks": {**tn_exact_checks.CHECKS, **mera_checks.CHECKS, **happy_checks.CHECKS},
        "gft": dict(gft_checks.CHECKS),
        "cgl": dict(cgl_checks.CHECKS),
    }
    for group, checks in groups.items():
        CHECKS.update(checks)
        GROUPS[group] = list(checks)


_register_science_checks()


def expand_names(names: Iterable[str]) -> list[str]:
    """Replace group names by their checks (order kept, duplicates dropped).

    Raises
    ------
    ValidationError
        An unknown name, listing the valid check and group names.
    """
    out: list[str] = []
    for name in names:
        members = GROUPS.get(name, [name])
        unknown = [n for n in members if n not in CHECKS]
        if unknown:
            raise ValidationError(
                f"unknown check {name!r}; valid groups: {', '.join(GROUPS)}; valid checks: "
                + ", ".join(CHECKS)
            )
        out += [n for n in members if n not in out]
    return out


def run_checks(
    names: Iterable[str] | None = None, quick: bool = False, device: torch.device | None = None
) -> list[CheckResult]:
    """Run the named checks or groups (all by default) and return their results in order."""
    selected = list(CHECKS) if names is None else expand_names(names)
    dev = device or torch.device("cpu")
    return [CHECKS[n](quick, dev) for n in selected]
