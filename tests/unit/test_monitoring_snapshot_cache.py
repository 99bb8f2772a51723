"""Tests of ``hhml.monitoring.snapshot_cache`` and its use by the dashboard.

Renders are counted (a counting renderer, or the real one wrapped): an unchanged file is
rendered once, a changed one (new mtime or size) again, simultaneous requests for one
image share one render (and its error), the cache stays within its bounds, and at most
``max_renders`` renders run at once. No timing assertions: the concurrent cases hold the
render on a gate until every request has joined it.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import torch

import hhml.monitoring.server as server_module
from hhml.errors import CheckpointError, ConfigError
from hhml.monitoring.server import DashboardServer, DashboardSettings
from hhml.monitoring.snapshot_cache import SnapshotImageCache, snapshot_key


class CountingRenderer:
    """A stand-in renderer: ``b"png:" + file bytes + env``; counts calls, may wait on a gate."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.calls: list[tuple[str, int, int]] = []
        self.gate = gate
        self.active = 0
        self.peak = 0
        self._lock = threading.Lock()

    def __call__(self, path: Path, env: int, dpi: int) -> bytes:
        with self._lock:
            self.calls.append((path.name, env, dpi))
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            if self.gate is not None:
                assert self.gate.wait(30), "the test never opened the gate"
            if env >= 3:
                raise CheckpointError(f"snapshot {path}: env {env} out of range (0 to 2)")
            return b"png:" + path.read_bytes() + bytes([env])
        finally:
            with self._lock:
                self.active -= 1


def write(path: Path, content: bytes, mtime_ns: int | None = None) -> Path:
    path.write_bytes(content)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


async def until(predicate: Callable[[], bool]) -> None:
    """Yield to the event loop until ``predicate()`` holds (bounded by the test timeout)."""
    for _ in range(100_000):
        if predicate():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition never reached")


def test_an_unchanged_file_is_rendered_once(tmp_path: Path) -> None:
    render = CountingRenderer()
    cache = SnapshotImageCache(render)
    path = write(tmp_path / "step_1.pt", b"abc")

    async def main() -> list[bytes | None]:
        return [await cache.get(path, 0, 50) for _ in range(3)]

    images = asyncio.run(main())
    assert images == [b"png:abc\x00"] * 3
    assert render.calls == [("step_1.pt", 0, 50)]
    stats = cache.stats()
    assert (stats.renders, stats.hits, stats.images, stats.bytes) == (1, 2, 1, 8)


def test_a_changed_file_or_other_render_parameters_render_again(tmp_path: Path) -> None:
    render = CountingRenderer()
    cache = SnapshotImageCache(render)
    path = write(tmp_path / "step_1.pt", b"abc", mtime_ns=1_000_000_000)

    async def main() -> list[bytes | None]:
        out = [await cache.get(path, 0)]
        write(path, b"abcd", mtime_ns=1_000_000_000)  # same mtime, new size
        out.append(await cache.get(path, 0))
        write(path, b"wxyz", mtime_ns=2_000_000_000)  # same size, new mtime
        out.append(await cache.get(path, 0))
        out.append(await cache.get(path, 1))  # another env
        out.append(await cache.get(path, 1, dpi=50))  # another dpi
        out.append(await cache.get(path, 1, dpi=50))  # cached
        return out

    images = asyncio.run(main())
    assert images == [
        b"png:abc\x00",
        b"png:abcd\x00",
        b"png:wxyz\x00",
        b"png:wxyz\x01",
        b"png:wxyz\x01",
        b"png:wxyz\x01",
    ]
    assert len(render.calls) == 5
    assert cache.stats().hits == 1


def test_simultaneous_requests_for_one_image_share_one_render(tmp_path: Path) -> None:
    gate = threading.Event()
    render = CountingRenderer(gate)
    cache = SnapshotImageCache(render)
    path = write(tmp_path / "step_1.pt", b"abc")
    clients = 30

    async def main() -> list[bytes | None]:
        tasks = [asyncio.create_task(cache.get(path, 0)) for _ in range(clients)]
        await until(lambda: cache.stats().joined == clients - 1)
        gate.set()
        return list(await asyncio.gather(*tasks))

    assert asyncio.run(main()) == [b"png:abc\x00"] * clients
    assert len(render.calls) == 1
    assert cache.stats().renders == 1


def test_a_failed_render_is_shared_by_its_waiters_and_not_cached(tmp_path: Path) -> None:
    gate = threading.Event()
    render = CountingRenderer(gate)
    cache = SnapshotImageCache(render)
    path = write(tmp_path / "step_1.pt", b"abc")

    async def main() -> list[BaseException | bytes | None]:
        tasks = [asyncio.create_task(cache.get(path, 5)) for _ in range(10)]
        await until(lambda: cache.stats().joined == 9)
        gate.set()
        return list(await asyncio.gather(*tasks, return_exceptions=True))

    results = asyncio.run(main())
    assert all(isinstance(r, CheckpointError) and "env 5" in str(r) for r in results)
    assert len(render.calls) == 1
    with pytest.raises(CheckpointError, match="env 5 out of range"):
        asyncio.run(cache.get(path, 5))
    assert len(render.calls) == 2  # errors are not cached
    assert cache.stats().images == 0


