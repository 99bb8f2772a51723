"""Crash-safe file writes.

A reader of a run directory (the dashboard, a resumed run) must never see half a
file. Whole-file writes therefore go to a temporary file in the target's
directory, which is flushed, fsync'ed and renamed over the target with
``os.replace`` (atomic on POSIX and Windows); the directory is then fsync'ed so
the rename itself survives a crash. If writing fails, the temporary file is
removed and the previous file at the target is untouched.

Public names: ``atomic_write_bytes``, ``atomic_write_text``, ``atomic_torch_save``,
``append_jsonl``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from hhml.errors import NumericalInstabilityError

__all__ = ["append_jsonl", "atomic_torch_save", "atomic_write_bytes", "atomic_write_text"]

_umask_lock = threading.Lock()
_umask: int | None = None


def _current_umask() -> int:
    """The process umask (read once; os.umask can only be read by setting it)."""
    global _umask
    with _umask_lock:
        if _umask is None:
            _umask = os.umask(0o022)
            os.umask(_umask)
        return _umask


def _fsync_directory(directory: Path) -> None:
    if os.name != "posix":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        # Some file systems (and some network mounts) refuse fsync on a directory;
        # the data itself is already on disk, only the rename's durability is weaker.
        pass
    finally:
        os.close(fd)


def _atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> Path:
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    try:
        mode = target.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o666 & ~_current_umask()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_directory(directory)
    return target


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (all or nothing).

    Returns
    -------
    Path
        The written path.
    """
    return _atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (all or nothing), UTF-8 by default.

    Returns
    -------
    Path
        The written path.
    """
    return _atomic_write(path, lambda handle: handle.write(text.encode(encoding)))


def atomic_torch_save(obj: object, path: str | os.PathLike[str]) -> Path:
    """``torch.save(obj)`` to ``path`` atomically.

    If serialisation fails (e.g. an unpicklable object), the exception propagates,
    no temporary file is left and an existing file at ``path`` is unchanged.

    Returns
    -------
    Path
        The written path.
    """
    return _atomic_write(path, lambda handle: torch.save(obj, handle))


def _jsonable(value: Any, where: str) -> Any:
    """Convert numpy/torch scalars to Python, check floats are finite, recurse into containers."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TypeError(
                f"JSONL field {where!r} is a tensor of shape {tuple(value.shape)}; "
                "log scalars (or convert with .tolist())"
            )
        value = value.item()
    elif isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NumericalInstabilityError(
                f"JSONL field {where!r} = {value} is not finite; refusing to write NaN/Inf "
                "into the metrics log (the run has probably diverged)"
            )
        return value
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"JSONL keys must be strings, got {key!r} in {where!r}")
            result[key] = _jsonable(item, f"{where}.{key}" if where else key)
        return result
    if isinstance(value, (list, tuple)):
        return [_jsonable(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise TypeError(
        f"JSONL field {where!r} has type {type(value).__name__}, which is not JSON-serialisable"
    )


def append_jsonl(path: str | os.PathLike[str], record: Mapping[str, Any]) -> None:
    """Append ``record`` as one JSON line to ``path``, then flush and fsync.

    The line is written with a single ``write`` call on a file opened in append
    mode, so concurrent readers see either the whole line or none of it.
    Numpy and one-element torch scalars are converted to Python numbers.

    Raises
    ------
    NumericalInstabilityError
        A float in ``record`` (at any depth) is NaN or infinite; nothing is written.
    TypeError
        ``record`` is not a mapping, or holds a value that JSON cannot represent.
    """
    if not isinstance(record, Mapping):
        raise TypeError(f"a JSONL record must be a mapping, got {type(record).__name__}")
    data = _jsonable(record, "")
    line = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n"
    payload = line.encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        view = memoryview(payload)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
