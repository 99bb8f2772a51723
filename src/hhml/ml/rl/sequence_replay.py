"""Sequence replay for recurrent agents: per-env episode streams, burn-in, masks.

Each of the ``N`` batched environments writes its transitions into its own ring
(a stream), together with each transition's step index within its episode. A
sample is a window of ``burn_in + sequence_length`` consecutive steps of one
stream, chosen by the first step ``t0`` whose loss counts:

- the window starts ``burn_in`` steps before ``t0``, but never before the start
  of ``t0``'s episode (nor before the oldest stored step). A window that would
  reach back into the previous episode is shifted so that it *starts* at the
  episode start: the LSTM then begins from a zero state exactly at the episode
  start, as it does when acting, and the steps between the window start and
  ``t0`` act as a shorter burn-in;
- the loss mask is 1 on the ``sequence_length`` steps from ``t0`` on that still
  belong to ``t0``'s episode and are already written, 0 elsewhere (burn-in, steps
  of the next episode, unwritten steps). Masked steps after the last valid one
  cannot influence earlier outputs of a causal LSTM, so they are simply padding.

Public names: ``SequenceReplayBuffer``, ``SequenceBatch``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from hhml.errors import CheckpointError, ConfigError
from hhml.ml.rl.base import BoolArray, FloatArray
from hhml.ml.rl.checkpoint import check_tensor, require
from hhml.ml.rl.replay import float_rows

__all__ = ["SequenceBatch", "SequenceReplayBuffer"]


class SequenceBatch(NamedTuple):
    """A batch of ``B`` windows of ``L = burn_in + sequence_length`` steps, on the device."""

    obs: torch.Tensor  #: ``[B, L, obs_dim]``
    action: torch.Tensor  #: ``[B, L, act_dim]``
    reward: torch.Tensor  #: ``[B, L, 1]``
    next_obs: torch.Tensor  #: ``[B, L, obs_dim]`` (the final observation at an episode end)
    terminated: torch.Tensor  #: ``[B, L, 1]``
    mask: torch.Tensor  #: ``[B, L, 1]``, 1.0 on the steps that enter the loss


class SequenceReplayBuffer:
    """``N`` per-env rings of transitions, sampled as masked windows with burn-in.

    Parameters
    ----------
    capacity
        Total capacity in transitions; each of the ``num_envs`` streams holds
        ``capacity // num_envs`` steps.
    num_envs
        Number of parallel streams ``N`` (the env batch size).
    obs_dim, act_dim
        Sizes of observations and actions.
    burn_in, sequence_length
        Window layout (see the module docstring).
    device
        Where the storage lives.

    Raises
    ------
    ConfigError
        A stream would be shorter than one window.
    """

    _FLOAT_FIELDS = ("obs", "action", "reward", "next_obs", "terminated")

    def __init__(
        self,
        capacity: int,
        num_envs: int,
        obs_dim: int,
        act_dim: int,
        burn_in: int,
        sequence_length: int,
        device: torch.device | str,
    ) -> None:
        self.num_envs = int(num_envs)
        self.stream_capacity = int(capacity) // self.num_envs
        self.capacity = int(capacity)
        self.burn_in = int(burn_in)
        self.sequence_length = int(sequence_length)
        self.window = self.burn_in + self.sequence_length
        if self.stream_capacity < self.window:
            raise ConfigError(
                f"agent.buffer_size = {capacity} gives {self.stream_capacity} steps per env "
                f"for {num_envs} envs, fewer than one window of agent.burn_in + "
                f"agent.sequence_length = {self.window} steps; increase agent.buffer_size"
            )
        self.device = torch.device(device)
        dims = {"obs": obs_dim, "action": act_dim, "reward": 1, "next_obs": obs_dim}
        dims["terminated"] = 1
        shape = (self.num_envs, self.stream_capacity)
        self._storage = {
            name: torch.zeros(*shape, dims[name], dtype=torch.float32, device=self.device)
            for name in self._FLOAT_FIELDS
        }
        #: step index of each stored transition within its episode
        self._episode_step = torch.zeros(shape, dtype=torch.int64, device=self.device)
        #: step index within the current episode of the next transition of each env
        self._next_episode_step = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        self.position = 0
        self.size = 0

    def __len__(self) -> int:
        """Stored transitions summed over streams."""
        return self.size * self.num_envs

    def add(
        self,
        obs: FloatArray | torch.Tensor,
        action: FloatArray | torch.Tensor,
        reward: FloatArray | torch.Tensor,
        next_obs: FloatArray | torch.Tensor,
        terminated: FloatArray | torch.Tensor,
        done: BoolArray | torch.Tensor,
    ) -> None:
        """Append one step of every stream (``[N, ...]``, arrays or device tensors;
        ``done`` ends episodes). No host synchronisation for tensors on the device."""
        values = {
            "obs": obs,
            "action": action,
            "reward": reward,
            "next_obs": next_obs,
            "terminated": terminated,
        }
        for name in self._FLOAT_FIELDS:
            data = float_rows(values[name]).reshape(self.num_envs, -1)
            self._storage[name][:, self.position] = data.to(self.device)
        self._episode_step[:, self.position] = self._next_episode_step
        if isinstance(done, torch.Tensor):
            done_t = done.detach().reshape(-1).to(device=self.device, dtype=torch.bool)
        else:
            done_t = torch.as_tensor(np.asarray(done, dtype=bool).reshape(-1), device=self.device)
        self._next_episode_step = torch.where(
            done_t, torch.zeros_like(self._next_episode_step), self._next_episode_step + 1
        )
        self.position = (self.position + 1) % self.stream_capacity
        self.size = min(self.size + 1, self.stream_capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> SequenceBatch:
        """Draw ``batch_size`` windows (stream and ``t0`` uniform) using ``generator``."""
        dev = self.device
        env = torch.randint(0, self.num_envs, (batch_size,), generator=generator, device=dev)
        t0 = torch.randint(0, self.size, (batch_size,), generator=generator, device=dev)
        oldest = (self.position - self.size) % self.stream_capacity

        def physical(logical: torch.Tensor) -> torch.Tensor:
            return (oldest + logical) % self.stream_capacity

        step0 = self._episode_step[env, physical(t0)]
        start = torch.maximum(t0 - self.burn_in, t0 - step0).clamp(min=0)
        offsets = torch.arange(self.window, device=dev)
        logical = start[:, None] + offsets[None, :]  # [B, L]
        index = physical(logical)
        rows = env[:, None]
        steps = self._episode_step[rows, index]
        first = (t0 - start)[:, None]  # position of t0 inside the window
        after_t0 = logical - t0[:, None]
        mask = (
            (offsets[None, :] >= first)
            & (offsets[None, :] < first + self.sequence_length)
            & (logical < self.size)
            # the episode goes on: a new episode restarts the step count
            & (steps - step0[:, None] == after_t0)
        )
        data = {name: self._storage[name][rows, index] for name in self._FLOAT_FIELDS}
        return SequenceBatch(**data, mask=mask.unsqueeze(-1).to(torch.float32))

    def state_dict(self) -> dict[str, Any]:
        """Stored steps (``[N, size, ...]`` on CPU), position, size and episode counters."""
        return {
            "capacity": self.capacity,
            "num_envs": self.num_envs,
            "position": self.position,
            "size": self.size,
            "next_episode_step": self._next_episode_step.to("cpu", copy=True),
            "episode_step": self._episode_step[:, : self.size].to("cpu", copy=True),
            **{
                name: self._storage[name][:, : self.size].to("cpu", copy=True)
                for name in self._FLOAT_FIELDS
            },
        }

    def load_state_dict(self, state: dict[str, Any], where: str = "replay") -> None:
        """Restore :meth:`state_dict`; raises :class:`CheckpointError` on any mismatch."""
        for key, own in (("capacity", self.capacity), ("num_envs", self.num_envs)):
            value = require(state, key, where, int)
            if value != own:
                raise CheckpointError(
                    f"checkpoint key '{where}.{key}' = {value} does not match this buffer's "
                    f"{key} = {own}"
                )
        size = require(state, "size", where, int)
        position = require(state, "position", where, int)
        if not (0 <= size <= self.stream_capacity and 0 <= position < self.stream_capacity):
            raise CheckpointError(
                f"checkpoint keys '{where}.size' = {size}, '{where}.position' = {position} are "
                f"inconsistent with {self.stream_capacity} steps per stream"
            )
        n = self.num_envs
        counters = check_tensor(
            require(state, "next_episode_step", where),
            f"{where}.next_episode_step",
            (n,),
            torch.int64,
        )
        steps = check_tensor(
            require(state, "episode_step", where), f"{where}.episode_step", (n, size), torch.int64
        )
        for name in self._FLOAT_FIELDS:
            width = self._storage[name].shape[2]
            data = check_tensor(require(state, name, where), f"{where}.{name}", (n, size, width))
            self._storage[name].zero_()
            self._storage[name][:, :size] = data.to(self.device, torch.float32)
        self._episode_step.zero_()
        self._episode_step[:, :size] = steps.to(self.device)
        self._next_episode_step = counters.to(self.device, copy=True)
        self.size = size
        self.position = position
