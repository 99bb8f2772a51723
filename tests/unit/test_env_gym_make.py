"""``gym.make`` / ``gym.make_vec`` of the Möbius env take config overrides by keyword, set
``max_episode_steps`` to the horizon, and render an RGB image."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import hhml.ml.env  # noqa: F401  (registers the id)
from hhml.errors import ConfigError
from hhml.ml.env import MOBIUS_ENV_ID


def test_keywords_are_config_overrides_and_the_time_limit_is_the_horizon() -> None:
    env = gym.make(MOBIUS_ENV_ID, task="persistence", horizon=6, **{"lattice.nu": 32})
    cfg = env.unwrapped.cfg  # type: ignore[attr-defined]
    assert (cfg.env.task, cfg.env.horizon, cfg.lattice.nu) == ("persistence", 6, 32)
    assert env.spec is not None and env.spec.max_episode_steps == 6
    env.reset(seed=0)
    steps = 0
    while True:
        steps += 1
        *_, terminated, truncated, _ = env.step(np.zeros(23, np.float32))
        if terminated or truncated:
            break
    assert steps == 6
    assert gym.make(MOBIUS_ENV_ID).spec.max_episode_steps == 40  # type: ignore[union-attr]


def test_make_vec_takes_the_same_keywords() -> None:
    vec = gym.make_vec(MOBIUS_ENV_ID, num_envs=3, horizon=5, task="lattice_order")
    assert vec.num_envs == 3
    assert vec.core.cfg.env.horizon == 5 and vec.core.cfg.env.task == "lattice_order"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"nope": 1}, "keyword 'nope' is unknown"),
        ({"lattice.zz": 1}, "unknown config key 'lattice.zz'"),
        ({"task": "bogus"}, "env.task = 'bogus' is not valid"),
        ({"render_mode": "human"}, "render_mode = 'human'; valid: None, 'rgb_array'"),
    ],
)
def test_bad_keywords_are_config_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        gym.make(MOBIUS_ENV_ID, **kwargs)


def test_rgb_array_rendering_and_the_env_checker() -> None:
    env = gym.make(MOBIUS_ENV_ID, render_mode="rgb_array", horizon=3)
    env.reset(seed=1)
    env.step(np.zeros(23, np.float32))
    image = env.render()
    assert isinstance(image, np.ndarray) and image.dtype == np.uint8
    assert image.ndim == 3 and image.shape[2] == 3 and image.shape[0] > 100
    assert image.std() > 10  # a picture, not a blank canvas
    check_env(gym.make(MOBIUS_ENV_ID, horizon=3).unwrapped, skip_render_check=True)
