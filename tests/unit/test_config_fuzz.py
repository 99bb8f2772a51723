"""Fuzz test of the config loader: hostile YAML and override strings give clean errors.

:func:`hhml.config.load_config` reads a generated YAML file (through
``hhml.config.yaml_io``) with generated ``section.key=value`` / ``group=name`` overrides,
against the repository's ``configs/`` groups. Generated inputs:

* structures: nested mappings / lists / scalars of every YAML type (null, bool, int incl.
  numbers of thousands of digits, float incl. inf/nan, str incl. control and non-BMP
  characters, binary, dates), under real section names and keys as well as random ones,
  with a ``defaults`` list choosing real and made-up group options; dumped in block or
  flow style, with shared sub-structures written as anchors and aliases;
* raw templates: alias bombs, self-referencing aliases, deep nesting, merge keys,
  explicit tags (``!!int``, ``!!timestamp``, ``!!python/object``, ...), huge numbers;
* damage: invalid UTF-8 bytes, a lone surrogate in an override, truncation;
* overrides: well-formed ones with random keys and values, and malformed ones.

Each case must either load or raise an :class:`~hhml.errors.HHmLError` subclass, within
5 s (hypothesis ``deadline``). The slow variant runs 600 cases; the fast one 50 (seeded, so
the default suite is reproducible).

Group and option names are checked before any file-system lookup (an over-long name or a
path is a ``ConfigError``; see the test at the end).
"""

from __future__ import annotations

import contextlib
import datetime
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hhml.config import field_specs, load_config
from hhml.config.schema import HHmLConfig
from hhml.config.yaml_io import load_yaml_text, parse_scalar
from hhml.errors import HHmLError

CONFIG_ROOT = Path(__file__).resolve().parents[2] / "configs"
SECTIONS: dict[str, list[str]] = {
    name: list(field_specs(section_type))
    for name, section_type in HHmLConfig.section_types().items()
}
GROUPS: dict[str, list[str]] = {
    group.name: sorted(p.stem for p in group.glob("*.yaml"))
    for group in sorted(CONFIG_ROOT.iterdir())
    if group.is_dir()
}
DEADLINE_MS = 5000

# -- scalars and names --------------------------------------------------------------------

short_text = st.text(max_size=20)
names = st.one_of(
    st.sampled_from([k for keys in SECTIONS.values() for k in keys]),
    st.sampled_from(list(SECTIONS) + list(GROUPS) + ["defaults"]),
    st.text(st.characters(codec="utf-8"), max_size=30),
)
# (a dumped int must stay within the 4300-digit str() limit; longer ones come as text)
huge_ints = st.integers(min_value=1, max_value=4300).map(lambda n: 10**n - 1)
scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**64), max_value=2**64),
    huge_ints,
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(codec="utf-8"), max_size=40),
    st.sampled_from(["mobius", "cylinder", "torus", "rk4", "auto", "cpu", "cuda:0", "1e-3"]),
    st.binary(max_size=10),
    st.dates(min_value=datetime.date(1, 1, 1)),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(names, st.integers(), st.booleans()), inner, max_size=4),
    ),
    max_leaves=12,
)


@st.composite
def sections(draw: st.DrawFn) -> dict[Any, Any]:
    """A config document: real sections with real and made-up keys, maybe defaults."""
    doc: dict[Any, Any] = {}
    for name in draw(st.lists(st.sampled_from(list(SECTIONS)), max_size=4, unique=True)):
        keys = st.one_of(st.sampled_from(SECTIONS[name]), names)
        doc[name] = draw(st.one_of(st.dictionaries(keys, values, max_size=5), values))
    if draw(st.booleans()):
        options = st.one_of(
            st.sampled_from([option for group in GROUPS.values() for option in group]),
            st.text(max_size=12),
            values,
        )
        entry = st.dictionaries(st.one_of(st.sampled_from(list(GROUPS)), names), options)
        doc["defaults"] = draw(st.one_of(st.lists(entry, max_size=4), values))
    extra = draw(st.dictionaries(names, values, max_size=2))
    return {**extra, **doc}


@st.composite
def with_aliases(draw: st.DrawFn) -> dict[Any, Any]:
    """A document in which one sub-structure is used several times (anchor + aliases)."""
    doc = draw(sections())
    shared = draw(st.one_of(st.dictionaries(names, values, min_size=1, max_size=4), values))
    for name in draw(st.lists(st.sampled_from([*SECTIONS, "x"]), min_size=2, max_size=4)):
        doc[name] = shared
    return doc


def dump(data: Any, flow: bool) -> str:
    return yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True, sort_keys=False)


