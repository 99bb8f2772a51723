"""Config section ``agent``: the RL algorithm and its hyperparameters.

Every hyperparameter of :mod:`hhml.ml.rl` lives here. The schema defaults are the
stable-baselines3 / RL Zoo defaults for TD3 on continuous control;
``configs/agent/{td3,sac,recurrent_td3}.yaml`` select per-algorithm values
(``agent=sac`` on the command line).

Public names: ``AgentConfig``, ``TARGET_ENTROPY_PATTERN``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from hhml.config.specs import Section, spec
from hhml.errors import ConfigError

__all__ = ["TARGET_ENTROPY_PATTERN", "AgentConfig"]

#: ``"auto"`` or a decimal number (``"-3"``, ``"-1.5"``, ``"2e-1"``).
TARGET_ENTROPY_PATTERN = r"auto|[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?"


@dataclass
class AgentConfig(Section):
    """Hyperparameters of the RL agent (config section ``agent``).

    Fields shared by all algorithms come first, then TD3's, SAC's and the
    recurrent agent's. Counts of steps are environment transitions summed over
    the batched environments.
    """

    section_name: ClassVar[str] = "agent"

    algorithm: str = spec("td3", choices=("td3", "sac", "recurrent_td3"), doc="RL algorithm")

    # --- networks ---------------------------------------------------------------
    hidden_size: int = spec(
        256, low=1, high=65536, integer=True, doc="width of each hidden layer of the MLPs"
    )
    hidden_layers: int = spec(
        2, low=1, high=16, integer=True, doc="number of hidden layers of the MLPs (ReLU)"
    )

    # --- optimisation -----------------------------------------------------------
    actor_learning_rate: float = spec(
        1e-3, low=0, high=1, doc="Adam learning rate of the actor (policy)"
    )
    critic_learning_rate: float = spec(
        1e-3, low=0, high=1, doc="Adam learning rate of the critics (Q-functions)"
    )
    max_grad_norm: float = spec(
        0.0, low=0, doc="clip the global gradient norm of each network to this; 0 disables"
    )
    gamma: float = spec(0.99, low=0, high=1, doc="discount factor per environment step", symbol="γ")
    tau: float = spec(
        0.005, low=0, high=1, doc="Polyak rate of the target networks: θ' ← (1 − τ)θ' + τθ"
    )
    batch_size: int = spec(
        256,
        low=1,
        integer=True,
        doc="transitions per gradient step (sequences per step for recurrent_td3)",
    )
    buffer_size: int = spec(
        1_000_000, low=1, integer=True, doc="replay buffer capacity in transitions"
    )
    learning_starts: int = spec(
        10_000,
        low=0,
        integer=True,
        doc="transitions collected with uniform random actions before learning starts",
    )
    gradient_steps: int = spec(
        1, low=1, high=1000, integer=True, doc="gradient steps per update() call (per env step)"
    )

    # --- TD3 (td3 and recurrent_td3) -----------------------------------------------
    policy_delay: int = spec(
        2, low=1, integer=True, doc="critic updates per actor and target-network update"
    )
    target_policy_noise: float = spec(
        0.2, low=0, doc="std of the Gaussian smoothing noise on target actions"
    )
    target_noise_clip: float = spec(
        0.5, low=0, doc="the target smoothing noise is clipped to ±this"
    )
    exploration_noise: float = spec(
        0.1, low=0, doc="std of the Gaussian noise added to the policy's actions while exploring"
    )

    # --- SAC ----------------------------------------------------------------------
    entropy_learning_rate: float = spec(
        1e-3, low=0, high=1, doc="Adam learning rate of log α (automatic entropy tuning)"
    )
    initial_entropy_coef: float = spec(
        1.0, low=1e-8, doc="initial entropy coefficient α", symbol="α"
    )
    target_entropy: str = spec(
        "auto",
        pattern=TARGET_ENTROPY_PATTERN,
        pattern_help="'auto' (−act_dim) or a number such as '-3'",
        doc="target policy entropy in nats; 'auto' means −act_dim",
    )
    log_std_min: float = spec(-20.0, low=-100, high=0, doc="lower clamp of the policy's log σ")
    log_std_max: float = spec(2.0, low=-10, high=10, doc="upper clamp of the policy's log σ")

    # --- recurrent_td3 ------------------------------------------------------------
    lstm_hidden: int = spec(
        64, low=1, high=65536, integer=True, doc="hidden size of the LSTMs of actor and critics"
    )
    lstm_layers: int = spec(1, low=1, high=8, integer=True, doc="stacked LSTM layers")
    sequence_length: int = spec(
        32, low=1, high=10_000, integer=True, doc="steps per training sequence that enter the loss"
    )
    burn_in: int = spec(
        8,
        low=0,
        high=10_000,
        integer=True,
        doc="steps before each training sequence that only warm up the LSTM state",
    )

    def validate(self) -> None:
        """Check every field, then the relations between fields.

        Raises
        ------
        ConfigError
            An invalid field, ``log_std_min >= log_std_max``, a non-finite
            ``target_entropy``, or both learning rates 0 (one 0 freezes that network).
        """
        super().validate()
        if self.actor_learning_rate == 0 and self.critic_learning_rate == 0:
            raise ConfigError(
                "agent.actor_learning_rate = 0 and agent.critic_learning_rate = 0: the "
                "agent would never learn; set at least one in (0, 1] (e.g. 1e-3); a "
                "single 0 freezes that network"
            )
        if self.log_std_min >= self.log_std_max:
            raise ConfigError(
                f"agent.log_std_min = {self.log_std_min!r} must be smaller than "
                f"agent.log_std_max = {self.log_std_max!r}"
            )
        if self.target_entropy != "auto" and not math.isfinite(float(self.target_entropy)):
            raise ConfigError(
                f"agent.target_entropy = {self.target_entropy!r} is not finite; "
                "use 'auto' or a number"
            )

    def resolved_target_entropy(self, act_dim: int) -> float:
        """The SAC target entropy in nats: ``-act_dim`` for ``'auto'``, else the number."""
        if self.target_entropy == "auto":
            return -float(act_dim)
        return float(self.target_entropy)
