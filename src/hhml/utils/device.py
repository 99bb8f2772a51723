"""Choosing the compute device.

Public names: ``resolve_device``, ``DEVICE_CHOICES_HELP``.
"""

from __future__ import annotations

import re

import torch

from hhml.errors import DeviceError

__all__ = ["DEVICE_CHOICES_HELP", "resolve_device"]

#: How valid device strings are described in messages.
DEVICE_CHOICES_HELP = "'auto', 'cpu', 'cuda' or 'cuda:N'"

_CUDA_RE = re.compile(r"cuda(?::([0-9]+))?")


def _available() -> str:
    if not torch.cuda.is_available():
        built = f"CUDA {torch.version.cuda}" if torch.version.cuda else "without CUDA"
        return f"only 'cpu' is available (torch {torch.__version__} built {built}, no GPU found)"
    count = torch.cuda.device_count()
    names = ", ".join(f"'cuda:{i}'" for i in range(count))
    return f"available: 'cpu', {names}"


def _cuda(index: int | None, request: str) -> torch.device:
    if not torch.cuda.is_available():
        raise DeviceError(
            f"device {request!r} was requested but CUDA is not available; {_available()}. "
            "Use device 'cpu' or 'auto'."
        )
    if index is None:
        index = torch.cuda.current_device()
    count = torch.cuda.device_count()
    if index >= count:
        raise DeviceError(
            f"device {request!r} does not exist: {count} CUDA device(s) found; {_available()}"
        )
    return torch.device("cuda", index)


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """Turn a device request into a concrete :class:`torch.device`.

    Parameters
    ----------
    spec
        ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"`` (the current
        CUDA device) or ``"cuda:N"``; or a ``torch.device`` of type cpu or cuda.

    Returns
    -------
    torch.device
        ``cpu`` or ``cuda:N`` with an explicit index, so that it compares equal to
        ``tensor.device`` of tensors created on it.

    Raises
    ------
    DeviceError
        CUDA requested but absent, an index out of range, or an unknown string;
        the message names the request and what is available.
    """
    if isinstance(spec, torch.device):
        if spec.type == "cpu":
            return torch.device("cpu")
        if spec.type == "cuda":
            return _cuda(spec.index, str(spec))
        raise DeviceError(
            f"device {str(spec)!r} is not supported; choose {DEVICE_CHOICES_HELP}; {_available()}"
        )
    if not isinstance(spec, str):
        raise DeviceError(
            f"device must be a string or torch.device, got {type(spec).__name__} {spec!r}"
        )
    if spec == "auto":
        return _cuda(None, spec) if torch.cuda.is_available() else torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    match = _CUDA_RE.fullmatch(spec)
    if match is None:
        raise DeviceError(f"unknown device {spec!r}; choose {DEVICE_CHOICES_HELP}; {_available()}")
    index = match.group(1)
    return _cuda(int(index) if index is not None else None, spec)
