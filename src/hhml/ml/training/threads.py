"""The CPU thread count a run uses when ``training.torch_threads = 0`` (auto).

Measured on a 2-core CPU (``benchmarks/bench_threads.py``, recorded in
``benchmarks/README.md``): on an idle machine two threads make a batched Möbius env
step 1.3 × faster at 8 envs (9 216 field nodes) and 1.7 × at 128 envs; with two other
busy processes on the machine, two threads make it 1.5 × slower at 8 envs and 12–30 ×
slower at 32–128 envs (the thread pools wait for each other at every operation). So
the automatic choice is one thread for small work, where the gain is small and the risk
large, and all cores otherwise. It depends on the config and the core count only (not on
the momentary load), so that a resumed run picks the same count and continues bit for
bit; on a machine shared with other jobs, set ``training.torch_threads=1``.

Public names: ``AUTO_MIN_NODES``, ``choose_threads``.
"""

from __future__ import annotations

import os

from hhml.config.schema import HHmLConfig
from hhml.ml.env.factory import MOBIUS_ENV_ID

__all__ = ["AUTO_MIN_NODES", "choose_threads"]

#: Field nodes per env step (envs × strips × nu × nv) from which all cores are used.
AUTO_MIN_NODES = 65_536


def choose_threads(cfg: HHmLConfig, cores: int | None = None) -> tuple[int, str]:
    """Threads for this run and the reason, e.g. ``(1, "auto: 9216 field nodes < 65536")``.

    Parameters
    ----------
    cfg
        The run's config: ``training.torch_threads`` > 0 is used as given.
    cores
        CPUs available (default: ``os.sched_getaffinity``/``os.cpu_count``).
    """
    if cfg.training.torch_threads > 0:
        return cfg.training.torch_threads, "training.torch_threads"
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
        cores = cores or os.cpu_count() or 1
    if cores == 1:
        return 1, "auto: one core"
    if cfg.env.id != MOBIUS_ENV_ID:
        return 1, f"auto: env {cfg.env.id} is small"
    lat = cfg.lattice
    nodes = cfg.env.num_envs * lat.strips * lat.nu * lat.nv
    if nodes < AUTO_MIN_NODES:
        return 1, f"auto: {nodes} field nodes < {AUTO_MIN_NODES}"
    return cores, f"auto: {nodes} field nodes on {cores} cores"
