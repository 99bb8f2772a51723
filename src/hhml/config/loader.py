"""Composing a configuration from YAML files, config groups and overrides.

Precedence, lowest to highest:

1. schema defaults (:mod:`hhml.config.schema`);
2. the group files selected by the file's ``defaults:`` list, in list order;
3. the file's own keys;
4. command-line overrides, in the order given.

A ``defaults:`` entry ``{lattice: small}`` selects ``<root>/lattice/small.yaml``,
where ``<root>`` is the first of the group roots that has that file:

* ``config_dir`` (``--config-dir``), when given: a user directory that adds groups and
  options and overrides packaged ones of the same name;
* ``config_root`` when given; else the nearest ancestor directory of the file named
  ``configs``; else, for a file outside any ``configs/`` directory, the file's own
  directory and then the packaged configs; with no file, ``./configs`` (if it exists)
  and then the packaged configs;
* the packaged configs (:func:`packaged_config_root`, ``hhml/configs`` inside the
  installed package), which hold the same tree as the repository's ``configs/``.

A file argument that is not an existing file but a bare name (``quickstart``) is the
experiment ``experiment/<name>.yaml`` of ``config_dir`` or of the packaged configs
(:func:`resolve_config`). A file in a group named after a section holds
that section's keys directly (``nu: 64``, not ``lattice: {nu: 64}``); a file in
any other group (e.g. ``experiment/``) holds whole sections and may have its own
``defaults:`` list.

Overrides follow the grammar of :mod:`hhml.config.overrides`: ``section.key=value``
(the value is parsed as a YAML scalar: ``1e-3``, ``true``, ``cylinder``; ``[a,b]`` for
a list key), ``group=name`` (replaces or adds that group's entry in the defaults list),
the same with a ``+``/``++`` prefix, and ``~section.key`` / ``~group`` (reset a key to
its schema default, drop a group). Group overrides change the defaults list before
anything is merged; value overrides apply after the file's keys, in order.

Values (in files and overrides) may hold interpolations ``${section.key}``, resolved
after everything is merged: a value that is one interpolation takes the referenced
key's value (converted to the target key's type as YAML would: a string key gets its
text); an interpolation inside longer text is replaced by the referenced value's text,
and the result is parsed as a YAML scalar for a non-string key. A cycle or a missing
key is a :class:`~hhml.errors.ConfigError` naming the chain.

Public names: ``load_config``, ``config_from_dict``, ``config_to_dict``,
``dump_config``, ``save_config``, ``find_config_root``, ``packaged_config_root``,
``resolve_config``, ``available_experiments``, ``default_config_dir``.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import functools
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from hhml.config.overrides import (
    LIST_KEYS,
    Override,
    Reference,
    escape,
    interpolation_parts,
    list_items,
    parse_override,
    split_top_level,
)
from hhml.config.schema import HHmLConfig
from hhml.config.specs import FieldSpec, field_specs, format_value, unknown_name_message
from hhml.config.yaml_io import dump_yaml, parse_scalar, read_yaml_file
from hhml.errors import ConfigError
from hhml.utils.atomic_io import atomic_write_text

__all__ = [
    "available_experiments",
    "config_from_dict",
    "config_to_dict",
    "default_config_dir",
    "dump_config",
    "find_config_root",
    "load_config",
    "packaged_config_root",
    "resolve_config",
    "save_config",
]

_DEFAULTS_KEY = "defaults"
#: The group of whole-config files that ``--config NAME`` selects by name.
_EXPERIMENT_GROUP = "experiment"
_YAML_SUFFIXES = (".yaml", ".yml")
_MULTIRUN_HINT = "to run one training per comma-separated value, use hhml-train -m/--multirun"
#: The config directory of :func:`default_config_dir` (None outside such a block).
_DEFAULT_CONFIG_DIR: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "hhml_default_config_dir", default=None
)


@dataclass
class _Composition:
    """Raw values merged so far, where each one was set, and hints for their messages."""

    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)
    hints: dict[str, str] = field(default_factory=dict)

    def set(self, section: str, key: str, value: Any, where: str, hint: str = "") -> None:
        self.values.setdefault(section, {})[key] = value
        self.where[f"{section}.{key}"] = where
        if hint:
            self.hints[f"{section}.{key}"] = hint
        else:
            self.hints.pop(f"{section}.{key}", None)

    def reset(self, section: str, key: str) -> None:
        """Forget the value of ``section.key``: it takes its schema default again."""
        self.values.get(section, {}).pop(key, None)
        self.where.pop(f"{section}.{key}", None)
        self.hints.pop(f"{section}.{key}", None)


@dataclass(frozen=True)
class _GroupChoice:
    group: str
    name: str
    where: str


def _location(display: str, line: int | None) -> str:
    return f"{display}, line {line}" if line is not None else display


# ----------------------------------------------------------------------------- overrides


def _parse_overrides(overrides: Sequence[str]) -> tuple[list[Override], list[Override]]:
    """Parse ``overrides``; the group ones and the value ones, each in the order given."""
    if isinstance(overrides, str):
        raise TypeError("overrides must be a sequence of strings, not a single string")
    groups: list[Override] = []
    values: list[Override] = []
    for text in overrides:
        item = parse_override(text)
        if not item.is_group:
            values.append(item)
            continue
        if item.value is not None and len(split_top_level(item.value, item.where)) > 1:
            raise ConfigError(
                f"{item.where}: {item.value!r} names several options, but config group "
                f"{item.name!r} takes one; {_MULTIRUN_HINT}"
            )
        groups.append(item)
    return groups, values


def _apply_group_overrides(
    choices: list[_GroupChoice], overrides: Sequence[Override]
) -> list[_GroupChoice]:
    """The defaults list after the group overrides: select, add, or drop (``~``) groups."""
    result = list(choices)
    for item in overrides:
        index = next((i for i, c in enumerate(result) if c.group == item.name), None)
        if item.prefix == "~":
            if index is None:
                selected = ", ".join(f"{c.group}={c.name}" for c in result) or "(none)"
                raise ConfigError(
                    f"{item.where}: the defaults list selects no {item.name!r} group to drop; "
                    f"it selects: {selected}"
                )
            if item.value is not None and result[index].name != item.value:
                raise ConfigError(
                    f"{item.where}: group {item.name!r} selects {result[index].name!r} "
                    f"({result[index].where}), not {item.value!r}; '~group=option' drops the "
                    "group only while that option is selected (write '~group' to drop it anyway)"
                )
            del result[index]
            continue
        assert item.value is not None  # parse_override: '=' is required without '~'
        choice = _GroupChoice(item.name, item.value, item.where)
        if index is None:
            result.append(choice)
        else:
            result[index] = choice
    return result


def _override_value(spec: FieldSpec, path: str, item: Override) -> Any:
    """The raw value of a value override (interpolations are resolved later).

    A list ``[a,b]`` is a list of item texts (list keys only); a string key takes the
    text verbatim unless it is quoted; text with ``${`` stays text until resolution;
    anything else is parsed as a YAML scalar.
    """
    text = item.value if item.value is not None else ""
    items = list_items(text, item.where)
    if items is not None:
        if path not in LIST_KEYS:
            raise ConfigError(
                f"{path} = {text} is a list, but {path} holds one value ({spec.allowed()}) "
                f"(set in {item.where}); only list keys take [a,b,...]: "
                f"{', '.join(sorted(LIST_KEYS))}; to run one training per value, use "
                f"hhml-train -m {path}={text.strip()[1:-1]}"
            )
        return [parse_scalar(i) if i.startswith(("'", '"')) else i for i in items]
    if spec.kind is str and not text.startswith(("'", '"')):
        return text
    if "${" in text:
        return text
    return parse_scalar(text)


def _comma_hint(item: Override) -> str:
    """The multirun hint for a value with a top-level comma (``a,b``), else ''."""
    try:
        several = item.value is not None and len(split_top_level(item.value, item.where)) > 1
    except ConfigError:
        return ""
    return _MULTIRUN_HINT if several else ""


# ----------------------------------------------------------------------------- groups


def _nearest_configs(path: str | Path) -> Path | None:
    """The nearest ancestor of ``path`` named ``configs`` (as given, then absolute), or None."""
    normalised = Path(os.path.normpath(path))
    for candidate in (normalised, Path(os.path.abspath(normalised))):
        for parent in candidate.parents:
            if parent.name == "configs":
                return parent
    return None


def find_config_root(path: str | Path) -> Path:
    """Return the config root of ``path``: its nearest ancestor named ``configs``.

    Falls back to the file's own directory.
    """
    root = _nearest_configs(path)
    return root if root is not None else Path(os.path.normpath(path)).parent


def packaged_config_root() -> Path:
    """Return the directory of the configs shipped inside the package (``hhml/configs``).

    It holds the same tree as the repository's ``configs/`` (groups ``lattice``,
    ``dynamics``, ``simulation``, ``env``, ``agent``, ``training``, ``experiment``, and
    the ``search``/``sweep`` files).

    Raises
    ------
    ConfigError
        The installed package has no such directory on the file system (a broken
        install, or one imported from a zip archive).
    """
    traversable = resources.files("hhml") / "configs"
    if not isinstance(traversable, Path) or not traversable.is_dir():
        raise ConfigError(
            f"the packaged configs of hhml are missing: {traversable} is not a directory "
            "on the file system; reinstall hhml (its wheel holds hhml/configs/**/*.yaml)"
        )
    return traversable


def _user_dir(config_dir: str | Path) -> Path:
    directory = Path(config_dir)
    if not directory.is_dir():
        what = "does not exist" if not directory.exists() else "is not a directory"
        raise ConfigError(
            f"config directory {str(directory)!r} (config_dir / --config-dir) {what}; give a "
            "directory holding group folders such as agent/ or lattice/"
        )
    return directory


def _group_roots(
    path: str | Path | None, config_root: str | Path | None, config_dir: Path | None
) -> list[Path]:
    """The directories searched for group files, first match wins (module docstring)."""
    roots: list[Path] = [config_dir] if config_dir is not None else []
    if config_root is not None:
        roots.append(Path(config_root))
    elif path is not None and _nearest_configs(path) is not None:
        roots.append(find_config_root(path))
    else:
        if path is not None:
            roots.append(find_config_root(path))
        elif Path("configs").is_dir():
            roots.append(Path("configs"))
        roots.append(packaged_config_root())
    unique: list[Path] = []
    seen: set[Path] = set()
    for root in roots:  # ./configs of a checkout is a link to the packaged configs
        key = root.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(root)
    return unique


def _yaml_names(directory: Path) -> list[str]:
    names = {
        p.relative_to(directory).with_suffix("").as_posix()
        for p in directory.rglob("*")
        if p.suffix in _YAML_SUFFIXES and p.is_file()
    }
    return sorted(names)


def _available_groups(roots: Sequence[Path]) -> list[str]:
    groups: set[str] = set()
    for root in roots:
        if root.is_dir():
            groups.update(p.name for p in root.iterdir() if p.is_dir() and _yaml_names(p))
    return sorted(groups)


def _one_of(paths: Sequence[Path]) -> str:
    """``a`` or ``a (nor b, c)``: the places a lookup tried, first one first."""
    first = str(paths[0])
    if len(paths) > 1:
        first += f" (nor {', '.join(str(p) for p in paths[1:])})"
    return first


_NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


def _group_file(roots: Sequence[Path], choice: _GroupChoice) -> Path:
    for kind, text in (("group", choice.group), ("option", choice.name)):
        if not _NAME_PATTERN.fullmatch(text) or ".." in text:
            raise ConfigError(
                f"config {kind} {text[:60]!r}{'…' if len(text) > 60 else ''} ({choice.where}) "
                "is not a name: use letters, digits, '_', '.' and '-' (at most 100, no '..')"
            )
    group_dirs = [root / choice.group for root in roots if (root / choice.group).is_dir()]
    if not group_dirs:
        groups = _available_groups(roots)
        tried = _one_of([root / choice.group for root in roots])
        message = f"unknown config group {choice.group!r} ({choice.where}): no directory {tried}"
        message += f"; available groups: {', '.join(groups) if groups else '(none)'}"
        close = difflib.get_close_matches(choice.group, groups, n=1)
        if close:
            message += f"; did you mean {close[0]!r}?"
        for section, section_type in HHmLConfig.section_types().items():
            if choice.group in field_specs(section_type):
                message += f"; to set a value write '{section}.{choice.group}={choice.name}'"
                break
        raise ConfigError(message)
    name = choice.name
    for suffix in _YAML_SUFFIXES:
        name = name.removesuffix(suffix)
    if name.startswith(("/", "\\")) or ".." in Path(name).parts:
        raise ConfigError(
            f"config option {choice.name!r} ({choice.where}) must be a name inside "
            f"{group_dirs[0]}, not a path"
        )
    for group_dir in group_dirs:
        for suffix in _YAML_SUFFIXES:
            candidate = group_dir / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    options = sorted({option for d in group_dirs for option in _yaml_names(d)})
    message = (
        f"config group {choice.group!r} has no option {name!r} ({choice.where}): "
        f"{_one_of([d / (name + '.yaml') for d in group_dirs])} not found"
    )
    message += f"; available: {', '.join(options) if options else '(none)'}"
    close = difflib.get_close_matches(name, options, n=1)
    if close:
        message += f"; did you mean {close[0]!r}?"
    raise ConfigError(message)


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False for a name the OS refuses (e.g. too long)."""
    try:
        return path.is_file()
    except OSError:  # read_yaml_file reports such a path with its own message
        return False


