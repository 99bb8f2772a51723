"""Percentiles of every observation feature under uniformly random actions.

The figures of the observation tables in docs/environment.md::

    python benchmarks/observation_scales.py            # quickstart and setpoint envs

16 envs, seed 0 (actions from a generator seeded 1), 3 episodes of 40 steps each
(121 observations per env); prints the 1st, 50th and 99th percentile per feature and checks
that every observation lies inside the env's Box.
"""

from __future__ import annotations

import numpy as np
import torch

from hhml.config import load_config
from hhml.ml.env import OBSERVATION_FEATURES, SETPOINT_FEATURES, MobiusVortexCore


def main() -> None:
    torch.set_num_threads(1)
    for name in ("quickstart", "setpoint"):
        core = MobiusVortexCore(load_config(name), 16)
        core.seed(0)
        core.reset()
        generator = torch.Generator().manual_seed(1)
        rows = [core.observation()]
        for t in range(120):
            core.step(torch.rand(16, 23, generator=generator, dtype=torch.float64) * 2 - 1)
            rows.append(core.observation())
            if (t + 1) % 40 == 0:
                core.reset()
        obs = torch.cat(rows).numpy()
        low, high = core.observation_bounds()
        inside = bool(np.all(obs >= low) and np.all(obs <= high))
        names = [n for n, _ in OBSERVATION_FEATURES]
        extra = [n for n, _ in SETPOINT_FEATURES] if core.setpoint_task else []
        first_extra = core.obs_dim - len(extra)
        index = list(range(len(names))) + list(range(first_extra, core.obs_dim))
        print(f"{name}: {obs.shape[0]} observations, all inside the Box: {inside}")
        print(f"  {'feature':24s} {'p1':>9s} {'p50':>9s} {'p99':>9s}")
        for i, feature in zip(index, names + extra, strict=True):
            p1, p50, p99 = np.percentile(obs[:, i], [1, 50, 99])
            print(f"  {feature:24s} {p1:9.3g} {p50:9.3g} {p99:9.3g}")


if __name__ == "__main__":
    main()
