"""What TD3, SAC and recurrent TD3 share: seeding, acting, counters, checkpoints.

:class:`OffPolicyAgent` implements the :class:`~hhml.ml.rl.base.Agent` life cycle
around three hooks a subclass fills in: building its networks and optimisers,
choosing policy actions, and one gradient step (:meth:`OffPolicyAgent._train_step`).

Randomness: network initialisation, the update-time generator (batch indices,
target noise, policy samples) and the act-time generator (random actions,
exploration noise) are all derived from the agent's ``seed``, never from global
RNG state; both generators are ``torch.Generator`` s on the agent's device, so
acting and learning never copy through the host. Their states are stored in
:meth:`state_dict`, so a restored agent continues bit-identically.

Two building blocks serve the concrete agents: :class:`FlatReplayAgent` (a flat
transition :class:`~hhml.ml.rl.replay.ReplayBuffer`; TD3 and SAC) and
:class:`ActorCriticTargets` (actor, twin critic, their target copies and one Adam
optimiser each; TD3 and recurrent TD3).

Public names: ``OffPolicyAgent``, ``FlatReplayAgent``, ``ActorCriticTargets``.
"""

from __future__ import annotations

import copy
from abc import abstractmethod
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from hhml.config.agent import AgentConfig
from hhml.errors import CheckpointError, ConfigError
from hhml.ml.rl.base import Agent, BoolArray, FloatArray, GradientHook
from hhml.ml.rl.checkpoint import (
    check_tensor,
    load_module,
    load_optimizer,
    require,
    tensors_to_cpu,
)
from hhml.ml.rl.networks import adam, polyak_update
from hhml.ml.rl.replay import ReplayBuffer

__all__ = ["OffPolicyAgent"]


