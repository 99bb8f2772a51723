"""Flat and sequence replay buffers: storage, wrap-around, windows and masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hhml.errors import CheckpointError, ConfigError
from hhml.ml.rl import ReplayBuffer, SequenceReplayBuffer


def test_replay_buffer_add_sample_wraps() -> None:
    buffer = ReplayBuffer(5, obs_dim=2, act_dim=1, device="cpu")
    for k in range(3):  # 3 batches of 2 envs = 6 transitions > capacity 5
        obs = np.full((2, 2), k, np.float32)
        buffer.add(obs, np.zeros((2, 1)), np.array([k, k]), obs + 1, np.array([0.0, 1.0]))
    assert len(buffer) == 5 and buffer.position == 1
    batch = buffer.sample(64, torch.Generator().manual_seed(0))
    assert batch.obs.shape == (64, 2) and batch.reward.shape == (64, 1)
    assert batch.terminated.shape == (64, 1)
    assert torch.equal(batch.next_obs, batch.obs + 1)
    assert torch.equal(batch.reward[:, 0], batch.obs[:, 0])
    assert set(batch.terminated[:, 0].tolist()) <= {0.0, 1.0}


def test_replay_buffer_state_round_trip() -> None:
    buffer = ReplayBuffer(8, obs_dim=3, act_dim=2, device="cpu")
    rng = np.random.default_rng(0)
    buffer.add(rng.random((3, 3)), rng.random((3, 2)), rng.random(3), rng.random((3, 3)), [0, 0, 1])
    state = buffer.state_dict()
    assert state["obs"].shape == (3, 3)
    copy = ReplayBuffer(8, obs_dim=3, act_dim=2, device="cpu")
    copy.load_state_dict(state)
    a = buffer.sample(10, torch.Generator().manual_seed(1))
    b = copy.sample(10, torch.Generator().manual_seed(1))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    with pytest.raises(CheckpointError, match=r"replay\.capacity"):
        ReplayBuffer(9, obs_dim=3, act_dim=2, device="cpu").load_state_dict(state)


def fill_streams(buffer: SequenceReplayBuffer, steps: int, episode_lengths: list[int]) -> None:
    """Obs of env e at global step t is (t, e); episodes of env e last episode_lengths[e]."""
    for t in range(steps):
        obs = np.array([[t, e] for e in range(buffer.num_envs)], np.float32)
        done = np.array([(t + 1) % n == 0 for n in episode_lengths])
        buffer.add(
            obs,
            np.zeros((buffer.num_envs, 1), np.float32),
            obs[:, 0],
            obs + 1,
            np.zeros(buffer.num_envs, np.float32),
            done,
        )


def test_sequence_windows_respect_episodes_and_burn_in() -> None:
    buffer = SequenceReplayBuffer(
        200, 2, obs_dim=2, act_dim=1, burn_in=3, sequence_length=4, device="cpu"
    )
    fill_streams(buffer, 30, [10, 6])
    batch = buffer.sample(256, torch.Generator().manual_seed(0))
    assert batch.obs.shape == (256, 7, 2) and batch.mask.shape == (256, 7, 1)
    steps, env = batch.obs[..., 0], batch.obs[..., 1]
    lengths = torch.where(env[:, 0] == 0, 10, 6)
    mask = batch.mask[..., 0].bool()
    for i in range(256):
        valid = mask[i].nonzero()[:, 0]
        # up to the last loss step, a window is consecutive steps of one stream
        # (later steps are padding: the next episode or not yet written)
        used = int(valid[-1]) + 1
        assert torch.all(env[i, :used] == env[i, 0])
        assert torch.all(steps[i, 1:used] - steps[i, : used - 1] == 1)
        assert 1 <= len(valid) <= 4
        first = int(valid[0])
        t0 = int(steps[i, first])
        episode_start = t0 - t0 % int(lengths[i])
        # burn-in: up to 3 steps before t0, never before the episode start
        assert int(steps[i, 0]) == max(t0 - 3, episode_start)
        # the loss steps are consecutive and stay in t0's episode
        loss_steps = steps[i, valid]
        assert torch.all(loss_steps // int(lengths[i]) == t0 // int(lengths[i]))
        assert torch.all(valid == torch.arange(first, first + len(valid)))
        assert torch.all(loss_steps <= 29)


def test_sequence_buffer_wraps_and_round_trips() -> None:
    buffer = SequenceReplayBuffer(
        24, 2, obs_dim=2, act_dim=1, burn_in=2, sequence_length=3, device="cpu"
    )
    fill_streams(buffer, 20, [4, 5])  # 12 steps per stream: wrapped
    assert buffer.size == 12 and buffer.position == 8 and len(buffer) == 24
    batch = buffer.sample(128, torch.Generator().manual_seed(2))
    assert float(batch.obs[..., 0][batch.mask[..., 0].bool()].min()) >= 8  # oldest kept step
    copy = SequenceReplayBuffer(
        24, 2, obs_dim=2, act_dim=1, burn_in=2, sequence_length=3, device="cpu"
    )
    copy.load_state_dict(buffer.state_dict())
    again = copy.sample(128, torch.Generator().manual_seed(2))
    assert all(torch.equal(x, y) for x, y in zip(batch, again, strict=True))


def test_sequence_buffer_too_small_is_config_error() -> None:
    with pytest.raises(ConfigError, match=r"agent\.buffer_size"):
        SequenceReplayBuffer(
            10, 4, obs_dim=1, act_dim=1, burn_in=2, sequence_length=3, device="cpu"
        )
