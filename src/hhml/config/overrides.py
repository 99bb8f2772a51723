"""The command-line override grammar (a Hydra-compatible subset) and ``${...}`` interpolation.

An override is one of::

    section.key=VALUE        set a key               (dynamics.damping=0.1)
    group=OPTION             select a group file     (lattice=small)
    +NAME=VALUE, ++NAME=VALUE  the same as NAME=VALUE (accepted for Hydra compatibility)
    ~section.key             reset a key to its schema default
    ~section.key=VALUE       the same, only if the key currently holds VALUE
    ~group                   drop the group from the defaults list
    ~group=OPTION            the same, only if OPTION is the selected one

VALUE is a YAML scalar (``1e-3``, ``true``, ``cylinder``; a string key takes the text
as it is unless it is quoted), a list ``[a,b,c]`` (list keys only: :data:`LIST_KEYS`),
and may hold interpolations ``${section.key}`` (``\\${`` is a literal ``${``). Under
``hhml-train -m`` a VALUE with commas outside brackets and quotes (``a,b,c``) is a sweep
over its items (:func:`sweep_items`). ``docs/configuration.md`` documents the grammar.

This module parses; :mod:`hhml.config.loader` applies overrides and resolves
interpolations after merging.

Public names: ``LIST_KEYS``, ``OVERRIDE_FORMS``, ``Override``, ``Reference``,
``parse_override``, ``split_top_level``, ``sweep_items``, ``list_items``,
``interpolation_parts``, ``escape``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hhml.errors import ConfigError

__all__ = [
    "LIST_KEYS",
    "OVERRIDE_FORMS",
    "Override",
    "Reference",
    "escape",
    "interpolation_parts",
    "list_items",
    "parse_override",
    "split_top_level",
    "sweep_items",
]

#: The keys that hold a list. A list is stored as its comma-separated items in one
#: string (``training.baselines: random,midpoint``); ``key=[a,b]`` on the command line
#: and ``key: [a, b]`` in a file are the same value.
LIST_KEYS: frozenset[str] = frozenset({"training.baselines"})

#: The forms named by "malformed override" messages.
OVERRIDE_FORMS = (
    "expected 'section.key=value' (e.g. 'dynamics.damping=0.1') "
    "or 'group=name' (e.g. 'lattice=small'), optionally prefixed by '+' or '++', "
    "or '~section.key' / '~group' (reset)"
)

_PREFIXES = ("++", "+", "~")
_OPEN = {"[": "]", "(": ")", "{": "}"}
_CLOSE = {v: k for k, v in _OPEN.items()}
_REFERENCE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*")
_SWEEP_FUNCTION = re.compile(r"\s*(range|choice|interval|glob|tag|sort|shuffle)\s*\(")


@dataclass(frozen=True)
class Override:
    """One parsed command-line override.

    Attributes
    ----------
    text : str
        The override as given (for messages).
    prefix : str
        ``""``, ``"+"``, ``"++"`` or ``"~"``.
    name : str
        ``"section.key"`` or a group name, stripped.
    value : str or None
        The text after the first ``=`` (stripped), or None for ``~name``.
    """

    text: str
    prefix: str
    name: str
    value: str | None

    @property
    def is_group(self) -> bool:
        """Whether the override names a config group (no ``.`` in the name)."""
        return "." not in self.name

    @property
    def where(self) -> str:
        """``override '<text>'``: how messages name this override."""
        return f"override {self.text!r}"


def parse_override(text: str) -> Override:
    """Parse one override string (module docstring for the grammar).

    Raises
    ------
    ConfigError
        Not a string, no ``=`` (except after ``~``), an empty name or option, or a
        repeated/mixed prefix; the message quotes the override and the valid forms.
    """
    if not isinstance(text, str):
        raise ConfigError(f"override {text!r} is not a string; {OVERRIDE_FORMS}")
    name, sep, value = text.partition("=")
    name = name.strip()
    prefix = next((p for p in _PREFIXES if name.startswith(p)), "")
    name = name[len(prefix) :].strip()
    if name.startswith(_PREFIXES):
        raise ConfigError(
            f"malformed override {text!r}: one prefix at most ('+', '++' or '~'); "
            f"{OVERRIDE_FORMS}"
        )
    if not name or (not sep and prefix != "~"):
        raise ConfigError(f"malformed override {text!r}; {OVERRIDE_FORMS}")
    stripped = value.strip() if sep else None
    if "." not in name and stripped == "":
        raise ConfigError(
            f"malformed override {text!r}: no option name after '='; {OVERRIDE_FORMS}"
        )
    return Override(text, prefix, name, stripped)


def split_top_level(text: str, where: str) -> list[str]:
    """Split ``text`` at the commas outside brackets, braces, parentheses and quotes.

    Items are stripped. ``"a,[b,c],'d,e'"`` gives ``["a", "[b,c]", "'d,e'"]``.

    Raises
    ------
    ConfigError
        An unbalanced bracket or an unclosed quote (naming ``where``).
    """
    items: list[str] = []
    stack: list[str] = []
    quote = ""
    start = 0
    for index, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in _OPEN:
            stack.append(char)
        elif char in _CLOSE:
            if not stack or stack[-1] != _CLOSE[char]:
                raise ConfigError(
                    f"unbalanced {char!r} at character {index + 1} of {text!r} ({where})"
                )
            stack.pop()
        elif char == "," and not stack:
            items.append(text[start:index].strip())
            start = index + 1
    if quote:
        raise ConfigError(f"unclosed quote {quote} in {text!r} ({where})")
    if stack:
        raise ConfigError(f"unclosed {stack[-1]!r} in {text!r} ({where})")
    items.append(text[start:].strip())
    return items


def sweep_items(text: str, where: str) -> list[str]:
    """The values of a ``-m`` sweep value ``a,b,c`` (one item when there is no comma).

    Raises
    ------
    ConfigError
        An empty item (``a,,b``), a Hydra sweep function (``range(1,3)``), or
        unbalanced brackets or quotes.
    """
    if _SWEEP_FUNCTION.match(text):
        raise ConfigError(
            f"sweep functions such as {text.split('(')[0].strip()}(...) are not supported "
            f"({where}); list the values instead, e.g. key=1,2,3"
        )
    items = split_top_level(text, where)
    if len(items) > 1 and any(item == "" for item in items):
        raise ConfigError(f"empty value in the sweep {text!r} ({where}); write a,b,c")
    return items


def list_items(text: str, where: str) -> list[str] | None:
    """The items of a list value ``[a,b,c]`` (stripped texts), or None if ``text`` is no list.

    ``[]`` gives ``[]``.

    Raises
    ------
    ConfigError
        A nested list or mapping item, an empty item, or unbalanced brackets or quotes.
    """
    stripped = text.strip()
    if not stripped.startswith("["):
        return None
    items = split_top_level(stripped, where)
    if len(items) != 1 or not stripped.endswith("]"):
        raise ConfigError(f"malformed list {stripped!r} ({where}); write [a,b,c]")
    inner = stripped[1:-1].strip()
    if not inner:
        return []
    parts = split_top_level(inner, where)
    for part in parts:
        if part == "" or part[0] in _OPEN:
            raise ConfigError(
                f"list {stripped!r} ({where}) has an empty or nested item; "
                "a list holds plain values: [a,b,c]"
            )
    return parts


@dataclass(frozen=True)
class Reference:
    """An interpolation ``${section.key}`` inside a value.

    Attributes
    ----------
    path : str
        The referenced dotted key.
    """

    path: str

    def __str__(self) -> str:
        return "${" + self.path + "}"


def interpolation_parts(text: str, where: str) -> list[str | Reference]:
    """Split ``text`` into literal strings and :class:`Reference` s.

    ``\\${`` is a literal ``${`` (unescaped in the returned text). Empty literals are
    left out, so ``"${a.b}"`` gives ``[Reference("a.b")]``.

    Raises
    ------
    ConfigError
        An unclosed ``${``, or a reference that is not ``section.key`` (a resolver
        ``${oc.env:X}``, a relative ``${.key}``, a nested ``${a.${b.c}}``).
    """
    parts: list[str | Reference] = []
    literal: list[str] = []
    index = 0
    while index < len(text):
        if text.startswith("\\${", index):
            literal.append("${")
            index += 3
            continue
        if not text.startswith("${", index):
            literal.append(text[index])
            index += 1
            continue
        end = text.find("}", index + 2)
        if end < 0:
            raise ConfigError(
                f"unclosed interpolation in {text!r} ({where}); write ${{section.key}}"
            )
        inner = text[index + 2 : end].strip()
        if not _REFERENCE.fullmatch(inner):
            if ":" in inner:
                detail = "resolvers (${name:...}) are not supported"
            elif "${" in inner:
                detail = "nested interpolations are not supported"
            else:
                detail = "it must name a key as 'section.key'"
            raise ConfigError(
                f"interpolation ${{{inner}}} in {text!r} ({where}): {detail}, "
                "e.g. ${training.seed}"
            )
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(Reference(inner))
        index = end + 1
    if literal:
        parts.append("".join(literal))
    return parts


def escape(text: str) -> str:
    """``text`` with every ``${`` written ``\\${``, so that it reloads as the same string."""
    return text.replace("${", "\\${")
