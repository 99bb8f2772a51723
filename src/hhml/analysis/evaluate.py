"""Evaluating a trained agent on seeded episodes, with the frames to animate them.

:func:`load_evaluation` finds a checkpoint (a run directory's ``model_best.pt`` or
``model_last.pt``, or a checkpoint file), its config and rebuilds the agent;
:func:`evaluate` runs the agent's deterministic policy for one episode per seed on the
trainer's evaluation protocol — a one-env vector env built with seed
``training.eval_seed`` and reset with each seed in turn, actions mapped onto the
action box by :func:`hhml.ml.baselines.suite.to_box` — so that its returns equal those
of :func:`hhml.ml.training.evaluation.run_episodes` with an
:class:`~hhml.ml.training.evaluation.AgentPolicy` exactly. For the Möbius vortex env it
can also hand a :class:`~hhml.analysis.animation.Frame` per env step (and one for the
field after reset) to a :class:`FrameSink`, e.g. an
:class:`~hhml.analysis.animation.AnimationWriter`.

The frame of an episode's last step is taken just before the env's same-step
autoreset replaces the field (the vector env resets a finished env inside ``step``).

Public names: ``EpisodeResult``, ``EvaluationResult``, ``FrameSink``,
``load_evaluation``, ``resolve_checkpoint``, ``evaluate``, ``frame_of``,
``is_mobius``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from hhml.analysis.animation import Frame
from hhml.config.schema import HHmLConfig
from hhml.errors import CheckpointError, ConfigError, HHmLError

if TYPE_CHECKING:
    from hhml.ml.env.core import MobiusVortexCore
    from hhml.ml.rl.base import Agent

__all__ = [
    "EpisodeResult",
    "EvaluationResult",
    "FrameSink",
    "evaluate",
    "frame_of",
    "is_mobius",
    "load_evaluation",
    "resolve_checkpoint",
]

#: Checkpoint file of each ``--checkpoint`` choice in a run directory.
CHECKPOINT_FILES = {"best": "model_best.pt", "last": "model_last.pt"}


class FrameSink(Protocol):
    """Receives the frames of one episode (e.g. an ``AnimationWriter``)."""

    def add(self, frame: Frame) -> None:
        """Take the next frame."""

    def close(self) -> None:
        """The episode is over."""


@dataclass
class EpisodeResult:
    """One evaluation episode.

    Attributes
    ----------
    seed : int
        Reset seed.
    episode_return : float
        Sum of the rewards (dimensionless).
    length : int
        Env steps until the episode ended.
    terminated : bool
        It ended by failure (collapse/instability) rather than by the horizon.
    """

    seed: int
    episode_return: float
    length: int
    terminated: bool


@dataclass
class EvaluationResult:
    """The episodes of one evaluation and where the policy came from.

    Attributes
    ----------
    episodes : list of EpisodeResult
        In the order of the seeds.
    checkpoint : Path or None
        The checkpoint the agent was loaded from.
    step : int or None
        Training env steps of that checkpoint.
    deterministic : bool
        Actions were the agent's deterministic policy (``act(explore=False)``).
    animations : dict
        Animation file written for an episode, by seed.
    """

    episodes: list[EpisodeResult]
    checkpoint: Path | None = None
    step: int | None = None
    deterministic: bool = True
    animations: dict[int, str] = field(default_factory=dict)

    @property
    def returns(self) -> list[float]:
        """Return of each episode."""
        return [e.episode_return for e in self.episodes]

    @property
    def mean(self) -> float:
        """Mean return (NaN without episodes)."""
        return float(np.mean(self.returns)) if self.episodes else float("nan")

    @property
    def interval(self) -> tuple[float, float] | None:
        """95 % Student-t interval of the mean return (None for fewer than 2 episodes)."""
        from hhml.ml.training.evaluation import mean_interval

        return mean_interval(self.returns)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form (``returns.json``)."""
        ci = self.interval
        return {
            "checkpoint": None if self.checkpoint is None else str(self.checkpoint),
            "checkpoint_step": self.step,
            "deterministic_policy": self.deterministic,
            "seeds": [e.seed for e in self.episodes],
            "returns": self.returns,
            "lengths": [e.length for e in self.episodes],
            "terminated": [e.terminated for e in self.episodes],
            "return_mean": self.mean,
            "return_std": float(np.std(self.returns)) if self.episodes else float("nan"),
            "return_ci95": list(ci) if ci is not None else None,
            "length_mean": (
                float(np.mean([e.length for e in self.episodes])) if self.episodes else float("nan")
            ),
            "animations": {str(k): v for k, v in self.animations.items()},
        }


