"""The vectorised Möbius vortex environment (``num_envs`` fields in one tensor).

A gymnasium ``VectorEnv`` with NumPy in and out: the thin edge adapter over
:class:`~hhml.ml.env.MobiusVortexCore`, whose step is tensor code on the device.
Each call of :meth:`MobiusVortexVecEnv.step` checks the actions on the host,
runs the core's step, and copies the results to NumPy once.

Public names: ``MobiusVortexVecEnv``, ``to_numpy_info``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from torch import Tensor

from hhml.config.schema import HHmLConfig
from hhml.errors import ConfigError
from hhml.ml.env.controls import NUM_CONTROLS
from hhml.ml.env.core import MobiusVortexCore, default_env_config
from hhml.ml.env.factory import config_with

__all__ = ["MobiusVortexVecEnv", "check_actions", "combined_seed", "to_numpy_info"]


def to_numpy_info(info: Mapping[str, Any]) -> dict[str, Any]:
    """Copy an info dict of tensors (nested one level) to NumPy arrays."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        if isinstance(value, Mapping):
            out[key] = {k: v.detach().cpu().numpy() for k, v in value.items()}
        elif isinstance(value, Tensor):
            out[key] = value.detach().cpu().numpy()
        else:
            out[key] = value
    return out


def check_actions(actions: npt.ArrayLike, num_envs: int) -> npt.NDArray[np.float64]:
    """Actions as float64 ``[num_envs, 23]``; :class:`ConfigError` for a wrong shape,
    a non-numeric value or NaN/Inf (checked here, on the host, not in the step)."""
    try:
        a = np.asarray(actions, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"actions must be numbers in [−1, 1]: {exc}") from None
    if a.size != num_envs * NUM_CONTROLS:
        raise ConfigError(
            f"actions have shape {a.shape}; expected ({num_envs}, {NUM_CONTROLS}) "
            f"(num_envs × controls)"
        )
    if not np.all(np.isfinite(a)):
        raise ConfigError("action contains NaN or Inf; actions must be finite in [−1, 1]")
    return a.reshape(num_envs, NUM_CONTROLS)


def combined_seed(seeds: Sequence[int | None]) -> int | None:
    """One generator seed for a list of per-env seeds (None if all are None).

    The batched env draws from one device generator, so a list of seeds is
    hashed into one (deterministically: the same list gives the same episodes).
    """
    if all(s is None for s in seeds):
        return None
    entropy = [0 if s is None else int(s) + 1 for s in seeds]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 1)


class MobiusVortexVecEnv(VectorEnv):  # type: ignore[misc]
    """``num_envs`` Möbius vortex environments batched in one simulator on ``device``.

    Same-step autoreset (gymnasium ``AutoresetMode.SAME_STEP``): an env whose
    episode ends returns its reset observation, its last one is in
    ``info["final_obs"]`` (mask ``info["_final_obs"]``). ``info["termination"]``
    is an int64 code per env (:data:`hhml.ml.env.state.TERMINATION_REASONS`). See
    :class:`~hhml.ml.env.MobiusVortexEnv` for the observation, action and reward.

    Parameters
    ----------
    config
        The HHmL config (default :func:`~hhml.ml.env.core.default_env_config`).
    num_envs
        Number of environments.
    device
        Torch device of the simulation.
    seed
        Seeds the generators at construction, so that a first ``reset()`` without
        a seed is reproducible (``reset(seed=...)`` re-seeds).
    max_episode_steps
        Accepted from ``gym.make_vec`` when it equals ``env.horizon`` (the env truncates
        there itself); another value is refused.
    **overrides
        Config overrides by keyword (:func:`~hhml.ml.env.factory.config_with`), as
        ``gym.make_vec("hhml/MobiusVortex-v0", num_envs=8, task="persistence")``
        passes them.
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
        seed: int | None = None,
        max_episode_steps: int | None = None,
        **overrides: Any,
    ) -> None:
        cfg = default_env_config() if config is None else config
        cfg = config_with(cfg, overrides)
        if max_episode_steps is not None and max_episode_steps != cfg.env.horizon:
            raise ConfigError(
                f"max_episode_steps = {max_episode_steps} disagrees with env.horizon = "
                f"{cfg.env.horizon}: the batched env truncates at its horizon; pass "
                f"max_episode_steps={cfg.env.horizon} or leave it out"
            )
        self.core = MobiusVortexCore(cfg, num_envs, device)
        if seed is not None:
            self.core.seed(seed)
        self.num_envs = num_envs
        self.single_observation_space = gym.spaces.Box(
            *self.core.observation_bounds(), dtype=np.float32
        )
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, (NUM_CONTROLS,), np.float32)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._started = False

    @property
    def started(self) -> bool:
        """True once :meth:`reset` was called (stepping needs it)."""
        return self._started

    def _obs(self) -> npt.NDArray[np.float32]:
        out: npt.NDArray[np.float32] = self.core.observation().cpu().numpy()
        return out

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[npt.NDArray[np.float32], dict[str, Any]]:
        """Reset every env. An int seeds the batch; a list of per-env seeds is
        combined into one (:func:`combined_seed`); None continues the streams."""
        one = combined_seed(seed) if isinstance(seed, (list, tuple)) else seed
        if one is not None:
            self._np_random_seed = one
            self.core.seed(one)
        self.core.reset()
        self._started = True
        return self._obs(), {}

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
        a = check_actions(actions, self.num_envs)
        core = self.core
        out = core.step(torch.as_tensor(a, device=core.device))
        info = to_numpy_info(core.info(out))
        obs = self._obs()
        reward = out.reward.cpu().numpy()
        terminated = out.terminated.cpu().numpy()
        truncated = out.truncated.cpu().numpy()
        done = terminated | truncated
        if done.any():
            info["final_obs"] = obs.copy()
            info["_final_obs"] = done.copy()
            core.reset(torch.as_tensor(done, device=core.device))
            obs = self._obs()
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
