"""Whether a stream is an interactive terminal: the one test behind every progress display
(a bar on a terminal, plain lines in a log file or pipe).

Public names: :func:`is_terminal`.
"""

from __future__ import annotations

from typing import TextIO

__all__ = ["is_terminal"]


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal (False for files, pipes, StringIO,
    click's test runner and closed streams)."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except ValueError:  # a closed stream
        return False