def resolve_checkpoint(source: str | Path, which: str = "best") -> tuple[Path, Path | None]:
    """The checkpoint file to evaluate and its run directory (None for a bare file).

    Parameters
    ----------
    source
        A run directory or a checkpoint file.
    which
        ``"best"`` (``model_best.pt``) or ``"last"`` (``model_last.pt``); used only for
        a directory.

    Raises
    ------
    CheckpointError
        ``source`` does not exist, or the directory holds no such checkpoint.
    ConfigError
        ``which`` is neither ``"best"`` nor ``"last"``.
    """
    if which not in CHECKPOINT_FILES:
        raise ConfigError(f"checkpoint {which!r} is not valid; choose 'best' or 'last'")
    path = Path(source)
    if path.is_dir():
        file = path / CHECKPOINT_FILES[which]
        if not file.is_file():
            present = sorted(p.name for p in path.glob("model_*.pt"))
            hint = f" (it holds {', '.join(present)})" if present else " (it holds none)"
            raise CheckpointError(f"run directory {path} has no {file.name}{hint}")
        return file, path
    if path.is_file():
        return path, None
    raise CheckpointError(f"{path}: no such run directory or checkpoint file")


def load_evaluation(
    source: str | Path, which: str = "best", device: str | torch.device = "cpu"
) -> tuple[Agent, HHmLConfig, Path, int]:
    """Load the agent and config to evaluate.

    A run directory's config is its ``config.yaml``
    (:func:`hhml.config.load_config`); a bare checkpoint file's is the one stored in it.

    Returns
    -------
    agent, config, checkpoint path, checkpoint step

    Raises
    ------
    CheckpointError
        No checkpoint, an unreadable one, or an agent that does not fit it.
    ConfigError
        The run's ``config.yaml`` is missing or invalid.
    """
    from hhml.config import config_from_dict, load_config
    from hhml.ml.training.checkpoint import load_checkpoint, load_trained_agent

    file, run_dir = resolve_checkpoint(source, which)
    data = load_checkpoint(file)
    if run_dir is not None:
        config_file = run_dir / "config.yaml"
        if not config_file.is_file():
            raise ConfigError(f"run directory {run_dir} has no config.yaml")
        cfg = load_config(config_file)
    else:
        try:
            cfg = config_from_dict(data["config"], source=f"{file}:config")
        except ConfigError as exc:
            raise CheckpointError(f"{file}: its config is not usable: {exc}") from None
    agent = load_trained_agent(file, device=device)
    return agent, cfg, file, int(data["step"])


def is_mobius(cfg: HHmLConfig) -> bool:
    """Whether ``cfg`` selects the Möbius vortex env (the only one with frames)."""
    from hhml.ml.env.factory import MOBIUS_ENV_ID

    return cfg.env.id == MOBIUS_ENV_ID


def frame_of(
    core: MobiusVortexCore,
    env: int,
    *,
    step: int,
    reward: float | None,
    episode_return: float,
    seed: int | None = None,
) -> Frame:
    """The :class:`Frame` of env ``env`` of ``core`` now: field (copied to the CPU), all
    its detected vortices (:func:`hhml.core.resonance.detect_vortices`, as the
    dashboard's snapshots) and its control values. Reads the state only."""
    from hhml.core.resonance import detect_vortices

    with torch.no_grad():
        psi = core.sim.psi
        vort = detect_vortices(psi, core.lattice)
        mine = vort.index[:, 0] == env
        values = core.state.values
        controls = core.controls.to_action_tensor(values)
        return Frame(
            psi=psi[env].detach().cpu().to(torch.complex128).numpy(),
            vortex_strip=vort.index[mine, 1].cpu().numpy().astype(np.int64),
            vortex_position=vort.position[mine].detach().cpu().double().numpy(),
            vortex_charge=vort.charge[mine].cpu().numpy().astype(np.int64),
            controls=controls[env].detach().cpu().double().numpy(),
            values=values[env].detach().cpu().double().numpy(),
            step=step,
            reward=reward,
            episode_return=episode_return,
            seed=seed,
            length=float(core.lattice.strip.length),
            half_width=float(core.lattice.strip.half_width),
        )


