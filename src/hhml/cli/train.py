"""``hhml-train``: train an RL agent from a config and write a run directory.

Exit codes: 0 training finished; 1 training stopped by an error after it had
started (the last checkpoint stays resumable); 2 the run could not start
(invalid config or override, a config whose estimated memory exceeds what the
device has free, unknown device, unwritable or non-empty run directory, unusable
checkpoint) — nothing is written then; 130 interrupted by Ctrl-C / SIGTERM after
writing a final checkpoint.
"""

from __future__ import annotations

import shlex
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from hhml.cli.common import (
    CONTEXT_SETTINGS,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    common_options,
    exit_codes_epilog,
    fail,
    say,
    show_progress,
    verbosity_flags,
)
from hhml.errors import ConfigError, HHmLError

# torch and the training code are imported inside the functions: --help stays fast.
if TYPE_CHECKING:
    from hhml.config.schema import HHmLConfig
    from hhml.ml.training import TrainResult
    from hhml.ml.training.distributed import DistContext
    from hhml.ml.training.run_dir import RunDirectory
    from hhml.ml.training.sweep import SweepSpec
    from hhml.monitoring.server import DashboardServer

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_USAGE", "main", "summary_table"]

#: ``hhml.ml.training.RESUMABLE_KEYS``, spelled out for --help without importing torch
#: (a test checks that both agree).
_RESUMABLE_KEYS_HELP = (
    "training.total_steps",
    "training.device",
    "training.progress_bar",
    "training.tensorboard",
)

