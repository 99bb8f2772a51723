"""stable-baselines3 adapter for the batched Möbius vortex environment.

stable-baselines3 (SB3) trains on its own ``VecEnv`` interface and refuses a
gymnasium ``VectorEnv``. :class:`MobiusVortexSB3VecEnv` presents a
:class:`~hhml.ml.env.MobiusVortexVecEnv` (``num_envs`` environments in one
simulator tensor) as an SB3 ``VecEnv``, so SB3 algorithms keep the batching::

    from stable_baselines3 import TD3
    from hhml.ml.env.sb3 import MobiusVortexSB3VecEnv

    env = MobiusVortexSB3VecEnv.from_config(num_envs=8, seed=0)
    TD3("MlpPolicy", env).learn(10_000)

What is mapped (gymnasium same-step autoreset → SB3 conventions):

- ``step`` returns ``(obs [N, obs_dim], rewards [N] float32, dones [N] bool, infos)``
  with ``dones = terminated | truncated``; a finished env's row of ``obs`` is the first
  observation of its next episode and its last one is ``infos[i]["terminal_observation"]``
  (from ``info["final_obs"]``); every ``infos[i]`` has ``"TimeLimit.truncated" =
  truncated and not terminated``.
- ``infos[i]`` holds row ``i`` of every batched entry of the gymnasium ``info``
  (nested dicts kept: ``infos[i]["reward_terms"]["density"]`` is a float); gymnasium's
  ``_name`` masks decide which envs get ``name``.
- ``seed(s)`` takes effect at the next ``reset()``, which then calls
  ``reset(seed=s)`` on the batched env (the Möbius env seeds its generators from ``s``;
  a gymnasium ``SyncVectorEnv`` gives env ``k`` the seed ``s + k``).
- The envs have no separate Python objects: ``get_attr`` answers only the attributes
  shared by every env (:data:`SHARED_ATTRIBUTES`); ``set_attr``, ``env_method``,
  ``render`` and ``get_images`` raise :class:`SB3AdapterError`.

stable-baselines3 is an optional dependency (the ``dev`` extra): importing this module
without it raises :class:`SB3UnavailableError`; ``import hhml.ml.env`` does not
import this module.

Public names: ``MobiusVortexSB3VecEnv``, ``SB3AdapterError``, ``SB3AttributeError``,
``SB3UnavailableError``, ``SHARED_ATTRIBUTES``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
import torch
from gymnasium.vector import AutoresetMode

from hhml.config.schema import HHmLConfig
from hhml.errors import ConfigError, HHmLError
from hhml.ml.env.core import default_env_config
from hhml.ml.env.factory import make_vector_env

__all__ = [
    "SHARED_ATTRIBUTES",
    "MobiusVortexSB3VecEnv",
    "SB3AdapterError",
    "SB3AttributeError",
    "SB3UnavailableError",
]


class SB3UnavailableError(HHmLError, ImportError):
    """stable-baselines3 is not installed (it is an optional dependency)."""


class SB3AdapterError(HHmLError, RuntimeError):
    """An SB3 ``VecEnv`` operation the batched environment cannot perform, or a misuse
    (``step_wait`` without ``step_async``, an env that broke the gymnasium contract)."""


class SB3AttributeError(SB3AdapterError, AttributeError):
    """``get_attr`` of an attribute that is not shared by every env (an
    ``AttributeError``, so SB3's ``has_attr`` answers ``False``)."""


try:
    from stable_baselines3.common.env_util import is_wrapped
    from stable_baselines3.common.vec_env import VecEnv
    from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices
except ImportError as exc:
    raise SB3UnavailableError(
        "hhml.ml.env.sb3 needs stable-baselines3, which is not installed "
        f"({exc}); install it with `pip install 'stable-baselines3>=2.3'` "
        "or the dev extra `pip install -e '.[dev]'`"
    ) from exc

#: Attributes ``get_attr`` answers: the same for every env of the batch.
#: ``observation_space``/``action_space`` are the single-env spaces.
SHARED_ATTRIBUTES: tuple[str, ...] = ("render_mode", "observation_space", "action_space", "spec")

#: Keys of the gymnasium step ``info`` that the adapter consumes itself.
_AUTORESET_KEYS = frozenset({"final_obs", "_final_obs", "final_info", "_final_info"})


def _random_seed() -> int:
    """A seed from numpy's global generator (what SB3 does for ``seed(None)``)."""
    return int(np.random.randint(0, np.iinfo(np.uint32).max, dtype=np.uint32))


def _batched(value: Any) -> Any:
    """A torch tensor as a CPU numpy array, a dict with its values converted likewise
    (one device transfer per value and step, not per env); anything else unchanged."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, dict):
        return {k: _batched(v) for k, v in value.items()}
    return value


def _row(info: dict[str, Any], i: int, n: int, where: str = "info") -> dict[str, Any]:
    """Entry ``i`` of every batched value of a gymnasium vector ``info`` dict.

    Parameters
    ----------
    info
        Gymnasium vector info after :func:`_batched`: values are numpy arrays with a
        leading axis of length ``n``, or nested dicts of such; ``"_name"`` is the bool
        mask ``[n]`` of the envs that have ``name``.
    i
        Env index.
    n
        Number of envs.
    where
        Dotted path of ``info`` (for error messages).

    Returns
    -------
    dict
        Same keys (masks and autoreset keys dropped, masked-out keys omitted); 0-d numeric
        entries become Python scalars, object entries are returned as stored.

    Raises
    ------
    SB3AdapterError
        A value is neither a dict nor an array with a leading axis of length ``n``.
    """
    out: dict[str, Any] = {}
    for key, value in info.items():
        if key.startswith("_") or key in _AUTORESET_KEYS:
            continue
        mask = info.get(f"_{key}")
        if mask is not None and not bool(mask[i]):
            continue
        if isinstance(value, dict):
            out[key] = _row(value, i, n, f"{where}[{key!r}]")
            continue
        if not isinstance(value, np.ndarray) or value.ndim == 0 or value.shape[0] != n:
            shape = getattr(value, "shape", None)
            raise SB3AdapterError(
                f"{where}[{key!r}] is a {type(value).__name__} of shape {shape}; a vector env's "
                f"info values must be arrays with a leading axis of num_envs = {n} (or dicts "
                "of them), so the adapter can give env i its row"
            )
        item = value[i]
        if isinstance(item, np.ndarray):
            out[key] = item.copy()
        elif isinstance(item, np.generic):
            out[key] = item.item()
        else:
            out[key] = item
    return out


class MobiusVortexSB3VecEnv(VecEnv):  # type: ignore[misc]
    """A gymnasium vector env with same-step autoreset, as a stable-baselines3 ``VecEnv``.

    Built for :class:`~hhml.ml.env.MobiusVortexVecEnv` (one simulator tensor, no
    per-env Python objects); any gymnasium ``VectorEnv`` in ``AutoresetMode.SAME_STEP``
    works (e.g. what :func:`~hhml.ml.env.make_vector_env` returns for ``Pendulum-v1``).

    Parameters
    ----------
    venv
        The batched environment (``num_envs = N``); the adapter owns it and
        :meth:`close` closes it.
    seed
        Seed of the first :meth:`reset` (passed as ``venv.reset(seed=seed)``); ``None``:
        the first reset continues the batched env's own random streams.

    Attributes
    ----------
    venv
        The wrapped gymnasium vector env (its ``state_dict()``, ``snapshot()``, ... are
        reachable here).
    observation_space, action_space
        The single-env spaces (``Box``), as SB3 expects.

    Raises
    ------
    ConfigError
        ``venv`` is not a gymnasium ``VectorEnv`` in same-step autoreset mode.
    """

    def __init__(self, venv: gym.vector.VectorEnv, seed: int | None = None) -> None:
        if not isinstance(venv, gym.vector.VectorEnv):
            raise ConfigError(
                f"venv is a {type(venv).__name__}; MobiusVortexSB3VecEnv wraps a gymnasium "
                "VectorEnv such as hhml.ml.env.MobiusVortexVecEnv"
            )
        mode = venv.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise ConfigError(
                f"venv.metadata['autoreset_mode'] = {mode!r}; the adapter needs "
                f"{AutoresetMode.SAME_STEP!r} (a finished env's last observation in "
                "info['final_obs']), which MobiusVortexVecEnv and make_vector_env use"
            )
        self.venv = venv
        self._pending_seed: int | None = seed
        self._actions: npt.NDArray[Any] | None = None
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)

    @classmethod
    def from_config(
        cls,
        config: HHmLConfig | None = None,
        num_envs: int = 1,
        device: torch.device | str = "cpu",
        seed: int | None = None,
    ) -> MobiusVortexSB3VecEnv:
        """Build the batched env of ``config`` and wrap it.

        Parameters
        ----------
        config
            Whole config; ``None``: :func:`~hhml.ml.env.default_env_config` (two embedded
            48 × 12 strips). Its ``env.id`` picks the environment
            (:func:`~hhml.ml.env.make_vector_env`).
        num_envs
            ``N ≥ 1``.
        device
            Torch device of the simulation.
        seed
            Seed of the batched env's construction and of the first :meth:`reset`;
            ``None`` draws one from numpy's global generator (as SB3's ``seed(None)``
            does), so unseeded runs differ.

        Raises
        ------
        ConfigError
            Invalid ``num_envs`` or config.
        """
        cfg = default_env_config() if config is None else config
        if seed is None:
            seed = _random_seed()
        return cls(make_vector_env(cfg, num_envs, seed, device), seed=seed)

    # ------------------------------------------------------------ reset / step
    def reset(self) -> npt.NDArray[Any]:
        """Reset every env (with the seed of :meth:`seed` or the constructor, once).

        Returns
        -------
        ndarray
            Observations ``[N, *obs_shape]``; ``self.reset_infos[i]`` is env ``i``'s reset
            info.
        """
        seed, self._pending_seed = self._pending_seed, None
        obs, raw_info = self.venv.reset(seed=seed, options=self._shared_options())
        info: dict[str, Any] = _batched(raw_info)
        self._reset_seeds()
        self._reset_options()
        self._actions = None
        self.reset_infos = [_row(info, i, self.num_envs) for i in range(self.num_envs)]
        return self._checked_obs(obs, "reset")

    def step_async(self, actions: npt.ArrayLike) -> None:
        """Store ``actions`` ``[N, *action_shape]`` for :meth:`step_wait`."""
        self._actions = np.asarray(actions)

    def step_wait(
        self,
    ) -> tuple[
        npt.NDArray[Any], npt.NDArray[np.float32], npt.NDArray[np.bool_], list[dict[str, Any]]
    ]:
        """Step every env with the actions of :meth:`step_async`.

        Returns
        -------
        obs
            ``[N, *obs_shape]``; a finished env's row starts its next episode.
        rewards
            ``[N]`` float32.
        dones
            ``[N]`` bool, ``terminated | truncated``.
        infos
            ``N`` dicts: env ``i``'s row of the step info, ``"TimeLimit.truncated"``
            (bool), and for finished envs ``"terminal_observation"`` (its last
            observation).

        Raises
        ------
        SB3AdapterError
            No pending :meth:`step_async`, or the env reported a finished episode without
            its final observation.
        """
        if self._actions is None:
            raise SB3AdapterError("step_wait() called without a pending step_async(actions)")
        actions, self._actions = self._actions, None
        obs, reward, terminated, truncated, raw_info = self.venv.step(actions)
        info: dict[str, Any] = _batched(raw_info)
        n = self.num_envs
        term = np.asarray(_batched(terminated), dtype=bool).reshape(n)
        trunc = np.asarray(_batched(truncated), dtype=bool).reshape(n)
        dones = term | trunc
        rewards = np.asarray(_batched(reward), dtype=np.float32).reshape(n)
        final_info = info.get("final_info")
        infos: list[dict[str, Any]] = []
        for i in range(n):
            if dones[i] and final_info is not None:
                # SyncVectorEnv style: info is the reset info, final_info the last step's
                self.reset_infos[i] = _row(info, i, n)
                row = _row(final_info, i, n, "info['final_info']")
            else:
                if dones[i]:
                    self.reset_infos[i] = {}
                row = _row(info, i, n)
            row["TimeLimit.truncated"] = bool(trunc[i] and not term[i])
            if dones[i]:
                row["terminal_observation"] = self._final_obs(info, i)
            infos.append(row)
        return self._checked_obs(obs, "step"), rewards, dones, infos

    def close(self) -> None:
        """Close the batched env."""
        self.venv.close()

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seed of the next :meth:`reset` (``venv.reset(seed=seed)``).

        ``None`` draws a seed from numpy's global generator (as SB3's ``VecEnv`` does).

        Returns
        -------
        list of int
            SB3's per-env convention ``[seed, seed + 1, ...]`` (what a ``SyncVectorEnv``
            uses; the Möbius env derives every env's stream from ``seed``).
        """
        if seed is None:
            seed = _random_seed()
        self._pending_seed = int(seed)
        self._seeds = [self._pending_seed + k for k in range(self.num_envs)]
        return list(self._seeds)

    # ------------------------------------------------------------ attributes
    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """``attr_name`` of the envs ``indices``: only :data:`SHARED_ATTRIBUTES`.

        Raises
        ------
        SB3AttributeError
            Any other name (an ``AttributeError``): the envs are rows of one simulator,
            not objects; read the batched env's attributes on ``self.venv``.
        """
        targets = self._indices(indices)
        if attr_name not in SHARED_ATTRIBUTES:
            raise SB3AttributeError(
                f"get_attr({attr_name!r}): the {type(self.venv).__name__} envs are rows of one "
                f"batch, not separate objects; per-env attributes available: "
                f"{list(SHARED_ATTRIBUTES)}; the batched env's own attributes are on "
                f"{type(self).__name__}.venv"
            )
        if attr_name == "observation_space":
            value = self.venv.single_observation_space
        elif attr_name == "action_space":
            value = self.venv.single_action_space
        else:
            value = getattr(self.venv, attr_name)
        return [value for _ in targets]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Not supported: the envs share one simulator and one config.

        Raises
        ------
        SB3AdapterError
            Always.
        """
        raise SB3AdapterError(
            f"set_attr({attr_name!r}) is not supported: the envs are rows of one "
            f"{type(self.venv).__name__} sharing one config; build a new env to change it"
        )

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        """Not supported: there are no per-env objects whose methods could be called.

        Raises
        ------
        SB3AdapterError
            Always; call batched methods on ``self.venv`` instead.
        """
        raise SB3AdapterError(
            f"env_method({method_name!r}) is not supported: the envs are rows of one "
            f"{type(self.venv).__name__}, not objects; call batched methods on "
            f"{type(self).__name__}.venv"
        )

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        """Whether each env is wrapped in ``wrapper_class``.

        Envs without their own objects (:class:`~hhml.ml.env.MobiusVortexVecEnv`) are
        never wrapped; a vector env holding sub-envs (gymnasium's ``SyncVectorEnv``:
        attribute ``envs``) is asked env by env.
        """
        targets = self._indices(indices)
        subenvs = getattr(self.venv, "envs", None)
        if subenvs is None:
            return [False for _ in targets]
        return [is_wrapped(subenvs[i], wrapper_class) for i in targets]

    def render(self, mode: str | None = None) -> npt.NDArray[Any] | None:
        """Not supported (the Möbius env has no render modes).

        Raises
        ------
        SB3AdapterError
            Always; ``self.venv.snapshot()`` gives the fields and vortices to plot.
        """
        raise SB3AdapterError(
            f"render(mode={mode!r}) is not supported: {type(self.venv).__name__} has no "
            "render modes; plot MobiusVortexVecEnv.snapshot() (adapter.venv.snapshot())"
        )

    def get_images(self) -> Sequence[npt.NDArray[Any] | None]:
        """Not supported, as :meth:`render`.

        Raises
        ------
        SB3AdapterError
            Always.
        """
        raise SB3AdapterError(
            f"get_images() is not supported: {type(self.venv).__name__} has no render modes"
        )

    # ------------------------------------------------------------ helpers
    def _indices(self, indices: VecEnvIndices) -> list[int]:
        targets = list(self._get_indices(indices))
        bad = [i for i in targets if not 0 <= int(i) < self.num_envs]
        if bad:
            raise SB3AdapterError(
                f"env indices {bad} are out of range; valid: 0 ≤ i < num_envs = {self.num_envs}"
            )
        return [int(i) for i in targets]

    def _shared_options(self) -> dict[str, Any] | None:
        """SB3 keeps reset options per env; the batched env takes one dict for all."""
        options = [o for o in self._options if o]
        if not options:
            return None
        if len(options) != self.num_envs or any(o != options[0] for o in options):
            raise SB3AdapterError(
                f"set_options gave per-env reset options {self._options}; the batched env "
                "takes one options dict for every env: pass the same dict to all"
            )
        return dict(options[0])

    def _final_obs(self, info: dict[str, Any], i: int) -> npt.NDArray[Any]:
        final = info.get("final_obs")
        mask = info.get("_final_obs")
        if final is None or mask is None or not bool(mask[i]):
            raise SB3AdapterError(
                f"env {i} finished its episode but info['final_obs'] (mask info['_final_obs']) "
                f"does not hold its last observation; info keys: {sorted(info)}"
            )
        space = self.observation_space
        obs: npt.NDArray[Any] = np.array(final[i], dtype=space.dtype, copy=True)
        if obs.shape != space.shape:
            raise SB3AdapterError(
                f"info['final_obs'][{i}] has shape {obs.shape}; the observation space is "
                f"{space.shape}"
            )
        return obs

    def _checked_obs(self, obs: Any, where: str) -> npt.NDArray[Any]:
        arr: npt.NDArray[Any] = np.asarray(_batched(obs))
        expected = (self.num_envs, *(self.observation_space.shape or ()))
        if arr.shape != expected:
            raise SB3AdapterError(
                f"{type(self.venv).__name__}.{where}() returned observations of shape "
                f"{arr.shape}; expected [num_envs, *obs_shape] = {expected}"
            )
        return arr

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.venv).__name__}, num_envs={self.num_envs})"
