"""Malformed inputs give clean, located errors or warnings, never tracebacks or lost data.

* ``metrics.jsonl`` lines that are not UTF-8, not JSON or whose ``step`` is not a
  non-negative integer: skipped with a warning by the readers (``read_metrics``,
  ``load_run``), dropped as a torn write or refused by ``truncate_metrics`` (resume).
* ``hhml-validate --only ""`` / ``--only ",,,"``: a usage error, not the whole suite.
* Atomic writes through a symbolic link rewrite the link's target; a FIFO, device or
  directory at the target is refused, not replaced.
* Configs: zero learning rates for both actor and critic, and an empty section, are
  refused by name.
* Run directories: ``--resume`` names a ``model_last.pt`` that went missing after
  checkpoints, and restarts a run killed before its first checkpoint from step 0.
* ``env.id`` naming a module (``mod:Env-v0``) is refused before anything is imported;
  ``hhml-analyze`` reads a run's ``config.yaml`` with the YAML limits.

Every input of the hardening issue has a test; those that need a fixture of another
module live beside it:

==========================================  ==============================================
input                                       test
==========================================  ==============================================
crafted ``model_last.pt`` (pickle)          test_training_checkpoint.py::
                                            test_pickled_sub_envs_are_refused_and_never_unpickled
YAML alias bomb, recursive alias            test_config.py::
                                            test_alias_bomb_is_refused_with_file_and_line,
                                            test_recursive_alias_is_a_config_error
sizes that cannot fit in memory             test_memory_preflight.py::
                                            test_train_refuses_a_config_that_cannot_fit
malformed ``metrics.jsonl``                 this module
``--only ""``, ``--json`` to a link / FIFO  this module
zero learning rates, empty section          this module
failed run: ``"status": "failed"``          test_training_device_native.py::
                                            test_a_failed_run_records_failed_and_the_reason
run killed before its first checkpoint      this module
``model_last.pt`` missing                   this module
snapshot after the same-step autoreset      test_training_device_native.py::test_snapshots_hold_
                                            the_final_field_of_an_episode_not_the_reset_one
dashboard: non-ASCII / huge numbers in URLs test_monitoring_server.py::
                                            test_bad_numbers_in_urls_are_answered_400_or_404_...
dashboard: bad snapshot name stops polling  test_monitoring_runs.py::
                                            test_a_bad_snapshot_name_does_not_stop_polling
dashboard: 50 clients for ``snapshot.png``  test_monitoring_snapshot_cache.py (one render per
                                            key); latency in benchmarks/bench_dashboard.py
config loader fuzzing (≥ 500 cases, slow)   test_config_fuzz.py
==========================================  ==============================================

Every test here has a time limit (a hang fails the test instead of blocking the suite).
"""

from __future__ import annotations

import json
import os
import stat
import warnings
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner, Result

from hhml.analysis.loading import load_run
from hhml.cli.train import main as train_main
from hhml.cli.validate import main as validate_main
from hhml.config.loader import dump_config, load_config
from hhml.errors import CheckpointError, ConfigError
from hhml.ml.training.checkpoint import load_checkpoint
from hhml.ml.training.metrics import read_metrics, truncate_metrics
from hhml.utils.atomic_io import (
    append_jsonl,
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_text,
    parse_metrics_line,
    scan_metrics_lines,
)

