"""Composing a configuration from YAML files, config groups and overrides.

Precedence, lowest to highest:

1. schema defaults (:mod:`hhml.config.schema`);
2. the group files selected by the file's ``defaults:`` list, in list order;
3. the file's own keys;
4. command-line overrides, in the order given.

A ``defaults:`` entry ``{lattice: small}`` selects ``<root>/lattice/small.yaml``,
where ``<root>`` is the nearest ancestor directory of the file named ``configs``
(else the file's own directory). A file in a group named after a section holds
that section's keys directly (``nu: 64``, not ``lattice: {nu: 64}``); a file in
any other group (e.g. ``experiment/``) holds whole sections and may have its own
``defaults:`` list.

Overrides are ``section.key=value`` (the value is parsed as a YAML scalar:
``1e-3``, ``true``, ``cylinder``) or ``group=name`` (replaces or adds that group's
entry in the defaults list).

Public names: ``load_config``, ``config_from_dict``, ``config_to_dict``,
``dump_config``, ``save_config``, ``find_config_root``.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hhml.config.schema import HHmLConfig
from hhml.config.specs import FieldSpec, field_specs, format_value, unknown_name_message
from hhml.config.yaml_io import dump_yaml, parse_scalar, read_yaml_file
from hhml.errors import ConfigError
from hhml.utils.atomic_io import atomic_write_text

__all__ = [
    "config_from_dict",
    "config_to_dict",
    "dump_config",
    "find_config_root",
    "load_config",
    "save_config",
]

_DEFAULTS_KEY = "defaults"
_YAML_SUFFIXES = (".yaml", ".yml")
_OVERRIDE_FORMS = (
    "expected 'section.key=value' (e.g. 'dynamics.damping=0.1') "
    "or 'group=name' (e.g. 'lattice=small')"
)


@dataclass
class _Composition:
    """Raw values merged so far, and where each one was set (for messages)."""

    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)

    def set(self, section: str, key: str, value: Any, where: str) -> None:
        self.values.setdefault(section, {})[key] = value
        self.where[f"{section}.{key}"] = where


@dataclass(frozen=True)
class _GroupChoice:
    group: str
    name: str
    where: str


def _location(display: str, line: int | None) -> str:
    return f"{display}, line {line}" if line is not None else display


# ----------------------------------------------------------------------------- overrides


@dataclass(frozen=True)
class _ValueOverride:
    section: str
    key: str
    text: str
    override: str


def _parse_overrides(
    overrides: Sequence[str],
) -> tuple[list[_GroupChoice], list[_ValueOverride]]:
    if isinstance(overrides, str):
        raise TypeError("overrides must be a sequence of strings, not a single string")
    groups: list[_GroupChoice] = []
    values: list[_ValueOverride] = []
    for override in overrides:
        if not isinstance(override, str):
            raise ConfigError(f"override {override!r} is not a string; {_OVERRIDE_FORMS}")
        name, sep, text = override.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError(f"malformed override {override!r}; {_OVERRIDE_FORMS}")
        where = f"override {override!r}"
        if "." in name:
            section, _, key = name.partition(".")
            values.append(_ValueOverride(section, key, text.strip(), override))
        else:
            choice = text.strip()
            if not choice:
                raise ConfigError(
                    f"malformed override {override!r}: no option name after '='; "
                    f"{_OVERRIDE_FORMS}"
                )
            groups.append(_GroupChoice(name, choice, where))
    return groups, values


def _override_value(spec: FieldSpec | None, text: str) -> Any:
    """Parse an override's value; string fields take the text verbatim unless quoted."""
    if spec is not None and spec.kind is str and not text.startswith(("'", '"')):
        return text
    return parse_scalar(text)


# ----------------------------------------------------------------------------- groups


def find_config_root(path: str | Path) -> Path:
    """Return the config root of ``path``: its nearest ancestor named ``configs``.

    Falls back to the file's own directory.
    """
    normalised = Path(os.path.normpath(path))
    for candidate in (normalised, Path(os.path.abspath(normalised))):
        for parent in candidate.parents:
            if parent.name == "configs":
                return parent
    return normalised.parent


def _yaml_names(directory: Path) -> list[str]:
    names = {
        p.relative_to(directory).with_suffix("").as_posix()
        for p in directory.rglob("*")
        if p.suffix in _YAML_SUFFIXES and p.is_file()
    }
    return sorted(names)


def _available_groups(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and _yaml_names(p))


_NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


