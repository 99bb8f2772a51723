"""The kernel registry, the build folder and the parallel build of every C++ kernel."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hhml.utils import cpp_build
from hhml.utils.cpp_build import KERNELS, BuildResult, CppKernel, build_kernels, kernel

SRC = Path(cpp_build.__file__).resolve().parents[1]


def test_the_registry_names_every_kernel_of_the_package() -> None:
    found = set()
    for path in SRC.rglob("*.py"):
        for name in re.findall(r"^(\w+) = CppKernel\(", path.read_text(), flags=re.MULTILINE):
            module = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
            found.add(f"{module}:{name}")
    assert found == set(KERNELS)
    assert all(isinstance(kernel(ref), CppKernel) for ref in KERNELS)


def test_a_reference_to_something_else_is_refused() -> None:
    with pytest.raises(
        TypeError, match=re.escape("hhml.utils.cpp_build:STALE_LOCK_SECONDS is not a CppKernel")
    ):
        kernel("hhml.utils.cpp_build:STALE_LOCK_SECONDS")


def test_the_extensions_root_is_where_the_loaded_kernels_live() -> None:
    # (subprocesses given this folder reuse the session's builds instead of rebuilding)
    k = kernel("hhml.ml.env.measure_kernel:KERNEL")
    module = k.load()
    if module is None:
        pytest.skip(f"the measurement kernel is unavailable: {k.status.reason}")
    assert Path(module.__file__).resolve().parent == cpp_build.extensions_root().resolve() / (
        k.extension
    )


def test_building_in_worker_processes_reports_each_kernel() -> None:
    refs = list(KERNELS[-2:])
    results = build_kernels(refs, workers=2)
    assert [r.ref for r in results] == refs
    for r in results:
        k = kernel(r.ref)
        assert r.extension == k.extension
        k.load()  # the same outcome as in this process
        assert (r.ok, r.reason) == (k.status.ok, k.status.reason)


def test_a_disabled_kernel_is_reported_with_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HHML_CPP_KERNELS", "0")  # (the spawned worker inherits it)
    (result,) = build_kernels(KERNELS[:1], workers=1)
    assert not result.ok
    assert result.reason == "disabled by HHML_CPP_KERNELS=0"


def test_the_command_lists_each_kernel_and_fails_if_one_is_unavailable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    results = [
        BuildResult("a:K", "hhml_a_v1", True, "", 41.25),
        BuildResult("b:K", "hhml_b_v2", False, "RuntimeError: no compiler", 0.5),
    ]
    seen: dict[str, object] = {}

    def fake(refs: object = KERNELS, workers: int | None = None) -> list[BuildResult]:
        seen["workers"] = workers
        return results

    monkeypatch.setattr(cpp_build, "build_kernels", fake)
    assert cpp_build.main(["--workers", "3"]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert seen["workers"] == 3
    assert lines[0].split() == ["hhml_a_v1", "41.2", "s", "built"]
    assert lines[1].split()[:4] == ["hhml_b_v2", "0.5", "s", "unavailable:"]
    assert lines[1].endswith("RuntimeError: no compiler")
    assert lines[2].startswith("1 of 2 kernels built in ")
    assert "torch code runs in place" in err
    monkeypatch.setattr(cpp_build, "build_kernels", lambda refs=KERNELS, workers=None: results[:1])
    assert cpp_build.main([]) == 0


def test_a_bad_worker_count_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cpp_build.main(["--workers", "0"])
    assert exc.value.code == 2
    assert "--workers must be >= 1, got 0" in capsys.readouterr().err
