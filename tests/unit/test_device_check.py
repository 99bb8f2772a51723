"""Tests of ``benchmarks/device_check.py``: the CPU dry run, the time budget, the helpers.

The dry run (``--device cpu --quick``) runs every stage at tiny sizes: the CUDA tests in a
subprocess (skipped without a GPU), the CPU-vs-CPU rollout (difference exactly 0), the
throughput and RHS timings (positive numbers; their values are not asserted).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch


def test_cpu_quick_dry_run(device_check: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "check.json"  # the parent directory is created
    code = device_check.main(["--device", "cpu", "--quick", "--json", str(out)])
    res = json.loads(out.read_text())
    assert code == 0 and res["exit_code"] == 0 and res["passed"] is True
    for key in ("schema", "date", "time_budget_s", "elapsed_s", "device"):
        assert key in res
    for key in ("tests", "rollout", "throughput", "rhs"):
        assert key in res
    assert res["device"]["type"] == "cpu" and res["device"]["torch"] == torch.__version__
    assert res["elapsed_s"] > 0.0
    # stage 1: the CUDA tests ran in a subprocess; without a GPU each one is skipped
    tests = res["tests"]
    assert tests["ok"] is True and tests["failed"] == 0 and tests["errors"] == 0
    assert tests["tests"] >= 3
    if not torch.cuda.is_available():
        assert tests["skipped"] == tests["tests"] and tests["status"] == "skipped"
    # stage 2: CPU against CPU is bit-identical
    roll = res["rollout"]
    assert roll["ok"] is True and roll["status"] == "passed"
    assert roll["max_rel_diff_obs"] == 0.0 and roll["max_rel_diff_reward"] == 0.0
    assert roll["done_flags_equal"] is True and roll["tolerance"] == 1e-10
    # stage 3: one positive figure per quick size
    assert [row["num_envs"] for row in res["throughput"]] == [1, 4]
    for row in res["throughput"]:
        assert row["status"] == "ok" and row["steps_timed"] == 3
        for key in ("median_s_per_step", "env_steps_per_s"):
            assert isinstance(row[key], float) and math.isfinite(row[key]) and row[key] > 0
        assert isinstance(row["memory_bytes_per_env"], float)
    # stage 4: 64² is below MIN_COMPILED_NODES, so only the eager path is timed
    rhs = res["rhs"]
    assert rhs["size"] == 64 and rhs["nodes"] == 64 * 64
    eager = rhs["paths"]["eager"]
    assert eager["status"] == "ok" and eager["node_updates_per_s"] > 0
    assert rhs["paths"]["default"]["status"] == "same as eager"


def test_exhausted_budget_skips_every_stage(device_check: ModuleType, tmp_path: Path) -> None:
    """With 0.5 s, no stage has its minimum time: all are skipped with a reason, and the
    correctness checks count as not passed (exit code 1)."""
    out = tmp_path / "check.json"
    code = device_check.main(["--device", "cpu", "--time-budget", "0.5", "--json", str(out)])
    res = json.loads(out.read_text())
    assert code == 1 and res["passed"] is False
    assert res["tests"]["status"] == "skipped" and res["tests"]["ok"] is False
    assert res["rollout"]["status"] == "skipped" and res["rollout"]["ok"] is False
    assert [row["status"] for row in res["throughput"]] == ["skipped"] * 4
    assert all("s left" in row["reason"] for row in res["throughput"])
    assert res["rhs"]["paths"]["eager"]["status"] == "skipped"
    assert res["rhs"]["paths"]["default"]["status"] == "skipped"


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available on this machine")
def test_missing_cuda_writes_the_error(device_check: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "check.json"
    assert device_check.main(["--json", str(out)]) == 2  # --device cuda is the default
    res = json.loads(out.read_text())
    assert res["exit_code"] == 2 and "CUDA is not available" in res["error"]


def test_invalid_arguments_are_rejected(device_check: ModuleType) -> None:
    with pytest.raises(SystemExit):
        device_check.main(["--device", "cpu", "--steps", "0"])
    with pytest.raises(device_check.ConfigError, match="time-budget"):
        device_check.main(["--device", "cpu", "--time-budget", "-1"])


def test_max_rel_diff_per_column(device_check: ModuleType) -> None:
    """Hand-computed: each column is scaled by the reference's largest |value|."""
    f = device_check.max_rel_diff
    b = np.array([[1.0, 0.0, 8.0], [4.0, 0.0, -2.0]])
    a = np.array([[1.0, 0.0, 10.0], [2.0, 0.0, -2.0]])
    assert f(a, b) == 0.5  # column 0: 2 / 4; column 2: 2 / 8; column 1: 0 and 0
    assert f(np.array([1.0, 2.5]), np.array([1.0, 2.0])) == 0.25  # 1-d: one column
    assert f(b, b) == 0.0
    assert f(np.array([[1e-30]]), np.array([[0.0]])) == math.inf
    assert math.isnan(f(np.array([math.nan]), np.array([1.0])))
    with pytest.raises(device_check.ConfigError, match="shapes differ"):
        f(np.zeros(2), np.zeros(3))


def test_cuda_tests_timeout_counts_as_not_passed(device_check: ModuleType) -> None:
    """pytest cannot import torch and hhml within 0.2 s: the subprocess is killed."""
    res = device_check.run_cuda_tests(torch.device("cpu"), timeout=0.2)
    assert res["ok"] is False and res["status"] == "timeout"
    assert "did not finish" in res["reason"]
