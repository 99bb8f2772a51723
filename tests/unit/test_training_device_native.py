"""The training step as device-native tensor code: acting, stepping the Möbius envs,
storing transitions, learning and bookkeeping make no host synchronisation; the
statistics reach the host once per interval and equal a host-side computation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hhml.config import load_config
from hhml.errors import NumericalInstabilityError
from hhml.ml.env.tensor_env import MobiusTensorEnv, as_tensor_env
from hhml.ml.training.device_stats import DeviceStats
from hhml.ml.training.metrics import IntervalStats
from hhml.ml.training.trainer import Trainer
from hhml.utils.host_sync import forbid_host_sync

QUICKSTART = Path(__file__).resolve().parents[2] / "configs" / "experiment" / "quickstart.yaml"


def _mobius_trainer(tmp_path: Path, algorithm: str) -> Trainer:
    cfg = load_config(
        QUICKSTART,
        [
            f"agent={algorithm}",
            "env.num_envs=2",
            "env.horizon=3",
            "agent.learning_starts=4",
            "agent.batch_size=4",
            "agent.hidden_size=8",
            "training.total_steps=40",
            "training.progress_bar=false",
            "training.tensorboard=false",
        ]
        + (["agent.burn_in=1", "agent.sequence_length=2"] if algorithm == "recurrent_td3" else []),
    )
    return Trainer.create(cfg, run_dir=tmp_path / algorithm)


@pytest.mark.parametrize("algorithm", ["td3", "sac", "recurrent_td3"])
def test_a_training_step_makes_no_host_synchronisation(tmp_path: Path, algorithm: str) -> None:
    trainer = _mobius_trainer(tmp_path, algorithm)
    try:
        assert isinstance(trainer.tensor_env, MobiusTensorEnv)
        for _ in range(3):  # random actions; fills the replay buffer past learning_starts
            trainer._step()
        trainer._step()  # first update: builds lazy state outside the guard
        updates = trainer.agent.num_updates
        with forbid_host_sync():
            for _ in range(4):  # horizon 3: episodes end and autoreset inside the guard
                trainer._step()
        assert trainer.agent.num_updates == updates + 4
        trainer._flush_device_stats()
        assert trainer.state.episodes == 4  # 2 envs × episodes ending at steps 3 and 6
        means = trainer.stats.means()
        assert {"agent/critic_loss", "reward/total", "vortex/density"} <= set(means)
        assert all(np.isfinite(v) for v in means.values())
    finally:
        trainer.close()


def test_device_stats_equal_the_host_side_means() -> None:
    gen = torch.Generator().manual_seed(0)
    host, device = IntervalStats(), IntervalStats()
    acc = DeviceStats(3, "cpu")
    returns, lengths, episodes = np.zeros(3), np.zeros(3, int), []
    for step in range(7):
        reward = torch.rand(3, generator=gen)
        terms = {"a": torch.rand(3, generator=gen), "b": torch.rand(3, generator=gen)}
        done = torch.tensor([step % 2 == 1, step % 3 == 2, False])
        acc.add("reward/total", reward)
        acc.add_mapping("reward/", terms)
        acc.end_step(reward, done)
        host.add("reward/total", reward.numpy())
        for name, value in terms.items():
            host.add(f"reward/{name}", value.numpy())
        returns += reward.numpy().astype(np.float64)
        lengths += 1
        for i in np.flatnonzero(done.numpy()):
            episodes.append((returns[i], lengths[i]))
            returns[i], lengths[i] = 0.0, 0
    totals = acc.flush(device)
    for _ret, _len in episodes:
        host.add("episode/return_mean", _ret)
        host.add("episode/length_mean", _len)
    got, want = device.means(), host.means()
    assert set(got) == set(want)
    for key in want:  # float64 sums in another order: measured ≤ 1e-16, allowed 1e-14
        assert got[key] == pytest.approx(want[key], rel=1e-14), key
    assert totals.finished == len(episodes) == 5
    np.testing.assert_allclose(totals.returns, returns, rtol=1e-14)
    assert totals.lengths == lengths.tolist()


def test_a_non_finite_action_fails_the_run_at_the_next_flush(tmp_path: Path) -> None:
    trainer = _mobius_trainer(tmp_path, "td3")
    try:
        trainer._step()
        trainer.device_stats.check_finite("action", torch.tensor([float("nan")]))
        with pytest.raises(NumericalInstabilityError, match="non-finite values in action"):
            trainer._flush_device_stats()
    finally:
        trainer.close()


def test_a_failed_run_records_failed_and_the_reason(tmp_path: Path) -> None:
    import json

    trainer = _mobius_trainer(tmp_path, "td3")

    def explode(snapshot: bool = False) -> None:
        raise NumericalInstabilityError("weights diverged")

    trainer._step = explode  # type: ignore[method-assign]
    try:
        with pytest.raises(NumericalInstabilityError):
            trainer.train()
    finally:
        trainer.close()
    summary = json.loads(trainer.run.metrics_json.read_text())
    assert summary["status"] == "failed"
    assert summary["reason"] == "NumericalInstabilityError: weights diverged"


def test_snapshots_hold_the_final_field_of_an_episode_not_the_reset_one(tmp_path: Path) -> None:
    trainer = _mobius_trainer(tmp_path, "td3")
    try:
        trainer._step()
        trainer._step()
        env = trainer.tensor_env
        assert isinstance(env, MobiusTensorEnv)
        psi_before = env.core.sim.psi.clone()
        step = env.step(torch.zeros(2, 23), snapshot=True)  # horizon 3: every env ends here
        assert bool(step.truncated.all())
        field = step.info["snapshot"]["psi"]
        # the snapshot is the field after this step's physics (it moved on from before) ...
        assert not torch.equal(field, psi_before.cpu())
        # ... and not the freshly reset field the envs now hold
        assert not torch.allclose(field, env.core.sim.psi.cpu())
    finally:
        trainer.close()


def test_as_tensor_env_refuses_a_device_mismatch(tmp_path: Path) -> None:
    trainer = _mobius_trainer(tmp_path, "td3")
    try:
        with pytest.raises(Exception, match="simulate on cpu, the agent is on meta"):
            as_tensor_env(trainer.envs, "meta")
    finally:
        trainer.close()