@st.composite
def templates(draw: st.DrawFn) -> str:
    """Hand-shaped hostile YAML: bombs, recursion, deep nesting, tags, merges, numbers."""
    kind = draw(st.integers(0, 7))
    if kind == 0:  # alias bomb: each level lists the previous one `width` times
        width, depth = draw(st.integers(2, 12)), draw(st.integers(1, 12))
        lines = ["a0: &a0 [x, x]"]
        for level in range(1, depth + 1):
            items = ", ".join([f"*a{level - 1}"] * width)
            lines.append(f"a{level}: &a{level} [{items}]")
        return "\n".join(lines) + f"\nlattice: *a{depth}\n"
    if kind == 1:  # an alias inside the node it refers to
        return draw(
            st.sampled_from(
                [
                    "a: &a [*a]\n",
                    "a: &a {b: *a}\n",
                    "lattice: &l {nu: 8, self: *l}\n",
                    "a: &a [1, [2, *a]]\n",
                    "&r [*r]\n",
                ]
            )
        )
    if kind == 2:  # deep nesting, flow or block
        depth = draw(st.integers(50, 2000))
        if draw(st.booleans()):
            return "lattice: " + "[" * depth + "]" * depth + "\n"
        return "".join("  " * i + f"k{i}:\n" for i in range(min(depth, 400))) + "  " * 400 + "1\n"
    if kind == 3:  # explicit tags with random text
        tag = draw(
            st.sampled_from(
                [
                    "!!int",
                    "!!float",
                    "!!bool",
                    "!!null",
                    "!!str",
                    "!!timestamp",
                    "!!binary",
                    "!!set",
                    "!!omap",
                    "!!pairs",
                    "!!seq",
                    "!!map",
                    "!!python/object/apply:os.system",
                    "!!python/name:builtins.eval",
                    "!custom",
                ]
            )
        )
        text = draw(st.one_of(short_text, st.sampled_from(["1:30", "2001-13-45", "0x1g", "{a}"])))
        return f"lattice:\n  nu: {tag} {yaml.safe_dump(text, default_style=chr(34)).strip()}\n"
    if kind == 4:  # huge or odd numbers in a real key
        digits = draw(st.integers(1, 6000))
        number = draw(
            st.sampled_from(
                [
                    "9" * digits,
                    "-" + "1" * digits,
                    "0x" + "f" * digits,
                    "0o" + "7" * digits,
                    "1" + "_0" * digits,
                    f"1e{digits}",
                    f"-1e-{digits}",
                    "." + "5" * digits,
                    "0" * digits + "1",
                ]
            )
        )
        section = draw(st.sampled_from(list(SECTIONS)))
        key = draw(st.sampled_from(SECTIONS[section]))
        return f"{section}:\n  {key}: {number}\n"
    if kind == 5:  # merge keys, good and bad
        base = dump(draw(st.dictionaries(names, values, max_size=3)), flow=True).strip()
        merged = draw(st.sampled_from(["*b", "[*b, *b]", "1", "[1, *b]", "*nope"]))
        return f"base: &b {base}\nlattice:\n  <<: {merged}\n  nu: 8\n"
    if kind == 6:  # several documents, directives, odd keys
        return draw(
            st.sampled_from(
                [
                    "a: 1\n---\nb: 2\n",
                    "%YAML 1.1\n---\nlattice: {nu: 8}\n",
                    "%TAG ! tag:yaml.org,2002:python/\n---\nlattice: !object:os.system x\n",
                    "? [a, b]\n: 1\n",
                    "lattice: {[nu]: 1}\n",
                    "lattice:\n  ~: 1\n",
                    "- 1\n- 2\n",
                    "just text\n",
                    "",
                    "lattice:\n\tnu: 3\n",
                ]
            )
        )
    return dump(draw(values), flow=draw(st.booleans()))  # not a mapping at the top


@st.composite
def yaml_bytes(draw: st.DrawFn) -> bytes:
    """A config file's bytes: a dumped structure or a template, maybe damaged."""
    source = draw(st.integers(0, 2))
    if source == 0:
        text = dump(draw(sections()), flow=draw(st.booleans()))
    elif source == 1:
        text = dump(draw(with_aliases()), flow=draw(st.booleans()))
    else:
        text = draw(templates())
    data = text.encode("utf-8", "surrogatepass")
    damage = draw(st.integers(0, 5))
    if damage == 0 and data:  # an invalid UTF-8 byte sequence somewhere
        at = draw(st.integers(0, len(data)))
        bad = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80", b"\x00"]))
        data = data[:at] + bad + data[at:]
    elif damage == 1 and data:  # cut short
        data = data[: draw(st.integers(0, len(data)))]
    return data


# -- overrides ----------------------------------------------------------------------------

override_values = st.one_of(
    short_text,
    st.text(st.characters(codec="utf-8"), max_size=30),
    scalars.map(lambda v: dump(v, flow=True).strip().removesuffix("...").strip()),
    values.map(lambda v: dump(v, flow=True).strip()),
    st.sampled_from(
        [
            "",
            "'quoted'",
            '"\\ud800"',
            "\udcff",
            "!!int abc",
            "!!timestamp 2001-13-45",
            "!!python/object/apply:os.system ['true']",
            "&a [*a]",
            "[" * 300,
            "9" * 5000,
            "0x" + "f" * 5000,
            "1e400",
            "-.inf",
            ".nan",
            "~",
            "null",
            "yes",
            "0o17",
            "1_000",
        ]
    ),
)


