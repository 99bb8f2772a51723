"""Crash-safe file writes.

A reader of a run directory (the dashboard, a resumed run) must never see half a
file. Whole-file writes therefore go to a temporary file in the target's
directory, which is flushed, fsync'ed and renamed over the target with
``os.replace`` (atomic on POSIX and Windows); the directory is then fsync'ed so
the rename itself survives a crash. If writing fails, the temporary file is
removed and the previous file at the target is untouched. A target that is a
symbolic link is resolved first (the link's target file is rewritten, the link is
kept); a target that exists and is not a regular file (a directory, FIFO, device,
socket) is refused with :class:`~hhml.errors.ConfigError` rather than replaced.

Metric logs are JSON Lines written by :func:`append_jsonl`; their reading side is
here too, so every reader applies the same rules to a line:
:func:`parse_metrics_line` checks one line, :func:`scan_metrics_lines` reads a
whole file into :class:`MetricsLine` s (malformed ones marked, not raised) and
:func:`read_metrics_records` returns the valid records, warning about each
malformed line by file and line number.

Public names: ``atomic_write_bytes``, ``atomic_write_text``, ``atomic_torch_save``,
``resolve_write_target``, ``append_jsonl``, ``MetricsLine``, ``parse_metrics_line``,
``scan_metrics_lines``, ``read_metrics_records``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np

from hhml.errors import CheckpointError, ConfigError, NumericalInstabilityError

__all__ = [
    "MetricsLine",
    "append_jsonl",
    "atomic_torch_save",
    "atomic_write_bytes",
    "atomic_write_text",
    "parse_metrics_line",
    "read_metrics_records",
    "resolve_write_target",
    "scan_metrics_lines",
]

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


_FILE_KINDS = (
    (stat.S_ISDIR, "directory"),
    (stat.S_ISFIFO, "FIFO (named pipe)"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISSOCK, "socket"),
)


def _kind_of(mode: int) -> str:
    """A readable name of the non-regular file type in ``st_mode``."""
    for test, name in _FILE_KINDS:
        if test(mode):
            return name
    return f"special file (mode {stat.filemode(mode)})"


def resolve_write_target(path: str | os.PathLike[str]) -> tuple[Path, int | None]:
    """Where an atomic write of ``path`` must go, and the permissions it must keep.

    A symbolic link (or a chain of them) is resolved, so the file it points to is
    rewritten and the link itself is kept; a dangling link's target is created.

    Returns
    -------
    tuple of (Path, int or None)
        The file to replace and its permission bits (``None``: it does not exist yet).

    Raises
    ------
    ConfigError
        ``path`` (or the file it links to) exists and is not a regular file: a
        directory, FIFO, device or socket must not be replaced by a regular file.
    OSError
        ``path`` cannot be inspected (e.g. a link loop or a permission error).
    """
    given = Path(path)
    target = Path(os.path.realpath(given)) if given.is_symlink() else given
    try:
        info = target.stat()
    except FileNotFoundError:
        return target, None
    if not stat.S_ISREG(info.st_mode):
        via = f" (a symbolic link to {target})" if target != given else ""
        raise ConfigError(
            f"{given}{via} is a {_kind_of(info.st_mode)}, not a regular file: refusing to "
            "replace it; give the path of a regular file or of a file to create"
        )
    return target, info.st_mode & 0o777


def _atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> Path:
    target, existing_mode = resolve_write_target(path)
    directory = target.parent if str(target.parent) else Path(".")
    mode = existing_mode if existing_mode is not None else 0o666 & ~_current_umask()
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
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (all or nothing).

    Returns
    -------
    Path
        ``path`` as given (if it is a symbolic link, the file it points to was rewritten).

    Raises
    ------
    ConfigError
        ``path`` exists and is not a regular file (or a link to one); nothing is written.
    """
    return _atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (all or nothing), UTF-8 by default.

    Returns
    -------
    Path
        ``path`` as given (if it is a symbolic link, the file it points to was rewritten).

    Raises
    ------
    ConfigError
        ``path`` exists and is not a regular file (or a link to one); nothing is written.
    """
    return _atomic_write(path, lambda handle: handle.write(text.encode(encoding)))


def atomic_torch_save(obj: object, path: str | os.PathLike[str]) -> Path:
    """``torch.save(obj)`` to ``path`` atomically.

    If serialisation fails (e.g. an unpicklable object), the exception propagates,
    no temporary file is left and an existing file at ``path`` is unchanged.

    Returns
    -------
    Path
        ``path`` as given (if it is a symbolic link, the file it points to was rewritten).

    Raises
    ------
    ConfigError
        ``path`` exists and is not a regular file (or a link to one); nothing is written.
    """
    import torch

    return _atomic_write(path, lambda handle: torch.save(obj, handle))


def _jsonable(value: Any, where: str) -> Any:
    """Convert numpy/torch scalars to Python, check floats are finite, recurse into containers."""
    torch = sys.modules.get("torch")  # a tensor exists only once torch is imported
    if torch is not None and isinstance(value, torch.Tensor):
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


class MetricsLine(NamedTuple):
    """One line of a metrics log, as :func:`scan_metrics_lines` read it.

    Attributes
    ----------
    number : int
        1-based line number in the file.
    text : bytes
        The line's bytes without its ``\\n``.
    record : dict or None
        The parsed record; ``None`` for a blank or malformed line.
    error : str or None
        Why the line is malformed, as ``"<file>:<line> <reason>"``; ``None`` for a
        valid or blank line.
    terminated : bool
        Whether the line ends with ``\\n`` (:func:`append_jsonl` writes the newline
        with the line, so only an interrupted write leaves a last line without one).
    """

    number: int
    text: bytes
    record: dict[str, Any] | None
    error: str | None
    terminated: bool

    @property
    def blank(self) -> bool:
        """Whether the line holds only whitespace."""
        return not self.text.strip()


def parse_metrics_line(line: bytes | str, where: str) -> dict[str, Any]:
    """Parse one line of a metrics log: a UTF-8 JSON object with an integer ``step``.

    Parameters
    ----------
    line
        The line (bytes as read from the file, or text), without or with its newline.
    where
        Where the line comes from, e.g. ``"run/metrics.jsonl:12"``; it starts the
        error message.

    Returns
    -------
    dict
        The record; ``record["step"]`` is a non-negative ``int``.

    Raises
    ------
    CheckpointError
        The line is not UTF-8, not JSON, not a JSON object, or its ``step`` is
        missing or not a non-negative integer (a string, ``null``, a float such as
        ``NaN`` or ``1e400``, a boolean). The message starts with ``where``.
    """
    if isinstance(line, bytes):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CheckpointError(
                f"{where} is not UTF-8 text (byte 0x{line[exc.start]:02x} at column "
                f"{exc.start + 1})"
            ) from None
    else:
        text = line
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(
            f"{where} is not valid JSON ({exc.msg}; column {exc.colno})"
        ) from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of > 4300 digits
        raise CheckpointError(f"{where} is not valid JSON ({exc})") from None
    if not isinstance(record, dict):
        raise CheckpointError(
            f"{where} is not a metrics record (a JSON {type(record).__name__}, expected an "
            "object with a 'step' key)"
        )
    if "step" not in record:
        raise CheckpointError(f"{where} is not a metrics record (no 'step' key)")
    step = record["step"]
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        shown = repr(step) if len(repr(step)) <= 40 else repr(step)[:37] + "..."
        raise CheckpointError(
            f"{where} has 'step' = {shown} ({type(step).__name__}); expected a non-negative "
            "integer"
        )
    return record


def scan_metrics_lines(path: str | os.PathLike[str]) -> list[MetricsLine]:
    """Read every line of a metrics log, parsing each with :func:`parse_metrics_line`.

    Nothing is raised for a malformed line: it comes back with ``record=None`` and
    the reason in ``error``, so the caller decides (skip it, treat it as a torn
    write, refuse). A missing file has no lines.

    Returns
    -------
    list of MetricsLine
        In file order; blank lines included (``record`` and ``error`` both ``None``).
    """
    file = Path(path)
    if not file.is_file():
        return []
    chunks = file.read_bytes().split(b"\n")
    last_terminated = chunks[-1] == b""
    if last_terminated:
        chunks.pop()
    lines: list[MetricsLine] = []
    for index, chunk in enumerate(chunks):
        number = index + 1
        terminated = last_terminated or number < len(chunks)
        if not chunk.strip():
            lines.append(MetricsLine(number, chunk, None, None, terminated))
            continue
        try:
            record = parse_metrics_line(chunk, f"{file}:{number}")
        except CheckpointError as exc:
            lines.append(MetricsLine(number, chunk, None, str(exc), terminated))
        else:
            lines.append(MetricsLine(number, chunk, record, None, terminated))
    return lines


def read_metrics_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The valid records of a metrics log, in file order (for reading, not resuming).

    A last line without its newline that does not parse is the torn write of a run
    still going (or killed) and is skipped silently. Every other malformed line is
    skipped with a :class:`UserWarning` naming the file, the line and the reason;
    the other lines are used. A missing file has no records.

    Returns
    -------
    list of dict
        The records; each ``record["step"]`` is a non-negative ``int``.
    """
    records: list[dict[str, Any]] = []
    for line in scan_metrics_lines(path):
        if line.record is not None:
            records.append(line.record)
        elif line.error is not None and line.terminated:
            warnings.warn(f"{line.error}: line skipped, the other records are used", stacklevel=2)
    return records