def _is_bare_name(text: str) -> bool:
    """Whether ``text`` names an experiment (``quickstart``) rather than a file path."""
    return (
        _NAME_PATTERN.fullmatch(text) is not None
        and ".." not in text
        and not text.endswith(_YAML_SUFFIXES)
    )


def _experiment_dirs(config_dir: str | Path | None) -> list[Path]:
    roots = [_user_dir(config_dir)] if config_dir is not None else []
    roots.append(packaged_config_root())
    return [root / _EXPERIMENT_GROUP for root in roots]


def available_experiments(config_dir: str | Path | None = None) -> list[str]:
    """Return the experiment names ``--config NAME`` accepts, sorted.

    Parameters
    ----------
    config_dir
        A user config directory whose ``experiment/`` files join (and shadow) the
        packaged ones.

    Raises
    ------
    ConfigError
        ``config_dir`` is not a directory, or the packaged configs are missing.
    """
    names: set[str] = set()
    for directory in _experiment_dirs(config_dir):
        if directory.is_dir():
            names.update(_yaml_names(directory))
    return sorted(names)


def resolve_config(config: str | Path, config_dir: str | Path | None = None) -> Path:
    """Return the YAML file a ``--config`` value means.

    An existing file is returned as given. A bare name without a YAML suffix
    (``quickstart``) is ``experiment/<name>.yaml`` (or ``.yml``) of ``config_dir``,
    else of the packaged configs.

    Parameters
    ----------
    config
        A file path or an experiment name.
    config_dir
        A user config directory searched before the packaged configs.

    Raises
    ------
    ConfigError
        No such file (for a path), or no such experiment (for a name; the message lists
        the available experiments), or ``config_dir`` is not a directory.
    """
    path = Path(config)
    if _is_file(path):
        return path
    text = str(config)
    if not _is_bare_name(text):
        raise ConfigError(f"{text}: no such file")
    directories = _experiment_dirs(config_dir)
    for directory in directories:
        for suffix in _YAML_SUFFIXES:
            candidate = directory / f"{text}{suffix}"
            if candidate.is_file():
                return candidate
    names = available_experiments(config_dir)
    message = (
        f"{text}: no such file, and no experiment {text!r} in {_one_of(directories)}; "
        f"available experiments: {', '.join(names) if names else '(none)'}"
    )
    close = difflib.get_close_matches(text, names, n=1)
    if close:
        message += f"; did you mean {close[0]!r}?"
    raise ConfigError(message + "; or give the path of a YAML file")


