"""Time one training-loop step (act, env step, store, TD3 update, bookkeeping).

``Trainer._step`` of the quickstart config (two embedded 48 × 12 strips, TD3 with
64-unit networks, batch 128) with learning from the first step, at several env
counts. With ``--baseline COMMIT`` the package of that commit is extracted (as
``hhml_baseline``, see ``bench_env.py``) and its trainer timed in the same process,
interleaved round by round with the current one; medians of the rounds.

Usage::

    python benchmarks/bench_train_step.py [--envs 8 128] [--steps 10] [--rounds 3]
        [--threads 2] [--baseline 3bf1f02] [--json PATH]
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from bench_env import load_baseline

import hhml

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "configs" / "experiment" / "quickstart.yaml"


def _trainer(package: ModuleType, num_envs: int, workdir: Path, name: str) -> Any:
    loader = importlib.import_module(f"{package.__name__}.config")
    training = importlib.import_module(f"{package.__name__}.ml.training.trainer")
    cfg = loader.load_config(
        QUICKSTART,
        [
            f"env.num_envs={num_envs}",
            "agent.learning_starts=0",
            "training.total_steps=1000000",
            "training.progress_bar=false",
            "training.tensorboard=false",
            f"training.torch_threads={torch.get_num_threads()}",
        ],
    )
    return training.Trainer.create(cfg, run_dir=workdir / f"{name}-{num_envs}")


def _time(trainer: Any, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        trainer._step()
    return (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, nargs="+", default=[8, 128])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--baseline", default=None, help="git commit of the old code")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    tmp = tempfile.TemporaryDirectory()
    workdir = Path(tmp.name)
    packages: dict[str, ModuleType] = {"new": hhml}
    if args.baseline:
        (workdir / "base").mkdir()
        load_baseline(args.baseline, workdir / "base")
        packages["old"] = importlib.import_module("hhml_baseline")
    results: dict[str, Any] = {"threads": args.threads, "baseline": args.baseline, "envs": {}}
    for n in args.envs:
        trainers = {name: _trainer(pkg, n, workdir, name) for name, pkg in packages.items()}
        for trainer in trainers.values():
            _time(trainer, 3)  # warm-up: kernels, replay fill, first updates
        times: dict[str, list[float]] = {name: [] for name in trainers}
        for _ in range(args.rounds):
            for name, trainer in trainers.items():
                times[name].append(_time(trainer, args.steps))
        row = {name: statistics.median(t) for name, t in times.items()}
        for trainer in trainers.values():
            trainer.close()
        new = row["new"]
        line = f"{n:5d} envs: new {new * 1e3:8.1f} ms/step ({n / new:8.0f} env-steps/s)"
        if "old" in row:
            old = row["old"]
            line += f"   old {old * 1e3:8.1f} ms/step   old/new {old / new:.2f}"
        print(line, flush=True)
        results["envs"][n] = row
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    tmp.cleanup()
    return results


if __name__ == "__main__":
    main()
