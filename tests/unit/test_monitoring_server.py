"""Tests of the dashboard server: routes, escaping, SSE updates, disconnects, 50 clients.

Each test serves a small run directory with uvicorn on a free port of 127.0.0.1 in a
thread (the same code path as ``hhml-train --dashboard``) and talks to it with httpx.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch

from hhml.monitoring.server import (
    DashboardServer,
    DashboardSettings,
    is_loopback,
    plotly_js_path,
)

pytest.importorskip("httpx")

XSS = "<script>alert(1)</script>"
CONFIG = f"""\
env:
  id: hhml/MobiusVortex-v0
  task: target_density
  target_density: 0.03
training:
  total_steps: 1000
  run_name: "{XSS}"
"""
FAST = DashboardSettings(poll_interval=0.1, keepalive=1.0)


def line(step: int) -> str:
    return json.dumps({"kind": "train", "step": step, "reward/total": step / 100}) + "\n"


def append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)


def make_run(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "config.yaml").write_text(CONFIG, encoding="utf-8")
    append(root / "metrics.jsonl", line(100) + line(200))
    return root


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run(tmp_path / "run<script>alert(1)")


@pytest.fixture
def server(run_dir: Path) -> Iterator[DashboardServer]:
    dashboard = DashboardServer([run_dir], "127.0.0.1", 0, settings=FAST)
    dashboard.start()
    yield dashboard
    dashboard.stop()


def parse_events(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    """``(event, data)`` of an SSE stream (comments and retry lines skipped)."""
    event, data = "message", ""
    for text in lines:
        if text == "":
            if data:
                yield event, json.loads(data)
            event, data = "message", ""
        elif text.startswith("event: "):
            event = text[7:]
        elif text.startswith("data: "):
            data += text[6:]


async def aparse_events(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, Any]]:
    event, data = "message", ""
    async for text in lines:
        if text == "":
            if data:
                yield event, json.loads(data)
            event, data = "message", ""
        elif text.startswith("event: "):
            event = text[7:]
        elif text.startswith("data: "):
            data += text[6:]


def test_loopback_addresses() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.4", "example.org"))


def test_routes_serve_the_page_plotly_and_escaped_json(
    server: DashboardServer, run_dir: Path
) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "alert(1)" not in page.text  # the page is static: data arrive as JSON
        assert '<script src="/static/plotly.min.js"' in page.text

        plotly = client.get("/static/plotly.min.js")
        assert plotly.status_code == 200
        assert plotly.content == plotly_js_path().read_bytes()
        assert client.get("/static/dashboard.js").status_code == 200
        assert client.get("/static/../server.py").status_code == 404
        assert client.get("/static/runs.py").status_code == 404

        runs = client.get("/api/runs")
        assert "<script>" not in runs.text  # '<' is sent as \u003c
        assert runs.json()["runs"] == [
            {"id": 0, "name": run_dir.name, "path": str(run_dir.resolve()), "status": "running"}
        ]
        info = client.get("/api/runs/0/info").json()
        assert (info["step"], info["total_steps"], info["target_density"]) == (200, 1000, 0.03)
        config = client.get("/api/runs/0/config")
        assert "<script>" not in config.text
        assert config.json()["text"] == CONFIG
        metrics = client.get("/api/runs/0/metrics").json()
        assert [r["step"] for r in metrics["records"]] == [100, 200]
        assert client.get("/api/runs/1/info").status_code == 404
        assert client.get("/api/runs/x/info").status_code == 404
        assert client.get("/api/runs/0/snapshot.png").status_code == 404  # none yet


def test_snapshot_png_is_rendered(server: DashboardServer, run_dir: Path) -> None:
    (run_dir / "snapshots").mkdir()
    psi = torch.polar(torch.ones(1, 1, 8, 4), torch.rand(1, 1, 8, 4) * 6.28)
    snapshot = {
        "step": 300,
        "psi": psi,
        "vortex_index": torch.tensor([[0, 0, 2, 1]]),
        "vortex_position": torch.tensor([[1.0, 0.0]]),
        "vortex_charge": torch.tensor([1]),
        "chart": {"length": 6.28, "half_width": 1.0},
    }
    torch.save(snapshot, run_dir / "snapshots" / "step_0000000300.pt")
    with httpx.Client(base_url=server.url, timeout=20) as client:
        assert wait_until(lambda: client.get("/api/runs/0/info").json()["snapshot_step"] == 300)
        png = client.get("/api/runs/0/snapshot.png")
        assert png.status_code == 200
        assert png.headers["content-type"] == "image/png"
        assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
        assert client.get("/api/runs/0/snapshot.png?env=3").status_code == 422


def test_sse_sends_history_then_appended_lines_once(server: DashboardServer, run_dir: Path) -> None:
    metrics = run_dir / "metrics.jsonl"
    with (
        httpx.Client(base_url=server.url, timeout=10) as client,
        client.stream("GET", "/api/runs/0/events") as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        events = parse_events(response.iter_lines())
        kind, data = next(events)
        assert kind == "reset"
        assert [r["step"] for r in data["records"]] == [100, 200]
        seen = {kind for kind, _ in (next(events), next(events))}
        assert seen == {"info", "config"}

        full = line(300)
        append(metrics, full[:20])  # a torn line is not sent ...
        time.sleep(3 * FAST.poll_interval)
        append(metrics, full[20:] + line(400))  # ... until it is complete
        steps: list[int] = []
        for kind, data in events:
            if kind == "metrics":
                steps += [r["step"] for r in data["records"]]
            if len(steps) >= 2:
                break
        assert steps == [300, 400]


def test_a_client_disconnecting_mid_stream_does_not_hurt_others(
    server: DashboardServer, run_dir: Path
) -> None:
    dashboard = server.dashboard
    with httpx.Client(base_url=server.url, timeout=10) as client:
        with client.stream("GET", "/api/runs/0/events") as response:
            events = parse_events(response.iter_lines())
            kind, _ = next(events)
            assert kind == "reset"
            assert wait_until(lambda: dashboard.active_streams == 1)
            # The connection is closed in the middle of the stream, as a browser tab would.
        append(run_dir / "metrics.jsonl", line(300))  # written to a closed connection
        assert wait_until(lambda: dashboard.active_streams == 0)
        assert wait_until(lambda: client.get("/api/runs/0/info").json()["step"] == 300)

        with client.stream("GET", "/api/runs/0/events") as response:
            kind, data = next(parse_events(response.iter_lines()))
            assert kind == "reset"
            assert [r["step"] for r in data["records"]] == [100, 200, 300]
        assert client.get("/api/runs").status_code == 200


def test_clients_beyond_the_limit_are_refused(run_dir: Path) -> None:
    settings = DashboardSettings(poll_interval=0.1, max_clients=1)
    dashboard = DashboardServer([run_dir], "127.0.0.1", 0, settings=settings)
    dashboard.start()
    try:
        with (
            httpx.Client(base_url=dashboard.url, timeout=10) as client,
            client.stream("GET", "/api/runs/0/events") as first,
        ):
            events = parse_events(first.iter_lines())  # kept referenced: the stream stays open
            assert next(events)[0] == "reset"
            assert client.get("/api/runs/0/events").status_code == 503
            assert dashboard.dashboard.active_streams == 1
    finally:
        dashboard.stop()


def test_fifty_concurrent_clients_all_receive_an_appended_line(
    server: DashboardServer, run_dir: Path
) -> None:
    clients = 50

    async def main() -> list[list[int]]:
        ready = asyncio.Semaphore(0)
        limits = httpx.Limits(max_connections=clients + 5)
        timeout = httpx.Timeout(20.0)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=timeout) as c:

            async def listen() -> list[int]:
                steps: list[int] = []
                async with c.stream("GET", "/api/runs/0/events") as response:
                    async for kind, data in aparse_events(response.aiter_lines()):
                        if kind == "reset":
                            ready.release()
                        elif kind == "metrics":
                            steps += [r["step"] for r in data["records"]]
                            if 300 in steps:
                                return steps
                return steps

            tasks = [asyncio.create_task(listen()) for _ in range(clients)]
            for _ in range(clients):
                await asyncio.wait_for(ready.acquire(), 30)
            append(run_dir / "metrics.jsonl", line(300))
            return await asyncio.wait_for(asyncio.gather(*tasks), 30)

    results = asyncio.run(main())
    assert results == [[300]] * clients
    assert wait_until(lambda: server.dashboard.active_streams == 0)


@pytest.mark.parametrize(
    ("url", "status", "words"),
    [
        ("/api/runs/%C2%B2/info", 404, ["no run '²'", "0 to 0"]),  # "²".isdigit() is True
        ("/api/runs/%D9%A1/config", 404, ["no run '١'", "0 to 0"]),  # int("١") == 1
        ("/api/runs/-0/metrics", 404, ["no run '-0'"]),
        ("/api/runs/" + "9" * 5000 + "/info", 404, ["no run '9999", "..."]),
        ("/api/runs/0/metrics?limit=%C2%B2", 400, ["limit='²'", "non-negative integer"]),
        ("/api/runs/0/metrics?limit=" + "9" * 5000, 400, ["limit='9999", "15 digits"]),
        ("/api/runs/0/metrics?limit=-1", 400, ["limit='-1'", "non-negative integer"]),
        ("/api/runs/0/metrics?limit=", 400, ["limit=''"]),
        ("/api/runs/0/snapshot.png?env=%C2%B2", 400, ["env='²'", "non-negative integer"]),
        ("/api/runs/0/snapshot.png?env=" + "7" * 5000, 400, ["env='7777", "15 digits"]),
        ("/api/runs/%C2%B2/events", 404, ["no run '²'"]),
    ],
)
def test_bad_numbers_in_urls_are_answered_400_or_404_with_a_message(
    server: DashboardServer, url: str, status: int, words: list[str]
) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        response = client.get(url)
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert all(word in error for word in words), error
        assert len(error) < 200  # a 5000-digit value is not echoed back
        # The server is still fine afterwards.
        assert client.get("/api/runs/0/metrics?limit=1").json()["records"] == [
            {"kind": "train", "step": 100, "reward/total": 1.0}
        ]
        assert client.get("/api/runs/0/metrics?limit=99999").status_code == 200  # capped


def test_a_non_ascii_or_huge_sse_cursor_restarts_the_stream(server: DashboardServer) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        # Sent as ?cursor= (an HTTP header cannot carry "²"); both reach _parse_cursor.
        for cursor in ("²:1", "1:²", "9" * 5000 + ":0", "1:2:3", "1:-0"):
            with client.stream("GET", "/api/runs/0/events", params={"cursor": cursor}) as response:
                assert response.status_code == 200
                kind, data = next(parse_events(response.iter_lines()))
                assert kind == "reset"
                assert [r["step"] for r in data["records"]] == [100, 200]
