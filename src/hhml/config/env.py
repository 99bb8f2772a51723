"""Config section ``env``: the RL environment over the simulation.

Public names: ``EnvConfig``, ``TASKS``, ``OPEN_LOOP_TASKS``, ``FEEDBACK_TASKS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hhml.config.specs import Section, spec
from hhml.errors import ConfigError

__all__ = ["FEEDBACK_TASKS", "OPEN_LOOP_TASKS", "TASKS", "EnvConfig"]

#: Tasks with a fixed goal: one parameter set solves them, feedback is never needed (on the
#: quickstart the best constant action beats TD3 and SAC; docs/environment.md).
OPEN_LOOP_TASKS = ("target_density", "lattice_order", "persistence")
#: Tasks whose goal is drawn per episode and only observed: an open-loop policy cannot solve
#: them (docs/environment.md).
FEEDBACK_TASKS = ("setpoint_density",)
#: Reward tasks of :class:`hhml.ml.env.MobiusVortexEnv`.
TASKS = OPEN_LOOP_TASKS + FEEDBACK_TASKS


@dataclass
class EnvConfig(Section):
    """Settings of :class:`hhml.ml.env.MobiusVortexEnv` (config section ``env``).

    One environment step applies the 23 controls, integrates ``steps_per_action``
    simulator steps and measures the field with the fixed vortex detector. The
    reward of every task is in [0, 1]; a collapsed or numerically unstable field
    scores ``failure_reward`` and ends its episode.
    """

    section_name: ClassVar[str] = "env"

    id: str = spec(
        "hhml/MobiusVortex-v0",
        pattern=r"[^\s:]+",
        pattern_help="a gymnasium environment id such as 'hhml/MobiusVortex-v0' or 'Pendulum-v1' "
        "(no ':': a 'module:Env' id would make gymnasium import a module named by the config)",
        doc="gymnasium id of the environment to train on",
    )
    num_envs: int = spec(1, low=1, high=4096, integer=True, doc="environments batched together")
    steps_per_action: int = spec(
        5, low=1, high=10_000, integer=True, doc="simulator steps per environment step (K)"
    )
    horizon: int = spec(
        40, low=2, high=10**6, integer=True, doc="environment steps per episode (truncation)"
    )
    task: str = spec("target_density", choices=TASKS, doc="what the reward measures")
    target_density: float = spec(
        0.03, low=1e-4, high=0.3, doc="target vortex density (vortices per plaquette)"
    )
    setpoint_count: int = spec(
        3,
        low=1,
        high=1000,
        integer=True,
        doc="task setpoint_density: set-points per episode (K; at most env.horizon)",
    )
    setpoint_low: float = spec(
        0.02, low=1e-4, high=0.3, doc="task setpoint_density: lowest set-point density"
    )
    setpoint_high: float = spec(
        0.14,
        low=1e-4,
        high=0.3,
        doc="task setpoint_density: highest set-point density (> env.setpoint_low)",
    )
    density_tolerance: float = spec(
        0.02, low=1e-4, high=1.0, doc="width σ of the density reward exp(−((ρ−ρ*)/σ)²)"
    )
    lifetime_scale: float = spec(
        5.0, low=1e-3, doc="τ of the persistence reward 1 − exp(−⟨lifetime⟩/τ) (time)"
    )
    quality_weight: float = spec(
        0.2, low=0.0, high=1.0, doc="weight of the core-quality term (the task term gets 1 − w)"
    )
    min_vortices_for_order: int = spec(
        7, low=2, integer=True, doc="vortices needed before |ψ₆| counts (else 0)"
    )
    collapse_rms: float = spec(
        1e-2, low=0.0, doc="rms |ψ| below which the field counts as collapsed"
    )
    failure_reward: float = spec(
        -1.0, low=-10.0, high=0.0, doc="reward of a collapsed or unstable step (ends the episode)"
    )
    track_distance: float = spec(
        0.5, low=1e-3, doc="largest vortex displacement per env step the tracker links (length)"
    )
    max_vortices: int = spec(
        256,
        low=8,
        high=4096,
        integer=True,
        doc="vortices per strip that ages, hexatic order and annihilation follow (the first "
        "in plaquette order; counts, charges and densities use all). A field of random "
        "phases has one on 1/3 of the plaquettes: 176 on a 48 × 12 strip",
    )
    max_targets: int = spec(
        8, low=0, high=10_000, integer=True, doc="most vortices targeted per env and step"
    )
    antivortex_strength: float = spec(
        0.0, low=0.0, high=1.0, doc="initial antivortex imprint strength s (control 20)"
    )
    annihilation_radius: float = spec(
        0.2, low=1e-3, high=10.0, doc="initial annihilation envelope radius (control 21, length)"
    )
    quality_threshold: float = spec(
        0.5, low=0.0, high=1.0, doc="initial core depth a targeted vortex needs (control 22)"
    )
    preserve_ratio: float = spec(
        1.0, low=0.0, high=1.0, doc="initial preserve ratio p (control 23)"
    )

    def validate(self) -> None:
        """Check every field, then the relations between fields.

        Raises
        ------
        ConfigError
            An invalid field, or (task ``setpoint_density`` only)
            ``setpoint_low >= setpoint_high`` or ``setpoint_count > horizon``.
        """
        super().validate()
        if self.task not in FEEDBACK_TASKS:
            return  # the set-point fields are unused: a short horizon must not fail on them
        if self.setpoint_low >= self.setpoint_high:
            raise ConfigError(
                f"env.setpoint_low = {self.setpoint_low:g} ≥ env.setpoint_high = "
                f"{self.setpoint_high:g}: the set-point range needs low < high"
            )
        if self.setpoint_count > self.horizon:
            raise ConfigError(
                f"env.setpoint_count = {self.setpoint_count} > env.horizon = {self.horizon}: "
                "an episode can hold at most one set-point per env step"
            )