def _group_file(root: Path, choice: _GroupChoice) -> Path:
    for kind, text in (("group", choice.group), ("option", choice.name)):
        if not _NAME_PATTERN.fullmatch(text) or ".." in text:
            raise ConfigError(
                f"config {kind} {text[:60]!r}{'…' if len(text) > 60 else ''} ({choice.where}) "
                "is not a name: use letters, digits, '_', '.' and '-' (at most 100, no '..')"
            )
    group_dir = root / choice.group
    if not group_dir.is_dir():
        groups = _available_groups(root)
        message = (
            f"unknown config group {choice.group!r} ({choice.where}): " f"no directory {group_dir}"
        )
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
            f"{group_dir}, not a path"
        )
    for suffix in _YAML_SUFFIXES:
        candidate = group_dir / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    options = _yaml_names(group_dir)
    message = (
        f"config group {choice.group!r} has no option {name!r} ({choice.where}): "
        f"{group_dir / (name + '.yaml')} not found"
    )
    message += f"; available: {', '.join(options) if options else '(none)'}"
    close = difflib.get_close_matches(name, options, n=1)
    if close:
        message += f"; did you mean {close[0]!r}?"
    raise ConfigError(message)


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


def _apply_group_overrides(
    choices: list[_GroupChoice], overrides: list[_GroupChoice]
) -> list[_GroupChoice]:
    result = list(choices)
    for override in overrides:
        for index, choice in enumerate(result):
            if choice.group == override.group:
                result[index] = override
                break
        else:
            result.append(override)
    return result


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
    comp: _Composition, root: Path | None, choices: list[_GroupChoice], stack: tuple[Path, ...]
) -> None:
    sections = HHmLConfig.section_types()
    for choice in choices:
        if root is None:
            raise ConfigError(
                f"{choice.where} selects config group {choice.group!r}, but there is no "
                "config directory: pass a config file, config_root=..., or run from a "
                "directory that contains 'configs/'"
            )
        path = _group_file(root, choice)
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
            _compose_groups(comp, root, nested, (*stack, resolved))
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


def _build(comp: _Composition, default_where: str) -> HHmLConfig:
    sections: dict[str, Any] = {}
    for name, section_type in HHmLConfig.section_types().items():
        specs = field_specs(section_type)
        values: dict[str, Any] = {}
        for key, value in comp.values.get(name, {}).items():
            path = f"{name}.{key}"
            where = comp.where.get(path, default_where)
            key_spec = specs.get(key)
            if key_spec is None:
                raise _unknown_key(name, key, where)
            try:
                values[key] = key_spec.check(value, path)
            except ConfigError as exc:
                raise ConfigError(f"{exc} (set in {where})") from None
        sections[name] = section_type(**values)
    return HHmLConfig(**sections)


def _apply_value_overrides(comp: _Composition, overrides: list[_ValueOverride]) -> None:
    sections = HHmLConfig.section_types()
    for item in overrides:
        where = f"override {item.override!r}"
        if item.section not in sections:
            raise _unknown_section(item.section, where)
        key_spec = field_specs(sections[item.section]).get(item.key)
        comp.set(item.section, item.key, _override_value(key_spec, item.text), where)


# ----------------------------------------------------------------------------- public API


def load_config(
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    *,
    config_root: str | Path | None = None,
) -> HHmLConfig:
    """Load, compose and validate a configuration.

    Parameters
    ----------
    path
        A YAML config file, or ``None`` for the schema defaults.
    overrides
        ``section.key=value`` or ``group=name`` strings, applied last, in order.
    config_root
        Directory holding the config groups. Defaults to the nearest ancestor of
        ``path`` named ``configs`` (else the file's directory); with ``path=None``,
        to ``./configs`` if it exists.

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
    comp = _Composition()
    root: Path | None
    if config_root is not None:
        root = Path(config_root)
    elif path is not None:
        root = find_config_root(path)
    else:
        root = Path("configs") if Path("configs").is_dir() else None

    if path is None:
        _compose_groups(comp, root, group_overrides, ())
        default_where = "<defaults>"
    else:
        display = str(path)
        data, lines = read_yaml_file(Path(path), display)
        document = _require_mapping(data, display, "sections (e.g. 'lattice: {nu: 64}')")
        choices = _apply_group_overrides(_parse_defaults(document, display, lines), group_overrides)
        _compose_groups(comp, root, choices, (Path(path).resolve(),))
        _merge_document(comp, document, display, lines)
        default_where = display
    _apply_value_overrides(comp, value_overrides)
    return _build(comp, default_where)


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

    Raises
    ------
    ConfigError
        ``cfg`` holds an invalid value (e.g. set after construction).
    """
    cfg.validate()
    return dump_yaml(config_to_dict(cfg))


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
