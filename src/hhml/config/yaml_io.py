"""YAML reading and writing for config files.

PyYAML implements YAML 1.1, where ``1e-3`` is a *string*, ``010`` is octal 8,
``no`` is ``False`` and ``2024-01-01`` is a date. Config files are written by
people who expect the YAML 1.2 core schema (and Python): ``1e-3`` is a float,
``010`` is ten, ``no`` and ``2024-01-01`` are strings. :class:`ConfigLoader`
implements those rules; :class:`ConfigDumper` quotes any string that either rule
set would read as something else, so dumps read back identically in both.

Reading also records the line of every key (for messages) and rejects duplicate
keys, which PyYAML would otherwise resolve silently in favour of the last one.

Anchors and aliases (``&base`` / ``*base``, ``<<: *base``) are allowed, but a
document may expand to at most :data:`MAX_YAML_NODES` nodes, counting an aliased
node once per use, and nest at most :data:`MAX_YAML_DEPTH` levels deep; an alias
inside the node it refers to is an error. This turns an "alias bomb" (a few
hundred bytes that expand to billions of nodes) or a self-referencing alias into a
:class:`ConfigError` naming the file and line instead of a hang or a
``RecursionError``.

A value its explicit tag cannot make (``!!int abc``, ``!!timestamp 2001-13-45``) and
an integer of more than :data:`MAX_INT_DIGITS` digits are :class:`ConfigError` s with
the line as well, and so is text that cannot be encoded (a lone surrogate from an
undecodable command-line byte).

Public names: ``ConfigLoader``, ``ConfigDumper``, ``read_yaml_file``,
``parse_scalar``, ``dump_yaml``, ``MAX_YAML_NODES``, ``MAX_YAML_DEPTH``,
``MAX_INT_DIGITS``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from hhml.errors import ConfigError

__all__ = [
    "MAX_INT_DIGITS",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "ConfigDumper",
    "ConfigLoader",
    "dump_yaml",
    "parse_scalar",
    "read_yaml_file",
]

#: Most nodes (scalars, sequences, mappings; keys included) one YAML document may
#: expand to, an aliased node counting once per use.
MAX_YAML_NODES = 100_000
#: Deepest nesting of sequences/mappings in one YAML document.
MAX_YAML_DEPTH = 100

_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_YAML_1_1_ONLY = (_BOOL_TAG, _INT_TAG, _FLOAT_TAG, _TIMESTAMP_TAG)

_BOOL_RE = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT_RE = re.compile(r"^(?:[-+]?[0-9][0-9_]*|0x[0-9a-fA-F_]+|0o[0-7_]+)$")
_FLOAT_RE = re.compile(
    r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
        |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
    re.X,
)


#: What PyYAML's scalar constructors raise for text their tag cannot convert.
_CONVERSION_ERRORS = (ValueError, TypeError, KeyError, ArithmeticError)
#: Most digits of an integer in a config: Python's limit on int <-> decimal text
#: conversions (a larger int could not even be shown in a message).
MAX_INT_DIGITS = 4300
_INT_LIMIT = 10**MAX_INT_DIGITS
#: Characters of a rejected value quoted in a message.
_MAX_ECHO_CHARS = 40


def _echo(text: str) -> str:
    cut = text[:_MAX_ECHO_CHARS]
    return repr(cut) + (f"... ({len(text)} characters)" if len(text) > len(cut) else "")


def _bad_value(node: yaml.Node, exc: BaseException) -> yaml.constructor.ConstructorError:
    """The error for a node whose tag cannot make a value of its text (with its line)."""
    value = node.value if isinstance(node, yaml.ScalarNode) else f"<{type(node).__name__}>"
    reason = str(exc) if not isinstance(exc, KeyError) else "not one of its values"
    return yaml.constructor.ConstructorError(
        None,
        None,
        f"cannot read {_echo(str(value))} as {node.tag.replace('tag:yaml.org,2002:', '!!')} "
        f"({reason[:200]})",
        node.start_mark,
    )


try:  # libyaml's parser is ~10x faster; the resolvers and constructors stay in Python
    from yaml import CSafeLoader as _SafeLoaderBase
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoaderBase  # type: ignore[assignment]


class ConfigLoader(_SafeLoaderBase):
    """Safe YAML loader with YAML 1.2 core-schema scalars (``1e-3`` is a float).

    A value its tag cannot make (``!!int abc``, ``!!timestamp 2001-13-45``, ``!!bool x``)
    is a :class:`yaml.constructor.ConstructorError` with the node's line, not the
    ``ValueError``/``KeyError`` of the Python conversion.
    """

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except _CONVERSION_ERRORS as exc:
            raise _bad_value(node, exc) from None


class ConfigDumper(yaml.SafeDumper):
    """Safe YAML dumper that quotes strings that YAML 1.1 *or* 1.2 would read as non-strings."""


# Rebuild the loader's resolver table without the YAML 1.1 bool/int/float/timestamp
# rules; the dict and its lists are fresh copies, so yaml.SafeLoader is not modified.
ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in rules if tag not in _YAML_1_1_ONLY]
    for first, rules in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _cls in (ConfigLoader, ConfigDumper):
    # For the dumper these are added on top of the YAML 1.1 rules: a string such as
    # "1e5" or "yes" is then quoted, so it reads back as a string under either schema.
    _cls.add_implicit_resolver(_BOOL_TAG, _BOOL_RE, list("tTfF"))
    _cls.add_implicit_resolver(_INT_TAG, _INT_RE, list("-+0123456789"))
    _cls.add_implicit_resolver(_FLOAT_TAG, _FLOAT_RE, list("-+0123456789."))


def _represent_str(dumper: ConfigDumper, data: str) -> yaml.ScalarNode:
    # PyYAML's emitter mangles some non-printable characters (e.g. U+0085) in plain and
    # single-quoted scalars; the double-quoted style escapes them and reads back exactly.
    style = None if data.isprintable() else '"'
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


ConfigDumper.add_representer(str, _represent_str)


def _construct_int(loader: ConfigLoader, node: yaml.Node) -> int:
    """Decimal unless prefixed 0x/0o: a leading zero does not mean octal."""
    assert isinstance(node, yaml.ScalarNode)
    text = str(loader.construct_scalar(node)).replace("_", "")
    sign = -1 if text.startswith("-") else 1
    text = text.lstrip("+-")
    too_large = yaml.constructor.ConstructorError(
        None,
        None,
        f"integer {_echo(text)} is too large: at most {MAX_INT_DIGITS} decimal digits",
        node.start_mark,
    )
    if text[:2] in ("0x", "0X"):
        value = int(text[2:], 16)
    elif text[:2] in ("0o", "0O"):
        value = int(text[2:], 8)
    elif len(text.lstrip("0")) > MAX_INT_DIGITS:
        raise too_large
    else:
        value = int(text, 10)
    if value >= _INT_LIMIT:
        raise too_large
    return sign * value


ConfigLoader.add_constructor(_INT_TAG, _construct_int)


def _key_lines(node: yaml.Node, prefix: str, lines: dict[str, int], display: str) -> None:
    """Record ``{dotted key: 1-based line}`` for every mapping key; reject duplicate keys."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            path = f"{prefix}.{key}" if prefix else key
            if key in seen:
                raise ConfigError(
                    f"duplicate key {path!r} in {display}, line {line} "
                    f"(first given on line {seen[key]}); keep only one"
                )
            seen[key] = line
            lines[path] = line
            _key_lines(value_node, path, lines, display)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _key_lines(item, f"{prefix}[{index}]", lines, display)


