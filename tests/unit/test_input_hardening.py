"""Malformed inputs give clean, located errors or warnings, never tracebacks or lost data.

* ``metrics.jsonl`` lines that are not UTF-8, not JSON or whose ``step`` is not a
  non-negative integer: skipped with a warning by the readers (``read_metrics``,
  ``load_run``), dropped as a torn write or refused by ``truncate_metrics`` (resume).
* ``hhml-validate --only ""`` / ``--only ",,,"``: a usage error, not the whole suite.
* Atomic writes through a symbolic link rewrite the link's target; a FIFO, device or
  directory at the target is refused, not replaced.
"""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from hhml.analysis.loading import load_run
from hhml.cli.validate import main as validate_main
from hhml.errors import CheckpointError, ConfigError
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