_HELP = f"""Train an RL agent on an HHmL environment and write a run directory.

OVERRIDES are 'section.key=value' (e.g. training.total_steps=50000,
agent.algorithm=sac, env.id=Pendulum-v1) or 'group=name' (e.g. agent=sac,
selecting configs/agent/sac.yaml); they apply after the config file, in order.
The grammar is Hydra's (docs/configuration.md): '+key=value' and '++key=value'
are accepted, '~section.key' resets a key to its schema default, '~group' drops
a group, '[a,b]' is a list (training.baselines=[random,midpoint]), and values
may use interpolations such as training.eval_seed=${{training.seed}}.

The configs ship inside the package: group files (agent=sac, lattice=env, ...)
come from the packaged configs unless the config file lies in a configs/
directory of its own, and --config NAME, where NAME is not a file, is the
packaged experiment configs/experiment/NAME.yaml (e.g. --config quickstart).
--config-dir DIR adds a directory of your own searched first: its group files
(DIR/agent/mine.yaml for agent=mine) and experiments (DIR/experiment/NAME.yaml)
are added to the packaged ones and win over those of the same name.

Without --config, hhml-train trains the packaged quickstart experiment (TD3
on a two-strip Möbius stack, 4000 env steps, a few minutes on a CPU), with the
OVERRIDES if any, and says so in one line on stderr
(hhml-train training.total_steps=200). --print-config (or Hydra's --cfg job)
prints the resolved config as YAML (what config.yaml of the run would hold) and
exits without training.

With -m/--multirun, OVERRIDES whose value lists several values separated by
commas (agent=td3,sac agent.gamma=0.9,0.99) run the Cartesian product of those
values as a sweep, like --sweep: one run directory per combination under
<run_root>/<training.run_name or multirun-DATE-TIME>/ and one sweep summary;
training.seed=0,1,2 gives the seeds. Run the same command with the same
training.run_name again to continue an interrupted multirun.

Everything is validated first — config, device, a memory pre-flight (the
estimated peak memory of the run, docs/memory.md, against what the device has
free), environment and agent are built — and only then is the run directory
created, with config.yaml as its first file. The directory then receives
metrics.jsonl, metrics.json, model_last.pt (exact resume), model_best.pt,
tensorboard/ and snapshots/.

Before training, a uniformly random policy is evaluated on the evaluation
seeds (baseline_return); the final table compares the first, best and final
evaluations with it.

With --dashboard, a live web dashboard of this run (the one of hhml-monitor:
reward, reward terms, vortex density vs null, losses, steps/s, the 23
parameters, the newest field snapshot, config and status) is served at
http://127.0.0.1:8765/ while training runs, from a background thread that only
reads the run directory; it stops when training ends (hhml-monitor RUN_DIR
shows a finished run). A busy --dashboard-port is reported before anything is
written (--dashboard-port 0 picks a free port).

With --nproc N (N > 1), N processes train one agent (data parallel, the
way DistributedDataParallel trains a network): each rank steps its own
env.num_envs environments with its own seeds and keeps its own replay buffer,
gradients are averaged over the ranks before every optimiser step (gloo on
CPU, NCCL on CUDA with one GPU per rank), and rank 0 alone evaluates and writes
the run directory. training.total_steps counts the steps of all ranks. The
processes are started by torch.distributed's elastic launcher; on a cluster
run `torchrun --nnodes ... --nproc-per-node ... -m hhml.cli.train ...` instead.
A run written by N ranks resumes with --nproc N.

With --sweep FILE, a seeded sweep or ensemble runs instead of one run: the
file (see configs/sweep/) names a base config, overrides, a grid of values and
a list of seeds; every trial is an ordinary run directory under
<run_root>/<sweep name>/, and sweep_summary.md/.json there collect one table
(mean, std and standard error of the evaluation returns over the seeds of each
grid point). Completed trials are skipped and interrupted ones resumed when the
sweep is run again; with --nproc N the trials are spread over N processes.

Ctrl-C (or SIGTERM) finishes the current step, writes a checkpoint and exits
with code 130; resume with --resume RUN_DIR. On resume only
{", ".join(_RESUMABLE_KEYS_HELP)} may be overridden. A run killed before its first
checkpoint (no model_last.pt) is restarted from step 0 by --resume, after saying
so: its config.yaml stays, the files of its first steps (metrics.jsonl,
metrics.json, model_best.pt, tensorboard/, snapshots/) are removed.

The progress of a run is a bar on a terminal and, in a log file or pipe, a line
every 30 s (step, steps/s, time left, reward); --no-progress (or the config key
training.progress_bar=false) turns it off. -q prints only the summary table,
warnings and errors; -v adds the debug log of the hhml library.

\b
Examples:
  hhml-train
  hhml-train --config quickstart training.total_steps=1000 --print-config
  hhml-train --config quickstart --config-dir my_configs agent=mine
  hhml-train --config configs/experiment/quickstart.yaml
  hhml-train --config configs/experiment/quickstart.yaml training=quick agent.algorithm=sac \\
      --seed 3 --device cpu --run-dir results/runs/sac-s3
  hhml-train --resume results/runs/sac-s3 training.total_steps=100000
  hhml-train --config configs/experiment/quickstart.yaml --nproc 2 --run-dir results/runs/ddp
  hhml-train --sweep configs/sweep/quickstart_seeds.yaml --nproc 2
  hhml-train training.total_steps=200
  hhml-train -m agent=td3,sac training.seed=0,1 training.run_name=td3-vs-sac
"""

_EPILOG = exit_codes_epilog(
    {
        0: "finished",
        1: "error during training",
        2: "invalid invocation (nothing written)",
        130: "interrupted (checkpoint written)",
    }
)


_PROG = "hhml-train"
#: The experiment a bare ``hhml-train`` (no --config, no OVERRIDES) trains.
_BARE_RUN_EXPERIMENT = "quickstart"
#: How long the ranks of a sweep wait for each other's last trial (7 days).
_SWEEP_TIMEOUT_S = 7 * 24 * 3600.0


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    fail(_PROG, message, code)


def _format_eval(value: float | None, step: int | None, baseline: float | None) -> str:
    if value is None:
        return "-"
    text = f"{value:12.4g}"
    if step is not None:
        text += f"  at step {step}"
    if baseline is not None:
        text += f"  ({value - baseline:+.4g} vs baseline)"
    return text


