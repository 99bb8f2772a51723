"""``MobiusVortexEnv``: the gymnasium environment ``hhml/MobiusVortex-v0``.

An agent steers the 23 control parameters of a field on a stack of embedded
Möbius strips (``docs/parameters.md``), and is rewarded from the fixed vortex
detector::

    import gymnasium as gym
    import hhml.ml.env  # registers the id

    env = gym.make("hhml/MobiusVortex-v0", task="persistence", **{"lattice.nu": 64})
    vec = gym.make_vec("hhml/MobiusVortex-v0", num_envs=8, horizon=100)

Keyword arguments are config overrides (:func:`~hhml.ml.env.factory.config_with`):
a bare name is a key of the ``env`` section (or of the one section that has it), a
dotted name any key; ``config=`` gives a whole config to start from.

Action
    ``Box(−1, 1, (23,), float32)``, mapped affinely to the ranges of the
    ``controls`` config section (:mod:`hhml.ml.env.controls`), in the order of
    ``docs/parameters.md``. Every control acts on the dynamics (tested one by one).
Observation
    ``Box(low, high, (36,), float32)`` with each entry's range
    (:data:`~hhml.ml.env.core.FEATURE_BOUNDS`): the 13 features of
    :data:`~hhml.ml.env.core.OBSERVATION_FEATURES` followed by the current 23
    control values normalised to [−1, 1] (table in ``docs/environment.md``); for
    ``env.task = setpoint_density`` ``(39,)``, with the set-point, the density error and
    the steps to the next switch appended (:data:`~hhml.ml.env.core.SETPOINT_FEATURES`).
Reward
    In [0, 1] for task ``env.task`` (:mod:`hhml.ml.env.rewards`), every term in
    ``info["reward_terms"]``; a collapsed (rms |ψ| < ``env.collapse_rms``) or
    numerically unstable field scores ``env.failure_reward`` (−1) and
    terminates with its code in ``info["termination"]``
    (:data:`hhml.ml.env.state.TERMINATION_REASONS`: 1 collapsed, 2 unstable).
Episode
    ``env.horizon`` steps (truncation) of ``env.steps_per_action`` simulator
    steps each. ``gym.make`` returns the env inside a ``TimeLimit`` of exactly
    ``env.horizon`` steps (:func:`make_mobius_env`), so ``env.spec.max_episode_steps``
    is the horizon of the config it was made with.
Rendering
    ``render_mode="rgb_array"``: ``render()`` returns an ``[H, W, 3]`` uint8 image of
    ``|ψ|`` and ``arg ψ`` of every strip with the vortices marked by charge
    (:func:`hhml.plotting.plot_field`).

Public names: ``MobiusVortexEnv``, ``make_mobius_env``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
import torch

from hhml.config.schema import HHmLConfig
from hhml.errors import ConfigError
from hhml.ml.env.controls import NUM_CONTROLS
from hhml.ml.env.core import MobiusVortexCore, default_env_config
from hhml.ml.env.factory import config_with
from hhml.ml.env.vector import check_actions, to_numpy_info

__all__ = ["MobiusVortexEnv", "make_mobius_env"]


def _first(info: dict[str, Any]) -> dict[str, Any]:
    """Unbatch an info dict of ``[1]`` arrays (the termination code stays an int)."""
    out: dict[str, Any] = {}
    for k, v in info.items():
        if isinstance(v, dict):
            out[k] = {kk: float(vv[0]) for kk, vv in v.items()}
        elif isinstance(v, np.ndarray):
            out[k] = v[0].item()
        else:
            out[k] = v
    return out


class MobiusVortexEnv(gym.Env):  # type: ignore[misc]
    """A single Möbius vortex environment (see the module docstring).

    Parameters
    ----------
    config
        The HHmL config; default :func:`~hhml.ml.env.core.default_env_config`
        (two embedded 48 × 12 strips).
    device
        Torch device of the simulation.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}  # noqa: RUF012 (gymnasium API)

    def __init__(
        self,
        config: HHmLConfig | None = None,
        device: torch.device | str = "cpu",
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ConfigError(f"render_mode = {render_mode!r}; valid: None, 'rgb_array'")
        cfg = default_env_config() if config is None else config
        cfg = config_with(cfg, overrides)
        self.cfg = cfg
        self.render_mode = render_mode
        self.core = MobiusVortexCore(cfg, 1, device)
        self.observation_space = gym.spaces.Box(*self.core.observation_bounds(), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (NUM_CONTROLS,), np.float32)
        self._started = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[npt.NDArray[np.float32], dict[str, Any]]:
        """Start an episode: seeded noise field, parameters at their config values."""
        super().reset(seed=seed)
        if seed is not None:
            self.core.seed(seed)
        self.core.reset()
        self._started = True
        return self.core.observation()[0].cpu().numpy(), {}

    def step(
        self, action: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        """Apply the controls, integrate, detect; see the module docstring."""
        if not self._started:
            raise gym.error.ResetNeeded("call reset() before step()")
        a = check_actions(action, 1)
        out = self.core.step(torch.as_tensor(a, device=self.core.device))
        info = _first(to_numpy_info(self.core.info(out)))
        obs = self.core.observation()[0].cpu().numpy()
        return obs, float(out.reward[0]), bool(out.terminated[0]), bool(out.truncated[0]), info

    def render(self) -> npt.NDArray[np.uint8] | None:
        """``[H, W, 3]`` uint8 image of the field and its vortices (``render_mode="rgb_array"``);
        None without a render mode."""
        if self.render_mode is None:
            return None
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        from hhml.plotting import plot_field

        fig = plot_field(self.core.sim.psi, self.core.lattice, env=0)
        canvas = FigureCanvasAgg(fig)
        canvas.draw()  # type: ignore[no-untyped-call]
        image: npt.NDArray[np.uint8] = np.asarray(
            canvas.buffer_rgba()  # type: ignore[no-untyped-call]
        )[..., :3].copy()
        return image

    def state_dict(self) -> dict[str, Any]:
        """Exact state (see :meth:`MobiusVortexCore.state_dict`)."""
        return {"core": self.core.state_dict(), "started": self._started}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.core.load_state_dict(state["core"])
        self._started = bool(state["started"])


def make_mobius_env(**kwargs: Any) -> gym.Env:  # type: ignore[type-arg]
    """The registered entry point: :class:`MobiusVortexEnv` (``kwargs`` as its parameters)
    inside a ``TimeLimit`` of ``env.horizon`` steps, so that ``spec.max_episode_steps``
    tells wrappers and libraries the episode length of this very config."""
    env = MobiusVortexEnv(**kwargs)
    return gym.wrappers.TimeLimit(env, env.cfg.env.horizon)
