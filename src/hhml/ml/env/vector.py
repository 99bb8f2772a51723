"""The vectorised Möbius vortex environment (``num_envs`` fields in one tensor).

Public names: ``MobiusVortexVecEnv``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from hhml.config.schema import HHmLConfig
from hhml.ml.env.controls import NUM_CONTROLS
from hhml.ml.env.core import OBS_BOUND, MobiusVortexCore, default_env_config

__all__ = ["MobiusVortexVecEnv"]


class MobiusVortexVecEnv(VectorEnv):  # type: ignore[misc]
    """``num_envs`` Möbius vortex environments batched in one simulator on ``device``.

    Same-step autoreset (gymnasium ``AutoresetMode.SAME_STEP``): an env whose
    episode ends returns its reset observation, its last one is in
    ``info["final_obs"]`` (mask ``info["_final_obs"]``). See
    :class:`~hhml.ml.env.MobiusVortexEnv` for the observation, action and reward.
    """

    metadata = {  # noqa: RUF012 (gymnasium API)
        "autoreset_mode": AutoresetMode.SAME_STEP,
        "render_modes": [],
    }

    def __init__(
        self,
        config: HHmLConfig | None = None,
        num_envs: int = 1,
        device: torch.device | str = "cpu",
    ) -> None:
        cfg = default_env_config() if config is None else config
        self.core = MobiusVortexCore(cfg, num_envs, device)
        self.num_envs = num_envs
        self.single_observation_space = gym.spaces.Box(
            -OBS_BOUND, OBS_BOUND, (self.core.obs_dim,), np.float32
        )
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, (NUM_CONTROLS,), np.float32)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._started = False

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[npt.NDArray[np.float32], dict[str, Any]]:
        """Reset every env; ``seed`` int → env ``k`` gets ``seed + k``."""
        if isinstance(seed, int):
            self._np_random_seed = seed
            self.core.restart_simulator(seed)
            seeds: list[int | None] = [seed + k for k in range(self.num_envs)]
        elif seed is None:
            seeds = [None] * self.num_envs
        else:
            seeds = list(seed)
        self.core.reset(np.ones(self.num_envs, dtype=bool), seeds)
        self.core.measure()
        self._started = True
        return self.core.observation(), {}

    def step(self, actions: npt.ArrayLike) -> tuple[
        npt.NDArray[np.float32],
        npt.NDArray[np.float64],
        npt.NDArray[np.bool_],
        npt.NDArray[np.bool_],
        dict[str, Any],
    ]:
        """One step of every env, with same-step autoreset of finished ones."""
        if not self._started:
            raise gym.error.ResetNeeded("call reset() before step()")
        reward, failed, info = self.core.step(actions)
        obs = self.core.observation()
        terminated = failed
        truncated = (self.core.elapsed >= self.core.cfg.env.horizon) & ~failed
        done = terminated | truncated
        if done.any():
            info["final_obs"] = obs.copy()
            info["_final_obs"] = done.copy()
            self.core.reset(done, [None] * self.num_envs)
            self.core.measure()
            obs = self.core.observation()
        return obs, reward, terminated, truncated, info

    def state_dict(self) -> dict[str, Any]:
        """Exact state of all envs (see :meth:`MobiusVortexCore.state_dict`)."""
        return {"core": self.core.state_dict(), "started": self._started}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.core.load_state_dict(state["core"])
        self._started = bool(state["started"])

    def snapshot(self) -> dict[str, Any]:
        """Field and vortices of every env (CPU tensors)."""
        return self.core.snapshot()
