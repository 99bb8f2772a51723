"""Building an agent from the ``agent`` config section, and loading a saved one.

Public names: ``make_agent``, ``load_agent``, ``AGENT_CLASSES``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from hhml.config.agent import AgentConfig
from hhml.errors import CheckpointError, ConfigError
from hhml.ml.rl.base import Agent
from hhml.ml.rl.off_policy import OffPolicyAgent
from hhml.ml.rl.recurrent_td3 import RecurrentTD3
from hhml.ml.rl.sac import SAC
from hhml.ml.rl.td3 import TD3

__all__ = ["AGENT_CLASSES", "load_agent", "make_agent"]

#: ``agent.algorithm`` → agent class.
AGENT_CLASSES: dict[str, type[OffPolicyAgent]] = {
    "td3": TD3,
    "sac": SAC,
    "recurrent_td3": RecurrentTD3,
}


def make_agent(
    cfg: AgentConfig, obs_dim: int, act_dim: int, device: torch.device | str, seed: int
) -> Agent:
    """The agent ``cfg.algorithm`` for observations ``[N, obs_dim]`` and actions ``[N, act_dim]``.

    Parameters
    ----------
    cfg
        The ``agent`` config section (all hyperparameters).
    obs_dim, act_dim
        Sizes of the flat observation and action vectors (actions in ``[-1, 1]``).
    device
        Where networks and replay buffer live.
    seed
        Seeds the agent's initialisation and generators (the agent is deterministic
        given it).

    Raises
    ------
    ConfigError
        Unknown algorithm or invalid sizes.
    """
    try:
        agent_class = AGENT_CLASSES[cfg.algorithm]
    except KeyError:
        raise ConfigError(
            f"agent.algorithm = {cfg.algorithm!r} is not valid; choose one of "
            f"{', '.join(repr(k) for k in AGENT_CLASSES)}"
        ) from None
    return agent_class(cfg, obs_dim, act_dim, device, seed)


def load_agent(path: str | os.PathLike[str], device: torch.device | str) -> Agent:
    """Rebuild an agent saved with :meth:`Agent.save` on ``device``.

    The file is read with ``torch.load(weights_only=True)``; the agent is rebuilt
    from the config stored in it, then its full state (including the replay
    buffer, if saved) is restored.

    Raises
    ------
    CheckpointError
        The file is missing or unreadable, or a key is missing or malformed.
    """
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"agent checkpoint {str(file)!r} does not exist")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for corrupt files
        raise CheckpointError(f"cannot read agent checkpoint {str(file)!r}: {exc}") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"agent checkpoint {str(file)!r} does not hold a dict")
    for key in ("agent_class", "config", "obs_dim", "act_dim"):
        if key not in state:
            raise CheckpointError(f"agent checkpoint {str(file)!r} is missing key {key!r}")
    by_name = {cls.__name__: cls for cls in AGENT_CLASSES.values()}
    agent_class = by_name.get(str(state["agent_class"]))
    if agent_class is None:
        raise CheckpointError(
            f"checkpoint key 'agent_class' = {state['agent_class']!r} in {str(file)!r} is not "
            f"an agent class; expected one of {', '.join(repr(k) for k in by_name)}"
        )
    try:
        cfg = AgentConfig.from_mapping(state["config"])
    except ConfigError as exc:
        raise CheckpointError(
            f"checkpoint key 'config' in {str(file)!r} is invalid: {exc}"
        ) from exc
    agent = agent_class(cfg, int(state["obs_dim"]), int(state["act_dim"]), device, seed=0)
    agent.load_state_dict(state)
    return agent
