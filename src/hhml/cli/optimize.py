"""``hhml-optimize``: an Optuna hyperparameter search whose trials are training runs.

Exit codes: 0 the study holds the requested trials; 1 an error while running (the
study and its finished trials stay; run the command again to continue); 2 invalid
invocation, search space, config or storage, or Optuna missing (one line, no trial
started); 130 interrupted by Ctrl-C / SIGTERM (the running trial is marked FAIL).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import NoReturn

import click

from hhml.cli.common import (
    CONTEXT_SETTINGS,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    common_options,
    fail,
    say,
    verbosity,
)
from hhml.errors import HHmLError

_PROG = "hhml-optimize"
#: The base config without --config (as hhml-train).
_DEFAULT_EXPERIMENT = "quickstart"

_HELP = """Search agent/training hyperparameters with Optuna; every trial is an ordinary
training run directory.

SEARCH_SPACE is a YAML file (configs/search/*.yaml) naming the tuned config keys
with their distributions (float, int, categorical) and the study's settings
(metric, sampler, pruner); docs/optimize.md describes it. --config and OVERRIDES
(section.key=value or group=name; the grammar of docs/configuration.md) give the
base config of every trial, as for hhml-train: --config is a YAML file or the name
of a packaged experiment (quickstart, the default), and --config-dir DIR adds a
directory of your own config groups and experiments, searched first.

Trials go to <run-root>/<study>/trial-NNNN (run-root: training.run_root of the
config). Each evaluation (training.eval_every) is reported to the pruner; a pruned
trial stops there (Optuna state PRUNED, metrics.json status "pruned"). The metric
(default final_eval.return_mean of metrics.json) is maximised.

The study is kept in --storage (default sqlite:///<run-root>/<study>/study.db).
Processes given the same storage and --study share the work, on one machine (SQLite)
or on several (an RDB server, e.g. postgresql://user:pass@host/db). --trials N is the
number of finished (complete or pruned) trials the study must hold in total; running
the command again continues a stopped study. A running trial whose worker was killed
is marked FAIL once its heartbeat is older than twice --heartbeat seconds, and
replaced.

\b
Examples:
  hhml-optimize configs/search/td3_quickstart.yaml --config quickstart --trials 20
  hhml-optimize configs/search/td3_quickstart.yaml \\
      --config configs/experiment/quickstart.yaml --trials 40 \\
      --storage postgresql://hhml:secret@db.lan/hhml --study td3-qs --workers-note

Exit codes: 0 done, 1 error while running, 2 invalid invocation, search space or
config, 130 interrupted.
"""


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    fail(_PROG, message, code)


def _config_file(config: Path | None, config_dir: Path | None) -> tuple[Path, str]:
    """The base config (``--config`` resolved: a file or an experiment; else the quickstart)
    and the line saying so ('' with ``--config``), to say once the config is valid.

    Raises
    ------
    ConfigError
        ``--config`` names neither a file nor an experiment, or ``--config-dir`` is no
        directory.
    """
    from hhml.config.loader import resolve_config
    from hhml.errors import ConfigError

    if config is None:
        path = resolve_config(_DEFAULT_EXPERIMENT, config_dir)
        return path, f"{_PROG}: no --config: using the {_DEFAULT_EXPERIMENT} experiment ({path})"
    try:
        return resolve_config(config, config_dir), ""
    except ConfigError as exc:
        raise ConfigError(f"--config {exc}") from None


def _join_command(
    space: Path,
    config: Path | None,
    config_dir: Path | None,
    overrides: tuple[str, ...],
    trials: int,
    storage: str,
    study: str,
    heartbeat: int,
) -> str:
    from hhml.ml.training.optimize import redact_url

    args = [_PROG, str(space)]
    if config is not None:
        args += ["--config", str(config)]
    if config_dir is not None:
        args += ["--config-dir", str(config_dir)]
    args += [*overrides, "--trials", str(trials), "--storage", redact_url(storage)]
    args += ["--study", study, "--heartbeat", str(heartbeat)]
    return " ".join(shlex.quote(a) for a in args)


@click.command(help=_HELP, context_settings=CONTEXT_SETTINGS)
@click.argument("search_space", type=click.Path(path_type=Path))
@click.argument("overrides", nargs=-1)
@click.option(
    "--config",
    type=click.Path(path_type=Path),
    default=None,
    help="Base config: a YAML file or a packaged experiment name [quickstart].",
)
@click.option(
    "--config-dir",
    "config_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Directory of your own config groups and experiments, searched first.",
)
@click.option("--trials", type=int, required=True, help="Finished trials the study must hold.")
@click.option("--storage", default=None, help="Optuna RDB URL [sqlite file in the study dir].")
@click.option("--study", "study_name", default=None, help="Study name [the file's study.name].")
@click.option(
    "--run-root", type=click.Path(path_type=Path), default=None, help="[training.run_root]"
)
@click.option(
    "--heartbeat",
    type=int,
    default=60,
    show_default=True,
    help="Seconds between heartbeats of a running trial (stale after twice this).",
)
@click.option(
    "--max-failures",
    type=int,
    default=10,
    show_default=True,
    help="Stop after this many failed trials in a row.",
)
@click.option(
    "--workers-note",
    is_flag=True,
    help="Validate, then print the command that adds a worker to this study; run nothing.",
)
@common_options(_PROG)
def main(
    search_space: Path,
    overrides: tuple[str, ...],
    config: Path | None,
    config_dir: Path | None,
    trials: int,
    storage: str | None,
    study_name: str | None,
    run_root: Path | None,
    heartbeat: int,
    max_failures: int,
    workers_note: bool,
) -> None:
    quiet = verbosity() < 0
    try:
        from hhml.config.loader import default_config_dir
        from hhml.ml.training.optimize import (
            check_against_config,
            default_storage_url,
            load_search_space,
            require_optuna,
            run_study,
        )

        require_optuna()
        if trials < 1:
            _fail(f"--trials {trials}: give a positive number of trials")
        if heartbeat < 1:
            _fail(f"--heartbeat {heartbeat}: give a whole number of seconds >= 1")
        if max_failures < 1:
            _fail(f"--max-failures {max_failures}: give a positive number")
        config_file, notice = _config_file(config, config_dir)
        space = load_search_space(search_space)
        with default_config_dir(config_dir):
            base = check_against_config(space, config_file, list(overrides))
    except HHmLError as exc:
        _fail(str(exc))
    if notice:  # said once the config is valid: a usage error stays one line
        say(notice, err=True)
    name = study_name or space.study.name
    root = run_root if run_root is not None else Path(base.training.run_root)
    if workers_note:
        url = storage or default_storage_url(root / name)
        click.echo(
            "# run on each machine that should work on this study (same search space, "
            "config and overrides; the password is elided):"
        )
        command = _join_command(
            search_space, config, config_dir, overrides, trials, url, name, heartbeat
        )
        click.echo(command)
        if storage is None:
            click.echo(
                "# the default SQLite file is shared only by processes on this machine; "
                "for several machines give --storage postgresql://USER:PASS@HOST/DB"
            )
        return

    def announce(line: str) -> None:
        if not quiet:
            click.echo(f"{_PROG}: {line}", err=True)

    try:
        with default_config_dir(config_dir):
            outcome = run_study(
                space,
                config_file,
                list(overrides),
                trials=trials,
                storage=storage,
                study_name=name,
                run_root=root,
                heartbeat_s=heartbeat,
                max_failures=max_failures,
                announce=announce,
            )
    except KeyboardInterrupt:
        _fail("interrupted; run the same command again to continue the study", EXIT_INTERRUPTED)
    except HHmLError as exc:
        # a bad config/storage is found before any trial runs; a later error is a run error
        from hhml.errors import ConfigError

        _fail(str(exc), EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_ERROR)
    except Exception as exc:  # a failure while running, not a usage error
        _fail(f"{type(exc).__name__}: {exc}; run the same command again to continue", EXIT_ERROR)
    counts = ", ".join(f"{k.lower()} {v}" for k, v in sorted(outcome.counts.items()))
    click.echo(f"study {outcome.study_name} ({outcome.storage}): {counts}")
    if outcome.best is not None:
        best = outcome.best
        params = ", ".join(f"{k}={v}" for k, v in best["params"].items())
        click.echo(f"best: trial {best['number']} value {best['value']:.6g}: {params}")
        click.echo(f"      {best['run_dir']}")
    else:
        click.echo("best: none (no trial completed)")
    announce(f"summary: {outcome.study_dir / 'study_summary.md'}")


if __name__ == "__main__":
    main()
