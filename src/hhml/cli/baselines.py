"""``hhml-baselines``: what a non-learning policy reaches on a config, with the agent's budget.

Exit codes: 0 done; 1 error while running; 2 invalid invocation or config (one line,
nothing written).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn

import click

from hhml.cli.common import (
    CONTEXT_SETTINGS,
    EXIT_ERROR,
    EXIT_USAGE,
    common_options,
    exit_codes_epilog,
    fail,
    say,
    show_progress,
)
from hhml.errors import HHmLError

__all__ = ["EXIT_ERROR", "EXIT_USAGE", "format_table", "main"]

_PROG = "hhml-baselines"

_HELP = """Score the non-learning baselines of a training config on the trainer's own
evaluation protocol (one env, episode i reset with seed training.eval_seed + i).

\b
  random     uniformly random actions (the trainer's "baseline return")
  midpoint   the mid-point of every control range, held constant
  constant   the best constant action found by CMA-ES
  schedule   the best piecewise-constant schedule (--segments equal parts of an
             episode) found by CMA-ES

The searches may take as many env steps as the agent's training
(training.total_steps; --budget overrides) and never see the evaluation seeds.
Each line gives the mean return, its 95 % Student-t interval, and the env steps the
search took. A trained agent has learned something only where it beats all four.

CONFIG is a YAML file or the name of a packaged experiment (as for hhml-train
--config, e.g. quickstart); OVERRIDES are section.key=value or group=name, e.g.
training.eval_episodes=10. --config-dir DIR adds your own config groups and
experiments, searched before the packaged ones; --print-config prints the
resolved config as YAML and exits. The name of each baseline is printed on
stderr when its search starts; --no-progress or -q (only the table) turn that off.

\b
Examples:
  hhml-baselines configs/experiment/quickstart.yaml
  hhml-baselines quickstart --print-config
  hhml-baselines configs/experiment/quickstart.yaml training.eval_episodes=10 \\
      --json results/baselines/quickstart.json
  hhml-baselines configs/experiment/quickstart.yaml --only midpoint,constant --budget 2000
"""

_EPILOG = exit_codes_epilog(
    {0: "done", 1: "error while running", 2: "invalid invocation or config"}
)


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    fail(_PROG, message, code)


def format_table(results: list[Any]) -> str:
    """The baselines as an aligned text table (one line each)."""
    lines = [f"{'baseline':<10} {'return':>10} {'95% interval':>22} {'search env steps':>17}"]
    for r in results:
        ci = (
            "n/a (1 episode)"
            if r.interval is None
            else f"[{r.interval[0]:.4g}, {r.interval[1]:.4g}]"
        )
        lines.append(f"{r.name:<10} {r.mean:>10.4g} {ci:>22} {r.search_env_steps:>17d}")
    return "\n".join(lines)


@click.command(help=_HELP, epilog=_EPILOG, context_settings=CONTEXT_SETTINGS)
@click.argument("config", type=click.Path(path_type=Path))
@click.argument("overrides", nargs=-1)
@click.option(
    "--budget", type=int, default=None, help="Env steps per search [training.total_steps]."
)
@click.option("--segments", type=int, default=4, show_default=True, help="Schedule segments.")
@click.option("--population", type=int, default=None, help="CMA-ES candidates per generation.")
@click.option("--seed", type=int, default=None, help="Seed of the searches [training.seed].")
@click.option("--only", default=None, help="Comma-separated subset, e.g. midpoint,constant.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Also write JSON here.")
@click.option(
    "--config-dir",
    "config_dir",
    type=click.Path(path_type=Path),
    help="Directory of your own config groups, searched before the packaged configs.",
)
@click.option("--print-config", is_flag=True, help="Print the resolved config as YAML and exit.")
@common_options(_PROG)
def main(
    config: Path,
    overrides: tuple[str, ...],
    budget: int | None,
    segments: int,
    population: int | None,
    seed: int | None,
    only: str | None,
    json_path: Path | None,
    config_dir: Path | None,
    print_config: bool,
) -> None:
    """Entry point of ``hhml-baselines`` (see ``--help``)."""
    from hhml.config.loader import dump_config, load_config, resolve_config
    from hhml.ml.baselines import BASELINES, run_baselines
    from hhml.utils.atomic_io import atomic_write_text

    names = list(BASELINES)
    if only is not None:
        names = [n.strip() for n in only.split(",") if n.strip()]
        if not names:
            _fail(f"--only {only!r} names no baseline; valid: {', '.join(BASELINES)}")
    if budget is not None and budget < 1:
        _fail(f"--budget {budget}: give a positive number of env steps")
    try:
        config_file = resolve_config(config, config_dir)
    except HHmLError as exc:
        _fail(f"CONFIG {exc}")
    try:
        cfg = load_config(config_file, list(overrides), config_dir=config_dir)
        if print_config:
            click.echo(dump_config(cfg), nl=False)
            return
    except HHmLError as exc:
        _fail(str(exc))

    def announce(line: str) -> None:
        if show_progress():
            click.echo(line, err=True)

    try:
        results = run_baselines(
            cfg,
            names,
            budget=budget,
            segments=segments,
            population=population,
            seed=seed,
            progress=announce,
        )
    except HHmLError as exc:
        _fail(str(exc))
    except Exception as exc:  # a failure while running, not a usage error
        _fail(f"{type(exc).__name__}: {exc}", EXIT_ERROR)
    click.echo(format_table(results))
    if json_path is not None:
        payload = {
            "config": str(config),
            "overrides": list(overrides),
            "eval_seed": cfg.training.eval_seed,
            "eval_episodes": cfg.training.eval_episodes,
            "baselines": [r.to_dict() for r in results],
        }
        atomic_write_text(json_path, json.dumps(payload, indent=2) + "\n")
        say(f"wrote {json_path}", err=True)
