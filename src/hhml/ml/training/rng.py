"""Capturing and restoring every global random number generator.

A resumed run continues the same trajectory only if every source of randomness
continues where it stopped. The states are stored as tensors and plain Python
containers so that a checkpoint loads with ``torch.load(..., weights_only=True)``.

Public names: ``capture_rng_state``, ``restore_rng_state``.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from hhml.errors import CheckpointError

__all__ = ["capture_rng_state", "restore_rng_state"]


def capture_rng_state() -> dict[str, Any]:
    """The states of Python's ``random``, NumPy's global RNG and torch (CPU and CUDA).

    Returns
    -------
    dict
        ``python``: ``[version, [625 ints], gauss_next]``; ``numpy``: the legacy
        global ``MT19937`` state with its key as an int64 tensor ``[624]``;
        ``torch``: the CPU generator state (uint8 tensor); ``cuda``: a list of
        per-device states (empty without CUDA).
    """
    version, internal, gauss_next = random.getstate()
    np_state = np.random.get_state(legacy=False)
    assert isinstance(np_state, dict)  # legacy=False always returns the dict form
    cuda = [s.cpu() for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else []
    return {
        "python": [version, list(internal), gauss_next],
        "numpy": {
            "bit_generator": str(np_state["bit_generator"]),
            "key": torch.from_numpy(np.asarray(np_state["state"]["key"], dtype=np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": cuda,
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`capture_rng_state`.

    CUDA states are restored when CUDA is available and the checkpoint has one
    state per visible device; otherwise they are skipped (a CPU resume of a GPU run).

    Raises
    ------
    CheckpointError
        A missing or malformed entry, named by its key.
    """
    try:
        version, internal, gauss_next = state["python"]
        random.setstate((int(version), tuple(int(x) for x in internal), gauss_next))
        np_state = state["numpy"]
        np.random.set_state(
            {
                "bit_generator": np_state["bit_generator"],
                "state": {
                    "key": np_state["key"].numpy().astype(np.uint32),
                    "pos": int(np_state["pos"]),
                },
                "has_gauss": int(np_state["has_gauss"]),
                "gauss": float(np_state["gauss"]),
            }
        )
        torch.set_rng_state(state["torch"])
        cuda = state["cuda"]
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint entry 'rng' is malformed: {exc!r}") from exc
    if torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