def test_the_cache_stays_bounded_and_drops_the_least_recently_used(tmp_path: Path) -> None:
    render = CountingRenderer()
    cache = SnapshotImageCache(render, max_images=3, max_bytes=40)
    paths = [write(tmp_path / f"step_{i}.pt", b"x" * 5) for i in range(6)]  # 10-byte images

    async def main() -> None:
        for path in paths[:3]:
            await cache.get(path)
        await cache.get(paths[0])  # now the most recently used
        for path in paths[3:]:
            await cache.get(path)
            stats = cache.stats()
            assert stats.images <= 3 and stats.bytes <= 40
        calls = len(render.calls)
        await cache.get(paths[5])  # kept: no render
        assert len(render.calls) == calls
        await cache.get(paths[1])  # dropped first: rendered again
        assert len(render.calls) == calls + 1

    asyncio.run(main())
    assert render.calls.count(("step_0.pt", 0, 100)) == 1  # the hit on it kept it longer

    small = SnapshotImageCache(CountingRenderer(), max_images=10, max_bytes=25)
    big = write(tmp_path / "big.pt", b"y" * 30)

    async def too_big() -> None:
        assert await small.get(big) == b"png:" + b"y" * 30 + b"\x00"
        for i in range(3):
            await small.get(paths[i])
        assert small.stats().bytes <= 25

    asyncio.run(too_big())
    assert small.stats().images == 2  # 3 images of 10 bytes exceed 25; the 34-byte one never fit


def test_at_most_max_renders_run_at_once(tmp_path: Path) -> None:
    gate = threading.Event()
    render = CountingRenderer(gate)
    cache = SnapshotImageCache(render, max_renders=2)
    paths = [write(tmp_path / f"step_{i}.pt", bytes([i])) for i in range(8)]

    async def main() -> list[bytes | None]:
        tasks = [asyncio.create_task(cache.get(path)) for path in paths]
        await until(lambda: render.active == 2)
        await asyncio.sleep(0.05)  # a third render, were it allowed, would start now
        assert render.active == 2
        gate.set()
        return list(await asyncio.gather(*tasks))

    images = asyncio.run(main())
    assert images == [b"png:" + bytes([i]) + b"\x00" for i in range(8)]
    assert render.peak == 2 and len(render.calls) == 8


def test_a_missing_file_has_no_image_and_bad_limits_are_refused(tmp_path: Path) -> None:
    render = CountingRenderer()
    cache = SnapshotImageCache(render)
    assert asyncio.run(cache.get(tmp_path / "gone.pt")) is None
    assert snapshot_key(tmp_path / "gone.pt", 0, 100) is None
    assert render.calls == []
    with pytest.raises(ConfigError, match="max_renders = 0"):
        SnapshotImageCache(render, max_renders=0)


def test_fifty_dashboard_clients_get_one_real_render(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    (run / "snapshots").mkdir(parents=True)
    (run / "config.yaml").write_text("env:\n  id: hhml/MobiusVortex-v0\n", encoding="utf-8")
    (run / "metrics.jsonl").write_text('{"kind": "train", "step": 1}\n', encoding="utf-8")
    torch.manual_seed(0)
    psi = torch.polar(torch.ones(2, 1, 8, 4), torch.rand(2, 1, 8, 4) * 6.28)
    torch.save({"step": 7, "psi": psi}, run / "snapshots" / "step_0000000007.pt")
    real = server_module.render_snapshot_png
    calls: list[int] = []

    def counted(path: Path, env: int = 0, *, dpi: int = 100) -> bytes:
        calls.append(env)
        return real(path, env, dpi=dpi)

    monkeypatch.setattr(server_module, "render_snapshot_png", counted)
    settings = DashboardSettings(poll_interval=0.1, snapshot_dpi=30)
    server = DashboardServer([run], "127.0.0.1", 0, settings=settings)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:

            def fetch(env: int) -> tuple[int, bytes]:
                response = client.get(f"/api/runs/0/snapshot.png?env={env}")
                return response.status_code, response.content

            with ThreadPoolExecutor(16) as pool:
                results = list(pool.map(fetch, [0] * 50 + [1] * 10))
            assert fetch(2)[0] == 422  # env out of range: rendered (and refused) each time
    finally:
        server.stop()
    assert {status for status, _ in results} == {200}
    assert len({body for _, body in results[:50]}) == 1
    assert results[0][1].startswith(b"\x89PNG\r\n\x1a\n")
    assert sorted(calls) == [0, 1, 2]


# -- found while checking what the dashboard trusts (SECURITY.md) ----------------------------


@pytest.mark.parametrize(
    "config",
    [
        "agent: {algorithm: [1, 2]}\nenv: {id: {a: 1}}\ntraining: {total_steps: [1]}\n",
        "env: &e {id: [*e], task: target_density, target_density: 0.1}\n",
        "a0: &a0 [x, x]\n"
        + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10))
        + "env: {id: *a9}\n",
    ],
)
def test_a_foreign_config_with_lists_or_aliases_keeps_the_run_info_json(
    tmp_path: Path, config: str
) -> None:
    from hhml.monitoring.runs import RunWatcher
    from hhml.monitoring.server import _json_text

    (tmp_path / "config.yaml").write_text(config, encoding="utf-8")
    (tmp_path / "metrics.jsonl").write_text("", encoding="utf-8")
    watcher = RunWatcher(tmp_path)
    watcher.poll()
    info = json.loads(_json_text(watcher.info()))  # raised TypeError (an Ellipsis) before
    assert info["env_id"] is None and info["algorithm"] is None
    assert info["total_steps"] is None