#: Malformed metrics lines (as bytes) and a fragment of the reason each must report.
BAD_LINES = {
    "not-utf8": (b'{"kind":"train","step":100,"x":"\xff\xfe"}', "not UTF-8"),
    "step-string": (b'{"kind":"train","step":"100"}', "'step' = '100' (str)"),
    "step-null": (b'{"kind":"train","step":null}', "'step' = None"),
    "step-nan": (b'{"kind":"train","step":NaN}', "'step' = nan (float)"),
    "step-1e400": (b'{"kind":"train","step":1e400}', "'step' = inf (float)"),
    "step-float": (b'{"kind":"train","step":100.0}', "'step' = 100.0 (float)"),
    "step-bool": (b'{"kind":"train","step":true}', "'step' = True (bool)"),
    "step-negative": (b'{"kind":"train","step":-5}', "'step' = -5 (int)"),
    "no-step": (b'{"kind":"train"}', "no 'step' key"),
    "array": (b"[1, 2]", "a JSON list"),
    "broken-json": (b'{"kind": "tr', "not valid JSON"),
    "huge-int": (b'{"step":' + b"9" * 5000 + b"}", "not valid JSON"),
    "deep-nesting": (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
}
CASES = pytest.mark.parametrize("bad", list(BAD_LINES))

#: A hang fails the test instead of blocking the suite.
pytestmark = pytest.mark.timeout(120)


def good(step: int) -> bytes:
    return b'{"kind":"train","step":%d,"episode/return_mean":1.5}' % step


def write_lines(path: Path, lines: list[bytes], newline_at_end: bool = True) -> bytes:
    data = b"\n".join(lines) + (b"\n" if newline_at_end else b"")
    path.write_bytes(data)
    return data


# ----------------------------------------------------------------------------- one line


@CASES
def test_parse_metrics_line_names_the_place_and_the_reason(bad: str) -> None:
    line, reason = BAD_LINES[bad]
    with pytest.raises(CheckpointError) as info:
        parse_metrics_line(line, "run/metrics.jsonl:7")
    message = str(info.value)
    assert message.startswith("run/metrics.jsonl:7 ") and reason in message
    assert len(message) < 300  # a huge line is not echoed in full


def test_parse_metrics_line_accepts_what_append_jsonl_writes(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    append_jsonl(path, {"kind": "eval", "step": 10**30, "name": "ünï", "x": 0.25})
    (line,) = scan_metrics_lines(path)
    assert line.error is None and line.terminated
    assert line.record == {"kind": "eval", "step": 10**30, "name": "ünï", "x": 0.25}
    assert parse_metrics_line(line.text.decode() + "\r\n", "here") == line.record


# ----------------------------------------------------------------------------- readers


@CASES
def test_read_metrics_warns_with_the_line_and_keeps_the_other_records(
    bad: str, tmp_path: Path
) -> None:
    path = tmp_path / "metrics.jsonl"
    write_lines(path, [good(0), BAD_LINES[bad][0], b"", good(200)])
    with pytest.warns(UserWarning, match=r"metrics\.jsonl:2 .*line skipped") as caught:
        records = read_metrics(path)
    assert len(caught) == 1 and BAD_LINES[bad][1] in str(caught[0].message)
    assert [r["step"] for r in records] == [0, 200]


@CASES
def test_load_run_warns_and_uses_the_other_lines(bad: str, tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("training:\n  seed: 0\n")
    write_lines(tmp_path / "metrics.jsonl", [good(0), good(100), BAD_LINES[bad][0], good(300)])
    with pytest.warns(UserWarning, match=rf"{tmp_path.name}/metrics\.jsonl:3 "):
        run = load_run(tmp_path)
    assert [r["step"] for r in run.records] == [0, 100, 300]
    steps, values = run.series("episode/return_mean")
    assert steps.tolist() == [0.0, 100.0, 300.0] and values.tolist() == [1.5] * 3


def test_a_torn_last_line_is_skipped_silently_but_a_complete_bad_one_warns(
    tmp_path: Path,
) -> None:
    path = tmp_path / "metrics.jsonl"
    write_lines(path, [good(0), b'{"kind":"train","st'], newline_at_end=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [r["step"] for r in read_metrics(path)] == [0]
    write_lines(path, [good(0), b'{"kind":"train","step":null}'])
    with pytest.warns(UserWarning, match=r"metrics\.jsonl:2 has 'step' = None"):
        assert [r["step"] for r in read_metrics(path)] == [0]


# ----------------------------------------------------------------------------- resume


@CASES
def test_truncate_refuses_a_bad_line_followed_by_data_and_changes_nothing(
    bad: str, tmp_path: Path
) -> None:
    path = tmp_path / "metrics.jsonl"
    before = write_lines(path, [good(0), good(100), BAD_LINES[bad][0], good(150), good(300)])
    with pytest.raises(CheckpointError, match=r"metrics\.jsonl:3 .*2 non-blank line\(s\) follow"):
        truncate_metrics(path, 200)
    assert path.read_bytes() == before


@CASES
def test_truncate_drops_a_bad_last_line_as_a_torn_write(bad: str, tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    write_lines(path, [good(0), good(100), good(300), BAD_LINES[bad][0]])
    with pytest.warns(UserWarning, match=r"metrics\.jsonl:4 .*torn last write"):
        assert truncate_metrics(path, 200) == 2
    assert path.read_bytes() == good(0) + b"\n" + good(100) + b"\n"


def test_truncate_refuses_two_bad_lines_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    before = write_lines(path, [good(0), b'{"step":"x"}', b"{torn"], newline_at_end=False)
    with pytest.raises(CheckpointError, match=r"metrics\.jsonl:2 .*1 non-blank line\(s\)"):
        truncate_metrics(path, 200)
    assert path.read_bytes() == before


def test_truncate_keeps_a_clean_file_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    before = write_lines(path, [good(0), good(100)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert truncate_metrics(path, 100) == 0
    assert path.read_bytes() == before


# ----------------------------------------------------------------------------- validate --only


@pytest.mark.parametrize("value", ["", ",,,", " , "])
def test_validate_only_naming_no_check_is_a_usage_error(value: str) -> None:
    result = CliRunner().invoke(validate_main, ["--only", value, "--quick"])
    assert result.exit_code == 2, result.output
    (error,) = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert "--only" in error and f"{value!r} names no check" in error
    for name in ("physics", "tensor-networks", "gft", "null-model", "gft-bounce"):
        assert name in error
    assert "PASS" not in result.output and "checks passed" not in result.output


# ----------------------------------------------------------------------------- atomic writes


def test_atomic_write_through_a_symlink_updates_the_target_and_keeps_the_link(
    tmp_path: Path,
) -> None:
    target = tmp_path / "data" / "results.json"
    target.parent.mkdir()
    target.write_text("old")
    os.chmod(target, 0o640)
    link = tmp_path / "latest.json"
    link.symlink_to(target)
    chain = tmp_path / "chain.json"
    chain.symlink_to(link)
    assert atomic_write_text(link, "new") == link
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o640
    atomic_write_bytes(chain, b"via chain")
    assert chain.is_symlink() and link.is_symlink() and target.read_bytes() == b"via chain"
    atomic_torch_save({"x": 1}, link)
    assert link.is_symlink() and target.stat().st_size > 0
    assert sorted(p.name for p in target.parent.iterdir()) == ["results.json"]  # no temp files


def test_atomic_write_through_a_dangling_symlink_creates_the_target(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "made.txt")
    atomic_write_text(link, "made")
    assert link.is_symlink() and (tmp_path / "made.txt").read_text() == "made"


@pytest.mark.parametrize("via_link", [False, True])
def test_atomic_write_refuses_a_fifo_and_leaves_it_alone(tmp_path: Path, via_link: bool) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    path = fifo
    if via_link:
        path = tmp_path / "link"
        path.symlink_to(fifo)
    with pytest.raises(ConfigError, match=r"pipe.* is a FIFO \(named pipe\), not a regular file"):
        atomic_write_text(path, "x")
    assert stat.S_ISFIFO(fifo.stat().st_mode) and path.is_symlink() == via_link
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"pipe", path.name})


def test_atomic_write_refuses_a_directory(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(ConfigError, match=r"dir is a directory, not a regular file"):
        atomic_write_bytes(tmp_path / "dir", b"x")
    assert (tmp_path / "dir").is_dir()


def test_validate_json_to_a_fifo_is_a_usage_error_before_running(tmp_path: Path) -> None:
    fifo = tmp_path / "out.json"
    os.mkfifo(fifo)
    result = CliRunner().invoke(validate_main, ["--only", "null-model", "--json", str(fifo)])
    assert result.exit_code == 2, result.output
    assert "is a FIFO (named pipe), not a regular file" in result.output
    assert "PASS" not in result.output and stat.S_ISFIFO(fifo.stat().st_mode)


# ----------------------------------------------------------------------------- configs

#: A Pendulum run of a few seconds; checkpoints at steps 100 and 200 (one env).
TRAIN_OVERRIDES = [
    "env.id=Pendulum-v1",
    "agent.hidden_size=16",
    "agent.learning_starts=50",
    "agent.batch_size=16",
    "agent.buffer_size=1000",
    "training.total_steps=200",
    "training.eval_every=100",
    "training.eval_episodes=1",
    "training.log_every=100",
    "training.checkpoint_every=100",
    "training.progress_bar=false",
    "training.tensorboard=false",
    "training.torch_threads=1",
    "training.device=cpu",
]
#: hhml-train arguments: the schema defaults (a config with no keys) and the overrides above
#: (without --config, hhml-train would start from the quickstart).
TRAIN_SMALL = [
    "--config",
    str(Path(__file__).parent / "data" / "schema_defaults.yaml"),
    *TRAIN_OVERRIDES,
]


def train_error(result: Result) -> str:
    """The one line of a usage error of hhml-train (exit code 2, no traceback)."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hhml-train: error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def test_zero_learning_rates_for_actor_and_critic_are_refused(tmp_path: Path) -> None:
    zero = ["agent.actor_learning_rate=0", "agent.critic_learning_rate=0.0"]
    run_dir = tmp_path / "run"
    line = train_error(
        CliRunner().invoke(train_main, [*TRAIN_SMALL, *zero, "--run-dir", str(run_dir)])
    )
    assert "agent.actor_learning_rate = 0 and agent.critic_learning_rate = 0" in line
    assert "set at least one in (0, 1]" in line
    assert not run_dir.exists()
    # one frozen network is a legitimate experiment
    assert load_config(None, [zero[0]]).agent.critic_learning_rate == 1e-3
    assert load_config(None, [zero[1]]).agent.actor_learning_rate == 1e-3


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("lattice:\n", 1),
        ("lattice:\n  # nu: 64\n", 1),
        ("lattice: {}\n", 1),
        ("simulation:\n  dt: 0.05\nlattice:\n", 3),
    ],
)
def test_an_empty_section_is_refused(tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert f"section 'lattice' in {path}, line {line} is empty" in message
    assert "valid: nu, nv, length," in message and "remove it to keep the defaults" in message
    result = CliRunner().invoke(train_main, ["--config", str(path), "--run-dir", str(tmp_path)])
    assert message in train_error(result)
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing set\n")
    assert load_config(empty) == load_config(None)  # an empty file still means the defaults


# ----------------------------------------------------------------------------- run directories


def write_run(root: Path, records: list[dict[str, object]], extra: tuple[str, ...] = ()) -> Path:
    """A run directory as a killed hhml-train leaves it (no model_last.pt)."""
    root.mkdir()
    (root / "config.yaml").write_text(dump_config(load_config(None, [*TRAIN_OVERRIDES, *extra])))
    (root / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root


def listing(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("evidence", ["metrics.jsonl", "metrics.json"])
def test_resume_names_a_model_last_that_went_missing_after_checkpoints(
    tmp_path: Path, evidence: str
) -> None:
    records: list[dict[str, object]] = [{"kind": "baseline", "step": 0}]
    if evidence == "metrics.jsonl":  # step 150 > the first checkpoint (step 100)
        records += [{"kind": "train", "step": 100}, {"kind": "train", "step": 150}]
    run = write_run(tmp_path / "run", records)
    if evidence == "metrics.json":
        (run / "metrics.json").write_text('{"status": "completed", "step": 200}')
    before = listing(run)
    line = train_error(CliRunner().invoke(train_main, ["--resume", str(run)]))
    assert f"{run / 'model_last.pt'} is missing although checkpoints were written" in line
    assert f"{run / evidence} " in line and "put the file back" in line
    assert "before its first checkpoint" not in line
    assert listing(run) == before


def test_resume_restarts_a_run_killed_before_its_first_checkpoint(tmp_path: Path) -> None:
    # killed right after logging step 100, before that step's checkpoint was written
    run = write_run(
        tmp_path / "run", [{"kind": "baseline", "step": 0}, {"kind": "train", "step": 100}]
    )
    config = (run / "config.yaml").read_bytes()
    (run / "metrics.json").write_text('{"status": "failed", "step": 100}')
    (run / "model_best.pt").write_bytes(b"stale")
    (run / "snapshots").mkdir()
    (run / "snapshots" / "step_0000000100.pt").write_bytes(b"stale")
    (run / "tensorboard").mkdir()
    (run / "tensorboard" / "events.out.tfevents.1").write_bytes(b"stale")
    (run / ".model_last.pt.x1y2.tmp").write_bytes(b"torn")

    result = CliRunner().invoke(train_main, ["--resume", str(run)])
    assert result.exit_code == 0, result.output
    (notice,) = [line for line in result.stderr.splitlines() if "restarting" in line]
    assert notice == (
        f"hhml-train: {run} stopped before its first checkpoint (no model_last.pt): "
        "restarting it from step 0 with its config.yaml; removed .model_last.pt.x1y2.tmp, "
        "metrics.json, metrics.jsonl, model_best.pt, snapshots/, tensorboard/"
    )
    assert (run / "config.yaml").read_bytes() == config
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"
    train_steps = [r["step"] for r in read_metrics(run / "metrics.jsonl") if r["kind"] == "train"]
    assert train_steps == [100, 200]  # one fresh history, nothing of the failed start
    assert not (run / "tensorboard").exists() and not list((run / "snapshots").iterdir())

    # the same run started afresh elsewhere ends with the same weights
    fresh = tmp_path / "fresh"
    result = CliRunner().invoke(train_main, [*TRAIN_SMALL, "--run-dir", str(fresh)])
    assert result.exit_code == 0, result.output
    restarted = load_checkpoint(run / "model_last.pt")["agent"]["networks"]
    reference = load_checkpoint(fresh / "model_last.pt")["agent"]["networks"]
    for name, tensors in reference.items():
        for key, tensor in tensors.items():
            assert torch.equal(restarted[name][key], tensor), f"{name}.{key}"


def test_restart_refuses_foreign_files_and_trajectory_changes(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [{"kind": "baseline", "step": 0}])
    (run / "notes.txt").write_text("mine")
    before = listing(run)
    line = train_error(CliRunner().invoke(train_main, ["--resume", str(run)]))
    assert "holds files a training run does not write (notes.txt); move them away" in line
    assert listing(run) == before
    (run / "notes.txt").unlink()
    before = listing(run)
    line = train_error(
        CliRunner().invoke(train_main, ["--resume", str(run), "agent.batch_size=32"])
    )
    assert "cannot change 'agent.batch_size'" in line and "resumable keys" in line
    assert listing(run) == before


def test_a_new_run_in_an_unstarted_run_directory_points_to_resume(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [{"kind": "baseline", "step": 0}])
    result = CliRunner().invoke(train_main, [*TRAIN_SMALL, "--run-dir", str(run)])
    line = train_error(result)
    assert "already exists and is not empty" in line
    assert f"it stopped before its first checkpoint: restart it with --resume {run}" in line


def test_an_env_id_that_names_a_module_is_refused_before_any_import() -> None:
    with pytest.raises(ConfigError, match="no ':'"):
        load_config(None, ["env.id=no_such_module_hhml:Foo-v0"])


def test_analysis_reads_a_run_config_with_the_yaml_limits(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("lattice:\n  nu: " + "9" * 5000 + "\n")
    with pytest.raises(CheckpointError, match=r"config\.yaml is not a readable config"):
        load_run(run)
    (run / "config.yaml").write_text("a: &a [*a]\n")  # a recursive alias
    with pytest.raises(CheckpointError, match="not a readable config"):
        load_run(run)
