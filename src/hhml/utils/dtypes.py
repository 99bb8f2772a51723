"""Complex and real dtypes of fields.

Public names: ``COMPLEX_DTYPES``, ``resolve_complex_dtype``, ``real_dtype_of``.
"""

from __future__ import annotations

import torch

from hhml.errors import ConfigError

__all__ = ["COMPLEX_DTYPES", "real_dtype_of", "resolve_complex_dtype"]

#: Supported field dtypes by config name.
COMPLEX_DTYPES: dict[str, torch.dtype] = {
    "complex64": torch.complex64,
    "complex128": torch.complex128,
}

_REAL_OF: dict[torch.dtype, torch.dtype] = {
    torch.complex64: torch.float32,
    torch.complex128: torch.float64,
}


def resolve_complex_dtype(name: str | torch.dtype) -> torch.dtype:
    """Return the torch complex dtype named ``name``.

    Parameters
    ----------
    name
        ``"complex64"``, ``"complex128"`` or one of those ``torch.dtype`` objects.

    Raises
    ------
    ConfigError
        Anything else (the message lists the supported names).
    """
    if isinstance(name, torch.dtype):
        if name in _REAL_OF:
            return name
    elif isinstance(name, str) and name in COMPLEX_DTYPES:
        return COMPLEX_DTYPES[name]
    valid = ", ".join(repr(n) for n in COMPLEX_DTYPES)
    raise ConfigError(f"dtype {name!r} is not a supported complex dtype; choose one of {valid}")


def real_dtype_of(complex_dtype: str | torch.dtype) -> torch.dtype:
    """Return the real dtype of a complex dtype's components (complex64 → float32).

    Raises
    ------
    ConfigError
        ``complex_dtype`` is not a supported complex dtype.
    """
    return _REAL_OF[resolve_complex_dtype(complex_dtype)]
