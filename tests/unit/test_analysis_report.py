"""hhml-analyze: loading with schema checks, the report and its numbers, the CLI."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from tiny_runs import TINY_MOBIUS_RUN

from hhml.analysis.loading import load_run, load_snapshot, open_input
from hhml.analysis.report import build_report, write_report
from hhml.cli.analyze import main as analyze_main
from hhml.cli.train import main as train_main
from hhml.errors import CheckpointError

REPO = Path(__file__).parents[2]

TINY = TINY_MOBIUS_RUN


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    out = root / "tiny<script>run"
    result = CliRunner().invoke(
        train_main, [*TINY, "--device", "cpu", "--run-dir", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return out


def _digest(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def test_report_numbers_match_the_run_and_the_run_is_not_modified(
    run_dir: Path, tmp_path: Path
) -> None:
    before = _digest(run_dir)
    doc = build_report(run_dir, tmp_path / "report", progress=False)
    written = write_report(doc, tmp_path / "report", ["md", "html"])
    assert _digest(run_dir) == before
    assert {p.name for p in written} == {"report.md", "report.html", "report.json"}
    numbers = json.loads((tmp_path / "report" / "report.json").read_text())
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert numbers["training"]["baseline_return"] == summary["baseline_return"]
    evals = [e["return_mean"] for e in numbers["training"]["evaluations"]]
    assert evals[-1] == summary["final_eval"]["return_mean"]
    # the non-learning baselines of metrics.json, in the numbers and as a table
    assert numbers["training"]["baselines"] == summary["baselines"]
    assert [b["name"] for b in summary["baselines"]] == [
        "random",
        "midpoint",
        "constant",
        "schedule",
    ]
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "agent vs it" in markdown and "midpoint" in markdown
    # 40 env steps of 5-step episodes: one CMA-ES generation of 8 candidates each
    assert [b["search_env_steps"] for b in summary["baselines"]] == [0, 0, 40, 40]
    snap = load_snapshot(load_run(run_dir).snapshots[-1])
    assert numbers["snapshot"]["counts_per_env"] == [
        int((snap.vortex_index[:, 0] == b).sum()) for b in range(snap.num_envs)
    ]
    for name in ("rewards.png", "parameters.png", "density.png", "snapshot.png"):
        assert (tmp_path / "report" / name).stat().st_size > 1000
        assert name in numbers["figures"]
    html = (tmp_path / "report" / "report.html").read_text()
    assert "<script>" not in html and "tiny&lt;script&gt;run" in html


def test_checkpoint_and_snapshot_inputs(run_dir: Path, tmp_path: Path) -> None:
    kind, (ckpt, snap) = open_input(run_dir / "model_last.pt")
    assert kind == "checkpoint" and snap is not None
    assert snap.psi.shape == (2, 2, 16, 6) and snap.psi.device.type == "cpu"
    doc = build_report(run_dir / "model_last.pt", tmp_path / "ck", progress=False)
    assert doc.numbers["checkpoint"]["step"] == ckpt["step"]
    kind, snap2 = open_input(load_run(run_dir).snapshots[-1])
    assert kind == "snapshot" and snap2.step == 40


def test_malformed_inputs_raise_checkpoint_errors_that_name_the_problem(
    run_dir: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    lines = (copy / "metrics.jsonl").read_text().splitlines()
    (copy / "metrics.jsonl").write_text("\n".join([lines[0], "{broken", *lines[1:]]) + "\n")
    with pytest.warns(UserWarning, match=r"metrics.jsonl:2 is not valid JSON.*line skipped"):
        assert len(load_run(copy).records) == len(lines)  # the bad line skipped, not fatal
    (copy / "metrics.jsonl").write_text("\n".join([*lines, '{"kind": "tr']))  # torn last line
    assert len(load_run(copy).records) == len(lines)
    (copy / "config.yaml").unlink()
    with pytest.raises(CheckpointError, match=r"has no config\.yaml"):
        load_run(copy)
    from hhml.io.fields import read_snapshot

    snap_file = load_run(run_dir).snapshots[-1]
    data = read_snapshot(snap_file)  # the trainer writes .h5; the old .pt path is checked here
    del data["chart"]
    torch.save(data, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"missing snapshot key\(s\) \['chart'\]"):
        load_snapshot(tmp_path / "bad.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="corrupted or not a torch file"):
        load_snapshot(tmp_path / "junk.pt")


def test_cli_writes_the_report_and_rejects_bad_inputs(run_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli"
    result = runner.invoke(analyze_main, [str(run_dir), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert (out / "report.md").is_file() and (out / "report.json").is_file()
    result = runner.invoke(analyze_main, [str(tmp_path / "missing")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    result = runner.invoke(analyze_main, [str(run_dir), "--out", str(run_dir / "inside")])
    assert result.exit_code == 2 and "never writes into a run directory" in result.output
    assert not (run_dir / "inside").exists()


def test_compare_adds_a_table_of_every_run(run_dir: Path, tmp_path: Path) -> None:
    doc = build_report(run_dir, tmp_path / "cmp", compare=[run_dir], progress=False)
    assert [row["run"] for row in doc.numbers["compare"]] == [run_dir.name, run_dir.name]


def test_dark_matter_and_field_sections_carry_their_nulls(run_dir: Path, tmp_path: Path) -> None:
    doc = build_report(run_dir, tmp_path / "dm", dark_matter=True, progress=False)
    dm = doc.numbers["dark_matter"]
    assert "makes no claim about cosmological dark matter" in dm["disclaimer"]
    assert set(dm["topologies"]) == {"mobius", "cylinder", "torus"}
    for topo in dm["topologies"].values():
        assert topo["null_mean_fidelity_sq"] == pytest.approx(1.0 / (2 * 16 * 6))
    field = doc.numbers["field"]["correlation_length"]
    assert len(field) == 2 and all("low" in f and "high" in f for f in field)
    assert "branches.png" in doc.numbers["figures"] and "g1.png" in doc.numbers["figures"]


def test_the_density_figure_marks_the_target_of_the_task() -> None:
    from hhml.analysis.report.figures import density_target

    assert density_target({"task": "target_density", "target_density": 0.03}) == (0.03, 0.03)
    setpoint = {"task": "setpoint_density", "target_density": 0.03}
    assert density_target({**setpoint, "setpoint_low": 0.02, "setpoint_high": 0.14}) == (
        0.02,
        0.14,
    )
    assert density_target({"task": "lattice_order", "target_density": 0.03}) is None
    assert density_target({"task": "setpoint_density"}) is None
