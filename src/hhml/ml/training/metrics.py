"""Metric records and the writers that listen to them.

The training loop knows nothing about files: it emits flat records
``{"kind": ..., "step": ..., "<group>/<name>": value}`` to a list of
:class:`MetricsWriter` objects — :class:`JsonlWriter` (``metrics.jsonl``),
:class:`TensorBoardWriter` (``tensorboard/``) and :class:`ProgressBar` (tqdm on a
terminal, a plain line every 30 s otherwise).

Record kinds: ``"baseline"`` (random-action returns on the eval seeds),
``"train"`` (every ``training.log_every`` steps) and ``"eval"``.
Keys under ``time/`` depend on the wall clock and differ between runs; every
other value of a run is reproducible from its seed.

Public names: ``MetricsWriter``, ``JsonlWriter``, ``TensorBoardWriter``,
``ProgressBar``, ``IntervalStats``, ``read_metrics``, ``truncate_metrics``,
``environment_info``, ``TIME_PREFIX``.
"""

from __future__ import annotations

import os
import platform
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TextIO

import numpy as np
import torch

from hhml import __version__
from hhml.errors import CheckpointError
from hhml.utils.atomic_io import (
    append_jsonl,
    atomic_write_bytes,
    read_metrics_records,
    scan_metrics_lines,
)
from hhml.utils.progress import LineProgress

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

__all__ = [
    "TIME_PREFIX",
    "IntervalStats",
    "JsonlWriter",
    "MetricsWriter",
    "ProgressBar",
    "TensorBoardWriter",
    "environment_info",
    "read_metrics",
    "truncate_metrics",
]

#: Prefix of the wall-clock dependent keys of a record.
TIME_PREFIX = "time/"


class MetricsWriter(Protocol):
    """Something that listens to metric records."""

    def write(self, record: Mapping[str, Any]) -> None:
        """Handle one record (``kind``, ``step`` and scalar values)."""

    def close(self) -> None:
        """Flush and release resources."""