def summary_table(result: TrainResult) -> str:
    """The end-of-run table: steps, time, baseline and first/best/final evaluations."""
    base = result.baseline.return_mean if result.baseline is not None else None
    rate = result.summary.get("steps_per_sec")
    rows = [
        ("run directory", str(result.run_dir)),
        ("status", f"{result.status} at step {result.step} of {result.total_steps}"),
        (
            "wall time",
            f"{result.wall_time_s:.1f} s" + (f" ({rate:.1f} steps/s)" if rate else ""),
        ),
        ("baseline return", _format_eval(base, None, None) + "  (uniformly random actions)"),
    ]
    for label, evaluation in (
        ("first eval", result.first_eval),
        ("best eval", result.best_eval),
        ("final eval", result.final_eval),
    ):
        if evaluation is None:
            rows.append((label, "-"))
        else:
            text = _format_eval(evaluation.return_mean, evaluation.step, base)
            if label == "final eval" and evaluation.interval is not None:
                text += f"  95% [{evaluation.interval[0]:.4g}, {evaluation.interval[1]:.4g}]"
            rows.append((label, text))
    verdicts = result.summary.get("agent_vs_baselines") or {}
    for record in result.summary.get("baselines") or []:
        name = str(record["name"])
        if "skipped" in record:
            rows.append((f"{name} baseline", f"skipped: {record['skipped']}"))
            continue
        text = f"{record['return_mean']:12.4g}"
        if record.get("return_ci95"):
            low, high = record["return_ci95"]
            text += f"  95% [{low:.4g}, {high:.4g}]"
        if record.get("search_env_steps"):
            text += f"  (searched with {record['search_env_steps']} env steps)"
        if name in verdicts:
            text += f"  -> {verdicts[name]}"
        rows.append((f"{name} baseline", text))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


def _start_dashboard(root: Path, host: str, sock: socket.socket) -> DashboardServer | None:
    """Serve the dashboard of ``root`` in a daemon thread; None (with a warning) if it fails."""
    from hhml.cli.monitor import warn_if_exposed
    from hhml.monitoring.server import DashboardServer

    try:
        server = DashboardServer([root], sock=sock)
        url = server.start()
    except HHmLError as exc:  # training goes on without the dashboard
        sock.close()
        click.echo(f"hhml-train: warning: dashboard not started: {exc}", err=True)
        return None
    warn_if_exposed(host, "hhml-train")
    click.echo(f"dashboard: {url}")  # also with -q: the address is what --dashboard asked for
    return server


