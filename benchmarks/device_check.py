"""GPU device check: one prepared, time-boxed command for a lent CUDA machine.

GPU machines are lent rarely and briefly, so this script does everything in one run that
stays inside ``--time-budget`` seconds (elapsed time is checked before every stage and
before every timed size), writes every figure to one JSON file (rewritten after each stage,
so a killed run still leaves what it measured) and prints a short table:

1. ``tests``: the device (name, memory, torch/CUDA versions, capability), then
   ``pytest -m cuda -q tests/unit/test_cuda.py`` in a subprocess (pass/fail/skip counts).
2. ``rollout``: the same seeds and actions (complex128, 4 envs, 10 steps) on the CPU and on
   the target device; the maximum relative difference of observations and of rewards must
   be ≤ 1e-10. The rollout draws no random numbers: random draws come from torch generators
   on the field's device (the noise now; the initial field and pair seeding too once the
   env is device-native), and CPU and CUDA generators give different streams by design. So
   the initial field is uniform (``simulation.initial = "uniform"``; the boundary sources
   and the geometry then create the vortices) and the ``noise_temperature`` and
   ``pair_seeding`` actions are held at −1 (both 0). With ``--device cpu`` both runs are
   on the CPU (the dry run: the difference is exactly 0).
3. ``throughput``: env-steps/s of ``MobiusVortexVecEnv.step`` for each ``--envs`` (default
   complex64 config, seeded random actions, warm-up, median of the timed steps, device
   synchronised around each timed step) and resident memory per env; a size whose
   extrapolated cost does not fit the time left is skipped and the reason recorded.
4. ``rhs``: node-updates/s of ``Simulator.rhs`` on a flat ``--rhs-size``² Möbius strip,
   complex64: the eager path and the default path (compiled kernels for grids of at least
   ``MIN_COMPILED_NODES`` nodes, if the time left allows a compilation).

The exit code is 0 if every correctness check (the CUDA tests and the rollout) ran and
passed and no stage raised, 1 otherwise (a check skipped for lack of time counts as not
passed). Throughput or RHS sizes skipped for lack of time do not change the exit code.
Exit code 2: the device is not available or an argument is invalid (the JSON, if written,
holds the error).

Usage::

    python benchmarks/device_check.py [--device cuda|cpu] [--json PATH] [--quick]
        [--envs 1 64 1024 4096] [--steps N] [--rhs-size N] [--time-budget SECONDS]

Public names: ``main``, ``Budget``, ``device_info``, ``run_cuda_tests``, ``rollout_check``,
``env_throughput``, ``rhs_throughput``, ``max_rel_diff``, ``ROLLOUT_TOLERANCE``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

import hhml
from hhml.config.schema import FieldParams, HHmLConfig
from hhml.core.mobius import MobiusStrip
from hhml.core.resonance import Simulator
from hhml.core.resonance.cpp_kernels import CPP_STATUS
from hhml.core.resonance.flat_kernels import COMPILE_STATUS, MIN_COMPILED_NODES
from hhml.errors import ConfigError, DeviceError, HHmLError
from hhml.ml.env import CONTROLS, MobiusVortexVecEnv, default_env_config
from hhml.utils import atomic_write_text, resolve_device

__all__ = [
    "ROLLOUT_TOLERANCE",
    "Budget",
    "device_info",
    "env_throughput",
    "main",
    "max_rel_diff",
    "rhs_throughput",
    "rollout_check",
    "run_cuda_tests",
]

REPO = Path(__file__).resolve().parents[1]
#: The CUDA tests run by stage 1, relative to the repository root.
CUDA_TESTS = "tests/unit/test_cuda.py"
#: Largest allowed relative difference between the CPU and the device rollout.
ROLLOUT_TOLERANCE = 1e-10
#: Controls that draw random numbers, held at action −1 (value 0) in the rollout check.
RANDOM_ACTIONS = [
    [c.name for c in CONTROLS].index(k) for k in ("noise_temperature", "pair_seeding")
]
NUM_ACTIONS = len(CONTROLS)

# Time-budget shares and minimum times (seconds). The CUDA tests may use at most this share
# of the budget; the RHS stage keeps this share for itself while the throughput stage runs.
TESTS_SHARE = 0.35
RHS_SHARE = 0.25
MIN_TESTS_S = 5.0  # below this, pytest cannot even import torch and hhml
MIN_ROLLOUT_S = 5.0
MIN_SIZE_S = 1.0  # the first throughput size runs only with at least this much time left
MIN_TIMED_STEPS = 3
EXTRAPOLATION_SAFETY = 1.25  # margin on the extrapolated cost of the next size
# Compiling the RHS kernel (inductor on CUDA, the C++ kernel on CPU) cannot be interrupted;
# it is tried only with at least this much time left (cold inductor builds take ~10–40 s).
MIN_COMPILE_S = 45.0
RHS_REPEATS = 7
RHS_BLOCK_S = 0.05  # each timed block of RHS calls lasts at least this long
# Integration step of the RHS simulator: the rhs does not depend on it, but the Simulator
# checks it against the RK4 stability limit, which falls as 1/N² (≈ 1.5e-5 at 4096²).
RHS_DT = 1e-9

Json = dict[str, Any]


class Budget:
    """Wall-clock budget of the whole check.

    Parameters
    ----------
    seconds
        Total time allowed (s), counted from construction.
    """

    def __init__(self, seconds: float) -> None:
        if not (math.isfinite(seconds) and seconds > 0):
            raise ConfigError(f"--time-budget = {seconds!r} is not valid; need seconds > 0")
        self.total = float(seconds)
        self.start = time.monotonic()

    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.monotonic() - self.start

    def remaining(self, reserve: float = 0.0) -> float:
        """Seconds left, less ``reserve`` (kept for later stages); may be negative."""
        return self.total - self.elapsed() - reserve


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss_bytes() -> int:
    """Current resident set size of this process (Linux ``/proc/self/status``)."""
    status = Path("/proc/self/status")
    if not status.exists():
        raise HHmLError(
            "resident memory needs /proc/self/status (Linux); this platform is "
            f"{platform.system()!r}"
        )
    for line in status.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise HHmLError("/proc/self/status has no VmRSS line")


def device_info(device: torch.device) -> Json:
    """Name, memory, versions and capability of ``device``.

    Returns
    -------
    dict
        ``type``, ``name``, ``total_memory_bytes``, ``torch``, ``cuda`` (torch's CUDA build,
        or None), ``capability`` (``"major.minor"`` on CUDA), ``multiprocessors``,
        ``threads`` (torch CPU threads), ``cpu_count``, ``python``, ``platform``, ``hhml``.
    """
    info: Json = {
        "type": device.type,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "hhml": hhml.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            name=props.name,
            index=device.index,
            total_memory_bytes=int(props.total_memory),
            capability=f"{props.major}.{props.minor}",
            multiprocessors=int(props.multi_processor_count),
        )
    else:
        info.update(name=platform.processor() or platform.machine(), capability=None)
        meminfo = Path("/proc/meminfo")
        if meminfo.exists():
            first = meminfo.read_text().splitlines()[0].split()  # "MemTotal: N kB"
            info["total_memory_bytes"] = int(first[1]) * 1024
        else:
            info["total_memory_bytes"] = None
            info["total_memory_note"] = "no /proc/meminfo on this platform"
    return info


# ------------------------------------------------------------------------- stage 1: tests
def run_cuda_tests(device: torch.device, timeout: float) -> Json:
    """Run ``pytest -m cuda -q tests/unit/test_cuda.py`` in a subprocess.

    Parameters
    ----------
    device
        The target device; on CUDA every test must pass (a skip counts as not passed), on
        the CPU skips are expected (the tests need a CUDA device).
    timeout
        Seconds before the subprocess is killed (a timeout counts as not passed).

    Returns
    -------
    dict
        ``ok``, ``status``, counts ``tests``, ``passed``, ``failed``, ``errors``,
        ``skipped``, ``returncode``, ``seconds``, ``command`` and the last 4000 characters
        of the output (``output_tail``).
    """
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "cuda",
            "-q",
            CUDA_TESTS,
            "-p",
            "no:cacheprovider",
            f"--junitxml={junit}",
        ]
        out: Json = {"command": " ".join(command[1:7]), "timeout_s": timeout}
        t0 = time.monotonic()
        try:
            proc = subprocess.run(
                command, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raw = exc.stdout or b""  # bytes even with text=True on some Python versions
            text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
            out.update(
                ok=False,
                status="timeout",
                seconds=time.monotonic() - t0,
                reason=f"pytest did not finish within {timeout:.0f} s",
                output_tail=text[-4000:],
            )
            return out
        out["seconds"] = time.monotonic() - t0
        out["returncode"] = proc.returncode
        out["output_tail"] = (proc.stdout + proc.stderr)[-4000:]
        if not junit.exists():
            out.update(ok=False, status="error", reason="pytest wrote no junit report")
            return out
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for suite in ET.parse(junit).getroot().iter("testsuite"):
            for key in counts:
                counts[key] += int(suite.get(key, "0"))
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    out.update(
        tests=counts["tests"],
        passed=passed,
        failed=counts["failures"],
        errors=counts["errors"],
        skipped=counts["skipped"],
    )
    clean = proc.returncode == 0 and counts["failures"] == 0 and counts["errors"] == 0
    if device.type == "cuda":
        out["ok"] = clean and counts["tests"] > 0 and passed == counts["tests"]
    else:
        out["ok"] = clean
    if not clean:
        out["status"] = "failed"
    elif passed == 0:
        out["status"] = "skipped"
    else:
        out["status"] = "passed" if counts["skipped"] == 0 else "passed with skips"
    if device.type == "cuda" and clean and not out["ok"]:
        out["reason"] = "on CUDA every test must run and pass; some were skipped"
    return out


# ---------------------------------------------------------------------- stage 2: rollout
def max_rel_diff(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Largest difference of ``a`` from the reference ``b``, relative per last-axis column.

    Parameters
    ----------
    a, b
        Arrays of the same shape ``[..., D]`` (a 1-d array is one column). Column ``j`` is
        scaled by ``max |b[..., j]|``, so features of different magnitude are compared each
        on its own scale.

    Returns
    -------
    float
        ``max_j max |a[..., j] − b[..., j]| / max |b[..., j]|``; 0 where both columns are
        all zero, ``inf`` where ``b``'s column is all zero and ``a``'s is not, ``nan`` if
        either holds a NaN.
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ConfigError(f"shapes differ: {x.shape} vs reference {y.shape}")
    if x.size == 0:
        return 0.0
    if np.isnan(x).any() or np.isnan(y).any():
        return math.nan
    x2 = x.reshape(-1, 1) if x.ndim == 1 else x.reshape(-1, x.shape[-1])
    y2 = y.reshape(x2.shape)
    diff = np.abs(x2 - y2).max(axis=0)
    scale = np.abs(y2).max(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(diff == 0.0, 0.0, diff / scale)
    return float(rel.max())


def _rollout(
    config: HHmLConfig, device: torch.device, actions: npt.NDArray[np.float32], seed: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Observations ``[T+1, N, D]``, rewards ``[T, N]`` and done flags ``[T, N, 2]``."""
    env = MobiusVortexVecEnv(config, actions.shape[1], device)
    obs0, _ = env.reset(seed=seed)
    obs, rewards, dones = [obs0], [], []
    for a in actions:
        o, r, term, trunc, _ = env.step(a)
        obs.append(o)
        rewards.append(r)
        dones.append(np.stack([term, trunc], axis=-1))
    return np.stack(obs), np.stack(rewards), np.stack(dones)


