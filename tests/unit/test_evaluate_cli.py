"""hhml-evaluate: returns equal to the trainer's evaluation, the animation, bad inputs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from tiny_runs import TINY_MOBIUS_RUN

from hhml.analysis.animation import AnimationWriter, FieldAnimator, Frame
from hhml.analysis.evaluate import evaluate, frame_of, load_evaluation
from hhml.cli.evaluate import main as evaluate_main
from hhml.cli.train import main as train_main
from hhml.config import config_from_dict, config_to_dict, load_config
from hhml.config.controls import CONTROLS
from hhml.ml.baselines.suite import to_box
from hhml.ml.env.factory import make_vector_env
from hhml.ml.rl import make_agent
from hhml.ml.training.checkpoint import load_trained_agent, save_checkpoint
from hhml.ml.training.evaluation import AgentPolicy, run_episodes

TINY = TINY_MOBIUS_RUN


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "tiny"
    result = CliRunner().invoke(
        train_main, [*TINY, "--device", "cpu", "--run-dir", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return out


def _trainer_returns(cfg: Any, checkpoint: Path, seeds: list[int]) -> list[float]:
    """The trainer's evaluation protocol (Trainer._evaluate) on a fresh eval env."""
    envs = make_vector_env(cfg, num_envs=1, seed=cfg.training.eval_seed)
    policy = AgentPolicy(load_trained_agent(checkpoint))
    result, _ = run_episodes(envs, policy, seeds, to_box(envs.single_action_space), 0)
    envs.close()
    return result.returns