def _as_batch(
    value: Any, name: str, width: int | None, n: int | None, device: torch.device
) -> torch.Tensor:
    """``value`` (array or tensor) as float32 ``[N, width]`` (or ``[N]`` if ``width`` is None)
    on ``device``. Only shapes are checked (metadata: no host synchronisation)."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach()
    else:
        tensor = torch.as_tensor(np.asarray(value, dtype=np.float32))
    expected_ndim = 1 if width is None else 2
    shape = tuple(tensor.shape)
    bad = len(shape) != expected_ndim or (width is not None and shape[1] != width)
    if bad or (n is not None and shape[0] != n):
        expected = "[N]" if width is None else f"[N, {width}]"
        raise ConfigError(
            f"{name} has shape {shape}, expected {expected}"
            + (f" with N = {n}" if n is not None else "")
            + "; check that the env's observation/action sizes match the agent's"
        )
    return tensor.to(device=device, dtype=torch.float32)


def _as_flags(value: Any, name: str, n: int, device: torch.device) -> torch.Tensor:
    """``value`` (array or tensor) as bool ``[n]`` on ``device`` (shape checked)."""
    if isinstance(value, torch.Tensor):
        flags = value.detach().reshape(-1)
    else:
        flags = torch.as_tensor(np.asarray(value, dtype=bool).reshape(-1))
    if flags.shape[0] != n:
        raise ConfigError(f"{name} has {flags.shape[0]} entries, expected {n}")
    return flags.to(device=device, dtype=torch.bool)


class OffPolicyAgent(Agent):
    """Base class of the off-policy actor-critic agents.

    Parameters
    ----------
    cfg
        The ``agent`` config section.
    obs_dim, act_dim
        Observation and action sizes (actions in ``[-1, 1]^act_dim``).
    device
        Device of networks, replay buffer and the update-time generator.
    seed
        Seeds initialisation and both of the agent's generators.

    Raises
    ------
    ConfigError
        Non-positive sizes or a negative seed.
    """

    def __init__(
        self,
        cfg: AgentConfig,
        obs_dim: int,
        act_dim: int,
        device: torch.device | str,
        seed: int,
    ) -> None:
        if obs_dim < 1 or act_dim < 1:
            raise ConfigError(
                f"agent needs obs_dim >= 1 and act_dim >= 1, got obs_dim = {obs_dim}, "
                f"act_dim = {act_dim}"
            )
        if seed < 0:
            raise ConfigError(f"agent seed must be a non-negative integer, got {seed}")
        self.cfg = cfg
        self.obs_dim = int(obs_dim)
        self.act_dim = int(act_dim)
        self.device = torch.device(device)
        self.seed = int(seed)
        init_seed, torch_seed, act_seed = np.random.SeedSequence(self.seed).generate_state(3)
        # Initialise on the CPU under a private seed, so the initial weights do not
        # depend on the device or on (and do not disturb) the global torch RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(init_seed))
            self._build_networks()
        for module in self._networks().values():
            module.to(self.device)
        self._build_on_device()
        self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(int(torch_seed))
        self._act_generator = torch.Generator(device=self.device)
        self._act_generator.manual_seed(int(act_seed))
        self.num_steps = 0
        self.num_updates = 0
        self._actor_metrics: dict[str, torch.Tensor | float] = {}
        self._average_gradients: GradientHook | None = None

    # ------------------------------------------------------------------ subclass hooks

    @abstractmethod
    def _build_networks(self) -> None:
        """Create the networks (on the CPU; they are moved to the device afterwards)."""

    @abstractmethod
    def _build_on_device(self) -> None:
        """Create optimisers and replay buffer (after the networks were moved to the device)."""

    @abstractmethod
    def _networks(self) -> dict[str, nn.Module]:
        """All networks by name, target copies included."""

    @abstractmethod
    def _trainable_networks(self) -> list[nn.Module]:
        """The networks that are trained (no target copies)."""

    @abstractmethod
    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """All optimisers by name."""

    @abstractmethod
    def _policy_action(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        """Policy actions ``[N, act_dim]`` in ``[-1, 1]`` for ``obs`` ``[N, obs_dim]``
        (float32 tensors on the device)."""

    @abstractmethod
    def _store(
        self,
        obs: torch.Tensor,
        action: torch.Tensor,
        reward: torch.Tensor,
        next_obs: torch.Tensor,
        terminated: torch.Tensor,
        done: torch.Tensor,
    ) -> None:
        """Put a checked batch of transitions (float32 tensors on the device; ``terminated``
        float32 ``[N]``, ``done`` bool ``[N]``) into the replay buffer."""

    @abstractmethod
    def _ready(self) -> bool:
        """True when the replay buffer holds enough data for a gradient step."""

    @abstractmethod
    def _train_step(self) -> dict[str, torch.Tensor | float]:
        """One gradient step; ``self.num_updates`` is the number done before it. Metrics are
        0-dim tensors on the device (or Python floats for constants)."""

    @abstractmethod
    def _replay_state(self) -> dict[str, Any] | None:
        """The replay buffer's state dict, its tensors fresh CPU copies (None if no buffer
        exists yet)."""

    @abstractmethod
    def _load_replay_state(self, state: dict[str, Any]) -> None:
        """Restore the replay buffer."""

    def _extra_state(self) -> dict[str, Any]:
        """Algorithm-specific state beyond networks and optimisers (e.g. SAC's log α)."""
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`_extra_state`."""

    # ------------------------------------------------------------------ Agent interface

    def act_tensor(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        """Actions ``[N, act_dim]`` in ``[-1, 1]`` for observations ``[N, obs_dim]``, as
        float32 tensors on the agent's device, without a host synchronisation.

        While exploring and before ``agent.learning_starts`` transitions were
        observed, actions are uniform in ``[-1, 1]`` (from the act-time generator).
        """
        obs_t = _as_batch(obs, "observation batch", self.obs_dim, None, self.device)
        if explore and self.num_steps < self.cfg.learning_starts:
            self._advance_state(obs_t)
            shape = (obs_t.shape[0], self.act_dim)
            uniform = torch.rand(shape, generator=self._act_generator, device=self.device)
            return uniform * 2.0 - 1.0
        with torch.no_grad():
            return self._policy_action(obs_t, explore)

    def _act_normal(self, shape: tuple[int, ...]) -> torch.Tensor:
        """Standard normal noise on the device from the act-time generator."""
        return torch.randn(shape, generator=self._act_generator, device=self.device)

    def _advance_state(self, obs: torch.Tensor) -> None:
        """Advance recurrent state when random actions are taken (no-op here)."""

    def reset_state(self, done: BoolArray | torch.Tensor | None) -> None:
        """Start new episodes where ``done`` is true; feed-forward agents keep no state."""

    def observe(
        self,
        obs: FloatArray | torch.Tensor,
        action: FloatArray | torch.Tensor,
        reward: FloatArray | torch.Tensor,
        next_obs: FloatArray | torch.Tensor,
        terminated: FloatArray | BoolArray | torch.Tensor,
        truncated: BoolArray | torch.Tensor,
    ) -> None:
        """Store ``N`` transitions; ``terminated`` ones do not bootstrap, ``truncated`` ones do.

        Arrays or tensors; tensors on the agent's device are stored without a host
        synchronisation (only their shapes are checked).

        Parameters
        ----------
        obs, next_obs
            ``[N, obs_dim]``; ``next_obs`` of a finished episode is its final observation.
        action
            ``[N, act_dim]``.
        reward, terminated, truncated
            ``[N]``.
        """
        dev = self.device
        obs_t = _as_batch(obs, "obs", self.obs_dim, None, dev)
        n = int(obs_t.shape[0])
        action_t = _as_batch(action, "action", self.act_dim, n, dev)
        reward_t = _as_batch(reward, "reward", None, n, dev)
        next_t = _as_batch(next_obs, "next_obs", self.obs_dim, n, dev)
        term = _as_flags(terminated, "terminated", n, dev)
        trunc = _as_flags(truncated, "truncated", n, dev)
        self._store(obs_t, action_t, reward_t, next_t, term.to(torch.float32), term | trunc)
        self.num_steps += n

    def update_tensors(self) -> dict[str, torch.Tensor | float]:
        """Do ``agent.gradient_steps`` gradient steps; ``{}`` before learning starts.

        No host synchronisation: the metrics stay 0-dim tensors on the device (a
        constant such as ``lr`` is a Python float).

        Returns
        -------
        dict
            Metrics of the last step: ``critic_loss``, ``critic_grad_norm``, ``lr``,
            and from the last actor update ``actor_loss``, ``actor_grad_norm``
            (plus ``alpha``, ``entropy`` for SAC).
        """
        if self.num_steps < self.cfg.learning_starts or not self._ready():
            return {}
        metrics: dict[str, torch.Tensor | float] = {}
        for _ in range(self.cfg.gradient_steps):
            metrics = self._train_step()
            self.num_updates += 1
        return {**metrics, **self._actor_metrics}

    def num_parameters(self) -> int:
        """Trainable parameters of all networks, target copies excluded."""
        return sum(p.numel() for module in self._trainable_networks() for p in module.parameters())

    def state_dict(self, include_replay: bool = True) -> dict[str, Any]:
        """Everything for an exact resume, tensors on CPU.

        Keys: ``agent_class``, ``obs_dim``, ``act_dim``, ``config`` (the ``agent``
        section as a dict), ``networks``, ``optimizers``, ``counters``, ``rng``
        (``torch``: update-time and ``act``: act-time generator states, uint8 tensors),
        ``extra``, and ``replay`` when ``include_replay`` (and a buffer exists).
        Tensor metrics of the last actor update are stored as floats (a host copy:
        checkpoints are interval operations).
        """
        state: dict[str, Any] = {
            "agent_class": type(self).__name__,
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "config": self.cfg.to_dict(),
            "networks": {name: m.state_dict() for name, m in self._networks().items()},
            "optimizers": {name: o.state_dict() for name, o in self._optimizers().items()},
            "counters": {
                "num_steps": self.num_steps,
                "num_updates": self.num_updates,
                "actor_metrics": {k: float(v) for k, v in self._actor_metrics.items()},
            },
            "rng": {
                "torch": self._generator.get_state(),
                "act": self._act_generator.get_state(),
            },
            "extra": self._extra_state(),
        }
        result: dict[str, Any] = tensors_to_cpu(state)
        if include_replay:
            # already a CPU copy made by the buffer: taken as it is, so a checkpoint holds
            # the buffer once more in memory while it is written, not twice
            replay = self._replay_state()
            if replay is not None:
                result["replay"] = replay
        return result

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` onto this agent's device.

        Without a ``replay`` entry the replay buffer is left as it is.

        Raises
        ------
        CheckpointError
            Wrong agent class, a missing key, a tensor of the wrong shape, or
            observation/action sizes that differ from this agent's.
        """
        agent_class = require(state, "agent_class", "")
        if agent_class != type(self).__name__:
            raise CheckpointError(
                f"checkpoint key 'agent_class' = {agent_class!r} does not match this agent "
                f"({type(self).__name__}); load it with hhml.ml.rl.load_agent or select "
                "the matching agent.algorithm"
            )
        for key, own in (("obs_dim", self.obs_dim), ("act_dim", self.act_dim)):
            value = require(state, key, "", int)
            if value != own:
                raise CheckpointError(
                    f"checkpoint key {key!r} = {value} does not match this agent's {key} = {own}"
                )
        networks = require(state, "networks", "", dict)
        for name, module in self._networks().items():
            load_module(module, require(networks, name, "networks"), f"networks.{name}")
        optimizers = require(state, "optimizers", "", dict)
        for name, optimizer in self._optimizers().items():
            load_optimizer(optimizer, require(optimizers, name, "optimizers"), f"optimizers.{name}")
        counters = require(state, "counters", "", dict)
        num_steps = require(counters, "num_steps", "counters", int)
        num_updates = require(counters, "num_updates", "counters", int)
        actor_metrics = require(counters, "actor_metrics", "counters", dict)
        rng = require(state, "rng", "", dict)
        if "act" not in rng and "numpy" in rng:
            raise CheckpointError(
                "checkpoint key 'rng.act' is missing: the agent was saved by an HHmL version "
                "before 0.3, whose act-time generator was NumPy's; it cannot continue exactly"
            )
        torch_state = require(rng, "torch", "rng")
        reference = self._generator.get_state()
        check_tensor(torch_state, "rng.torch", tuple(reference.shape), torch.uint8)
        act_state = require(rng, "act", "rng")
        act_reference = self._act_generator.get_state()
        check_tensor(act_state, "rng.act", tuple(act_reference.shape), torch.uint8)
        self._load_extra_state(require(state, "extra", "", dict))
        if "replay" in state:
            self._load_replay_state(require(state, "replay", "", dict))
        self._generator.set_state(torch_state)
        self._act_generator.set_state(act_state)
        self.num_steps = num_steps
        self.num_updates = num_updates
        self._actor_metrics = {str(k): float(v) for k, v in actor_metrics.items()}

    def enable_data_parallel(self, rank: int, average_gradients: GradientHook) -> None:
        """Average gradients with ``average_gradients`` before every optimiser step; draw
        act- and update-time randomness from streams of ``SeedSequence([seed, rank])``.

        Rank 0 keeps the single-process streams, so its first actions equal those
        of a single-process run with the same seed. The weights are untouched: all
        ranks start from the same initialisation.
        """
        if rank < 0:
            raise ConfigError(f"rank must be >= 0, got {rank}")
        if rank > 0:
            torch_seed, act_seed = np.random.SeedSequence([self.seed, rank]).generate_state(2)
            self._generator.manual_seed(int(torch_seed))
            self._act_generator.manual_seed(int(act_seed))
        self._average_gradients = average_gradients

    def synced_modules(self) -> list[nn.Module]:
        """The trained networks (target copies follow them deterministically)."""
        return self._trainable_networks()

    # ------------------------------------------------------------------ helpers

    def _sync_gradients(self, tensors: Iterable[torch.Tensor]) -> None:
        """Average gradients over the ranks of a data-parallel run (no-op otherwise)."""
        if self._average_gradients is not None:
            self._average_gradients(tensors)

    def _normal(self, shape: tuple[int, ...]) -> torch.Tensor:
        """Standard normal noise on the device from the update-time generator."""
        return torch.randn(shape, generator=self._generator, device=self.device)

    def _clip_and_norm(self, module: nn.Module) -> torch.Tensor:
        """Clip ``module``'s gradient norm to ``agent.max_grad_norm`` (0: no clipping).

        In a data-parallel run the gradients are first averaged over the ranks
        (as DDP does during ``backward``), so clipping sees the mean gradient.
        Returns the global 2-norm of the gradients before clipping (a 0-dim tensor).
        """
        self._sync_gradients(module.parameters())
        max_norm = self.cfg.max_grad_norm if self.cfg.max_grad_norm > 0 else float("inf")
        return nn.utils.clip_grad_norm_(module.parameters(), max_norm).detach()


class FlatReplayAgent(OffPolicyAgent):
    """An :class:`OffPolicyAgent` whose transitions go to a flat :class:`ReplayBuffer`.

    Subclasses create ``self.replay`` in :meth:`_build_on_device`.
    """

    replay: ReplayBuffer

    def _store(
        self,
        obs: torch.Tensor,
        action: torch.Tensor,
        reward: torch.Tensor,
        next_obs: torch.Tensor,
        terminated: torch.Tensor,
        done: torch.Tensor,
    ) -> None:
        self.replay.add(obs, action, reward, next_obs, terminated)

    def _ready(self) -> bool:
        return len(self.replay) > 0

    def _replay_state(self) -> dict[str, Any] | None:
        return self.replay.state_dict()

    def _load_replay_state(self, state: dict[str, Any]) -> None:
        self.replay.load_state_dict(state)


class ActorCriticTargets:
    """Mixin: an actor, a twin critic, their frozen target copies and two Adam optimisers.

    The subclass sets ``actor`` and ``critic`` in ``_build_networks`` and calls
    :meth:`_make_targets` there, then :meth:`_make_optimizers` in ``_build_on_device``.
    """

    cfg: AgentConfig
    actor: nn.Module
    critic: nn.Module
    actor_target: nn.Module
    critic_target: nn.Module
    _actor_metrics: dict[str, torch.Tensor | float]
    _clip_and_norm: Callable[[nn.Module], torch.Tensor]

    def _make_targets(self) -> None:
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)

    def _make_optimizers(self) -> None:
        self.actor_optimizer = adam(self.actor.parameters(), self.cfg.actor_learning_rate)
        self.critic_optimizer = adam(self.critic.parameters(), self.cfg.critic_learning_rate)

    def _actor_step(self, actor_loss: torch.Tensor) -> None:
        """One delayed actor update, then Polyak updates of both targets (rate ``tau``);
        records ``actor_loss`` and ``actor_grad_norm`` for the metrics."""
        self.actor_optimizer.zero_grad()
        actor_loss.backward()  # type: ignore[no-untyped-call]
        actor_grad_norm = self._clip_and_norm(self.actor)
        self.actor_optimizer.step()
        polyak_update(self.critic_target, self.critic, self.cfg.tau)
        polyak_update(self.actor_target, self.actor, self.cfg.tau)
        self._actor_metrics = {
            "actor_loss": actor_loss.detach(),
            "actor_grad_norm": actor_grad_norm,
        }

    def _networks(self) -> dict[str, nn.Module]:
        return {
            "actor": self.actor,
            "critic": self.critic,
            "actor_target": self.actor_target,
            "critic_target": self.critic_target,
        }

    def _trainable_networks(self) -> list[nn.Module]:
        return [self.actor, self.critic]

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.actor_optimizer, "critic": self.critic_optimizer}
