"""The interface every HHmL agent implements, and that the Trainer relies on.

An agent acts on a batch of ``N`` environments at once (``N = 1`` for a single
env). Its hot path takes and returns tensors on the agent's device and never
waits for it (no host synchronisation): :meth:`Agent.act_tensor`,
:meth:`Agent.observe` with tensors, :meth:`Agent.update_tensors`,
:meth:`Agent.reset_state` with a bool tensor. :meth:`Agent.act` and
:meth:`Agent.update` are the NumPy/float edge of the same calls, for gymnasium
loops and scripts.

Life cycle, as driven by :class:`hhml.ml.training.Trainer` (all tensors)::

    agent.reset_state(None)                            # all envs start an episode
    while training:
        action = agent.act_tensor(obs, explore=True)   # [N, act_dim] in [-1, 1]
        step = env.step(action)
        # final_obs of finished envs is the *final* observation of their episode
        agent.observe(obs, action, step.reward, step.final_obs, step.terminated,
                      step.truncated)
        metrics = agent.update_tensors()               # {} until learning starts
        agent.reset_state(step.terminated | step.truncated)  # recurrent: clear state
        obs = step.obs                                 # reset ones for finished envs

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
    device: torch.device
    num_steps: int
    num_updates: int

    @abstractmethod
    def act_tensor(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        """Actions ``[N, act_dim]`` in ``[-1, 1]`` for observations ``[N, obs_dim]``
        (float32 tensors on the agent's device; no host synchronisation).

        ``explore=True``: uniform random actions before learning starts, then the
        policy plus the algorithm's exploration noise (or a policy sample for SAC);
        ``explore=False``: the deterministic policy (evaluation). Recurrent agents
        advance their per-env hidden state in both modes.
        """

    def act(self, obs: FloatArray, explore: bool) -> FloatArray:
        """:meth:`act_tensor` for NumPy observations ``[N, obs_dim]``; NumPy float32 actions."""
        obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
        result: FloatArray = self.act_tensor(obs_t, explore).cpu().numpy()
        return result

    @abstractmethod
    def reset_state(self, done: BoolArray | torch.Tensor | None) -> None:
        """Start new episodes for the envs where ``done`` is true (all if None).

        ``done`` is a bool array or tensor ``[N]``. Clears the hidden states of
        recurrent agents; a no-op for feed-forward ones.
        """

    @abstractmethod
    def observe(
        self,
        obs: FloatArray | torch.Tensor,
        action: FloatArray | torch.Tensor,
        reward: FloatArray | torch.Tensor,
        next_obs: FloatArray | torch.Tensor,
        terminated: FloatArray | BoolArray | torch.Tensor,
        truncated: BoolArray | torch.Tensor,
    ) -> None:
        """Store a batch of transitions ``[N, ...]`` (arrays or device tensors) in the
        replay buffer.

        ``next_obs`` of an env whose episode ended is its final observation; a
        ``terminated`` transition does not bootstrap, a ``truncated`` one does.
        """

    @abstractmethod
    def update_tensors(self) -> dict[str, torch.Tensor | float]:
        """Do the configured number of gradient steps; return their metrics as 0-dim
        tensors on the device (constants as floats), without a host synchronisation.

        Returns ``{}`` before learning starts. Metrics such as ``critic_loss``,
        ``actor_loss``, ``alpha``, ``critic_grad_norm``, ``actor_grad_norm``, ``lr``.
        """

    def update(self) -> dict[str, float]:
        """:meth:`update_tensors` with the metrics copied to Python floats."""
        return {name: float(value) for name, value in self.update_tensors().items()}

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