class JsonlWriter:
    """Appends each record as one line of ``metrics.jsonl`` (flushed and fsync'ed).

    Parameters
    ----------
    path
        The JSONL file (created on the first record).
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, record: Mapping[str, Any]) -> None:
        """Append ``record``."""
        append_jsonl(self.path, record)

    def close(self) -> None:
        """Nothing to release (every line is flushed when written)."""


class TensorBoardWriter:
    """Writes every numeric value of a record as a scalar tagged by its key.

    Parameters
    ----------
    log_dir
        The ``tensorboard/`` directory.
    purge_step
        On resume, the first step after the checkpoint: events at and after it
        that the killed run had written are hidden by TensorBoard.
    """

    def __init__(self, log_dir: Path, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._writer: SummaryWriter = SummaryWriter(str(log_dir), purge_step=purge_step)

    def write(self, record: Mapping[str, Any]) -> None:
        """Add each ``int``/``float`` value except ``step`` at ``record["step"]``."""
        step = int(record["step"])
        kind = str(record.get("kind", ""))
        for key, value in record.items():
            if key in ("step", "kind") or isinstance(value, bool):
                continue
            if isinstance(value, (int, float)):
                tag = key if "/" in key else f"{kind}/{key}"
                self._writer.add_scalar(tag, value, global_step=step)
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self._writer.close()


class ProgressBar(LineProgress):
    """Progress over the environment steps, with reward and vortex density.

    On a terminal (``stream.isatty()``) it is a tqdm bar. Otherwise (a log file, a pipe,
    a notebook, click's CliRunner) it prints a plain line at most every ``interval_s``
    seconds, such as ``step 1200/4000 (30 %), 95 steps/s, eta 29 s, reward -812.3``, and
    one last line on :meth:`close` — never a carriage return.

    Parameters
    ----------
    total
        ``training.total_steps``.
    initial
        The step the run starts (or resumes) at.
    enabled
        ``training.progress_bar``; a disabled bar prints nothing.
    interval_s
        Seconds between two plain lines (ignored on a terminal); > 0.
    stream
        Where to write; ``None``: ``sys.stderr`` at construction.
    clock
        Monotonic clock in seconds (tests pass a fake one).

    Raises
    ------
    ConfigError
        ``interval_s`` is not a positive number.
    """

    #: Record key → label on the bar, in display order.
    SHOWN: ClassVar[dict[str, str]] = {
        "episode/return_mean": "reward",
        "vortex/density": "vortex",
        "eval/return_mean": "eval",
        "baseline/return_mean": "baseline",
    }

    def __init__(
        self,
        total: int,
        initial: int,
        enabled: bool,
        *,
        interval_s: float = 30.0,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._postfix: dict[str, str] = {}
        bar = {"unit": "step", "dynamic_ncols": True}
        super().__init__(
            total, initial, enabled, interval_s=interval_s, stream=stream, clock=clock, bar=bar
        )

    def advance(self, steps: int) -> None:
        """Move the bar by ``steps`` environment steps."""
        self._advance(steps)

    def write(self, record: Mapping[str, Any]) -> None:
        """Show the latest episode return, vortex density, evaluation and baseline returns."""
        for key, label in self.SHOWN.items():
            value = record.get(key)
            if isinstance(value, (int, float)):
                self._postfix[label] = f"{value:.4g}"
        if self._bar is not None:
            self._bar.set_postfix(self._ordered(), refresh=False)

    def _ordered(self) -> dict[str, str]:
        return {
            label: self._postfix[label] for label in self.SHOWN.values() if label in self._postfix
        }

    def line(self) -> str:
        """The plain progress line, e.g. ``step 1200/4000 (30 %), 95 steps/s, eta 29 s``."""
        elapsed = self._clock() - self._start
        done = self._count - self._initial
        parts = [f"step {self._count}/{self._total}"]
        if self._total > 0:
            parts[0] += f" ({100 * self._count // self._total} %)"
        if elapsed > 0 and done > 0:
            rate = done / elapsed
            parts.append(f"{rate:.4g} steps/s")
            if self._count < self._total:
                parts.append(f"eta {_duration((self._total - self._count) / rate)}")
        parts += [f"{label} {value}" for label, value in self._ordered().items()]
        return ", ".join(parts)


def _duration(seconds: float) -> str:
    """``seconds`` as ``42 s``, ``12 min 5 s`` or ``3 h 20 min``."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


class IntervalStats:
    """Running means of scalars between two log lines (resumable: plain floats).

    ``add(name, values)`` accumulates the mean of ``values`` (e.g. one value per
    env); ``means()`` returns ``{name: mean over the calls}``; ``last`` values are
    kept for quantities where the latest value is what matters (the parameters).
    """

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.last: dict[str, float] = {}
        self.totals: dict[str, float] = {}

    def add(self, name: str, values: Any) -> None:
        """Accumulate the mean of ``values`` (a scalar or an array) under ``name``."""
        value = float(np.mean(np.asarray(values, dtype=np.float64)))
        self.sums[name] = self.sums.get(name, 0.0) + value
        self.counts[name] = self.counts.get(name, 0) + 1

    def add_sum(self, name: str, total: float, count: int) -> None:
        """Accumulate ``count`` means whose sum is ``total`` under ``name`` (as ``count``
        calls of :meth:`add` would; used to merge accumulators kept elsewhere)."""
        self.sums[name] = self.sums.get(name, 0.0) + float(total)
        self.counts[name] = self.counts.get(name, 0) + int(count)

    def set_last(self, name: str, values: Any) -> None:
        """Remember the mean of ``values`` as the latest value of ``name``."""
        self.last[name] = float(np.mean(np.asarray(values, dtype=np.float64)))

    def add_count(self, name: str, count: float) -> None:
        """Add ``count`` to the interval total of ``name`` (e.g. terminations by reason)."""
        self.totals[name] = self.totals.get(name, 0.0) + float(count)

    def means(self) -> dict[str, float]:
        """``{name: mean}`` of the accumulated values, the totals, then the latest values."""
        result = {name: total / self.counts[name] for name, total in self.sums.items()}
        result.update(self.totals)
        result.update(self.last)
        return result

    def clear(self) -> None:
        """Start a new interval (latest values are kept)."""
        self.sums.clear()
        self.counts.clear()
        self.totals.clear()

    @classmethod
    def merged(cls, states: Sequence[Mapping[str, Any]]) -> IntervalStats:
        """The accumulators of several :meth:`state_dict` s combined (e.g. of all ranks).

        Sums, counts and totals add up, so :meth:`means` of the result is the mean
        over every value accumulated anywhere; latest values come from the first state.
        """
        result = cls()
        for state in reversed(states):
            result.last.update({str(k): float(v) for k, v in state["last"].items()})
        for state in states:
            for target, key in ((result.sums, "sums"), (result.totals, "totals")):
                for name, value in state[key].items():
                    target[str(name)] = target.get(str(name), 0.0) + float(value)
            for name, count in state["counts"].items():
                result.counts[str(name)] = result.counts.get(str(name), 0) + int(count)
        return result

    def state_dict(self) -> dict[str, Any]:
        """The accumulators, as plain Python containers."""
        return {
            "sums": dict(self.sums),
            "counts": dict(self.counts),
            "last": dict(self.last),
            "totals": dict(self.totals),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.sums = {str(k): float(v) for k, v in state["sums"].items()}
        self.counts = {str(k): int(v) for k, v in state["counts"].items()}
        self.last = {str(k): float(v) for k, v in state["last"].items()}
        self.totals = {str(k): float(v) for k, v in state["totals"].items()}


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Return the records of a ``metrics.jsonl`` file, in file order.

    Lines are checked by :func:`hhml.utils.atomic_io.parse_metrics_line` (a UTF-8
    JSON object with a non-negative integer ``step``). A torn last line (no newline)
    is skipped silently; any other malformed line is skipped with a warning naming
    the file and line (see :func:`hhml.utils.atomic_io.read_metrics_records`).
    """
    return read_metrics_records(path)


#: Record kinds that summarise a finished session; a resumed run writes them again at its end.
SESSION_END_KINDS = ("baselines",)


def truncate_metrics(path: Path, step: int) -> int:
    """Drop the records after ``step`` (written by a killed run after its checkpoint), and
    the :data:`SESSION_END_KINDS` records of an earlier session (e.g. the baselines scored
    with that session's smaller budget: the resumed run scores them again at its end).

    A malformed last line is the torn write of the killed run: it is dropped with a
    warning naming the file and line. Blank lines are dropped too. The file is
    rewritten atomically, and only if something was dropped.

    Parameters
    ----------
    path
        The run's ``metrics.jsonl`` (nothing to do if it does not exist).
    step
        The checkpoint's step; records with a larger ``step`` are dropped.

    Returns
    -------
    int
        The number of lines removed.

    Raises
    ------
    CheckpointError
        A malformed line (not UTF-8, not JSON, no integer ``step``) that is not the
        last line: it is not a torn write, and dropping it or the records after it
        would lose data. The message names the file and line; nothing is changed.
    """
    lines = scan_metrics_lines(path)
    content = [line for line in lines if not line.blank]
    for position, line in enumerate(content[:-1]):
        if line.error is not None:
            after = len(content) - position - 1
            raise CheckpointError(
                f"{line.error}; {after} non-blank line(s) follow it, so it is not the torn "
                f"last write of a killed run: repair or delete line {line.number} of {path}, "
                "then resume again"
            )
    if content and content[-1].error is not None:
        warnings.warn(
            f"{content[-1].error}: dropped as the torn last write of the killed run",
            stacklevel=2,
        )
    kept = [
        line.text
        for line in content
        if line.record is not None
        and line.record["step"] <= step
        and line.record.get("kind") not in SESSION_END_KINDS
    ]
    if len(kept) != len(lines):
        atomic_write_bytes(path, b"".join(text + b"\n" for text in kept))
    return len(lines) - len(kept)


def environment_info(device: torch.device) -> dict[str, Any]:
    """Hardware and software versions for ``metrics.json``."""
    import gymnasium

    hardware: dict[str, Any] = {
        "device": str(device),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        hardware["gpu"] = torch.cuda.get_device_name(device)
    versions = {
        "hhml": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "gymnasium": gymnasium.__version__,
    }
    return {"hardware": hardware, "versions": versions}
