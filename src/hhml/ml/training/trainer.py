"""The training loop: an agent on a vector env, evaluation, logging, checkpoints, resume.

One iteration of :meth:`Trainer.train` is one vector step of ``N`` envs, all of
it tensors on ``training.device`` (:mod:`hhml.ml.env.tensor_env`)::

    action = agent.act_tensor(obs, explore=True)       # [-1, 1], rescaled to the env's Box
    step = tensor_env.step(action)                     # same-step autoreset inside
    agent.observe(obs, action, step.reward, step.final_obs, step.terminated, step.truncated)
    agent.update_tensors(); agent.reset_state(step.terminated | step.truncated)

With the Möbius env nothing in that iteration waits for the device: rewards,
losses, diagnostics and episode returns accumulate in tensors
(:class:`~hhml.ml.training.device_stats.DeviceStats`) and reach the host once per
log, checkpoint or evaluation interval. There, non-finite actions or losses stop
the run with status ``failed`` (``metrics.json`` gives the reason).

then, when the step counter crosses a multiple of the configured interval: a
training record (``log_every``), an evaluation on a separate seeded env
(``eval_every``), a field snapshot (``snapshot_every``) and a checkpoint
(``checkpoint_every``), in that order. The loop only emits records; writers
(:mod:`hhml.ml.training.metrics`) put them in files and on the progress bar.

Exact resume: ``model_last.pt`` holds the agent (networks, optimisers, replay
buffer, its RNGs), the env state, the observations the next step acts on, all
counters and accumulators, and the global RNG states. A resumed run therefore
takes the same actions and produces the same records as an uninterrupted one
(on CPU, bit for bit); only keys under ``time/`` differ.

Evaluation uses a second agent of the same configuration (``eval_agent``) into
which the training agent's weights are copied, so evaluating never disturbs the
training agent (its RNGs or, for recurrent agents, its hidden states).

Public names: ``Trainer``, ``TrainResult``, ``Components``, ``build_components``,
``AgentFactory``, ``RESUMABLE_KEYS``.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
import torch

from hhml.config.agent import AgentConfig
from hhml.config.loader import config_to_dict, load_config, save_config
from hhml.config.schema import HHmLConfig
from hhml.errors import CheckpointError, ConfigError, HHmLError, NumericalInstabilityError
from hhml.ml.action_box import is_bounded, scale_to_box
from hhml.ml.env.factory import make_vector_env
from hhml.ml.env.tensor_env import as_tensor_env
from hhml.ml.rl.base import Agent
from hhml.ml.training.checkpoint import (
    check_env_checkpointable,
    env_state,
    load_checkpoint,
    load_env_state,
    save_checkpoint,
)
from hhml.ml.training.device_stats import DeviceStats
from hhml.ml.training.distributed import (
    SINGLE_PROCESS,
    DistContext,
    GradientAverager,
    any_rank,
    broadcast_object,
    check_parameters_in_sync,
    gather_objects,
    rank_device,
    rank_env_seed,
    scatter_objects,
)
from hhml.ml.training.evaluation import (
    AgentPolicy,
    EvalResult,
    Policy,
    RandomPolicy,
    run_episodes,
)
from hhml.ml.training.metrics import (
    TIME_PREFIX,
    IntervalStats,
    JsonlWriter,
    MetricsWriter,
    ProgressBar,
    TensorBoardWriter,
    environment_info,
    truncate_metrics,
)
from hhml.ml.training.rng import capture_rng_state, restore_rng_state
from hhml.ml.training.run_dir import RunDirectory, create_run_dir, open_run_dir, plan_run_dir
from hhml.ml.training.threads import choose_threads
from hhml.utils.atomic_io import atomic_write_text
from hhml.utils.seeding import seed_everything

__all__ = [
    "RESUMABLE_KEYS",
    "AgentFactory",
    "Components",
    "TrainResult",
    "Trainer",
    "build_components",
]

FloatArray = npt.NDArray[np.float32]

_log = logging.getLogger(__name__)

#: Builds an agent: ``(cfg.agent, obs_dim, act_dim, device, seed) -> Agent``.
AgentFactory = Callable[[AgentConfig, int, int, torch.device, int], Agent]

#: Config keys a resume may change (they do not alter the trajectory).
RESUMABLE_KEYS = (
    "training.total_steps",
    "training.device",
    "training.progress_bar",
    "training.tensorboard",
)


def _default_agent_factory(
    cfg: AgentConfig, obs_dim: int, act_dim: int, device: torch.device, seed: int
) -> Agent:
    from hhml.ml.rl import make_agent

    return make_agent(cfg, obs_dim, act_dim, device, seed)


# --------------------------------------------------------------------------------- building


@dataclass
class Components:
    """Everything a run needs besides its directory, built and validated from a config.

    Attributes
    ----------
    envs : gymnasium.vector.VectorEnv
        The training envs (``env.num_envs`` of them, same-step autoreset).
    eval_envs : gymnasium.vector.VectorEnv
        One env for evaluation, reset with seeds ``training.eval_seed + i``.
    agent : Agent
        The agent being trained.
    eval_agent : Agent
        Same configuration; receives the agent's weights before each evaluation.
    device : torch.device
        The resolved ``training.device``.
    """

    envs: gym.vector.VectorEnv
    eval_envs: gym.vector.VectorEnv
    agent: Agent
    eval_agent: Agent
    device: torch.device

    def close(self) -> None:
        """Close both vector envs."""
        self.envs.close()
        self.eval_envs.close()


def _eval_agent_config(cfg: AgentConfig) -> AgentConfig:
    """The agent config of the evaluation copy: a minimal replay buffer (it never learns)."""
    if "buffer_size" not in cfg.to_dict():
        return cfg
    try:
        return cfg.replace(buffer_size=1)
    except ConfigError:  # a schema that ties buffer_size to other keys: keep it as is
        return cfg


def _box_dim(space: Any, what: str, env_id: str) -> int:
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise ConfigError(
            f"env.id = {env_id!r} has {what} space {space}; the trainer needs a 1-D Box"
        )
    return int(space.shape[0])


def build_components(
    cfg: HHmLConfig,
    agent_factory: AgentFactory | None = None,
    dist: DistContext = SINGLE_PROCESS,
) -> Components:
    """Resolve the device and build envs and agents (everything that can fail on a config).

    Parameters
    ----------
    cfg
        The whole config.
    agent_factory
        Builds the agents; default :func:`hhml.ml.rl.make_agent`.
    dist
        This process's place in a distributed run: its envs take the seeds of
        :func:`~hhml.ml.training.distributed.rank_env_seed`, its CUDA device is
        ``cuda:<local_rank>``, and the agent averages gradients over the ranks.

    Raises
    ------
    DeviceError
        ``training.device`` is unavailable.
    ConfigError
        The env id is unknown, its spaces are not 1-D Boxes, the env cannot be
        checkpointed, or the agent rejects its config.
    """
    device = rank_device(cfg.training.device, dist)
    factory = agent_factory or _default_agent_factory
    learning_starts = getattr(cfg.agent, "learning_starts", None)
    if isinstance(learning_starts, int) and learning_starts >= cfg.training.total_steps:
        warnings.warn(
            f"agent.learning_starts = {learning_starts} >= training.total_steps = "
            f"{cfg.training.total_steps}: the agent only takes random actions and never learns",
            stacklevel=2,
        )
    env_seed = rank_env_seed(cfg.training.seed, dist, cfg.env.num_envs)
    envs = make_vector_env(cfg, num_envs=cfg.env.num_envs, seed=env_seed, device=device)
    try:
        eval_envs = make_vector_env(cfg, num_envs=1, seed=cfg.training.eval_seed, device=device)
    except BaseException:
        envs.close()
        raise
    try:
        obs_dim = _box_dim(envs.single_observation_space, "observation", cfg.env.id)
        act_dim = _box_dim(envs.single_action_space, "action", cfg.env.id)
        check_env_checkpointable(envs)
        agent = factory(cfg.agent, obs_dim, act_dim, device, cfg.training.seed)
        eval_agent = factory(_eval_agent_config(cfg.agent), obs_dim, act_dim, device, 0)
        if dist.enabled:
            agent.enable_data_parallel(dist.rank, GradientAverager(dist.world_size))
    except BaseException:
        envs.close()
        eval_envs.close()
        raise
    return Components(envs, eval_envs, agent, eval_agent, device)


# --------------------------------------------------------------------------------- results


@dataclass
class TrainResult:
    """What :meth:`Trainer.train` returns.

    Attributes
    ----------
    run_dir : Path
        The run directory.
    status : {"completed", "interrupted"}
        Interrupted: stopped by Ctrl-C / SIGTERM after writing ``model_last.pt``.
    step, total_steps : int
        Steps done and steps configured.
    baseline : EvalResult or None
        The uniformly random policy on the evaluation seeds.
    first_eval, best_eval, final_eval : EvalResult or None
        The first, best (highest mean return) and latest evaluations.
    wall_time_s : float
        Wall-clock seconds of training over all sessions of the run.
    summary : dict
        The content of ``metrics.json``.
    """

    run_dir: Path
    status: str
    step: int
    total_steps: int
    baseline: EvalResult | None
    first_eval: EvalResult | None
    best_eval: EvalResult | None
    final_eval: EvalResult | None
    wall_time_s: float
    summary: dict[str, Any]


@dataclass
class _LoopState:
    """The trainer's counters and accumulators (all plain Python, saved in checkpoints)."""

    step: int = 0
    episodes: int = 0
    episode_returns: list[float] = field(default_factory=list)
    episode_lengths: list[int] = field(default_factory=list)
    baseline: EvalResult | None = None
    evals: list[EvalResult] = field(default_factory=list)
    best_index: int | None = None
    wall_time_s: float = 0.0
    sessions: int = 1
    model_size_bytes: int = 0
    last_train: dict[str, Any] = field(default_factory=dict)
    baselines: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "episodes": self.episodes,
            "episode_returns": list(self.episode_returns),
            "episode_lengths": list(self.episode_lengths),
            "baseline": self.baseline.to_dict() if self.baseline is not None else None,
            "evals": [e.to_dict() for e in self.evals],
            "best_index": self.best_index,
            "wall_time_s": self.wall_time_s,
            "sessions": self.sessions,
            "model_size_bytes": self.model_size_bytes,
            "last_train": dict(self.last_train),
            "baselines": [dict(b) for b in self.baselines],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> _LoopState:
        baseline = data["baseline"]
        best = data["best_index"]
        return cls(
            step=int(data["step"]),
            episodes=int(data["episodes"]),
            episode_returns=[float(x) for x in data["episode_returns"]],
            episode_lengths=[int(x) for x in data["episode_lengths"]],
            baseline=EvalResult.from_dict(baseline) if baseline is not None else None,
            evals=[EvalResult.from_dict(e) for e in data["evals"]],
            best_index=int(best) if best is not None else None,
            wall_time_s=float(data["wall_time_s"]),
            sessions=int(data["sessions"]),
            model_size_bytes=int(data["model_size_bytes"]),
            last_train=dict(data["last_train"]),
            baselines=[dict(b) for b in data.get("baselines", [])],
        )

    @property
    def best(self) -> EvalResult | None:
        return self.evals[self.best_index] if self.best_index is not None else None


