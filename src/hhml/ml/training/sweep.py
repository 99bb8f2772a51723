"""Seeded parameter sweeps and ensembles: many independent training runs, one summary table.

A sweep file (``configs/sweep/*.yaml``)::

    name: quickstart-seeds                        # directory under training.run_root
    config: ../experiment/quickstart.yaml         # base config, relative to this file,
                                                  # or an experiment name (quickstart)
    overrides: [training.total_steps=2000]        # applied to every trial (optional)
    grid:                                         # cartesian product (optional)
      agent.algorithm: [td3, sac]
    seeds: [0, 1, 2]                              # every grid point runs every seed

expands into ``len(product(grid)) * len(seeds)`` trials. An experiment name and the
group files of the trials are looked up in ``config_dir`` (``--config-dir``) first,
then in the packaged configs. ``hhml-train -m key=a,b other=x,y`` builds the same kind
of sweep from the command line (:func:`multirun_sweep`). Each trial is an
ordinary run directory ``<run_root>/<name>/<trial>`` written by
:class:`~hhml.ml.training.Trainer`; every trial config is composed and validated
before the first one starts. Re-running a sweep skips completed trials and
resumes interrupted ones (from their ``model_last.pt``), so a sweep can be
stopped and continued; a trial killed before its first checkpoint (a directory
without ``model_last.pt``) restarts from step 0 instead of blocking the sweep.
With several ranks (``hhml-train --sweep F --nproc N``) trial ``i`` runs on rank
``i mod N``; rank 0 gathers the rows and writes ``sweep_summary.json`` and
``sweep_summary.md`` next to the trials: one row per trial and, per grid point, the
mean, sample standard deviation and standard error of the final and best evaluation
returns over the seeds.

Public names: ``SweepSpec``, ``Trial``, ``load_sweep``, ``multirun_sweep``,
``run_sweep``, ``summarise_trials``, ``format_summary``.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hhml.config.loader import dump_config, load_config, resolve_config
from hhml.config.overrides import parse_override, sweep_items
from hhml.config.schema import HHmLConfig
from hhml.config.yaml_io import parse_scalar, read_yaml_file
from hhml.errors import ConfigError
from hhml.ml.training.distributed import SINGLE_PROCESS, DistContext, gather_objects
from hhml.utils.atomic_io import atomic_write_text

__all__ = [
    "SweepSpec",
    "Trial",
    "format_summary",
    "load_sweep",
    "multirun_sweep",
    "run_sweep",
    "summarise_trials",
]

_KEYS = ("name", "config", "overrides", "grid", "seeds")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: Keys every trial sets itself.
_SWEEP_SETS = ("training.seed", "training.run_name")


@dataclass(frozen=True)
class Trial:
    """One run of a sweep.

    Attributes
    ----------
    index : int
        Position in the sweep (assigns the rank: ``index mod world_size``).
    name : str
        Directory name of the run, e.g. ``003_algorithm-sac_seed-1``.
    point : dict
        The grid values of this trial (``{"agent.algorithm": "sac"}``).
    seed : int
        ``training.seed`` of the run.
    overrides : tuple of str
        All overrides applied to the base config, in order.
    cfg : HHmLConfig
        The composed, validated config.
    """

    index: int
    name: str
    point: dict[str, Any]
    seed: int
    overrides: tuple[str, ...]
    cfg: HHmLConfig


@dataclass
class SweepSpec:
    """A parsed sweep file with its trials.

    Attributes
    ----------
    path : Path or None
        The sweep file (None for a ``-m`` sweep of the command line).
    name : str
        Sweep name (directory under ``training.run_root``).
    root : Path
        ``<run_root>/<name>``: where the trial directories and the summary go.
    trials : list of Trial
        Every trial, in order.
    source : str
        What defined the sweep, for messages and the summary: ``sweep file <path>`` or
        ``hhml-train -m <overrides>``.
    """

    path: Path | None
    name: str
    root: Path
    trials: list[Trial] = field(default_factory=list)
    source: str = ""


def _fail(path: Path | str, message: str) -> ConfigError:
    """A ConfigError prefixed with the sweep's source (a file path, or a description)."""
    source = f"sweep file {path}" if isinstance(path, Path) else path
    return ConfigError(f"{source}: {message}")


