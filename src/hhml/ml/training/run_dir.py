"""The run directory of a training run (docs/training.md): naming, creating, reopening.

::

    <run_root>/<run_id>/
      config.yaml        the fully resolved config, written before the first step
      metrics.jsonl      one JSON object per logged step, appended and flushed
      metrics.json       summary (best, final, wall time, hardware, versions)
      model_last.pt      everything needed to resume exactly
      model_best.pt      the agent at its best evaluation
      tensorboard/       event files
      snapshots/         field snapshots (step_<n>.h5)

A run killed before its first checkpoint has ``config.yaml`` (and maybe
``metrics.jsonl``, ``metrics.json``, ``model_best.pt``, ``tensorboard/``,
``snapshots/`` of its first steps) but no ``model_last.pt``. :func:`unstarted_run`
recognises it, :func:`clear_unstarted_run` removes those partial files (only
``config.yaml`` stays), and :func:`plan_run_dir` then accepts the directory again,
so ``hhml-train --resume DIR`` restarts such a run from step 0. A run whose
``model_last.pt`` is missing although it has written checkpoints (its
``metrics.jsonl`` or ``metrics.json`` show steps after the first one) is not
restarted: :func:`open_run_dir` names the missing file.

Public names: ``RunDirectory``, ``default_run_id``, ``plan_run_dir``,
``create_run_dir``, ``open_run_dir``, ``checkpoint_evidence``, ``unstarted_run``,
``clear_unstarted_run``, ``PARTIAL_RUN_FILES``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from hhml.config.loader import dump_config, load_config
from hhml.config.schema import HHmLConfig
from hhml.errors import CheckpointError, HHmLError
from hhml.utils.atomic_io import atomic_write_text, scan_metrics_lines

__all__ = [
    "PARTIAL_RUN_FILES",
    "RunDirectory",
    "checkpoint_evidence",
    "clear_unstarted_run",
    "create_run_dir",
    "default_run_id",
    "open_run_dir",
    "plan_run_dir",
    "unstarted_run",
]

#: What a run writes before its first checkpoint besides ``config.yaml``; a restart
#: from step 0 removes them (temporary files ``.<name>.*.tmp`` of killed atomic
#: writes too).
PARTIAL_RUN_FILES = ("metrics.jsonl", "metrics.json", "model_best.pt", "tensorboard", "snapshots")


@dataclass(frozen=True)
class RunDirectory:
    """Paths of the files of one run directory.

    Attributes
    ----------
    root : Path
        The run directory itself.
    """

    root: Path

    @property
    def config(self) -> Path:
        """``config.yaml``: the resolved config."""
        return self.root / "config.yaml"

    @property
    def metrics_jsonl(self) -> Path:
        """``metrics.jsonl``: one JSON record per line."""
        return self.root / "metrics.jsonl"

    @property
    def metrics_json(self) -> Path:
        """``metrics.json``: the run summary."""
        return self.root / "metrics.json"

    @property
    def model_last(self) -> Path:
        """``model_last.pt``: the resume checkpoint."""
        return self.root / "model_last.pt"

    @property
    def model_best(self) -> Path:
        """``model_best.pt``: the agent at its best evaluation."""
        return self.root / "model_best.pt"

    @property
    def tensorboard(self) -> Path:
        """``tensorboard/``: TensorBoard event files."""
        return self.root / "tensorboard"

    @property
    def snapshots(self) -> Path:
        """``snapshots/``: field snapshots."""
        return self.root / "snapshots"

    @property
    def run_id(self) -> str:
        """The directory name."""
        return self.root.name


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-").lower() or "env"


def default_run_id(cfg: HHmLConfig, now: float | None = None) -> str:
    """A timestamped run id, ``YYYYmmdd-HHMMSS-<algorithm>-<env>-s<seed>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    env = _slug(cfg.env.id.rpartition("/")[2])
    return f"{stamp}-{cfg.agent.algorithm}-{env}-s{cfg.training.seed}"


def _check_writable(path: Path) -> None:
    """Raise unless ``path`` (which does not exist yet) could be created."""
    ancestor = path.parent
    while not ancestor.exists():
        if ancestor.parent == ancestor:
            break
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise CheckpointError(
            f"cannot create run directory {path}: {ancestor} exists and is not a directory"
        )
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise CheckpointError(f"cannot create run directory {path}: {ancestor} is not writable")