def _one_line_error(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in output, output
    assert lines[0].startswith("hhml-evaluate: error: ")
    return lines[0]


def test_returns_equal_the_trainers_evaluation_and_the_gif_has_a_frame_per_step(
    run_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        evaluate_main,
        [
            str(run_dir),
            "--episodes",
            "2",
            "--out",
            str(out),
            "--no-progress",
            "--json",
            str(tmp_path / "r.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "returns.json").read_text())
    assert json.loads((tmp_path / "r.json").read_text()) == data
    cfg = load_config(run_dir / "config.yaml")
    seeds = [cfg.training.eval_seed, cfg.training.eval_seed + 1]
    assert data["seeds"] == seeds
    assert data["checkpoint"] == str(run_dir / "model_best.pt")
    assert data["deterministic_policy"] is True
    # exact equality with run_episodes + AgentPolicy (the trainer's protocol) ...
    assert data["returns"] == _trainer_returns(cfg, run_dir / "model_best.pt", seeds)
    # ... and with the evaluation the trainer itself recorded for this checkpoint
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["best_eval"]["step"] == data["checkpoint_step"]
    assert data["returns"][:1] == summary["best_eval"]["returns"]
    assert data["return_mean"] == pytest.approx(np.mean(data["returns"]), rel=1e-15)
    lo, hi = data["return_ci95"]
    assert lo < data["return_mean"] < hi
    assert data["lengths"] == [5, 5]
    # one GIF (the first episode): the field after reset, then one frame per env step
    assert sorted(p.name for p in out.iterdir()) == [f"episode_{seeds[0]}.gif", "returns.json"]
    with Image.open(out / f"episode_{seeds[0]}.gif") as gif:
        assert gif.n_frames == data["lengths"][0] + 1


def test_frames_show_the_state_of_each_step_including_the_last_before_autoreset(
    run_dir: Path,
) -> None:
    agent, cfg, _, _ = load_evaluation(run_dir)
    seed, horizon = 7, cfg.env.horizon
    frames: list[Frame] = []

    class Sink:
        def add(self, frame: Frame) -> None:
            frames.append(frame)

        def close(self) -> None:
            pass

    result = evaluate(agent, cfg, [seed], sink_for=lambda episode, s: Sink())
    assert [f.step for f in frames] == list(range(horizon + 1))
    assert frames[-1].episode_return == result.returns[0]
    # reference: the same actions on an env with a longer horizon (no autoreset at step
    # `horizon`); actions replayed from the frames' control values (exact affine map)
    longer = dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, horizon=horizon + 1))
    envs = make_vector_env(longer, num_envs=1, seed=cfg.training.eval_seed)
    envs.reset(seed=seed)
    for k in range(1, horizon + 1):
        action = envs.core.controls.to_action(frames[k].values[None])
        _, reward, *_ = envs.step(action)
        ref = frame_of(envs.core, 0, step=k, reward=None, episode_return=0.0)
        # the same arithmetic on the same inputs: measured difference exactly 0
        np.testing.assert_array_equal(frames[k].psi, ref.psi)
        assert frames[k].reward == float(reward[0])
        assert len(frames[k].vortex_charge) == len(ref.vortex_charge)
    envs.close()


def test_streamed_gif_decodes_to_the_rendered_frames(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    animator = FieldAnimator(
        2,
        2 * np.pi,
        1.0,
        [c.name for c in CONTROLS],
        [c.low for c in CONTROLS],
        [c.high for c in CONTROLS],
        horizon=3,
    )
    frames = []
    for k in range(3):
        psi = rng.normal(size=(2, 16, 6)) + 1j * rng.normal(size=(2, 16, 6))
        frames.append(
            Frame(
                psi=psi,
                vortex_strip=np.array([0, 1]),
                vortex_position=np.array([[1.0, 0.2], [3.0, -0.5]]),
                vortex_charge=np.array([1, -1]),
                controls=rng.uniform(-1, 1, len(CONTROLS)),
                values=rng.uniform(0, 1, len(CONTROLS)),
                step=k,
                reward=None if k == 0 else 0.5,
                episode_return=0.5 * k,
            )
        )
    path = tmp_path / "a.gif"
    with AnimationWriter(path, animator, fps=10) as writer:
        for frame in frames:
            writer.add(frame)
    with Image.open(path) as gif:
        assert gif.n_frames == 3 and gif.size == animator.size
        assert gif.info["duration"] == 100 and gif.info["loop"] == 0
        for k, frame in enumerate(frames):
            gif.seek(k)
            decoded = np.asarray(gif.convert("RGB"), dtype=np.float64)
            animator.draw(frame)
            drawn = animator.rgb().astype(np.float64)
            # quantised to the first frame's 256 colours: measured mean |Δ| ≈ 2.3/255
            assert np.abs(decoded - drawn).mean() < 8.0


def test_mp4_pipes_the_drawn_frames_to_ffmpeg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import matplotlib

    # a stand-in ffmpeg that stores its raw input in the output file (its last argument)
    fake = tmp_path / "ffmpeg"
    fake.write_text('#!/bin/sh\nfor last; do :; done\ncat > "$last"\n')
    fake.chmod(0o755)
    monkeypatch.setitem(matplotlib.rcParams, "animation.ffmpeg_path", str(fake))
    animator = FieldAnimator(
        1, 2 * np.pi, 1.0, ["a", "b"], [0.0, 0.0], [1.0, 2.0], horizon=None, dpi=20
    )
    frame = Frame(
        psi=np.ones((1, 8, 4), dtype=complex),
        vortex_strip=np.zeros(0, dtype=np.int64),
        vortex_position=np.zeros((0, 2)),
        vortex_charge=np.zeros(0, dtype=np.int64),
        controls=np.array([0.5, -1.0]),
        values=np.array([0.75, 0.0]),
        step=0,
        reward=None,
        episode_return=0.0,
    )
    path = tmp_path / "a.mp4"
    with AnimationWriter(path, animator, fps=4) as writer:
        writer.add(frame)
        writer.add(frame)
    width, height = animator.size
    raw = np.frombuffer(path.read_bytes(), dtype=np.uint8).reshape(2, height, width, 3)
    np.testing.assert_array_equal(raw[1], animator.rgb())


def test_last_checkpoint_no_animation_and_a_checkpoint_file(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "last"
    args = [str(run_dir), "--checkpoint", "last", "--seeds", "3,5", "--no-animate"]
    result = CliRunner().invoke(evaluate_main, [*args, "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert result.output == ""
    data = json.loads((out / "returns.json").read_text())
    assert data["checkpoint"] == str(run_dir / "model_last.pt") and data["seeds"] == [3, 5]
    cfg = load_config(run_dir / "config.yaml")
    assert data["returns"] == _trainer_returns(cfg, run_dir / "model_last.pt", [3, 5])
    assert [p.name for p in out.iterdir()] == ["returns.json"]
    # a bare checkpoint file: its own config, output beside it by default
    bare = tmp_path / "bare" / "model_last.pt"
    bare.parent.mkdir()
    bare.write_bytes((run_dir / "model_last.pt").read_bytes())
    result = CliRunner().invoke(evaluate_main, [str(bare), "--seeds", "3", "--no-animate", "-q"])
    assert result.exit_code == 0, result.output
    beside = json.loads((bare.parent / "model_last_evaluation" / "returns.json").read_text())
    assert beside["returns"] == data["returns"][:1]


def test_pendulum_returns_without_animation(tmp_path: Path) -> None:
    cfg = load_config(None, ["env.id=Pendulum-v1", "agent=td3", "agent.hidden_size=8"])
    agent = make_agent(cfg.agent, 3, 1, torch.device("cpu"), 0)
    ckpt = tmp_path / "model_best.pt"
    save_checkpoint(
        ckpt,
        {
            "kind": "best",
            "step": 0,
            "config": config_to_dict(cfg),
            "agent_class": type(agent).__name__,
            "obs_dim": 3,
            "act_dim": 1,
            "agent": agent.state_dict(include_replay=False),
        },
    )
    assert config_from_dict(config_to_dict(cfg)).env.id == "Pendulum-v1"
    out = tmp_path / "out"
    result = CliRunner().invoke(evaluate_main, [str(ckpt), "--seeds", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "no field to animate" in result.output
    data = json.loads((out / "returns.json").read_text())
    assert data["lengths"] == [200] and data["animations"] == {}
    assert data["returns"] == _trainer_returns(cfg, ckpt, [4])
    assert [p.name for p in out.iterdir()] == ["returns.json"]


def test_bad_inputs_exit_2_with_one_line(run_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(evaluate_main, [str(tmp_path / "missing")])
    assert result.exit_code == 2
    assert "no such run directory or checkpoint file" in _one_line_error(result.output)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.yaml").write_text((run_dir / "config.yaml").read_text())
    result = runner.invoke(evaluate_main, [str(empty)])
    assert result.exit_code == 2
    assert "has no model_best.pt (it holds none)" in _one_line_error(result.output)
    result = runner.invoke(evaluate_main, [str(run_dir), "--seeds", "x"])
    assert result.exit_code == 2
    assert "'x' is not an integer" in _one_line_error(result.output)
    result = runner.invoke(evaluate_main, [str(run_dir), "--env", "1"])
    assert result.exit_code == 2
    assert "--env 1" in _one_line_error(result.output)
    result = runner.invoke(evaluate_main, [str(run_dir), "-q", "-v"])
    assert result.exit_code == 2 and "exclude each other" in result.output  # click usage error
    not_a_checkpoint = tmp_path / "x.pt"
    not_a_checkpoint.write_bytes(b"nothing")
    result = runner.invoke(evaluate_main, [str(not_a_checkpoint)])
    assert result.exit_code == 2
    _one_line_error(result.output)
    assert not (tmp_path / "x_evaluation").exists()


def test_help_and_version() -> None:
    result = CliRunner().invoke(evaluate_main, ["-h"])
    assert result.exit_code == 0 and result.output.startswith("Usage: ")
    assert "--animate-all" in result.output and "returns.json" in result.output
    result = CliRunner().invoke(evaluate_main, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("hhml-evaluate")
