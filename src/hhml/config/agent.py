"""Config section ``agent``: the RL algorithm and its hyperparameters.

Every hyperparameter of :mod:`hhml.ml.rl` lives here (defaults follow the RL Zoo
settings for TD3/SAC on continuous control); ``configs/agent/*.yaml`` select
per-algorithm values.

Public names: ``AgentConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hhml.config.specs import Section, spec

__all__ = ["AgentConfig"]


@dataclass
class AgentConfig(Section):
    """Hyperparameters of the RL agent (config section ``agent``)."""

    section_name: ClassVar[str] = "agent"

    algorithm: str = spec(
        "td3", choices=("td3", "sac", "recurrent_td3"), doc="RL algorithm"
    )
