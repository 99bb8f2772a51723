"""Test helper: the console scripts of pyproject.toml and the click commands behind them."""

from __future__ import annotations

import functools
import importlib
import sys
from pathlib import Path

import click

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - black and mypy bring tomli on 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


@functools.lru_cache(maxsize=1)
def console_scripts() -> dict[str, str]:
    """``{script name: "module:attr"}`` of ``[project.scripts]``."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    scripts: dict[str, str] = data["project"]["scripts"]
    return scripts


def click_command(script: str) -> click.Command:
    """The click command a console script runs (asserting that it is one)."""
    target = console_scripts()[script]
    module_name, _, attr = target.partition(":")
    obj = getattr(importlib.import_module(module_name), attr)
    assert isinstance(obj, click.Command), f"{script} -> {target} is not a click command"
    return obj