def rollout_check(device: torch.device, num_envs: int = 4, steps: int = 10, seed: int = 0) -> Json:
    """Roll out the same seeds and actions on the CPU and on ``device`` (complex128).

    Parameters
    ----------
    device
        Target device (``cpu``: a CPU-vs-CPU dry run whose difference is exactly 0).
    num_envs, steps
        Batch size ``N`` and env steps ``T``.
    seed
        Seed of the envs (``reset(seed=seed)``) and of the uniform actions in [−1, 1]. The
        initial field is uniform and the ``noise_temperature`` and ``pair_seeding`` actions
        are held at −1, so that nothing random enters (see the module docstring).

    Returns
    -------
    dict
        ``ok``, ``status``, ``max_rel_diff_obs``, ``max_rel_diff_reward`` (see
        :func:`max_rel_diff`), ``done_flags_equal``, ``tolerance``, ``num_envs``, ``steps``,
        ``seconds_cpu``, ``seconds_device``.
    """
    cfg = default_env_config()
    simulation = cfg.simulation.replace(dtype="complex128", initial="uniform")
    cfg = dataclasses.replace(cfg, simulation=simulation)
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1.0, 1.0, (steps, num_envs, NUM_ACTIONS)).astype(np.float32)
    actions[..., RANDOM_ACTIONS] = -1.0
    t0 = time.monotonic()
    ref = _rollout(cfg, torch.device("cpu"), actions, seed)
    t1 = time.monotonic()
    got = _rollout(cfg, device, actions, seed)
    t2 = time.monotonic()
    d_obs = max_rel_diff(got[0], ref[0])
    d_rew = max_rel_diff(got[1], ref[1])
    flags_equal = bool(np.array_equal(got[2], ref[2]))
    ok = d_obs <= ROLLOUT_TOLERANCE and d_rew <= ROLLOUT_TOLERANCE and flags_equal
    return {
        "ok": ok,
        "status": "passed" if ok else "failed",
        "max_rel_diff_obs": d_obs,
        "max_rel_diff_reward": d_rew,
        "done_flags_equal": flags_equal,
        "tolerance": ROLLOUT_TOLERANCE,
        "dtype": "complex128",
        "initial": "uniform",
        "held_at_zero": ["noise_temperature", "pair_seeding"],
        "num_envs": num_envs,
        "steps": steps,
        "seed": seed,
        "reference": "cpu",
        "seconds_cpu": t1 - t0,
        "seconds_device": t2 - t1,
    }


