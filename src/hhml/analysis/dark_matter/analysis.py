"""One entry point: the whole branch-pruning ensemble analysis, with its controls.

:func:`run_dark_matter_analysis` takes a config (or a lattice, or nothing for a
small default strip), a snapshot (or warms one up from seeded noise), and for
the Möbius band and its cylinder and torus controls

1. perturbs the snapshot into ``N`` seeded branches and evolves them with the
   real simulator next to the unperturbed reference (:mod:`.branches`);
2. computes phase-invariant fidelities — branch–reference and the ``[N, N]``
   branch matrix — beside the Beta(1, n − 1) null (:mod:`.fidelity`);
3. applies the pruning criterion declared before evolution and the
   retained-fraction curve with bootstrap bands and its null (:mod:`.pruning`);
4. compares what pruned and kept branches carry: norm, energy, vortices
   (:mod:`.residue`);
5. fits the growth rate of branch separation with a bootstrap CI (:mod:`.lyapunov`);
6. compares the topologies branch by branch (:mod:`.controls`).

This is an analysis of the model's ensemble of perturbed trajectories. It makes
no claim about cosmological dark matter.

Public names: :data:`DISCLAIMER`, :class:`TopologyAnalysis`, :class:`DarkMatterResult`,
:func:`default_lattice`, :func:`run_dark_matter_analysis`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from hhml.analysis.dark_matter.branches import (
    BranchEnsemble,
    ProgressCallback,
    check_lattice,
    deterministic_params,
    evolve_branches,
)
from hhml.analysis.dark_matter.controls import (
    CONTROL_TOPOLOGIES,
    compare_topologies,
    with_topology,
)
from hhml.analysis.dark_matter.fidelity import (
    degrees_of_freedom,
    fidelity_matrix,
    null_fidelity_squared_mean,
)
from hhml.analysis.dark_matter.lyapunov import LyapunovFit, fit_separation_growth
from hhml.analysis.dark_matter.pruning import (
    DEFAULT_THRESHOLDS,
    PruningCriterion,
    RetentionCurve,
    reference_fidelities,
    retention_curve,
)
from hhml.analysis.dark_matter.residue import (
    ResidueSummary,
    summarise_residue,
    vortex_statistics,
)
from hhml.analysis.dark_matter.statistics import (
    GroupComparison,
    check_confidence,
    check_count,
    json_number,
)
from hhml.config.schema import FieldParams, HHmLConfig
from hhml.core.factory import lattice_from_config
from hhml.core.mobius import MobiusStrip, TokamakStack
from hhml.core.resonance import Simulator
from hhml.errors import ConfigError, LatticeError

__all__ = [
    "DISCLAIMER",
    "DarkMatterResult",
    "TopologyAnalysis",
    "default_lattice",
    "run_dark_matter_analysis",
]

#: Stated with every result.
DISCLAIMER = (
    "This is an analysis of the model's ensemble of perturbed trajectories. "
    "It makes no claim about cosmological dark matter."
)

FloatArray = NDArray[np.float64]
Lattice = MobiusStrip | TokamakStack


def default_lattice(topology: str = "mobius") -> MobiusStrip:
    """The small default lattice: a flat 48 × 12 strip, L = 2π, w = 1, Neumann edges,
    complex128 on the CPU."""
    return MobiusStrip(
        48, 12, topology=topology, edge="neumann", metric="flat", dtype=torch.complex128
    )


def _matrix(x: FloatArray) -> list[list[float | int | None]]:
    return [[json_number(v) for v in row] for row in np.asarray(x)]


def _params_dict(p: FieldParams) -> dict[str, Any]:
    return {f.name: getattr(p, f.name) for f in dataclasses.fields(p)}


def _lattice_dict(lattice: Lattice) -> dict[str, Any]:
    if isinstance(lattice, TokamakStack):
        out = lattice.strip.state_dict()
        out.update(
            strips=lattice.num_strips,
            kappa=lattice.kappa,
            delta=lattice.delta,
            aspect=lattice.aspect,
            strip_spacing=lattice.strip_spacing,
            coupling_range=lattice.coupling_range,
        )
    else:
        out = lattice.state_dict()
    out["dtype"] = str(lattice.dtype).replace("torch.", "")
    out["device"] = str(lattice.device)
    return out


@dataclass
class TopologyAnalysis:
    """The analysis on one topology.

    Attributes
    ----------
    topology : str
        ``"mobius"``, ``"cylinder"`` or ``"torus"``.
    ensemble : BranchEnsemble
        The evolved branches (fields and separation histories).
    fidelity_to_reference : ndarray
        ``F_b`` at the final time to the criterion's reference, ``[N]``.
    fidelity_matrix : ndarray
        Branch–branch fidelities at the final time, ``[N, N]``.
    mean_pairwise_fidelity_sq : float
        Mean off-diagonal ``F²`` (null: ``1/n``).
    kept : ndarray
        Boolean ``[N]``, True for branches the criterion keeps.
    retention : RetentionCurve
        ``R(τ)`` with bootstrap band and null.
    residue : ResidueSummary
        Pruned versus kept branches.
    lyapunov : LyapunovFit
        Separation growth rates.
    snapshot_vortex_count : int
        Vortex count of the snapshot the branches start from.
    """

    topology: str
    ensemble: BranchEnsemble
    fidelity_to_reference: FloatArray
    fidelity_matrix: FloatArray
    mean_pairwise_fidelity_sq: float
    kept: NDArray[np.bool_]
    retention: RetentionCurve
    residue: ResidueSummary
    lyapunov: LyapunovFit
    snapshot_vortex_count: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able numbers (NaN → None)."""
        ens = self.ensemble
        dof = degrees_of_freedom(ens.lattice.field_shape)
        return {
            "topology": self.topology,
            "snapshot_vortex_count": self.snapshot_vortex_count,
            "times": [json_number(t) for t in ens.times],
            "separation": _matrix(ens.separation),
            "reference_norm": [json_number(v) for v in ens.reference_norm],
            "fidelity_over_time": _matrix(ens.fidelity_to_reference),
            "fidelity_to_reference": [json_number(v) for v in self.fidelity_to_reference],
            "fidelity_matrix": _matrix(self.fidelity_matrix),
            "mean_pairwise_fidelity_sq": json_number(self.mean_pairwise_fidelity_sq),
            "null_mean_fidelity_sq": null_fidelity_squared_mean(dof),
            "kept": [bool(k) for k in self.kept],
            "retained_fraction": json_number(float(self.kept.mean())),
            "retention": self.retention.to_dict(),
            "residue": self.residue.to_dict(),
            "lyapunov": self.lyapunov.to_dict(),
            "branch_params": (
                [
                    {k: getattr(p, k) for k in ("damping", "nonlinearity", "diffusion")}
                    for p in ens.branch_params
                ]
                if ens.kind == "params"
                else None
            ),
        }


