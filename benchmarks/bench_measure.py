"""Vortex measurement of the RL env on the CPU: the C++ kernel of a baseline commit vs now.

Every env step calls :func:`hhml.ml.env.measure.measure_vortices` (the C++/OpenMP kernel
``src/hhml/ml/env/csrc/measure.cpp`` through :mod:`hhml.ml.env.measure_kernel`) and
:func:`~hhml.ml.env.measure_kernel.moment_sums_cpu` (behind
:func:`~hhml.ml.env.observables.moment_tensors`). This script times both against the same
code of a baseline commit (default ``13fb17c``, before the v4 kernel), in one process:

- the baseline's ``measure.cpp``, ``measure_kernel.py`` and ``measure.py`` are read with
  ``git show``, written to a temporary directory and loaded as separate modules, the
  kernel built under another extension name (``hhml_env_measure_bench_<commit>``);
- the fields are those of a rollout of the default env (two embedded 48 × 12 strips,
  complex64) with seeded uniformly random actions: after ``--warmup`` steps, the arguments
  of the next ``--frames`` calls of ``measure_vortices`` (field, tracker state, time steps)
  are recorded, for each ``--envs`` size;
- both contenders measure every frame in each of ``--rounds`` rounds, interleaved (old,
  new, then new, old in the next round), with ``--threads`` torch threads (default 1);
  the table gives the median ms per call and the ratio old / new.

Before timing, the two measurements of every frame are compared: integers (validity, plaquette
indices, charges, overflow) must be equal, and the largest differences of the floats are
reported (positions and ages bit-identical, hexatic order and depths to rounding).

Usage::

    python benchmarks/bench_measure.py [--envs 1 128] [--frames 8] [--warmup 6]
        [--rounds 15] [--threads 1] [--baseline 13fb17c] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import Tensor

import hhml.ml.env.core as env_core
from hhml.ml.env import MobiusVortexVecEnv, default_env_config
from hhml.ml.env import measure as new_measure
from hhml.ml.env import measure_kernel as new_kernel

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "src/hhml/ml/env"
# the env core's name of the measurement, wrapped to record its arguments
_RECORDED = "measure_vortices"


def _git_show(commit: str, path: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{commit}:{path}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _module(name: str, path: Path, text: str, namespace: dict[str, Any]) -> ModuleType:
    """Execute ``text`` as module ``name`` (registered, so that dataclasses resolve)."""
    mod = ModuleType(name)
    mod.__file__ = str(path)
    mod.__dict__.update(namespace)
    sys.modules[name] = mod
    exec(compile(text, str(path), "exec"), mod.__dict__)
    return mod


def _replace(text: str, pattern: str, new: str, what: str) -> str:
    out, n = re.subn(pattern, new, text)
    if n != 1:
        raise SystemExit(f"baseline source: expected one {what}, found {n}")
    return out


def load_baseline(commit: str, workdir: Path) -> tuple[ModuleType, ModuleType]:
    """The baseline's ``measure_kernel`` and ``measure`` modules (kernel renamed)."""
    rev = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short=12", commit],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (workdir / "csrc").mkdir(parents=True)
    (workdir / "csrc" / "measure.cpp").write_text(_git_show(commit, f"{PACKAGE}/csrc/measure.cpp"))
    text = _git_show(commit, f"{PACKAGE}/measure_kernel.py")
    text = _replace(
        text, r'"hhml_env_measure_v\d+"', f'"hhml_env_measure_bench_{rev}"', "kernel name"
    )
    kernel = _module("hhml_bench_old_measure_kernel", workdir / "measure_kernel.py", text, {})
    text = _git_show(commit, f"{PACKAGE}/measure.py")
    text = _replace(
        text, r"\nfrom hhml\.ml\.env import measure_kernel\n", "\n", "measure_kernel import"
    )
    measure = _module(
        "hhml_bench_old_measure", workdir / "measure.py", text, {"measure_kernel": kernel}
    )
    if kernel.load() is None:
        raise SystemExit(f"baseline kernel unavailable: {kernel.KERNEL_STATUS.reason}")
    return kernel, measure


@dataclass
class Frame:
    """The arguments of one ``measure_vortices`` call of the rollout."""

    psi: Tensor
    tracks: Any
    dt: Tensor
    kwargs: dict[str, Any]


def rollout(num_envs: int, warmup: int, frames: int, seed: int) -> tuple[Any, list[Frame]]:
    """The lattice and the recorded measurement calls of a random-action rollout."""
    env = MobiusVortexVecEnv(default_env_config(), num_envs=num_envs)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    recorded: list[Frame] = []
    original = getattr(env_core, _RECORDED)

    def record(psi: Tensor, lattice: Any, tracks: Any, dt: Tensor, **kwargs: Any) -> Any:
        recorded.append(Frame(psi.clone(), tracks, dt.clone(), kwargs))
        return original(psi, lattice, tracks, dt, **kwargs)

    setattr(env_core, _RECORDED, record)
    try:
        for _ in range(warmup + frames):
            env.step(rng.uniform(-1.0, 1.0, (num_envs, 23)).astype(np.float32))
    finally:
        setattr(env_core, _RECORDED, original)
    return env.core.lattice, recorded[-frames:]


