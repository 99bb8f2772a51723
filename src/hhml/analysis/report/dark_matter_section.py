"""The report section of ``hhml-analyze --dark-matter``.

Branches env 0 of the snapshot on the lattice it was simulated on (its geometry and
parameters from the snapshot's control values), runs
:func:`hhml.analysis.dark_matter.run_dark_matter_analysis` with the cylinder and torus
controls, and reports each number beside its null model or interval.

Public names: ``dark_matter_section``, ``snapshot_system``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from hhml.analysis.loading import Snapshot, snapshot_lattice_config
from hhml.analysis.report.document import Document
from hhml.config.controls import CONTROLS
from hhml.config.schema import FieldParams
from hhml.core.factory import build_lattice
from hhml.core.mobius import MobiusStrip, TokamakStack

__all__ = ["dark_matter_section", "snapshot_system"]


def snapshot_system(
    snap: Snapshot,
    env: int = 0,
    dynamics: dict[str, Any] | None = None,
    metric: str | None = None,
) -> tuple[MobiusStrip | TokamakStack, FieldParams, torch.Tensor]:
    """The lattice, parameters and field ``[S, nu, nv]`` (complex128) of one env.

    The lattice is :func:`~hhml.core.factory.build_lattice` of
    :func:`~hhml.analysis.loading.snapshot_lattice_config`; the parameters are
    ``dynamics`` (schema defaults where absent) with the env's ``dynamics.*`` control
    values. ``metric`` overrides the snapshot's metric (``"flat"`` for the topology
    controls: a torus around a Miller-shaped, non-planar centreline has no orthogonal
    chart).
    """
    lat_cfg = snapshot_lattice_config(snap, env)
    if metric is not None:
        lat_cfg = lat_cfg.replace(metric=metric)
    lattice = build_lattice(lat_cfg, dtype=torch.complex128)
    names, values = list(snap.extra["control_names"]), snap.extra["values"][env].tolist()
    v = dict(zip(names, values, strict=True))
    changes = {
        c.name: round(v[c.name]) if c.integer else v[c.name]
        for c in CONTROLS
        if c.section == "dynamics" and c.name in v
    }
    params = FieldParams(**(dynamics or {})).replace(**changes)
    return lattice, params, snap.psi[env].to(torch.complex128)


def dark_matter_section(
    snap: Snapshot,
    dynamics: dict[str, Any] | None = None,
    dt: float = 0.02,
    n_branches: int = 16,
    t_end: float = 5.0,
    seed: int = 0,
) -> Callable[[Document, Path], None]:
    """A report section running the ensemble-branch analysis on env 0 of ``snap``.

    ``dt`` is the RK4 step of the branch evolution on the flat-metric grid (the
    environment's dt is chosen for the embedded metric, whose Laplacian is softer).
    """

    def section(doc: Document, out: Path) -> None:
        from hhml.analysis.dark_matter import run_dark_matter_analysis

        # the controls need every topology on the same grid; the embedded torus around a
        # non-planar (Miller-shaped) centreline is not orthogonal, so all three use the
        # flat metric of the same grid, with the snapshot's geometry for the coupling
        lattice, params, psi0 = snapshot_system(snap, 0, dynamics, metric="flat")
        result = run_dark_matter_analysis(
            lattice, psi0, params=params, n_branches=n_branches, t_end=t_end, dt=dt, seed=seed
        )
        data = result.to_dict()
        doc.heading("Ensemble branches ('pruning residue')")
        doc.paragraph(
            f"{data['disclaimer']} {n_branches} branches of env 0 of the snapshot, perturbed "
            f"({data['settings'].get('kind')}, ε = {data['settings'].get('epsilon')}) and evolved "
            f"for {t_end:g} time units with the simulator, on the Möbius lattice and on the "
            f"cylinder and torus controls (all with the flat metric of the same grid: the torus "
            f"around the shaped centreline has no orthogonal embedded chart). Pruning rule, "
            f"fixed before evolution: "
            f"{data['criterion']['statement']}"
        )
        rows = []
        for topo, t in data["topologies"].items():
            lyap, res = t["lyapunov"], t["residue"]
            rows.append(
                [
                    topo,
                    lyap["mean"],
                    f"[{_f(lyap['ci'][0])}, {_f(lyap['ci'][1])}]",
                    t["mean_pairwise_fidelity_sq"],
                    t["null_mean_fidelity_sq"],
                    t["retained_fraction"],
                    res["norm_share_pruned"],
                    res["norm_share_null"],
                ]
            )
        doc.table(
            [
                "topology",
                "growth rate λ (1/time)",
                "95 % CI",
                "mean pairwise F²",
                "null 1/n",
                "retained fraction",
                "pruned norm share",
                "null share",
            ],
            rows,
        )
        comp_rows = []
        for name, quantities in data["comparisons"].items():
            for quantity, c in quantities.items():
                comp_rows.append(
                    [name, quantity, c["mean_a"], c["mean_b"], c["mann_whitney_p"],
                     c["permutation_p"], c["rank_biserial"]]
                )  # fmt: skip
        if comp_rows:
            doc.table(
                ["comparison", "quantity", "mean (Möbius)", "mean (control)", "Mann–Whitney p",
                 "permutation p", "rank-biserial r"],
                comp_rows,
            )  # fmt: skip
        doc.figure("branches.png", _plot(data, out / "branches.png"))
        doc.numbers["dark_matter"] = data

    return section


def _f(x: Any) -> str:
    return "—" if x is None else f"{x:.4g}"


def _plot(data: dict[str, Any], path: Path) -> str:
    fig = Figure(figsize=(11, 3.8))
    ax1, ax2 = fig.subplots(1, 2)
    for k, (topo, t) in enumerate(data["topologies"].items()):
        times = np.asarray(t["times"], dtype=float)
        sep = np.asarray([[np.nan if v is None else v for v in row] for row in t["separation"]])
        ref = np.asarray([np.nan if v is None else v for v in t["reference_norm"]])
        rel = sep / ref[:, None] if sep.shape[0] == len(times) else sep.T / ref[:, None]
        lo, med, hi = np.nanpercentile(rel, [10, 50, 90], axis=1)
        ax1.fill_between(times, lo, hi, color=f"C{k}", alpha=0.2)
        ax1.plot(times, med, color=f"C{k}", label=topo)
        r = t["retention"]
        tau = 1.0 - np.asarray(r["thresholds"], dtype=float)
        ax2.fill_between(tau, r["lower"], r["upper"], color=f"C{k}", alpha=0.2, step="mid")
        ax2.step(tau, r["retained"], where="mid", color=f"C{k}", label=topo)
        if k == 0:
            ax2.plot(tau, r["null_retained"], "k:", label="independent Gaussian fields")
    ax1.set_yscale("log")
    ax1.set_xlabel("time")
    ax1.set_ylabel("‖ψ_b − ψ_ref‖ / ‖ψ_ref‖")
    ax1.legend(fontsize=8)
    ax2.set_xscale("log")
    ax2.set_xlabel("1 − τ (fidelity threshold)")
    ax2.set_ylabel("retained fraction")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return (
        "Left: relative separation of the branches from the unperturbed one (median and "
        "10–90 % band over branches) on each topology. Right: fraction of branches kept as a "
        "function of the fidelity threshold τ with 95 % bootstrap bands, beside the null of "
        "independent Gaussian fields."
    )
