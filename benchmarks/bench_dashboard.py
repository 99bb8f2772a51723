"""Dashboard under load: latency of ``snapshot.png`` for many simultaneous clients.

Builds a temporary run directory holding a real field snapshot — made by the package's own
batched environment (``MobiusVortexVecEnv``, default env config: two embedded strips of
``--nu`` × ``--nv`` nodes, ``--envs`` environments, a few random steps after reset) and
written like the trainer writes it (``{"step": n, **envs.snapshot()}`` with
``atomic_torch_save``) — serves it with :class:`~hhml.monitoring.server.DashboardServer` on
a free port of 127.0.0.1, and fires ``--clients`` requests for
``/api/runs/0/snapshot.png`` at once (one thread per client, ``urllib``, released together
by a barrier; client ``i`` asks for ``?env=i % --views``). Each latency is from just before
the request to the end of the body.

Per round and behaviour, a fresh server is started and two bursts are fired: **cold** (the
first burst after start: nothing rendered yet) and **warm** (a second burst on the same
server). Behaviours:

``new``
    the current code: images cached per snapshot file and render parameters
    (:class:`~hhml.monitoring.snapshot_cache.SnapshotImageCache`), one render per image at a
    time, the other requests waiting for it.
``old``
    the code before the cache (``--old-commit``, default 3bf1f02): its renderer
    (``snapshot_image.py`` of that commit, read with ``git show``; it used matplotlib's
    constrained layout) and its request path, replayed here: one image per run keyed by
    (path, mtime, env), checked and rendered in each request's worker thread, so every
    request that misses renders (serialised by the renderer's lock).

Rounds interleave the behaviours (old, new, old, new, ...) so both see the same machine
load; the table gives the median over rounds of each burst's p50 / p95 / max latency and
the number of renders. ``--no-old`` times only the current code.

Usage::

    python benchmarks/bench_dashboard.py [--clients 50] [--views 1] [--rounds 3]
        [--nu 48] [--nv 12] [--envs 8] [--threads 1] [--no-old] [--old-commit 3bf1f02]
        [--json PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import platform
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import torch

import hhml
import hhml.monitoring.server as server_module
from hhml.ml.env import MobiusVortexVecEnv, default_env_config
from hhml.monitoring.server import Dashboard, DashboardServer, DashboardSettings
from hhml.utils.atomic_io import atomic_torch_save

ROOT = Path(__file__).resolve().parents[1]


def load_old_renderer(commit: str, workdir: Path) -> Callable[..., bytes]:
    """``render_snapshot_png`` of ``src/hhml/monitoring/snapshot_image.py`` at ``commit``."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{commit}:src/hhml/monitoring/snapshot_image.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = workdir / "old_snapshot_image.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("old_snapshot_image", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    render: Callable[..., bytes] = module.render_snapshot_png
    return render


def make_run_dir(root: Path, nu: int, nv: int, envs: int, seed: int = 0) -> Path:
    """A run directory with ``config.yaml``, ``metrics.jsonl`` and one real snapshot."""
    cfg = default_env_config()
    cfg = dataclasses.replace(cfg, lattice=dataclasses.replace(cfg.lattice, nu=nu, nv=nv))
    vec = MobiusVortexVecEnv(cfg, num_envs=envs, seed=seed)
    vec.reset(seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        vec.step(rng.uniform(-1, 1, size=(envs, 23)).astype(np.float32))
    run = root / "run"
    (run / "snapshots").mkdir(parents=True)
    (run / "config.yaml").write_text("env:\n  id: hhml/MobiusVortex-v0\n", encoding="utf-8")
    (run / "metrics.jsonl").write_text('{"kind": "train", "step": 300}\n', encoding="utf-8")
    atomic_torch_save({"step": 300, **vec.snapshot()}, run / "snapshots" / "step_0000000300.pt")
    vec.close()
    return run


def install_old_behaviour(dashboard: Dashboard) -> None:
    """Replace ``dashboard.snapshot_png`` by the code before the cache (commit 3bf1f02)."""
    png_cache: dict[int, tuple[tuple[str, int, int], bytes]] = {}

    def old_sync(run: int, env: int) -> bytes | None:
        path = dashboard.watchers[run].snapshot_path()
        if path is None:
            return None
        try:
            key = (str(path), path.stat().st_mtime_ns, env)
        except FileNotFoundError:
            return None
        cached = png_cache.get(run)
        if cached is not None and cached[0] == key:
            return cached[1]
        png: bytes = getattr(server_module, "render_snapshot_png")(path, env)  # noqa: B009
        png_cache[run] = (key, png)
        return png

    async def old(run: int, env: int) -> bytes | None:
        return await anyio.to_thread.run_sync(old_sync, run, env)

    dashboard.snapshot_png = old  # type: ignore[method-assign]


def burst(url: str, clients: int, views: int) -> list[float]:
    """Latencies (s) of ``clients`` simultaneous requests for the snapshot image."""
    barrier = threading.Barrier(clients)
    latencies = [0.0] * clients
    failures: list[str] = []

    def client(i: int) -> None:
        barrier.wait()
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(
                f"{url}api/runs/0/snapshot.png?env={i % views}", timeout=600
            ) as response:
                body = response.read()
            if not body.startswith(b"\x89PNG"):
                failures.append(f"client {i}: not a PNG")
        except OSError as exc:
            failures.append(f"client {i}: {exc}")
        latencies[i] = time.perf_counter() - start

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError("; ".join(failures[:3]))
    return latencies


def one_round(
    run: Path, behaviour: str, clients: int, views: int, old_render: Callable[..., bytes] | None
) -> dict[str, Any]:
    """Cold and warm bursts on a fresh server with ``behaviour`` ("old" or "new")."""
    renders: list[int] = []
    current: Callable[..., bytes] = getattr(server_module, "render_snapshot_png")  # noqa: B009
    real = old_render if behaviour == "old" and old_render is not None else current

    def counted(path: Path, env: int = 0, *, dpi: int = 100) -> bytes:
        renders.append(env)
        return real(path, env, dpi=dpi)

    server = DashboardServer([run], "127.0.0.1", 0, settings=DashboardSettings())
    if behaviour == "old":
        install_old_behaviour(server.dashboard)
    url = server.start()
    setattr(server_module, "render_snapshot_png", counted)  # noqa: B010
    try:
        result: dict[str, Any] = {}
        for phase in ("cold", "warm"):
            before = len(renders)
            lat = np.array(burst(url, clients, views))
            result[phase] = {
                "p50": float(np.percentile(lat, 50)),
                "p95": float(np.percentile(lat, 95)),
                "max": float(lat.max()),
                "renders": len(renders) - before,
            }
    finally:
        setattr(server_module, "render_snapshot_png", current)  # noqa: B010
        server.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--views", type=int, default=1, help="distinct ?env= values asked")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--nu", type=int, default=48)
    parser.add_argument("--nv", type=int, default=12)
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-old", action="store_true", help="time only the current code")
    parser.add_argument("--old-commit", default="3bf1f02", help="the code before the cache")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not 1 <= args.views <= args.envs:
        parser.error(f"--views {args.views}: must be 1 to --envs ({args.envs})")
    torch.set_num_threads(args.threads)
    behaviours = ["new"] if args.no_old else ["old", "new"]
    rounds: dict[str, list[dict[str, Any]]] = {b: [] for b in behaviours}
    with tempfile.TemporaryDirectory() as tmp:
        old_render = None if args.no_old else load_old_renderer(args.old_commit, Path(tmp))
        run = make_run_dir(Path(tmp), args.nu, args.nv, args.envs)
        size = (run / "snapshots" / "step_0000000300.pt").stat().st_size
        print(
            f"hhml {hhml.__version__}, {platform.processor() or platform.machine()}, "
            f"torch threads {args.threads}; snapshot {args.envs} envs × 2 strips × "
            f"{args.nu} × {args.nv} ({size / 1e6:.2f} MB); {args.clients} clients, "
            f"{args.views} view(s)"
        )
        for r in range(args.rounds):
            for behaviour in behaviours:
                rounds[behaviour].append(
                    one_round(run, behaviour, args.clients, args.views, old_render)
                )
                cold = rounds[behaviour][-1]["cold"]
                print(f"  round {r + 1} {behaviour}: cold p95 {cold['p95']:.2f} s", flush=True)

    print("\n| code | burst | p50 (s) | p95 (s) | max (s) | renders |")
    print("|---|---|---:|---:|---:|---:|")
    summary: dict[str, Any] = {}
    for behaviour in behaviours:
        for phase in ("cold", "warm"):
            rows = [r[phase] for r in rounds[behaviour]]
            med = {k: float(np.median([row[k] for row in rows])) for k in rows[0]}
            summary[f"{behaviour}/{phase}"] = med
            print(
                f"| {behaviour} | {phase} | {med['p50']:.3f} | {med['p95']:.3f} | "
                f"{med['max']:.3f} | {med['renders']:.0f} |"
            )
    if not args.no_old:
        for phase in ("cold", "warm"):
            ratio = summary[f"old/{phase}"]["p95"] / summary[f"new/{phase}"]["p95"]
            print(f"p95 old/new, {phase}: {ratio:.1f} ×")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "args": vars(args) | {"json": str(args.json)},
                    "rounds": rounds,
                    "median": summary,
                },
                indent=1,
            ),
            encoding="utf-8",
        )


if __name__ == "__main__":
    main()
