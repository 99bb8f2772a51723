"""Building the vectorised environment a config asks for, and configs from keywords.

Public names: ``make_vector_env``, ``config_with``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import torch
from gymnasium.vector import AutoresetMode

from hhml.config.schema import HHmLConfig
from hhml.config.specs import field_specs
from hhml.errors import ConfigError

__all__ = ["config_with", "make_vector_env"]

#: The gymnasium id of the Möbius vortex environment.
MOBIUS_ENV_ID = "hhml/MobiusVortex-v0"


def config_with(cfg: HHmLConfig, overrides: Mapping[str, Any]) -> HHmLConfig:
    """``cfg`` with keyword overrides, as ``gym.make("hhml/MobiusVortex-v0", **overrides)``
    passes them: a dotted key (``"lattice.nu": 64``) sets that key; a bare name
    (``task="lifetime"``, ``horizon=100``) sets the key of that name in the ``env``
    section, or in the one other section that has it.

    Raises
    ------
    ConfigError
        An unknown or ambiguous name, or a value the key's spec refuses (the message
        names the key and what is valid).
    """
    sections = HHmLConfig.section_types()
    changes: dict[str, dict[str, Any]] = {}
    for name, value in overrides.items():
        if "." in name:
            section, key = name.split(".", 1)
            if section not in sections or key not in field_specs(sections[section]):
                raise ConfigError(f"unknown config key {name!r} in the env's keyword arguments")
        else:
            owners = [s for s, t in sections.items() if name in field_specs(t)]
            if "env" in owners:
                owners = ["env"]
            if len(owners) != 1:
                what = "unknown" if not owners else f"ambiguous ({', '.join(owners)})"
                raise ConfigError(
                    f"keyword {name!r} is {what}: pass a section key such as 'env.task', "
                    "as **{'lattice.nu': 64}"
                )
            section, key = owners[0], name
        changes.setdefault(section, {})[key] = value
    updated = {s: getattr(cfg, s).replace(**keys) for s, keys in changes.items()}
    return dataclasses.replace(cfg, **updated)


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
