"""The run directory of a training run (DESIGN §7): naming, creating, reopening.

::

    <run_root>/<run_id>/
      config.yaml        the fully resolved config, written before the first step
      metrics.jsonl      one JSON object per logged step, appended and flushed
      metrics.json       summary (best, final, wall time, hardware, versions)
      model_last.pt      everything needed to resume exactly
      model_best.pt      the agent at its best evaluation
      tensorboard/       event files
      snapshots/         field snapshots (step_<n>.pt)

Public names: ``RunDirectory``, ``default_run_id``, ``plan_run_dir``,
``create_run_dir``, ``open_run_dir``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from hhml.config.loader import dump_config
from hhml.config.schema import HHmLConfig
from hhml.errors import CheckpointError
from hhml.utils.atomic_io import atomic_write_text

__all__ = ["RunDirectory", "create_run_dir", "default_run_id", "open_run_dir", "plan_run_dir"]


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


def plan_run_dir(cfg: HHmLConfig, run_dir: str | Path | None = None) -> Path:
    """Choose the run directory of a new run and check that it can be created.

    Nothing is created here, so a failure leaves no trace.

    Parameters
    ----------
    cfg
        The config (``training.run_root``, ``training.run_name``).
    run_dir
        An explicit directory (``--run-dir``); it must not exist or be empty.

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
        if any(path.iterdir()):
            raise CheckpointError(
                f"run directory {path} already exists and is not empty; choose another "
                "--run-dir / training.run_name, or continue it with --resume"
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


def open_run_dir(path: str | Path) -> RunDirectory:
    """Reopen an existing run directory to resume it (removing temporary files of a killed run).

    Raises
    ------
    CheckpointError
        ``path`` is not a directory, or lacks ``config.yaml`` or ``model_last.pt``.
    """
    run = RunDirectory(Path(path))
    if not run.root.is_dir():
        raise CheckpointError(f"--resume {run.root}: no such run directory")
    if not run.config.is_file():
        raise CheckpointError(f"--resume {run.root}: no config.yaml; this is not a run directory")
    if not run.model_last.is_file():
        raise CheckpointError(
            f"--resume {run.root}: no model_last.pt (the run stopped before its first "
            "checkpoint); start it again instead"
        )
    # A run killed during an atomic write leaves its temporary file (".<name>.*.tmp").
    for directory in (run.root, run.snapshots):
        for leftover in directory.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                leftover.unlink()
    return run