def _check_size(root: yaml.Node, display: str) -> None:
    """Reject documents that expand past the limits, or hold an alias inside its own anchor.

    Walks the node graph as the constructed data would be laid out (an aliased node
    once per use), stopping at :data:`MAX_YAML_NODES` nodes, so the cost is bounded
    whatever the aliases multiply to.

    Raises
    ------
    ConfigError
        Too many nodes, too deep, or a recursive alias; with the line of the node.
    """
    count = 0
    seen: set[int] = set()  # ids of the collections visited so far
    path: list[tuple[yaml.Node, bool]] = []  # current path: (node, reached through an alias)

    def alias_line(default: int) -> int:
        """Line of the outermost alias on the path (the line of the node that holds it)."""
        for index, (_, aliased) in enumerate(path):
            if aliased and index > 0:
                return int(path[index - 1][0].start_mark.line) + 1
        return default

    def visit(node: yaml.Node, depth: int) -> None:
        nonlocal count
        count += 1
        line = node.start_mark.line + 1
        if count > MAX_YAML_NODES:
            raise ConfigError(
                f"{display}, line {alias_line(line)}: the YAML document expands to more "
                f"than {MAX_YAML_NODES} nodes (an aliased node counts once per use); "
                "anchors and aliases are allowed, but not to expand a config to this size"
            )
        if not isinstance(node, (yaml.SequenceNode, yaml.MappingNode)):
            return
        if any(node is open_node for open_node, _ in path):
            raise ConfigError(
                f"{display}, line {path[-1][0].start_mark.line + 1}: an alias refers to the "
                f"node anchored on line {line}, which contains it (a recursive alias); an "
                "alias may only refer to a node outside itself"
            )
        if depth >= MAX_YAML_DEPTH:
            raise ConfigError(
                f"{display}, line {line}: the YAML document nests deeper than "
                f"{MAX_YAML_DEPTH} levels of sequences/mappings"
            )
        path.append((node, id(node) in seen))
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            for item in node.value:
                visit(item, depth + 1)
        else:
            for key_node, value_node in node.value:
                visit(key_node, depth + 1)
                visit(value_node, depth + 1)
        path.pop()

    visit(root, 0)


