"""Command lines of the science examples: ``--out``, ``--quick``, flags and ``key=value``.

Not an example itself (the leading underscore keeps it out of the smoke tests). Each
science script declares the parameters it exposes as :class:`Param` s; a plain run uses
their documented defaults, ``--quick`` their small values, and ``key=value`` overrides
(the value parsed as a YAML scalar, as in the ``hhml-*`` tools' ``section.key=value``)
win over both, as do the script's own flags (``--layers 3``). An unknown key, a
malformed override or an invalid value is a one-line error on stderr naming the key and
what is valid, with exit status 2::

    python examples/science/mera_ising.py --quick sweeps=100 --out results/mera

Public names: ``Param``, ``Value``, ``apply_overrides``, ``build_parser``,
``parse_parameters``, ``as_int``, ``as_float``, ``run``.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TypeAlias

from hhml.config.yaml_io import parse_scalar
from hhml.errors import ConfigError, HHmLError

__all__ = [
    "Param",
    "Value",
    "apply_overrides",
    "as_float",
    "as_int",
    "build_parser",
    "parse_parameters",
    "run",
]

#: The value types a parameter may have.
Value: TypeAlias = bool | int | float | str


@dataclass(frozen=True)
class Param:
    """One parameter of a science example.

    Attributes
    ----------
    name : str
        The override key (``name=value``) and, when the script has a flag for it, the
        flag's ``dest``.
    default : bool, int, float or str
        The value of a plain run (the documented default); its type is the parameter's.
    help : str
        What it is, with units.
    quick : bool, int, float, str or None
        The value under ``--quick`` (None: the default).
    minimum : float or None
        The smallest valid value of a number (inclusive).
    """

    name: str
    default: Value
    help: str
    quick: Value | None = None
    minimum: float | None = None

    def kind(self) -> str:
        """The parameter's type in words (for messages)."""
        if isinstance(self.default, bool):
            return "true or false"
        bound = f" ≥ {self.minimum:g}" if self.minimum is not None else ""
        if isinstance(self.default, int):
            return f"an integer{bound}"
        if isinstance(self.default, float):
            return f"a finite number{bound}"
        return "a string"

    def check(self, value: object, where: str) -> Value:
        """Return ``value`` as this parameter's type.

        Raises
        ------
        ConfigError
            ``value`` has another type, is not finite or is below :attr:`minimum`; the
            message names the key, the value, ``where`` it came from and what is valid.
        """
        default = self.default
        result: Value | None = None
        if isinstance(default, bool):
            result = value if isinstance(value, bool) else None
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
            result = value if ok else None  # type: ignore[assignment]
        elif isinstance(default, float):
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if number and math.isfinite(float(value)):  # type: ignore[arg-type]
                result = float(value)  # type: ignore[arg-type]
        else:
            result = str(value)
        if (
            result is not None
            and self.minimum is not None
            and not isinstance(result, (bool, str))
            and result < self.minimum
        ):
            result = None
        if result is None:
            raise ConfigError(
                f"{self.name} = {value!r} ({where}) is not valid; it must be {self.kind()}"
            )
        return result


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names)


def apply_overrides(
    params: Sequence[Param], overrides: Sequence[str], values: dict[str, Value]
) -> dict[str, Value]:
    """Apply ``key=value`` overrides, in order, to ``values`` (changed in place).

    Parameters
    ----------
    params
        The parameters the example exposes.
    overrides
        ``key=value`` strings; a value is parsed as a YAML scalar (``1e-3``, ``true``),
        and taken verbatim for a string parameter.
    values
        ``{name: value}`` of every parameter before the overrides.

    Returns
    -------
    dict
        ``values``.

    Raises
    ------
    ConfigError
        A malformed override, an unknown key (the message lists the valid ones) or an
        invalid value.
    """
    by_name = {p.name: p for p in params}
    valid = _quoted(list(by_name))
    for override in overrides:
        name, sep, text = override.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError(
                f"malformed override {override!r}; expected key=value with a key of {valid}"
            )
        param = by_name.get(name)
        if param is None:
            raise ConfigError(f"unknown key {name!r} in override {override!r}; valid: {valid}")
        text = text.strip()
        raw = text if isinstance(param.default, str) else parse_scalar(text)
        values[name] = param.check(raw, f"override {override!r}")
    return values


def build_parser(
    description: str, params: Sequence[Param], out: Path, quick_help: str
) -> argparse.ArgumentParser:
    """An argument parser with ``--out``, ``--quick`` and the positional overrides.

    The epilog lists every parameter with its default, its ``--quick`` value and its
    meaning. Add the script's own flags with ``dest`` equal to a parameter's name and
    ``default=None`` (so that an absent flag does not hide ``--quick``).
    """
    width = max(len(p.name) for p in params)
    lines = ["overrides (key=value; plain run default, then --quick value):"]
    for p in params:
        quick = "" if p.quick is None else f", --quick {p.quick}"
        lines.append(f"  {p.name:<{width}}  {p.help} (default {p.default}{quick})")
    parser = argparse.ArgumentParser(
        description=description,
        epilog="\n".join(lines),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=out, help=f"output directory ({out})")
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="parameter overrides")
    return parser


def parse_parameters(
    parser: argparse.ArgumentParser,
    params: Sequence[Param],
    argv: Sequence[str] | None = None,
) -> tuple[argparse.Namespace, dict[str, Value]]:
    """Parse the command line; return the namespace and the resolved parameter values.

    Precedence, lowest first: the defaults, the ``--quick`` values, the script's flags
    (attributes of the namespace named like a parameter, when not None), the overrides.
    An error is printed as ``<prog>: error: <message>`` on one line and exits with 2.
    """
    args = parser.parse_intermixed_args(argv)
    values: dict[str, Value] = {p.name: p.default for p in params}
    try:
        if args.quick:
            values.update({p.name: p.quick for p in params if p.quick is not None})
        for p in params:
            flag = getattr(args, p.name, None)
            if flag is not None:
                values[p.name] = p.check(flag, f"flag --{p.name.replace('_', '-')}")
        apply_overrides(params, args.overrides, values)
    except ConfigError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return args, values


def as_int(values: Mapping[str, Value], name: str) -> int:
    """``values[name]`` as an int (its parameter is an integer one)."""
    value = values[name]
    assert isinstance(value, int) and not isinstance(value, bool)
    return value


def as_float(values: Mapping[str, Value], name: str) -> float:
    """``values[name]`` as a float (its parameter is a number)."""
    value = values[name]
    assert isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value)


def run(main: Callable[[], int]) -> NoReturn:
    """Call ``main`` and exit with its status; a library error is one line on stderr.

    A :class:`~hhml.errors.ConfigError` (an invalid parameter the library rejects) exits
    with 2, like an invalid override; any other :class:`~hhml.errors.HHmLError` with 1.
    """
    try:
        code = main()
    except HHmLError as exc:
        print(f"{Path(sys.argv[0]).name}: error: {exc}", file=sys.stderr)
        sys.exit(2 if isinstance(exc, ConfigError) else 1)
    sys.exit(code)
