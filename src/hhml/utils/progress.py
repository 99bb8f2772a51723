"""Progress that never writes a carriage return into a log: the one mechanism behind
``hhml-train``'s and ``hhml-analyze``'s progress.

On a terminal it is a tqdm bar; elsewhere (a log file, a pipe, a notebook, click's
CliRunner) a plain line at most every ``interval_s`` seconds and one last line on
:meth:`LineProgress.close` if the count moved since the last one. Subclasses say what a
plain line reads (:meth:`LineProgress.line`).

Public names: :class:`LineProgress`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from hhml.errors import ConfigError
from hhml.utils.terminal import is_terminal

__all__ = ["LineProgress"]


class LineProgress:
    """A count from ``initial`` towards ``total``: a bar on a terminal, plain lines elsewhere.

    Parameters
    ----------
    total, initial
        The count's end and start.
    enabled
        ``False``: print nothing.
    interval_s
        Seconds between two plain lines (ignored on a terminal); > 0.
    stream
        Where to write; ``None``: ``sys.stderr`` at construction.
    clock
        Monotonic clock in seconds (tests pass a fake one).
    bar
        Keyword arguments of the tqdm bar (``desc``, ``unit``, ...).

    Raises
    ------
    ConfigError
        ``interval_s`` is not a positive number.
    """

    def __init__(
        self,
        total: int,
        initial: int,
        enabled: bool,
        *,
        interval_s: float,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        bar: Mapping[str, Any] | None = None,
    ) -> None:
        if not interval_s > 0:
            raise ConfigError(f"interval_s = {interval_s!r} is invalid; give seconds > 0")
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = enabled
        self._total, self._count, self._initial = total, initial, initial
        self._interval, self._clock = float(interval_s), clock
        self._start = self._last_line = clock()
        self._printed = initial
        self._bar: Any = None
        if enabled and is_terminal(self._stream):
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, file=self._stream, **(bar or {}))

    @property
    def is_bar(self) -> bool:
        """Whether a tqdm bar is shown (enabled, on a terminal)."""
        return self._bar is not None

    def _advance(self, n: int) -> None:
        """Count ``n`` more (a plain line if ``interval_s`` has passed since the last)."""
        self._count += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._enabled and self._clock() - self._last_line >= self._interval:
            self._print_line()

    def close(self) -> None:
        """Close the bar, or print the last plain line if the count moved since the last."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._enabled and self._count != self._printed:
            self._print_line()
        self._enabled = False

    def line(self) -> str:
        """The plain line (subclasses say what it reads)."""
        raise NotImplementedError

    def _print_line(self) -> None:
        print(self.line(), file=self._stream, flush=True)
        self._last_line = self._clock()
        self._printed = self._count