@click.command(help=_HELP, epilog=_EPILOG, context_settings=CONTEXT_SETTINGS)
@click.argument("overrides", nargs=-1, metavar="[OVERRIDES]...")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="YAML config file (e.g. configs/experiment/quickstart.yaml), or the name of a "
    "packaged experiment (e.g. quickstart). Default without OVERRIDES: quickstart.",
)
@click.option(
    "--config-dir",
    "config_dir",
    type=click.Path(path_type=Path),
    help="Directory of your own config groups (DIR/agent/mine.yaml, DIR/experiment/...), "
    "searched before the packaged configs.",
)
@click.option(
    "--print-config",
    is_flag=True,
    help="Print the resolved config as YAML and exit without training.",
)
@click.option(
    "--cfg",
    "cfg_kind",
    type=click.Choice(["job"]),
    help="Hydra's spelling of --print-config: --cfg job.",
)
@click.option(
    "-m",
    "--multirun",
    is_flag=True,
    help="Run the Cartesian product of the comma-separated OVERRIDES values "
    "(agent=td3,sac training.seed=0,1) as a sweep with one summary table.",
)
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Continue the run in this directory from its model_last.pt (exactly).",
)
@click.option(
    "--device",
    help="auto | cpu | cuda | cuda:N; sets training.device (default from the config: auto).",
)
@click.option(
    "--run-dir",
    type=click.Path(path_type=Path),
    help="Run directory to create (must not exist or be empty); default "
    "<training.run_root>/<training.run_name or a timestamped id>.",
)
@click.option("--seed", type=int, help="Sets training.seed (global RNGs, agent, envs).")
@click.option(
    "--dashboard",
    is_flag=True,
    help="Serve a live web dashboard of the run while training (see hhml-monitor).",
)
@click.option(
    "--dashboard-host",
    default="127.0.0.1",
    show_default=True,
    help="Address the dashboard listens on (a non-loopback one prints a warning).",
)
@click.option(
    "--dashboard-port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port of the dashboard (0: any free port).",
)
@click.option(
    "--sweep",
    "sweep_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Run the seeded sweep/ensemble of this file (configs/sweep/*.yaml) and write "
    "one summary table; OVERRIDES apply to every trial.",
)
@click.option(
    "--nproc",
    default=1,
    show_default=True,
    type=click.IntRange(1, 1024),
    help="Train one agent with this many processes (torch.distributed: gloo on CPU, "
    "NCCL on CUDA with one GPU each); rank 0 writes the run directory.",
)
@common_options("hhml-train")
def main(
    overrides: tuple[str, ...],
    config_path: Path | None,
    config_dir: Path | None,
    print_config: bool,
    cfg_kind: str | None,
    multirun: bool,
    resume_dir: Path | None,
    device: str | None,
    run_dir: Path | None,
    seed: int | None,
    dashboard: bool,
    dashboard_host: str,
    dashboard_port: int,
    sweep_path: Path | None,
    nproc: int,
) -> None:
    """Entry point of ``hhml-train``."""
    global _PROG
    from hhml.config.loader import dump_config, load_config
    from hhml.ml.training import Trainer
    from hhml.ml.training.distributed import context_from_env, shutdown_distributed
    from hhml.ml.training.run_dir import open_run_dir, unstarted_run

    extra = list(overrides)
    if not show_progress():  # --no-progress or -q; the config key works as well
        extra.append("training.progress_bar=false")
    if device is not None:
        extra.append(f"training.device={device}")
    if seed is not None:
        extra.append(f"training.seed={seed}")
    try:
        ctx = context_from_env()
    except HHmLError as exc:
        _fail(str(exc))
    if ctx.enabled:
        _PROG = f"hhml-train[rank {ctx.rank}]"
        if nproc not in (1, ctx.world_size):
            _fail(f"--nproc {nproc} contradicts the launcher's WORLD_SIZE={ctx.world_size}")
    print_config = print_config or cfg_kind is not None
    if sweep_path is not None:
        if config_path or resume_dir or run_dir or seed is not None or dashboard:
            _fail(
                "--sweep takes its configs, seeds and directories from the sweep file; "
                "do not combine it with --config, --resume, --run-dir, --seed or --dashboard"
            )
        if print_config or multirun:
            _fail(
                "--sweep takes its configs from the sweep file; do not combine it with "
                "--print-config or -m/--multirun"
            )
        _sweep_file(sweep_path, config_dir, extra, nproc, ctx)
        return
    if multirun:
        if resume_dir or run_dir or dashboard or print_config:
            _fail(
                "-m/--multirun writes one run directory per combination under the sweep "
                "directory; do not combine it with --resume, --run-dir, --dashboard or "
                "--print-config"
            )
        path, notice = _config_file(config_path, config_dir, overrides)
        _multirun(path, notice, config_dir, extra, nproc, ctx)
        return
    if resume_dir is not None and config_dir is not None:
        _fail(
            f"--resume continues the run with its resolved config.yaml; --config-dir "
            f"{config_dir} does not apply to it"
        )
    notice = ""  # said once the config is valid: a usage error stays one line
    if resume_dir is None:
        config_path, notice = _config_file(config_path, config_dir, overrides)
    if print_config:
        try:
            if resume_dir is not None:
                cfg = load_config(open_run_dir(resume_dir).config, extra)
            else:
                cfg = load_config(config_path, extra, config_dir=config_dir)
            text = dump_config(cfg)
        except HHmLError as exc:
            _fail(str(exc))
        _say_notice(notice)
        click.echo(text, nl=False)
        return
    if not ctx.enabled and nproc > 1:
        _launch_ranks(nproc, config_path, config_dir, resume_dir, run_dir, extra, dashboard, notice)
        return
    dashboard_socket: socket.socket | None = None
    if dashboard:
        from hhml.monitoring.server import bind_socket

        try:  # bound first: a busy port is reported before the run directory exists
            dashboard_socket = bind_socket(dashboard_host, dashboard_port)
        except HHmLError as exc:
            _fail(f"--dashboard: {exc}")
    restarted = False
    try:
        if resume_dir is not None:
            if config_path is not None or run_dir is not None:
                _fail(
                    "--resume continues a run with its own config.yaml and directory; "
                    "do not combine it with --config or --run-dir"
                )
            unstarted = unstarted_run(resume_dir)
            if unstarted is not None:
                if ctx.enabled:
                    _fail(
                        f"{resume_dir} stopped before its first checkpoint; restart it with "
                        f"hhml-train --resume {resume_dir} --nproc {ctx.world_size} "
                        "(not under torchrun)"
                    )
                cfg = _restart(unstarted, extra, 1)
                restarted = True
                trainer = Trainer.create(cfg, run_dir=unstarted.root, dist=ctx)
            else:
                cfg = load_config(open_run_dir(resume_dir).config, extra)
                if ctx.enabled:
                    _join(ctx, cfg.training.device)
                else:
                    _preflight(cfg, 1)
                trainer = Trainer.resume(resume_dir, extra, dist=ctx)
        else:
            cfg = load_config(config_path, extra, config_dir=config_dir)
            if not ctx.enabled:  # the ranks of --nproc were checked by the launcher
                _preflight(cfg, 1)
            _join(ctx, cfg.training.device)
            trainer = Trainer.create(cfg, run_dir=run_dir, dist=ctx)
    except HHmLError as exc:
        if dashboard_socket is not None:
            dashboard_socket.close()
        shutdown_distributed()
        _fail(str(exc))
    action = "run directory"
    if resume_dir is not None:
        action = "restarted run directory" if restarted else "resuming"
    if ctx.is_main:
        _say_notice(notice)
        say(f"{action}: {trainer.run.root} (step {trainer.state.step})")
    server = None
    if dashboard_socket is not None:
        server = _start_dashboard(trainer.run.root, dashboard_host, dashboard_socket)
    try:
        result = trainer.train()
    except HHmLError as exc:
        _fail(
            f"training stopped at step {trainer.state.step}: {exc}; the last checkpoint in "
            f"{trainer.run.root} can be resumed",
            EXIT_ERROR,
        )
    except KeyboardInterrupt:
        _fail(
            f"aborted at step {trainer.state.step}; resume from the last checkpoint with "
            f"hhml-train --resume {trainer.run.root}{_nproc_flag(ctx)}",
            EXIT_INTERRUPTED,
        )
    finally:
        trainer.close()
        shutdown_distributed()
        if server is not None:
            server.stop()
            say(f"dashboard stopped; browse the run with: hhml-monitor {trainer.run.root}")
    if not ctx.is_main:
        return
    click.echo(summary_table(result))
    if result.status == "interrupted":
        click.echo(
            f"interrupted; continue with: hhml-train --resume {result.run_dir}{_nproc_flag(ctx)}"
        )
        sys.exit(EXIT_INTERRUPTED)