def compare(lattice: Any, frames: list[Frame], old: ModuleType) -> dict[str, float]:
    """Largest differences new − old over the frames (integers must be equal)."""
    worst: dict[str, float] = {}
    for fr in frames:
        outs = [
            m.measure_vortices(fr.psi, lattice, fr.tracks, fr.dt, **fr.kwargs)
            for m in (old, new_measure)
        ]
        (m_old, t_old), (m_new, t_new) = outs
        for f in fields(m_new):
            a, b = getattr(m_old, f.name), getattr(m_new, f.name)
            if not a.is_floating_point():
                if not torch.equal(a, b):
                    raise SystemExit(f"{f.name} differs between the baseline and the new kernel")
                continue
            worst[f.name] = max(worst.get(f.name, 0.0), float((a - b).abs().max()))
        age = float((t_old.age - t_new.age).abs().max())
        worst["tracks.age"] = max(worst.get("tracks.age", 0.0), age)
        s_old = old.measure_kernel.moment_sums_cpu(fr.psi, lattice)
        s_new = new_kernel.moment_sums_cpu(fr.psi, lattice)
        rel = float(((s_new - s_old).abs() / s_old.abs().clamp_min(1e-300)).max())
        worst["moment_sums (relative)"] = max(worst.get("moment_sums (relative)", 0.0), rel)
    return worst


def _time(fn: Callable[[Frame], object], frame: Frame) -> float:
    t0 = time.perf_counter()
    fn(frame)
    return time.perf_counter() - t0


def time_size(lattice: Any, frames: list[Frame], old: ModuleType, rounds: int) -> dict[str, Any]:
    """Median ms per call of each contender, interleaved frame by frame."""
    calls: dict[str, dict[str, Callable[[Frame], object]]] = {
        "measure_vortices": {
            "old": lambda f: old.measure_vortices(f.psi, lattice, f.tracks, f.dt, **f.kwargs),
            "new": lambda f: new_measure.measure_vortices(
                f.psi, lattice, f.tracks, f.dt, **f.kwargs
            ),
        },
        "moment_sums_cpu": {
            "old": lambda f: old.measure_kernel.moment_sums_cpu(f.psi, lattice),
            "new": lambda f: new_kernel.moment_sums_cpu(f.psi, lattice),
        },
    }
    out: dict[str, Any] = {}
    for what, pair in calls.items():
        times: dict[str, list[float]] = {"old": [], "new": []}
        for f in frames:  # warm-up
            for fn in pair.values():
                fn(f)
        for r in range(rounds):
            order = ["old", "new"] if r % 2 == 0 else ["new", "old"]
            for f in frames:
                for name in order:
                    times[name].append(_time(pair[name], f))
        old_ms = 1e3 * statistics.median(times["old"])
        new_ms = 1e3 * statistics.median(times["new"])
        out[what] = {"old_ms": old_ms, "new_ms": new_ms, "ratio": old_ms / new_ms}
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", type=int, nargs="+", default=[1, 128])
    parser.add_argument("--frames", type=int, default=8, help="recorded calls per size")
    parser.add_argument("--warmup", type=int, default=6, help="env steps before recording")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved timing rounds")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--baseline", default="13fb17c", help="git commit of the old code")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write the results to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if new_kernel.load() is None:
        raise SystemExit(f"kernel unavailable: {new_kernel.KERNEL_STATUS.reason}")
    results: dict[str, Any] = {
        "baseline": args.baseline,
        "threads": args.threads,
        "machine": platform.processor() or platform.machine(),
        "sizes": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        _, old = load_baseline(args.baseline, Path(tmp))
        for B in args.envs:
            lattice, frames = rollout(B, args.warmup, args.frames, args.seed)
            per_strip = float(np.mean([f.tracks.valid.sum(-1).float().mean() for f in frames]))
            diff = compare(lattice, frames, old)
            timing = time_size(lattice, frames, old, args.rounds)
            results["sizes"].append(
                {"num_envs": B, "vortices_per_strip": per_strip, "max_diff": diff, **timing}
            )
            print(f"B = {B} ({per_strip:.0f} vortices per strip, {args.threads} thread(s))")
            for what in ("measure_vortices", "moment_sums_cpu"):
                t = timing[what]
                print(
                    f"  {what:17s} old {t['old_ms']:8.3f} ms  new {t['new_ms']:8.3f} ms  "
                    f"ratio {t['ratio']:.2f}x"
                )
            print("  largest |new - old|: " + ", ".join(f"{k} {v:.1e}" for k, v in diff.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
