"""Live monitoring of run directories: a web dashboard that reads only the files.

``hhml-monitor RUN_DIR...`` (or ``hhml-train --dashboard``) serves charts of
``metrics.jsonl``, the newest field snapshot, the config and the status of one or
more run directories, updated by server-sent events (see ``docs/monitoring.md``).

Modules: :mod:`~hhml.monitoring.runs` (tail and watch run directories, bounded),
:mod:`~hhml.monitoring.server` (the Starlette app and the uvicorn server),
:mod:`~hhml.monitoring.snapshot_image` (snapshot → PNG),
:mod:`~hhml.monitoring.snapshot_cache` (bounded cache of rendered images). The page
itself lives in ``static/`` (HTML, CSS, JS); plotly.js is served from the installed
``plotly`` package.

Public names: ``MetricsTail``, ``RunWatcher``, ``resolve_run_dirs``, ``DashboardServer``,
``DashboardSettings``, ``DashboardError``, ``create_app``, ``render_snapshot_png``.
"""

from __future__ import annotations

from hhml.monitoring.runs import MetricsTail, RunWatcher, resolve_run_dirs
from hhml.monitoring.server import DashboardError, DashboardServer, DashboardSettings, create_app
from hhml.monitoring.snapshot_image import render_snapshot_png

__all__ = [
    "DashboardError",
    "DashboardServer",
    "DashboardSettings",
    "MetricsTail",
    "RunWatcher",
    "create_app",
    "render_snapshot_png",
    "resolve_run_dirs",
]
