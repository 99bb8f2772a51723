"""Evaluating a policy on seeded episodes of the evaluation env.

Public names: ``EvalResult``, ``Policy``, ``AgentPolicy``, ``RandomPolicy``,
``run_episodes``, ``mean_interval``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import numpy.typing as npt

from hhml.ml.rl.base import Agent
from hhml.ml.training.metrics import IntervalStats

__all__ = [
    "AgentPolicy",
    "EvalResult",
    "Policy",
    "RandomPolicy",
    "mean_interval",
    "run_episodes",
]

FloatArray = npt.NDArray[np.float32]


@dataclass
class EvalResult:
    """One evaluation: returns of ``training.eval_episodes`` seeded episodes.

    Attributes
    ----------
    step : int
        Environment steps done when it ran.
    return_mean, return_std : float
        Mean and standard deviation of the episode returns.
    length_mean : float
        Mean episode length (env steps).
    returns : list of float
        Return of each episode (episode ``i`` used seed ``eval_seed + i``).
    interval : tuple of float or None
        95 % confidence interval of the mean return (:func:`mean_interval`).
    """

    step: int
    return_mean: float
    return_std: float
    length_mean: float
    returns: list[float]

    @property
    def interval(self) -> tuple[float, float] | None:
        return mean_interval(self.returns)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form (for checkpoints and ``metrics.json``; ``return_ci95`` is
        derived from ``returns`` and ignored when reading back)."""
        ci = self.interval
        return {
            "step": self.step,
            "return_mean": self.return_mean,
            "return_std": self.return_std,
            "return_ci95": list(ci) if ci is not None else None,
            "length_mean": self.length_mean,
            "returns": list(self.returns),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalResult:
        """Inverse of :meth:`to_dict`."""
        return cls(
            step=int(data["step"]),
            return_mean=float(data["return_mean"]),
            return_std=float(data["return_std"]),
            length_mean=float(data["length_mean"]),
            returns=[float(r) for r in data["returns"]],
        )


def mean_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float] | None:
    """Student-t confidence interval ``mean ± t_{(1+level)/2, n−1} · s / √n`` of the mean
    of ``n`` independent episode returns (``s``: sample standard deviation, ddof = 1).

    Returns None for fewer than two values (no interval can be estimated).
    """
    from scipy import stats

    data = np.asarray(values, dtype=np.float64)
    n = int(data.size)
    if n < 2:
        return None
    mean = float(data.mean())
    half = float(stats.t.ppf(0.5 + level / 2.0, n - 1)) * float(data.std(ddof=1)) / math.sqrt(n)
    return mean - half, mean + half


class Policy(Protocol):
    """What :func:`run_episodes` evaluates: actions in ``[-1, 1]`` for a batch of observations."""

    def reset(self) -> None:
        """Start a new episode."""

    def __call__(self, obs: FloatArray) -> FloatArray:
        """Actions ``[N, act_dim]`` for observations ``[N, obs_dim]``."""


class AgentPolicy:
    """An agent's deterministic policy (``act(explore=False)``), hidden state reset per episode."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def reset(self) -> None:
        """Clear the agent's recurrent state."""
        self.agent.reset_state(None)

    def __call__(self, obs: FloatArray) -> FloatArray:
        """The agent's deterministic actions."""
        action: FloatArray = np.asarray(self.agent.act(obs, explore=False), dtype=np.float32)
        return action


class RandomPolicy:
    """Uniformly random actions in ``[-1, 1]`` from a generator seeded with ``seed``.

    The random-action baseline a trained agent is reported against.
    """

    def __init__(self, act_dim: int, seed: int) -> None:
        self.act_dim = act_dim
        self._rng = np.random.default_rng(seed)

    def reset(self) -> None:
        """Nothing to reset (the generator continues across episodes)."""

    def __call__(self, obs: FloatArray) -> FloatArray:
        """``[N, act_dim]`` uniform actions."""
        shape = (obs.shape[0], self.act_dim)
        return self._rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)


def run_episodes(
    envs: gym.vector.VectorEnv,
    policy: Policy,
    seeds: Sequence[int],
    env_action: Callable[[FloatArray], FloatArray],
    step: int,
) -> tuple[EvalResult, dict[str, float]]:
    """Run one episode per seed on a single-env vector env and summarise the returns.

    Parameters
    ----------
    envs
        A vector env with one env; it is reset with each seed in turn.
    policy
        Actions in ``[-1, 1]``; ``env_action`` maps them onto the env's Box.
    seeds
        One reset seed per episode.
    env_action
        The affine map from ``[-1, 1]`` to the env's action bounds.
    step
        Training step recorded in the result.

    Returns
    -------
    EvalResult
        Returns and lengths of the episodes.
    dict
        Means over all evaluation steps of the env's ``info["reward_terms"]``
        (as ``reward/<name>``) and ``info["vortex"]`` (as ``vortex/<name>``), if any.
    """
    returns: list[float] = []
    lengths: list[int] = []
    extras = IntervalStats()
    for seed in seeds:
        obs, _ = envs.reset(seed=seed)
        policy.reset()
        total, length = 0.0, 0
        while True:
            action = policy(np.asarray(obs, dtype=np.float32))
            obs, reward, terminated, truncated, info = envs.step(env_action(action))
            total += float(reward[0])
            length += 1
            _add_info(extras, info)
            if bool(terminated[0]) or bool(truncated[0]):
                break
        returns.append(total)
        lengths.append(length)
    result = EvalResult(
        step=step,
        return_mean=float(np.mean(returns)),
        return_std=float(np.std(returns)),
        length_mean=float(np.mean(lengths)),
        returns=returns,
    )
    return result, extras.means()


def _add_info(extras: IntervalStats, info: Mapping[str, Any]) -> None:
    for key, prefix in (("reward_terms", "reward/"), ("vortex", "vortex/")):
        group = info.get(key)
        if isinstance(group, Mapping):
            for name, values in group.items():
                extras.add(prefix + str(name), values)
