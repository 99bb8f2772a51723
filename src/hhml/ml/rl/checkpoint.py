"""Checking and restoring the pieces of an agent checkpoint, with clear errors.

Every failure raises :class:`hhml.errors.CheckpointError` whose message names the
dotted key (``networks.actor.net.0.weight``) and what was expected.

Public names: ``require``, ``load_module``, ``load_optimizer``, ``check_tensor``,
``tensors_to_cpu``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from hhml.errors import CheckpointError

__all__ = ["check_tensor", "load_module", "load_optimizer", "require", "tensors_to_cpu"]


def require(state: Mapping[str, Any], key: str, where: str, kind: type | None = None) -> Any:
    """Return ``state[key]``, or raise naming ``where.key`` if it is missing or the wrong type."""
    path = f"{where}.{key}" if where else key
    if not isinstance(state, Mapping):
        raise CheckpointError(f"checkpoint entry {where!r} is {type(state).__name__}, not a dict")
    if key not in state:
        raise CheckpointError(f"checkpoint is missing key {path!r}")
    value = state[key]
    if kind is not None and not isinstance(value, kind):
        raise CheckpointError(
            f"checkpoint key {path!r} is {type(value).__name__}, expected {kind.__name__}"
        )
    return value


def check_tensor(
    value: Any, path: str, shape: tuple[int, ...], dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Return ``value`` if it is a tensor of ``shape`` (and ``dtype``), else raise."""
    if not isinstance(value, torch.Tensor):
        raise CheckpointError(
            f"checkpoint key {path!r} is {type(value).__name__}, expected a tensor"
        )
    if tuple(value.shape) != tuple(shape):
        raise CheckpointError(
            f"checkpoint key {path!r} has shape {tuple(value.shape)}, expected {tuple(shape)}"
        )
    if dtype is not None and value.dtype != dtype:
        raise CheckpointError(f"checkpoint key {path!r} has dtype {value.dtype}, expected {dtype}")
    return value


def load_module(module: nn.Module, state: Any, where: str) -> None:
    """Load a module's ``state_dict`` after checking every key and shape."""
    if not isinstance(state, Mapping):
        raise CheckpointError(f"checkpoint key {where!r} is {type(state).__name__}, not a dict")
    own = module.state_dict()
    for key, tensor in own.items():
        value = require(state, key, where)
        check_tensor(value, f"{where}.{key}", tuple(tensor.shape))
    extra = sorted(set(state) - set(own))
    if extra:
        raise CheckpointError(
            f"checkpoint key {where!r} has unexpected entries {extra}; "
            "was it written by an agent with a different architecture?"
        )
    module.load_state_dict(dict(state))


def load_optimizer(optimizer: torch.optim.Optimizer, state: Any, where: str) -> None:
    """Load an optimiser's ``state_dict``; torch's own mismatch errors become CheckpointError."""
    if not isinstance(state, Mapping):
        raise CheckpointError(f"checkpoint key {where!r} is {type(state).__name__}, not a dict")
    require(state, "state", where)
    require(state, "param_groups", where)
    try:
        optimizer.load_state_dict(dict(state))
    except (ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(
            f"checkpoint key {where!r} does not fit the optimiser: {exc}"
        ) from exc
    # Adam's moment estimates must match their parameters' shapes; torch does not check.
    for group in optimizer.param_groups:
        for param in group["params"]:
            for name, value in optimizer.state.get(param, {}).items():
                if (
                    isinstance(value, torch.Tensor)
                    and value.dim() > 0
                    and value.shape != param.shape
                ):
                    raise CheckpointError(
                        f"checkpoint key {where}.state has an entry {name!r} of shape "
                        f"{tuple(value.shape)} for a parameter of shape {tuple(param.shape)}"
                    )


def tensors_to_cpu(value: Any) -> Any:
    """Copy of a nested dict/list structure with every tensor detached and moved to CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, Mapping):
        return {k: tensors_to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(tensors_to_cpu(v) for v in value)
    return value
