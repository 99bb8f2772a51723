"""Utilities shared by every layer: devices, seeding, dtypes and atomic file I/O.

Public names: ``resolve_device``, ``seed_everything``, ``make_generator``,
``resolve_complex_dtype``, ``real_dtype_of``, ``atomic_write_bytes``,
``atomic_write_text``, ``atomic_torch_save``, ``append_jsonl``.
"""

from __future__ import annotations

from hhml.utils.atomic_io import (
    append_jsonl,
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_text,
)
from hhml.utils.device import resolve_device
from hhml.utils.dtypes import real_dtype_of, resolve_complex_dtype
from hhml.utils.seeding import make_generator, seed_everything

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
