"""Every example under examples/ runs at a tiny size and writes its plot, so docs never rot.

A new example needs an entry in ``COMMANDS`` (its smoke-test arguments); the test
``test_every_example_is_smoke_tested`` fails until it has one. Modules whose name starts
with ``_`` (``science/_common.py``) are helpers, not examples. The science examples take
``key=value`` overrides; an unknown key is a one-line error with exit status 2.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from hhml.utils.cpp_build import extensions_root

EXAMPLES_DIR = Path(__file__).parents[2] / "examples"


def _is_example(path: Path) -> bool:
    """A script, not a helper module (``_common.py``)."""
    return not path.name.startswith("_")


SCIENCE = sorted(p for p in (EXAMPLES_DIR / "science").glob("*.py") if _is_example(p))

#: Example path (relative to examples/) -> arguments of its smoke run; "{out}" is replaced.
COMMANDS: dict[str, list[str]] = {
    "simulate_mobius.py": ["--out", "{out}", "simulation=quick", "lattice=small"],
    "train_sb3_mobius.py": ["--quick", "--out", "{out}"],
    "cgl_defect_turbulence.py": ["--quick", "--out", "{out}"],
    "train_td3.py": ["--quick", "--out", "{out}"],
    "analyze_run.py": ["--quick", "--out", "{out}"],
    "simulate_topologies.py": ["--quick", "--out", "{out}"],
    **{f"science/{p.name}": ["--quick", "--out", "{out}"] for p in SCIENCE},
}

#: The C++ kernels are compiled once per extensions directory: share the session's own
#: (HOME is a temporary folder in the runs below, so the default would rebuild them; the
#: folder is torch's per-Python one, e.g. ``~/.cache/torch_extensions/py311_cpu``).
EXTENSIONS_DIR = str(extensions_root())


def test_every_example_is_smoke_tested() -> None:
    found = {
        p.relative_to(EXAMPLES_DIR).as_posix() for p in EXAMPLES_DIR.rglob("*.py") if _is_example(p)
    }
    assert found == set(COMMANDS), "add the new example's smoke arguments to COMMANDS"


def _run(example: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES_DIR / example), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={
            "MPLBACKEND": "Agg",
            "PATH": "/usr/bin:/bin",
            "HOME": str(cwd),
            "TORCH_EXTENSIONS_DIR": EXTENSIONS_DIR,
        },
    )


@pytest.mark.parametrize("example", sorted(COMMANDS))
def test_example_runs_and_writes_a_png(example: str, tmp_path: Path) -> None:
    args = [a.replace("{out}", str(tmp_path)) for a in COMMANDS[example]]
    result = _run(example, args, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert any(p.stat().st_size > 1000 for p in tmp_path.glob("*.png"))


@pytest.mark.parametrize("script", [p.name for p in SCIENCE])
def test_science_example_rejects_an_unknown_override(script: str, tmp_path: Path) -> None:
    result = _run(f"science/{script}", ["--quick", "--out", str(tmp_path), "bogus_key=1"], tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "unknown key 'bogus_key'" in lines[0] and "valid: " in lines[0]
    assert not list(tmp_path.glob("*.png"))


def _science_common() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "science_common", EXAMPLES_DIR / "science" / "_common.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_science_parameters_resolve_defaults_quick_flags_and_overrides() -> None:
    common = _science_common()
    params = (
        common.Param("steps", 100, "steps", quick=10, minimum=1),
        common.Param("rate", 0.5, "rate"),
        common.Param("layers", 2, "layers", quick=1),
    )
    parser = common.build_parser("test", params, Path("out"), "quick")
    parser.add_argument("--layers", type=int, default=None)

    _, plain = common.parse_parameters(parser, params, [])
    assert plain == {"steps": 100, "rate": 0.5, "layers": 2}
    _, quick = common.parse_parameters(parser, params, ["--quick", "rate=1e-3"])
    assert quick == {"steps": 10, "rate": 0.001, "layers": 1}
    # a flag and an override win over --quick; the last override wins
    _, mixed = common.parse_parameters(
        parser, params, ["steps=7", "--quick", "--layers", "5", "steps=8", "rate=2"]
    )
    assert mixed == {"steps": 8, "rate": 2.0, "layers": 5}
    assert isinstance(mixed["rate"], float)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("nope=3", "unknown key 'nope' in override 'nope=3'; valid: 'steps', 'rate'"),
        ("steps", "malformed override 'steps'"),
        ("steps=0", "steps = 0 (override 'steps=0') is not valid; it must be an integer ≥ 1"),
        ("steps=2.5", "steps = 2.5"),
        ("rate=inf", "it must be a finite number"),
        ("rate=abc", "rate = 'abc'"),
    ],
)
def test_science_override_errors_name_the_key(
    override: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    common = _science_common()
    params = (common.Param("steps", 100, "steps", minimum=1), common.Param("rate", 0.5, "rate"))
    parser = common.build_parser("test", params, Path("out"), "quick")
    with pytest.raises(SystemExit) as exit_info:
        common.parse_parameters(parser, params, [override])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
