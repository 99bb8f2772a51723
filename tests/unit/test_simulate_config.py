"""hhml.core.simulate: a config's simulation run, stored in simulation.output_dir."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hhml.config import load_config
from hhml.config.schema import HHmLConfig
from hhml.core.factory import build_simulator
from hhml.core.simulate import simulate
from hhml.errors import ConfigError
from hhml.io import read_trajectory


def _cfg(out: Path, steps: int = 12, every: int = 5) -> HHmLConfig:
    return load_config(
        None,
        [
            "lattice=small",
            "simulation=quick",
            f"simulation.steps={steps}",
            f"simulation.snapshot_every={every}",
            f"simulation.output_dir={out}",
        ],
    )


def test_simulate_writes_the_trajectory_and_config_to_output_dir(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = _cfg(out)
    result = simulate(cfg, progress=False)
    assert result.output_dir == out and result.fields_path == out / "fields.h5"
    data = read_trajectory(out / "fields.h5")
    dt = cfg.simulation.dt
    # the start and every 5 of 12 steps: t = 0, 5 dt, 10 dt (not the end: 12 is no multiple)
    assert data["time"].tolist() == pytest.approx([0.0, 5 * dt, 10 * dt], abs=1e-12)
    # the run is a plain run of the same config: the last state equals 12 plain steps
    plain = build_simulator(cfg)
    plain.step(12)
    assert torch.equal(result.simulator.psi, plain.psi)
    assert result.simulator.step_count == 12
    assert load_config(out / "config.yaml") == cfg
    assert "simulation:" in data["attrs"]["config"]


def test_simulate_refuses_to_overwrite_a_trajectory(tmp_path: Path) -> None:
    out = tmp_path / "run"
    simulate(_cfg(out), progress=False)
    before = (out / "fields.h5").read_bytes()
    with pytest.raises(ConfigError, match=r"fields\.h5 already exists; choose another"):
        simulate(_cfg(out), progress=False)
    assert (out / "fields.h5").read_bytes() == before
    simulate(_cfg(out, steps=3), tmp_path / "run", progress=False, overwrite=True)
    assert len(read_trajectory(out / "fields.h5")["time"]) == 1


def test_snapshot_every_zero_writes_no_trajectory(tmp_path: Path) -> None:
    result = simulate(_cfg(tmp_path / "r", every=0), progress=False)
    assert result.fields_path is None and not (tmp_path / "r" / "fields.h5").exists()
    assert (tmp_path / "r" / "config.yaml").is_file()


def test_an_output_dir_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        simulate(_cfg(tmp_path / "f"), progress=False)
