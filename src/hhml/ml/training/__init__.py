"""Training RL agents on the HHmL environments: the loop, checkpoints, run directories.

>>> from hhml.config import load_config
>>> from hhml.ml.training import Trainer
>>> cfg = load_config("configs/experiment/quickstart.yaml")   # doctest: +SKIP
>>> result = Trainer.create(cfg).train()                       # doctest: +SKIP

Modules: :mod:`~hhml.ml.training.trainer` (the loop, evaluation, resume),
:mod:`~hhml.ml.training.evaluation` (seeded evaluation episodes, random baseline),
:mod:`~hhml.ml.training.checkpoint` (checkpoint files),
:mod:`~hhml.ml.training.run_dir` (run directories),
:mod:`~hhml.ml.training.metrics` (records and their writers),
:mod:`~hhml.ml.training.rng` (global RNG states).

Public names: ``Trainer``, ``TrainResult``, ``EvalResult``, ``Components``,
``build_components``, ``AgentFactory``, ``RESUMABLE_KEYS``, ``RunDirectory``,
``load_checkpoint``, ``load_trained_agent``, ``save_checkpoint``, ``read_metrics``,
``CHECKPOINT_VERSION``.
"""

from __future__ import annotations

from hhml.ml.training.checkpoint import (
    CHECKPOINT_VERSION,
    load_checkpoint,
    load_trained_agent,
    save_checkpoint,
)
from hhml.ml.training.evaluation import EvalResult
from hhml.ml.training.metrics import read_metrics
from hhml.ml.training.run_dir import RunDirectory
from hhml.ml.training.trainer import (
    RESUMABLE_KEYS,
    AgentFactory,
    Components,
    Trainer,
    TrainResult,
    build_components,
)

__all__ = [
    "CHECKPOINT_VERSION",
    "RESUMABLE_KEYS",
    "AgentFactory",
    "Components",
    "EvalResult",
    "RunDirectory",
    "TrainResult",
    "Trainer",
    "build_components",
    "load_checkpoint",
    "load_trained_agent",
    "read_metrics",
    "save_checkpoint",
]
