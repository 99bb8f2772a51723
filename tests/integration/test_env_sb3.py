"""stable-baselines3's TD3 trains on the Möbius vortex environment (API compatibility)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from hhml.ml.env import MobiusVortexEnv, default_env_config


@pytest.fixture()
def one_thread() -> Iterator[None]:
    """SB3's small networks are fastest on one thread (and do not fight the simulator)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.integration
def test_sb3_td3_trains_a_few_hundred_steps(one_thread: None) -> None:
    from stable_baselines3 import TD3

    cfg = default_env_config()
    env = MobiusVortexEnv(cfg)
    model = TD3("MlpPolicy", env, learning_starts=100, batch_size=32, seed=0, device="cpu")
    before = [p.detach().clone() for p in model.actor.parameters()]
    model.learn(total_timesteps=300)
    assert model.num_timesteps == 300
    # the policy was trained (its weights moved) and acts inside the action box
    assert any(
        not np.allclose(a.numpy(), b.detach().numpy())
        for a, b in zip(before, model.actor.parameters(), strict=True)
    )
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (23,) and np.all(np.abs(action) <= 1.0)
