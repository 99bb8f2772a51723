"""Fixtures shared by the unit tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` imported as the module ``<name>`` (the scripts are not a
    package)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def device_check() -> ModuleType:
    """``benchmarks/device_check.py``."""
    return _load_benchmark("device_check")


@pytest.fixture(scope="module")
def bench_env() -> ModuleType:
    """``benchmarks/bench_env.py``."""
    return _load_benchmark("bench_env")
