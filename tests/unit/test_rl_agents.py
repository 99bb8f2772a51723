"""TD3, SAC and RecurrentTD3: acting, learning, determinism, checkpoints."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hhml.config import load_config
from hhml.config.agent import AgentConfig
from hhml.errors import CheckpointError, ConfigError
from hhml.ml.rl import SAC, TD3, Agent, RecurrentTD3, load_agent, make_agent
from hhml.ml.rl.off_policy import OffPolicyAgent

ALGORITHMS = ["td3", "sac", "recurrent_td3"]
CLASSES = {"td3": TD3, "sac": SAC, "recurrent_td3": RecurrentTD3}
OBS_DIM, ACT_DIM, N_ENVS = 3, 2, 2
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")),
]


def small_config(algorithm: str, **changes: Any) -> AgentConfig:
    """A tiny, fast configuration of ``algorithm``."""
    values: dict[str, Any] = {
        "algorithm": algorithm,
        "hidden_size": 16,
        "hidden_layers": 1,
        "batch_size": 8,
        "buffer_size": 400,
        "learning_starts": 20,
        "lstm_hidden": 8,
        "sequence_length": 4,
        "burn_in": 2,
    }
    values.update(changes)
    return AgentConfig(**values)


class ToyStream:
    """Deterministic random transitions for ``N_ENVS`` envs, episodes of length 7."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.t = 0

    def step(
        self, agent: Agent, obs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        action = agent.act(obs, explore=True)
        next_obs = self.rng.standard_normal((N_ENVS, OBS_DIM)).astype(np.float32)
        reward = self.rng.standard_normal(N_ENVS).astype(np.float32)
        self.t += 1
        truncated = np.array([self.t % 7 == 0, False])
        terminated = np.array([False, self.t % 5 == 0])
        agent.observe(obs, action, reward, next_obs, terminated, truncated)
        metrics = agent.update()
        agent.reset_state(terminated | truncated)
        return next_obs, action, metrics


def drive(agent: Agent, stream: ToyStream, obs: np.ndarray, steps: int) -> tuple[np.ndarray, list]:
    history = []
    for _ in range(steps):
        obs, action, metrics = stream.step(agent, obs)
        history.append((action.copy(), metrics))
    return obs, history


def params(agent: OffPolicyAgent) -> dict[str, torch.Tensor]:
    return {
        f"{name}.{key}": value.clone()
        for name, module in agent._networks().items()
        for key, value in module.state_dict().items()
    }


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_make_agent_class_and_shapes(algorithm: str) -> None:
    agent = make_agent(small_config(algorithm), OBS_DIM, ACT_DIM, "cpu", seed=0)
    assert isinstance(agent, CLASSES[algorithm])
    assert agent.num_parameters() > 0
    obs = np.zeros((N_ENVS, OBS_DIM), np.float32)
    for explore in (True, False):
        action = agent.act(obs, explore=explore)
        assert action.shape == (N_ENVS, ACT_DIM)
        assert action.dtype == np.float32
        assert np.all(np.abs(action) <= 1.0)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_random_actions_and_no_updates_before_learning_starts(algorithm: str) -> None:
    agent = make_agent(small_config(algorithm, learning_starts=30), OBS_DIM, ACT_DIM, "cpu", 1)
    stream = ToyStream(0)
    obs = np.zeros((N_ENVS, OBS_DIM), np.float32)
    obs, history = drive(agent, stream, obs, 14)  # 28 transitions < 30
    assert all(metrics == {} for _, metrics in history)
    actions = np.concatenate([a for a, _ in history])
    assert actions.min() < -0.5 and actions.max() > 0.5  # uniform over [-1, 1]
    obs, history = drive(agent, stream, obs, 2)
    metrics = history[-1][1]
    for key in ("critic_loss", "actor_loss", "critic_grad_norm", "actor_grad_norm", "lr"):
        assert np.isfinite(metrics[key]), key
    if algorithm == "sac":
        assert metrics["alpha"] > 0 and np.isfinite(metrics["entropy"])
    assert agent.num_steps == 32


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_gradient_steps_per_update(algorithm: str) -> None:
    agent = make_agent(small_config(algorithm, gradient_steps=3), OBS_DIM, ACT_DIM, "cpu", 0)
    drive(agent, ToyStream(0), np.zeros((N_ENVS, OBS_DIM), np.float32), 12)
    assert agent.num_updates == 3 * 3  # updates from step 10 (20 transitions) on


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_same_seed_same_agent(algorithm: str) -> None:
    runs = []
    for _ in range(2):
        agent = make_agent(small_config(algorithm), OBS_DIM, ACT_DIM, "cpu", seed=5)
        _, history = drive(agent, ToyStream(3), np.zeros((N_ENVS, OBS_DIM), np.float32), 20)
        runs.append((history, params(agent)))
    for (a1, m1), (a2, m2) in zip(runs[0][0], runs[1][0], strict=True):
        assert np.array_equal(a1, a2) and m1 == m2
    for key, value in runs[0][1].items():
        assert torch.equal(value, runs[1][1][key]), key
    other = make_agent(small_config(algorithm), OBS_DIM, ACT_DIM, "cpu", seed=6)
    assert not all(torch.equal(v, params(other)[k]) for k, v in runs[0][1].items())


@pytest.mark.parametrize("algorithm", ["td3", "recurrent_td3"])
def test_target_networks_follow_polyak(algorithm: str) -> None:
    tau = 0.3
    cfg = small_config(algorithm, tau=tau, policy_delay=1, learning_starts=20)
    agent = make_agent(cfg, OBS_DIM, ACT_DIM, "cpu", seed=0)
    assert isinstance(agent, (TD3, RecurrentTD3))
    stream = ToyStream(0)
    obs, _ = drive(agent, stream, np.zeros((N_ENVS, OBS_DIM), np.float32), 9)
    assert agent.num_updates == 0
    old_targets = [
        [p.clone() for p in agent.critic_target.parameters()],
        [p.clone() for p in agent.actor_target.parameters()],
    ]
    drive(agent, stream, obs, 1)
    assert agent.num_updates == 1
    online = [agent.critic.parameters(), agent.actor.parameters()]
    targets = [agent.critic_target.parameters(), agent.actor_target.parameters()]
    for old, new_online, new_target in zip(old_targets, online, targets, strict=True):
        for o, s, t in zip(old, new_online, new_target, strict=True):
            assert torch.allclose(t, (1 - tau) * o + tau * s, atol=1e-7, rtol=1e-6)
            assert not torch.equal(t, o)


def test_sac_target_critic_follows_polyak() -> None:
    tau = 0.25
    agent = make_agent(small_config("sac", tau=tau), OBS_DIM, ACT_DIM, "cpu", seed=0)
    assert isinstance(agent, SAC)
    stream = ToyStream(0)
    obs, _ = drive(agent, stream, np.zeros((N_ENVS, OBS_DIM), np.float32), 9)
    old = [p.clone() for p in agent.critic_target.parameters()]
    drive(agent, stream, obs, 1)
    for o, s, t in zip(
        old, agent.critic.parameters(), agent.critic_target.parameters(), strict=True
    ):
        assert torch.allclose(t, (1 - tau) * o + tau * s, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_bandit_overfit(algorithm: str) -> None:
    """One-step bandit, reward −(a − 0.5)²: the deterministic action goes to 0.5."""
    cfg = small_config(
        algorithm,
        hidden_size=64,
        batch_size=64,
        learning_starts=100,
        buffer_size=2000,
        gradient_steps=3,
        actor_learning_rate=1e-3,
        critic_learning_rate=3e-3,
        sequence_length=1,
        burn_in=0,
        target_entropy="-2",
        initial_entropy_coef=0.01,
    )
    agent = make_agent(cfg, 1, 1, "cpu", seed=0)
    obs = np.ones((1, 1), np.float32)
    for _ in range(400):
        action = agent.act(obs, explore=True)
        reward = -((action[:, 0] - 0.5) ** 2)
        agent.observe(obs, action, reward, obs, np.array([True]), np.array([False]))
        agent.update()
        agent.reset_state(np.array([True]))
    learned = float(agent.act(obs, explore=False)[0, 0])
    assert abs(learned - 0.5) < 0.1, learned


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_exact_continuation_from_state_dict(algorithm: str, device: str) -> None:
    cfg = small_config(algorithm)
    original = make_agent(cfg, OBS_DIM, ACT_DIM, device, seed=0)
    stream = ToyStream(1)
    obs, _ = drive(original, stream, np.zeros((N_ENVS, OBS_DIM), np.float32), 15)
    state = original.state_dict()
    restored = make_agent(cfg, OBS_DIM, ACT_DIM, device, seed=99)  # seed must not matter
    restored.load_state_dict(state)
    assert restored.num_steps == original.num_steps
    assert restored.num_updates == original.num_updates
    stream_copy = ToyStream(0)
    stream_copy.rng.bit_generator.state = stream.rng.bit_generator.state
    stream_copy.t = stream.t
    _, history_a = drive(original, stream, obs, 12)
    _, history_b = drive(restored, stream_copy, obs, 12)
    for (a1, m1), (a2, m2) in zip(history_a, history_b, strict=True):
        assert np.array_equal(a1, a2)
        assert m1 == m2
    pa, pb = params(original), params(restored)
    for key in pa:
        assert torch.equal(pa[key], pb[key]), key


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_save_load_round_trip(algorithm: str, device: str, tmp_path: Path) -> None:
    agent = make_agent(small_config(algorithm), OBS_DIM, ACT_DIM, device, seed=0)
    obs, _ = drive(agent, ToyStream(2), np.zeros((N_ENVS, OBS_DIM), np.float32), 15)
    path = tmp_path / "agent.pt"
    agent.save(str(path))
    loaded = load_agent(path, device)
    assert type(loaded) is type(agent)
    assert loaded.num_steps == agent.num_steps
    for _ in range(3):  # recurrent agents advance their hidden state
        assert np.array_equal(agent.act(obs, explore=False), loaded.act(obs, explore=False))
    assert np.array_equal(agent.act(obs, explore=True), loaded.act(obs, explore=True))


def test_state_dict_without_replay_is_smaller() -> None:
    agent = make_agent(small_config("td3"), OBS_DIM, ACT_DIM, "cpu", seed=0)
    drive(agent, ToyStream(0), np.zeros((N_ENVS, OBS_DIM), np.float32), 5)
    assert "replay" in agent.state_dict()
    assert "replay" not in agent.state_dict(include_replay=False)
    for value in agent.state_dict()["networks"]["actor"].values():
        assert value.device.type == "cpu"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_replay_in_state_dict_is_a_snapshot_copied_once(
    algorithm: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replay section is the buffer's own CPU copy, taken as it is (no second copy of
    what may be gigabytes), and later experience does not change it."""
    agent = make_agent(small_config(algorithm), OBS_DIM, ACT_DIM, "cpu", seed=0)
    stream = ToyStream(0)
    obs, _ = drive(agent, stream, np.zeros((N_ENVS, OBS_DIM), np.float32), 6)
    state = agent.state_dict()
    before = {k: v.clone() for k, v in state["replay"].items() if isinstance(v, torch.Tensor)}
    assert before
    drive(agent, stream, obs, 6)  # the buffer fills further and wraps nothing back
    for key, value in before.items():
        assert torch.equal(state["replay"][key], value), key
    own = agent._replay_state()
    assert own is not None
    monkeypatch.setattr(agent, "_replay_state", lambda: own)
    taken = agent.state_dict()["replay"]
    for key, value in own.items():
        assert taken[key] is value, key


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_checkpoint_missing_key_named(algorithm: str) -> None:
    agent = make_agent(small_config(algorithm), OBS_DIM, ACT_DIM, "cpu", seed=0)
    state = agent.state_dict()
    first = next(iter(state["networks"]["critic"]))
    del state["networks"]["critic"][first]
    with pytest.raises(CheckpointError, match=re.escape(f"networks.critic.{first}")):
        make_agent(small_config(algorithm), OBS_DIM, ACT_DIM, "cpu", seed=0).load_state_dict(state)
    state = agent.state_dict()
    del state["rng"]
    with pytest.raises(CheckpointError, match="missing key 'rng'"):
        agent.load_state_dict(state)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_checkpoint_wrong_shape_named(algorithm: str) -> None:
    state = make_agent(small_config(algorithm), OBS_DIM, ACT_DIM, "cpu", seed=0).state_dict()
    wider = make_agent(small_config(algorithm, hidden_size=24), OBS_DIM, ACT_DIM, "cpu", seed=0)
    with pytest.raises(CheckpointError, match=r"networks\.actor\..*shape"):
        wider.load_state_dict(state)
    other_obs = make_agent(small_config(algorithm), OBS_DIM + 1, ACT_DIM, "cpu", seed=0)
    with pytest.raises(CheckpointError, match="obs_dim"):
        other_obs.load_state_dict(state)


def test_checkpoint_wrong_agent_class_named(tmp_path: Path) -> None:
    state = make_agent(small_config("td3"), OBS_DIM, ACT_DIM, "cpu", seed=0).state_dict()
    sac = make_agent(small_config("sac"), OBS_DIM, ACT_DIM, "cpu", seed=0)
    with pytest.raises(CheckpointError, match=r"agent_class.*'TD3'.*SAC"):
        sac.load_state_dict(state)
    state["agent_class"] = "PPO"
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="agent_class"):
        load_agent(tmp_path / "bad.pt", "cpu")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_agent(tmp_path / "missing.pt", "cpu")


def test_replay_shape_mismatch_named() -> None:
    agent = make_agent(small_config("td3"), OBS_DIM, ACT_DIM, "cpu", seed=0)
    drive(agent, ToyStream(0), np.zeros((N_ENVS, OBS_DIM), np.float32), 3)
    state = agent.state_dict()
    state["replay"]["obs"] = state["replay"]["obs"][:, :1]
    with pytest.raises(CheckpointError, match=r"replay\.obs.*shape"):
        agent.load_state_dict(state)


def test_bad_inputs_raise_config_error() -> None:
    agent = make_agent(small_config("td3"), OBS_DIM, ACT_DIM, "cpu", seed=0)
    with pytest.raises(ConfigError, match="observation batch has shape"):
        agent.act(np.zeros((2, OBS_DIM + 1), np.float32), explore=False)
    with pytest.raises(ConfigError, match="obs_dim"):
        make_agent(small_config("td3"), 0, ACT_DIM, "cpu", seed=0)


def test_recurrent_reset_state_clears_only_done_envs() -> None:
    agent = make_agent(small_config("recurrent_td3"), OBS_DIM, ACT_DIM, "cpu", seed=0)
    assert isinstance(agent, RecurrentTD3)
    obs = np.ones((N_ENVS, OBS_DIM), np.float32)
    first = agent.act(obs, explore=False)
    second = agent.act(obs, explore=False)
    assert not np.array_equal(first, second)  # the history changes the action
    agent.reset_state(np.array([True, False]))
    third = agent.act(obs, explore=False)
    assert np.array_equal(third[0], first[0])
    assert not np.array_equal(third[1], first[1])


def test_agent_yaml_groups_select_algorithms() -> None:
    root = Path(__file__).resolve().parents[2] / "configs"
    for algorithm in ALGORITHMS:
        cfg = load_config(None, [f"agent={algorithm}"], config_root=root).agent
        assert cfg.algorithm == algorithm
        make_agent(cfg.replace(buffer_size=1000), 3, 1, "cpu", seed=0)
    sac = load_config(None, ["agent=sac", "agent.target_entropy=-0.5"], config_root=root).agent
    assert SAC(sac.replace(buffer_size=10), 3, 2, "cpu", 0).target_entropy == -0.5
    assert AgentConfig().resolved_target_entropy(4) == -4.0


def test_agent_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"agent\.target_entropy"):
        AgentConfig(target_entropy="lots")
    with pytest.raises(ConfigError, match=r"agent\.log_std_min"):
        AgentConfig(log_std_min=-1.0, log_std_max=-2.0)
    with pytest.raises(ConfigError, match=r"agent\.tau"):
        AgentConfig(tau=1.5)


class _RecordingAverager:
    """Stands in for the all-reduce: records which tensors each optimiser step averages."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, tensors: Any) -> None:
        tensors = list(tensors)
        assert all(t.grad is not None for t in tensors)
        self.calls.append(sum(t.numel() for t in tensors))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_data_parallel_averages_every_optimiser_step(algorithm: str) -> None:
    agent = make_agent(small_config(algorithm), OBS_DIM, ACT_DIM, "cpu", seed=0)
    averager = _RecordingAverager()
    agent.enable_data_parallel(0, averager)
    assert isinstance(agent, OffPolicyAgent)
    actor = sum(p.numel() for p in agent.actor.parameters())
    critic = sum(p.numel() for p in agent.critic.parameters())
    drive(agent, ToyStream(0), np.zeros((N_ENVS, OBS_DIM), np.float32), 12)
    updates = agent.num_updates
    assert updates == 3
    if algorithm == "sac":  # critic, actor and log alpha at every update
        assert averager.calls == [critic, actor, 1] * updates
    else:  # critic every update, actor every policy_delay-th (updates 0 and 2)
        assert averager.calls == [critic, actor, critic, critic, actor]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_data_parallel_ranks_share_weights_but_not_random_streams(algorithm: str) -> None:
    cfg = small_config(algorithm, learning_starts=1000)
    single = make_agent(cfg, OBS_DIM, ACT_DIM, "cpu", seed=4)
    rank0 = make_agent(cfg, OBS_DIM, ACT_DIM, "cpu", seed=4)
    rank1 = make_agent(cfg, OBS_DIM, ACT_DIM, "cpu", seed=4)
    rank0.enable_data_parallel(0, _RecordingAverager())
    rank1.enable_data_parallel(1, _RecordingAverager())
    for a, b in zip(params(single).values(), params(rank1).values(), strict=True):
        assert torch.equal(a, b)
    obs = np.zeros((N_ENVS, OBS_DIM), np.float32)
    first = single.act(obs, explore=True)
    np.testing.assert_array_equal(rank0.act(obs, explore=True), first)
    assert not np.array_equal(rank1.act(obs, explore=True), first)
    with pytest.raises(ConfigError, match="rank must be >= 0"):
        rank1.enable_data_parallel(-1, _RecordingAverager())
