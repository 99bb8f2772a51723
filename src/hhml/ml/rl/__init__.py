"""Reinforcement-learning agents: TD3, SAC and recurrent TD3, with their replay buffers.

All agents implement :class:`Agent` (batched NumPy in, NumPy out; tensors stay on
the agent's device), take every hyperparameter from the ``agent`` config section
(:class:`hhml.config.agent.AgentConfig`) and are deterministic given their seed.

Modules: ``base`` (the interface), ``networks``, ``replay`` (flat buffer),
``sequence_replay`` (per-env streams with burn-in), ``off_policy`` (shared agent
machinery), ``td3``, ``sac``, ``recurrent_td3``, ``factory`` (``make_agent``,
``load_agent``), ``checkpoint`` (checked restoring).

Public names: ``Agent``, ``TD3``, ``SAC``, ``RecurrentTD3``, ``ReplayBuffer``,
``SequenceReplayBuffer``, ``make_agent``, ``load_agent``.
"""

from hhml.ml.rl.base import Agent
from hhml.ml.rl.factory import load_agent, make_agent
from hhml.ml.rl.recurrent_td3 import RecurrentTD3
from hhml.ml.rl.replay import ReplayBuffer
from hhml.ml.rl.sac import SAC
from hhml.ml.rl.sequence_replay import SequenceReplayBuffer
from hhml.ml.rl.td3 import TD3

__all__ = [
    "SAC",
    "TD3",
    "Agent",
    "RecurrentTD3",
    "ReplayBuffer",
    "SequenceReplayBuffer",
    "load_agent",
    "make_agent",
]