def _holds_only_this_config(path: Path, entries: list[str], cfg: HHmLConfig) -> bool:
    """Whether ``path`` holds nothing but a ``config.yaml`` equal to ``dump_config(cfg)``
    (an unstarted run after :func:`clear_unstarted_run`)."""
    if entries != ["config.yaml"] or not (path / "config.yaml").is_file():
        return False
    try:
        return (path / "config.yaml").read_text(encoding="utf-8") == dump_config(cfg)
    except (OSError, UnicodeDecodeError):
        return False


def plan_run_dir(cfg: HHmLConfig, run_dir: str | Path | None = None) -> Path:
    """Choose the run directory of a new run and check that it can be created.

    Nothing is created here, so a failure leaves no trace.

    Parameters
    ----------
    cfg
        The config (``training.run_root``, ``training.run_name``).
    run_dir
        An explicit directory (``--run-dir``); it must not exist or be empty, or hold
        only a ``config.yaml`` equal to ``cfg``'s (a cleared unstarted run).

    Returns
    -------
    Path
        ``run_dir``, else ``<run_root>/<run_name>``, else ``<run_root>/<timestamped id>``
        (with ``-2``, ``-3``, … appended if that name is taken).

    Raises
    ------
    CheckpointError
        The directory exists and is not empty (or is a file), or it cannot be
        created (its nearest existing ancestor is a file or not writable).
    """
    if run_dir is not None:
        path = Path(run_dir)
    elif cfg.training.run_name:
        path = Path(cfg.training.run_root) / cfg.training.run_name
    else:
        base = Path(cfg.training.run_root) / default_run_id(cfg)
        path, suffix = base, 1
        while path.exists():
            suffix += 1
            path = base.with_name(f"{base.name}-{suffix}")
    if path.exists():
        if not path.is_dir():
            raise CheckpointError(f"run directory {path} exists and is not a directory")
        entries = sorted(p.name for p in path.iterdir())
        if entries and not _holds_only_this_config(path, entries, cfg):
            hint = "continue it with --resume"
            if unstarted_run(path) is not None:
                hint = f"it stopped before its first checkpoint: restart it with --resume {path}"
            raise CheckpointError(
                f"run directory {path} already exists and is not empty; choose another "
                f"--run-dir / training.run_name, or {hint}"
            )
        if not os.access(path, os.W_OK | os.X_OK):
            raise CheckpointError(f"run directory {path} is not writable")
        return path
    _check_writable(path)
    return path


def create_run_dir(path: str | Path, cfg: HHmLConfig) -> RunDirectory:
    """Create the run directory and write ``config.yaml`` into it (first file of a run).

    If anything fails, every directory created here is removed again.

    Raises
    ------
    CheckpointError
        The directory or ``config.yaml`` cannot be written (naming the path and the
        OS error).
    """
    root = Path(path)
    created: Path | None = None
    probe = root
    while not probe.exists():
        created = probe
        if probe.parent == probe:
            break
        probe = probe.parent
    run = RunDirectory(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run.config, dump_config(cfg))
    except OSError as exc:
        if created is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(created)
        raise CheckpointError(f"cannot write run directory {root}: {exc}") from exc
    return run