def _parse_defaults(
    data: Mapping[str, Any], display: str, lines: dict[str, int]
) -> list[_GroupChoice]:
    raw = data.get(_DEFAULTS_KEY)
    where = _location(display, lines.get(_DEFAULTS_KEY))
    if raw is None:
        return []
    example = "e.g. 'defaults: [{lattice: small}, {dynamics: cgl}]'"
    if not isinstance(raw, list):
        raise ConfigError(f"'defaults' in {where} must be a list of 'group: name' items; {example}")
    choices: list[_GroupChoice] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw):
        if not (isinstance(entry, Mapping) and len(entry) == 1):
            raise ConfigError(
                f"entry {index} of 'defaults' in {where} must be one 'group: name' pair, "
                f"got {entry!r}; {example}"
            )
        group, name = next(iter(entry.items()))
        entry_where = _location(display, lines.get(f"{_DEFAULTS_KEY}[{index}].{group}"))
        if not isinstance(group, str) or not isinstance(name, str) or not name:
            raise ConfigError(
                f"entry {index} of 'defaults' in {entry_where} must map a group name to an "
                f"option name, got {entry!r}; {example}"
            )
        if group in seen:
            raise ConfigError(f"group {group!r} is selected twice in 'defaults' in {where}")
        seen.add(group)
        choices.append(_GroupChoice(group, name, entry_where))
    return choices


