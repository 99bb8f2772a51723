"""The agents against published Pendulum-v1 results (slow: minutes to an hour on a CPU).

Runs ``benchmarks/bench_pendulum.py`` (the same code that produced the numbers in
``benchmarks/README.md``) with one seed and checks the issue's targets:

- TD3 and SAC reach a mean evaluation return ≥ −200 within 20 000 steps
  (RL Zoo reports ≈ −150 at 20k);
- RecurrentTD3 on Pendulum without the angular velocity reaches ≥ −300 within
  50 000 steps, and plain TD3 on the same observation does not.

Run with ``pytest -m slow tests/integration/test_pendulum_verification.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration]

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_pendulum.py"


def run_bench(tmp_path: Path, algo: str, steps: int, no_velocity: bool) -> dict[str, Any]:
    out = tmp_path / f"{algo}{'_novel' if no_velocity else ''}.json"
    command = [sys.executable, str(BENCH), "run", "--algo", algo, "--steps", str(steps)]
    command += ["--seeds", "0", "--out", str(out)]
    if no_velocity:
        command.append("--no-velocity")
    subprocess.run(command, check=True)
    result: dict[str, Any] = json.loads(out.read_text())
    assert result["steps_reached"] == steps
    return result


@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_full_observation_reaches_minus_200(tmp_path: Path, algo: str) -> None:
    result = run_bench(tmp_path, algo, 20_000, no_velocity=False)
    assert result["best"] >= -200, result["curve"]


def test_recurrent_td3_solves_pendulum_without_velocity(tmp_path: Path) -> None:
    recurrent = run_bench(tmp_path, "recurrent_td3", 50_000, no_velocity=True)
    assert recurrent["best"] >= -300, recurrent["curve"]
    plain = run_bench(tmp_path, "td3", 50_000, no_velocity=True)
    assert plain["best"] < -300, plain["curve"]
