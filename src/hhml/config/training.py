"""Config section ``training``: the training loop, evaluation, logging and checkpoints.

Public names: ``TrainingConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hhml.config.specs import Section, spec

__all__ = ["TrainingConfig"]


@dataclass
class TrainingConfig(Section):
    """Settings of :class:`hhml.ml.training.Trainer` (config section ``training``)."""

    section_name: ClassVar[str] = "training"

    total_steps: int = spec(
        20_000, low=1, integer=True, doc="environment steps to train for (summed over envs)"
    )
