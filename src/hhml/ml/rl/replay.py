"""The flat replay buffer of the feed-forward agents (TD3, SAC).

A ring buffer of transitions ``(s, a, r, s', terminated)`` held as tensors on the
agent's device: adding device tensors and sampling a batch never copy through
the host (the write position is host bookkeeping: batch sizes are shapes).

Public names: ``ReplayBuffer``, ``Batch``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import torch

from hhml.errors import CheckpointError
from hhml.ml.rl.checkpoint import check_tensor, require

__all__ = ["Batch", "ReplayBuffer"]


class Batch(NamedTuple):
    """A sampled batch; every field is ``[B, ...]`` on the buffer's device."""

    obs: torch.Tensor  #: ``[B, obs_dim]``
    action: torch.Tensor  #: ``[B, act_dim]``
    reward: torch.Tensor  #: ``[B, 1]``
    next_obs: torch.Tensor  #: ``[B, obs_dim]``
    terminated: torch.Tensor  #: ``[B, 1]``, 1.0 where the episode ended without bootstrap


def float_rows(value: npt.ArrayLike | torch.Tensor) -> torch.Tensor:
    """``value`` as a float32 tensor with the batch along the first axis."""
    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.float32)
    return torch.as_tensor(np.asarray(value, dtype=np.float32))


class ReplayBuffer:
    """Ring buffer of ``capacity`` transitions on ``device``.

    Parameters
    ----------
    capacity
        Maximum number of transitions; the oldest are overwritten.
    obs_dim, act_dim
        Sizes of observations and actions.
    device
        Where the storage lives.

    Attributes
    ----------
    position : int
        Index the next transition is written to.
    size : int
        Number of stored transitions (``≤ capacity``).
    """

    _FIELDS = ("obs", "action", "reward", "next_obs", "terminated")

    def __init__(
        self, capacity: int, obs_dim: int, act_dim: int, device: torch.device | str
    ) -> None:
        self.capacity = int(capacity)
        self.obs_dim = int(obs_dim)
        self.act_dim = int(act_dim)
        self.device = torch.device(device)
        dims = {"obs": obs_dim, "action": act_dim, "reward": 1, "next_obs": obs_dim}
        dims["terminated"] = 1
        self._storage = {
            name: torch.zeros(self.capacity, dims[name], dtype=torch.float32, device=self.device)
            for name in self._FIELDS
        }
        self.position = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        obs: npt.ArrayLike | torch.Tensor,
        action: npt.ArrayLike | torch.Tensor,
        reward: npt.ArrayLike | torch.Tensor,
        next_obs: npt.ArrayLike | torch.Tensor,
        terminated: npt.ArrayLike | torch.Tensor,
    ) -> None:
        """Append a batch of ``N`` transitions (``[N, ...]``; reward, terminated ``[N]``),
        arrays or tensors; tensors on the buffer's device are copied without a host sync."""
        values = {
            "obs": obs,
            "action": action,
            "reward": reward,
            "next_obs": next_obs,
            "terminated": terminated,
        }
        rows = {name: float_rows(value) for name, value in values.items()}
        n = int(rows["reward"].shape[0])
        index = (self.position + torch.arange(n, device=self.device)) % self.capacity
        for name in self._FIELDS:
            self._storage[name][index] = rows[name].reshape(n, -1).to(self.device)
        self.position = (self.position + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """Draw ``batch_size`` transitions uniformly with replacement using ``generator``."""
        index = torch.randint(0, self.size, (batch_size,), generator=generator, device=self.device)
        return Batch(*(self._storage[name][index] for name in self._FIELDS))

    def state_dict(self) -> dict[str, Any]:
        """Contents (the ``size`` stored rows, on CPU), ``position``, ``size``, ``capacity``."""
        return {
            "capacity": self.capacity,
            "position": self.position,
            "size": self.size,
            **{
                name: self._storage[name][: self.size].to("cpu", copy=True) for name in self._FIELDS
            },
        }

    def load_state_dict(self, state: dict[str, Any], where: str = "replay") -> None:
        """Restore :meth:`state_dict`; raises :class:`CheckpointError` on any mismatch."""
        capacity = require(state, "capacity", where, int)
        if capacity != self.capacity:
            raise CheckpointError(
                f"checkpoint key '{where}.capacity' = {capacity} does not match the configured "
                f"agent.buffer_size = {self.capacity}"
            )
        size = require(state, "size", where, int)
        position = require(state, "position", where, int)
        if not (0 <= size <= capacity and 0 <= position < capacity):
            raise CheckpointError(
                f"checkpoint keys '{where}.size' = {size}, '{where}.position' = {position} "
                f"are inconsistent with capacity {capacity}"
            )
        for name in self._FIELDS:
            width = self._storage[name].shape[1]
            data = check_tensor(require(state, name, where), f"{where}.{name}", (size, width))
            self._storage[name].zero_()
            self._storage[name][:size] = data.to(self.device, torch.float32)
        self.size = size
        self.position = position
