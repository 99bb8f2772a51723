"""Config section ``env``: the RL environment over the simulation.

Public names: ``EnvConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hhml.config.specs import Section, spec

__all__ = ["EnvConfig"]


@dataclass
class EnvConfig(Section):
    """Settings of :class:`hhml.ml.env.MobiusVortexEnv` (config section ``env``)."""

    section_name: ClassVar[str] = "env"

    id: str = spec(
        "hhml/MobiusVortex-v0",
        pattern=r"\S+",
        pattern_help="a gymnasium environment id such as 'hhml/MobiusVortex-v0' or 'Pendulum-v1'",
        doc="gymnasium id of the environment to train on",
    )
    num_envs: int = spec(1, low=1, high=4096, integer=True, doc="environments batched together")