def _config_file(
    config_path: Path | None, config_dir: Path | None, overrides: tuple[str, ...]
) -> tuple[Path, str]:
    """The config file of a new run (``--config`` resolved, else the quickstart) and the
    line that says so on stderr ('' with ``--config``).

    ``--config`` may be a file or an experiment name (:func:`resolve_config`); without
    ``--config`` the packaged (or ``--config-dir``) quickstart experiment is used, with
    the OVERRIDES if any. The caller says the line (:func:`_say_notice`) once the config
    has been validated, so that a usage error stays one line. Exits with code 2 if
    ``--config`` names neither.
    """
    from hhml.config.loader import resolve_config

    try:
        if config_path is None:
            path = resolve_config(_BARE_RUN_EXPERIMENT, config_dir)
            what = "applying the OVERRIDES to" if overrides else "using"
            notice = f"{_PROG}: no --config: {what} the {_BARE_RUN_EXPERIMENT} experiment ({path})"
            return path, notice
        return resolve_config(config_path, config_dir), ""
    except ConfigError as exc:
        _fail(f"--config {exc}" if config_path is not None else str(exc))


def _say_notice(notice: str) -> None:
    """Say the line of :func:`_config_file` on stderr (nothing for '' or with -q)."""
    if notice:
        say(notice, err=True)


