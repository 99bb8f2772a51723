"""Environment throughput: env-steps/s of the batched Möbius vortex env, new vs old code.

Times ``MobiusVortexVecEnv.step`` (NumPy in and out, same-step autoreset) with seeded
uniformly random actions on the default environment config (two embedded 48 × 12 strips,
5 RK4 steps of dt = 0.1 per env step) for each ``--envs`` value, after a warm-up, and
reports the median time per step, env-steps/s and the ratio to the 1-env rate.

With ``--baseline COMMIT`` the package as it was at that commit is extracted from git
into a temporary directory, renamed ``hhml_baseline`` (imports rewritten) and timed in
the same process, interleaved with the current code round by round (old block, new
block, old, new, ...), so both see the same machine load; the table then gives the
new/old ratio per size. ``--profile`` adds the share of the step spent in the PDE
integration (``Simulator.advance``: RK4, noise, pair seeding) for the current code,
measured by timing that call separately in the same steps, and the shares of the largest
other phases (geometry update, annihilation imprints, vortex measurement, field
moments). ``--kernels`` splits the new step into the time inside the C++ kernels (those of the PDE:
RK4, noise, pair imprints; the others: geometry, annihilation, measurement, moments) and
the rest (Python, torch operations, copies), and gives the non-PDE share the step would
have if that rest took no time (the floor that kernel speed alone sets).
``--memory N ...`` reports the resident memory per env at N envs (a fresh
process per N; RSS after building the envs and 3 steps, minus RSS before).
``--threads auto`` runs each size with the thread count a training run of that size picks
by default (``training.torch_threads = 0``: one thread below 65 536 field nodes, all cores
above), i.e. what a user gets without tuning.

Usage::

    python benchmarks/bench_env.py [--envs 1 8 32 128] [--steps 20] [--rounds 3]
        [--threads T|auto] [--baseline 3c872e4] [--profile] [--kernels]
        [--memory 128 1024] [--json PATH] [--clock wall|cpu]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

import hhml
from hhml.ml.env import MobiusVortexVecEnv, default_env_config
from hhml.ml.training.threads import choose_threads

ROOT = Path(__file__).resolve().parents[1]


def load_baseline(commit: str, workdir: Path) -> ModuleType:
    """Import the ``hhml`` package of ``commit`` as ``hhml_baseline``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "src/hhml"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(workdir)], input=archive, check=True)
    src = workdir / "src" / "hhml"
    dst = workdir / "hhml_baseline"
    src.rename(dst)
    pattern = re.compile(r"\bhhml(?=[. ])")
    for path in dst.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        path.write_text(pattern.sub("hhml_baseline", text), encoding="utf-8")
    sys.path.insert(0, str(workdir))
    importlib.import_module("hhml_baseline.ml.env")
    return importlib.import_module("hhml_baseline.ml.env.vector")


#: The clock of every timing: wall time (``--clock wall``) or this process's CPU time
#: (``--clock cpu``, all threads together: with ``--threads 1`` it leaves out the time the
#: process waits for a core on a shared machine).
CLOCK: list[Callable[[], float]] = [time.perf_counter]

#: Module-level functions of ``hhml.ml.env.core`` timed by ``--profile`` besides the PDE
#: (``Simulator.advance``) and the geometry update (``LatticeEnsemble.set_geometry_tensors``).
_PHASES = (
    ("annihilate", "annihilate"),
    ("measure", "measure_vortices"),
    ("moments", "moment_tensors"),
)


#: The C++ kernel functions of the PDE integration (``Simulator.advance``); every other
#: kernel function counts as non-PDE work.
_PDE_KERNELS = frozenset({"stack_rk4_step", "noise_add", "pair_factors", "rk4_step"})


def _kernel_objects() -> list[Any]:
    """Every :class:`~hhml.utils.cpp_build.CppKernel` of the env step (built)."""
    from hhml.core.mobius import geometry_kernel
    from hhml.core.resonance import imprint_kernel, noise_kernel, stack_kernel
    from hhml.ml.env import measure_kernel

    kernels = [geometry_kernel._KERNEL, imprint_kernel._KERNEL, noise_kernel._KERNEL]
    kernels += [stack_kernel._KERNEL, measure_kernel.KERNEL]
    for k in kernels:
        k.load()
    return kernels


class _KernelTimer:
    """Stands in for a built kernel module: times each call into ``spent["kernel_pde"]``
    or ``spent["kernel_other"]`` (the C++ calls release the GIL and run to completion)."""

    def __init__(self, module: Any, spent: dict[str, float]) -> None:
        self._module, self._spent = module, spent

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._module, name)
        if not callable(fn) or name == "simd_level":
            return fn
        key = "kernel_pde" if name in _PDE_KERNELS else "kernel_other"
        return _timed(fn, self._spent, key)


