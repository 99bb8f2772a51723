"""Non-learning baselines of a config, scored exactly as the trainer scores its agent.

Four policies, each evaluated on the trainer's protocol — one env, episode ``i``
reset with seed ``training.eval_seed + i``, ``training.eval_episodes`` episodes (or
``episodes``) — with a 95 % Student-t interval of the mean return:

- ``random``: uniform actions in ``[−1, 1]`` from a generator seeded with
  ``training.eval_seed`` (the trainer's ``baseline`` record: the same numbers);
- ``midpoint``: the all-zeros action, the mid-point of every control range;
- ``constant``: the best constant action found by CMA-ES within the env-step budget;
- ``schedule``: the best piecewise-constant schedule of ``segments`` equal segments of
  an episode, found by CMA-ES within the same budget.

The budget (default ``training.total_steps``, the agent's own) is counted in env
steps, for each searched baseline separately, and reported beside its score.

Public names: ``BASELINES``, ``BaselineResult``, ``run_baselines``,
``compare_with_baselines``, ``to_box``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
import torch

from hhml.config.schema import HHmLConfig
from hhml.errors import ConfigError
from hhml.ml.action_box import is_bounded, scale_to_box
from hhml.ml.baselines.policies import ConstantPolicy, SchedulePolicy
from hhml.ml.baselines.search import episode_horizon, search_open_loop
from hhml.ml.env.factory import make_vector_env
from hhml.ml.training.evaluation import Policy, RandomPolicy, mean_interval, run_episodes

__all__ = ["BASELINES", "BaselineResult", "compare_with_baselines", "run_baselines", "to_box"]

FloatArray = npt.NDArray[np.float32]

#: Baseline names in report order, with a one-line description.
BASELINES: dict[str, str] = {
    "random": "uniformly random actions",
    "midpoint": "mid-point of every control range (constant)",
    "constant": "best constant action (CMA-ES, same env-step budget)",
    "schedule": "best open-loop schedule (CMA-ES, same env-step budget)",
}


@dataclass
class BaselineResult:
    """A baseline's evaluation.

    Attributes
    ----------
    name : str
        A key of :data:`BASELINES`.
    returns : list of float
        Return of evaluation episode ``i`` (seed ``eval_seed + i``).
    mean : float
        Mean return.
    interval : tuple of float or None
        95 % confidence interval of the mean (None for one episode).
    search_env_steps : int
        Env steps spent searching (0 for ``random`` and ``midpoint``).
    search_wall_s : float
        Wall time of the search and the evaluation (seconds).
    actions : list or None
        The searched actions ``[K][act_dim]`` in ``[−1, 1]`` (``constant``: K = 1).
    details : dict
        Search bookkeeping (generations, population, segments).
    """

    name: str
    returns: list[float]
    mean: float
    interval: tuple[float, float] | None
    search_env_steps: int = 0
    search_wall_s: float = 0.0
    actions: list[list[float]] | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of_returns(cls, name: str, returns: Sequence[float]) -> BaselineResult:
        """A baseline that needed no search, from its evaluation returns."""
        values = [float(r) for r in returns]
        return cls(name, values, float(np.mean(values)), mean_interval(values))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {
            "name": self.name,
            "description": BASELINES[self.name],
            "return_mean": self.mean,
            "return_ci95": list(self.interval) if self.interval is not None else None,
            "returns": list(self.returns),
            "search_env_steps": self.search_env_steps,
            "wall_s": self.search_wall_s,
            "actions": self.actions,
            **self.details,
        }


def compare_with_baselines(
    agent_returns: Sequence[float] | None, baselines: Sequence[Mapping[str, Any]]
) -> dict[str, str]:
    """The agent's evaluation against each baseline record (:meth:`BaselineResult.to_dict`).

    ``"agent better"`` / ``"baseline better"`` where the two 95 % intervals do not
    overlap, ``"intervals overlap"`` where they do (no conclusion), and
    ``"no interval"`` where either side has fewer than two episodes. Baselines that
    were skipped are left out; no agent evaluation gives ``{}``.
    """
    if not agent_returns:
        return {}
    agent = mean_interval(agent_returns)
    verdicts: dict[str, str] = {}
    for record in baselines:
        if "return_ci95" not in record:
            continue
        other = record["return_ci95"]
        if agent is None or other is None:
            verdicts[str(record["name"])] = "no interval"
        elif agent[0] > other[1]:
            verdicts[str(record["name"])] = "agent better"
        elif agent[1] < other[0]:
            verdicts[str(record["name"])] = "baseline better"
        else:
            verdicts[str(record["name"])] = "intervals overlap"
    return verdicts


def to_box(space: gym.spaces.Box) -> Callable[[FloatArray], FloatArray]:
    """The affine map of actions in ``[−1, 1]`` onto ``space`` (identity if unbounded),
    clipped to the bounds — what the trainer applies to its agent's actions."""
    if not is_bounded(space.low, space.high):
        return lambda action: np.asarray(action, dtype=np.float32)
    low = torch.as_tensor(np.asarray(space.low, dtype=np.float32))
    high = torch.as_tensor(np.asarray(space.high, dtype=np.float32))

    def scale(action: FloatArray) -> FloatArray:
        a = torch.as_tensor(np.asarray(action, dtype=np.float32))
        out: FloatArray = scale_to_box(a, low, high).numpy()
        return out

    return scale