# ----------------------------------------------------------------------------- merging


def _merge_section(
    comp: _Composition,
    section: str,
    content: Any,
    display: str,
    lines: dict[str, int],
    line_prefix: str,
    where: str,
) -> None:
    if content is None:  # an empty group file: nothing to merge
        return
    if not isinstance(content, Mapping):
        raise ConfigError(
            f"section {section!r} in {where} must be a mapping of keys to values, "
            f"got {type(content).__name__} {format_value(content)}"
        )
    for key, value in content.items():
        line_key = f"{line_prefix}.{key}" if line_prefix else str(key)
        comp.set(section, str(key), value, _location(display, lines.get(line_key)))


def _unknown_section(name: str, where: str) -> ConfigError:
    sections = HHmLConfig.section_types()
    for section, section_type in sections.items():
        if name in field_specs(section_type):
            return ConfigError(
                f"unknown section {name!r} in {where}; {name!r} is a key of section "
                f"{section!r}: write it under '{section}:' (or override '{section}.{name}=...')"
            )
    return ConfigError(unknown_name_message("section", name, list(sections), where))


def _merge_document(
    comp: _Composition,
    data: Mapping[str, Any],
    display: str,
    lines: dict[str, int],
) -> None:
    """Merge the sections of a whole-config document (its ``defaults`` already handled)."""
    sections = HHmLConfig.section_types()
    for name, content in data.items():
        if name == _DEFAULTS_KEY:
            continue
        where = _location(display, lines.get(str(name)))
        if name not in sections:
            raise _unknown_section(str(name), where)
        if content is None or (isinstance(content, Mapping) and not content):
            # "lattice:" alone (or with every key commented out) sets nothing: a slip
            keys = ", ".join(field_specs(sections[name]))
            raise ConfigError(
                f"section {name!r} in {where} is empty; give it keys (valid: {keys}) "
                "or remove it to keep the defaults"
            )
        _merge_section(comp, name, content, display, lines, name, where)


