"""Building the vectorised environment a config asks for.

Public names: ``make_vector_env``.
"""

from __future__ import annotations

import gymnasium as gym
import torch
from gymnasium.vector import AutoresetMode

from hhml.config.schema import HHmLConfig
from hhml.errors import ConfigError

__all__ = ["make_vector_env"]

#: The gymnasium id of the Möbius vortex environment.
MOBIUS_ENV_ID = "hhml/MobiusVortex-v0"


def make_vector_env(
    cfg: HHmLConfig, num_envs: int, seed: int, device: torch.device | str = "cpu"
) -> gym.vector.VectorEnv:
    """A vector env of ``num_envs`` copies of ``cfg.env.id`` with same-step autoreset.

    When an episode ends, ``step`` returns the first observation of the next
    episode for that env and puts the last one in ``info["final_obs"]``
    (gymnasium's ``AutoresetMode.SAME_STEP``). The Möbius environment batches its
    envs in one simulator tensor on ``device``; any other gymnasium id (e.g.
    ``Pendulum-v1``, used to verify the agents) becomes a ``SyncVectorEnv``.

    Parameters
    ----------
    cfg
        The whole config (``env``, and for the Möbius env also ``lattice``,
        ``dynamics``, ``simulation``).
    num_envs
        Number of environments ``N ≥ 1``.
    seed
        Seeds the envs before the first reset: the Möbius env's generators, or a
        first ``reset(seed=seed)`` (and the action space) of a gymnasium vector
        env, so that envs built with different seeds differ and equal seeds agree.
    device
        Torch device of the simulation (ignored by non-HHmL envs).
    """
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise ConfigError(f"num_envs = {num_envs!r} is not valid; it must be an integer ≥ 1")
    env_id = cfg.env.id
    if env_id == MOBIUS_ENV_ID:
        from hhml.ml.env.vector import MobiusVortexVecEnv

        return MobiusVortexVecEnv(cfg, num_envs=num_envs, device=device, seed=seed)
    try:
        envs = gym.make_vec(
            env_id,
            num_envs=num_envs,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
        )
    except gym.error.Error as exc:
        raise ConfigError(
            f"env.id = {env_id!r} is not a usable gymnasium environment: {exc}"
        ) from exc
    envs.reset(seed=seed)
    envs.action_space.seed(seed)
    return envs
