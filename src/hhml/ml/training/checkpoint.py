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
``torch.load(weights_only=True)``; nothing in a checkpoint is ever unpickled. The env
state is ``{"kind": "state_dict", "state": envs.state_dict()}`` for environments
that provide one (the Möbius vector env). Plain gymnasium vector envs
(``SyncVectorEnv`` of e.g. ``Pendulum-v1``) have no such method; the attributes of
each sub-environment's wrapper layers (``TimeLimit`` → ... → ``PendulumEnv``) and
of their spaces are saved as plain data, ``{"kind": "gym_envs", "envs": [...]}``:
numpy arrays and scalars as tensors, ``np.random.Generator`` as its bit-generator
state (a dict of ints), containers element by element. On resume these values are
written back into the sub-envs built from the config; no object is created from the
file. The env's ``spec`` and attributes holding functions or methods are code and
construction data rebuilt from the config, so they are not saved. A value of any
other type is saved as a marker naming its type, and resuming such a run fails with
a :class:`CheckpointError` naming the env and the attribute. Files of older HHmL
versions with ``{"kind": "pickled_envs"}`` (pickled sub-envs) are refused: unpickling
a file from a shared run directory could run arbitrary code.

Public names: ``CHECKPOINT_FORMAT``, ``CHECKPOINT_VERSION``, ``save_checkpoint``,
``load_checkpoint``, ``load_trained_agent``, ``env_state``, ``load_env_state``,
``check_env_checkpointable``.
"""

from __future__ import annotations

import pickle
import types
import zipfile
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
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
        sub-environments (``envs.envs``) whose attributes are saved as plain data.
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
    """The state of a vector env, for a checkpoint (see the module docstring).

    Returns
    -------
    dict
        ``{"kind": "state_dict", "state": ...}`` or ``{"kind": "gym_envs", "envs":
        [{"env_id": str, "layers": [{"type": str, "attrs": {name: value}}]}]}``
        (one entry per sub-env, one layer per wrapper, outermost first); every value
        is plain data that ``torch.load(weights_only=True)`` reads.
    """
    if callable(getattr(envs, "state_dict", None)):
        return {"kind": "state_dict", "state": envs.state_dict()}
    check_env_checkpointable(envs)
    return {"kind": "gym_envs", "envs": [_sub_env_state(env) for env in envs.envs]}


def load_env_state(envs: Any, state: Mapping[str, Any], source: str) -> None:
    """Restore :func:`env_state` into ``envs``.

    For ``"gym_envs"`` the whole state is decoded and checked against ``envs`` first
    and only then written, so a refused state leaves ``envs`` unchanged.

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
        sub-envs, other env or wrappers, missing keys, mismatched shapes, a value
        that could not be saved as plain data); or it holds pickled sub-envs of an
        older HHmL version, which are never unpickled.
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
    if kind == "gym_envs":
        current = getattr(envs, "envs", None)
        saved = state.get("envs")
        if not isinstance(current, list) or not isinstance(saved, list):
            raise CheckpointError(
                f"{source}: key 'env' holds gymnasium sub-env states, which do not fit "
                f"{type(envs).__name__}"
            )
        if len(saved) != len(current):
            raise CheckpointError(
                f"{source}: env state holds {len(saved)} sub-envs, this run has "
                f"{len(current)} (env.num_envs differs)"
            )
        plan: list[Callable[[], None]] = []
        for index, (env, entry) in enumerate(zip(current, saved, strict=True)):
            _plan_sub_env(env, entry, f"{source}: sub-env {index}", plan)
        for step in plan:
            step()
        return
    if kind == "pickled_envs":
        raise CheckpointError(
            f"{source}: key 'env' holds pickled gymnasium sub-envs (kind 'pickled_envs', "
            "written by an older HHmL version); they are not loaded, because unpickling "
            "can run arbitrary code. This run cannot be resumed; start a new one"
        )
    raise CheckpointError(
        f"{source}: key 'env.kind' = {kind!r} is not valid; expected 'state_dict' or " "'gym_envs'"
    )


# ------------------------------------------------------------------ gymnasium env state

#: Key marking an encoded value (``{_TAG: kind, ...}``) inside a sub-env state.
_TAG = "__hhml__"
#: Deepest container nesting saved or read (deeper values are not env state).
_MAX_DEPTH = 32
#: numpy dtypes stored as tensors (all of them round-trip through torch exactly).
_DTYPES = frozenset(
    [
        "bool",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "float16",
        "float32",
        "float64",
        "complex64",
        "complex128",
    ]
)
#: numpy bit generators a saved ``np.random.Generator`` may use.
_BIT_GENERATORS: dict[str, type[np.random.BitGenerator]] = {
    "PCG64": np.random.PCG64,
    "PCG64DXSM": np.random.PCG64DXSM,
    "MT19937": np.random.MT19937,
    "Philox": np.random.Philox,
    "SFC64": np.random.SFC64,
}
_PLAIN = (type(None), bool, int, float, str, bytes)
_CODE = (
    types.FunctionType,
    types.MethodType,
    types.BuiltinFunctionType,
    types.BuiltinMethodType,
    partial,
)


