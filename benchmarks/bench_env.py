"""Environment throughput: env-steps/s of the Möbius vortex environment, 1 vs N envs.

Times ``MobiusVortexVecEnv.step`` with uniformly random actions (seeded) on the default
environment config (two embedded 48 × 12 strips, 5 simulator steps per env step), for
``num_envs`` = 1 and 16 (or ``--envs``), in one process, after a warm-up. Also reports the
single ``MobiusVortexEnv`` (the gymnasium id).

Usage::

    python benchmarks/bench_env.py [--envs 1 16] [--steps 60] [--threads T] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import hhml.ml.env  # noqa: F401  (registers the gymnasium id)
from hhml.ml.env import MobiusVortexVecEnv, default_env_config


def time_vector_env(num_envs: int, steps: int, seed: int = 0) -> dict[str, float]:
    """Median and best seconds per ``step`` of ``num_envs`` batched envs."""
    envs = MobiusVortexVecEnv(default_env_config(), num_envs=num_envs)
    envs.reset(seed=seed)
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, (steps + 5, num_envs, 23)).astype(np.float32)
    for a in actions[:5]:
        envs.step(a)
    times = []
    for a in actions[5:]:
        t0 = time.perf_counter()
        envs.step(a)
        times.append(time.perf_counter() - t0)
    med = float(np.median(times))
    return {
        "num_envs": num_envs,
        "median_s_per_step": med,
        "best_s_per_step": float(np.min(times)),
        "env_steps_per_s": num_envs / med,
    }


def time_single_env(steps: int, seed: int = 0) -> dict[str, float]:
    """Seconds per step of ``gym.make("hhml/MobiusVortex-v0")``."""
    env = gym.make("hhml/MobiusVortex-v0")
    env.reset(seed=seed)
    env.action_space.seed(seed)
    for _ in range(5):
        env.step(env.action_space.sample())
    times = []
    for _ in range(steps):
        a = env.action_space.sample()
        t0 = time.perf_counter()
        _, _, term, trunc, _ = env.step(a)
        times.append(time.perf_counter() - t0)
        if term or trunc:
            env.reset()
    med = float(np.median(times))
    return {"median_s_per_step": med, "env_steps_per_s": 1.0 / med}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--json", default=None, help="write the results to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": args.threads,
        "single_env": time_single_env(args.steps),
        "vector": [time_vector_env(n, args.steps) for n in args.envs],
    }
    single = results["single_env"]
    print(f"gym.make('hhml/MobiusVortex-v0'): {single['median_s_per_step'] * 1e3:.1f} ms/step")
    base = results["vector"][0]["env_steps_per_s"]
    print(f"{'num_envs':>8} {'ms/step':>9} {'env-steps/s':>12} {'× 1 env':>8}")
    for row in results["vector"]:
        print(
            f"{row['num_envs']:>8} {row['median_s_per_step'] * 1e3:>9.1f} "
            f"{row['env_steps_per_s']:>12.1f} {row['env_steps_per_s'] / base:>8.2f}"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2)
    return results


if __name__ == "__main__":
    main()