# ------------------------------------------------------------------- stage 3: throughput
def _time_size(
    device: torch.device, num_envs: int, warmup: int, steps: int, deadline: float, seed: int
) -> Json:
    """Build, reset and time ``num_envs`` envs; stops timing early at ``deadline``."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        base = _rss_bytes()
    rss_peak = base
    t0 = time.monotonic()
    env = MobiusVortexVecEnv(default_env_config(), num_envs, device)
    env.reset(seed=seed)
    _sync(device)
    setup_s = time.monotonic() - t0
    rng = np.random.default_rng(seed)
    times: list[float] = []
    stopped = False
    done = 0
    for k in range(warmup + steps):
        a = rng.uniform(-1.0, 1.0, (num_envs, NUM_ACTIONS)).astype(np.float32)
        _sync(device)
        s = time.perf_counter()
        env.step(a)
        _sync(device)
        dt = time.perf_counter() - s
        if device.type == "cpu":
            rss_peak = max(rss_peak, _rss_bytes())
        done += 1
        if k >= warmup:
            times.append(dt)
        if time.monotonic() + 1.5 * dt > deadline and k + 1 < warmup + steps:
            stopped = True
            break
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) - base
        method = "torch.cuda.max_memory_allocated after reset and steps, less the allocation before"
    else:
        peak = rss_peak - base
        method = (
            "peak resident set size (VmRSS) after reset and each step, less the one before "
            "(memory freed by earlier sizes is reused, so this can underestimate)"
        )
    del env
    out: Json = {
        "num_envs": num_envs,
        "status": "ok",
        "setup_s": setup_s,
        "warmup_steps": warmup,
        "steps_requested": steps,
        "steps_timed": len(times),
        "memory_bytes": int(peak),
        "memory_bytes_per_env": peak / num_envs,
        "memory_method": method,
    }
    if not times:
        out.update(status="skipped", reason="the stage deadline came during the warm-up")
        return out
    med = statistics.median(times)
    out.update(
        median_s_per_step=med,
        best_s_per_step=min(times),
        env_steps_per_s=num_envs / med,
        # one env step and its warm-up, for extrapolating to the next size
        mean_s_per_step_all=(time.monotonic() - t0 - setup_s) / done,
    )
    if stopped:
        out["note"] = f"stopped after {len(times)} of {steps} timed steps at the stage deadline"
    return out


def _extrapolate(done: list[Json], n: int) -> tuple[float, float, float]:
    """Set-up and per-step seconds at ``n`` envs from the timed sizes, and the exponent.

    Power law ``t ∝ num_envs^p`` through the last timed size, with ``p`` from the last two
    (clamped to [1, 2]; 1 with a single size), times ``EXTRAPOLATION_SAFETY``. Batching
    makes the true cost grow more slowly than linearly on a GPU, but host-side work per env
    can grow faster (seen on the CPU: 16 → 256 envs cost 52 × per step, not 16 ×).
    """
    last = done[-1]
    p = 1.0
    if len(done) >= 2:
        prev = done[-2]
        ratio_t = last["mean_s_per_step_all"] / prev["mean_s_per_step_all"]
        ratio_n = last["num_envs"] / prev["num_envs"]
        if ratio_n > 1.0 and ratio_t > 0.0:
            p = min(2.0, max(1.0, math.log(ratio_t) / math.log(ratio_n)))
    scale = (n / last["num_envs"]) ** p * EXTRAPOLATION_SAFETY
    return last["setup_s"] * scale, last["mean_s_per_step_all"] * scale, p


def env_throughput(
    device: torch.device,
    sizes: list[int],
    steps: int,
    warmup: int,
    budget: Budget,
    reserve: float,
    seed: int = 0,
) -> list[Json]:
    """Env-steps/s of ``MobiusVortexVecEnv.step`` at each size (default complex64 config).

    Parameters
    ----------
    device
        Where the envs run.
    sizes
        Values of ``num_envs``, in the order run.
    steps, warmup
        Timed and warm-up steps per size (seeded uniform actions in [−1, 1]).
    budget, reserve
        The check's budget; ``reserve`` seconds of it are kept for later stages.
    seed
        Seed of the envs and the actions.

    Returns
    -------
    list of dict
        One entry per size: ``status`` (``ok``, ``skipped`` with a ``reason``),
        ``median_s_per_step``, ``env_steps_per_s``, ``memory_bytes_per_env``, ...

    Notes
    -----
    Before each size after the first, its cost is extrapolated from the sizes timed so far
    (:func:`_extrapolate`). If the requested steps do not fit the time left, fewer are
    timed (at least ``MIN_TIMED_STEPS``); otherwise the size is skipped. While timing,
    a size stops early when the next step would cross the stage deadline.
    """
    results: list[Json] = []
    done: list[Json] = []
    deadline = budget.start + budget.total - reserve
    for n in sizes:
        left = budget.remaining(reserve)
        n_steps = steps
        reason = ""
        if not done:
            if left < MIN_SIZE_S:
                reason = f"{left:.1f} s left for this stage, need ≥ {MIN_SIZE_S:g} s"
        else:
            est_setup, est_step, p = _extrapolate(done, n)
            est = est_setup + (warmup + steps) * est_step
            if est > left:
                n_steps = math.floor((left - est_setup) / est_step) - warmup
                if n_steps < MIN_TIMED_STEPS:
                    reason = (
                        f"estimated {est:.1f} s ({est_setup:.1f} s set-up + {warmup + steps} × "
                        f"{est_step:.3g} s/step, ∝ num_envs^{p:.2f} from "
                        f"{done[-1]['num_envs']} envs) > {left:.1f} s left"
                    )
        if reason:
            results.append({"num_envs": n, "status": "skipped", "reason": reason})
            continue
        entry = _time_size(device, n, warmup, n_steps, deadline, seed)
        if n_steps < steps:
            note = f"{n_steps} of {steps} timed steps requested: the full count did not fit"
            entry["note"] = f"{note}; {entry['note']}" if "note" in entry else note
        results.append(entry)
        if entry["status"] == "ok":
            done.append(entry)
    return results


# -------------------------------------------------------------------------- stage 4: rhs
def _time_rhs(sim: Simulator, device: torch.device, deadline: float, repeats: int) -> Json:
    """First-call time, then ``repeats`` blocks of calls; median seconds per call."""
    psi = sim.psi
    _sync(device)
    t0 = time.perf_counter()
    sim.rhs(psi, 0.0)
    _sync(device)
    first = time.perf_counter() - t0
    # calls per block so that a block lasts ≥ RHS_BLOCK_S (a second call is warm)
    t0 = time.perf_counter()
    sim.rhs(psi, 0.0)
    _sync(device)
    one = max(time.perf_counter() - t0, 1e-7)
    calls = max(1, math.ceil(RHS_BLOCK_S / one))
    per_call: list[float] = []
    for _ in range(repeats):
        if time.monotonic() + calls * one * 1.5 > deadline:
            break
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(calls):
            sim.rhs(psi, 0.0)
        _sync(device)
        per_call.append((time.perf_counter() - t0) / calls)
    if not per_call:
        per_call = [one]
    med = statistics.median(per_call)
    nodes = psi.numel()
    return {
        "first_call_s": first,
        "calls_per_block": calls,
        "blocks": len(per_call),
        "median_s_per_call": med,
        "best_s_per_call": min(per_call),
        "node_updates_per_s": nodes / med,
    }


def rhs_throughput(device: torch.device, size: int, budget: Budget, repeats: int) -> Json:
    """Node-updates/s of ``Simulator.rhs`` on a flat ``size × size`` Möbius strip, complex64.

    Parameters
    ----------
    device
        Where the field lives.
    size
        ``nu = nv`` (nodes per side).
    budget
        The check's budget (the stage uses what is left).
    repeats
        Timed blocks per path (each ≥ 0.05 s of calls).

    Returns
    -------
    dict
        ``size``, ``nodes``, ``dtype`` and ``paths``: ``eager`` (``compiled=False``) and
        ``default`` (``compiled=None``: the compiled kernels when ``size² ≥
        MIN_COMPILED_NODES``, else the same eager path, then not timed twice), each with
        ``median_s_per_call``, ``node_updates_per_s``, ``first_call_s`` (includes any
        compilation) or ``status: skipped`` with a ``reason``; ``compile`` holds the
        inductor and C++ kernel states after the run.
    """
    nodes = size * size
    out: Json = {"size": size, "nodes": nodes, "dtype": "complex64", "paths": {}}
    deadline = budget.start + budget.total
    compiles = nodes >= MIN_COMPILED_NODES
    for name, compiled in (("eager", False), ("default", None)):
        left = budget.remaining()
        if name == "default" and not compiles:
            out["paths"][name] = {
                "status": "same as eager",
                "reason": f"{nodes} nodes < MIN_COMPILED_NODES = {MIN_COMPILED_NODES}",
            }
            continue
        need = MIN_COMPILE_S if name == "default" else MIN_SIZE_S
        if left < need:
            out["paths"][name] = {
                "status": "skipped",
                "reason": f"{left:.1f} s left, need ≥ {need:g} s",
            }
            continue
        lattice = MobiusStrip(size, size, metric="flat", dtype=torch.complex64, device=device)
        sim = Simulator(lattice, FieldParams(), dt=RHS_DT, initial="noise", compiled=compiled)
        entry = _time_rhs(sim, device, deadline, repeats)
        entry["status"] = "ok"
        out["paths"][name] = entry
        del sim, lattice
        gc.collect()
    out["compile"] = {
        "inductor_state": COMPILE_STATUS.state,
        "inductor_reason": COMPILE_STATUS.reason,
        "inductor_compile_s": COMPILE_STATUS.compile_seconds,
        "cpp_kernel_ok": CPP_STATUS.ok,
        "cpp_kernel_tried": CPP_STATUS.tried,
        "cpp_kernel_reason": CPP_STATUS.reason,
    }
    return out


# ----------------------------------------------------------------------------- driver
def _stage(results: Json, key: str, run: Callable[[], Any]) -> None:
    """Run one stage; an exception is recorded (with its traceback) as a failed stage."""
    try:
        results[key] = run()
    except Exception as exc:
        results[key] = {
            "ok": False,
            "status": "error",
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc()[-4000:],
        }


def _write(results: Json, path: Path, budget: Budget) -> None:
    results["elapsed_s"] = budget.elapsed()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(results, indent=2, allow_nan=True) + "\n")


def _fmt(x: Any, spec: str) -> str:
    return format(x, spec) if isinstance(x, (int, float)) else "—"


def _print_summary(results: Json) -> None:
    tests, roll = results.get("tests", {}), results.get("rollout", {})
    print(
        f"CUDA tests: {tests.get('status')} ({tests.get('passed', 0)} passed, "
        f"{tests.get('failed', 0)} failed, {tests.get('errors', 0)} errors, "
        f"{tests.get('skipped', 0)} skipped)"
    )
    print(
        f"rollout CPU vs {results['device']['type']}: {roll.get('status')} "
        f"(obs {_fmt(roll.get('max_rel_diff_obs'), '.2e')}, "
        f"reward {_fmt(roll.get('max_rel_diff_reward'), '.2e')}, tol {ROLLOUT_TOLERANCE:g})"
    )
    print(f"{'envs':>6} {'ms/step':>10} {'env-steps/s':>12} {'MiB/env':>9}  status")
    rows = results.get("throughput")
    for row in rows if isinstance(rows, list) else []:
        med, mem = row.get("median_s_per_step"), row.get("memory_bytes_per_env")
        print(
            f"{row['num_envs']:>6} {_fmt(None if med is None else 1e3 * med, '10.2f'):>10} "
            f"{_fmt(row.get('env_steps_per_s'), '12.1f'):>12} "
            f"{_fmt(None if mem is None else mem / 2**20, '9.3f'):>9}  "
            f"{row['status']} {row.get('reason', row.get('note', ''))}"
        )
    rhs = results.get("rhs", {})
    for name, path in rhs.get("paths", {}).items():
        label = f"rhs {rhs['size']}² c64 {name:>7}:"
        if path["status"] != "ok":
            print(f"{label} {path['status']} ({path.get('reason', '')})")
            continue
        print(
            f"{label} {path['node_updates_per_s']:.3e} node-updates/s "
            f"({1e3 * path['median_s_per_call']:.3f} ms/call, "
            f"first call {path['first_call_s']:.2f} s)"
        )
    for key in ("tests", "rollout", "throughput", "rhs"):
        stage = results.get(key)
        if isinstance(stage, dict) and stage.get("status") == "error":
            print(f"{key}: ERROR {stage['error']} (traceback in the JSON)")
    print(
        f"{'PASSED' if results['passed'] else 'FAILED'} in {results['elapsed_s']:.1f} s "
        f"(budget {results['time_budget_s']:g} s) → {results['json']}"
    )


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--json", default="results/device_check.json", help="output file")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a dry run)")
    parser.add_argument("--envs", type=int, nargs="+", default=None, help="num_envs sizes")
    parser.add_argument("--steps", type=int, default=None, help="timed env steps per size")
    parser.add_argument("--rhs-size", type=int, default=None, help="RHS grid side (nodes)")
    parser.add_argument("--time-budget", type=float, default=280.0, help="seconds in all")
    args = parser.parse_args(argv)
    quick = args.quick
    if args.envs is None:
        args.envs = [1, 4] if quick else [1, 64, 1024, 4096]
    if args.steps is None:
        args.steps = 3 if quick else 20
    if args.rhs_size is None:
        args.rhs_size = 64 if quick else 4096
    args.warmup = 1 if quick else 3
    args.rollout_steps = 3 if quick else 10
    args.rhs_repeats = 3 if quick else RHS_REPEATS
    for name, value, low in (
        ("--steps", args.steps, 1),
        ("--rhs-size", args.rhs_size, 4),
        ("--envs", min(args.envs), 1),
    ):
        if value < low:
            parser.error(f"{name} = {value} is not valid; need an integer ≥ {low}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the check; returns the exit code (0: every correctness check passed)."""
    args = _parse(argv)
    budget = Budget(args.time_budget)
    path = Path(args.json)
    results: Json = {
        "schema": "hhml-device-check/1",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv[1:] if argv is None else list(argv),
        "json": str(path),
        "time_budget_s": budget.total,
        "quick": args.quick,
        "passed": False,
    }
    try:
        device = resolve_device(args.device)
    except DeviceError as exc:
        # the one failure that leaves nothing to measure: record it, exit 2
        results.update(error=str(exc), exit_code=2, torch=torch.__version__)
        _write(results, path, budget)
        print(f"device_check: {exc}", file=sys.stderr)
        return 2
    results["device"] = dev = device_info(device)
    memory = dev["total_memory_bytes"]
    gib = _fmt(None if memory is None else memory / 2**30, ".1f")
    units = f"{dev['multiprocessors']} SMs" if device.type == "cuda" else f"{dev['cpu_count']} CPUs"
    print(
        f"device {device}: {dev['name']}, {gib} GiB, {units}, capability {dev['capability']}, "
        f"torch {dev['torch']}, CUDA {dev['cuda']}"
    )
    _write(results, path, budget)

    # 1. the CUDA-marked tests
    left = budget.remaining()
    if left >= MIN_TESTS_S:
        timeout = min(left, TESTS_SHARE * budget.total)
        _stage(results, "tests", lambda: run_cuda_tests(device, timeout))
    else:
        results["tests"] = {"ok": False, "status": "skipped", "reason": f"{left:.1f} s left"}
    _write(results, path, budget)

    # 2. rollout equality
    left = budget.remaining()
    if left >= MIN_ROLLOUT_S:
        _stage(results, "rollout", lambda: rollout_check(device, 4, args.rollout_steps))
    else:
        results["rollout"] = {"ok": False, "status": "skipped", "reason": f"{left:.1f} s left"}
    _write(results, path, budget)

    # 3. env throughput (keeps RHS_SHARE of the budget for stage 4)
    reserve = RHS_SHARE * budget.total
    _stage(
        results,
        "throughput",
        lambda: env_throughput(device, args.envs, args.steps, args.warmup, budget, reserve),
    )
    _write(results, path, budget)

    # 4. RHS node-updates/s
    _stage(results, "rhs", lambda: rhs_throughput(device, args.rhs_size, budget, args.rhs_repeats))

    stages_ok = all(
        not (isinstance(results[k], dict) and results[k].get("status") == "error")
        for k in ("tests", "rollout", "throughput", "rhs")
    )
    results["passed"] = bool(results["tests"]["ok"] and results["rollout"]["ok"] and stages_ok)
    results["exit_code"] = 0 if results["passed"] else 1
    _write(results, path, budget)
    _print_summary(results)
    return int(results["exit_code"])


if __name__ == "__main__":
    try:
        sys.exit(main())
    except HHmLError as err:
        print(f"device_check: {err}", file=sys.stderr)
        sys.exit(2)
