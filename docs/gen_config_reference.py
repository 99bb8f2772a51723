"""Regenerate ``docs/config_reference.md``: every config key with its default, range and meaning.

Every entry comes from the schema (the ``spec`` of each field of each section class in
``hhml.config``), so the reference cannot drift from the validation.

Usage (from the repository root, with hhml installed)::

    python docs/gen_config_reference.py           # rewrite docs/config_reference.md
    python docs/gen_config_reference.py --check   # exit 1 if it is stale

The script is excluded from the site (``exclude_docs`` in ``mkdocs.yml``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from hhml.config.schema import HHmLConfig
from hhml.config.specs import field_specs, format_value

OUT = Path(__file__).resolve().parent / "config_reference.md"

HEADER = """# Config reference

Every key of the seven config sections, generated from the schema
(`python docs/gen_config_reference.py`; do not edit by hand). Set a key in a YAML file
(`section:` then `key: value`) or on the command line as `section.key=value`; a value
outside "valid" is refused with a message naming the key. The control ranges the agent
steers within are the `controls` section; [parameters.md](parameters.md) explains the 23
controls and [configuration.md](configuration.md) how files, groups and overrides compose.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    """The whole Markdown page."""
    parts = [HEADER]
    for section, section_type in HHmLConfig.section_types().items():
        defaults = {
            f.name: f.default
            for f in dataclasses.fields(section_type)
            if f.default is not dataclasses.MISSING
        }
        parts.append(f"\n## `{section}`\n\n")
        doc = (section_type.__doc__ or "").strip().splitlines()
        if doc:
            parts.append(_cell(doc[0]) + "\n\n")
        parts.append("| key | default | valid | meaning |\n|---|---|---|---|\n")
        for name, spec in field_specs(section_type).items():
            default = format_value(defaults[name]) if name in defaults else "—"
            meaning = spec.doc + (f" ({spec.symbol})" if spec.symbol else "")
            parts.append(
                f"| `{section}.{name}` | `{_cell(default)}` | {_cell(spec.allowed())} "
                f"| {_cell(meaning)} |\n"
            )
    return "".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is stale: run python docs/gen_config_reference.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