def run_baselines(
    cfg: HHmLConfig,
    names: Sequence[str] = tuple(BASELINES),
    budget: int | None = None,
    segments: int = 4,
    population: int | None = None,
    episodes: int | None = None,
    seed: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[BaselineResult]:
    """Evaluate the named baselines of ``cfg`` on the trainer's evaluation protocol.

    Parameters
    ----------
    cfg
        The config (env and ``training.eval_seed``/``eval_episodes``/``total_steps``).
    names
        Which of :data:`BASELINES` to run, in that order.
    budget
        Env steps each search may take; default ``training.total_steps``.
    segments
        Segments of the ``schedule`` baseline.
    population
        CMA-ES candidates per generation (default: CMA-ES's own, capped by the budget).
    episodes
        Evaluation episodes; default ``training.eval_episodes``.
    seed
        Seeds the searches (default ``training.seed``).
    progress
        Called with a short line before each baseline (e.g. to print it).

    Raises
    ------
    ConfigError
        An unknown baseline name, ``segments < 1``, or a budget below two episodes.
    """
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise ConfigError(f"unknown baseline(s) {unknown}; valid: {', '.join(BASELINES)}")
    tr = cfg.training
    budget = tr.total_steps if budget is None else int(budget)
    count = tr.eval_episodes if episodes is None else int(episodes)
    if count < 1:
        raise ConfigError(f"episodes = {count}: evaluate at least 1 episode")
    seeds = [tr.eval_seed + i for i in range(count)]
    search_seed = tr.seed if seed is None else int(seed)
    eval_envs = make_vector_env(cfg, num_envs=1, seed=tr.eval_seed)
    space = eval_envs.single_action_space
    assert isinstance(space, gym.spaces.Box)
    env_action = to_box(space)
    act_dim = int(space.shape[0])
    results: list[BaselineResult] = []
    try:
        for name in names:
            if progress is not None:
                progress(f"baseline {name}: {BASELINES[name]}")
            start = time.perf_counter()
            policy: Policy
            steps, actions, details = 0, None, {}
            if name == "random":
                policy = RandomPolicy(act_dim, tr.eval_seed)
            elif name == "midpoint":
                policy = ConstantPolicy(np.zeros(act_dim, dtype=np.float32))
            else:
                k = 1 if name == "constant" else segments
                found = search_open_loop(
                    cfg, k, budget, env_action, population=population, seed=search_seed
                )
                horizon = episode_horizon(cfg)
                policy = SchedulePolicy(found.actions, horizon)
                steps, actions = found.env_steps, found.actions.tolist()
                details = {
                    "segments": k,
                    "generations": found.generations,
                    "selection_episodes": found.selection_episodes,
                    "population": found.population,
                    "budget_env_steps": budget,
                }
            result, _ = run_episodes(eval_envs, policy, seeds, env_action, 0)
            results.append(
                BaselineResult(
                    name=name,
                    returns=list(result.returns),
                    mean=result.return_mean,
                    interval=mean_interval(result.returns),
                    search_env_steps=steps,
                    search_wall_s=time.perf_counter() - start,
                    actions=actions,
                    details=details,
                )
            )
    finally:
        eval_envs.close()
    return results
