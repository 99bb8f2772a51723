"""Non-learning baselines with the agent's env-step budget: what a learned policy must beat.

:func:`run_baselines` scores uniformly random actions, the mid-point action, and the
best constant action and best open-loop (time-only) schedule found by CMA-ES with the
same number of env steps as the agent's training, on the trainer's own evaluation
seeds, with 95 % confidence intervals (``hhml-baselines`` on the command line).

Public names: ``BASELINES``, ``BaselineResult``, ``run_baselines``, ``ConstantPolicy``,
``SchedulePolicy``, ``SearchResult``, ``search_open_loop``, ``episode_horizon``.
"""

from __future__ import annotations

from hhml.ml.baselines.policies import ConstantPolicy, SchedulePolicy
from hhml.ml.baselines.search import SearchResult, episode_horizon, search_open_loop
from hhml.ml.baselines.suite import BASELINES, BaselineResult, run_baselines

__all__ = [
    "BASELINES",
    "BaselineResult",
    "ConstantPolicy",
    "SchedulePolicy",
    "SearchResult",
    "episode_horizon",
    "run_baselines",
    "search_open_loop",
]
