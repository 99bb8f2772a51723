"""``hhml-monitor``: a live web dashboard over one or more run directories.

Exit codes: 0 stopped with Ctrl-C / SIGTERM; 2 invalid invocation (a path that is not
a run directory, an address that cannot be bound) — reported in one line.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import NoReturn

import click

from hhml.cli.common import (
    CONTEXT_SETTINGS,
    EXIT_USAGE,
    common_options,
    exit_codes_epilog,
    fail,
    say,
)
from hhml.errors import HHmLError

__all__ = ["EXIT_USAGE", "main", "warn_if_exposed"]

_HELP = """Serve a live web dashboard over one or more run directories.

Each RUN_DIR is a directory written by hhml-train (it holds config.yaml or
metrics.jsonl), or a directory of them such as results/runs. The dashboard only
reads the files — the training process needs no cooperation — and shows, per run:
the reward (episode, evaluation, baseline), the reward terms, the vortex density
against the null model, the agent's losses, steps per second, the 23 control
parameters, the newest field snapshot with its vortices, the status and
metrics.json summary, and config.yaml. Charts update by server-sent events
within about --poll-interval seconds of a metrics line being written.

It listens on 127.0.0.1 (this machine only) unless --host says otherwise; the
dashboard has no authentication, so a warning is printed for any other address.
Stop it with Ctrl-C. The line with the address is printed even with -q;
--no-progress is accepted (the dashboard shows no progress bar).

\b
Examples:
  hhml-monitor results/runs/quickstart
  hhml-monitor results/runs --port 8080
  hhml-monitor run-a run-b --host 0.0.0.0      (reachable from the network)
"""

_EPILOG = exit_codes_epilog({0: "stopped (Ctrl-C / SIGTERM)", 2: "invalid invocation"})


def _fail(message: str) -> NoReturn:
    fail("hhml-monitor", message, EXIT_USAGE)


def warn_if_exposed(host: str, prog: str) -> None:
    """Print a warning to stderr when ``host`` is not a loopback address."""
    from hhml.monitoring.server import is_loopback

    if not is_loopback(host):
        click.echo(
            f"{prog}: warning: listening on {host}: the dashboard (no authentication) is "
            "reachable from other machines; use --host 127.0.0.1 to keep it local",
            err=True,
        )


@click.command(help=_HELP, epilog=_EPILOG, context_settings=CONTEXT_SETTINGS)
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0: every interface, with a warning).",
)
@click.option(
    "--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="0: any free."
)
@click.option(
    "--poll-interval",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0.05, 60.0),
    help="Seconds between two looks at the run directories.",
)
@click.option(
    "--history",
    default=2000,
    show_default=True,
    type=click.IntRange(10, 1_000_000),
    help="Most metrics lines kept per run and sent to a new browser (the newest).",
)
@common_options("hhml-monitor")
def main(
    run_dirs: tuple[Path, ...], host: str, port: int, poll_interval: float, history: int
) -> None:
    """Entry point of ``hhml-monitor``."""
    from hhml.monitoring.server import DashboardServer, DashboardSettings

    settings = DashboardSettings(poll_interval=poll_interval, history=history)
    try:
        server = DashboardServer(list(run_dirs), host, port, settings=settings)
    except HHmLError as exc:
        _fail(str(exc))
    warn_if_exposed(host, "hhml-monitor")
    names = ", ".join(w.name for w in server.dashboard.watchers)
    click.echo(f"hhml-monitor: serving {names} at {server.url} (Ctrl-C to stop)")
    # uvicorn re-raises the captured SIGINT once it has shut down.
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    say("hhml-monitor: stopped")


if __name__ == "__main__":  # pragma: no cover
    main()
