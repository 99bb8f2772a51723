"""Vector envs with tensors in and out on the training device: what the trainer steps.

:class:`TensorVecEnv` is the trainer's view of a batch of ``N`` environments:
``reset`` and ``step`` take and return tensors on one device, and the Möbius
implementation never waits for that device inside a step. Two implementations:

- :class:`MobiusTensorEnv` drives the batched :class:`~hhml.ml.env.MobiusVortexCore`
  of a :class:`~hhml.ml.env.MobiusVortexVecEnv` directly: the step, the same-step
  autoreset of finished envs and the diagnostics stay tensor code on the
  simulator's device (no NumPy, no host synchronisation on accelerators).
- :class:`NumpyTensorEnv` wraps any other gymnasium ``VectorEnv`` (e.g.
  ``Pendulum-v1``): the edge copy to and from NumPy happens here, once per step.

:func:`as_tensor_env` picks the one that fits. Both share the state of the
wrapped vector env, so its ``state_dict``, ``snapshot`` and seeding keep working.

Autoreset on accelerators and on the CPU. After a step, the envs whose episode
ended get a fresh start (``MobiusVortexCore.reset(mask)``). On an accelerator
that masked reset runs at every step, so that no step waits for the device to
learn whether any episode ended; on the CPU (where asking costs nothing) it runs
only on steps where an episode ended. The masked reset draws the initial field
of every env from the reset generator, so the two schedules consume that stream
differently: training runs on a CPU and on a GPU follow different (equally valid)
reset draws. Inside :func:`hhml.utils.host_sync.forbid_host_sync` the CPU takes
the accelerator path, so tests check it.

Public names: ``TensorStep``, ``TensorVecEnv``, ``MobiusTensorEnv``,
``NumpyTensorEnv``, ``as_tensor_env``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from hhml.errors import ConfigError
from hhml.ml.env.vector import MobiusVortexVecEnv
from hhml.utils.host_sync import device_paths_only

__all__ = [
    "MobiusTensorEnv",
    "NumpyTensorEnv",
    "TensorStep",
    "TensorVecEnv",
    "as_tensor_env",
]

#: Info groups the trainer records (each a mapping of name → ``[N]`` values).
INFO_GROUPS = ("reward_terms", "vortex", "params")


class TensorStep(NamedTuple):
    """One step of ``N`` envs; every tensor is on the env's device.

    ``obs`` is what the next action acts on (the reset observation for an env
    whose episode ended), ``final_obs`` the observation each transition led to
    (the final observation of an ended episode), as a replay buffer stores it.
    """

    obs: Tensor  #: ``[N, obs_dim]`` float32
    final_obs: Tensor  #: ``[N, obs_dim]`` float32
    reward: Tensor  #: ``[N]`` float32
    terminated: Tensor  #: ``[N]`` bool
    truncated: Tensor  #: ``[N]`` bool
    #: ``reward_terms`` / ``vortex`` / ``params``: ``{name: [N] tensor}``;
    #: ``termination``: int64 ``[N]`` codes (Möbius env only); ``snapshot``: see ``step``
    info: dict[str, Any]


class TensorVecEnv(ABC):
    """``N`` environments stepped with tensors on :attr:`device`.

    Attributes
    ----------
    vector_env : gymnasium.vector.VectorEnv
        The wrapped vector env (its state, seeding and snapshots).
    num_envs, obs_dim, act_dim : int
        Batch size and the sizes of one observation and one action.
    device : torch.device
        Where observations, actions, rewards and flags live.
    action_low, action_high : Tensor
        float32 ``[act_dim]`` bounds of one action (``±inf`` where unbounded).
    """

    vector_env: gym.vector.VectorEnv
    num_envs: int
    obs_dim: int
    act_dim: int
    device: torch.device
    action_low: Tensor
    action_high: Tensor

    def _set_spaces(self, envs: gym.vector.VectorEnv, device: torch.device) -> None:
        obs_space, act_space = envs.single_observation_space, envs.single_action_space
        for what, space in (("observation", obs_space), ("action", act_space)):
            if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
                raise ConfigError(f"the env's {what} space {space} is not a 1-D Box")
        assert isinstance(obs_space, gym.spaces.Box) and isinstance(act_space, gym.spaces.Box)
        self.vector_env = envs
        self.num_envs = int(envs.num_envs)
        self.obs_dim = int(obs_space.shape[0])
        self.act_dim = int(act_space.shape[0])
        self.device = torch.device(device)
        self.action_low = torch.as_tensor(act_space.low, dtype=torch.float32, device=self.device)
        self.action_high = torch.as_tensor(act_space.high, dtype=torch.float32, device=self.device)

    @abstractmethod
    def reset(self, seed: int | None = None) -> Tensor:
        """Reset every env (seeding first if ``seed`` is given); observations
        float32 ``[N, obs_dim]``."""

    @abstractmethod
    def step(self, action: Tensor, snapshot: bool = False) -> TensorStep:
        """One step of every env with actions ``[N, act_dim]`` (float, on :attr:`device`,
        within the action bounds), then the same-step autoreset of the finished ones.

        With ``snapshot=True`` and an env that has snapshots (the Möbius env),
        ``info["snapshot"]`` holds :meth:`MobiusVortexVecEnv.snapshot` taken after the
        physics and *before* the autoreset, so an episode that ends on this step is
        recorded with its final field, not with the fresh one of the next episode.
        """

    def check_action(self, action: Tensor) -> None:
        """:class:`ConfigError` for an action batch of the wrong type, shape or device
        (metadata only: finiteness is the caller's to check, off the hot path)."""
        expected = (self.num_envs, self.act_dim)
        if not isinstance(action, Tensor) or tuple(action.shape) != expected:
            got = tuple(action.shape) if isinstance(action, Tensor) else type(action).__name__
            raise ConfigError(f"action batch has shape {got}; expected {expected}")
        if action.device != self.device:
            raise ConfigError(f"action batch is on {action.device}; the envs are on {self.device}")


class MobiusTensorEnv(TensorVecEnv):
    """The Möbius vortex envs of ``vec`` stepped as tensor code on the simulator's device.

    Parameters
    ----------
    vec
        The batched Möbius vector env; its core is stepped directly.
    """

    def __init__(self, vec: MobiusVortexVecEnv) -> None:
        self._vec = vec
        self.core = vec.core
        self._set_spaces(vec, vec.core.device)

    def reset(self, seed: int | None = None) -> Tensor:
        self._vec.reset(seed=seed)
        return self.core.observation()

    def _autoreset(self, done: Tensor) -> None:
        """Fresh episodes where ``done``: every step on accelerators, only when needed
        on the CPU (see the module docstring)."""
        if self.device.type == "cpu" and not device_paths_only():
            if bool(done.any()):
                self.core.reset(done)
            return
        self.core.reset(done)

    def step(self, action: Tensor, snapshot: bool = False) -> TensorStep:
        if not self._vec.started:
            raise gym.error.ResetNeeded("call reset() before step()")
        self.check_action(action)
        core = self.core
        out = core.step(action)
        info: dict[str, Any] = core.info(out)
        if snapshot:
            info["snapshot"] = core.snapshot()
        final_obs = core.observation()
        done = out.terminated | out.truncated
        self._autoreset(done)
        return TensorStep(
            obs=core.observation(),
            final_obs=final_obs,
            reward=out.reward.to(torch.float32),
            terminated=out.terminated,
            truncated=out.truncated,
            info=info,
        )


def _info_tensors(info: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """The groups of a gymnasium info dict the trainer records, as tensors on ``device``."""
    out: dict[str, Any] = {}
    for key in INFO_GROUPS:
        group = info.get(key)
        if isinstance(group, Mapping):
            out[key] = {
                str(name): torch.as_tensor(np.asarray(values, dtype=np.float64), device=device)
                for name, values in group.items()
            }
    codes = info.get("termination")
    if codes is not None:
        out["termination"] = torch.as_tensor(np.asarray(codes, dtype=np.int64), device=device)
    return out


class NumpyTensorEnv(TensorVecEnv):
    """A gymnasium ``VectorEnv`` (NumPy in and out, same-step autoreset) behind tensors.

    Parameters
    ----------
    envs
        The vector env.
    device
        Where the tensors handed to and from the trainer live.
    """

    def __init__(self, envs: gym.vector.VectorEnv, device: torch.device | str) -> None:
        self._set_spaces(envs, torch.device(device))
        self._envs = envs

    def _tensor(self, array: Any, dtype: torch.dtype) -> Tensor:
        return torch.as_tensor(np.asarray(array), device=self.device).to(dtype)

    def reset(self, seed: int | None = None) -> Tensor:
        obs, _ = self._envs.reset(seed=seed)
        return self._tensor(obs, torch.float32)

    def step(self, action: Tensor, snapshot: bool = False) -> TensorStep:
        self.check_action(action)
        obs, reward, terminated, truncated, info = self._envs.step(action.cpu().numpy())
        next_obs = np.asarray(obs, dtype=np.float32)
        final_obs = next_obs
        done = np.asarray(terminated, dtype=bool) | np.asarray(truncated, dtype=bool)
        if done.any() and "final_obs" in info:
            final_obs = next_obs.copy()
            mask = np.asarray(info.get("_final_obs", done), dtype=bool)
            for i in np.flatnonzero(mask):
                final_obs[i] = np.asarray(info["final_obs"][i], dtype=np.float32)
        tensors = _info_tensors(info, self.device)
        snap = getattr(self._envs, "snapshot", None)
        if snapshot and callable(snap):
            tensors["snapshot"] = snap()
        return TensorStep(
            obs=self._tensor(next_obs, torch.float32),
            final_obs=self._tensor(final_obs, torch.float32),
            reward=self._tensor(reward, torch.float32),
            terminated=self._tensor(terminated, torch.bool),
            truncated=self._tensor(truncated, torch.bool),
            info=tensors,
        )


def as_tensor_env(envs: gym.vector.VectorEnv, device: torch.device | str) -> TensorVecEnv:
    """The trainer's tensor view of ``envs``: :class:`MobiusTensorEnv` for the batched
    Möbius env (which must live on ``device``), :class:`NumpyTensorEnv` otherwise.

    Raises
    ------
    ConfigError
        The Möbius env's simulator is on another device than ``device``, or a space
        is not a 1-D Box.
    """
    device = torch.device(device)
    if isinstance(envs, MobiusVortexVecEnv):
        if envs.core.device.type != device.type or (
            device.index is not None and envs.core.device != device
        ):
            raise ConfigError(
                f"the Möbius envs simulate on {envs.core.device}, the agent is on {device}; "
                "build both on training.device"
            )
        return MobiusTensorEnv(envs)
    return NumpyTensorEnv(envs, device)
