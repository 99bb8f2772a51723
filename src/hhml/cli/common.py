"""What every ``hhml-*`` command shares: options, verbosity, exit codes, one-line errors.

Every console script is built as::

    @click.command(help=..., epilog=exit_codes_epilog({...}), context_settings=CONTEXT_SETTINGS)
    ... its own arguments and options ...
    @common_options("hhml-tool")
    def main(...): ...

which gives it ``-h/--help``, ``--version``, ``-q/--quiet``, ``-v/--verbose`` and
``--no-progress``. Verbosity levels (:func:`verbosity`): ``-1`` quiet (the command's
result and warnings/errors only), ``0`` default (the info lines of the command), ``1``
verbose (also debug logging of the ``hhml`` logger on stderr). This module imports
neither torch nor any other heavy module, so ``--help`` stays fast.

Public names: ``EXIT_OK``, ``EXIT_ERROR``, ``EXIT_USAGE``, ``EXIT_INTERRUPTED``,
``CONTEXT_SETTINGS``, ``common_options``, ``configure_logging``, ``exit_codes_epilog``,
``fail``, ``say``, ``verbosity``, ``show_progress``, ``stderr_is_terminal``,
``verbosity_flags``.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeVar

import click

from hhml.errors import ConfigError

__all__ = [
    "CONTEXT_SETTINGS",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "common_options",
    "configure_logging",
    "exit_codes_epilog",
    "fail",
    "say",
    "show_progress",
    "stderr_is_terminal",
    "verbosity",
    "verbosity_flags",
]

#: The command did what it was asked.
EXIT_OK = 0
#: An error after the work had started (a failed check, a crash while training).
EXIT_ERROR = 1
#: Invalid invocation or input; reported in one line, nothing written.
EXIT_USAGE = 2
#: Interrupted by Ctrl-C / SIGTERM (128 + SIGINT), after saving what can be resumed.
EXIT_INTERRUPTED = 130

#: ``context_settings`` of every command: ``-h`` is ``--help``.
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}

_QUIET = "hhml.quiet"
_VERBOSE = "hhml.verbose"
_NO_PROGRESS = "hhml.no_progress"
_HANDLER_NAME = "hhml-cli"
_log = logging.getLogger("hhml.cli")

F = TypeVar("F", bound=Callable[..., Any])


def fail(prog: str, message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``<prog>: error: <message>`` as one line on stderr and exit with ``code``.

    Line breaks in ``message`` (and the indentation after them) become single spaces.
    """
    text = " ".join(line.strip() for line in str(message).splitlines() if line.strip())
    click.echo(f"{prog}: error: {text}", err=True)
    sys.exit(code)


def exit_codes_epilog(codes: Mapping[int, str]) -> str:
    """The ``--help`` epilog listing the exit codes, e.g. ``Exit codes: 0 done, 2 ...``."""
    return "Exit codes: " + ", ".join(f"{code} {meaning}" for code, meaning in codes.items()) + "."


def _store(key: str) -> Callable[[click.Context, click.Parameter, bool], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        ctx.meta[key] = bool(value)

    return callback


def _meta(key: str) -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx.meta.get(key, False)) if ctx is not None else False


def verbosity() -> int:
    """The verbosity of the running command: -1 quiet, 0 default, 1 verbose (0 outside one)."""
    return 1 if _meta(_VERBOSE) else -1 if _meta(_QUIET) else 0


def show_progress() -> bool:
    """Whether the running command may show progress (not ``--no-progress``, not ``-q``)."""
    return not _meta(_NO_PROGRESS) and verbosity() >= 0


def verbosity_flags() -> list[str]:
    """The ``-q``/``-v``/``--no-progress`` flags given, to pass on to a child process."""
    flags = {-1: ["--quiet"], 0: [], 1: ["--verbose"]}[verbosity()]
    return flags + (["--no-progress"] if _meta(_NO_PROGRESS) else [])