def _preflight(cfg: HHmLConfig, processes: int) -> None:
    """Memory pre-flight of a run on its resolved device (``processes`` sharing a CPU).

    Raises
    ------
    ConfigError
        The estimated peak memory exceeds the free memory (see :func:`check_memory`).
    DeviceError
        ``training.device`` is unavailable.
    """
    from hhml.config.memory import check_memory
    from hhml.ml.training.distributed import SINGLE_PROCESS, rank_device

    device = rank_device(cfg.training.device, SINGLE_PROCESS)
    check_memory(cfg, device, processes=processes if device.type == "cpu" else 1)


def _restart(run: RunDirectory, extra: list[str], processes: int) -> HHmLConfig:
    """Prepare a run killed before its first checkpoint for a restart from step 0.

    Loads its ``config.yaml`` with the resume overrides (only resumable keys may
    change), runs the memory pre-flight, says on stderr what happens, removes the
    files of the failed start and stores the overrides in ``config.yaml``.

    Raises
    ------
    ConfigError
        An override of a non-resumable key, or a failed memory pre-flight.
    CheckpointError
        The directory holds foreign files, or a file cannot be removed.
    """
    from hhml.config.loader import config_to_dict, load_config, save_config
    from hhml.ml.training import RESUMABLE_KEYS
    from hhml.ml.training.run_dir import clear_unstarted_run

    stored = load_config(run.config)
    cfg = load_config(run.config, extra)
    before, after = config_to_dict(stored), config_to_dict(cfg)
    changed = [
        f"{section}.{key}"
        for section, values in before.items()
        for key, value in values.items()
        if after[section][key] != value and f"{section}.{key}" not in RESUMABLE_KEYS
    ]
    if changed:
        raise ConfigError(
            f"cannot change {', '.join(repr(k) for k in changed)} when resuming {run.root}; "
            f"resumable keys: {', '.join(RESUMABLE_KEYS)}"
        )
    _preflight(cfg, processes)
    removed = clear_unstarted_run(run)
    if cfg != stored:
        save_config(cfg, run.config)
    detail = f"; removed {', '.join(removed)}" if removed else ""
    click.echo(
        f"{_PROG}: {run.root} stopped before its first checkpoint (no model_last.pt): "
        f"restarting it from step 0 with its config.yaml{detail}",
        err=True,
    )
    return cfg


def _sweep_file(
    path: Path, config_dir: Path | None, extra: list[str], nproc: int, ctx: DistContext
) -> None:
    """``--sweep FILE``: the sweep of a file (:func:`_sweep`)."""
    from hhml.ml.training.sweep import load_sweep

    def load(more: list[str]) -> SweepSpec:
        return load_sweep(path, [*extra, *more], config_dir=config_dir)

    args = ["--sweep", str(path)]
    if config_dir is not None:
        args += ["--config-dir", str(config_dir)]
    _sweep(load, [*args, *verbosity_flags(), *extra], f"hhml-train --sweep {path}", nproc, ctx)