@contextmanager
def _before_autoreset(core: MobiusVortexCore, capture: Callable[[], None]) -> Iterator[list[int]]:
    """Within the block, call ``capture`` each time ``core.reset`` is called (the vector
    env's same-step autoreset), before the reset; yields the list of call counts."""
    calls: list[int] = []
    original = core.reset

    def reset(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        capture()
        original(*args, **kwargs)

    setattr(core, "reset", reset)  # noqa: B010 (an instance attribute shadows the method)
    try:
        yield calls
    finally:
        delattr(core, "reset")


def evaluate(
    agent: Agent,
    cfg: HHmLConfig,
    seeds: Sequence[int],
    *,
    device: str | torch.device = "cpu",
    env_index: int = 0,
    sink_for: Callable[[int, int], FrameSink | None] | None = None,
    on_episode: Callable[[EpisodeResult], None] | None = None,
) -> EvaluationResult:
    """Run ``agent``'s deterministic policy for one episode per seed.

    Parameters
    ----------
    agent
        The trained agent (its recurrent state is reset per episode).
    cfg
        The run's config (``env``, ``training.eval_seed``, and the env's sections).
    seeds
        One reset seed per episode.
    device
        Torch device of the env.
    env_index
        Which env of the evaluation batch the frames show (the batch has one env).
    sink_for
        ``sink_for(episode, seed)`` returns where the frames of that episode go, or
        None for no frames. Frames exist for the Möbius env only.
    on_episode
        Called after each episode.

    Returns
    -------
    EvaluationResult
        Per-episode returns (``checkpoint`` and ``step`` left None).

    Raises
    ------
    ConfigError
        ``env_index`` out of range, frames asked for a non-Möbius env, or the env or
        agent do not fit each other.
    """
    import gymnasium as gym

    from hhml.ml.baselines.suite import to_box
    from hhml.ml.env.factory import make_vector_env
    from hhml.ml.training.evaluation import AgentPolicy

    if env_index != 0:
        raise ConfigError(
            f"env index {env_index} is out of range: the evaluation env has 1 env (index 0)"
        )
    envs = make_vector_env(cfg, num_envs=1, seed=cfg.training.eval_seed, device=device)
    try:
        space, obs_space = envs.single_action_space, envs.single_observation_space
        if not (isinstance(space, gym.spaces.Box) and isinstance(obs_space, gym.spaces.Box)):
            raise ConfigError(
                f"env {cfg.env.id!r} has spaces {obs_space} and {space}; evaluation needs "
                "Box observations and actions"
            )
        dims = (int(np.prod(obs_space.shape)), int(np.prod(space.shape)))
        if (agent.obs_dim, agent.act_dim) != dims:
            raise ConfigError(
                f"the agent acts on {agent.obs_dim} observations and {agent.act_dim} "
                f"actions, but env {cfg.env.id!r} has {dims[0]} and {dims[1]}"
            )
        env_action = to_box(space)
        policy = AgentPolicy(agent)
        core: MobiusVortexCore | None = getattr(envs, "core", None) if is_mobius(cfg) else None
        episodes: list[EpisodeResult] = []
        for episode, seed in enumerate(seeds):
            sink = sink_for(episode, seed) if sink_for is not None else None
            if sink is not None and core is None:
                raise ConfigError(
                    f"env {cfg.env.id!r} has no field to animate; frames exist for the "
                    "Möbius vortex env only"
                )
            try:
                result = _episode(envs, policy, env_action, seed, core, env_index, sink)
            finally:
                if sink is not None:
                    sink.close()
            episodes.append(result)
            if on_episode is not None:
                on_episode(result)
    finally:
        envs.close()
    return EvaluationResult(episodes=episodes)


def _episode(
    envs: Any,
    policy: Any,
    env_action: Callable[[Any], Any],
    seed: int,
    core: MobiusVortexCore | None,
    env_index: int,
    sink: FrameSink | None,
) -> EpisodeResult:
    """One episode, step for step as :func:`hhml.ml.training.evaluation.run_episodes`."""
    obs, _ = envs.reset(seed=seed)
    policy.reset()
    total, length = 0.0, 0
    record = sink is not None and core is not None
    if record:
        assert sink is not None and core is not None
        sink.add(frame_of(core, env_index, step=0, reward=None, episode_return=0.0, seed=seed))
    while True:
        action = policy(np.asarray(obs, dtype=np.float32))
        if record:
            assert core is not None
            last: list[Frame] = []

            def capture(out: list[Frame] = last, core: MobiusVortexCore = core) -> None:
                # reward and return are filled in below
                out.append(frame_of(core, env_index, step=0, reward=None, episode_return=0.0))

            # the frame of a final step must be taken before the autoreset inside step()
            with _before_autoreset(core, capture) as resets:
                obs, reward, terminated, truncated, _info = envs.step(env_action(action))
        else:
            obs, reward, terminated, truncated, _info = envs.step(env_action(action))
        r = float(reward[0])
        total += r
        length += 1
        done = bool(terminated[0]) or bool(truncated[0])
        if record:
            assert sink is not None and core is not None
            if done and not resets:
                raise HHmLError(
                    "the episode ended but the env did not call core.reset(): the frame "
                    "of the last step cannot be taken (has the vector env's autoreset "
                    "changed?)"
                )
            if done:
                frame = last[0]
                frame.step, frame.reward, frame.episode_return, frame.seed = (
                    length,
                    r,
                    total,
                    seed,
                )
            else:
                frame = frame_of(
                    core, env_index, step=length, reward=r, episode_return=total, seed=seed
                )
            sink.add(frame)
        if done:
            return EpisodeResult(
                seed=seed, episode_return=total, length=length, terminated=bool(terminated[0])
            )
