"""Tests of the ``training`` config section and the ``configs/training`` group files."""

from __future__ import annotations

from pathlib import Path

import pytest

from hhml.config import load_config
from hhml.config.training import TrainingConfig
from hhml.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_default_group_file_writes_out_the_schema_defaults() -> None:
    cfg = load_config(None, ["training=default"], config_root=CONFIGS)
    assert cfg.training == TrainingConfig()


def test_quick_group_file_is_a_short_run() -> None:
    cfg = load_config(None, ["training=quick"], config_root=CONFIGS)
    assert cfg.training.total_steps < TrainingConfig().total_steps
    assert cfg.training.eval_every <= cfg.training.total_steps


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.run_name=a/b", r"training\.run_name = 'a/b' is not valid; expected letters"),
        ("training.run_name=..", r"training\.run_name = '\.\.' is not valid"),
        ("training.device=gpu", r"training\.device = 'gpu' is not valid; expected 'auto'"),
        ("training.total_steps=0", r"training\.total_steps = 0 is out of range"),
        ("training.eval_episodes=0", r"training\.eval_episodes = 0 is out of range"),
        ("training.tensorboard=maybe", r"training\.tensorboard = 'maybe' has the wrong type"),
        ("training.run_root=", r"training\.run_root = '' is not valid"),
    ],
)
def test_invalid_training_values(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override], config_root=CONFIGS)


def test_valid_names_and_devices() -> None:
    cfg = load_config(
        None,
        ["training.run_name=td3_s0-v1.2", "training.device=cuda:1", "training.eval_every=0"],
        config_root=CONFIGS,
    )
    assert cfg.training.run_name == "td3_s0-v1.2" and cfg.training.device == "cuda:1"
