"""Guarding the device-native hot path against host synchronisation.

A step of the batched environment must not wait for the device: no ``.item()``,
``.cpu()``, ``.numpy()``, ``.tolist()``, ``bool(tensor)``, ``int(tensor)``,
``float(tensor)`` or data-dependent shapes (``torch.nonzero``). On CUDA,
``torch.cuda.set_sync_debug_mode("error")`` enforces that. On a CPU, where
there is no device to wait for, :func:`forbid_host_sync` is the equivalent
guard: inside it those calls raise :class:`HostSyncError`, and
:func:`device_paths_only` tells dispatchers to take the code path a GPU would
take (e.g. masked dense work instead of a CPU-only compaction with
``torch.nonzero``), so that a CPU test checks the GPU path.

Public names: ``HostSyncError``, ``forbid_host_sync``, ``device_paths_only``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import torch

__all__ = ["HostSyncError", "device_paths_only", "forbid_host_sync"]

_STATE = threading.local()

#: Tensor methods that copy a value to the host (and so wait for the device).
_TENSOR_METHODS = (
    "item",
    "cpu",
    "numpy",
    "tolist",
    "__bool__",
    "__int__",
    "__float__",
    "__index__",
)
#: torch functions whose output shape depends on tensor values.
_TORCH_FUNCTIONS = ("nonzero", "unique", "masked_select", "argwhere")


class HostSyncError(RuntimeError):
    """A host synchronisation happened inside :func:`forbid_host_sync`."""


def device_paths_only() -> bool:
    """True inside :func:`forbid_host_sync`: take the device (GPU) code paths."""
    return bool(getattr(_STATE, "active", False))


def _raiser(name: str) -> Callable[..., Any]:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise HostSyncError(f"host synchronisation inside the guarded step: {name}")

    return fail


@contextlib.contextmanager
def forbid_host_sync() -> Iterator[None]:
    """Raise :class:`HostSyncError` on any host synchronisation in the block.

    Patches the tensor methods and torch functions listed in this module for the
    duration of the block (not thread-safe: for tests), and sets
    :func:`device_paths_only`.
    """
    saved: list[tuple[Any, str, Any]] = []
    try:
        for name in _TENSOR_METHODS:
            saved.append((torch.Tensor, name, getattr(torch.Tensor, name)))
            setattr(torch.Tensor, name, _raiser(f"Tensor.{name}"))
        for name in _TORCH_FUNCTIONS:
            saved.append((torch, name, getattr(torch, name)))
            setattr(torch, name, _raiser(f"torch.{name}"))
        _STATE.active = True
        yield
    finally:
        _STATE.active = False
        for owner, name, original in saved:
            setattr(owner, name, original)