def _multirun_name(extra: list[str]) -> tuple[str, list[str]]:
    """The directory name of a ``-m`` sweep (``training.run_name``, else a timestamp)
    and the overrides without ``training.run_name``."""
    import time

    from hhml.config.overrides import parse_override

    name = time.strftime("multirun-%Y%m%d-%H%M%S")
    rest: list[str] = []
    for text in extra:
        item = parse_override(text)
        if item.name == "training.run_name" and item.prefix != "~" and item.value:
            name = item.value
        else:
            rest.append(text)
    return name, rest


def _multirun(
    config_path: Path,
    notice: str,
    config_dir: Path | None,
    extra: list[str],
    nproc: int,
    ctx: DistContext,
) -> None:
    """``-m/--multirun``: the Cartesian product of the OVERRIDES values (:func:`_sweep`)."""
    from hhml.ml.training.sweep import multirun_sweep

    try:
        name, rest = _multirun_name(extra)
    except HHmLError as exc:
        _fail(str(exc))

    def load(more: list[str]) -> SweepSpec:
        return multirun_sweep(config_path, [*rest, *more], name=name, config_dir=config_dir)

    args = ["-m", "--config", str(config_path)]
    if config_dir is not None:
        args += ["--config-dir", str(config_dir)]
    args += [*verbosity_flags(), *rest, f"training.run_name={name}"]
    hint = " ".join([_PROG, *(shlex.quote(a) for a in args)])
    _sweep(load, args, hint, nproc, ctx, notice)


def _sweep(
    load: Callable[[list[str]], SweepSpec],
    launch_args: list[str],
    rerun: str,
    nproc: int,
    ctx: DistContext,
    notice: str = "",
) -> None:
    """Validate every trial of a sweep, then run it (in ``nproc`` processes if > 1).

    ``load(more)`` builds the sweep with the overrides ``more`` added to every trial;
    ``launch_args`` are the arguments of this command for the ranks of ``--nproc``;
    ``rerun`` is the command that continues the sweep (for messages); ``notice`` is
    said once every trial is valid.
    """
    import torch

    from hhml.ml.training.distributed import init_distributed, rank_device, shutdown_distributed
    from hhml.ml.training.launch import launch_local
    from hhml.ml.training.sweep import format_summary, run_sweep, summarise_trials

    try:
        spec = load([])
        devices = {rank_device(t.cfg.training.device, ctx) for t in spec.trials}
        if not ctx.enabled:  # trials run one after another in each of nproc processes
            for trial in spec.trials:
                try:
                    _preflight(trial.cfg, nproc)
                except ConfigError as exc:
                    raise ConfigError(f"sweep trial {trial.name}: {exc}") from None
    except HHmLError as exc:
        _fail(str(exc))
    _say_notice(notice)
    if not ctx.enabled and nproc > 1:
        say(f"sweep {spec.name}: {len(spec.trials)} trials on {nproc} ranks", err=True)
        try:
            launch_local(nproc, "hhml.cli.train", launch_args)
        except HHmLError as exc:
            _fail(f"sweep failed: {exc}", getattr(exc, "exit_code", EXIT_ERROR))
        return
    if ctx.enabled:
        # Trials on CUDA run on this rank's GPU; the rows travel over gloo.
        if any(d.type == "cuda" for d in devices):
            try:
                spec = load([f"training.device=cuda:{ctx.local_rank}"])
            except HHmLError as exc:
                _fail(str(exc))
        try:  # ranks wait for each other only at the end: allow long imbalances
            init_distributed(ctx, torch.device("cpu"), timeout_s=_SWEEP_TIMEOUT_S)
        except HHmLError as exc:
            _fail(str(exc))
    else:
        say(f"sweep {spec.name}: {len(spec.trials)} trials in {spec.root}")

    def announce(message: str) -> None:
        prefix = f"[rank {ctx.rank}] " if ctx.enabled else ""
        say(prefix + message, err=True)

    try:
        rows = run_sweep(spec, ctx, announce)
    except HHmLError as exc:
        _fail(f"sweep stopped: {exc}; run it again to resume: {rerun}", EXIT_ERROR)
    except KeyboardInterrupt:
        _fail(f"sweep interrupted; run it again to continue: {rerun}", EXIT_INTERRUPTED)
    finally:
        shutdown_distributed()
    if rows is not None:
        click.echo(format_summary(spec.name, rows, summarise_trials(rows)))
        say(f"summary: {spec.root / 'sweep_summary.md'} (and sweep_summary.json)")
        if any(r["status"] != "completed" for r in rows):
            sys.exit(EXIT_INTERRUPTED)