def _timed(fn: Any, spent: dict[str, float], name: str) -> Any:
    """``fn`` that adds its wall time to ``spent[name]``."""

    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = CLOCK[0]()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[name] += CLOCK[0]() - t0

    timed.__wrapped__ = fn  # type: ignore[attr-defined]
    return timed


class Contender:
    """One env implementation at one size, stepped in blocks."""

    def __init__(self, name: str, cls: Any, cfg: Any, num_envs: int, seed: int) -> None:
        self.name = name
        self.num_envs = num_envs
        self.env = cls(cfg, num_envs=num_envs)
        self.env.reset(seed=seed)
        self.rng = np.random.default_rng(seed)
        self.times: list[float] = []
        self.shares: dict[str, list[float]] = {}
        self.spent: dict[str, list[float]] = {}

    def block(self, steps: int, record: bool, profile: bool, kernels: bool = False) -> None:
        core = getattr(self.env, "core", None)
        patched: list[tuple[Any, str]] = []
        spent: dict[str, float] = {}
        swapped: list[tuple[Any, Any]] = []
        if kernels and core is not None:
            spent["kernel_pde"] = spent["kernel_other"] = 0.0
            for k in _kernel_objects():
                if k._module is not None:
                    swapped.append((k, k._module))
                    k._module = _KernelTimer(k._module, spent)
        if profile and core is not None:
            module = sys.modules[type(core).__module__]
            targets = [("pde", core.sim, "advance")]
            targets += [("geometry", core.lattice, "set_geometry_tensors")]
            targets += [(name, module, attr) for name, attr in _PHASES]
            for name, owner, attr in targets:
                if not hasattr(owner, attr):
                    continue
                spent[name] = 0.0
                setattr(owner, attr, _timed(getattr(owner, attr), spent, name))
                patched.append((owner, attr))
        try:
            for _ in range(steps):
                a = self.rng.uniform(-1.0, 1.0, (self.num_envs, 23)).astype(np.float32)
                for name in spent:
                    spent[name] = 0.0
                t0 = CLOCK[0]()
                self.env.step(a)
                dt = CLOCK[0]() - t0
                if record:
                    self.times.append(dt)
                    for name, used in spent.items():
                        self.shares.setdefault(name, []).append(used / dt)
                        self.spent.setdefault(name, []).append(used)
        finally:
            for owner, attr in patched:
                if isinstance(owner, ModuleType):
                    setattr(owner, attr, getattr(owner, attr).__wrapped__)
                else:
                    delattr(owner, attr)
            for k, module in swapped:
                k._module = module

    def summary(self) -> dict[str, float]:
        med = float(np.median(self.times))
        out = {
            "num_envs": self.num_envs,
            "median_s_per_step": med,
            "env_steps_per_s": self.num_envs / med,
            "samples": len(self.times),
        }
        if "pde" in self.shares:
            out["pde_share"] = float(np.median(self.shares["pde"]))
        for name, values in self.shares.items():
            if name != "pde":
                out[f"{name}_share"] = float(np.median(values))
        for name, values in self.spent.items():
            out[f"{name}_s"] = float(np.median(values))
        return out


_MEMORY_PROBE = """
import os, sys, numpy as np, torch
torch.set_num_threads(1)
from hhml.ml.env import MobiusVortexVecEnv, default_env_config
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * page
n = int(sys.argv[1])
warm = MobiusVortexVecEnv(default_env_config(), num_envs=1)  # kernels loaded, caches built
warm.reset(seed=0); warm.step(np.zeros((1, 23)))
before = rss()
env = MobiusVortexVecEnv(default_env_config(), num_envs=n)
env.reset(seed=0)
rng = np.random.default_rng(0)
for _ in range(3):
    env.step(rng.uniform(-1, 1, (n, 23)))
print((rss() - before) / n)
"""


def threads_for(cfg: Any, num_envs: int, threads: str) -> int:
    """Torch threads at ``num_envs`` envs: ``threads`` as a number, or for ``"auto"`` the
    library's default (``training.torch_threads = 0``) for a run of that size."""
    if threads != "auto":
        return int(threads)
    sized = dataclasses.replace(
        cfg,
        env=cfg.env.replace(num_envs=num_envs),
        training=cfg.training.replace(torch_threads=0),
    )
    return choose_threads(sized)[0]