def _layers(env: Any) -> list[Any]:
    """The wrapper chain of a gymnasium env, outermost first, ending with the base env."""
    import gymnasium as gym

    chain = [env]
    while True:
        inner = getattr(chain[-1], "__dict__", {}).get("env")
        if not isinstance(inner, gym.Env) or len(chain) > _MAX_DEPTH:
            return chain
        chain.append(inner)


def _env_id(env: Any) -> str:
    spec = getattr(env, "spec", None)
    return str(spec.id) if spec is not None else type(env).__qualname__


def _sub_env_state(env: Any) -> dict[str, Any]:
    chain = _layers(env)
    layers = []
    for position, layer in enumerate(chain):
        inner = chain[position + 1] if position + 1 < len(chain) else None
        layers.append(_object_state(layer, skip=inner))
    return {"env_id": _env_id(env), "layers": layers}


def _object_state(obj: Any, skip: Any = None) -> dict[str, Any]:
    """``{"type": qualname, "attrs": {...}}`` of an env layer or space; ``skip`` is omitted."""
    from gymnasium.envs.registration import EnvSpec

    attrs: dict[str, Any] = {}
    for name, value in vars(obj).items():
        if (skip is not None and value is skip) or isinstance(value, (EnvSpec, *_CODE)):
            continue  # the next layer (saved on its own), or construction data / code
        attrs[name] = _encode(value, 0)
    return {_TAG: "object", "type": type(obj).__qualname__, "attrs": attrs}


def _unsupported(value: Any, why: str) -> dict[str, Any]:
    return {_TAG: "unsupported", "type": type(value).__qualname__, "why": why}


def _encode(value: Any, depth: int) -> Any:
    """One attribute value as plain data (see the module docstring)."""
    from gymnasium.spaces import Space

    if depth > _MAX_DEPTH:
        return _unsupported(value, f"nested deeper than {_MAX_DEPTH} levels")
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
        if array.dtype.name not in _DTYPES or not array.dtype.isnative:
            return _unsupported(value, f"numpy dtype {array.dtype.str} is not saved")
        data = torch.from_numpy(np.array(array, order="C", copy=True))  # keeps 0-d as 0-d
        kind = "ndarray" if isinstance(value, np.ndarray) else "np_scalar"
        return {_TAG: kind, "dtype": array.dtype.name, "data": data}
    if isinstance(value, np.dtype):
        if value.name not in _DTYPES or not value.isnative:
            return _unsupported(value, f"numpy dtype {value.str} is not saved")
        return {_TAG: "dtype", "name": value.name}
    if isinstance(value, np.random.Generator):
        bit_generator = value.bit_generator
        if type(bit_generator).__name__ not in _BIT_GENERATORS:
            return _unsupported(bit_generator, "this bit generator is not saved")
        return {_TAG: "generator", "state": _encode(bit_generator.state, depth + 1)}
    if isinstance(value, list):
        return [_encode(item, depth + 1) for item in value]
    if isinstance(value, tuple) and type(value) is tuple:
        return tuple(_encode(item, depth + 1) for item in value)
    if isinstance(value, (set, frozenset)):
        items = [_encode(item, depth + 1) for item in value]
        return {_TAG: "set", "frozen": isinstance(value, frozenset), "items": items}
    if type(value) is dict:
        keys = [_encode(key, depth + 1) for key in value]
        return {
            _TAG: "dict",
            "keys": keys,
            "values": [_encode(v, depth + 1) for v in value.values()],
        }
    if isinstance(value, Space) and hasattr(value, "__dict__"):
        return _object_state(value)
    return _unsupported(value, "it is not plain data")


