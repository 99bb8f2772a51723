"""The command lines in the documentation use only options the console scripts have.

Every ``hhml-<tool> ... --flag`` written in README.md, the top-level records, docs/ and
docker/README.md is checked against the click command behind ``hhml-<tool>``, so a
renamed or removed option breaks this test instead of the reader's command.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from cli_commands import click_command, console_scripts

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = sorted(
    [
        *ROOT.glob("*.md"),
        *(ROOT / "docs").rglob("*.md"),
        ROOT / "docker" / "README.md",
        *(ROOT / "configs").rglob("*.yaml"),
        *(ROOT / "examples").rglob("*.md"),
    ]
)
_TOOLS = "|".join(sorted(name.removeprefix("hhml-") for name in console_scripts()))
_COMMAND = re.compile(rf"\b(hhml-(?:{_TOOLS}))\b([^`|\n]*)")
_FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")


def _scripts() -> dict[str, click.Command]:
    return {name: click_command(name) for name in console_scripts()}


def _options(command: click.Command) -> set[str]:
    names = {"--help"}
    for param in command.params:
        names.update(o for o in param.opts if o.startswith("--"))
        names.update(o for o in getattr(param, "secondary_opts", []) if o.startswith("--"))
    return names


def _uses() -> list[tuple[str, str, str]]:
    found = []
    for doc in DOCUMENTS:
        text = doc.read_text(encoding="utf-8").replace("\\\n", " ")
        for match in _COMMAND.finditer(text):
            for flag in _FLAG.findall(match.group(2)):
                found.append((doc.relative_to(ROOT).as_posix(), match.group(1), flag))
    return found


USES = _uses()


def test_documents_mention_the_commands() -> None:
    assert {tool for _, tool, _ in USES} == set(_scripts())
    assert len(USES) > 50


@pytest.mark.parametrize("tool", sorted(_scripts()))
def test_every_documented_option_exists(tool: str) -> None:
    options = _options(_scripts()[tool])
    wrong = sorted({(doc, flag) for doc, t, flag in USES if t == tool and flag not in options})
    assert not wrong, f"{tool} has no option(s) used in the docs: {wrong}; valid: {sorted(options)}"
