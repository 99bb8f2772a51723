"""Training checkpoints: writing them atomically, reading and validating them.

A checkpoint (``model_last.pt``, ``model_best.pt``) is one ``torch.save`` file
holding a dict::

    format          "hhml-training-checkpoint"
    format_version  CHECKPOINT_VERSION (a reader refuses other versions)
    hhml_version    the package version that wrote it
    kind            "last" (resumable) or "best" (the agent at its best evaluation)
    step            environment steps done when it was written
    config          the resolved config, {section: {key: value}}
    agent_class     type name of the agent
    obs_dim         observation size the agent was built for
    act_dim         action size (actions in [-1, 1])
    agent           Agent.state_dict() (the replay buffer only in "last" files)
    -- the keys below are in "last" files only --
    env             environment state, see below
    obs             float32 tensor [N, obs_dim], the observations the next step acts on
    trainer         counters, episode accumulators, evaluation history (Python scalars)
    rng             global RNG states (:mod:`hhml.ml.training.rng`)
    world_size      number of ranks that wrote it (1; absent in older files means 1)
    ranks           with world_size > 1: for ranks 1..N-1, their own agent, env,
                    obs, trainer and rng entries (rank 0's are the top-level ones)

Everything is tensors or plain Python containers/scalars, so files load with
``torch.load(weights_only=True)``. The env state is ``{"kind": "state_dict",
"state": envs.state_dict()}`` for environments that provide one (the Möbius
vector env). Plain gymnasium vector envs (``SyncVectorEnv`` of e.g.
``Pendulum-v1``) have no such method; their sub-environments are pickled into a
``bytes`` field, ``{"kind": "pickled_envs", "data": ...}``, which is unpickled on
resume — so only resume runs whose files you trust (as with any pickle).

Public names: ``CHECKPOINT_FORMAT``, ``CHECKPOINT_VERSION``, ``save_checkpoint``,
``load_checkpoint``, ``load_trained_agent``, ``env_state``, ``load_env_state``,
``check_env_checkpointable``.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from hhml import __version__
from hhml.errors import CheckpointError, ConfigError
from hhml.utils.atomic_io import atomic_torch_save

if TYPE_CHECKING:
    from hhml.ml.rl.base import Agent

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "check_env_checkpointable",
    "env_state",
    "load_checkpoint",
    "load_env_state",
    "load_trained_agent",
    "save_checkpoint",
]

#: Value of the ``format`` key of every training checkpoint.
CHECKPOINT_FORMAT = "hhml-training-checkpoint"
#: Layout version; bumped whenever a key is added, removed or changes meaning.
CHECKPOINT_VERSION = 1

#: Required top-level keys of every checkpoint, and their types.
_REQUIRED: dict[str, type] = {
    "hhml_version": str,
    "kind": str,
    "step": int,
    "config": dict,
    "agent_class": str,
    "obs_dim": int,
    "act_dim": int,
    "agent": dict,
}
#: Further keys of a resumable ("last") checkpoint.
_REQUIRED_LAST: dict[str, type] = {
    "env": dict,
    "obs": torch.Tensor,
    "trainer": dict,
    "rng": dict,
}
_KINDS = ("last", "best")


def save_checkpoint(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` (the keys listed in the module docstring) atomically to ``path``.

    The ``format``, ``format_version`` and ``hhml_version`` keys are added here.

    Returns
    -------
    Path
        The written path.
    """
    data = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "hhml_version": __version__,
        **payload,
    }
    return atomic_torch_save(data, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and validate a checkpoint with ``torch.load(weights_only=True)``.

    Parameters
    ----------
    path
        A ``model_last.pt`` or ``model_best.pt`` file.
    map_location
        Where tensors are loaded (CPU by default; the agent moves them).

    Returns
    -------
    dict
        The checkpoint (see the module docstring).

    Raises
    ------
    CheckpointError
        The file is missing, unreadable or corrupted, not an HHmL training
        checkpoint, written by another format version, or lacks a key / has one of
        the wrong type (named in the message).
    """
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"no checkpoint file at {file}")
    try:
        data = torch.load(file, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise CheckpointError(
            f"{file} cannot be loaded safely (weights_only=True): {first}; it is corrupted "
            "or holds objects other than tensors and plain Python containers"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{file} is corrupted or not a torch checkpoint: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{file} is not an HHmL training checkpoint (expected key 'format' = "
            f"{CHECKPOINT_FORMAT!r})"
        )
    version = data.get("format_version")
    if version != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{file} has checkpoint format version {version!r} (written by hhml "
            f"{data.get('hhml_version', '?')}); hhml {__version__} reads version "
            f"{CHECKPOINT_VERSION} only"
        )
    _check_keys(data, _REQUIRED, file)
    if data["kind"] not in _KINDS:
        raise CheckpointError(
            f"{file}: key 'kind' = {data['kind']!r} is not valid; expected 'last' or 'best'"
        )
    if data["kind"] == "last":
        _check_keys(data, _REQUIRED_LAST, file)
    return data


def load_trained_agent(path: str | Path, device: str | torch.device = "cpu") -> Agent:
    """Rebuild the agent of a checkpoint (e.g. ``model_best.pt``) for acting.

    The agent is built by :func:`hhml.ml.rl.make_agent` from the checkpoint's
    ``config["agent"]``, ``obs_dim`` and ``act_dim``, then its state is restored.

    Raises
    ------
    CheckpointError
        The file does not load (see :func:`load_checkpoint`), its agent config is
        invalid, or the agent state does not fit.
    """
    from hhml.config.agent import AgentConfig
    from hhml.ml.rl import make_agent

    data = load_checkpoint(path)
    try:
        cfg = AgentConfig.from_mapping(data["config"].get("agent", {}))
        agent = make_agent(cfg, data["obs_dim"], data["act_dim"], torch.device(device), 0)
    except ConfigError as exc:
        raise CheckpointError(f"{path}: key 'config.agent' is not usable: {exc}") from exc
    try:
        agent.load_state_dict(data["agent"])
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: agent: {exc}") from exc
    return agent


def _check_keys(data: Mapping[str, Any], required: Mapping[str, type], file: Path) -> None:
    for key, kind in required.items():
        if key not in data:
            raise CheckpointError(f"{file} lacks the key {key!r}")
        value = data[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise CheckpointError(
                f"{file}: key {key!r} has type {type(value).__name__}, expected {kind.__name__}"
            )


def check_env_checkpointable(envs: Any) -> None:
    """Raise :class:`ConfigError` unless :func:`env_state` can save ``envs``.

    Raises
    ------
    ConfigError
        ``envs`` has neither ``state_dict()``/``load_state_dict()`` nor a list of
        sub-environments (``envs.envs``) to pickle.
    """
    if callable(getattr(envs, "state_dict", None)) and callable(
        getattr(envs, "load_state_dict", None)
    ):
        return
    if isinstance(getattr(envs, "envs", None), list):
        return
    raise ConfigError(
        f"environment {type(envs).__name__} cannot be checkpointed: it has no "
        "state_dict()/load_state_dict() and no sub-environment list 'envs'"
    )


def env_state(envs: Any) -> dict[str, Any]:
    """The state of a vector env, for a checkpoint (see the module docstring)."""
    if callable(getattr(envs, "state_dict", None)):
        return {"kind": "state_dict", "state": envs.state_dict()}
    check_env_checkpointable(envs)
    return {"kind": "pickled_envs", "data": pickle.dumps(list(envs.envs))}


def load_env_state(envs: Any, state: Mapping[str, Any], source: str) -> None:
    """Restore :func:`env_state` into ``envs``.

    Parameters
    ----------
    envs
        The vector env, built from the same config.
    state
        The checkpoint's ``env`` entry.
    source
        The checkpoint file, for messages.

    Raises
    ------
    CheckpointError
        The state's kind does not fit ``envs``, or it does not load (wrong number of
        sub-envs, missing keys, mismatched shapes).
    """
    kind = state.get("kind")
    if kind == "state_dict":
        if not callable(getattr(envs, "load_state_dict", None)):
            raise CheckpointError(
                f"{source}: key 'env' holds a state_dict, but {type(envs).__name__} "
                "has no load_state_dict()"
            )
        try:
            envs.load_state_dict(state["state"])
        except CheckpointError as exc:
            raise CheckpointError(f"{source}: env state: {exc}") from exc
        except (KeyError, ValueError, RuntimeError, TypeError) as exc:
            raise CheckpointError(f"{source}: env state does not fit this env: {exc!r}") from exc
        return
    if kind == "pickled_envs":
        current = getattr(envs, "envs", None)
        data = state.get("data")
        if not isinstance(current, list) or not isinstance(data, bytes):
            raise CheckpointError(
                f"{source}: key 'env' holds pickled sub-envs, which do not fit "
                f"{type(envs).__name__}"
            )
        try:
            loaded = pickle.loads(data)  # documented: resume trusted run directories only
        except Exception as exc:  # any unpickling failure means a corrupted entry
            raise CheckpointError(f"{source}: env state cannot be unpickled: {exc!r}") from exc
        if not isinstance(loaded, list) or len(loaded) != len(current):
            count = len(loaded) if isinstance(loaded, list) else "?"
            raise CheckpointError(
                f"{source}: env state holds {count} sub-envs, this run has {len(current)} "
                "(env.num_envs differs)"
            )
        for env in current:
            env.close()
        envs.envs = loaded
        return
    raise CheckpointError(
        f"{source}: key 'env.kind' = {kind!r} is not valid; expected 'state_dict' or "
        "'pickled_envs'"
    )