def _grid_points(path: Path, grid: Any) -> list[dict[str, Any]]:
    if grid is None:
        return [{}]
    if not isinstance(grid, Mapping) or not grid:
        raise _fail(path, "'grid' must map 'section.key' to a non-empty list of values")
    keys = [str(k) for k in grid]
    values = []
    for key in keys:
        choices = grid[key]
        if "." not in key:
            raise _fail(path, f"grid key {key!r} must be 'section.key' (e.g. agent.algorithm)")
        if not isinstance(choices, list) or not choices:
            raise _fail(path, f"grid key {key!r} needs a non-empty list of values")
        values.append(choices)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _trial_name(index: int, point: Mapping[str, Any], seed: int) -> str:
    parts = [f"{index:03d}"]
    for key, value in point.items():
        parts.append(f"{key.split('.')[-1]}-{_UNSAFE.sub('_', _value_text(value))}")
    parts.append(f"seed-{seed}")
    return "_".join(parts)


def _base_config(file: Path, base: str, config_dir: str | Path | None) -> Path:
    """The base config of a sweep file: a path relative to the file, or an experiment name."""
    base_path = (file.parent / base).resolve()
    if base_path.is_file():
        return base_path
    if base.endswith((".yaml", ".yml")) or "/" in base or "\\" in base:
        raise _fail(file, f"'config' {base!r} does not exist (looked at {base_path})")
    try:
        return resolve_config(base, config_dir)
    except ConfigError as exc:
        raise _fail(
            file,
            f"'config' {base!r} is neither a file (looked at {base_path}) nor an experiment: {exc}",
        ) from None


