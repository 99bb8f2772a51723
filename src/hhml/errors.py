"""Exceptions raised by HHmL.

Every error HHmL raises on purpose is a subclass of :class:`HHmLError`, so a
caller (or a CLI command) can catch one class and turn it into a clean
one-line message. Messages name the offending key, file or value and say what
would be valid.

Public names: ``HHmLError``, ``ConfigError``, ``CheckpointError``,
``NumericalInstabilityError``, ``DeviceError``, ``ValidationError``,
``LatticeError``.
"""

from __future__ import annotations


class HHmLError(Exception):
    """Base class of every error raised deliberately by HHmL."""


class ConfigError(HHmLError, ValueError):
    """A configuration key, value, type, file or override is invalid."""


class CheckpointError(HHmLError):
    """A checkpoint or run directory is missing, malformed or incompatible."""


class NumericalInstabilityError(HHmLError, ArithmeticError):
    """The time step exceeds a stability bound, or the state became NaN/Inf."""


class DeviceError(HHmLError, RuntimeError):
    """The requested compute device is unavailable or unknown."""


class ValidationError(HHmLError):
    """A physics validation check could not be run (not: a check that failed)."""


class LatticeError(HHmLError, ValueError):
    """A lattice was constructed with invalid geometry or a field has the wrong shape."""
