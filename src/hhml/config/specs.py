"""Declaring and validating config fields.

A config section is a dataclass whose fields are declared with :func:`spec`. The
spec carries what a value must be (type, inclusive range, allowed choices, a
pattern) and what it means (a one-line doc and the physics symbol), so one
declaration drives validation, error messages, YAML dumps and documentation.

Validation rules
----------------
- ``float`` fields accept ints and convert them; ``int`` fields accept only ints.
- ``bool`` is never accepted as a number, and strings are never parsed as numbers
  here (the YAML loader has already done that).
- Floats must be finite. Ranges are inclusive.

Public names: ``FieldSpec``, ``spec``, ``field_specs``, ``validate_section``,
``Section``. Message helpers shared with the loader: ``format_value``,
``format_number``, ``unknown_name_message``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np

from hhml.errors import ConfigError

__all__ = ["FieldSpec", "Section", "field_specs", "spec", "validate_section"]

_T = TypeVar("_T")
_S = TypeVar("_S", bound="Section")

#: Key under which a :class:`FieldSpec` is stored in ``dataclasses.field(metadata=...)``.
SPEC_KEY = "hhml.spec"

_KIND_NAMES: dict[type, str] = {
    bool: "a boolean (true or false)",
    int: "an integer",
    float: "a number (float)",
    str: "a string",
}


def format_number(value: float) -> str:
    """Format a number for a message: integral floats without ``.0``, others by ``repr``."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def format_value(value: Any) -> str:
    """Format a config value the way a user would write it (strings quoted)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if value is None:
        return "null"
    return repr(value)


def _quoted_list(items: tuple[str, ...]) -> str:
    return ", ".join(repr(item) for item in items)


@dataclass(frozen=True)
class FieldSpec:
    """What one config field must hold and what it means.

    Attributes
    ----------
    kind : type
        One of ``bool``, ``int``, ``float``, ``str``.
    low, high : float or int or None
        Inclusive bounds for numeric fields; ``None`` means unbounded.
    choices : tuple of str or None
        The allowed values of a string field.
    pattern : str or None
        A regular expression a string value must match in full.
    pattern_help : str
        Human description of ``pattern`` used in error messages.
    doc : str
        One-line description, with units.
    symbol : str
        The physics symbol of the field (e.g. ``"γ"``), or ``""``.
    """

    kind: type
    low: float | int | None = None
    high: float | int | None = None
    choices: tuple[str, ...] | None = None
    pattern: str | None = None
    pattern_help: str = ""
    doc: str = ""
    symbol: str = ""

    def allowed(self) -> str:
        """Describe the valid values, e.g. ``"a number (float) in [0, 2]"``."""
        text = _KIND_NAMES[self.kind]
        if self.choices is not None:
            return f"one of {_quoted_list(self.choices)}"
        if self.pattern is not None and self.pattern_help:
            return self.pattern_help
        if self.low is not None and self.high is not None:
            return f"{text} in [{format_number(self.low)}, {format_number(self.high)}]"
        if self.low is not None:
            return f"{text} >= {format_number(self.low)}"
        if self.high is not None:
            return f"{text} <= {format_number(self.high)}"
        return text

    def check(self, value: Any, path: str) -> Any:
        """Return ``value`` normalised to this field's type, or raise :class:`ConfigError`.

        Parameters
        ----------
        value
            The candidate value (as parsed from YAML or passed in Python).
        path
            Dotted name of the field (``"dynamics.damping"``), used in messages.

        Returns
        -------
        bool or int or float or str
            ``value`` converted to a plain Python ``kind`` (ints become floats for
            float fields; numpy scalars become Python scalars).

        Raises
        ------
        ConfigError
            Wrong type, non-finite number, out of range, invalid choice or pattern.
        """
        normalised = self._check_type(value, path)
        if self.kind in (int, float):
            self._check_range(normalised, path)
        elif self.kind is str:
            self._check_string(normalised, path)
        return normalised

    def _type_error(self, value: Any, path: str, note: str = "") -> ConfigError:
        return ConfigError(
            f"{path} = {format_value(value)} has the wrong type ({type(value).__name__}); "
            f"expected {_KIND_NAMES[self.kind]}{note}"
        )

    def _check_type(self, value: Any, path: str) -> Any:
        # bool is a subclass of int in Python, so it is excluded explicitly: `nu: true`
        # is a typo, never a lattice size.
        is_bool = isinstance(value, (bool, np.bool_))
        if self.kind is bool:
            if not is_bool:
                raise self._type_error(value, path)
            return bool(value)
        if self.kind is str:
            if not isinstance(value, str):
                raise self._type_error(value, path)
            return value
        if is_bool:
            raise self._type_error(value, path, "; booleans are not numbers")
        if self.kind is int:
            if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
                note = f"; write {int(value)} without a decimal point or exponent"
                raise self._type_error(value, path, note)
            if not isinstance(value, numbers.Integral):
                raise self._type_error(value, path)
            return int(value)
        # float field: accept any real number (ints are converted).
        if not isinstance(value, numbers.Real):
            note = "; write numbers without quotes (0.1, 1e-3)"
            raise self._type_error(value, path, note if isinstance(value, str) else "")
        try:
            converted = float(value)
        except OverflowError:
            converted = math.inf
        if not math.isfinite(converted):
            raise ConfigError(f"{path} = {format_value(value)} is not a finite number")
        return converted

    def _check_range(self, value: float | int, path: str) -> None:
        low, high = self.low, self.high
        if (low is None or value >= low) and (high is None or value <= high):
            return
        if low is not None and high is not None:
            allowed = f"[{format_number(low)}, {format_number(high)}]"
        elif low is not None:
            allowed = f">= {format_number(low)}"
        else:
            allowed = f"<= {format_number(high if high is not None else math.inf)}"
        raise ConfigError(f"{path} = {format_value(value)} is out of range; allowed {allowed}")

    def _check_string(self, value: str, path: str) -> None:
        if self.choices is not None and value not in self.choices:
            message = f"{path} = {value!r} is not valid; choose one of {_quoted_list(self.choices)}"
            close = difflib.get_close_matches(value, self.choices, n=1)
            if close:
                message += f" (did you mean {close[0]!r}?)"
            raise ConfigError(message)
        if self.pattern is not None and re.fullmatch(self.pattern, value) is None:
            expected = self.pattern_help or f"a string matching {self.pattern!r}"
            raise ConfigError(f"{path} = {value!r} is not valid; expected {expected}")


def spec(
    default: _T,
    *,
    low: float | None = None,
    high: float | None = None,
    choices: tuple[str, ...] | None = None,
    integer: bool = False,
    pattern: str | None = None,
    pattern_help: str = "",
    doc: str = "",
    symbol: str = "",
) -> _T:
    """Declare a validated dataclass field.

    The field's kind is ``int`` when ``integer`` is true, otherwise it follows the
    default: ``bool``, ``str``, or ``float`` for any other number (an int default of
    a float field is converted, so ``spec(0, high=1)`` is a float field).

    Parameters
    ----------
    default
        The default value (immutable scalar).
    low, high
        Inclusive bounds for numeric fields.
    choices
        Allowed values of a string field.
    integer
        Declare an integer field.
    pattern, pattern_help
        Full-match regular expression for a string field, and its description.
    doc
        One-line meaning of the field, with units.
    symbol
        Physics symbol (``"γ"``), shown in documentation.

    Returns
    -------
    dataclasses.Field
        Typed as the default's type so that ``x: float = spec(0.0)`` type-checks.

    Raises
    ------
    TypeError
        The declaration itself is inconsistent (a programming error, caught by the
        tests that import the schema).
    """
    kind: type
    if integer:
        if isinstance(default, bool) or not isinstance(default, int):
            raise TypeError(f"integer field needs an int default, got {default!r}")
        kind = int
    elif isinstance(default, bool):
        kind = bool
    elif isinstance(default, str):
        kind = str
    elif isinstance(default, (int, float)):
        kind = float
        default = float(default)  # type: ignore[assignment]
    else:
        raise TypeError(f"unsupported default {default!r} of type {type(default).__name__}")
    if (choices is not None or pattern is not None) and kind is not str:
        raise TypeError("choices and pattern apply to string fields only")
    if (low is not None or high is not None) and kind not in (int, float):
        raise TypeError("low and high apply to numeric fields only")
    field_spec = FieldSpec(
        kind=kind,
        low=low,
        high=high,
        choices=tuple(choices) if choices is not None else None,
        pattern=pattern,
        pattern_help=pattern_help,
        doc=doc,
        symbol=symbol,
    )
    # The default must itself be valid: a schema that contradicts its own ranges is a bug.
    field_spec.check(default, f"<default of {doc or 'field'}>")
    return dataclasses.field(default=default, metadata={SPEC_KEY: field_spec})


def field_specs(section: Any) -> dict[str, FieldSpec]:
    """Return ``{field name: FieldSpec}`` of a section class or instance, in declaration order.

    Fields declared without :func:`spec` (e.g. nested sections) are left out.
    """
    result: dict[str, FieldSpec] = {}
    for f in dataclasses.fields(section):
        field_spec = f.metadata.get(SPEC_KEY)
        if isinstance(field_spec, FieldSpec):
            result[f.name] = field_spec
    return result


def validate_section(obj: Any, path: str) -> None:
    """Validate every spec'd field of dataclass ``obj`` in place.

    Values are normalised (ints in float fields become floats). Nested dataclass
    fields are validated recursively under ``path.<field>``.

    Parameters
    ----------
    obj
        A dataclass instance whose fields were declared with :func:`spec`.
    path
        Dotted name of the section (``"dynamics"``), used in messages.

    Raises
    ------
    ConfigError
        The first invalid field, named by its dotted path.
    """
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError(f"validate_section expects a dataclass instance, got {obj!r}")
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        field_spec = f.metadata.get(SPEC_KEY)
        if isinstance(field_spec, FieldSpec):
            normalised = field_spec.check(value, f"{path}.{f.name}")
            if normalised is not value:
                # object.__setattr__ also works for frozen dataclasses.
                object.__setattr__(obj, f.name, normalised)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            validate_section(value, f"{path}.{f.name}")


def unknown_name_message(kind: str, name: str, valid: list[str], where: str) -> str:
    """Build "unknown key 'a.b' in <where>; did you mean 'a.c'?" (or list the valid names)."""
    message = f"unknown {kind} {name!r}"
    if where:
        message += f" in {where}"
    # Compare the last dotted component only: a shared "simulation." prefix would
    # otherwise make every key of the section look similar.
    leaves = {candidate.rpartition(".")[2]: candidate for candidate in valid}
    close = difflib.get_close_matches(name.rpartition(".")[2], list(leaves), n=1, cutoff=0.6)
    if close:
        return f"{message}; did you mean {leaves[close[0]]!r}?"
    return f"{message}; valid: {_quoted_list(tuple(valid))}"


@dataclass
class Section:
    """Base class of config sections: validation on construction, ``validate``, ``replace``.

    Subclasses are ``@dataclass`` classes whose fields are declared with :func:`spec`
    and which set ``section_name`` to the name of their section in the YAML file.
    """

    section_name: ClassVar[str] = "section"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field (type, range, choice) and normalise values in place.

        Raises
        ------
        ConfigError
            Naming the first invalid field as ``<section>.<field>``.
        """
        validate_section(self, self.section_name)

    def replace(self: _S, **changes: Any) -> _S:
        """Return a validated copy with ``changes`` applied.

        Raises
        ------
        ConfigError
            An unknown field name (with the closest valid one) or an invalid value.
        """
        names = [f.name for f in dataclasses.fields(self)]
        for name in changes:
            if name not in names:
                path = f"{self.section_name}.{name}"
                valid = [f"{self.section_name}.{n}" for n in names]
                raise ConfigError(unknown_name_message("key", path, valid, ""))
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Return ``{field: value}`` in declaration order (plain Python scalars)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_mapping(cls: type[_S], data: Mapping[str, Any]) -> _S:
        """Build a validated section from a mapping of field names (unknown keys rejected)."""
        specs = field_specs(cls)
        for name in data:
            if name not in specs:
                path = f"{cls.section_name}.{name}"
                valid = [f"{cls.section_name}.{n}" for n in specs]
                raise ConfigError(unknown_name_message("key", str(path), valid, ""))
        return cls(**dict(data))