# --------------------------------------------------------------------------------- helpers


def _set_up_torch(cfg: HHmLConfig) -> None:
    """Seed the global RNGs, select deterministic kernels and the CPU thread count."""
    seed_everything(cfg.training.seed, deterministic=cfg.training.deterministic)
    threads, _ = choose_threads(cfg)
    torch.set_num_threads(threads)


def _crossed(before: int, after: int, every: int) -> bool:
    """Whether a multiple of ``every`` lies in ``(before, after]``."""
    return every > 0 and before // every != after // every


def _tensor_bytes(obj: Any) -> int:
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, Mapping):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def _config_differences(a: HHmLConfig | Mapping[str, Any], b: HHmLConfig) -> list[str]:
    """Dotted keys whose values differ, except :data:`RESUMABLE_KEYS`."""
    left = config_to_dict(a) if isinstance(a, HHmLConfig) else a
    right = config_to_dict(b)
    diffs = []
    for section, values in right.items():
        other = left.get(section, {})
        for key, value in values.items():
            name = f"{section}.{key}"
            if name not in RESUMABLE_KEYS and (key not in other or other[key] != value):
                diffs.append(name)
    return diffs


#: With several ranks, the iterations between the collective that lets all ranks agree on
#: a Ctrl-C / SIGTERM (each one synchronises the host): a stop waits at most this many
#: iterations (about a second at 128 envs per rank on a CPU).
STOP_CHECK_ITERATIONS = 32