def _decode(data: Any, where: str, depth: int) -> Any:
    """Inverse of :func:`_encode` for everything but objects; ``where`` names it in errors."""
    if depth > _MAX_DEPTH:
        raise CheckpointError(f"{where} is nested deeper than {_MAX_DEPTH} levels")
    if isinstance(data, _PLAIN):
        return data
    if isinstance(data, list):
        return [_decode(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(data)]
    if isinstance(data, tuple):
        return tuple(_decode(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(data))
    if not isinstance(data, dict):
        raise CheckpointError(f"{where} has type {type(data).__name__}, which is not env state")
    kind = data.get(_TAG)
    try:
        if kind in ("ndarray", "np_scalar"):
            tensor, dtype = data["data"], data["dtype"]
            if not isinstance(tensor, torch.Tensor) or dtype not in _DTYPES:
                raise CheckpointError(f"{where} is a malformed numpy value (dtype {dtype!r})")
            array = tensor.numpy().copy()
            if array.dtype.name != dtype or (kind == "np_scalar" and array.ndim != 0):
                raise CheckpointError(f"{where}: tensor {array.dtype}{array.shape} is no {dtype}")
            return array if kind == "ndarray" else array[()]
        if kind == "dtype":
            if data["name"] not in _DTYPES:
                raise CheckpointError(f"{where}: numpy dtype {data['name']!r} is not valid")
            return np.dtype(data["name"])
        if kind == "generator":
            state = _decode(data["state"], f"{where}.state", depth + 1)
            name = state.get("bit_generator") if isinstance(state, dict) else None
            if name not in _BIT_GENERATORS:
                raise CheckpointError(
                    f"{where}: bit generator {name!r} is not valid; expected one of "
                    f"{sorted(_BIT_GENERATORS)}"
                )
            bit_generator = _BIT_GENERATORS[name]()
            bit_generator.state = state
            return np.random.Generator(bit_generator)
        if kind == "set":
            items = [_decode(item, f"{where}{{}}", depth + 1) for item in data["items"]]
            return frozenset(items) if data["frozen"] else set(items)
        if kind == "dict":
            keys = [_decode(key, f"{where} key", depth + 1) for key in data["keys"]]
            values = [
                _decode(v, f"{where}[{k!r}]", depth + 1)
                for k, v in zip(keys, data["values"], strict=True)
            ]
            return dict(zip(keys, values, strict=True))
        if kind == "unsupported":
            raise CheckpointError(
                f"{where} held a {data['type']} when the checkpoint was written ({data['why']}); "
                "it was not saved as plain data, so this environment cannot be restored "
                "exactly and the run cannot be resumed"
            )
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{where} is malformed: {exc!r}") from exc
    raise CheckpointError(f"{where}: entry kind {kind!r} is not valid env state")


def _plan_sub_env(env: Any, entry: Any, where: str, plan: list[Callable[[], None]]) -> None:
    if not isinstance(entry, dict) or not isinstance(entry.get("layers"), list):
        raise CheckpointError(f"{where}: state is malformed (expected 'env_id' and 'layers')")
    env_id = _env_id(env)
    if entry.get("env_id") != env_id:
        raise CheckpointError(f"{where}: state is of env {entry.get('env_id')!r}, not {env_id!r}")
    where = f"{where} ({env_id})"
    chain = _layers(env)
    saved = entry["layers"]
    names = [type(layer).__qualname__ for layer in chain]
    saved_names = [s.get("type") if isinstance(s, dict) else None for s in saved]
    if saved_names != names:
        raise CheckpointError(
            f"{where}: state has the wrappers {saved_names}, this env has {names}"
        )
    for layer, layer_state in zip(chain, saved, strict=True):
        _plan_object(layer, layer_state, f"{where}: {type(layer).__qualname__}", plan)


def _plan_object(obj: Any, saved: Any, where: str, plan: list[Callable[[], None]]) -> None:
    """Decode ``saved`` (an :func:`_object_state`) and add the writes into ``obj`` to ``plan``."""
    if (
        not isinstance(saved, dict)
        or saved.get(_TAG) != "object"
        or not isinstance(saved.get("attrs"), dict)
    ):
        raise CheckpointError(f"{where}: state is malformed (expected an object entry)")
    if saved.get("type") != type(obj).__qualname__:
        raise CheckpointError(
            f"{where}: state is of a {saved.get('type')!r}, this env has a "
            f"{type(obj).__qualname__!r}"
        )
    current = vars(obj)
    for name, data in saved["attrs"].items():
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("__"):
            raise CheckpointError(f"{where}: attribute name {name!r} is not valid")
        here = f"{where}.{name}"
        old = current.get(name)
        if isinstance(data, dict) and data.get(_TAG) == "object":
            from gymnasium.spaces import Space

            if not isinstance(old, Space):
                raise CheckpointError(
                    f"{here}: state holds a {data.get('type')!r}, this env has "
                    f"{type(old).__qualname__!r}"
                )
            _plan_object(old, data, here, plan)
            continue
        value = _decode(data, here, 0)
        if (
            isinstance(value, np.random.Generator)
            and isinstance(old, np.random.Generator)
            and type(old.bit_generator) is type(value.bit_generator)
        ):
            # Restore in place: objects sharing this generator keep sharing it.
            plan.append(partial(_set_bit_generator_state, old, value.bit_generator.state))
        else:
            plan.append(partial(current.__setitem__, name, value))


def _set_bit_generator_state(generator: np.random.Generator, state: Mapping[str, Any]) -> None:
    generator.bit_generator.state = state
