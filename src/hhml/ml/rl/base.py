"""The interface every HHmL agent implements, and that the Trainer relies on.

An agent acts on a batch of ``N`` environments at once (``N = 1`` for a single
env). Arrays crossing this interface are NumPy (what gymnasium vector envs
return); tensors stay inside the agent, on its device.

Life cycle, as driven by :class:`hhml.ml.training.Trainer`::

    agent.reset_state(None)                       # all envs start an episode
    while training:
        action = agent.act(obs, explore=True)     # [N, act_dim] in [-1, 1]
        next_obs, reward, terminated, truncated, info = env.step(action)
        # next_obs of finished envs is the *final* observation of their episode
        agent.observe(obs, action, reward, next_obs, terminated, truncated)
        metrics = agent.update()                  # {} until learning starts
        agent.reset_state(terminated | truncated) # recurrent agents clear hidden states
        obs = <next observations, reset ones for finished envs>

Public names: ``Agent``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from hhml.errors import ConfigError

__all__ = ["Agent"]

FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]

#: Averages the gradients of the given tensors over the ranks of a distributed run.
GradientHook = Callable[[Iterable[torch.Tensor]], None]


class Agent(ABC):
    """Base class of the RL agents (TD3, SAC, recurrent TD3).

    Attributes
    ----------
    obs_dim, act_dim : int
        Observation and action sizes; actions live in ``[-1, 1]^act_dim``.
    device : torch.device
        Where networks and the replay buffer live.
    num_steps : int
        Transitions observed so far (summed over envs).
    num_updates : int
        Gradient updates done so far.
    """

    obs_dim: int
    act_dim: int
    num_steps: int
    num_updates: int

    @abstractmethod
    def act(self, obs: FloatArray, explore: bool) -> FloatArray:
        """Actions ``[N, act_dim]`` in ``[-1, 1]`` for observations ``[N, obs_dim]``.

        ``explore=True``: uniform random actions before learning starts, then the
        policy plus the algorithm's exploration noise (or a policy sample for SAC);
        ``explore=False``: the deterministic policy (evaluation). Recurrent agents
        advance their per-env hidden state in both modes.
        """

    @abstractmethod
    def reset_state(self, done: BoolArray | None) -> None:
        """Start new episodes for the envs where ``done`` is true (all if None).

        Clears the hidden states of recurrent agents; a no-op for feed-forward ones.
        """

    @abstractmethod
    def observe(
        self,
        obs: FloatArray,
        action: FloatArray,
        reward: FloatArray,
        next_obs: FloatArray,
        terminated: BoolArray,
        truncated: BoolArray,
    ) -> None:
        """Store a batch of transitions ``[N, ...]`` in the replay buffer.

        ``next_obs`` of an env whose episode ended is its final observation; a
        ``terminated`` transition does not bootstrap, a ``truncated`` one does.
        """

    @abstractmethod
    def update(self) -> dict[str, float]:
        """Do the configured number of gradient steps; return their metrics.

        Returns ``{}`` before learning starts. Metrics are scalars such as
        ``critic_loss``, ``actor_loss``, ``alpha``, ``critic_grad_norm``,
        ``actor_grad_norm``, ``lr``.
        """

    @abstractmethod
    def state_dict(self, include_replay: bool = True) -> dict[str, Any]:
        """Everything needed to continue exactly: networks, optimisers, counters,
        RNG states and (optionally) the replay buffer. Tensors are moved to CPU."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; raises :class:`hhml.errors.CheckpointError`
        naming the missing key or mismatched shape."""

    @abstractmethod
    def num_parameters(self) -> int:
        """Number of trainable parameters of all networks (target copies excluded)."""

    def enable_data_parallel(self, rank: int, average_gradients: GradientHook) -> None:
        """Train as rank ``rank`` of a data-parallel run (see :mod:`hhml.ml.training.distributed`).

        The agent must call ``average_gradients`` on each optimiser's tensors
        between ``backward()`` and the optimiser step, and draw its exploration
        and minibatch randomness from streams that differ between ranks (rank 0
        keeping the single-process streams). The default refuses.

        Raises
        ------
        ConfigError
            This agent does not support multi-process training.
        """
        raise ConfigError(
            f"agent {type(self).__name__} does not support multi-process training (--nproc > 1)"
        )

    def synced_modules(self) -> list[torch.nn.Module]:
        """The trained networks whose weights every rank must hold identically."""
        return []

    def save(self, path: str) -> None:
        """Write :meth:`state_dict` atomically to ``path`` (a ``.pt`` file)."""
        from hhml.utils import atomic_torch_save

        atomic_torch_save({"agent_class": type(self).__name__, **self.state_dict()}, path)
