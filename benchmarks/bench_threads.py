"""Env-steps/s of the batched Möbius env with 1 thread vs all cores, interleaved.

Measures what ``training.torch_threads = 0`` (auto) decides from: for each number of
envs, blocks of ``MobiusVortexVecEnv.step`` (seeded random actions, default env config)
alternate between ``torch.set_num_threads(1)`` and ``torch.set_num_threads(cores)`` in
one process, so both see the same machine load; medians per block size. With
``--contend N`` it starts N busy-looping processes first, to measure a shared machine.

Usage::

    python benchmarks/bench_threads.py [--envs 8 32 128 512] [--steps 10] [--rounds 4]
        [--contend 0] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hhml.ml.env import MobiusVortexVecEnv, default_env_config


def _spin(stop: Any) -> None:
    x = 0
    while not stop.is_set():
        x += 1


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", type=int, nargs="+", default=[8, 32, 128, 512])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--contend", type=int, default=0, help="busy processes to start")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    stop = mp.Event()
    spinners = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(args.contend)]
    for p in spinners:
        p.start()
    rows = []
    try:
        for n in args.envs:
            env = MobiusVortexVecEnv(default_env_config(), num_envs=n)
            env.reset(seed=0)
            rng = np.random.default_rng(0)
            times: dict[int, list[float]] = {1: [], cores: []}
            for _ in range(args.rounds):
                for threads in times:
                    torch.set_num_threads(threads)
                    env.step(rng.uniform(-1, 1, (n, 23)))  # warm-up after the switch
                    for _ in range(args.steps):
                        a = rng.uniform(-1, 1, (n, 23))
                        t0 = time.perf_counter()
                        env.step(a)
                        times[threads].append(time.perf_counter() - t0)
            med = {k: float(np.median(v)) for k, v in times.items()}
            nodes = n * env.core.lattice.num_strips * env.core.lattice.nu * env.core.lattice.nv
            rows.append({"num_envs": n, "nodes": nodes, "median_s": med})
            print(
                f"{n:>5} envs ({nodes:>8} nodes): 1 thread {med[1] * 1e3:8.1f} ms, "
                f"{cores} threads {med[cores] * 1e3:8.1f} ms, ratio {med[1] / med[cores]:.2f}"
            )
    finally:
        stop.set()
        for p in spinners:
            p.join()
    out = {"cores": cores, "contend": args.contend, "rows": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return out


if __name__ == "__main__":
    main()