def load_sweep(
    path: str | Path,
    extra_overrides: Sequence[str] = (),
    *,
    config_dir: str | Path | None = None,
) -> SweepSpec:
    """Read a sweep file and compose and validate the config of every trial.

    Parameters
    ----------
    path
        The sweep YAML file.
    extra_overrides
        Overrides applied to every trial after the file's own (from the command line);
        ``training.seed`` and ``training.run_name`` are set by the sweep and may not be
        overridden.
    config_dir
        A user config directory (``--config-dir``) searched first for an experiment name
        in ``config:`` and for the trials' group files.

    Raises
    ------
    ConfigError
        Unknown or missing keys, bad values, or a trial whose config is invalid
        (naming the trial and the key).
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"sweep file {file}: no such file")
    data, _ = read_yaml_file(file, str(path))
    if not isinstance(data, Mapping):
        raise _fail(file, "must be a mapping with keys " + ", ".join(_KEYS))
    unknown = sorted(set(map(str, data)) - set(_KEYS))
    if unknown:
        raise _fail(file, f"unknown key(s) {unknown}; valid keys: {', '.join(_KEYS)}")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise _fail(file, "'name' must be a directory name (letters, digits, '.', '_', '-')")
    base = data.get("config")
    if not isinstance(base, str):
        raise _fail(
            file,
            "'config' must be the path of the base config (relative to the file) or the "
            "name of an experiment (e.g. quickstart)",
        )
    base_path = _base_config(file, base, config_dir)
    overrides = data.get("overrides", [])
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise _fail(file, "'overrides' must be a list of 'section.key=value' strings")
    seeds = data.get("seeds")
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
        or len(set(seeds)) != len(seeds)
    ):
        raise _fail(file, "'seeds' must be a non-empty list of distinct integers >= 0")
    for override in [*overrides, *extra_overrides]:
        if _sets_reserved(override):
            raise _fail(file, f"{override!r}: the sweep sets training.seed and run_name itself")
    points = _grid_points(file, data.get("grid"))

    def trial_overrides(point: Mapping[str, Any]) -> list[str]:
        grid = [f"{key}={_value_text(value)}" for key, value in point.items()]
        return [*overrides, *grid, *extra_overrides]

    return _expand(file, name, base_path, config_dir, points, seeds, trial_overrides)


def _sets_reserved(override: str) -> bool:
    """Whether ``override`` sets (or resets) a key the sweep sets itself."""
    name = override.split("=", 1)[0].strip().lstrip("+~").strip()
    return name in _SWEEP_SETS


def _expand(
    where: Path | str,
    name: str,
    base: Path | str | None,
    config_dir: str | Path | None,
    points: Sequence[Mapping[str, Any]],
    seeds: Sequence[int],
    trial_overrides: Callable[[Mapping[str, Any]], list[str]],
) -> SweepSpec:
    """Compose and validate every trial: each grid point times each seed, in order.

    ``where`` is the sweep file (its path) or a description of a ``-m`` sweep; it
    prefixes messages. ``trial_overrides(point)`` gives the overrides of a grid point;
    the seed and run name follow them.
    """
    trials: list[Trial] = []
    for point, seed in itertools.product(points, seeds):
        index = len(trials)
        trial_name = _trial_name(index, point, seed)
        all_overrides = (
            *trial_overrides(point),
            f"training.seed={seed}",
            f"training.run_name={trial_name}",
        )
        try:
            cfg = load_config(base, list(all_overrides), config_dir=config_dir)
        except ConfigError as exc:
            raise _fail(where, f"trial {trial_name}: {exc}") from exc
        trials.append(Trial(index, trial_name, dict(point), seed, all_overrides, cfg))
    run_roots = {t.cfg.training.run_root for t in trials}
    if len(run_roots) != 1:
        raise _fail(where, f"all trials must share training.run_root, got {sorted(run_roots)}")
    root = Path(run_roots.pop()) / name
    file = where if isinstance(where, Path) else None
    source = f"sweep file {where}" if file is not None else str(where)
    return SweepSpec(path=file, name=name, root=root, trials=trials, source=source)


def _seed(text: str, where: str) -> int:
    """A seed of ``training.seed=0,1,2`` as an integer >= 0."""
    value = parse_scalar(text)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"seed {text!r} ({where}) must be an integer >= 0")
    return value


def multirun_sweep(
    config: str | Path | None,
    overrides: Sequence[str],
    *,
    name: str,
    config_dir: str | Path | None = None,
) -> SweepSpec:
    """The sweep of ``hhml-train -m``: the Cartesian product of the comma-separated values.

    An override whose value has commas outside brackets and quotes (``agent=td3,sac``,
    ``agent.gamma=0.9,0.99``) is a grid axis, in the order given; the others apply to
    every trial, in their place among the axes. ``training.seed=0,1,2`` gives the seeds
    (every grid point runs every seed); without it every trial uses the ``training.seed``
    of the base config with the fixed overrides.

    Parameters
    ----------
    config
        The base config file or experiment name (None: the schema defaults).
    overrides
        The command-line overrides, sweeps included.
    name
        The sweep's directory under ``training.run_root`` (``training.run_name`` may not
        be given: the sweep names its trials).
    config_dir
        A user config directory searched first (``--config-dir``).

    Raises
    ------
    ConfigError
        A malformed override or sweep, a swept ``~key``, a key swept twice, repeated
        seeds, or an invalid trial (naming the trial and the key).
    """
    where = f"hhml-train -m {' '.join(overrides)}"
    if not _NAME.fullmatch(name):
        raise _fail(
            where,
            f"sweep name {name!r} (training.run_name) must be a directory name "
            "(letters, digits, '.', '_', '-')",
        )
    fixed: list[str] = []
    axes: dict[str, list[str]] = {}
    seeds: list[int] | None = None
    for text in overrides:
        item = parse_override(text)
        if item.value is None:
            fixed.append(text)
            continue
        values = sweep_items(item.value, item.where)
        if item.name == "training.seed" and item.prefix != "~":
            seeds = [_seed(v, item.where) for v in values]
            if len(set(seeds)) != len(seeds):
                raise _fail(where, f"{item.where}: the seeds must be distinct, got {seeds}")
            continue
        if item.name == "training.run_name":
            raise _fail(
                where, f"{item.where}: a -m sweep names its trials; its directory is {name!r}"
            )
        if len(values) == 1:
            fixed.append(text)
            continue
        if item.prefix == "~":
            raise _fail(where, f"{item.where}: '~' resets one key; it cannot be swept")
        if item.name in axes:
            raise _fail(where, f"{item.name} is swept twice; give all its values in one override")
        axes[item.name] = values
        fixed.append("")  # the axis value takes this place among the overrides
    if seeds is None:
        try:
            base = load_config(config, [o for o in fixed if o], config_dir=config_dir)
        except ConfigError as exc:
            raise _fail(where, str(exc)) from exc
        seeds = [base.training.seed]
    keys = list(axes)
    points = [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*axes.values())]

    def trial_overrides(point: Mapping[str, Any]) -> list[str]:
        values = iter(f"{key}={point[key]}" for key in keys)
        return [o if o else next(values) for o in fixed]  # each axis in its own place

    return _expand(where, name, config, config_dir, points, seeds, trial_overrides)


def _row(trial: Trial, summary: Mapping[str, Any]) -> dict[str, Any]:
    def ret(key: str) -> float | None:
        entry = summary.get(key)
        return float(entry["return_mean"]) if isinstance(entry, Mapping) else None

    return {
        "trial": trial.name,
        "index": trial.index,
        "seed": trial.seed,
        "point": dict(trial.point),
        "status": summary.get("status", "missing"),
        "step": summary.get("step"),
        "baseline_return": summary.get("baseline_return"),
        "final_return": ret("final_eval"),
        "best_return": ret("best_eval"),
        "steps_per_sec": summary.get("steps_per_sec"),
        "wall_time_s": summary.get("wall_time_s"),
    }


def _read_summary(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "metrics.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _restart_unstarted(trial: Trial, run_dir: Path) -> None:
    """Clear a trial directory that stopped before its first checkpoint (no
    ``model_last.pt``, no sign that one was written), so the trial restarts from step 0.

    What the killed run wrote besides ``config.yaml`` is removed
    (:func:`~hhml.ml.training.run_dir.clear_unstarted_run`); its ``config.yaml`` is
    replaced by the trial's own if they differ (the sweep file changed), since nothing of
    that run survives. A directory whose checkpoint went missing after checkpoints were
    written is left alone (:meth:`Trainer.create` then refuses it, naming the directory);
    one holding files a run does not write raises a CheckpointError naming them.
    """
    from hhml.ml.training.run_dir import clear_unstarted_run, unstarted_run

    run = unstarted_run(run_dir)
    if run is None:
        return
    clear_unstarted_run(run)
    if run.config.read_text(encoding="utf-8") != dump_config(trial.cfg):
        run.config.unlink()


def _run_trial(trial: Trial, run_dir: Path) -> dict[str, Any]:
    """Run (or resume, or skip) one trial; its ``metrics.json`` summary."""
    from hhml.ml.training.trainer import Trainer

    existing = _read_summary(run_dir)
    if existing is not None and existing.get("status") == "completed":
        return existing
    if (run_dir / "model_last.pt").is_file():
        trainer = Trainer.resume(run_dir, [f"training.device={trial.cfg.training.device}"])
    else:
        _restart_unstarted(trial, run_dir)
        trainer = Trainer.create(trial.cfg, run_dir=run_dir)
    try:
        return trainer.train().summary
    finally:
        trainer.close()


def run_sweep(
    spec: SweepSpec,
    dist: DistContext = SINGLE_PROCESS,
    announce: Callable[[str], None] | None = None,
) -> list[dict[str, Any]] | None:
    """Run this rank's share of the trials; on rank 0 return all rows and write the summary.

    Parameters
    ----------
    spec
        From :func:`load_sweep`.
    dist
        With several ranks, trial ``i`` runs on rank ``i mod world_size`` (each as a
        single-process run on that rank's device); rows are gathered to rank 0.
    announce
        Called with a one-line message before each trial (e.g. ``click.echo``).

    Returns
    -------
    list of dict or None
        One row per trial, in trial order, on rank 0 (``None`` on the other ranks).
    """
    mine = [t for t in spec.trials if t.index % dist.world_size == dist.rank]
    rows: list[dict[str, Any]] = []
    total = len(spec.trials)
    for trial in mine:
        if announce is not None:
            announce(f"trial {trial.index + 1}/{total}: {trial.name}")
        summary = _run_trial(trial, spec.root / trial.name)
        rows.append(_row(trial, summary))
    gathered = gather_objects(rows, dist)
    if gathered is None:
        return None
    all_rows = sorted((row for part in gathered for row in part), key=lambda r: r["index"])
    groups = summarise_trials(all_rows)
    document = {
        "sweep": spec.name,
        "file": str(spec.path) if spec.path is not None else None,
        "source": spec.source,
        "trials": all_rows,
        "groups": groups,
    }
    spec.root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(spec.root / "sweep_summary.json", json.dumps(document, indent=2) + "\n")
    atomic_write_text(spec.root / "sweep_summary.md", format_summary(spec.name, all_rows, groups))
    return all_rows


def _stats(values: Sequence[float]) -> dict[str, float | int | None]:
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "sem": None}
    mean = sum(values) / n
    if n < 2:
        return {"n": n, "mean": mean, "std": None, "sem": None}
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return {"n": n, "mean": mean, "std": std, "sem": std / math.sqrt(n)}


def summarise_trials(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per grid point: mean, sample std (ddof 1) and standard error over the seeds.

    Only completed trials with an evaluation enter the statistics.
    """
    groups: dict[str, list[Mapping[str, Any]]] = {}
    points: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = json.dumps(row["point"], sort_keys=True)
        groups.setdefault(key, []).append(row)
        points[key] = dict(row["point"])
    result = []
    for key, members in groups.items():
        done = [r for r in members if r["status"] == "completed"]
        group: dict[str, Any] = {
            "point": points[key],
            "trials": len(members),
            "completed": len(done),
        }
        for name in ("final_return", "best_return", "baseline_return"):
            group[name] = _stats([float(r[name]) for r in done if r[name] is not None])
        result.append(group)
    return result


def _num(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{float(value):.{digits}g}"


def _point_text(point: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_value_text(v)}" for k, v in point.items()) or "(base config)"


def format_summary(
    name: str, rows: Sequence[Mapping[str, Any]], groups: Sequence[Mapping[str, Any]]
) -> str:
    """The Markdown summary: a table per grid point (over seeds), then one row per trial."""
    lines = [
        f"# Sweep {name}",
        "",
        "Evaluation returns of the deterministic policy; mean, sample standard deviation "
        "(ddof 1) and standard error over the seeds of each grid point. The baseline is "
        "uniformly random actions on the same evaluation seeds.",
        "",
        "| grid point | completed | final return mean | std | s.e. | best return mean "
        "| baseline mean |",
        "|---|---|---|---|---|---|---|",
    ]
    for g in groups:
        final, best, base = g["final_return"], g["best_return"], g["baseline_return"]
        lines.append(
            f"| {_point_text(g['point'])} | {g['completed']}/{g['trials']} "
            f"| {_num(final['mean'])} | {_num(final['std'])} | {_num(final['sem'])} "
            f"| {_num(best['mean'])} | {_num(base['mean'])} |"
        )
    lines += [
        "",
        "| trial | seed | status | steps | baseline | final | best | steps/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['trial']} | {r['seed']} | {r['status']} | {r['step']} "
            f"| {_num(r['baseline_return'])} | {_num(r['final_return'])} "
            f"| {_num(r['best_return'])} | {_num(r['steps_per_sec'], 3)} |"
        )
    return "\n".join(lines) + "\n"