def _check_gpus(device_spec: str, nproc: int) -> None:
    """Fail before launching if CUDA ranks would lack a GPU each."""
    import torch

    from hhml.ml.training.distributed import SINGLE_PROCESS, rank_device

    device = rank_device(device_spec, SINGLE_PROCESS)
    if device.type == "cuda" and torch.cuda.device_count() < nproc:
        _fail(
            f"--nproc {nproc} on CUDA needs one GPU per rank, but {torch.cuda.device_count()} "
            "are visible; use fewer ranks or --device cpu"
        )


def _nproc_flag(ctx: DistContext) -> str:
    """`` --nproc N`` for resume hints of an N-rank run ('' for one process)."""
    return f" --nproc {ctx.world_size}" if ctx.enabled else ""


def _join(ctx: DistContext, device_spec: str) -> None:
    """Join the process group of a distributed run (no-op for a single process)."""
    from hhml.ml.training.distributed import init_distributed, rank_device

    if ctx.enabled:
        init_distributed(ctx, rank_device(device_spec, ctx))


def _launch_ranks(
    nproc: int,
    config_path: Path | None,
    config_dir: Path | None,
    resume_dir: Path | None,
    run_dir: Path | None,
    extra: list[str],
    dashboard: bool,
    notice: str = "",
) -> None:
    """Validate what can be checked here, then start ``nproc`` ranks of this command."""
    from hhml.config.loader import load_config
    from hhml.ml.training.launch import launch_local
    from hhml.ml.training.run_dir import open_run_dir, plan_run_dir, unstarted_run

    if dashboard:
        _fail("--dashboard cannot be combined with --nproc; watch the run with hhml-monitor")
    args: list[str] = []
    try:
        if resume_dir is not None:
            if config_path is not None or run_dir is not None:
                _fail("--resume cannot be combined with --config or --run-dir")
            unstarted = unstarted_run(resume_dir)
            if unstarted is not None:
                _check_gpus(load_config(unstarted.config, extra).training.device, nproc)
                _restart(unstarted, extra, nproc)
                # the ranks start it as a new run in the directory that holds its config
                args += ["--config", str(unstarted.config), "--run-dir", str(unstarted.root)]
            else:
                run = open_run_dir(resume_dir)
                cfg = load_config(run.config, extra)
                _check_gpus(cfg.training.device, nproc)
                _preflight(cfg, nproc)
                args += ["--resume", str(resume_dir)]
        else:
            cfg = load_config(config_path, extra, config_dir=config_dir)
            _check_gpus(cfg.training.device, nproc)
            _preflight(cfg, nproc)
            # The run directory is chosen here, so every rank is told the same one.
            planned = plan_run_dir(cfg, run_dir)
            if config_path is not None:
                args += ["--config", str(config_path)]
            if config_dir is not None:
                args += ["--config-dir", str(config_dir)]
            args += ["--run-dir", str(planned)]
    except HHmLError as exc:
        _fail(str(exc))
    _say_notice(notice)
    say(f"starting {nproc} ranks (torch.distributed elastic launcher)", err=True)
    try:
        launch_local(nproc, "hhml.cli.train", [*args, *verbosity_flags(), *extra])
    except HHmLError as exc:
        code = getattr(exc, "exit_code", EXIT_ERROR)
        _fail(str(exc) if code == EXIT_INTERRUPTED else f"distributed run failed: {exc}", code)


if __name__ == "__main__":  # pragma: no cover
    main()
