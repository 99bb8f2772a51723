"""Seeding random number generators and switching on deterministic kernels.

Public names: ``seed_everything``, ``make_generator``, ``MAX_SEED``.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from hhml.errors import ConfigError
from hhml.utils.device import resolve_device

__all__ = ["MAX_SEED", "make_generator", "seed_everything"]

#: Largest accepted seed (the range of ``simulation.seed``).
MAX_SEED = 2**63 - 1

_UINT32 = 2**32


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigError(
            f"seed must be a non-negative integer, got {type(seed).__name__} {seed!r}"
        )
    value = int(seed)
    if not 0 <= value <= MAX_SEED:
        raise ConfigError(f"seed = {value} is out of range; allowed [0, {MAX_SEED}]")
    return value


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python's ``random``, NumPy's global RNG and torch (CPU and every CUDA device).

    Parameters
    ----------
    seed
        Non-negative integer, at most ``2**63 - 1``.
    deterministic
        If true, ask torch for deterministic kernels: cuDNN deterministic and not
        benchmarking, ``torch.use_deterministic_algorithms(True, warn_only=True)``
        (a warning, not an error, for ops without a deterministic version), and
        ``CUBLAS_WORKSPACE_CONFIG`` set (if unset) as cuBLAS requires. If false,
        deterministic algorithms are switched off again.

    Raises
    ------
    ConfigError
        ``seed`` is not a non-negative integer in range.
    """
    value = _check_seed(seed)
    random.seed(value)
    # NumPy's legacy global seed takes 32-bit words; small seeds keep their usual
    # meaning (np.random.seed(0)), larger ones are split into two words.
    if value < _UINT32:
        np.random.seed(value)
    else:
        np.random.seed([value % _UINT32, value // _UINT32])
    torch.manual_seed(value)
    torch.cuda.manual_seed_all(value)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.backends.cudnn.deterministic = False
        torch.use_deterministic_algorithms(False)


def make_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """Return a new ``torch.Generator`` on ``device`` seeded with ``seed``.

    Independent of the global RNG, so a component that owns its generator draws
    the same numbers however much randomness other components consume.

    Raises
    ------
    ConfigError
        Invalid seed.
    DeviceError
        Invalid or unavailable device.
    """
    value = _check_seed(seed)
    generator = torch.Generator(device=resolve_device(device))
    generator.manual_seed(value)
    return generator