def _require_mapping(data: Any, display: str, what: str) -> Mapping[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"the top level of {display} must be a mapping of {what}, " f"got {type(data).__name__}"
        )
    return data


def _compose_groups(
    comp: _Composition,
    roots: Callable[[], list[Path]],
    choices: list[_GroupChoice],
    stack: tuple[Path, ...],
) -> None:
    """Merge the group files of ``choices``; ``roots`` gives the group roots (called lazily)."""
    sections = HHmLConfig.section_types()
    for choice in choices:
        path = _group_file(roots(), choice)
        display = str(path)
        resolved = path.resolve()
        if resolved in stack:
            cycle = " -> ".join(str(p) for p in (*stack, resolved))
            raise ConfigError(f"config groups select each other in a cycle: {cycle}")
        data, lines = read_yaml_file(path, display)
        if choice.group in sections:
            content = _require_mapping(data, display, f"'{choice.group}' keys")
            section_keys = field_specs(sections[choice.group])
            if choice.group in content and choice.group not in section_keys:
                raise ConfigError(
                    f"{display} wraps its keys in '{choice.group}:'; files in the "
                    f"{choice.group!r} group hold the keys of that section directly "
                    "(e.g. 'nu: 64')"
                )
            _merge_section(comp, choice.group, content, display, lines, "", display)
        else:
            document = _require_mapping(data, display, "sections")
            nested = _parse_defaults(document, display, lines)
            _compose_groups(comp, roots, nested, (*stack, resolved))
            _merge_document(comp, document, display, lines)


