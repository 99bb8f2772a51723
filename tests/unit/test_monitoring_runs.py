"""Tests of ``hhml.monitoring.runs``: tailing metrics.jsonl (torn lines, rewrites, bounds)
and watching a run directory."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
import torch

from hhml.errors import CheckpointError
from hhml.monitoring.runs import (
    MetricsTail,
    PollErrors,
    RunWatcher,
    clean_record,
    latest_snapshot,
    parse_count,
    resolve_run_dirs,
)
from hhml.monitoring.server import Dashboard, DashboardSettings
from hhml.utils.atomic_io import atomic_write_text

CONFIG = """\
env:
  id: hhml/MobiusVortex-v0
  task: target_density
  target_density: 0.03
agent:
  algorithm: td3
training:
  total_steps: 4000
"""


def line(step: int, **values: float) -> str:
    return json.dumps({"kind": "train", "step": step, "reward/total": step / 100, **values}) + "\n"


def append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)


def make_run(root: Path, steps: tuple[int, ...] = (100, 200)) -> Path:
    root.mkdir(parents=True)
    (root / "config.yaml").write_text(CONFIG, encoding="utf-8")
    for step in steps:
        append(root / "metrics.jsonl", line(step))
    return root


def test_partial_last_line_is_kept_until_its_newline_arrives(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    tail = MetricsTail(path)
    assert tail.poll() is False  # no file yet
    full = line(300)
    append(path, line(100) + line(200) + full[:25])
    assert tail.poll() is True
    assert [r["step"] for _, r in tail.records] == [100, 200]
    assert tail.poll() is False
    append(path, full[25:])
    assert tail.poll() is True
    assert [(seq, r["step"], r["reward/total"]) for seq, r in tail.records] == [
        (0, 100, 1.0),
        (1, 200, 2.0),
        (2, 300, 3.0),
    ]
    assert tail.skipped_lines == 0


def test_rewritten_file_starts_a_new_generation(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    append(path, line(100) + line(200) + line(300))
    tail = MetricsTail(path)
    tail.poll()
    generation = tail.generation
    # A resumed run drops the lines after its checkpoint by an atomic rewrite.
    atomic_write_text(path, line(100) + line(200))
    assert tail.poll() is True
    assert tail.generation == generation + 1
    assert [r["step"] for _, r in tail.records] == [100, 200]
    # Truncation in place (smaller file, same inode) also resets.
    with open(path, "r+", encoding="utf-8") as handle:
        handle.truncate(len(line(100)))
    assert tail.poll() is True
    assert tail.generation == generation + 2
    assert [r["step"] for _, r in tail.records] == [100]
    os.unlink(path)
    assert tail.poll() is True
    assert list(tail.records) == []


def test_history_is_bounded_and_clients_resume_from_their_cursor(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    append(path, "".join(line(step) for step in range(50)))
    tail = MetricsTail(path, history=10)
    tail.poll()
    assert len(tail.records) == 10
    assert [seq for seq, _ in tail.records] == list(range(40, 50))

    first = tail.since(None, None, limit=4)
    assert first.reset and first.more
    assert [r["step"] for r in first.records] == [40, 41, 42, 43]
    assert first.cursor == 44
    rest = tail.since(first.generation, first.cursor, limit=100)
    assert not rest.reset and not rest.more
    assert [r["step"] for r in rest.records] == list(range(44, 50))
    assert rest.cursor == 50
    assert tail.since(rest.generation, rest.cursor, limit=100).records == []

    append(path, line(50))
    tail.poll()
    new = tail.since(rest.generation, rest.cursor, limit=100)
    assert (new.reset, [r["step"] for r in new.records], new.cursor) == (False, [50], 51)

    # Fallen behind the history, from an older generation, or a cursor from the future.
    for generation, cursor in ((rest.generation, 3), (rest.generation + 1, 50), (0, 99)):
        batch = tail.since(generation, cursor, limit=2)
        assert batch.reset
        assert [r["step"] for r in batch.records] == [41, 42]


def test_malformed_and_oversized_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    huge = json.dumps({"step": 1, "blob": "x" * 5000}) + "\n"
    append(path, line(100) + "not json\n" + "[1, 2]\n" + huge + "\n" + line(200))
    tail = MetricsTail(path, max_line_bytes=1000)
    tail.poll()
    assert [r["step"] for _, r in tail.records] == [100, 200]
    assert tail.skipped_lines == 2

    # A line longer than the limit that is still being written does not grow the buffer.
    append(path, "{" + "1" * 3000)
    tail.poll()
    append(path, "}\n" + line(300))
    tail.poll()
    assert [r["step"] for _, r in tail.records] == [100, 200, 300]


def test_a_large_existing_file_is_read_from_its_end(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    append(path, "".join(line(step) for step in range(1000)))
    tail = MetricsTail(path, initial_bytes=len(line(999)) * 10 + 5)
    tail.poll()
    steps = [r["step"] for _, r in tail.records]
    assert steps == list(range(990, 1000))  # the cut first line is dropped


def test_reads_are_bounded_per_poll(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    append(path, "".join(line(step) for step in range(100)))
    tail = MetricsTail(path, max_read_bytes=len(line(10)) * 30)
    tail.poll()
    assert 0 < len(tail.records) <= 30
    while tail.poll():
        pass
    assert [r["step"] for _, r in tail.records] == list(range(100))


def test_clean_record_keeps_json_safe_scalars() -> None:
    record = {
        "step": 3,
        "ok": True,
        "nan": float("nan"),
        "inf": float("inf"),
        "x": 1.5,
        "nested": {"a": 1},
        "list": [1, 2],
        "text": "t" * 500,
        "k" * 300: 1,
    }
    cleaned = clean_record(record)
    assert cleaned["step"] == 3
    assert cleaned["ok"] is True
    assert cleaned["nan"] is None and cleaned["inf"] is None
    assert cleaned["x"] == 1.5
    assert "nested" not in cleaned and "list" not in cleaned
    assert len(cleaned["text"]) == 200
    assert cleaned["k" * 200] == 1


def test_resolve_run_dirs_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such directory"):
        resolve_run_dirs([tmp_path / "missing"])
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(CheckpointError, match="not a directory"):
        resolve_run_dirs([tmp_path / "file.txt"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="is not a run directory"):
        resolve_run_dirs([tmp_path / "empty"])


def test_resolve_run_dirs_expands_a_directory_of_runs(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    b = make_run(runs / "b")
    a = make_run(runs / "a")
    (runs / "not-a-run").mkdir()
    assert resolve_run_dirs([runs]) == [a, b]
    assert resolve_run_dirs([b, runs]) == [b, a]  # duplicates dropped, order kept


def test_latest_snapshot_is_the_highest_step(tmp_path: Path) -> None:
    assert latest_snapshot(tmp_path / "missing") is None
    for name in ("step_0000000900.pt", "step_0000001000.pt", "step_00000001xx.pt", "notes.pt"):
        (tmp_path / name).write_bytes(b"")
    assert latest_snapshot(tmp_path) == tmp_path / "step_0000001000.pt"


def test_run_watcher_info_follows_the_files(tmp_path: Path) -> None:
    root = make_run(tmp_path / "run<script>alert(1)")
    watcher = RunWatcher(root)
    assert watcher.poll() is True
    info = watcher.info()
    assert info["name"] == "run<script>alert(1)"
    assert info["status"] == "running"
    assert (info["step"], info["total_steps"]) == (200, 4000)
    assert (info["algorithm"], info["target_density"]) == ("td3", 0.03)
    assert (info["setpoint_low"], info["setpoint_high"]) == (None, None)
    assert info["snapshot_step"] is None
    assert watcher.config()["text"] == CONFIG
    version = watcher.info_version
    assert watcher.poll() is False
    assert watcher.info_version == version

    append(root / "metrics.jsonl", line(400))
    (root / "snapshots").mkdir()
    torch.save({"step": 400}, root / "snapshots" / "step_0000000400.pt")
    atomic_write_text(
        root / "metrics.json",
        json.dumps({"status": "completed", "step": 400, "best_eval": {"return_mean": 2.5}}),
    )
    assert watcher.poll() is True
    info = watcher.info()
    assert (info["status"], info["step"], info["snapshot_step"]) == ("completed", 400, 400)
    assert ["best_eval.return_mean", 2.5] in [list(row) for row in info["summary"]]
    assert watcher.info_version == version + 1


def test_parse_count_accepts_only_ascii_digits() -> None:
    assert [parse_count(t) for t in ("0", "007", "123456789012345")] == [0, 7, 123456789012345]
    # "²" passes str.isdigit() but not int(); "١" (Arabic-Indic one), " 1", "+1", "1_0"
    # pass int() but are not steps; 16+ digits exceed the limit (5000 would overflow int()).
    bad = ("", "²", "²²", "١", " 1", "1 ", "+1", "-1", "1_0", "1.0", "1e3", "9" * 16, "9" * 5000)
    assert [parse_count(t) for t in bad] == [None] * len(bad)
    assert parse_count("99", max_digits=1) is None


def test_latest_snapshot_ignores_names_that_are_not_ascii_steps(tmp_path: Path) -> None:
    names = ("step_0000000900.pt", "step_²².pt", "step_١٢٣٤٥.pt", "step_" + "9" * 200 + ".pt")
    for name in names:
        (tmp_path / name).write_bytes(b"")
    assert latest_snapshot(tmp_path) == tmp_path / "step_0000000900.pt"
    (tmp_path / "step_0000000900.pt").unlink()
    assert latest_snapshot(tmp_path) is None


def bad_snapshot_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "step_²².pt" in r.getMessage()]


def test_a_bad_snapshot_name_does_not_stop_polling(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = make_run(tmp_path / "bad")
    good = make_run(tmp_path / "good")
    dashboard = Dashboard([RunWatcher(bad), RunWatcher(good)], DashboardSettings())
    caplog.set_level(logging.INFO, logger="hhml.monitoring")
    assert dashboard.poll_once() == [0, 1]

    (bad / "snapshots").mkdir()
    (bad / "snapshots" / "step_²².pt").write_bytes(b"not a snapshot")
    for step in (300, 400, 500):
        append(good / "metrics.jsonl", line(step))
        append(bad / "metrics.jsonl", line(step))
        assert dashboard.poll_once() == [0, 1]
        assert dashboard.watchers[1].info()["step"] == step
        assert dashboard.watchers[0].info()["step"] == step  # the bad run's metrics go on too
    assert dashboard.watchers[0].info()["snapshot_step"] is None
    assert dashboard.poll_once() == []

    records = bad_snapshot_records(caplog)
    assert len(records) == 1  # logged once, not on every poll
    assert records[0].levelno == logging.WARNING
    assert str(bad) in records[0].getMessage()

    # A good snapshot beside the bad name is found; the bad name is not logged again.
    torch.save({"step": 600}, bad / "snapshots" / "step_0000000600.pt")
    assert dashboard.poll_once() == [0]
    assert dashboard.watchers[0].info()["snapshot_step"] == 600
    assert len(bad_snapshot_records(caplog)) == 1


def test_a_run_that_raises_while_polling_is_logged_once_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = make_run(tmp_path / "bad")
    good = make_run(tmp_path / "good")
    dashboard = Dashboard([RunWatcher(bad), RunWatcher(good)], DashboardSettings())
    dashboard.poll_once()
    caplog.set_level(logging.INFO, logger="hhml.monitoring")

    def broken_tail() -> bool:
        raise PermissionError(13, "Permission denied", str(bad / "metrics.jsonl"))

    # A failing file of a run: the other files of that run and the other run go on.
    monkeypatch.setattr(dashboard.watchers[0].tail, "poll", broken_tail)
    for step in (300, 400):
        append(good / "metrics.jsonl", line(step))
        assert dashboard.poll_once() == [1]
        assert dashboard.watchers[1].info()["step"] == step
    (bad / "config.yaml").write_text(CONFIG.replace("4000", "5000"), encoding="utf-8")
    os.utime(bad / "config.yaml", ns=(1, 1))  # a new mtime even on a coarse clock
    assert dashboard.poll_once() == [0]
    assert dashboard.watchers[0].info()["total_steps"] == 5000
    failed = [r for r in caplog.records if "metrics.jsonl failed" in r.getMessage()]
    assert len(failed) == 1
    assert "PermissionError" in failed[0].getMessage() and failed[0].exc_info is not None
    assert "metrics.jsonl" in dashboard.watchers[0].errors.failing

    # A whole run that raises (outside the per-file guard) is skipped by the dashboard.
    def broken_poll() -> bool:
        raise RuntimeError("disk gone")

    monkeypatch.setattr(dashboard.watchers[0], "poll", broken_poll)
    for step in (500, 600):
        append(good / "metrics.jsonl", line(step))
        assert dashboard.poll_once() == [1]
    assert len([r for r in caplog.records if "disk gone" in r.getMessage()]) == 1

    monkeypatch.undo()  # both fixed: the bad run reads its new lines, the recovery is logged
    append(bad / "metrics.jsonl", line(700))
    assert dashboard.poll_once() == [0]
    assert dashboard.watchers[0].info()["step"] == 700
    assert len([r for r in caplog.records if r.getMessage().endswith("works again")]) == 2


def test_poll_errors_log_a_new_kind_of_error_again(caplog: pytest.LogCaptureFixture) -> None:
    errors = PollErrors("owner")
    caplog.set_level(logging.INFO, logger="hhml.monitoring")

    def fail(exc: Exception) -> int:
        raise exc

    assert errors.run("part", lambda: fail(ValueError("a")), -1) == -1
    assert errors.run("part", lambda: fail(ValueError("b")), -1) == -1  # same kind: quiet
    assert errors.run("part", lambda: fail(OSError("c")), -1) == -1
    assert errors.failing == {"part": "OSError: c"}
    assert errors.run("part", lambda: 5, -1) == 5
    assert errors.failing == {}
    assert [r.levelname for r in caplog.records] == ["ERROR", "ERROR", "WARNING"]


def test_run_watcher_info_gives_the_set_point_range_of_the_set_point_task(tmp_path: Path) -> None:
    root = make_run(tmp_path / "run")
    config = CONFIG.replace("task: target_density", "task: setpoint_density").replace(
        "  target_density: 0.03\n", "  setpoint_low: 0.02\n  setpoint_high: 0.14\n"
    )
    (root / "config.yaml").write_text(config, encoding="utf-8")
    watcher = RunWatcher(root)
    watcher.poll()
    info = watcher.info()
    assert info["target_density"] is None  # not this task's target
    assert (info["setpoint_low"], info["setpoint_high"]) == (0.02, 0.14)
