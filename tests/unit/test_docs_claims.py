"""What the documentation names exists: paths, config keys, group options, Python names.

Every backticked ``path`` under a top-level directory of the repository, ``section.key``
of the config schema, ``group=option`` override and ``hhml.<module>[.<name>]`` written in
README.md, the top-level records, docs/, examples/ and docker/README.md is checked against
the repository, the schema, the packaged config groups and the importable package, so a
renamed file, key, option or function breaks this test instead of the reader's command.
(CLI options are checked by test_docs_commands.py.)
"""

from __future__ import annotations

import importlib
import re
from dataclasses import fields
from pathlib import Path

import pytest

from hhml.config.loader import packaged_config_root
from hhml.config.schema import HHmLConfig
from hhml.config.specs import field_specs

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = sorted(
    [
        *ROOT.glob("*.md"),
        *(ROOT / "docs").rglob("*.md"),
        *(ROOT / "examples").rglob("*.md"),
        ROOT / "docker" / "README.md",
    ]
)
_CODE = re.compile(r"`([^`\n]+)`")
_TOP = ("src", "configs", "docs", "examples", "benchmarks", "tests", "docker", ".ci")
_PATH = re.compile(rf"^(?:{'|'.join(re.escape(t) for t in _TOP)})/[\w./-]*[\w/]$")
_SECTIONS = {f.name: f.type for f in fields(HHmLConfig)}
_KEY = re.compile(rf"^({'|'.join(_SECTIONS)})\.([a-z_][a-z0-9_]*)$")
_GROUP = re.compile(r"^\+{0,2}([a-z_]+)=([a-z_0-9]+)$")
#: Options the docs add in a user directory (``--config-dir``) in their examples.
USER_OPTIONS = {"agent=mine"}
_PYTHON = re.compile(r"^hhml(?:\.[A-Za-z_][A-Za-z0-9_]*)+$")


def _spans() -> list[tuple[str, str]]:
    found = []
    for doc in DOCUMENTS:
        for match in _CODE.finditer(doc.read_text(encoding="utf-8")):
            found.append((doc.relative_to(ROOT).as_posix(), match.group(1).strip()))
    return found


SPANS = _spans()


def _section_keys() -> dict[str, set[str]]:
    config = HHmLConfig()
    return {name: set(field_specs(getattr(config, name))) for name in _SECTIONS}


def test_documented_paths_exist() -> None:
    paths = [(doc, text) for doc, text in SPANS if _PATH.match(text) and "*" not in text]
    assert len(paths) > 30
    missing = sorted({(doc, p) for doc, p in paths if not (ROOT / p).exists()})
    assert not missing, f"documented paths that do not exist: {missing}"


def test_documented_config_keys_exist() -> None:
    keys = _section_keys()
    files = ("png", "json", "jsonl", "md", "yaml", "pt", "h5", "txt", "csv", "gif", "mp4")
    used = [
        (doc, m.group(1), m.group(2))
        for doc, text in SPANS
        if (m := _KEY.match(text)) and m.group(2) not in files  # agent.png is a file
    ]
    assert len(used) > 30
    wrong = sorted({(doc, f"{s}.{k}") for doc, s, k in used if k not in keys[s]})
    assert not wrong, f"documented config keys not in the schema: {wrong}"


def test_documented_group_options_exist() -> None:
    used = []
    for doc, text in SPANS:
        for part in text.split():
            match = _GROUP.match(part)
            known = match and match.group(1) in {*_SECTIONS, "experiment"}
            if match and known and part.lstrip("+") not in USER_OPTIONS:
                used.append((doc, match.group(1), match.group(2)))
    assert len(used) > 5
    root = packaged_config_root()
    wrong = sorted(
        {(doc, f"{g}={o}") for doc, g, o in used if not (root / g / f"{o}.yaml").is_file()}
    )
    assert not wrong, f"documented group options that are not packaged: {wrong}"


def _resolves(name: str) -> bool:
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_documented_python_names_resolve() -> None:
    names = sorted({(doc, text) for doc, text in SPANS if _PYTHON.match(text)})
    assert len(names) > 20
    wrong = [(doc, name) for doc, name in names if not _resolves(name)]
    assert not wrong, f"documented hhml names that do not import: {wrong}"


@pytest.mark.parametrize("word", ["seven"])
def test_the_section_count_in_the_configuration_docs(word: str) -> None:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert f"{word} sections" in text and len(_SECTIONS) == 7