@st.composite
def override(draw: st.DrawFn) -> str:
    """One override string: section.key=value, group=name, or malformed."""
    kind = draw(st.integers(0, 4))
    if kind == 0:
        section = draw(st.sampled_from(list(SECTIONS)))
        key = draw(st.one_of(st.sampled_from(SECTIONS[section]), names))
        return f"{section}.{key}={draw(override_values)}"
    if kind == 1:
        group = draw(st.one_of(st.sampled_from(list(GROUPS)), names))
        options = [option for choices in GROUPS.values() for option in choices]
        name = draw(st.one_of(st.sampled_from(options), st.text(max_size=30)))
        return f"{group}={name}"
    if kind == 2:
        return f"{draw(names)}.{draw(names)}={draw(override_values)}"
    if kind == 3:  # malformed
        return draw(
            st.one_of(
                st.text(st.characters(codec="utf-8", exclude_characters="="), max_size=30),
                st.sampled_from(["=", "=x", ".=", "a.=", ".b=1", "lattice=", "..=..", " = "]),
            )
        )
    return draw(st.text(max_size=40))


overrides = st.lists(override(), max_size=4)


# -- the property -------------------------------------------------------------------------


def load_case(data: bytes, items: list[str]) -> None:
    """``load_config`` on ``data`` with ``items``: it loads, or raises an ``HHmLError``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_bytes(data)
        with contextlib.suppress(HHmLError):
            load_config(path, items, config_root=CONFIG_ROOT)
        with contextlib.suppress(HHmLError):
            load_config(None, items, config_root=CONFIG_ROOT)


COMMON = {
    "deadline": DEADLINE_MS,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}


@pytest.mark.slow
@pytest.mark.timeout(900)
@settings(max_examples=400, **COMMON)  # type: ignore[arg-type]
@given(data=yaml_bytes(), items=overrides)
def test_fuzzed_documents_and_overrides_give_only_hhml_errors(
    data: bytes, items: list[str]
) -> None:
    load_case(data, items)


@pytest.mark.slow
@pytest.mark.timeout(900)
@settings(max_examples=200, **COMMON)  # type: ignore[arg-type]
@given(items=st.lists(override(), min_size=1, max_size=6), text=override_values)
def test_fuzzed_overrides_and_scalars_give_only_hhml_errors(items: list[str], text: str) -> None:
    load_case(b"", items)
    parse_scalar(text)  # never raises: text that is not YAML comes back as it is


@pytest.mark.timeout(300)
@settings(max_examples=50, derandomize=True, **COMMON)  # type: ignore[arg-type]
@given(data=yaml_bytes(), items=overrides)
def test_fuzzed_configs_fast(data: bytes, items: list[str]) -> None:
    load_case(data, items)


# -- the bugs the fuzzing found, each as a fixed regression case ---------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lattice:\n  nu: " + "9" * 5000 + "\n", r"line 2, column 7: integer '9+'\.\.\. "),
        ("lattice:\n  nu: 0x" + "f" * 4000 + "\n", "too large: at most 4300 decimal digits"),
        ("lattice:\n  nu: !!int abc\n", r"line 2, column 7: cannot read 'abc' as !!int"),
        ("lattice:\n  nu: !!int 1:30\n", r"cannot read '1:30' as !!int"),
        ("lattice:\n  nu: !!float abc\n", r"cannot read 'abc' as !!float"),
        ("lattice:\n  nu: !!bool abc\n", r"cannot read 'abc' as !!bool \(not one of its values"),
        ("lattice:\n  nu: !!timestamp 2001-13-45\n", r"as !!timestamp \(month must be in"),
        ("lattice: \udcff\n", r"character '\\udcff' at position 9 cannot be encoded"),
    ],
)
def test_values_python_cannot_convert_are_config_errors_with_the_line(
    text: str, message: str
) -> None:
    with pytest.raises(HHmLError, match=message):
        load_yaml_text(text, "f.yaml")


def test_an_undecodable_override_byte_and_a_huge_integer_override_are_config_errors() -> None:
    # argv holds an undecodable byte as a lone surrogate ('\udcff' for b'\xff')
    for value in ("\udcff", "9" * 5000, "0x" + "f" * 5000):
        with pytest.raises(HHmLError, match=r"lattice\.nu = .* has the wrong type"):
            load_config(None, [f"lattice.nu={value}"])
    assert parse_scalar("\udcff") == "\udcff"


def test_an_overlong_config_path_is_a_config_error() -> None:
    with pytest.raises(HHmLError, match="cannot read config file"):
        load_config("x" * 300 + ".yaml", config_root=CONFIG_ROOT)


@pytest.mark.parametrize("item", ["x" * 300 + "=a", "lattice=" + "x" * 300])
def test_an_overlong_group_or_option_name_is_a_config_error(item: str) -> None:
    with pytest.raises(HHmLError, match="is not a name"):
        load_config(None, [item], config_root=CONFIG_ROOT)