@dataclass
class DarkMatterResult:
    """Everything :func:`run_dark_matter_analysis` measured.

    Attributes
    ----------
    settings : dict
        Lattice, parameters, perturbation, times, seeds and statistics settings.
    criterion : PruningCriterion
        The pruning rule, declared before evolution.
    primary : str
        Topology of the given lattice (compared with the others).
    topologies : dict
        ``{topology: TopologyAnalysis}``.
    comparisons : dict
        ``{"<primary>_vs_<other>": {quantity: GroupComparison}}`` for the
        per-branch ``lyapunov_exponent`` and ``final_fidelity``.
    disclaimer : str
        :data:`DISCLAIMER`.
    """

    settings: dict[str, Any]
    criterion: PruningCriterion
    primary: str
    topologies: dict[str, TopologyAnalysis]
    comparisons: dict[str, dict[str, GroupComparison]]
    disclaimer: str = DISCLAIMER

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able numbers (NaN → None); ``json.dumps`` works on the result."""
        return {
            "disclaimer": self.disclaimer,
            "settings": self.settings,
            "criterion": self.criterion.to_dict(),
            "primary": self.primary,
            "topologies": {k: v.to_dict() for k, v in self.topologies.items()},
            "comparisons": {
                k: {q: c.to_dict() for q, c in v.items()} for k, v in self.comparisons.items()
            },
        }


def _resolve(
    source: HHmLConfig | Lattice | None,
    params: FieldParams | None,
    dt: float | None,
    integrator: str | None,
) -> tuple[Lattice, FieldParams, float, str, float]:
    """Lattice, parameters, dt, integrator and initial amplitude from the source."""
    amplitude = 0.1
    if source is None:
        lattice: Lattice = default_lattice()
        base, base_dt, base_int = FieldParams(), 0.05, "rk4"
    elif isinstance(source, HHmLConfig):
        sim = source.simulation
        lattice = lattice_from_config(source)
        base, base_dt, base_int = source.dynamics, sim.dt, sim.integrator
        amplitude = sim.initial_amplitude
    else:
        lattice = check_lattice(source)
        base, base_dt, base_int = FieldParams(), 0.05, "rk4"
    if params is not None and not isinstance(params, FieldParams):
        raise ConfigError(f"params must be a FieldParams, got {type(params).__name__}")
    return (
        lattice,
        params if params is not None else base,
        float(dt) if dt is not None else float(base_dt),
        integrator if integrator is not None else str(base_int),
        float(amplitude),
    )


def _snapshot(
    lattice: Lattice,
    params: FieldParams,
    *,
    dt: float,
    integrator: str,
    seed: int,
    warmup: float,
    amplitude: float,
) -> Tensor:
    """Seeded noise (rms ``amplitude``) evolved for ``warmup`` with the branch dynamics."""
    sim = Simulator(
        lattice,
        params,
        dt=dt,
        integrator=integrator,
        seed=seed,
        initial="noise",
        initial_amplitude=amplitude,
    )
    if warmup > 0:
        sim.run(warmup)
    return sim.psi.clone()


def _analyse(
    topology: str,
    ensemble: BranchEnsemble,
    criterion: PruningCriterion,
    thresholds: Sequence[float],
    psi0: Tensor,
    *,
    n_boot: int,
    n_permutations: int,
    confidence: float,
    seed: int,
    lyapunov_saturation: float,
    lyapunov_t_min: float,
) -> TopologyAnalysis:
    lattice = ensemble.lattice
    weights = lattice.area_weights()
    dof = degrees_of_freedom(lattice.field_shape)
    fids = reference_fidelities(ensemble.branches, ensemble.reference, weights, criterion)
    kept = criterion.kept(fids)
    fmat = fidelity_matrix(ensemble.branches, weights).to(torch.float64).cpu().numpy()
    n = fmat.shape[0]
    off = fmat[~np.eye(n, dtype=bool)]
    snap_count, _, _ = vortex_statistics(psi0.unsqueeze(0), lattice)
    return TopologyAnalysis(
        topology=topology,
        ensemble=ensemble,
        fidelity_to_reference=fids,
        fidelity_matrix=fmat,
        mean_pairwise_fidelity_sq=float(np.mean(off**2)) if off.size else math.nan,
        kept=kept,
        retention=retention_curve(
            fids, thresholds, dof=dof, n_boot=n_boot, confidence=confidence, seed=seed
        ),
        residue=summarise_residue(
            ensemble.branches,
            ensemble.reference,
            kept,
            lattice,
            ensemble.params,
            n_boot=n_boot,
            n_permutations=n_permutations,
            confidence=confidence,
            seed=seed,
        ),
        lyapunov=fit_separation_growth(
            ensemble.times,
            ensemble.separation,
            ensemble.reference_norm,
            t_min=lyapunov_t_min,
            saturation=lyapunov_saturation,
            n_boot=n_boot,
            confidence=confidence,
            seed=seed,
        ),
        snapshot_vortex_count=int(snap_count[0]),
    )


def run_dark_matter_analysis(
    source: HHmLConfig | MobiusStrip | TokamakStack | None = None,
    psi0: Tensor | None = None,
    *,
    params: FieldParams | None = None,
    n_branches: int = 16,
    kind: str = "noise",
    epsilon: float = 0.01,
    t_end: float = 5.0,
    warmup: float = 5.0,
    dt: float | None = None,
    integrator: str | None = None,
    thresholds: Sequence[float] | None = None,
    criterion: PruningCriterion | None = None,
    seed: int = 0,
    controls: bool = True,
    n_records: int = 40,
    n_boot: int = 1000,
    n_permutations: int = 2000,
    confidence: float = 0.95,
    lyapunov_saturation: float = 0.3,
    lyapunov_t_min: float = 0.0,
    stochastic: bool = False,
    progress: ProgressCallback | None = None,
) -> DarkMatterResult:
    """Run the branch-pruning ensemble analysis on a lattice and its topology controls.

    Parameters
    ----------
    source
        An :class:`~hhml.config.HHmLConfig` (lattice, dynamics, dt, integrator,
        device, dtype, initial amplitude), a lattice (with ``FieldParams()``,
        dt = 0.05, RK4 unless given), or None for :func:`default_lattice`.
    psi0
        Snapshot ``field_shape`` to branch from, used on every topology. None:
        on each topology, seeded noise evolved for ``warmup`` with the same
        dynamics (so every topology starts from its own consistent field).
    params
        Overrides the field parameters of ``source``.
    n_branches
        ``N`` perturbed branches (≥ 2).
    kind, epsilon
        Perturbation (:data:`~.branches.PERTURBATION_KINDS`) and its size.
    t_end
        Branch evolution time (time units).
    warmup
        Evolution time of the snapshot when ``psi0`` is None.
    dt, integrator
        Override the time step and integrator.
    thresholds
        τ grid of the retention curve (default :data:`~.pruning.DEFAULT_THRESHOLDS`).
    criterion
        The pre-registered pruning rule (default ``PruningCriterion()``: τ = 0.999
        against the unperturbed reference).
    seed
        Seeds the snapshot, perturbations, simulator and all resampling; the
        same on every topology.
    controls
        Also run the cylinder and torus controls and compare.
    n_records
        Approximate number of recorded times of the separation history.
    n_boot, n_permutations, confidence
        Bootstrap resamples, permutations and interval level.
    lyapunov_saturation, lyapunov_t_min
        Fitting window of :func:`~.lyapunov.fit_separation_growth`.
    stochastic
        Keep noise temperature and pair seeding in the branch dynamics.
    progress
        ``progress(stage, fraction)`` callback (stage e.g. ``"mobius: evolve"``).

    Returns
    -------
    DarkMatterResult
        Use :meth:`DarkMatterResult.to_dict` for JSON.
    """
    lattice, base_params, dt_, integ, amplitude = _resolve(source, params, dt, integrator)
    check_count("n_branches", n_branches, 2)
    check_count("seed", seed, 0)
    check_count("n_boot", n_boot, 1)
    check_count("n_permutations", n_permutations, 1)
    check_confidence(confidence)
    if not (isinstance(warmup, (int, float)) and math.isfinite(warmup) and warmup >= 0):
        raise ConfigError(f"warmup = {warmup!r} is not valid; it must be a finite number ≥ 0")
    criterion = criterion if criterion is not None else PruningCriterion()
    if not isinstance(criterion, PruningCriterion):
        raise ConfigError(f"criterion must be a PruningCriterion, got {type(criterion).__name__}")
    taus = tuple(float(t) for t in (thresholds if thresholds is not None else DEFAULT_THRESHOLDS))
    if psi0 is not None and (
        not isinstance(psi0, Tensor) or tuple(psi0.shape) != lattice.field_shape
    ):
        shape = tuple(psi0.shape) if isinstance(psi0, Tensor) else type(psi0).__name__
        raise LatticeError(f"psi0 has shape {shape}; expected {lattice.field_shape}")
    primary = lattice.strip.topology if isinstance(lattice, TokamakStack) else lattice.topology
    order = [primary] + [t for t in CONTROL_TOPOLOGIES if t != primary] if controls else [primary]
    branch_params = deterministic_params(base_params, stochastic)
    results: dict[str, TopologyAnalysis] = {}
    for topo in order:
        lat = lattice if topo == primary else with_topology(lattice, topo)

        def report(stage: str, fraction: float, topo: str = topo) -> None:
            if progress is not None:
                progress(f"{topo}: {stage}", fraction)

        report("snapshot", 0.0)
        snap = (
            psi0.to(device=lat.device, dtype=lat.dtype)
            if psi0 is not None
            else _snapshot(
                lat,
                branch_params,
                dt=dt_,
                integrator=integ,
                seed=seed,
                warmup=float(warmup),
                amplitude=amplitude,
            )
        )
        report("snapshot", 1.0)
        ensemble = evolve_branches(
            lat,
            base_params,
            snap,
            n_branches=n_branches,
            kind=kind,
            epsilon=epsilon,
            t_end=t_end,
            seed=seed,
            dt=dt_,
            integrator=integ,
            n_records=n_records,
            stochastic=stochastic,
            progress=report,
        )
        results[topo] = _analyse(
            topo,
            ensemble,
            criterion,
            taus,
            snap,
            n_boot=n_boot,
            n_permutations=n_permutations,
            confidence=confidence,
            seed=seed,
            lyapunov_saturation=lyapunov_saturation,
            lyapunov_t_min=lyapunov_t_min,
        )
    samples = {
        topo: {
            "lyapunov_exponent": r.lyapunov.exponents,
            "final_fidelity": r.fidelity_to_reference,
        }
        for topo, r in results.items()
    }
    comparisons = (
        compare_topologies(
            samples,
            primary,
            n_boot=n_boot,
            n_permutations=n_permutations,
            confidence=confidence,
            seed=seed,
        )
        if len(results) > 1
        else {}
    )
    settings = {
        "lattice": _lattice_dict(lattice),
        "params": _params_dict(branch_params),
        "kind": kind,
        "epsilon": float(epsilon),
        "n_branches": n_branches,
        "t_end": float(results[primary].ensemble.t_end),
        "warmup": float(warmup) if psi0 is None else None,
        "snapshot": "given" if psi0 is not None else "seeded noise evolved for warmup",
        "dt": dt_,
        "integrator": integ,
        "seed": seed,
        "stochastic": stochastic,
        "topologies": list(order),
        "n_boot": n_boot,
        "n_permutations": n_permutations,
        "confidence": confidence,
        "lyapunov_saturation": lyapunov_saturation,
        "lyapunov_t_min": lyapunov_t_min,
        "dof": degrees_of_freedom(lattice.field_shape),
    }
    return DarkMatterResult(
        settings=settings,
        criterion=criterion,
        primary=primary,
        topologies=results,
        comparisons=comparisons,
    )
