"""Gymnasium environments over the Möbius-lattice simulation.

Importing this package registers ``hhml/MobiusVortex-v0`` with gymnasium::

    import gymnasium as gym
    import hhml.ml.env
    env = gym.make("hhml/MobiusVortex-v0")

Public names: ``MobiusVortexEnv``, ``MobiusVortexVecEnv``, ``MobiusVortexCore``,
``CONTROLS``, ``ControlMap``, ``OBSERVATION_FEATURES``, ``SETPOINT_FEATURES``,
``FEATURE_BOUNDS``, ``default_env_config``,
``make_vector_env``, ``MOBIUS_ENV_ID``, ``TensorVecEnv``, ``TensorStep``,
``as_tensor_env``.
"""

from __future__ import annotations

import gymnasium as gym

from hhml.ml.env.controls import CONTROLS, ControlMap
from hhml.ml.env.core import (
    FEATURE_BOUNDS,
    OBSERVATION_FEATURES,
    SETPOINT_FEATURES,
    MobiusVortexCore,
    default_env_config,
)
from hhml.ml.env.factory import MOBIUS_ENV_ID, make_vector_env
from hhml.ml.env.mobius import MobiusVortexEnv
from hhml.ml.env.tensor_env import TensorStep, TensorVecEnv, as_tensor_env
from hhml.ml.env.vector import MobiusVortexVecEnv

__all__ = [
    "CONTROLS",
    "FEATURE_BOUNDS",
    "MOBIUS_ENV_ID",
    "OBSERVATION_FEATURES",
    "SETPOINT_FEATURES",
    "ControlMap",
    "MobiusVortexCore",
    "MobiusVortexEnv",
    "MobiusVortexVecEnv",
    "TensorStep",
    "TensorVecEnv",
    "as_tensor_env",
    "default_env_config",
    "make_vector_env",
]

if MOBIUS_ENV_ID not in gym.registry:
    gym.register(
        id=MOBIUS_ENV_ID,
        entry_point="hhml.ml.env.mobius:make_mobius_env",
        vector_entry_point="hhml.ml.env.vector:MobiusVortexVecEnv",
    )