# ----------------------------------------------------------------------------- building


def _unknown_key(section: str, key: str, where: str) -> ConfigError:
    """Unknown-key error suggesting the same key in another section, else the closest key."""
    sections = HHmLConfig.section_types()
    path = f"{section}.{key}"
    for other, section_type in sections.items():
        if other != section and key in field_specs(section_type):
            # The right key in the wrong section: a closer spelling would mislead.
            return ConfigError(f"unknown key {path!r} in {where}; did you mean '{other}.{key}'?")
    valid = [f"{section}.{name}" for name in field_specs(sections[section])]
    return ConfigError(unknown_name_message("key", path, valid, where))


@functools.cache
def _schema_defaults() -> dict[str, Any]:
    """``{"section.key": default}`` of every schema key."""
    return {
        f"{name}.{key}": value
        for name, section_type in HHmLConfig.section_types().items()
        for key, value in section_type().to_dict().items()
    }


def _text_of(value: Any) -> str:
    """How a resolved value reads inside a string (``true``, ``0.1``, ``cpu``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Resolver:
    """Checked values of a composition, with ``${section.key}`` interpolations resolved.

    Values are resolved lazily, key by key, and memoised; ``chain`` is the keys whose
    resolution led here (for cycle and missing-key messages).
    """

    def __init__(self, comp: _Composition, default_where: str) -> None:
        self.comp = comp
        self.default_where = default_where
        self.specs = {
            f"{name}.{key}": key_spec
            for name, section_type in HHmLConfig.section_types().items()
            for key, key_spec in field_specs(section_type).items()
        }
        self.done: dict[str, Any] = {}

    def where(self, path: str) -> str:
        return self.comp.where.get(path, self.default_where)

    def raw(self, path: str) -> tuple[bool, Any]:
        """``(True, raw value)`` if the composition sets ``path``, else ``(False, None)``."""
        section, _, key = path.partition(".")
        values = self.comp.values.get(section, {})
        return (True, values[key]) if key in values else (False, None)

    def value(self, path: str, chain: tuple[str, ...] = ()) -> Any:
        """The checked value of ``path`` (a known key)."""
        if path in self.done:
            return self.done[path]
        if path in chain:
            cycle = (*chain[chain.index(path) :], path)
            places = "; ".join(f"{p} set in {self.where(p)}" for p in cycle[:-1])
            raise ConfigError(f"interpolation cycle: {' -> '.join(cycle)} ({places})")
        is_set, raw = self.raw(path)
        if not is_set:
            result = _schema_defaults()[path]
        else:
            result = self.typed(path, raw, self.where(path), (*chain, path))
        self.done[path] = result
        return result

    def typed(self, path: str, raw: Any, where: str, chain: tuple[str, ...]) -> Any:
        """``raw`` (set in ``where``) interpolated and checked as the value of ``path``."""
        key_spec = self.specs[path]
        value = self.interpolate(path, raw, where, chain)
        try:
            return key_spec.check(value, path)
        except ConfigError as exc:
            shown = f" as {raw!r}" if isinstance(raw, str) and "${" in raw else ""
            hint = self.comp.hints.get(path, "") if where == self.comp.where.get(path) else ""
            raise ConfigError(
                f"{exc} (set in {where}{shown}){'; ' + hint if hint else ''}"
            ) from None

    def interpolate(self, path: str, raw: Any, where: str, chain: tuple[str, ...]) -> Any:
        key_spec = self.specs[path]
        if isinstance(raw, list) and path in LIST_KEYS:
            for index, item in enumerate(raw):
                if not isinstance(item, str):
                    raise ConfigError(
                        f"item {index} of {path} = {format_value(raw)} is "
                        f"{format_value(item)}, not a name (set in {where}); "
                        f"expected {key_spec.allowed()}"
                    )
            raw = ",".join(raw)
        elif isinstance(raw, list):
            raise ConfigError(
                f"{path} = {format_value(raw)} is a list, but {path} holds one value "
                f"({key_spec.allowed()}) (set in {where}); only list keys take a list: "
                f"{', '.join(sorted(LIST_KEYS))}"
            )
        if not (isinstance(raw, str) and "${" in raw):
            return raw
        parts = interpolation_parts(raw, f"{path}, set in {where}")
        resolved = [
            self.reference(p, path, where, chain) if isinstance(p, Reference) else p for p in parts
        ]
        if len(parts) == 1 and isinstance(parts[0], Reference):
            value = resolved[0]
            return _text_of(value) if key_spec.kind is str else value
        text = "".join(_text_of(v) for v in resolved)
        return text if key_spec.kind is str else parse_scalar(text)

    def reference(self, ref: Reference, path: str, where: str, chain: tuple[str, ...]) -> Any:
        if ref.path not in self.specs:
            context = f"interpolation {ref} of {' -> '.join(chain)} (set in {where})"
            section, _, key = ref.path.partition(".")
            sections = HHmLConfig.section_types()
            if section not in sections:
                raise ConfigError(unknown_name_message("section", section, list(sections), context))
            raise _unknown_key(section, key, context)
        return self.value(ref.path, chain)


def _build(comp: _Composition, default_where: str) -> HHmLConfig:
    resolver = _Resolver(comp, default_where)
    sections: dict[str, Any] = {}
    for name, section_type in HHmLConfig.section_types().items():
        specs = field_specs(section_type)
        values: dict[str, Any] = {}
        for key in comp.values.get(name, {}):
            if key not in specs:
                raise _unknown_key(name, key, comp.where.get(f"{name}.{key}", default_where))
            values[key] = resolver.value(f"{name}.{key}")
        sections[name] = section_type(**values)
    return HHmLConfig(**sections)


def _apply_value_overrides(
    comp: _Composition, overrides: Sequence[Override], default_where: str
) -> None:
    """Apply value overrides in order: set, or reset (``~``) to the schema default."""
    sections = HHmLConfig.section_types()
    for item in overrides:
        section, _, key = item.name.partition(".")
        if section not in sections:
            raise _unknown_section(section, item.where)
        key_spec = field_specs(sections[section]).get(key)
        if key_spec is None:
            raise _unknown_key(section, key, item.where)
        path = f"{section}.{key}"
        if item.prefix != "~":
            raw = _override_value(key_spec, path, item)
            comp.set(section, key, raw, item.where, _comma_hint(item))
            continue
        if item.value is not None:
            resolver = _Resolver(comp, default_where)
            current = resolver.value(path)
            wanted = resolver.typed(
                path, _override_value(key_spec, path, item), item.where, (path,)
            )
            if current != wanted:
                raise ConfigError(
                    f"{item.where}: {path} is {format_value(current)} (set in "
                    f"{comp.where.get(path, 'the schema defaults')}), not "
                    f"{format_value(wanted)}; '~key=value' resets the key only while it "
                    "holds that value (write '~key' to reset it anyway)"
                )
        comp.reset(section, key)


# ----------------------------------------------------------------------------- public API


def load_config(
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    *,
    config_root: str | Path | None = None,
    config_dir: str | Path | None = None,
) -> HHmLConfig:
    """Load, compose and validate a configuration.

    Parameters
    ----------
    path
        A YAML config file, an experiment name (``"quickstart"``: see
        :func:`resolve_config`), or ``None`` for the schema defaults.
    overrides
        Override strings (:mod:`hhml.config.overrides`: ``section.key=value``,
        ``group=name``, ``+``/``++`` forms, ``~section.key``, ``~group``): group
        overrides edit the defaults list, value overrides apply last, in order.
    config_root
        Directory holding the config groups. Defaults to the nearest ancestor of
        ``path`` named ``configs``; for a file outside any ``configs/`` directory, to
        the file's directory and then the packaged configs; with ``path=None``, to
        ``./configs`` if it exists and then the packaged configs
        (:func:`packaged_config_root`).
    config_dir
        A user config directory searched first, for group files and experiment names:
        its groups and options are added to (and win over) those of the roots above.
        Default: the directory of an enclosing :func:`default_config_dir` block, else
        none.

    Returns
    -------
    HHmLConfig
        The validated configuration.

    Raises
    ------
    ConfigError
        Any problem with a file, key, value or override; the message names the
        dotted key, the file (and line) or override, and what is valid.
    """
    group_overrides, value_overrides = _parse_overrides(overrides)
    if config_dir is None:
        config_dir = _DEFAULT_CONFIG_DIR.get()
    user_dir = _user_dir(config_dir) if config_dir is not None else None
    if path is not None and _is_bare_name(str(path)) and not _is_file(Path(path)):
        path = resolve_config(path, user_dir)
    comp = _Composition()
    roots = functools.cache(lambda: _group_roots(path, config_root, user_dir))

    if path is None:
        _compose_groups(comp, roots, _apply_group_overrides([], group_overrides), ())
        default_where = "<defaults>"
    else:
        display = str(path)
        data, lines = read_yaml_file(Path(path), display)
        document = _require_mapping(data, display, "sections (e.g. 'lattice: {nu: 64}')")
        choices = _apply_group_overrides(_parse_defaults(document, display, lines), group_overrides)
        _compose_groups(comp, roots, choices, (Path(path).resolve(),))
        _merge_document(comp, document, display, lines)
        default_where = display
    _apply_value_overrides(comp, value_overrides, default_where)
    return _build(comp, default_where)


@contextlib.contextmanager
def default_config_dir(config_dir: str | Path | None) -> Iterator[None]:
    """Make ``config_dir`` the ``config_dir`` of :func:`load_config` calls that give none.

    For code that composes configs through functions without a ``config_dir``
    parameter (``hhml-optimize --config-dir`` around :func:`hhml.ml.training.optimize.
    run_study`). ``None`` changes nothing. Nested blocks restore the outer directory.

    Raises
    ------
    ConfigError
        ``config_dir`` is not a directory (checked on entry).
    """
    if config_dir is None:
        yield
        return
    token = _DEFAULT_CONFIG_DIR.set(_user_dir(config_dir))
    try:
        yield
    finally:
        _DEFAULT_CONFIG_DIR.reset(token)


def config_to_dict(cfg: HHmLConfig) -> dict[str, dict[str, Any]]:
    """Return ``{section: {key: value}}`` in schema order (plain Python scalars)."""
    return {name: getattr(cfg, name).to_dict() for name in HHmLConfig.section_types()}


def config_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> HHmLConfig:
    """Build a validated configuration from ``{section: {key: value}}``.

    Missing sections and keys take schema defaults. ``source`` names the origin
    in error messages. Group selection (``defaults``) needs files: use
    :func:`load_config`.

    Raises
    ------
    ConfigError
        Unknown section or key, wrong type, out-of-range value or invalid choice.
    """
    document = _require_mapping(data, source, "sections")
    if _DEFAULTS_KEY in document:
        raise ConfigError(
            f"'defaults' in {source} selects config group files; use load_config() on a "
            "YAML file for that"
        )
    comp = _Composition()
    _merge_document(comp, document, source, {})
    return _build(comp, source)


def dump_config(cfg: HHmLConfig) -> str:
    """Return the resolved configuration as YAML (schema order; reloads to an equal config).

    A string holding ``${`` is written with ``\\${``, so it reloads as text rather than as
    an interpolation.

    Raises
    ------
    ConfigError
        ``cfg`` holds an invalid value (e.g. set after construction).
    """
    cfg.validate()
    data = {
        section: {k: escape(v) if isinstance(v, str) else v for k, v in values.items()}
        for section, values in config_to_dict(cfg).items()
    }
    return dump_yaml(data)


def save_config(cfg: HHmLConfig, path: str | Path) -> Path:
    """Write :func:`dump_config` to ``path`` atomically (parent directories are created).

    Returns
    -------
    Path
        The written path.
    """
    text = dump_config(cfg)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, text)
    return target
