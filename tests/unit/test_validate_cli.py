"""Tests of ``hhml-validate`` (click CliRunner) and of each physics check in quick mode."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from hhml.cli.validate import main
from hhml.errors import ValidationError
from hhml.validation import checks
from hhml.validation.checks import CHECKS, CheckResult, run_checks

NAMES = [
    "laplacian-spectrum",
    "embedded-convergence",
    "double-cover",
    "imprinted-vortices",
    "null-model",
    "boundary-parity",
    "conservative-limit",
    "parameter-sensitivity",
]
CPU = torch.device("cpu")


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


# ---------------------------------------------------------------------------------------------
# the command line


def test_quick_null_model_passes_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    code, text = invoke("--only", "null-model", "--quick", "--json", str(out))
    assert code == 0, text
    assert "PASS" in text and "null-model" in text and "1/1 checks passed" in text
    payload = json.loads(out.read_text())
    assert payload["quick"] is True and payload["device"] == "cpu"
    (check,) = payload["checks"]
    assert check["name"] == "null-model" and check["passed"] is True
    measured = check["measured"]
    assert f"measured {measured:.4g}" in text
    assert abs(measured - 1 / 3) <= 4 * check["details"]["standard_error"]
    assert check["seconds"] >= 0


def test_unknown_check_is_a_usage_error_listing_valid_names() -> None:
    code, text = invoke("--only", "nonsense")
    assert code == 2
    assert "nonsense" in text
    for name in NAMES:
        assert name in text


def test_list_names_all_checks_by_group() -> None:
    from hhml.validation.checks import GROUPS

    code, text = invoke("--list")
    assert code == 0
    lines = text.strip().splitlines()
    assert [ln for ln in lines if ln.startswith("[")] == [f"[{g}]" for g in GROUPS]
    listed = [ln.split()[0] for ln in lines if not ln.startswith("[")]
    assert listed == list(CHECKS)
    assert listed[: len(NAMES)] == NAMES


def test_only_accepts_group_names() -> None:
    code, text = invoke("--quick", "--only", "gft")
    assert code == 0
    assert "7/7 checks passed" in text


def test_comma_separated_only_runs_both_in_order(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    code, text = invoke("--only", "null-model,laplacian-spectrum", "--quick", "--json", str(out))
    assert code == 0, text
    names = [c["name"] for c in json.loads(out.read_text())["checks"]]
    assert names == ["null-model", "laplacian-spectrum"]
    assert "2/2 checks passed" in text


def test_json_into_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    code, text = invoke("--only", "null-model", "--json", str(tmp_path / "nope" / "x.json"))
    assert code == 2
    assert "does not exist" in text


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_cpu_machine_is_a_usage_error() -> None:
    code, text = invoke("--device", "cuda", "--only", "null-model", "--quick")
    assert code == 2
    assert "cuda" in text and "not available" in text


def test_failing_check_exits_one(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(quick: bool, device: torch.device) -> CheckResult:
        return CheckResult("null-model", "fake", 0.5, "1/3", "never", False)

    monkeypatch.setitem(checks.CHECKS, "null-model", fake)
    code, text = invoke("--only", "null-model", "--quick")
    assert code == 1
    assert "FAIL" in text and "0/1 checks passed" in text


def test_check_that_cannot_run_exits_one(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(quick: bool, device: torch.device) -> CheckResult:
        raise ValidationError("reference data missing")

    monkeypatch.setitem(checks.CHECKS, "null-model", broken)
    code, text = invoke("--only", "null-model", "--quick")
    assert code == 1
    assert "ERROR null-model" in text and "reference data missing" in text


def test_run_checks_rejects_unknown_names() -> None:
    with pytest.raises(ValidationError, match="nonsense"):
        run_checks(["nonsense"])


# ---------------------------------------------------------------------------------------------
# each check, quick mode, with its measured number


def test_registry_is_complete() -> None:
    from hhml.validation.checks import GROUPS, expand_names

    assert GROUPS["physics"] == NAMES
    assert set(GROUPS) == {"physics", "tensor-networks", "gft", "cgl"}
    assert list(CHECKS) == [n for members in GROUPS.values() for n in members]
    assert expand_names(["gft", "null-model", "gft"]) == [*GROUPS["gft"], "null-model"]


def test_laplacian_spectrum_check() -> None:
    r = CHECKS["laplacian-spectrum"](True, CPU)
    assert r.passed and r.name == "laplacian-spectrum"
    assert 0 <= r.measured < 1e-10
    assert len(r.details) == 6  # 2 edges × 3 twists


def test_embedded_convergence_check() -> None:
    r = CHECKS["embedded-convergence"](True, CPU)
    assert r.passed
    assert abs(r.measured - 2.0) <= 0.3
    orders = r.details["observed_orders"][-1]
    assert all(abs(p - 2.0) <= 0.3 for p in orders)


def test_double_cover_check() -> None:
    r = CHECKS["double-cover"](True, CPU)
    assert r.passed
    assert r.measured <= 1e-8
    assert len(r.details) == 4


def test_imprinted_vortices_check() -> None:
    r = CHECKS["imprinted-vortices"](True, CPU)
    assert r.passed
    assert r.measured == 0.0 and r.details["failures"] == []
    assert r.details["cases"] == 2 * 2 * 16


def test_null_model_check() -> None:
    r = CHECKS["null-model"](True, CPU)
    assert r.passed
    assert abs(r.measured - 1 / 3) <= 4 * r.details["standard_error"]
    assert r.details["standard_error"] < 0.01


def test_boundary_parity_check() -> None:
    r = CHECKS["boundary-parity"](True, CPU)
    assert r.passed
    assert r.measured <= 1e-9
    assert r.details["violations"] == 0 and r.details["cases"] == 250


def test_conservative_limit_check() -> None:
    r = CHECKS["conservative-limit"](True, CPU)
    assert r.passed
    assert abs(r.measured - 4.0) <= 0.3
    assert r.details["norm_drift"] <= 1e-8 and r.details["energy_drift"] <= 1e-8
    errors = r.details["errors"]
    assert errors[0] > errors[1] > errors[2] > 0


def test_parameter_sensitivity_check() -> None:
    r = CHECKS["parameter-sensitivity"](True, CPU)
    assert r.passed
    assert r.measured > 1e-6 and r.details["dead"] == []
    changes = r.details["relative_change"]
    assert len(changes) == 18 + 5  # every FieldParams field + 5 lattice controls
    assert all(math.isfinite(v) and v > 1e-6 for v in changes.values())