def _summary_evidence(run: RunDirectory) -> str | None:
    """What ``metrics.json`` (written with every checkpoint and at the end) says, if it
    proves a checkpoint was written."""
    try:
        summary = json.loads(run.metrics_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # absent or torn: proves nothing
        return None
    if not isinstance(summary, dict):
        return None
    status, step = summary.get("status"), summary.get("step")
    if not isinstance(step, int) or isinstance(step, bool):
        return None
    if status in ("completed", "interrupted") or (status == "running" and step > 0):
        return f"{run.metrics_json} records status {status!r} at step {step}"
    return None


def checkpoint_evidence(run: RunDirectory, cfg: HHmLConfig | None = None) -> str | None:
    """Why ``model_last.pt`` should exist in ``run``, or None if the run never wrote one.

    A checkpoint was written if ``metrics.json`` says the run completed, was
    interrupted, or is running past step 0 (the trainer writes it only after a
    checkpoint or at the end), or if ``metrics.jsonl`` holds a record after the first
    checkpoint step: the first multiple of ``num_envs × world_size`` at or after
    ``training.checkpoint_every`` (records of that very step are written before its
    checkpoint, so they prove nothing).

    Parameters
    ----------
    run
        The run directory.
    cfg
        Its config (``training.checkpoint_every``, ``env.num_envs``); None: read
        ``config.yaml`` (if that fails only ``metrics.json`` is consulted).

    Returns
    -------
    str or None
        A sentence naming the file and step that prove a checkpoint, or None.
    """
    evidence = _summary_evidence(run)
    if evidence is not None:
        return evidence
    if cfg is None:
        try:
            cfg = load_config(run.config)
        except HHmLError:
            return None
    records = [line.record for line in scan_metrics_lines(run.metrics_jsonl) if line.record]
    sizes = [r.get("dist/world_size") for r in records]
    world = max((n for n in sizes if isinstance(n, int) and not isinstance(n, bool)), default=1)
    world = max(world, 1)
    per_step = cfg.env.num_envs * world
    first = math.ceil(cfg.training.checkpoint_every / per_step) * per_step
    last = max((r["step"] for r in records), default=-1)
    if last > first:
        return (
            f"{run.metrics_jsonl} has records up to step {last}, after the first checkpoint "
            f"(step {first}, training.checkpoint_every = {cfg.training.checkpoint_every})"
        )
    return None


def unstarted_run(path: str | Path) -> RunDirectory | None:
    """The run directory at ``path`` if it is a run killed before its first checkpoint.

    That is: a directory with ``config.yaml``, without ``model_last.pt``, and no
    :func:`checkpoint_evidence`. None otherwise (not a run directory, a resumable one,
    or one whose checkpoint has gone missing).
    """
    run = RunDirectory(Path(path))
    if not run.root.is_dir() or not run.config.is_file() or run.model_last.exists():
        return None
    if checkpoint_evidence(run) is not None:
        return None
    return run


def clear_unstarted_run(run: RunDirectory) -> list[str]:
    """Remove what an unstarted run wrote besides ``config.yaml``, for a restart from step 0.

    Removes :data:`PARTIAL_RUN_FILES` and temporary files of killed atomic writes;
    ``config.yaml`` stays. Anything else in the directory is left alone and refuses
    the restart (nothing is removed then).

    Returns
    -------
    list of str
        The names removed (directories with a trailing ``/``), in name order.

    Raises
    ------
    CheckpointError
        ``run`` is not an unstarted run, holds files a run does not write, or a file
        cannot be removed (naming it and the OS error).
    """
    if unstarted_run(run.root) is None:
        raise CheckpointError(
            f"{run.root} is not a run directory that stopped before its first checkpoint"
        )
    entries = sorted(run.root.iterdir())
    known = {"config.yaml", *PARTIAL_RUN_FILES}
    foreign = [p.name for p in entries if p.name not in known and not _is_temporary(p.name)]
    if foreign:
        raise CheckpointError(
            f"cannot restart {run.root} from step 0: it holds files a training run does not "
            f"write ({', '.join(foreign)}); move them away first"
        )
    removed: list[str] = []
    for entry in entries:
        if entry.name == "config.yaml":
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
                removed.append(entry.name + "/")
            else:
                entry.unlink()
                removed.append(entry.name)
        except OSError as exc:
            raise CheckpointError(f"cannot remove {entry} to restart the run: {exc}") from exc
    return removed


def _is_temporary(name: str) -> bool:
    """A temporary file of an atomic write (``.<name>.<random>.tmp``)."""
    return name.startswith(".") and name.endswith(".tmp")


def open_run_dir(path: str | Path) -> RunDirectory:
    """Reopen an existing run directory to resume it (removing temporary files of a killed run).

    Raises
    ------
    CheckpointError
        ``path`` is not a directory, or lacks ``config.yaml`` or ``model_last.pt``
        (saying whether the run stopped before its first checkpoint, or the file
        went missing after checkpoints were written).
    """
    run = RunDirectory(Path(path))
    if not run.root.is_dir():
        raise CheckpointError(f"--resume {run.root}: no such run directory")
    if not run.config.is_file():
        raise CheckpointError(f"--resume {run.root}: no config.yaml; this is not a run directory")
    if not run.model_last.is_file():
        evidence = checkpoint_evidence(run)
        if evidence is not None:
            raise CheckpointError(
                f"--resume {run.root}: {run.model_last} is missing although checkpoints were "
                f"written ({evidence}); put the file back (e.g. from a backup) to resume, "
                "or start a new run with another --run-dir"
            )
        raise CheckpointError(
            f"--resume {run.root}: no model_last.pt (the run stopped before its first "
            f"checkpoint); hhml-train --resume {run.root} restarts it from step 0"
        )
    # A run killed during an atomic write leaves its temporary file (".<name>.*.tmp").
    for directory in (run.root, run.snapshots):
        for leftover in directory.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                leftover.unlink()
    return run