def _syntax_error(exc: yaml.YAMLError, display: str) -> ConfigError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    where = display
    if mark is not None:
        where += f", line {mark.line + 1}, column {mark.column + 1}"
    detail = problem
    context_mark = getattr(exc, "context_mark", None)
    if context:
        if context_mark is not None and context_mark is not mark:
            context += f" (line {context_mark.line + 1}, column {context_mark.column + 1})"
        detail = f"{context}; {problem}"
    return ConfigError(f"YAML syntax error in {where}: {detail}")


def load_yaml_text(text: str, display: str) -> tuple[Any, dict[str, int]]:
    """Parse one YAML document; return the data and the line of every key.

    Raises
    ------
    ConfigError
        A syntax error (with line and column), several documents, a duplicate key,
        or a document that expands past :data:`MAX_YAML_NODES` nodes /
        :data:`MAX_YAML_DEPTH` levels or holds a recursive alias.
    """
    try:
        loader = ConfigLoader(text)
    except UnicodeEncodeError as exc:  # a lone surrogate, e.g. an undecodable byte in argv
        raise ConfigError(
            f"{display} is not valid text: character {exc.object[exc.start]!r} at position "
            f"{exc.start} cannot be encoded as UTF-8 (an undecodable byte?)"
        ) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        _check_size(node, display)
        lines: dict[str, int] = {}
        _key_lines(node, "", lines, display)
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, display) from None
    finally:
        loader.dispose()
    return data, lines


def read_yaml_file(path: Path, display: str) -> tuple[Any, dict[str, int]]:
    """Read and parse a YAML file.

    Parameters
    ----------
    path
        File to read.
    display
        How to name the file in messages (usually the path as the user gave it).

    Returns
    -------
    data, lines
        The parsed document (``None`` for an empty file) and ``{dotted key: line}``.

    Raises
    ------
    ConfigError
        Missing or unreadable file, invalid UTF-8, or a YAML error with its line.
    """
    try:
        if not path.exists():
            raise ConfigError(f"config file not found: {display}")
        if path.is_dir():
            raise ConfigError(f"config path {display} is a directory, expected a YAML file")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {display} is not valid UTF-8 text: {exc}") from None
    except OSError as exc:  # also a name too long, or a path through a file
        raise ConfigError(f"cannot read config file {display}: {exc.strerror or exc}") from None
    return load_yaml_text(text, display)


def parse_scalar(text: str) -> Any:
    """Parse a command-line value as a YAML scalar (``1e-3`` → float, ``true`` → bool).

    Text that is not valid YAML is returned unchanged as a string.
    """
    if text.strip() == "":
        return ""
    try:
        data, _ = load_yaml_text(text, "<override>")
    except ConfigError:
        return text
    return data


def dump_yaml(data: Any) -> str:
    """Dump ``data`` as block-style YAML, keeping the mapping order."""
    return yaml.dump(
        data,
        Dumper=ConfigDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )
