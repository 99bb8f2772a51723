"""Train TD3 on the Möbius vortex environment from Python, beside equal-budget baselines.

Loads the packaged ``quickstart`` experiment (TD3 steering the 23 controls of two embedded
48 × 12 Möbius strips towards a vortex density of 0.03 per plaquette), applies
``section.key=value`` and ``group=name`` overrides exactly as ``hhml-train`` does, trains
with :class:`hhml.ml.training.Trainer` and writes to ``--out``:

- ``runs/<run id>/``: the run directory (``config.yaml``, ``metrics.jsonl``,
  ``metrics.json``, checkpoints, snapshots; see ``docs/training.md``);
- ``td3_learning_curve.png``: the evaluation return against env steps (mean ± std over
  the evaluation episodes, the final one with its 95 % interval) and the training episode
  return, with the non-learning baselines the trainer scores after training with the
  agent's env-step budget (uniformly random, mid-point, best constant and best schedule
  found by CMA-ES) as horizontal lines, their 95 % intervals at the right edge.

The final evaluation is printed next to those baselines. ``--quick`` shrinks the run to
480 env steps (about 10 s on one CPU core); the quickstart itself takes a few minutes.
An invalid override is a one-line error naming the key (exit status 2).

Example::

    python examples/train_td3.py --out results/td3
    python examples/train_td3.py --quick --out results/td3
    python examples/train_td3.py --out results/td3 training.total_steps=8000 agent.gamma=0.95

Public names: ``QUICK_OVERRIDES``, ``build_config``, ``train``, ``comparison_table``,
``plot_returns_vs_baselines``, ``main``.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

import hhml
from hhml.analysis.loading import RunData
from hhml.config import load_config
from hhml.config.schema import HHmLConfig
from hhml.errors import ConfigError, HHmLError
from hhml.ml.training import Trainer, TrainResult

__all__ = [
    "QUICK_OVERRIDES",
    "build_config",
    "comparison_table",
    "main",
    "plot_returns_vs_baselines",
    "train",
]

#: ``--quick``: 480 env steps (60 per env: one and a half 40-step episodes), two
#: evaluations of 3 episodes, a snapshot every 160 steps; user overrides come after these.
QUICK_OVERRIDES = (
    "training.total_steps=480",
    "training.eval_every=240",
    "training.eval_episodes=3",
    "training.log_every=80",
    "training.checkpoint_every=480",
    "training.snapshot_every=160",
    "training.tensorboard=false",
    "agent.learning_starts=160",
)

#: Colours of the baselines, in the order the trainer reports them.
BASELINE_COLOURS = {"random": "C7", "midpoint": "C2", "constant": "C3", "schedule": "C4"}


def build_config(overrides: Sequence[str], out: Path, quick: bool = False) -> HHmLConfig:
    """The packaged quickstart with runs under ``out/runs``, ``--quick`` sizes and overrides.

    Parameters
    ----------
    overrides
        ``section.key=value`` / ``group=name`` strings, applied last (they win).
    out
        Output directory; ``training.run_root`` becomes ``out/runs``.
    quick
        Apply :data:`QUICK_OVERRIDES` first.

    Raises
    ------
    ConfigError
        An invalid override (the message names it and what is valid).
    """
    base = [f"training.run_root={out / 'runs'}", *(QUICK_OVERRIDES if quick else ())]
    return load_config("quickstart", [*base, *overrides])


def train(cfg: HHmLConfig) -> TrainResult:
    """Create the run directory, train until ``training.total_steps``, close the envs."""
    trainer = Trainer.create(cfg)
    try:
        return trainer.train()
    finally:
        trainer.close()


def _interval(ci: Sequence[float] | None) -> str:
    if ci is None or not all(math.isfinite(x) for x in ci):
        return "—"
    return f"[{ci[0]:.2f}, {ci[1]:.2f}]"


def comparison_table(summary: Mapping[str, Any]) -> str:
    """The final evaluation and every baseline of a run's ``metrics.json``, as text.

    One line each: name, mean return, 95 % interval, env steps its search took, and the
    verdict of ``agent_vs_baselines`` (``agent better`` / ``baseline better`` /
    ``intervals overlap``); a skipped baseline shows the reason.
    """
    final = summary.get("final_eval") or {}
    lines = [f"{'policy':<22}{'return':>9}  {'95 % interval':<18}{'search steps':>13}  verdict"]
    if final:
        mean = final["return_mean"]
        lines.append(
            f"{summary.get('algorithm', 'agent') + ' (final eval)':<22}{mean:>9.2f}  "
            f"{_interval(final.get('return_ci95')):<18}{'—':>13}"
        )
    verdicts = summary.get("agent_vs_baselines") or {}
    for record in summary.get("baselines") or []:
        name = record["name"]
        if "skipped" in record:
            lines.append(f"{name:<22}{'skipped':>9}  {record['skipped']}")
            continue
        lines.append(
            f"{name:<22}{record['return_mean']:>9.2f}  {_interval(record.get('return_ci95')):<18}"
            f"{record['search_env_steps']:>13}  {verdicts.get(name, '')}"
        )
    return "\n".join(lines)


def plot_returns_vs_baselines(run: RunData, ax: Axes) -> None:
    """Evaluation and training returns of ``run`` against steps, baselines as lines.

    Parameters
    ----------
    run
        A run read with :func:`hhml.load_run`.
    ax
        Where to draw. The evaluation mean ± std (over its episodes) is a line with a
        band, the final evaluation's 95 % interval an error bar; the training episode
        return a thin line; each baseline of ``metrics.json`` (or, before the run has
        finished, the random-action ``baseline`` record) a dashed horizontal line with its
        95 % interval drawn at the right edge.
    """
    steps, mean = run.series("eval/return_mean", "eval")
    _, std = run.series("eval/return_std", "eval")
    if steps.size:
        ax.plot(steps, mean, "o-", color="C0", label="agent: evaluation return (± std)")
        if std.size == mean.size:
            ax.fill_between(steps, mean - std, mean + std, color="C0", alpha=0.2)
    train_steps, train_return = run.series("episode/return_mean")
    if train_steps.size:
        ax.plot(train_steps, train_return, color="C1", lw=1, label="agent: training episodes")
    summary = run.summary or {}
    final = summary.get("final_eval") or {}
    right = float(max([*steps.tolist(), *train_steps.tolist(), 1.0]))
    if final.get("return_ci95"):
        low, high = final["return_ci95"]
        ax.errorbar(
            [final["step"]],
            [final["return_mean"]],
            yerr=[[final["return_mean"] - low], [high - final["return_mean"]]],
            fmt="none",
            ecolor="C0",
            capsize=4,
        )
    baselines = [b for b in summary.get("baselines") or [] if "return_mean" in b]
    if not baselines:  # a run still going: only the random baseline record exists
        for record in run.of_kind("baseline")[:1]:
            baselines = [{"name": "random", "return_mean": record["baseline/return_mean"]}]
    for k, record in enumerate(baselines):
        colour = BASELINE_COLOURS.get(record["name"], f"C{5 + k}")
        ax.axhline(record["return_mean"], color=colour, ls="--", lw=1.2, label=f"{record['name']}")
        ci = record.get("return_ci95")
        if ci and all(math.isfinite(x) for x in ci):
            x = right * (1.03 + 0.025 * k)
            ax.errorbar([x], [record["return_mean"]], yerr=[[record["return_mean"] - ci[0]],
                        [ci[1] - record["return_mean"]]], fmt="o", color=colour, ms=3,
                        capsize=3)  # fmt: skip
    ax.set_xlabel("env steps (all envs)")
    ax.set_ylabel("episode return")
    ax.legend(fontsize=8, loc="best")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Overrides: as hhml-train (docs/config_reference.md lists every key).",
    )
    parser.add_argument("--out", type=Path, default=Path("results/td3"), help="output directory")
    parser.add_argument("--quick", action="store_true", help="480 env steps (about 10 s)")
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value", help="section.key=value or group=name"
    )
    return parser.parse_intermixed_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Train, print the comparison, write the learning curve; return the exit status."""
    args = _parse(argv)
    prog = Path(sys.argv[0]).name
    try:
        cfg = build_config(args.overrides, args.out, args.quick)
        result = train(cfg)
    except ConfigError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except HHmLError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    print(f"{result.status} after {result.step} env steps in {result.wall_time_s:.1f} s")
    print(comparison_table(result.summary))
    run = hhml.load_run(result.run_dir)
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    plot_returns_vs_baselines(run, ax)
    ax.set_title(
        f"{cfg.agent.algorithm.upper()} on the Möbius env ({cfg.env.task}) vs baselines with "
        f"{cfg.training.total_steps} env steps"
    )
    path = args.out / "td3_learning_curve.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path} and {result.run_dir}")
    return 130 if result.status == "interrupted" else 0


if __name__ == "__main__":
    sys.exit(main())