def resident_bytes_per_env(num_envs: int) -> float:
    """Resident memory an env adds (bytes), from a fresh process: RSS after building
    ``num_envs`` envs and 3 steps minus RSS before, over ``num_envs``."""
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(num_envs)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--threads",
        default="2",
        help="torch threads for every size, or 'auto': per size, what a run with "
        "training.torch_threads = 0 uses (hhml.ml.training.threads.choose_threads)",
    )
    parser.add_argument("--baseline", default=None, help="git commit of the old code")
    parser.add_argument("--profile", action="store_true", help="PDE share of the new step")
    parser.add_argument(
        "--kernels",
        action="store_true",
        help="time in the C++ kernels (PDE and other) and outside them, new step",
    )
    parser.add_argument(
        "--memory", type=int, nargs="*", default=[], help="env counts for the RSS probe"
    )
    parser.add_argument("--json", default=None, help="write the results to this file")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall time, or the process's CPU time (all threads; use with --threads 1)",
    )
    args = parser.parse_args(argv)
    CLOCK[0] = time.perf_counter if args.clock == "wall" else time.process_time
    cfg = default_env_config()
    if args.threads != "auto" and not (args.threads.isdigit() and int(args.threads) > 0):
        parser.error(f"--threads {args.threads!r}: give a positive integer or 'auto'")
    tmp = tempfile.TemporaryDirectory()
    old_cls = None
    if args.baseline:
        old_cls = load_baseline(args.baseline, Path(tmp.name)).MobiusVortexVecEnv
        old_cfg_mod = importlib.import_module("hhml_baseline.ml.env.core")
    results: dict[str, Any] = {
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "hhml": hhml.__version__,
        "threads": args.threads,
        "clock": args.clock,
        "baseline": args.baseline,
        "new": [],
        "old": [],
    }
    for n in args.envs:
        threads = threads_for(cfg, n, args.threads)
        torch.set_num_threads(threads)
        results.setdefault("threads_per_size", {})[n] = threads
        new = Contender("new", MobiusVortexVecEnv, cfg, n, seed=0)
        contenders = [new]
        if old_cls is not None:
            contenders.append(Contender("old", old_cls, old_cfg_mod.default_env_config(), n, 0))
        for c in contenders:
            c.block(args.warmup, record=False, profile=False)
        for _ in range(args.rounds):
            for c in contenders:
                mine = c is new
                c.block(args.steps, True, args.profile and mine, args.kernels and mine)
        row = new.summary()
        results["new"].append(row)
        if old_cls is not None:
            results["old"].append(contenders[1].summary())
        del contenders, new
    base = results["new"][0]["env_steps_per_s"]
    header = f"{'num_envs':>8} {'ms/step':>9} {'env-steps/s':>12} {'× 1 env':>8}"
    if old_cls is not None:
        header += f" {'old ms/step':>12} {'old steps/s':>12} {'new/old':>8}"
    if args.profile:
        header += f" {'PDE share':>9}"
    print(header)
    for k, row in enumerate(results["new"]):
        line = (
            f"{row['num_envs']:>8} {row['median_s_per_step'] * 1e3:>9.1f} "
            f"{row['env_steps_per_s']:>12.1f} {row['env_steps_per_s'] / base:>8.2f}"
        )
        if old_cls is not None:
            old = results["old"][k]
            line += (
                f" {old['median_s_per_step'] * 1e3:>12.1f} {old['env_steps_per_s']:>12.1f}"
                f" {row['env_steps_per_s'] / old['env_steps_per_s']:>8.2f}"
            )
        if args.profile:
            line += f" {row.get('pde_share', float('nan')):>9.2f}"
        print(line)
    if args.profile:
        names = [n for n, _ in (("geometry", 0), *_PHASES)]
        print("median share of the new step (non-PDE phases): " + ", ".join(names))
        for row in results["new"]:
            shares = " ".join(f"{row.get(n + '_share', float('nan')):>6.2f}" for n in names)
            print(f"{row['num_envs']:>8} {shares}")
    if args.kernels:
        print(
            "new step, median ms: in the PDE kernels, in the other kernels, outside them; "
            "non-PDE share if the time outside the kernels were 0"
        )
        for row in results["new"]:
            step = row["median_s_per_step"] * 1e3
            pde = row.get("kernel_pde_s", float("nan")) * 1e3
            other = row.get("kernel_other_s", float("nan")) * 1e3
            print(
                f"{row['num_envs']:>8} {pde:>8.2f} {other:>8.2f} {step - pde - other:>8.2f}"
                f" {other / (pde + other):>8.2f}"
            )
    results["memory_bytes_per_env"] = {}
    for n in args.memory:
        per_env = resident_bytes_per_env(n)
        results["memory_bytes_per_env"][n] = per_env
        print(f"resident memory at {n} envs: {per_env / 1024:.0f} KiB per env")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    tmp.cleanup()
    return results


if __name__ == "__main__":
    main()
