"""Read run directories while another process writes them: bounded, torn-line safe.

The dashboard needs nothing from the training process but its files (docs/training.md).
:class:`MetricsTail` follows ``metrics.jsonl`` by byte offset: it parses only the
complete lines that appeared since the last poll, keeps a partially written last
line until its newline arrives, starts over when the file is replaced or shrinks
(a resumed run drops the lines after its checkpoint by rewriting the file), and
keeps at most ``history`` records. :class:`RunWatcher` adds the rest of a run
directory: ``config.yaml``, the ``metrics.json`` summary and the newest file in
``snapshots/`` (``step_<n>.h5``, or ``.pt`` from older runs), each re-read only when
its modification time changes.

Polling never stops on a bad file: each file of a run is read under a guard
(:class:`PollErrors`) that logs a failure once, skips that file until it reads
again, and lets the other files and runs go on. Numbers taken from file names,
URLs and cursors are read by one function, :func:`parse_count` (ASCII digits only).

Public names: ``MetricsTail``, ``RunWatcher``, ``MetricsBatch``, ``PollErrors``,
``is_run_dir``, ``resolve_run_dirs``, ``latest_snapshot``, ``watchers_for``,
``clean_record``, ``parse_count``, ``MAX_COUNT_DIGITS``.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from hhml.config.yaml_io import load_yaml_text
from hhml.errors import CheckpointError, ConfigError

__all__ = [
    "MAX_COUNT_DIGITS",
    "MetricsBatch",
    "MetricsTail",
    "PollErrors",
    "RunWatcher",
    "clean_record",
    "is_run_dir",
    "latest_snapshot",
    "parse_count",
    "resolve_run_dirs",
    "watchers_for",
]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: The files whose presence makes a directory a run directory.
RUN_MARKERS = ("config.yaml", "metrics.jsonl")

#: Longest metric key and string value kept from a record (longer ones are cut).
_MAX_KEY_CHARS = 200
_MAX_STRING_CHARS = 200
#: Most values kept from one record.
_MAX_KEYS_PER_RECORD = 512
#: Largest config.yaml / metrics.json read (larger files are cut / ignored).
_MAX_CONFIG_BYTES = 256 * 1024
_MAX_SUMMARY_BYTES = 1024 * 1024
#: Most ``key: value`` rows of the summary shown by the dashboard.
_MAX_SUMMARY_ROWS = 80
#: Most digits of a number read from a file name, URL or cursor: 10**15 - 1 < 2**53, so
#: every accepted value is exact as a JavaScript number.
MAX_COUNT_DIGITS = 15
#: Most rejected snapshot names listed in one log message.
_MAX_NAMES_LOGGED = 5


def parse_count(text: str, max_digits: int = MAX_COUNT_DIGITS) -> int | None:
    """``text`` as a non-negative integer, or None unless it is 1 to ``max_digits`` ASCII digits.

    ``str.isdigit`` alone accepts characters such as ``"²"`` that ``int`` rejects, and
    ``int`` accepts signs, spaces, underscores and non-ASCII decimal digits; none of these
    is a step, index or count here. The digit limit keeps ``int`` cheap and the value exact.

    Parameters
    ----------
    text
        The candidate number (a file name part, a URL value, a cursor part).
    max_digits
        Most digits accepted.

    Returns
    -------
    int | None
        The value (``0 <= value < 10**max_digits``), or None when ``text`` is not one.
    """
    if not 0 < len(text) <= max_digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)


class PollErrors:
    """Runs the parts of a repeated poll so that a failing part is logged once and skipped.

    A part that raises returns its default instead; the failure is logged (with its
    traceback) the first time, and again only when the kind of error changes or after the
    part has worked again in between (that recovery is logged too). So a permanently bad
    file costs one log entry, not one per poll.

    Parameters
    ----------
    owner
        What is polled, for the log messages (a run directory).
    logger
        Where to log (default: this module's logger).
    """

    def __init__(self, owner: str, logger: logging.Logger | None = None) -> None:
        self.owner = owner
        self.logger = logger or _log
        #: Part → ``"ErrorType: message"`` of the parts failing right now.
        self.failing: dict[str, str] = {}
        self._kinds: dict[str, type[BaseException]] = {}

    def run(self, part: str, action: Callable[[], _T], default: _T) -> _T:
        """``action()``, or ``default`` when it raises an :class:`Exception` (logged once)."""
        try:
            result = action()
        except Exception as exc:  # one bad file must not stop the poll
            self.failed(part, exc)
            return default
        self.succeeded(part)
        return result

    def failed(self, part: str, exc: Exception) -> None:
        """Record that ``part`` raised ``exc``; log it unless this failure is already logged."""
        self.failing[part] = f"{type(exc).__name__}: {exc}"[:1000]
        if self._kinds.get(part) is type(exc):
            return
        self._kinds[part] = type(exc)
        self.logger.error(
            "%s: reading %s failed; it is skipped until it works again: %s",
            self.owner,
            part,
            self.failing[part],
            exc_info=exc,
        )

    def succeeded(self, part: str) -> None:
        """Record that ``part`` worked (logged if it was failing)."""
        if self._kinds.pop(part, None) is not None:
            self.failing.pop(part, None)
            self.logger.warning("%s: reading %s works again", self.owner, part)


def is_run_dir(path: Path) -> bool:
    """Whether ``path`` is a directory holding ``config.yaml`` or ``metrics.jsonl``."""
    return path.is_dir() and any((path / name).is_file() for name in RUN_MARKERS)


def resolve_run_dirs(paths: Iterable[Path]) -> list[Path]:
    """Expand the command-line paths to run directories.

    A path is either a run directory or a directory of run directories (such as
    ``results/runs``), which stands for the run directories directly inside it,
    in name order. Duplicates are dropped.

    Raises
    ------
    CheckpointError
        A path does not exist, is not a directory, or is neither a run directory
        nor a directory containing one.
    """
    result: list[Path] = []
    seen: set[Path] = set()
    for path in paths:
        if not path.exists():
            raise CheckpointError(f"run directory {path}: no such directory")
        if not path.is_dir():
            raise CheckpointError(f"run directory {path}: not a directory")
        if is_run_dir(path):
            found = [path]
        else:
            found = sorted(child for child in path.iterdir() if is_run_dir(child))
            if not found:
                raise CheckpointError(
                    f"{path} is not a run directory (it has no {' or '.join(RUN_MARKERS)}) "
                    "and contains none; pass a directory written by hhml-train"
                )
        for run in found:
            key = run.resolve()
            if key not in seen:
                seen.add(key)
                result.append(run)
    return result


#: Suffixes of snapshot files: HDF5 (written since 0.2) and torch (older runs). Of two
#: files of one step, the one whose suffix comes first wins.
SNAPSHOT_SUFFIXES = (".h5", ".pt")


def _scan_snapshots(directory: Path) -> tuple[Path | None, int | None, list[str]]:
    """The newest snapshot of ``directory``, its step, and the ``step_*`` names rejected.

    A name is a snapshot when it is ``step_<n>.h5`` or ``step_<n>.pt`` with ``n`` read by
    :func:`parse_count` (the trainer writes 10 zero-padded digits); a ``.h5`` and a
    ``.pt`` of one step are one snapshot, the ``.h5``. Other ``step_*.h5`` / ``step_*.pt``
    names (``step_²².pt``, ``step_1x.h5``, more than :data:`MAX_COUNT_DIGITS` digits) are
    returned as rejected.
    """
    # (step, suffix preference, name length, name): ties of a step prefer .h5, then longer
    best: tuple[int, int, int, str] | None = None
    rejected: list[str] = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                name = entry.name
                suffix = name[-3:]
                if not (name.startswith("step_") and suffix in SNAPSHOT_SUFFIXES):
                    continue
                step = parse_count(name[5:-3])
                if step is None:
                    rejected.append(name)
                    continue
                key = (step, -SNAPSHOT_SUFFIXES.index(suffix), len(name), name)
                if best is None or key > best:
                    best = key
    except (FileNotFoundError, NotADirectoryError):
        return None, None, []
    if best is None:
        return None, None, rejected
    return directory / best[3], best[0], rejected


def latest_snapshot(directory: Path) -> Path | None:
    """The ``step_<n>.h5`` or ``step_<n>.pt`` file with the highest step ``n`` in
    ``directory`` (or None); of two files of that step, the ``.h5``.

    ``n`` must be 1 to :data:`MAX_COUNT_DIGITS` ASCII digits; other ``step_*`` names are
    not snapshots. A missing directory has none.
    """
    return _scan_snapshots(directory)[0]


def _clean_value(value: Any) -> Any:
    """A JSON-safe scalar for the browser, or ``...`` (Ellipsis) to drop the value."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value[:_MAX_STRING_CHARS]
    return ...


def _info_value(value: Any) -> Any:
    """:func:`_clean_value`, with ``None`` for a value that is not a scalar (a list in a
    foreign config, say), so that the run's info stays JSON."""
    scalar = _clean_value(value)
    return None if scalar is ... else scalar


def clean_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """Keep the scalar values of ``record`` (non-finite floats become None; long strings cut)."""
    cleaned: dict[str, Any] = {}
    for key, value in itertools.islice(record.items(), _MAX_KEYS_PER_RECORD):
        scalar = _clean_value(value)
        if scalar is not ...:
            cleaned[str(key)[:_MAX_KEY_CHARS]] = scalar
    return cleaned


@dataclass(frozen=True)
class MetricsBatch:
    """Records handed to one client.

    Attributes
    ----------
    reset
        The client must drop what it has (first batch, or the file was replaced).
    records
        The records, oldest first.
    generation
        Incremented each time the file is replaced or shrinks; part of the cursor.
    cursor
        Sequence number of the next record to ask for.
    more
        More records are already waiting after ``cursor``.
    """

    reset: bool
    records: list[dict[str, Any]]
    generation: int
    cursor: int
    more: bool


class MetricsTail:
    """Follows a ``metrics.jsonl`` file that another process appends to.

    Every complete line becomes a record with a sequence number (0, 1, … within a
    ``generation``). Only the newest ``history`` records are kept, so memory is
    bounded however long the run is; on the first read of a large file only its
    last ``initial_bytes`` are parsed.

    Parameters
    ----------
    path
        The ``metrics.jsonl`` file (it may not exist yet).
    history
        Most records kept.
    max_read_bytes
        Most bytes read per :meth:`poll` (the rest is read by the next polls).
    max_line_bytes
        Longer lines are skipped (a corrupt file cannot make the buffer grow).
    initial_bytes
        How much of the end of an existing file the first poll reads.
    """

    def __init__(
        self,
        path: Path,
        *,
        history: int = 2000,
        max_read_bytes: int = 8 * 1024 * 1024,
        max_line_bytes: int = 1024 * 1024,
        initial_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        if history < 1:
            raise ValueError(f"history must be >= 1, got {history}")
        self.path = path
        self.history = history
        self.max_read_bytes = max_read_bytes
        self.max_line_bytes = max_line_bytes
        self.initial_bytes = initial_bytes
        #: ``(sequence number, record)``, oldest first.
        self.records: deque[tuple[int, dict[str, Any]]] = deque(maxlen=history)
        self.generation = 0
        self.next_seq = 0
        #: Records dropped because they were malformed (not JSON objects).
        self.skipped_lines = 0
        self._offset = 0
        self._identity: tuple[int, int] | None = None
        self._pending = b""
        self._discard_to_newline = False

    def _reset(self) -> None:
        self.records.clear()
        self.generation += 1
        self.next_seq = 0
        self._offset = 0
        self._identity = None
        self._pending = b""
        self._discard_to_newline = False

    def poll(self) -> bool:
        """Read what was appended since the last call.

        Returns
        -------
        bool
            Whether records were added or the history was reset.
        """
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            if self._identity is not None:
                self._reset()
                return True
            return False
        identity = (stat.st_dev, stat.st_ino)
        changed = False
        replaced = identity != self._identity or stat.st_size < self._offset
        if self._identity is not None and replaced:
            # Replaced (atomic rewrite on resume) or truncated: start over.
            self._reset()
            changed = True
        if self._identity is None:
            self._identity = identity
            if stat.st_size > self.initial_bytes:
                self._offset = stat.st_size - self.initial_bytes
                self._discard_to_newline = True
        if stat.st_size <= self._offset:
            return changed
        try:
            with open(self.path, "rb") as handle:
                opened = os.fstat(handle.fileno())
                if (opened.st_dev, opened.st_ino) != identity:
                    return changed  # replaced between stat and open: next poll resets
                handle.seek(self._offset)
                chunk = handle.read(min(stat.st_size - self._offset, self.max_read_bytes))
        except FileNotFoundError:
            return changed
        self._offset += len(chunk)
        return self._consume(chunk) or changed

    def _consume(self, chunk: bytes) -> bool:
        data = self._pending + chunk
        lines = data.split(b"\n")
        self._pending = lines.pop()  # the part after the last newline: not complete yet
        if len(self._pending) > self.max_line_bytes:
            self._pending = b""
            self._discard_to_newline = True
            self.skipped_lines += 1
        added = False
        for line in lines:
            if self._discard_to_newline:
                self._discard_to_newline = False
                continue
            if not line.strip() or len(line) > self.max_line_bytes:
                continue
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                self.skipped_lines += 1
                continue
            if not isinstance(record, dict):
                self.skipped_lines += 1
                continue
            self.records.append((self.next_seq, clean_record(record)))
            self.next_seq += 1
            added = True
        return added

    def since(self, generation: int | None, cursor: int | None, limit: int) -> MetricsBatch:
        """The records a client with ``(generation, cursor)`` has not seen, at most ``limit``.

        A client without a cursor, of an older generation, or so far behind that its
        records were dropped from the history gets ``reset=True`` and the oldest kept
        records.
        """
        oldest = self.records[0][0] if self.records else self.next_seq
        reset = (
            generation is None
            or cursor is None
            or generation != self.generation
            or cursor < oldest
            or cursor > self.next_seq
        )
        start = oldest if reset else int(cursor or 0)
        first = start - oldest
        chunk = [record for _, record in itertools.islice(self.records, first, first + limit)]
        end = start + len(chunk)
        return MetricsBatch(
            reset=reset,
            records=chunk,
            generation=self.generation,
            cursor=end,
            more=end < self.next_seq,
        )


def _mtime_ns(path: Path) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except (FileNotFoundError, NotADirectoryError):
        return None


def _read_bounded(path: Path, limit: int) -> tuple[str, bool]:
    """The first ``limit`` bytes of ``path`` as text, and whether it was cut."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return "", False
    return data[:limit].decode("utf-8", errors="replace"), len(data) > limit


def _flatten_summary(summary: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``(key, scalar)`` rows of ``metrics.json``: top-level scalars and one level of dicts."""
    rows: list[tuple[str, Any]] = []
    for key, value in summary.items():
        if key == "final":
            continue  # the last training line: already on the charts
        if isinstance(value, Mapping):
            for sub, inner in value.items():
                scalar = _clean_value(inner)
                if scalar is not ...:
                    rows.append((f"{key}.{sub}", scalar))
        else:
            scalar = _clean_value(value)
            if scalar is not ...:
                rows.append((str(key), scalar))
    return [(k[:_MAX_KEY_CHARS], v) for k, v in rows[:_MAX_SUMMARY_ROWS]]


class RunWatcher:
    """Everything the dashboard shows of one run directory, refreshed by :meth:`poll`.

    :meth:`poll` runs in a worker thread while the server reads; a lock guards
    the state. ``info_version`` and ``config_version`` increase whenever
    :meth:`info` or :meth:`config` would return something new.

    Parameters
    ----------
    root
        The run directory.
    history
        Most ``metrics.jsonl`` records kept (see :class:`MetricsTail`).
    """

    def __init__(self, root: Path, *, history: int = 2000) -> None:
        self.root = root
        self.name = root.resolve().name or str(root)
        self.tail = MetricsTail(root / "metrics.jsonl", history=history)
        self.info_version = 0
        self.config_version = 0
        self._lock = threading.Lock()
        self._config_mtime: int | None = None
        self._config_text = ""
        self._config_truncated = False
        self._config: dict[str, Any] = {}
        self._summary_mtime: int | None = None
        self._summary: dict[str, Any] = {}
        self._snapshots_mtime: int | None = None
        self._snapshot: Path | None = None
        self._snapshot_step: int | None = None
        self._rejected_snapshots: frozenset[str] = frozenset()
        self._info: dict[str, Any] = {}
        #: The files of this run that failed to read on the last poll (logged once each).
        self.errors = PollErrors(f"run {root}")

    # -- polling (worker thread) --------------------------------------------------------------

    def poll(self) -> bool:
        """Re-read what changed on disk; whether anything a client sees changed.

        Each file is read under :attr:`errors`: one that raises (unreadable, malformed in
        an unforeseen way) is logged once and keeps its last state, and the other files
        are still read, so this method does not raise :class:`Exception`.
        """
        with self._lock:
            run = self.errors.run
            changed = run("metrics.jsonl", self.tail.poll, False)
            run("config.yaml", self._poll_config, None)
            run("metrics.json", self._poll_summary, None)
            run("snapshots/", self._poll_snapshots, None)
            info = run("the run status", self._build_info, self._info)
            if info != self._info:
                self._info = info
                self.info_version += 1
                changed = True
            return changed

    def _poll_config(self) -> None:
        path = self.root / "config.yaml"
        mtime = _mtime_ns(path)
        if mtime == self._config_mtime:
            return
        self._config_mtime = mtime
        self._config_text, self._config_truncated = _read_bounded(path, _MAX_CONFIG_BYTES)
        try:  # the config loader's reader: size/alias limits, YAML 1.2 numbers
            parsed = (
                load_yaml_text(self._config_text, str(path))[0]
                if not self._config_truncated
                else None
            )
        except ConfigError:
            parsed = None
        self._config = parsed if isinstance(parsed, dict) else {}
        self.config_version += 1

    def _poll_summary(self) -> None:
        path = self.root / "metrics.json"
        mtime = _mtime_ns(path)
        if mtime == self._summary_mtime:
            return
        self._summary_mtime = mtime
        text, truncated = _read_bounded(path, _MAX_SUMMARY_BYTES)
        summary: Any = {}
        if text and not truncated:
            try:
                summary = json.loads(text)
            except json.JSONDecodeError:
                summary = {}  # written atomically, so only a foreign file can be malformed
        self._summary = summary if isinstance(summary, dict) else {}

    def _poll_snapshots(self) -> None:
        directory = self.root / "snapshots"
        mtime = _mtime_ns(directory)
        if mtime == self._snapshots_mtime and mtime is not None:
            return
        self._snapshot, self._snapshot_step, rejected = _scan_snapshots(directory)
        self._snapshots_mtime = mtime
        new = sorted(set(rejected) - self._rejected_snapshots)
        self._rejected_snapshots = frozenset(rejected)
        if new:
            shown = ", ".join(repr(name) for name in new[:_MAX_NAMES_LOGGED])
            more = (
                f" and {len(new) - _MAX_NAMES_LOGGED} more" if len(new) > _MAX_NAMES_LOGGED else ""
            )
            _log.warning(
                "run %s: ignoring %s%s in snapshots/: a snapshot is named step_<n>.h5 (or "
                ".pt) with n 1 to %d ASCII digits",
                self.root,
                shown,
                more,
                MAX_COUNT_DIGITS,
            )

    def _section(self, name: str) -> Mapping[str, Any]:
        value = self._config.get(name)
        return value if isinstance(value, Mapping) else {}

    def _build_info(self) -> dict[str, Any]:
        training = self._section("training")
        env = self._section("env")
        agent = self._section("agent")
        last_step = None
        if self.tail.records:
            step = self.tail.records[-1][1].get("step")
            last_step = step if isinstance(step, int) else None
        summary_step = self._summary.get("step")
        step = last_step if last_step is not None else summary_step
        snapshot_step = self._snapshot_step
        status = self._summary.get("status")
        if not isinstance(status, str):
            status = "running" if self.tail.records else "starting"
        target = env.get("target_density") if env.get("task") == "target_density" else None
        setpoint = env.get("task") == "setpoint_density"
        low = _info_value(env.get("setpoint_low")) if setpoint else None
        high = _info_value(env.get("setpoint_high")) if setpoint else None
        return {
            "name": self.name[:_MAX_STRING_CHARS],
            "path": str(self.root.resolve())[:1000],
            "status": status[:_MAX_STRING_CHARS],
            "step": _info_value(step),
            "total_steps": _info_value(training.get("total_steps")),
            "algorithm": _info_value(agent.get("algorithm")),
            "env_id": _info_value(env.get("id")),
            "target_density": _info_value(target),
            "setpoint_low": low,
            "setpoint_high": high,
            "updated": (_mtime_ns(self.tail.path) or 0) / 1e9 or None,
            "snapshot_step": snapshot_step,
            "summary": _flatten_summary(self._summary),
        }

    # -- reading (server) ---------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """Name, path, status, step / total steps, latest snapshot step, summary rows."""
        with self._lock:
            return dict(self._info, server_time=time.time())

    def config(self) -> dict[str, Any]:
        """The text of ``config.yaml`` (cut at 256 KiB)."""
        with self._lock:
            return {"text": self._config_text, "truncated": self._config_truncated}

    def snapshot_path(self) -> Path | None:
        """The newest snapshot file, if any."""
        with self._lock:
            return self._snapshot

    def since(self, generation: int | None, cursor: int | None, limit: int) -> MetricsBatch:
        """See :meth:`MetricsTail.since`."""
        with self._lock:
            return self.tail.since(generation, cursor, limit)


def watchers_for(paths: Sequence[Path], *, history: int = 2000) -> list[RunWatcher]:
    """One :class:`RunWatcher` per run directory (see :func:`resolve_run_dirs`)."""
    return [RunWatcher(path, history=history) for path in resolve_run_dirs(paths)]
