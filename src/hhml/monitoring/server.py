"""The web dashboard: a Starlette app that serves run directories and streams updates.

One background task polls every watched run directory (:class:`~hhml.monitoring.runs.RunWatcher`)
every ``poll_interval`` seconds in a worker thread and wakes the clients of the runs that
changed. Each browser holds one server-sent-event stream per run it shows; the only state
the server keeps per client is its cursor ``(generation, sequence number)`` into the run's
bounded history, so a slow or stalled client costs no memory, and a client that
disconnects mid-stream just ends its generator. Clients beyond ``max_clients`` streams are
refused (503). A run that fails to poll is logged once and skipped; the others go on.

Numbers in URLs (run ids, ``?limit=``, ``?env=``, SSE cursors) are read only by
:func:`~hhml.monitoring.runs.parse_count`: an unknown run id is answered 404 and a bad
query value 400, each with a JSON ``{"error": ...}`` that names the value and what is valid.

Routes::

    /                                  the page (static HTML; every string is inserted by
                                       the browser as text, never as markup)
    /static/{name}                     dashboard.js, dashboard.css, and plotly.min.js served
                                       from the installed ``plotly`` Python package
    /api/runs                          the runs: id, name, status
    /api/runs/{id}/info                status, step, summary rows of metrics.json
    /api/runs/{id}/config              config.yaml as text
    /api/runs/{id}/metrics             the kept history (JSON; ?limit= most records, capped
                                       at ``history``)
    /api/runs/{id}/events              SSE: ``reset``/``metrics`` (records), ``info``, ``config``
    /api/runs/{id}/snapshot.png        the newest snapshot rendered (?env= batch index);
                                       cached per file and env, one render per image at a
                                       time (:mod:`~hhml.monitoring.snapshot_cache`)

:class:`DashboardServer` runs the app with uvicorn on a socket bound beforehand (so a busy
port is reported before anything starts), either in the foreground (``hhml-monitor``) or in
a daemon thread (``hhml-train --dashboard``).

Public names: ``DashboardSettings``, ``Dashboard``, ``create_app``, ``DashboardServer``,
``DashboardError``, ``bind_socket``, ``is_loopback``, ``plotly_js_path``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Route

from hhml.errors import CheckpointError, HHmLError
from hhml.monitoring.runs import (
    MAX_COUNT_DIGITS,
    PollErrors,
    RunWatcher,
    parse_count,
    watchers_for,
)
from hhml.monitoring.snapshot_cache import SnapshotImageCache
from hhml.monitoring.snapshot_image import render_snapshot_png

__all__ = [
    "Dashboard",
    "DashboardError",
    "DashboardServer",
    "DashboardSettings",
    "bind_socket",
    "create_app",
    "is_loopback",
    "plotly_js_path",
]

_STATIC = resources.files("hhml.monitoring") / "static"
_STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
# Scripts only from this server (no inline script can run even if markup slipped in);
# plotly injects <style> elements, hence 'unsafe-inline' for styles.
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_log = logging.getLogger(__name__)
#: Longest part of a rejected URL value echoed in an error message.
_MAX_ECHO_CHARS = 40


class DashboardError(HHmLError, OSError):
    """The dashboard cannot start (port in use, address not available, plotly.js missing)."""


class _RequestError(HHmLError, ValueError):
    """A request names an unknown run (404) or has a bad query value (400).

    Raised by the route handlers and answered by one exception handler as
    ``{"error": message}`` with ``status_code``.
    """

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


def _echo(text: str) -> str:
    """``text`` quoted for an error message, cut to a few characters."""
    cut = text[:_MAX_ECHO_CHARS]
    return repr(cut) + ("..." if len(text) > len(cut) else "")


def _query_count(request: Request, name: str, default: int) -> int:
    """The non-negative integer query parameter ``name`` (``default`` when absent).

    Raises
    ------
    _RequestError
        (400) The value is not 1 to ``MAX_COUNT_DIGITS`` ASCII digits.
    """
    text = request.query_params.get(name)
    if text is None:
        return default
    value = parse_count(text)
    if value is None:
        raise _RequestError(
            400,
            f"query parameter {name}={_echo(text)}: expected a non-negative integer "
            f"(1 to {MAX_COUNT_DIGITS} digits 0-9)",
        )
    return value


@dataclass(frozen=True)
class DashboardSettings:
    """Limits and cadence of the dashboard.

    Attributes
    ----------
    poll_interval
        Seconds between two looks at the run directories (an appended metrics line
        reaches the browsers within about this time).
    history
        Most ``metrics.jsonl`` records kept per run (and sent to a new client).
    batch
        Most records per server-sent event.
    keepalive
        Seconds between comment lines on an idle stream (detects dead clients).
    max_clients
        Most simultaneous event streams; more are answered 503.
    snapshot_dpi
        Resolution of the snapshot images, in dots per inch.
    snapshot_cache_images, snapshot_cache_bytes
        Most rendered snapshot images kept in memory, and their most total bytes.
    snapshot_renders
        Most snapshot renders running at once (each about a second of one CPU core);
        requests for an image being rendered wait for that render.
    """

    poll_interval: float = 0.5
    history: int = 2000
    batch: int = 500
    keepalive: float = 15.0
    max_clients: int = 200
    snapshot_dpi: int = 100
    snapshot_cache_images: int = 64
    snapshot_cache_bytes: int = 64 * 2**20
    snapshot_renders: int = 1


def plotly_js_path() -> Path:
    """``plotly.min.js`` of the installed ``plotly`` Python package.

    Raises
    ------
    DashboardError
        The package or its bundled ``package_data/plotly.min.js`` is missing.
    """
    try:
        import plotly
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise DashboardError("the plotly package is not installed (pip install plotly)") from exc
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise DashboardError(f"plotly.js not found at {path}; reinstall the plotly package")
    return path


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port`` 0: a free port).

    Raises
    ------
    DashboardError
        The address cannot be bound (port in use, unknown host, no permission).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise DashboardError(f"--host {host}: cannot resolve ({exc.strerror})") from exc
    family, socktype, proto, _, address = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise DashboardError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
            "choose another --port (0 picks a free one)"
        ) from exc
    sock.setblocking(False)
    return sock


def _render(path: Path, env: int, dpi: int) -> bytes:
    return render_snapshot_png(path, env, dpi=dpi)


def _json_text(payload: Any) -> str:
    # '<' escaped so that no JSON text can ever close a surrounding HTML element.
    return json.dumps(payload, allow_nan=False, separators=(",", ":")).replace("<", "\\u003c")


def _json_response(payload: Any, status_code: int = 200) -> Response:
    return Response(
        _json_text(payload),
        status_code=status_code,
        media_type="application/json",
        headers=_SECURITY_HEADERS,
    )


def _sse(event: str, payload: Any, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {_json_text(payload)}\n\n"


def _parse_cursor(text: str | None) -> tuple[int | None, int | None]:
    """``"generation:cursor"`` (an SSE ``Last-Event-ID``) → integers, or ``(None, None)``."""
    if not text:
        return None, None
    parts = text.split(":")
    if len(parts) != 2:
        return None, None
    generation, cursor = parse_count(parts[0]), parse_count(parts[1])
    if generation is None or cursor is None:
        return None, None
    return generation, cursor


class Dashboard:
    """The watched runs, the polling task and the change notifications.

    Parameters
    ----------
    watchers
        One per run directory; the run id in URLs is the index here.
    settings
        Limits and cadence.
    """

    def __init__(self, watchers: Sequence[RunWatcher], settings: DashboardSettings) -> None:
        self.watchers = list(watchers)
        self.settings = settings
        #: Event streams open right now.
        self.active_streams = 0
        self._changed: list[asyncio.Event] = []
        self._poller: asyncio.Task[None] | None = None
        #: Rendered snapshot images, by file and env (bounded, one render per image at a time).
        self.images = SnapshotImageCache(
            _render,
            max_images=settings.snapshot_cache_images,
            max_bytes=settings.snapshot_cache_bytes,
            max_renders=settings.snapshot_renders,
        )
        #: Runs (and the polling loop) whose poll raised; each failure is logged once.
        self.poll_errors = PollErrors("dashboard", _log)

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the run directories once and start polling them."""
        self._changed = [asyncio.Event() for _ in self.watchers]
        await anyio.to_thread.run_sync(self.poll_once)
        self._poller = asyncio.create_task(self._poll_forever())

    async def stop(self) -> None:
        """Stop polling and wake every stream so that it ends."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        for event in self._changed:
            event.set()

    def poll_once(self) -> list[int]:
        """Poll every run once (blocking file reads); the indices of the runs that changed.

        A run whose poll raises is logged once (see :class:`~hhml.monitoring.runs.PollErrors`)
        and counted as unchanged; the other runs are polled as usual.
        """
        changed: list[int] = []
        for i, watcher in enumerate(self.watchers):
            if self.poll_errors.run(f"run {i} ({watcher.root})", watcher.poll, False):
                changed.append(i)
        return changed

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_interval)
            try:
                changed = await anyio.to_thread.run_sync(self.poll_once)
            except Exception as exc:  # the loop must outlive any failure; logged once
                self.poll_errors.failed("the polling loop", exc)
                continue
            self.poll_errors.succeeded("the polling loop")
            for i in changed:
                self._notify(i)

    def _notify(self, run: int) -> None:
        # Swap in a fresh event before setting the old one: every waiter wakes exactly once
        # and re-subscribes to the new event before it reads the state again.
        old = self._changed[run]
        self._changed[run] = asyncio.Event()
        old.set()

    # -- streams ------------------------------------------------------------------------------

    async def events(self, run: int, last_event_id: str | None) -> AsyncIterator[str]:
        """The server-sent events of one client of ``run``.

        The first events after connecting (without a valid ``Last-Event-ID``) are a
        ``reset`` with the kept history, ``info`` and ``config``; then ``metrics``
        whenever lines are appended, and ``info``/``config`` when they change.
        """
        watcher = self.watchers[run]
        generation, cursor = _parse_cursor(last_event_id)
        info_sent = config_sent = -1
        self.active_streams += 1
        try:
            yield "retry: 2000\n\n"
            while True:
                changed = self._changed[run]
                batch = watcher.since(generation, cursor, self.settings.batch)
                generation, cursor = batch.generation, batch.cursor
                event_id = f"{generation}:{cursor}"
                if batch.reset:
                    yield _sse("reset", {"records": batch.records}, event_id)
                elif batch.records:
                    yield _sse("metrics", {"records": batch.records}, event_id)
                if watcher.info_version != info_sent:
                    info_sent = watcher.info_version
                    yield _sse("info", watcher.info())
                if watcher.config_version != config_sent:
                    config_sent = watcher.config_version
                    yield _sse("config", watcher.config())
                if batch.more:
                    continue
                if self._poller is None or self._poller.done():
                    return  # shutting down
                try:
                    await asyncio.wait_for(changed.wait(), self.settings.keepalive)
                except asyncio.TimeoutError:
                    # A dead client is noticed when this write fails (Starlette then
                    # cancels the stream); a disconnect message cancels it at once.
                    yield ": keepalive\n\n"
        finally:
            self.active_streams -= 1

    # -- snapshot images ----------------------------------------------------------------------

    async def snapshot_png(self, run: int, env: int) -> bytes | None:
        """The newest snapshot of ``run`` rendered for ``env``; ``None`` if there is none.

        Served from :attr:`images` while the file is unchanged (same path, modification
        time and size); simultaneous requests for one image share one render.

        Raises
        ------
        CheckpointError
            The snapshot cannot be read, or ``env`` is out of range.
        """
        path = await anyio.to_thread.run_sync(self.watchers[run].snapshot_path)
        if path is None:
            return None
        return await self.images.get(path, env, self.settings.snapshot_dpi)


def create_app(
    run_dirs: Sequence[Path], settings: DashboardSettings | None = None
) -> tuple[Starlette, Dashboard]:
    """The Starlette app over ``run_dirs`` and its :class:`Dashboard`.

    Raises
    ------
    CheckpointError
        A path is not a run directory (see :func:`~hhml.monitoring.runs.resolve_run_dirs`).
    DashboardError
        ``plotly.min.js`` is not available.
    """
    settings = settings or DashboardSettings()
    dashboard = Dashboard(watchers_for(run_dirs, history=settings.history), settings)
    plotly_js = plotly_js_path()

    def run_id(request: Request) -> int:
        text = str(request.path_params.get("run", ""))
        run = parse_count(text)
        if run is None or run >= len(dashboard.watchers):
            raise _RequestError(
                404,
                f"no run {_echo(text)}: run ids are 0 to {len(dashboard.watchers) - 1} "
                "(see /api/runs)",
            )
        return run

    def not_found(what: str) -> Response:
        return _json_response({"error": what}, status_code=404)

    async def request_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, _RequestError) else 500
        return _json_response({"error": str(exc)}, status_code=status)

    async def page(request: Request) -> Response:
        return await static_file(request, "index.html")

    async def static_file(request: Request, name: str | None = None) -> Response:
        name = name or str(request.path_params["name"])
        if name == "plotly.min.js":
            return FileResponse(
                plotly_js,
                media_type="text/javascript; charset=utf-8",
                headers={"Cache-Control": "max-age=86400", **_SECURITY_HEADERS},
            )
        if name not in _STATIC_FILES:
            return not_found(f"no static file {name!r}")
        body = (_STATIC / name).read_bytes()
        return Response(
            body,
            media_type=_STATIC_FILES[name],
            headers={"Cache-Control": "no-cache", **_SECURITY_HEADERS},
        )

    async def favicon(request: Request) -> Response:
        return Response(status_code=204)

    async def runs(request: Request) -> Response:
        return _json_response(
            {
                "runs": [
                    {"id": i, **{k: w.info().get(k) for k in ("name", "path", "status")}}
                    for i, w in enumerate(dashboard.watchers)
                ],
                "poll_interval": settings.poll_interval,
            }
        )

    async def info(request: Request) -> Response:
        return _json_response(dashboard.watchers[run_id(request)].info())

    async def config(request: Request) -> Response:
        return _json_response(dashboard.watchers[run_id(request)].config())

    async def metrics(request: Request) -> Response:
        run = run_id(request)
        limit = _query_count(request, "limit", settings.history)
        batch = dashboard.watchers[run].since(None, None, min(limit, settings.history))
        return _json_response({"records": batch.records, "cursor": batch.cursor})

    async def events(request: Request) -> Response:
        run = run_id(request)
        if dashboard.active_streams >= settings.max_clients:
            return _json_response({"error": "too many clients"}, status_code=503)
        last = request.headers.get("last-event-id") or request.query_params.get("cursor")
        return StreamingResponse(
            dashboard.events(run, last),
            media_type="text/event-stream",
            headers={
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
                **_SECURITY_HEADERS,
            },
        )

    async def snapshot(request: Request) -> Response:
        run = run_id(request)
        env = _query_count(request, "env", 0)
        try:
            png = await dashboard.snapshot_png(run, env)
        except CheckpointError as exc:
            return _json_response({"error": str(exc)}, status_code=422)
        if png is None:
            return not_found("no snapshot yet")
        return Response(
            png,
            media_type="image/png",
            headers={"Cache-Control": "no-cache", **_SECURITY_HEADERS},
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await dashboard.start()
        try:
            yield
        finally:
            await dashboard.stop()

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/static/{name}", static_file),
            Route("/favicon.ico", favicon),
            Route("/api/runs", runs),
            Route("/api/runs/{run}/info", info),
            Route("/api/runs/{run}/config", config),
            Route("/api/runs/{run}/metrics", metrics),
            Route("/api/runs/{run}/events", events),
            Route("/api/runs/{run}/snapshot.png", snapshot),
        ],
        lifespan=lifespan,
        exception_handlers={_RequestError: request_error},
    )
    return app, dashboard


class DashboardServer:
    """The dashboard app served by uvicorn on a pre-bound socket.

    Parameters
    ----------
    run_dirs
        Run directories (or directories of run directories).
    host, port
        Where to listen (``port`` 0 picks a free port); ignored when ``sock`` is given.
    settings
        Limits and cadence.
    sock
        An already listening socket (from :func:`bind_socket`).

    Raises
    ------
    CheckpointError
        A path is not a run directory.
    DashboardError
        The address cannot be bound.
    """

    def __init__(
        self,
        run_dirs: Sequence[Path],
        host: str = "127.0.0.1",
        port: int = 8765,
        *,
        settings: DashboardSettings | None = None,
        sock: socket.socket | None = None,
    ) -> None:
        import uvicorn

        self.app, self.dashboard = create_app(run_dirs, settings)
        self.socket = sock if sock is not None else bind_socket(host, port)
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port/`` of the listening socket."""
        host, port = self.socket.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    def serve_forever(self) -> None:
        """Serve in this thread until Ctrl-C / SIGTERM."""
        self._server.run(sockets=[self.socket])

    def start(self, timeout: float = 30.0) -> str:
        """Serve in a daemon thread; return the URL once the server accepts requests.

        Raises
        ------
        DashboardError
            The server did not start within ``timeout`` seconds.
        """
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self.socket]},
            name="hhml-dashboard",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise DashboardError(f"the dashboard at {self.url} did not start")
            time.sleep(0.02)
        return self.url

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the server to exit and wait for its thread (at most ``timeout`` s)."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.socket.close()
