"""Utilities shared by every layer: devices, seeding, dtypes and atomic file I/O.

The public names are imported on first use (PEP 562 ``__getattr__``), so importing a
submodule such as :mod:`hhml.utils.atomic_io` (which :mod:`hhml.config` needs) does not
import the others and, through them, torch. ``from hhml.utils import resolve_device``
works as before; the name's module is imported at that moment.

Public names: ``resolve_device``, ``seed_everything``, ``make_generator``,
``resolve_complex_dtype``, ``real_dtype_of``, ``atomic_write_bytes``,
``atomic_write_text``, ``atomic_torch_save``, ``append_jsonl``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the static view: the names as if imported eagerly
    from hhml.utils.atomic_io import (
        append_jsonl,
        atomic_torch_save,
        atomic_write_bytes,
        atomic_write_text,
    )
    from hhml.utils.device import resolve_device
    from hhml.utils.dtypes import real_dtype_of, resolve_complex_dtype
    from hhml.utils.seeding import make_generator, seed_everything

#: Public name → the submodule that defines it (imported by :func:`__getattr__`).
_LAZY: dict[str, str] = {
    "append_jsonl": "hhml.utils.atomic_io",
    "atomic_torch_save": "hhml.utils.atomic_io",
    "atomic_write_bytes": "hhml.utils.atomic_io",
    "atomic_write_text": "hhml.utils.atomic_io",
    "make_generator": "hhml.utils.seeding",
    "real_dtype_of": "hhml.utils.dtypes",
    "resolve_complex_dtype": "hhml.utils.dtypes",
    "resolve_device": "hhml.utils.device",
    "seed_everything": "hhml.utils.seeding",
}

__all__ = [
    "append_jsonl",
    "atomic_torch_save",
    "atomic_write_bytes",
    "atomic_write_text",
    "make_generator",
    "real_dtype_of",
    "resolve_complex_dtype",
    "resolve_device",
    "seed_everything",
]


def __getattr__(name: str) -> Any:
    """Import the public name ``name`` from its submodule on first use (PEP 562).

    Raises
    ------
    AttributeError
        ``name`` is not a public name of :mod:`hhml.utils` (nor a submodule already
        imported); the message lists the public names.
    """
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(
            f"module 'hhml.utils' has no attribute {name!r}; its public names are "
            f"{', '.join(sorted(_LAZY))}"
        )
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
