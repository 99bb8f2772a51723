"""Constant-action baselines of a config's evaluation, with an env-step budget.

Scores, on the trainer's own evaluation protocol (``training.eval_episodes`` episodes on
seeds ``training.eval_seed + i``, one env), the mid-point action (all zeros) and the best
of uniformly random constant actions found by random search with ``--budget`` env steps
(each candidate costs one full evaluation), then re-scores the winner. The budget is
counted in env steps and printed beside the result.

Usage::

    python benchmarks/bench_constant_baseline.py [--config configs/experiment/quickstart.yaml]
        [--budget 4000] [--seed 0] [overrides ...]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
import numpy.typing as npt

from hhml.config import load_config
from hhml.ml.env import make_vector_env
from hhml.ml.training.evaluation import run_episodes

FloatArray = npt.NDArray[np.float32]


class ConstantPolicy:
    """The same action ``[act_dim]`` in [−1, 1] for every env and step."""

    def __init__(self, action: npt.ArrayLike) -> None:
        self.action = np.asarray(action, dtype=np.float32)

    def reset(self) -> None:
        """Nothing to reset."""

    def __call__(self, obs: FloatArray) -> FloatArray:
        return np.tile(self.action, (obs.shape[0], 1))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/experiment/quickstart.yaml")
    parser.add_argument("--budget", type=int, default=4000, help="env steps of search")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    tr = cfg.training
    seeds = [tr.eval_seed + i for i in range(tr.eval_episodes)]
    envs = make_vector_env(cfg, num_envs=1, seed=tr.eval_seed)
    act_dim = int(envs.single_action_space.shape[0])

    def score(action: npt.ArrayLike) -> tuple[float, float, int]:
        result, _ = run_episodes(envs, ConstantPolicy(action), seeds, lambda a: a, 0)
        steps = round(result.length_mean * len(seeds))
        return result.return_mean, result.return_std, steps

    mid, mid_std, _ = score(np.zeros(act_dim))
    rng = np.random.default_rng(args.seed)
    best, best_action, spent, tried = -np.inf, np.zeros(act_dim), 0, 0
    while spent < args.budget:
        candidate = rng.uniform(-1.0, 1.0, act_dim)
        value, _, steps = score(candidate)
        spent += steps
        tried += 1
        if value > best:
            best, best_action = value, candidate
    out = {
        "config": args.config,
        "eval_seeds": seeds,
        "midpoint": {"return_mean": mid, "return_std": mid_std},
        "best_constant": {
            "return_mean": best,
            "budget_env_steps": spent,
            "candidates": tried,
            "action": best_action.tolist(),
        },
    }
    print(f"mid-point action (all zeros): {mid:.2f} ± {mid_std:.2f} (std over {len(seeds)})")
    print(f"best of {tried} random constant actions ({spent} env steps of search): {best:.2f}")
    print(json.dumps(out["best_constant"]["action"]))
    return out


if __name__ == "__main__":
    main()