def stderr_is_terminal() -> bool:
    """Whether stderr is an interactive terminal (False for a log file, a pipe, CliRunner)."""
    from hhml.utils.terminal import is_terminal

    return is_terminal(sys.stderr)


def say(message: str, *, err: bool = False) -> None:
    """Echo an info line of the command (stdout, or stderr with ``err``) unless ``-q``."""
    if verbosity() >= 0:
        click.echo(message, err=err)


class _EchoHandler(logging.Handler):
    """Log records as lines on the current stderr (``click.echo``, so CliRunner sees them)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(self.format(record), err=True)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def configure_logging(level: int) -> Callable[[], None]:
    """Set the ``hhml`` logger for verbosity ``level`` (-1, 0 or 1); return the undo.

    -1 (``-q``): level WARNING, so only warnings and errors of the library appear.
    0 (default): the logger is left as Python leaves it (warnings and errors on stderr).
    1 (``-v``): level DEBUG, with a handler writing ``LEVEL name: message`` to stderr.

    Parameters
    ----------
    level
        -1, 0 or 1.

    Returns
    -------
    Callable[[], None]
        Restores the logger's level and handlers as they were before the call.

    Raises
    ------
    ConfigError
        ``level`` is not -1, 0 or 1.
    """
    if level not in (-1, 0, 1):
        raise ConfigError(f"verbosity {level!r} is invalid; valid: -1 (quiet), 0, 1 (verbose)")
    logger = logging.getLogger("hhml")
    old_level, old_handlers = logger.level, list(logger.handlers)
    for handler in old_handlers:
        if handler.get_name() == _HANDLER_NAME:
            logger.removeHandler(handler)
    if level == 1:
        handler = _EchoHandler()
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    elif level == -1:
        logger.setLevel(logging.WARNING)

    def undo() -> None:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        for handler in old_handlers:
            logger.addHandler(handler)
        logger.setLevel(old_level)

    return undo


def common_options(prog: str) -> Callable[[F], F]:
    """Add ``-q/--quiet``, ``-v/--verbose``, ``--no-progress`` and ``--version`` to a command.

    Put it under ``@click.command``. Before the command body runs, ``-q`` with ``-v`` is
    rejected as a usage error (exit 2), and :func:`configure_logging` is applied for the
    duration of the command. The body reads the flags with :func:`verbosity` and
    :func:`show_progress`.

    Parameters
    ----------
    prog
        The command's name, e.g. ``"hhml-train"`` (shown by ``--version``).
    """

    def decorate(f: F) -> F:
        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            ctx = click.get_current_context()
            if ctx.meta.get(_QUIET) and ctx.meta.get(_VERBOSE):
                raise click.UsageError("-q/--quiet and -v/--verbose exclude each other")
            ctx.call_on_close(configure_logging(verbosity()))
            _log.debug(
                "%s %s, python %s, arguments %s",
                prog,
                _version(),
                sys.version.split()[0],
                sys.argv[1:],
            )
            return f(*args, **kwargs)

        options = [
            click.option(
                "-q",
                "--quiet",
                is_flag=True,
                expose_value=False,
                callback=_store(_QUIET),
                help="Print only results, warnings and errors (no info lines, no progress).",
            ),
            click.option(
                "-v",
                "--verbose",
                is_flag=True,
                expose_value=False,
                callback=_store(_VERBOSE),
                help="Also print the debug log of the hhml library on stderr.",
            ),
            click.option(
                "--no-progress",
                is_flag=True,
                expose_value=False,
                callback=_store(_NO_PROGRESS),
                help="Show no progress (a bar on a terminal, otherwise a line every 30 s).",
            ),
            click.version_option(_version(), "--version", prog_name=prog),
        ]
        decorated: Any = wrapper
        for option in reversed(options):
            decorated = option(decorated)
        return decorated  # type: ignore[no-any-return]

    return decorate


def _version() -> str:
    from hhml import __version__

    return __version__