class _StopRequest:
    """Turns the first SIGINT/SIGTERM into a flag the loop checks; a second one aborts."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""
        self._previous: dict[signal.Signals, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.signal_name = signal.Signals(signum).name

    @contextmanager
    def installed(self) -> Iterator[_StopRequest]:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        try:
            yield self
        finally:
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)
            self._previous.clear()


def _create_run_on_main(
    cfg: HHmLConfig, run_dir: str | Path | None, dist: DistContext
) -> RunDirectory:
    """Rank 0 creates the run directory; every rank gets its path (or rank 0's error)."""
    outcome: tuple[str, str] = ("error", "")
    if dist.is_main:
        try:
            run = create_run_dir(plan_run_dir(cfg, run_dir), cfg)
            run.snapshots.mkdir(exist_ok=True)
            outcome = ("ok", str(run.root))
        except BaseException as exc:  # tell the waiting ranks before raising here
            broadcast_object(("error", str(exc) or type(exc).__name__), dist)
            raise
    kind, value = broadcast_object(outcome, dist)
    if kind != "ok":
        raise ConfigError(f"rank 0 could not create the run directory: {value}")
    return RunDirectory(Path(value))


def _load_rank_checkpoint(path: Path, dist: DistContext) -> dict[str, Any]:
    """Rank 0 reads ``model_last.pt`` and hands each rank its own part of it.

    Rank ``r > 0`` receives the checkpoint with its entry of ``ranks`` in place
    of rank 0's agent, env, obs, trainer and rng.

    Raises
    ------
    CheckpointError
        As :func:`load_checkpoint`, or the file was written by another number of ranks.
    """
    parts: list[Any] | None = None
    if dist.is_main:
        try:
            ckpt = load_checkpoint(path)
            written = ckpt.get("world_size", 1)
            ranks = ckpt.get("ranks", [])
            if written != dist.world_size or len(ranks) != dist.world_size - 1:
                raise CheckpointError(
                    f"{path} was written by {written} rank(s); resume it with the same number "
                    f"(--nproc {written}), not {dist.world_size}"
                )
            shared = {k: v for k, v in ckpt.items() if k != "ranks"}
            parts = [("ok", shared)] + [("ok", {**shared, **own}) for own in ranks]
        except HHmLError as exc:
            scatter_objects([("error", str(exc))] * dist.world_size, dist)
            raise
    kind, value = scatter_objects(parts, dist)
    if kind != "ok":
        raise CheckpointError(f"rank 0 could not read the checkpoint: {value}")
    result: dict[str, Any] = value
    return result


# --------------------------------------------------------------------------------- trainer


def first_observation(envs: gym.vector.VectorEnv, cfg: HHmLConfig, dist: DistContext) -> FloatArray:
    """Reset the training envs for the first time: each rank from its own seed
    (:func:`~hhml.ml.training.distributed.rank_env_seed`; rank 0 uses
    ``training.seed``), so that the ranks of a ``--nproc`` run collect different
    experience. Returns the observations ``[num_envs, obs_dim]`` float32."""
    obs, _ = envs.reset(seed=rank_env_seed(cfg.training.seed, dist, cfg.env.num_envs))
    return np.asarray(obs, dtype=np.float32)


class Trainer:
    """Trains an agent on a vector env and writes a run directory (docs/training.md).

    Build one with :meth:`create` (new run) or :meth:`resume` (continue a run
    directory), then call :meth:`train`.

    Parameters
    ----------
    cfg
        The resolved config.
    run
        The run directory (already holding ``config.yaml``).
    components
        Envs and agents from :func:`build_components`.
    dist
        This process's place in a distributed run (default: a single process).
        With several ranks every rank runs this loop in lockstep; rank 0 alone
        evaluates and writes files, and ``state.step`` counts the environment
        steps of all ranks.

    Attributes
    ----------
    cfg : HHmLConfig
        The resolved config (as in ``config.yaml``).
    run : RunDirectory
        Paths of the run directory's files.
    envs, eval_envs : gymnasium.vector.VectorEnv
        Training envs and the single evaluation env.
    agent, eval_agent : Agent
        The agent being trained and its evaluation copy.
    device : torch.device
        The resolved ``training.device``.
    state : _LoopState
        Counters, episode accumulators and evaluation history (``state.step``:
        environment steps done); saved in every checkpoint.
    stats : IntervalStats
        Accumulators of the current logging interval.
    obs : ndarray or None
        ``[N, obs_dim]`` observations the next step acts on.
    """

    def __init__(
        self,
        cfg: HHmLConfig,
        run: RunDirectory,
        components: Components,
        dist: DistContext = SINGLE_PROCESS,
    ) -> None:
        self.cfg = cfg
        self.dist = dist
        self.run = run
        self.components = components
        self.envs = components.envs
        self.eval_envs = components.eval_envs
        self.agent = components.agent
        self.eval_agent = components.eval_agent
        self.device = components.device
        self.state = _LoopState()
        self.stats = IntervalStats()
        self.tensor_env = as_tensor_env(self.envs, self.device)
        self.device_stats = DeviceStats(self.tensor_env.num_envs, self.device)
        self.obs: torch.Tensor | None = None
        self._resumed = False
        self._session_start = time.perf_counter()
        self._last_checkpoint_step = -1
        space = self.envs.single_action_space
        assert isinstance(space, gym.spaces.Box)
        self._act_low = np.asarray(space.low, dtype=np.float32)
        self._act_high = np.asarray(space.high, dtype=np.float32)
        self._rescale = is_bounded(space.low, space.high)
        self._act_low_t = self.tensor_env.action_low
        self._act_high_t = self.tensor_env.action_high
        self._num_parameters = self.agent.num_parameters()

    # ---------------------------------------------------------------- construction

    @classmethod
    def create(
        cls,
        cfg: HHmLConfig,
        run_dir: str | Path | None = None,
        agent_factory: AgentFactory | None = None,
        dist: DistContext = SINGLE_PROCESS,
    ) -> Trainer:
        """Validate everything, then create the run directory of a new run.

        Nothing is written unless the device, envs and agents build and the run
        directory can be created.

        Parameters
        ----------
        cfg
            The resolved config.
        run_dir
            Explicit run directory; default ``training.run_root/<run_name or id>``.
        agent_factory
            Builds the agents; default :func:`hhml.ml.rl.make_agent`.
        dist
            This process's place in a distributed run; rank 0 creates the run
            directory and tells the other ranks its path.

        Raises
        ------
        ConfigError, DeviceError, CheckpointError
            See :func:`build_components` and :func:`~hhml.ml.training.run_dir.plan_run_dir`.
        """
        _set_up_torch(cfg)
        components = build_components(cfg, agent_factory, dist)
        try:
            run = _create_run_on_main(cfg, run_dir, dist)
        except BaseException:
            components.close()
            raise
        trainer = cls(cfg, run, components, dist)
        obs = first_observation(trainer.envs, cfg, trainer.dist)
        trainer.obs = torch.as_tensor(obs, device=trainer.device)
        trainer.agent.reset_state(None)
        n = cfg.env.num_envs
        trainer.state.episode_returns = [0.0] * n
        trainer.state.episode_lengths = [0] * n
        trainer.state.model_size_bytes = _tensor_bytes(
            trainer.agent.state_dict(include_replay=False)
        )
        return trainer

    @classmethod
    def resume(
        cls,
        run_dir: str | Path,
        overrides: Sequence[str] = (),
        agent_factory: AgentFactory | None = None,
        dist: DistContext = SINGLE_PROCESS,
    ) -> Trainer:
        """Reopen a run directory and restore ``model_last.pt`` for an exact continuation.

        Records of ``metrics.jsonl`` after the checkpoint's step (written by a
        killed run) are dropped, and TensorBoard purges its later events.

        Parameters
        ----------
        run_dir
            The run directory.
        overrides
            ``section.key=value`` changes to the stored ``config.yaml``; only
            :data:`RESUMABLE_KEYS` may change (e.g. ``training.total_steps=50000``).
        agent_factory
            Builds the agents; default :func:`hhml.ml.rl.make_agent`.
        dist
            This process's place in a distributed run: rank 0 reads the checkpoint
            and hands every rank its own part; the number of ranks must be the one
            that wrote it.

        Raises
        ------
        CheckpointError
            Not a run directory, no ``model_last.pt``, a checkpoint that is
            corrupted or does not fit the config (naming the key), or one written
            by a different number of ranks.
        ConfigError
            An override of a key that would change the trajectory.
        """
        run = open_run_dir(run_dir)
        stored = load_config(run.config)
        cfg = load_config(run.config, overrides)
        changed = _config_differences(stored, cfg)
        if changed:
            raise ConfigError(
                f"cannot change {', '.join(repr(k) for k in changed)} when resuming "
                f"{run.root} (it would change the trajectory); resumable keys: "
                f"{', '.join(RESUMABLE_KEYS)}"
            )
        _set_up_torch(cfg)
        components = build_components(cfg, agent_factory, dist)
        try:
            checkpoint = _load_rank_checkpoint(run.model_last, dist)
            trainer = cls(cfg, run, components, dist)
            trainer._restore(checkpoint, str(run.model_last))
            if dist.is_main:
                # metrics first: a malformed line refuses the resume before config.yaml
                # takes the overrides
                truncate_metrics(run.metrics_jsonl, trainer.state.step)
                if cfg != stored:
                    save_config(cfg, run.config)
                run.snapshots.mkdir(exist_ok=True)
        except BaseException:
            components.close()
            raise
        return trainer

    def _restore(self, ckpt: Mapping[str, Any], source: str) -> None:
        if ckpt["kind"] != "last":
            raise CheckpointError(
                f"{source} is a {ckpt['kind']!r} checkpoint; resuming needs model_last.pt"
            )
        diffs = _config_differences(ckpt["config"], self.cfg)
        if diffs:
            raise CheckpointError(
                f"{source} was written with a different config ({', '.join(diffs)} differ "
                f"from {self.run.config})"
            )
        if ckpt["agent_class"] != type(self.agent).__name__:
            raise CheckpointError(
                f"{source} holds a {ckpt['agent_class']} agent; this config builds "
                f"{type(self.agent).__name__}"
            )
        try:
            self.agent.load_state_dict(ckpt["agent"])
        except CheckpointError as exc:
            raise CheckpointError(f"{source}: agent: {exc}") from exc
        except (KeyError, ValueError, RuntimeError, TypeError) as exc:
            raise CheckpointError(f"{source}: agent state does not fit this agent: {exc}") from exc
        load_env_state(self.envs, ckpt["env"], source)
        obs = ckpt["obs"]
        expected = (self.cfg.env.num_envs, _box_dim(self.envs.single_observation_space, "", ""))
        if tuple(obs.shape) != expected:
            raise CheckpointError(
                f"{source}: key 'obs' has shape {tuple(obs.shape)}, expected {expected}"
            )
        self.obs = obs.to(device=self.device, dtype=torch.float32)
        try:
            self.state = _LoopState.from_dict(ckpt["trainer"])
            self.stats.load_state_dict(ckpt["trainer"]["stats"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{source}: key 'trainer' is malformed: {exc!r}") from exc
        n = self.tensor_env.num_envs
        if len(self.state.episode_returns) != n or len(self.state.episode_lengths) != n:
            raise CheckpointError(
                f"{source}: keys 'trainer.episode_returns'/'episode_lengths' have "
                f"{len(self.state.episode_returns)}/{len(self.state.episode_lengths)} entries, "
                f"expected env.num_envs = {n}"
            )
        self.device_stats = DeviceStats(
            n, self.device, self.state.episode_returns, self.state.episode_lengths
        )
        if self.state.step != ckpt["step"]:
            raise CheckpointError(
                f"{source}: key 'trainer.step' = {self.state.step} disagrees with "
                f"'step' = {ckpt['step']}"
            )
        restore_rng_state(ckpt["rng"])
        self.state.sessions += 1
        self._resumed = True

    # ---------------------------------------------------------------- env plumbing

    def _env_action_tensor(self, action: torch.Tensor) -> torch.Tensor:
        """Map agent actions in [-1, 1] affinely onto the env's Box bounds (tensors)."""
        if not self._rescale:
            return action
        return scale_to_box(action, self._act_low_t, self._act_high_t)

    def _env_action(self, action: FloatArray) -> FloatArray:
        """:meth:`_env_action_tensor` for NumPy actions (the evaluation env's edge)."""
        action_t = torch.as_tensor(np.asarray(action, dtype=np.float32), device=self.device)
        result: FloatArray = self._env_action_tensor(action_t).cpu().numpy()
        return result

    def _record_info(self, info: Mapping[str, Any]) -> None:
        """Accumulate the Möbius env's reward terms, parameters, vortex stats, terminations
        (on the device; see :class:`~hhml.ml.training.device_stats.DeviceStats`)."""
        for key, prefix in (("reward_terms", "reward/"), ("vortex", "vortex/")):
            group = info.get(key)
            if isinstance(group, Mapping):
                self.device_stats.add_mapping(prefix, group)
        params = info.get("params")
        if isinstance(params, Mapping):
            self.device_stats.set_last_mapping("params/", params)
        codes = info.get("termination")
        if codes is not None:
            # integer codes of one fixed table: the metric keys stay a bounded set
            self.device_stats.add_terminations(codes)

    def _flush_device_stats(self) -> None:
        """Bring the device accumulators to the host (one copy): interval statistics,
        episode counters; a non-finite action or loss fails the run here."""
        totals = self.device_stats.flush(self.stats)
        self.state.episodes += totals.finished
        self.state.episode_returns = totals.returns
        self.state.episode_lengths = totals.lengths
        if totals.non_finite:
            raise NumericalInstabilityError(
                f"non-finite values in {', '.join(totals.non_finite)} during the steps before "
                f"step {self.state.step} (diverged agent weights or learning rates too high? "
                "lower agent.actor_learning_rate / agent.critic_learning_rate)"
            )

    # ---------------------------------------------------------------- evaluation

    def _evaluate(self, policy: Policy) -> tuple[EvalResult, dict[str, float]]:
        cfg = self.cfg.training
        seeds = [cfg.eval_seed + i for i in range(cfg.eval_episodes)]
        return run_episodes(self.eval_envs, policy, seeds, self._env_action, self.state.step)

    def _evaluate_baseline(self) -> tuple[EvalResult, dict[str, float]]:
        """A uniformly random policy (its own generator, seeded by ``eval_seed``)."""
        act_dim = int(self._act_low.shape[0])
        return self._evaluate(RandomPolicy(act_dim, self.cfg.training.eval_seed))

    def _evaluate_agent(self) -> tuple[EvalResult, dict[str, float]]:
        """The deterministic policy of a copy of the agent (the agent itself is untouched)."""
        self.eval_agent.load_state_dict(self.agent.state_dict(include_replay=False))
        return self._evaluate(AgentPolicy(self.eval_agent))

    # ---------------------------------------------------------------- records

    def _emit(self, writers: Sequence[MetricsWriter], record: Mapping[str, Any]) -> None:
        for writer in writers:
            writer.write(record)

    def _train_record(self, steps_per_sec: float, stats: IntervalStats) -> dict[str, Any]:
        record: dict[str, Any] = {
            "kind": "train",
            "step": self.state.step,
            "episodes": self.state.episodes,
            "updates": int(self.agent.num_updates),
            "model/num_parameters": self._num_parameters,
            "model/size_bytes": self.state.model_size_bytes,
        }
        record.update(stats.means())
        record[f"{TIME_PREFIX}steps_per_sec"] = steps_per_sec
        record[f"{TIME_PREFIX}wall_s"] = self._wall_time()
        return record

    def _eval_record(
        self, result: EvalResult, extras: Mapping[str, float], kind: str
    ) -> dict[str, Any]:
        prefix = "eval" if kind == "eval" else "baseline"
        record: dict[str, Any] = {
            "kind": kind,
            "step": result.step,
            f"{prefix}/return_mean": result.return_mean,
            f"{prefix}/return_std": result.return_std,
            f"{prefix}/return_min": min(result.returns),
            f"{prefix}/return_max": max(result.returns),
            f"{prefix}/length_mean": result.length_mean,
        }
        for name, value in extras.items():
            record[f"{prefix}/{name}"] = value
        if kind == "eval" and self.state.baseline is not None:
            record["eval/baseline_return"] = self.state.baseline.return_mean
        return record

    def _wall_time(self) -> float:
        return self.state.wall_time_s + (time.perf_counter() - self._session_start)

    # ---------------------------------------------------------------- files

    def _checkpoint_payload(
        self, kind: str, rank_state: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A ``best`` checkpoint (the agent) or a ``last`` one (everything for a resume;
        ``rank_state``: this rank's :meth:`_rank_state` if already computed)."""
        last = kind == "last"
        payload: dict[str, Any] = {
            "kind": kind,
            "step": self.state.step,
            "config": config_to_dict(self.cfg),
            "agent_class": type(self.agent).__name__,
            "obs_dim": int(self.agent.obs_dim),
            "act_dim": int(self.agent.act_dim),
        }
        if not last:
            payload["agent"] = self.agent.state_dict(include_replay=False)
        if last:
            payload.update(rank_state if rank_state is not None else self._rank_state())
            payload["world_size"] = self.dist.world_size
        return payload

    def _rank_state(self) -> dict[str, Any]:
        """What differs between ranks: agent (replay, random streams), envs, loop, RNGs."""
        assert self.obs is not None
        self._flush_device_stats()
        trainer = self.state.to_dict()
        trainer["wall_time_s"] = self._wall_time()
        trainer["stats"] = self.stats.state_dict()
        return {
            "agent": self.agent.state_dict(include_replay=self.cfg.training.save_replay),
            "env": env_state(self.envs),
            "obs": self.obs.to("cpu", torch.float32, copy=True),
            "trainer": trainer,
            "rng": capture_rng_state(),
        }

    def _write_checkpoint(self) -> None:
        """``model_last.pt``; with several ranks a collective: rank 0 gathers every
        rank's own state into ``ranks`` and checks that the weights agree."""
        check_parameters_in_sync(self.agent.synced_modules(), self.dist, self.state.step)
        if self.dist.enabled:
            parts = gather_objects(self._rank_state(), self.dist)
            if self.dist.is_main:
                assert parts is not None
                payload = self._checkpoint_payload("last", parts[0])
                payload["ranks"] = parts[1:]
                save_checkpoint(self.run.model_last, payload)
        else:
            save_checkpoint(self.run.model_last, self._checkpoint_payload("last"))
        self._last_checkpoint_step = self.state.step

    def _run_baselines(self, writers: Sequence[MetricsWriter]) -> None:
        """Score the configured non-learning baselines (``training.baselines``) with the
        agent's env-step budget on the evaluation seeds (:mod:`hhml.ml.baselines`); the
        random one is the trainer's own ``baseline`` evaluation. A search the budget cannot
        afford (fewer than two episodes) is recorded as skipped, with the reason."""
        from hhml.ml.baselines.suite import BaselineResult, run_baselines

        tr = self.cfg.training
        records: list[dict[str, Any]] = []
        start = time.perf_counter()
        for name in tr.baseline_names():
            if name == "random" and self.state.baseline is not None:
                records.append(
                    BaselineResult.of_returns(name, self.state.baseline.returns).to_dict()
                )
                continue
            try:
                (result,) = run_baselines(
                    self.cfg, [name], segments=tr.baseline_segments, seed=tr.seed
                )
            except ConfigError as exc:
                records.append({"name": name, "skipped": str(exc)})
                continue
            records.append(result.to_dict())
        self.state.baselines = records
        line: dict[str, Any] = {"kind": "baselines", "step": self.state.step}
        for record in records:
            if "return_mean" in record:
                line[f"baselines/{record['name']}/return_mean"] = record["return_mean"]
                line[f"baselines/{record['name']}/search_env_steps"] = record["search_env_steps"]
        line[f"{TIME_PREFIX}baselines_wall_s"] = time.perf_counter() - start
        self._emit(writers, line)

    def _record_failure(self, exc: Exception) -> None:
        """``metrics.json`` with status ``failed`` and the reason (rank 0; best effort:
        a failure to write it must not hide the original error)."""
        if not self.dist.is_main:
            return
        try:
            self._write_summary("failed", reason=f"{type(exc).__name__}: {exc}")
        except Exception as write_error:  # the original error is what the user must see
            _log.warning("could not record the failure in metrics.json: %s", write_error)

    def _summary(self, status: str, reason: str | None = None) -> dict[str, Any]:
        from hhml.ml.baselines.suite import compare_with_baselines

        state = self.state
        wall = self._wall_time()
        first = state.evals[0] if state.evals else None
        best = state.best
        final = state.evals[-1] if state.evals else None
        return {
            "run_id": self.run.run_id,
            "status": status,
            **({"reason": reason} if reason is not None else {}),
            "step": state.step,
            "total_steps": self.cfg.training.total_steps,
            "episodes": state.episodes,
            "updates": int(self.agent.num_updates),
            "num_parameters": self._num_parameters,
            "model_size_bytes": state.model_size_bytes,
            "baseline_return": state.baseline.return_mean if state.baseline else None,
            "first_eval": first.to_dict() if first else None,
            "best_eval": best.to_dict() if best else None,
            "final_eval": final.to_dict() if final else None,
            "evals": [{"step": e.step, "return_mean": e.return_mean} for e in state.evals],
            "baselines": [dict(b) for b in state.baselines],
            "agent_vs_baselines": compare_with_baselines(
                final.returns if final else None, state.baselines
            ),
            "final": dict(state.last_train),
            "wall_time_s": wall,
            "steps_per_sec": state.step / wall if wall > 0 else None,
            "sessions": state.sessions,
            "algorithm": self.cfg.agent.algorithm,
            "env_id": self.cfg.env.id,
            "seed": self.cfg.training.seed,
            "world_size": self.dist.world_size,
            **environment_info(self.device),
        }

    def _write_summary(self, status: str, reason: str | None = None) -> dict[str, Any]:
        """Write ``metrics.json`` (rank 0) and return the summary; ``reason`` explains a
        ``failed`` status."""
        import json

        summary = self._summary(status, reason)
        if self.dist.is_main:
            atomic_write_text(self.run.metrics_json, json.dumps(summary, indent=2) + "\n")
        return summary

    # ---------------------------------------------------------------- the loop

    def _open_writers(self) -> tuple[list[MetricsWriter], ProgressBar]:
        """Files and progress bar on rank 0; the other ranks write nothing."""
        cfg = self.cfg.training
        main = self.dist.is_main
        bar = ProgressBar(cfg.total_steps, self.state.step, cfg.progress_bar and main)
        if not main:
            return [], bar
        writers: list[MetricsWriter] = [JsonlWriter(self.run.metrics_jsonl)]
        if cfg.tensorboard:
            purge = self.state.step + 1 if self._resumed else None
            writers.append(TensorBoardWriter(self.run.tensorboard, purge_step=purge))
        writers.append(bar)
        return writers, bar

    def _step(self, snapshot: bool = False) -> None:
        """One vector step: act, step the envs, store the transitions, update; all on the
        device, without waiting for it. ``snapshot``: write a field snapshot of this
        step, taken before the autoreset (an episode ending here keeps its final field)."""
        assert self.obs is not None
        obs = self.obs
        stats = self.device_stats
        action = self.agent.act_tensor(obs, explore=True)
        stats.check_finite("action", action)
        step = self.tensor_env.step(self._env_action_tensor(action), snapshot=snapshot)
        done = step.terminated | step.truncated
        self.agent.observe(
            obs, action, step.reward, step.final_obs, step.terminated, step.truncated
        )
        losses = self.agent.update_tensors()
        self.agent.reset_state(done)
        self.obs = step.obs
        self.state.step += int(step.reward.shape[0]) * self.dist.world_size
        stats.add("reward/total", step.reward)
        tensors = {k: v for k, v in losses.items() if isinstance(v, torch.Tensor)}
        for name, value in losses.items():
            if not isinstance(value, torch.Tensor):
                self.stats.add(f"agent/{name}", value)
        if tensors:
            stacked = torch.stack([v.detach().reshape(-1).mean() for v in tensors.values()])
            stats.add_group(tuple(f"agent/{name}" for name in tensors), stacked)
            stats.check_finite("agent losses", stacked)
        self._record_info(step.info)
        stats.end_step(step.reward, done)
        if "snapshot" in step.info:
            self._write_snapshot(step.info["snapshot"])

    def _do_eval(self, writers: Sequence[MetricsWriter]) -> EvalResult:
        result, extras = self._evaluate_agent()
        self.state.evals.append(result)
        best = self.state.best
        if best is None or result.return_mean > best.return_mean:
            self.state.best_index = len(self.state.evals) - 1
            save_checkpoint(self.run.model_best, self._checkpoint_payload("best"))
        self._emit(writers, self._eval_record(result, extras, "eval"))
        return result

    def _log(self, writers: Sequence[MetricsWriter], steps_per_sec: float) -> None:
        """Emit a training record; with several ranks a collective whose statistics
        pool the accumulators of all ranks (and ``episodes`` sums theirs)."""
        self._flush_device_stats()
        if self.dist.enabled:
            pooled = gather_objects((self.stats.state_dict(), self.state.episodes), self.dist)
            self.stats.clear()
            if not self.dist.is_main:
                return
            assert pooled is not None
            stats = IntervalStats.merged([part[0] for part in pooled])
            record = self._train_record(steps_per_sec, stats)
            record["episodes"] = sum(int(part[1]) for part in pooled)
            record["dist/world_size"] = self.dist.world_size
        else:
            record = self._train_record(steps_per_sec, self.stats)
            self.stats.clear()
        self.state.last_train = {k: v for k, v in record.items() if not k.startswith(TIME_PREFIX)}
        self._emit(writers, record)

    def _write_snapshot(self, snapshot: Mapping[str, Any]) -> None:
        """``snapshots/step_<step>.h5``: the fields of this step before the autoreset.

        HDF5 readable with xarray (:mod:`hhml.io.fields`), written atomically; the run's
        config is attached as the JSON attribute ``config``.
        """
        from hhml.io.fields import write_snapshot_h5

        path = self.run.snapshots / f"step_{self.state.step:010d}.h5"
        snap = {"step": self.state.step, **snapshot}
        write_snapshot_h5(path, snap, attrs={"config": config_to_dict(self.cfg)})

    def train(self) -> TrainResult:
        """Train until ``training.total_steps`` (or a Ctrl-C / SIGTERM), then summarise.

        On Ctrl-C or SIGTERM the current step finishes, ``model_last.pt`` and
        ``metrics.json`` are written and the result has status ``"interrupted"``;
        a second Ctrl-C aborts at once (the previous checkpoint stays valid).

        Returns
        -------
        TrainResult
            Status, evaluations and the ``metrics.json`` summary.
        """
        cfg = self.cfg.training
        self._session_start = time.perf_counter()
        self._last_checkpoint_step = self.state.step if self._resumed else -1
        writers, bar = self._open_writers()
        stop = _StopRequest()
        log_time, log_step = self._session_start, self.state.step
        main = self.dist.is_main
        stopping = False
        try:
            with stop.installed():
                if main and self.state.baseline is None:
                    baseline, extras = self._evaluate_baseline()
                    self.state.baseline = baseline
                    self._emit(writers, self._eval_record(baseline, extras, "baseline"))
                per_step = self.tensor_env.num_envs * self.dist.world_size
                iterations = 0
                while self.state.step < cfg.total_steps and not stopping:
                    before = self.state.step
                    snap = main and _crossed(before, before + per_step, cfg.snapshot_every)
                    self._step(snapshot=snap)
                    after = self.state.step
                    bar.advance(after - before)
                    if _crossed(before, after, cfg.log_every):
                        now = time.perf_counter()
                        self._log(writers, (after - log_step) / max(now - log_time, 1e-9))
                        log_time, log_step = now, after
                    if main and _crossed(before, after, cfg.eval_every):
                        self._do_eval(writers)
                    if _crossed(before, after, cfg.checkpoint_every):
                        self._write_checkpoint()
                        self._write_summary("running")
                    # A Ctrl-C reaches the ranks at different steps: all stop together, at
                    # the same iteration. With several ranks that takes a collective (a
                    # host synchronisation), so they agree every STOP_CHECK_ITERATIONS
                    # iterations only; a single process checks its flag every step.
                    iterations += 1
                    if not self.dist.enabled or iterations % STOP_CHECK_ITERATIONS == 0:
                        stopping = any_rank(stop.requested, self.dist, self.device)
                status = "interrupted" if stopping else "completed"
                if (
                    main
                    and status == "completed"
                    and (not self.state.evals or self.state.evals[-1].step != self.state.step)
                ):
                    self._do_eval(writers)
                if main and status == "completed":
                    self._run_baselines(writers)
                if self._last_checkpoint_step != self.state.step:
                    self._write_checkpoint()
                summary = self._write_summary(status)
        except Exception as exc:
            self._record_failure(exc)
            raise
        finally:
            for writer in writers:
                writer.close()
        state = self.state
        return TrainResult(
            run_dir=self.run.root,
            status=status,
            step=state.step,
            total_steps=cfg.total_steps,
            baseline=state.baseline,
            first_eval=state.evals[0] if state.evals else None,
            best_eval=state.best,
            final_eval=state.evals[-1] if state.evals else None,
            wall_time_s=float(summary["wall_time_s"]),
            summary=summary,
        )

    def close(self) -> None:
        """Close the envs."""
        self.components.close()
