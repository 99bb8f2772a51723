"""Analyse a training run directory: returns beside its baselines, and its vortex statistics.

Reads a run directory written by ``hhml-train`` or ``examples/train_td3.py`` with
:func:`hhml.load_run` (read-only) and writes to ``--out``:

- ``returns_vs_baselines.png``: the evaluation return against env steps beside the
  non-learning baselines stored in the run's ``metrics.json`` (random, mid-point, best
  constant, best schedule with the same env-step budget), as in ``train_td3.py``;
- ``vortex_statistics.png``: from ``metrics.jsonl``, the vortex density (training and
  evaluation episodes) against steps beside the task's target and the Berry–Dennis density
  of a Gaussian field with the same ⟨k²⟩, and the vortex count per env; from the field
  snapshots (:func:`hhml.analysis.load_snapshot`), the charge balance (vortices of charge
  + and −, and the net chart charge, over all envs and strips) at each snapshot step, and
  for the last snapshot each env's density beside its two null models
  (:func:`hhml.analysis.vortex_statistics.vortex_counts`: i.i.d. phases and the
  band-limited Gaussian field).

On a Möbius band the chart charge need not sum to zero: a vortex crossing the seam
changes sign in the chart. With ``--quick`` and no run given, a tiny run (the quick
settings of ``train_td3.py``) is first trained into ``--out/runs``.

Example::

    python examples/analyze_run.py results/runs/<run id> --out results/analysis
    python examples/analyze_run.py --quick --out results/analysis

Public names: ``plot_vortex_statistics``, ``charge_balance``, ``last_snapshot_densities``,
``main``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
import torch
from matplotlib.figure import Figure
from train_td3 import build_config, comparison_table, plot_returns_vs_baselines, train

import hhml
from hhml.analysis import load_snapshot
from hhml.analysis.loading import RunData, snapshot_lattice_config
from hhml.analysis.vortex_statistics import VortexCounts, vortex_counts
from hhml.core.factory import build_lattice
from hhml.core.resonance import IID_PHASE_VORTEX_FRACTION
from hhml.errors import CheckpointError, ConfigError, HHmLError

__all__ = ["charge_balance", "last_snapshot_densities", "main", "plot_vortex_statistics"]

IntArray = npt.NDArray[np.int64]


def charge_balance(run: RunData) -> tuple[IntArray, IntArray, IntArray]:
    """Vortices of positive and negative chart charge in each snapshot of ``run``.

    Returns
    -------
    steps, positive, negative : ndarray, shape ``[T]``, int64
        Snapshot step and the number of vortices with ``q > 0`` and ``q < 0`` over all
        envs and strips (as detected when the snapshot was written).
    """
    steps, positive, negative = [], [], []
    for path in run.snapshots:
        snap = load_snapshot(path)
        charge = snap.vortex_charge
        steps.append(-1 if snap.step is None else snap.step)
        positive.append(int((charge > 0).sum()))
        negative.append(int((charge < 0).sum()))
    return (
        np.asarray(steps, dtype=np.int64),
        np.asarray(positive, dtype=np.int64),
        np.asarray(negative, dtype=np.int64),
    )


def last_snapshot_densities(run: RunData) -> tuple[int | None, list[VortexCounts]]:
    """:func:`~hhml.analysis.vortex_statistics.vortex_counts` of each env of the last
    snapshot, on that env's own lattice (its geometry and twist are controls).

    Returns
    -------
    step : int or None
        The snapshot's step (None without snapshots).
    counts : list of VortexCounts
        One per env (empty without snapshots).
    """
    if not run.snapshots:
        return None, []
    snap = load_snapshot(run.snapshots[-1])
    result = []
    for env in range(snap.num_envs):
        lattice = build_lattice(snapshot_lattice_config(snap, env), dtype=snap.psi.dtype)
        result.append(vortex_counts(snap.psi[env : env + 1], lattice, n_null=50, seed=env))
    return snap.step, result


def plot_vortex_statistics(
    run: RunData,
    balance: tuple[IntArray, IntArray, IntArray],
    last: tuple[int | None, list[VortexCounts]],
) -> Figure:
    """Four panels: density and count against steps, charge balance, last-snapshot densities.

    Parameters
    ----------
    run
        A run read with :func:`hhml.load_run` whose env is the Möbius vortex env (its
        records have ``vortex/*`` keys).
    balance
        :func:`charge_balance` of ``run``.
    last
        :func:`last_snapshot_densities` of ``run``.
    """
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), layout="constrained")
    ax = axes[0][0]
    for key, kind, style, label in (
        ("vortex/density", "train", "-", "training episodes"),
        ("eval/vortex/density", "eval", "o-", "evaluation episodes"),
        ("vortex/null_density", "train", ":", "Berry–Dennis ⟨k²⟩/4π (same ⟨k²⟩)"),
        ("baseline/vortex/density", "baseline", "x", "random actions (before training)"),
    ):
        steps, values = run.series(key, kind)
        if steps.size:
            ax.plot(steps, values, style, label=label)
    target = run.config.get("env", {}).get("target_density")
    if isinstance(target, (int, float)):
        ax.axhline(target, color="k", ls="--", lw=1, label=f"target {target:g}")
    ax.set(xlabel="env steps", ylabel="fraction of plaquettes with q ≠ 0", yscale="log")
    ax.set_title("vortex density during training")
    ax.legend(fontsize=8)

    ax = axes[0][1]
    for key, kind, style, label in (
        ("vortex/count", "train", "-", "training episodes"),
        ("eval/vortex/count", "eval", "o-", "evaluation episodes"),
        ("baseline/vortex/count", "baseline", "x", "random actions (before training)"),
    ):
        steps, values = run.series(key, kind)
        if steps.size:
            ax.plot(steps, values, style, label=label)
    ax.set(xlabel="env steps", ylabel="vortices per env (all strips)")
    ax.set_title("vortex count during training")
    ax.legend(fontsize=8)

    ax = axes[1][0]
    snap_steps, positive, negative = balance
    if snap_steps.size:
        width = 0.35 * (float(np.diff(snap_steps).min()) if snap_steps.size > 1 else 1.0)
        ax.bar(snap_steps - width / 2, positive, width, color="#d62728", label="q > 0")
        ax.bar(snap_steps + width / 2, negative, width, color="#1f77b4", label="q < 0")
        ax.plot(snap_steps, positive - negative, "ko-", label="net chart charge")
        ax.axhline(0, color="grey", lw=0.8)
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no snapshots in this run", ha="center", transform=ax.transAxes)
    ax.set(xlabel="snapshot step", ylabel="vortices (all envs and strips)")
    ax.set_title("charge balance (chart charges; the Möbius seam flips sign)")

    ax = axes[1][1]
    step, counts = last
    if counts:
        envs = np.arange(len(counts))
        measured = [c.density_vs_iid.value for c in counts]
        gaussian = [c.density_vs_band_limited.null for c in counts]
        ax.plot(envs, measured, "o", label="measured")
        ax.plot(envs, gaussian, "s", mfc="none", label="Gaussian field, same ⟨k²⟩ (Berry–Dennis)")
        ax.axhline(IID_PHASE_VORTEX_FRACTION, color="grey", ls="--", label="i.i.d. phases (1/3)")
        ax.set(xticks=envs, yscale="log")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no snapshots in this run", ha="center", transform=ax.transAxes)
    ax.set(xlabel="env", ylabel="fraction of plaquettes with q ≠ 0")
    ax.set_title(f"last snapshot (step {step}): density per env vs null models")
    fig.suptitle(f"vortex statistics of {run.path.name}")
    return fig


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, nargs="?", help="run directory (results/runs/<id>)")
    parser.add_argument("--out", type=Path, default=Path("results/analysis"))
    parser.add_argument(
        "--quick", action="store_true", help="without a run: first train a tiny one into --out"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Load (or, with ``--quick``, first train) the run and write both figures."""
    args = _parse(argv)
    prog = Path(sys.argv[0]).name
    if args.run is None and not args.quick:
        print(f"{prog}: error: give a run directory, or --quick to train one", file=sys.stderr)
        return 2
    try:
        run_dir = args.run
        if run_dir is None:
            run_dir = train(build_config([], args.out, quick=True)).run_dir
        run = hhml.load_run(run_dir)
        args.out.mkdir(parents=True, exist_ok=True)
        if run.summary is not None:
            print(comparison_table(run.summary))
        fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
        plot_returns_vs_baselines(run, ax)
        ax.set_title(f"{run.path.name}: evaluation return vs equal-budget baselines")
        fig.savefig(args.out / "returns_vs_baselines.png", dpi=110)
        plt.close(fig)
        balance = charge_balance(run)
        with torch.inference_mode():
            last = last_snapshot_densities(run)
        fig = plot_vortex_statistics(run, balance, last)
        fig.savefig(args.out / "vortex_statistics.png", dpi=110)
        plt.close(fig)
    except (CheckpointError, ConfigError) as exc:  # an unreadable run or a bad setting
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except HHmLError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    steps, positive, negative = balance
    for s, p, n in zip(steps.tolist(), positive.tolist(), negative.tolist(), strict=True):
        print(f"snapshot step {s}: {p} vortices q > 0, {n} q < 0, net chart charge {p - n}")
    print(f"wrote {args.out / 'returns_vs_baselines.png'} and {args.out / 'vortex_statistics.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
