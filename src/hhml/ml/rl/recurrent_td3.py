"""Recurrent TD3: LSTM actor and critics over observation histories.

For partially observed tasks (e.g. Pendulum without its angular velocity), in
the spirit of "recurrent model-free RL is a strong baseline" (Ni et al., 2022):
separate LSTMs for the actor and each critic, trained on windows from the
:class:`~hhml.ml.rl.sequence_replay.SequenceReplayBuffer` with burn-in.

Public names: ``RecurrentTD3``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from hhml.errors import CheckpointError, ConfigError
from hhml.ml.rl.base import BoolArray
from hhml.ml.rl.checkpoint import check_tensor, require
from hhml.ml.rl.networks import LSTMState, RecurrentActor, RecurrentCritic
from hhml.ml.rl.off_policy import ActorCriticTargets, OffPolicyAgent
from hhml.ml.rl.sequence_replay import SequenceReplayBuffer

__all__ = ["RecurrentTD3"]


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over the entries where ``mask`` is 1 (``[B, L, 1]`` each)."""
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


class RecurrentTD3(ActorCriticTargets, OffPolicyAgent):
    """TD3 whose actor and twin critics read the observation history through LSTMs.

    Acting keeps one LSTM state per env (``[layers, N, lstm_hidden]``), cleared by
    :meth:`reset_state` at episode starts. A gradient step samples ``batch_size``
    windows of ``burn_in + sequence_length`` steps. With ``o`` the window's
    observations and ``s'`` its next observations, the target networks read the
    history ``[o_0, s'_0, s'_1, …]`` (equal to ``o_1, o_2, …`` inside an episode
    and ending in the true final observation at an episode end), so the target at
    step ``j`` is ``r_j + γ (1 − terminated_j) min_i Q'_i(h'_{j+1}, ã_{j+1})`` with
    TD3's clipped smoothing noise on ``ã``. Losses average over the window's mask.

    See :class:`~hhml.ml.rl.off_policy.OffPolicyAgent` for the parameters.
    """

    actor: RecurrentActor
    critic: RecurrentCritic
    actor_target: RecurrentActor
    critic_target: RecurrentCritic
    replay: SequenceReplayBuffer | None

    def _build_networks(self) -> None:
        cfg = self.cfg
        sizes = (
            self.obs_dim,
            self.act_dim,
            cfg.lstm_hidden,
            cfg.lstm_layers,
            cfg.hidden_size,
            cfg.hidden_layers,
        )
        self.actor = RecurrentActor(*sizes)
        self.critic = RecurrentCritic(*sizes)
        self._make_targets()

    def _build_on_device(self) -> None:
        # The number of streams is the env batch size, known at the first observe().
        self.replay = None
        self._hidden: LSTMState | None = None
        self._make_optimizers()

    def _state_for(self, n: int) -> LSTMState:
        """The per-env LSTM state, created (zeros) for ``n`` envs if needed."""
        if self._hidden is None or self._hidden[0].shape[1] != n:
            shape = (self.cfg.lstm_layers, n, self.cfg.lstm_hidden)
            zeros = torch.zeros(shape, device=self.device)
            self._hidden = (zeros, zeros.clone())
        return self._hidden

    def _step_actor(self, obs: torch.Tensor) -> torch.Tensor:
        """Advance the per-env LSTM state by one step; actions ``[N, act_dim]``.

        ``obs`` is ``[N, obs_dim]``.
        """
        with torch.no_grad():
            action, self._hidden = self.actor(obs[:, None, :], self._state_for(obs.shape[0]))
        result: torch.Tensor = action[:, 0]
        return result

    def _advance_state(self, obs: torch.Tensor) -> None:
        self._step_actor(obs)

    def _policy_action(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        action = self._step_actor(obs)
        if explore:
            noise = self._act_normal(tuple(action.shape)) * self.cfg.exploration_noise
            action = (action + noise).clamp(-1.0, 1.0)
        return action

    def reset_state(self, done: BoolArray | torch.Tensor | None) -> None:
        """Zero the LSTM state of the envs where ``done`` is true (all if None)."""
        if self._hidden is None:
            return
        if done is None:
            self._hidden = None
            return
        if isinstance(done, torch.Tensor):
            finished = done.detach().reshape(-1).to(device=self.device, dtype=torch.bool)
        else:
            finished = torch.as_tensor(np.asarray(done, dtype=bool).reshape(-1), device=self.device)
        keep = (~finished).to(torch.float32)[None, :, None]
        self._hidden = (self._hidden[0] * keep, self._hidden[1] * keep)

    # ------------------------------------------------------------------ replay

    def _store(
        self,
        obs: torch.Tensor,
        action: torch.Tensor,
        reward: torch.Tensor,
        next_obs: torch.Tensor,
        terminated: torch.Tensor,
        done: torch.Tensor,
    ) -> None:
        if self.replay is None:
            self.replay = self._make_replay(obs.shape[0])
        elif self.replay.num_envs != obs.shape[0]:
            raise ConfigError(
                f"observe() got {obs.shape[0]} envs, but the sequence replay buffer has "
                f"{self.replay.num_envs} streams; the env batch size must stay fixed"
            )
        self.replay.add(obs, action, reward, next_obs, terminated, done)

    def _make_replay(self, num_envs: int) -> SequenceReplayBuffer:
        cfg = self.cfg
        return SequenceReplayBuffer(
            cfg.buffer_size,
            num_envs,
            self.obs_dim,
            self.act_dim,
            cfg.burn_in,
            cfg.sequence_length,
            self.device,
        )

    def _ready(self) -> bool:
        return self.replay is not None and self.replay.size > 0

    def _replay_state(self) -> dict[str, Any] | None:
        return None if self.replay is None else self.replay.state_dict()

    def _load_replay_state(self, state: dict[str, Any]) -> None:
        replay = self._make_replay(require(state, "num_envs", "replay", int))
        replay.load_state_dict(state)
        self.replay = replay

    def _extra_state(self) -> dict[str, Any]:
        if self._hidden is None:
            return {}
        return {"hidden_h": self._hidden[0], "hidden_c": self._hidden[1]}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        if "hidden_h" not in state:
            self._hidden = None
            return
        h = require(state, "hidden_h", "extra")
        if not isinstance(h, torch.Tensor) or h.dim() != 3:
            raise CheckpointError("checkpoint key 'extra.hidden_h' is not a [layers, N, H] tensor")
        shape = (self.cfg.lstm_layers, h.shape[1], self.cfg.lstm_hidden)
        h = check_tensor(h, "extra.hidden_h", shape)
        c = check_tensor(require(state, "hidden_c", "extra"), "extra.hidden_c", shape)
        self._hidden = (h.to(self.device), c.to(self.device))

    # ------------------------------------------------------------------ learning

    def _train_step(self) -> dict[str, torch.Tensor | float]:
        cfg = self.cfg
        assert self.replay is not None  # guaranteed by _ready()
        batch = self.replay.sample(cfg.batch_size, self._generator)
        with torch.no_grad():
            # History ending in s'_j at index j + 1 (see the class docstring).
            next_history = torch.cat([batch.obs[:, :1], batch.next_obs], dim=1)
            next_action, _ = self.actor_target(next_history)
            noise = self._normal(tuple(batch.action.shape)) * cfg.target_policy_noise
            noise = noise.clamp(-cfg.target_noise_clip, cfg.target_noise_clip)
            next_action = (next_action[:, 1:] + noise).clamp(-1.0, 1.0)
            target_features = self.critic_target.features(next_history)
            q1_next, q2_next = self.critic_target.values(
                (target_features[0][:, 1:], target_features[1][:, 1:]), next_action
            )
            target = batch.reward + cfg.gamma * (1.0 - batch.terminated) * torch.min(
                q1_next, q2_next
            )
        q1, q2 = self.critic.values(self.critic.features(batch.obs), batch.action)
        critic_loss = _masked_mean((q1 - target).pow(2), batch.mask) + _masked_mean(
            (q2 - target).pow(2), batch.mask
        )
        self.critic_optimizer.zero_grad()
        critic_loss.backward()  # type: ignore[no-untyped-call]
        critic_grad_norm = self._clip_and_norm(self.critic)
        self.critic_optimizer.step()

        if self.num_updates % cfg.policy_delay == 0:
            with torch.no_grad():
                features = self.critic.features(batch.obs)
            action, _ = self.actor(batch.obs)
            q1_pi, _ = self.critic.values(features, action)
            actor_loss = -_masked_mean(q1_pi, batch.mask)
            self._actor_step(actor_loss)
        return {
            "critic_loss": critic_loss.detach(),
            "critic_grad_norm": critic_grad_norm,
            "lr": cfg.critic_learning_rate,
        }
