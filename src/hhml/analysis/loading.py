"""Reading what HHmL writes: run directories, training checkpoints and field snapshots.

Everything is read-only (files are opened for reading, never written or locked) and
schema-checked: a missing file or key, a wrong shape or a corrupted file raises
:class:`~hhml.errors.CheckpointError` naming the file and what is wrong. Tensors are
loaded onto the CPU with ``torch.load(weights_only=True, map_location="cpu")``, so a
checkpoint written on CUDA is analysed on a machine without a GPU. Snapshots are HDF5
``step_<n>.h5`` files (:mod:`hhml.io.fields`) or, from older runs, ``step_<n>.pt`` torch
files; both are read, recognised by content, and a run's snapshots are sorted by step
(an ``.h5`` wins over a ``.pt`` of the same step, e.g. after
:func:`~hhml.io.fields.convert_pt_snapshot`).

Public names: ``RunData``, ``Snapshot``, ``load_run``, ``load_snapshot``,
``snapshot_from_checkpoint``, ``snapshot_lattice_config``, ``open_input``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from hhml.config.controls import CONTROLS, LATTICE_CONTROLS
from hhml.config.schema import LatticeConfig
from hhml.config.yaml_io import load_yaml_text
from hhml.errors import CheckpointError, ConfigError
from hhml.io.fields import is_hdf5_file, read_snapshot
from hhml.utils.atomic_io import read_metrics_records

__all__ = [
    "RunData",
    "Snapshot",
    "load_run",
    "load_snapshot",
    "open_input",
    "snapshot_from_checkpoint",
    "snapshot_lattice_config",
]

FloatArray = npt.NDArray[np.float64]

#: Keys every snapshot file must hold (see ``MobiusVortexCore.snapshot``).
SNAPSHOT_KEYS = ("psi", "vortex_index", "vortex_position", "vortex_charge", "chart")
CHART_KEYS = ("nu", "nv", "strips", "length", "half_width", "topology")


@dataclass(frozen=True)
class Snapshot:
    """One saved field of ``B`` environments and its vortices.

    Attributes
    ----------
    path : Path
        Where it was read from.
    step : int or None
        Training step (from the file name ``step_<n>.h5`` or ``step_<n>.pt``), if known.
    psi : Tensor
        Complex field ``[B, S, nu, nv]`` on the CPU.
    vortex_index : Tensor
        ``[K, 4]`` int64 (env, strip, i, j).
    vortex_position : Tensor
        ``[K, 2]`` chart positions ``(u, v)`` (length units).
    vortex_charge : Tensor
        ``[K]`` int64 chart charges.
    chart : dict
        ``nu, nv, strips, length, half_width, topology`` (and ``edge``).
    extra : dict
        Every other key of the file (``values``, ``control_names``, ``measured``,
        ``area_weights``, ...).
    """

    path: Path
    step: int | None
    psi: torch.Tensor
    vortex_index: torch.Tensor
    vortex_position: torch.Tensor
    vortex_charge: torch.Tensor
    chart: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_envs(self) -> int:
        """``B``."""
        return int(self.psi.shape[0])


@dataclass(frozen=True)
class RunData:
    """A run directory, read.

    Attributes
    ----------
    path : Path
        The run directory.
    config : dict
        ``config.yaml`` as ``{section: {key: value}}``.
    records : list of dict
        ``metrics.jsonl`` records in file order (malformed lines skipped, see
        :func:`load_run`); each ``step`` is a non-negative ``int``.
    summary : dict or None
        ``metrics.json`` (None while a run is still going and has not written it).
    snapshots : list of Path
        ``snapshots/step_<n>.h5`` and ``step_<n>.pt`` sorted by step (one file per step:
        the ``.h5`` where both exist).
    checkpoints : dict
        ``{"last": Path, "best": Path}`` for the files that exist.
    """

    path: Path
    config: dict[str, Any]
    records: list[dict[str, Any]]
    summary: dict[str, Any] | None
    snapshots: list[Path]
    checkpoints: dict[str, Path]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        """Records with ``"kind": kind`` (``train``, ``eval``, ``baseline``)."""
        return [r for r in self.records if r.get("kind") == kind]

    def series(self, key: str, kind: str = "train") -> tuple[FloatArray, FloatArray]:
        """``(steps, values)`` of ``key`` over the records of ``kind`` that have it."""
        rows = [
            (float(r["step"]), float(r[key]))
            for r in self.of_kind(kind)
            if key in r and isinstance(r[key], (int, float)) and math.isfinite(float(r[key]))
        ]
        if not rows:
            return np.zeros(0), np.zeros(0)
        arr = np.asarray(rows, dtype=np.float64)
        return arr[:, 0], arr[:, 1]


#: Suffixes of snapshot files, preferred first when one step has several.
SNAPSHOT_SUFFIXES = (".h5", ".pt")


def _step_of(path: Path) -> int | None:
    """``n`` of ``step_<n>.h5`` / ``step_<n>.pt`` (ASCII digits), else None."""
    stem = path.stem
    if path.suffix in SNAPSHOT_SUFFIXES and stem.startswith("step_"):
        digits = stem[5:]
        if digits.isascii() and digits.isdigit():
            return int(digits)
    return None


def _snapshot_files(directory: Path) -> list[Path]:
    """The snapshots of ``directory`` sorted by step, one per step (``.h5`` first)."""
    by_step: dict[int, Path] = {}
    for path in directory.glob("step_*"):
        step = _step_of(path)
        if step is None or not path.is_file():
            continue
        held = by_step.get(step)
        rank = SNAPSHOT_SUFFIXES.index(path.suffix)
        if held is None or (rank, path.name) < (SNAPSHOT_SUFFIXES.index(held.suffix), held.name):
            by_step[step] = path
    return [by_step[step] for step in sorted(by_step)]


def load_run(path: str | Path) -> RunData:
    """Read a run directory (see ``docs/training.md``) without modifying it.

    Raises
    ------
    CheckpointError
        Not a directory, no ``config.yaml``, or an unreadable ``config.yaml`` or
        ``metrics.json``.

    Warns
    -----
    UserWarning
        For each malformed line of ``metrics.jsonl`` (not UTF-8, not JSON, no
        non-negative integer ``step``), naming the file and line; the line is skipped
        and the other records are used. A torn last line (no newline, a run still
        writing) is skipped silently.
    """
    run = Path(path)
    if not run.is_dir():
        raise CheckpointError(f"{run} is not a directory (expected a run directory)")
    cfg_file = run / "config.yaml"
    if not cfg_file.is_file():
        raise CheckpointError(
            f"{run} has no config.yaml: not an hhml run directory (it is written first)"
        )
    try:
        config, _ = load_yaml_text(cfg_file.read_text(encoding="utf-8"), str(cfg_file))
    except (ConfigError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{cfg_file} is not a readable config: {exc}") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{cfg_file} must hold a mapping of config sections")
    summary = None
    summary_file = run / "metrics.json"
    if summary_file.is_file():
        try:
            summary = json.loads(summary_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{summary_file} is not valid JSON ({exc.msg})") from None
    snaps = _snapshot_files(run / "snapshots")
    checkpoints = {
        kind: run / f"model_{kind}.pt"
        for kind in ("last", "best")
        if (run / f"model_{kind}.pt").is_file()
    }
    records = read_metrics_records(run / "metrics.jsonl")
    return RunData(run, config, records, summary, snaps, checkpoints)


def _torch_load(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"no file at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated/foreign files
        raise CheckpointError(f"{path} is corrupted or not a torch file: {exc}") from None


def _check_snapshot(data: Any, where: str) -> Snapshot:
    if not isinstance(data, dict):
        raise CheckpointError(f"{where} does not hold a snapshot dict")
    missing = [k for k in SNAPSHOT_KEYS if k not in data]
    if missing:
        raise CheckpointError(f"{where} is missing snapshot key(s) {missing}")
    psi = data["psi"]
    if not isinstance(psi, torch.Tensor) or psi.dim() != 4 or not psi.is_complex():
        shape = tuple(psi.shape) if isinstance(psi, torch.Tensor) else type(psi).__name__
        raise CheckpointError(f"{where}: psi must be a complex tensor [B, S, nu, nv], got {shape}")
    chart = data["chart"]
    if not isinstance(chart, dict) or any(k not in chart for k in CHART_KEYS):
        raise CheckpointError(f"{where}: chart must hold {list(CHART_KEYS)}")
    expected = (int(chart["strips"]), int(chart["nu"]), int(chart["nv"]))
    if tuple(psi.shape[1:]) != expected:
        raise CheckpointError(
            f"{where}: psi has shape {tuple(psi.shape)} but the chart says [B, {expected[0]}, "
            f"{expected[1]}, {expected[2]}]"
        )
    index, position, charge = data["vortex_index"], data["vortex_position"], data["vortex_charge"]
    k = int(charge.shape[0]) if isinstance(charge, torch.Tensor) else -1
    if (
        k < 0
        or not isinstance(index, torch.Tensor)
        or tuple(index.shape) != (k, 4)
        or not isinstance(position, torch.Tensor)
        or tuple(position.shape) != (k, 2)
    ):
        raise CheckpointError(
            f"{where}: vortex_index [K, 4], vortex_position [K, 2] and vortex_charge [K] "
            "must agree in K"
        )
    path = Path(where)
    extra = {key: value for key, value in data.items() if key not in SNAPSHOT_KEYS}
    return Snapshot(
        path, _step_of(path), psi, index, position.to(torch.float64), charge, chart, extra
    )


def _read_any_snapshot(file: Path) -> Any:
    """The dict of an HDF5 snapshot or the object of a torch file."""
    if not file.is_file():
        raise CheckpointError(f"no file at {file}")
    if is_hdf5_file(file):
        return read_snapshot(file)
    return _torch_load(file)


def load_snapshot(path: str | Path) -> Snapshot:
    """Read and check one ``snapshots/step_<n>.h5`` (or old ``step_<n>.pt``) file."""
    file = Path(path)
    return _check_snapshot(_read_any_snapshot(file), str(file))


def snapshot_lattice_config(snap: Snapshot, env: int = 0) -> LatticeConfig:
    """The ``lattice`` section env ``env`` of ``snap`` was simulated on.

    Grid, strips, chart, metric and strip spacing come from ``snap.chart`` (``edge``,
    ``metric`` and ``strip_spacing``, absent from charts written before they were
    recorded, take their schema defaults); geometry and twist (the controls of
    :data:`~hhml.config.controls.LATTICE_CONTROLS`) from row ``env`` of the snapshot's
    control values. Build it with :func:`hhml.core.factory.build_lattice`.

    Raises
    ------
    CheckpointError
        No control values, a lattice control missing from ``control_names``, ``env``
        out of range, or a value the schema rejects (all named).
    """
    names, values = snap.extra.get("control_names"), snap.extra.get("values")
    if names is None or values is None:
        raise CheckpointError(f"{snap.path} has no control values: cannot rebuild its lattice")
    if not 0 <= env < snap.num_envs:
        raise CheckpointError(f"env = {env} is out of range; {snap.path} holds {snap.num_envs}")
    row = [float(x) for x in values[env].tolist()]
    if len(row) != len(names):
        raise CheckpointError(
            f"{snap.path}: {len(names)} control_names but {len(row)} control values per env"
        )
    by_name = dict(zip(list(names), row, strict=True))
    missing = [k for k in LATTICE_CONTROLS if k not in by_name]
    if missing:
        raise CheckpointError(f"{snap.path}: control_names lack the lattice control(s) {missing}")
    chart = snap.chart
    fields: dict[str, Any] = {
        "nu": int(chart["nu"]),
        "nv": int(chart["nv"]),
        "strips": int(chart["strips"]),
        "length": float(chart["length"]),
        "half_width": float(chart["half_width"]),
        "topology": str(chart["topology"]),
    }
    for key, kind in (("edge", str), ("metric", str), ("strip_spacing", float)):
        if key in chart:
            fields[key] = kind(chart[key])
    fields.update({k: by_name[k] for k in LATTICE_CONTROLS})
    try:
        return LatticeConfig.from_mapping(fields)
    except ConfigError as exc:
        raise CheckpointError(f"{snap.path}: the lattice of env {env} is invalid: {exc}") from None


def snapshot_from_checkpoint(path: str | Path) -> tuple[dict[str, Any], Snapshot | None]:
    """Read a training checkpoint; return it and, for a resumable Möbius-env
    checkpoint, a :class:`Snapshot` rebuilt from its environment state (field and
    detected vortices, recomputed with the fixed detector)."""
    from hhml.ml.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path, map_location="cpu")
    env = ckpt.get("env")
    if not (isinstance(env, dict) and env.get("kind") == "state_dict"):
        return ckpt, None
    try:
        core = env["state"]["core"]
        psi = core["simulator"]["psi"]
    except (KeyError, TypeError):
        return ckpt, None
    from hhml.config import config_from_dict
    from hhml.core.factory import ensemble_from_config
    from hhml.core.resonance import detect_vortices

    cfg = config_from_dict(ckpt["config"])
    lat = cfg.lattice
    # control values [B, 23]: in the env state (layout 0.2) or beside the simulator (0.1)
    state = core.get("state")
    values = state.get("values") if isinstance(state, dict) else core.get("values")
    if not isinstance(values, torch.Tensor) or tuple(values.shape) != (
        psi.shape[0],
        len(CONTROLS),
    ):
        shape = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
        raise CheckpointError(
            f"{path}: the env state's control values have shape {shape}; expected "
            f"({psi.shape[0]}, {len(CONTROLS)}) for a field of {psi.shape[0]} envs"
        )
    ens = ensemble_from_config(cfg, values, device="cpu")
    if psi.dtype != ens.dtype:
        raise CheckpointError(
            f"{path}: the field has dtype {psi.dtype} but the checkpoint's config says "
            f"simulation.dtype = {cfg.simulation.dtype!r}"
        )
    vort = detect_vortices(psi, ens)
    chart = {
        "nu": lat.nu,
        "nv": lat.nv,
        "strips": lat.strips,
        "length": lat.length,
        "half_width": lat.half_width,
        "topology": lat.topology,
        "edge": lat.edge,
        "metric": lat.metric,
        "strip_spacing": lat.strip_spacing,
    }
    data = {
        "psi": psi,
        "vortex_index": vort.index,
        "vortex_position": vort.position,
        "vortex_charge": vort.charge,
        "vortex_depth": vort.depth,
        "chart": chart,
        "area_weights": ens.area_weights(),
        "values": values,
        "control_names": [c.name for c in CONTROLS],
    }
    snap = _check_snapshot(data, str(path))
    return ckpt, dataclasses.replace(snap, step=int(ckpt["step"]))


def open_input(path: str | Path) -> tuple[str, Any]:
    """Classify a command-line input: ``("run", RunData)``, ``("checkpoint", (ckpt,
    Snapshot | None))`` or ``("snapshot", Snapshot)``."""
    p = Path(path)
    if p.is_dir():
        return "run", load_run(p)
    if not p.exists():
        raise CheckpointError(
            f"{p} does not exist (expected a run directory, checkpoint or snapshot)"
        )
    data = _read_any_snapshot(p)
    if isinstance(data, dict) and data.get("format") == "hhml-training-checkpoint":
        return "checkpoint", snapshot_from_checkpoint(p)
    return "snapshot", _check_snapshot(data, str(p))
