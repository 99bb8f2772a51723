"""Every example under examples/ runs at a tiny size and writes its plot, so docs never rot.

A new example needs an entry in ``COMMANDS`` (its smoke-test arguments); the test
``test_every_example_is_smoke_tested`` fails until it has one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES_DIR = Path(__file__).parents[2] / "examples"
SCIENCE = sorted((EXAMPLES_DIR / "science").glob("*.py"))

#: Example path (relative to examples/) -> arguments of its smoke run; "{out}" is replaced.
COMMANDS: dict[str, list[str]] = {
    "simulate_mobius.py": ["--out", "{out}", "simulation=quick", "lattice=small"],
    "train_sb3_mobius.py": ["--quick", "--out", "{out}"],
    "cgl_defect_turbulence.py": ["--quick", "--out", "{out}"],
    **{f"science/{p.name}": ["--quick", "--out", "{out}"] for p in SCIENCE},
}

#: The C++ kernels are compiled once per extensions directory: share the session's own
#: (HOME is a temporary folder in the runs below, so the default would rebuild them).
EXTENSIONS_DIR = os.environ.get(
    "TORCH_EXTENSIONS_DIR", str(Path.home() / ".cache" / "torch_extensions")
)


def test_every_example_is_smoke_tested() -> None:
    found = {p.relative_to(EXAMPLES_DIR).as_posix() for p in EXAMPLES_DIR.rglob("*.py")}
    assert found == set(COMMANDS), "add the new example's smoke arguments to COMMANDS"


@pytest.mark.parametrize("example", sorted(COMMANDS))
def test_example_runs_and_writes_a_png(example: str, tmp_path: Path) -> None:
    args = [a.replace("{out}", str(tmp_path)) for a in COMMANDS[example]]
    result = subprocess.run(
        [sys.executable, str(EXAMPLES_DIR / example), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={
            "MPLBACKEND": "Agg",
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "TORCH_EXTENSIONS_DIR": EXTENSIONS_DIR,
        },
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert any(p.stat().st_size > 1000 for p in tmp_path.glob("*.png"))
