"""TD3: twin delayed deep deterministic policy gradient (Fujimoto et al., 2018).

Public names: ``TD3``.
"""

from __future__ import annotations

import torch
from torch.nn import functional

from hhml.ml.rl.networks import DeterministicActor, TwinCritic
from hhml.ml.rl.off_policy import ActorCriticTargets, FlatReplayAgent
from hhml.ml.rl.replay import ReplayBuffer

__all__ = ["TD3"]


class TD3(ActorCriticTargets, FlatReplayAgent):
    """TD3 with a flat replay buffer on the device.

    One gradient step (:meth:`_train_step`) follows the paper: sample a batch, add
    clipped Gaussian smoothing noise to the target action, regress both critics on
    the clipped double-Q target ``r + γ (1 − terminated) min_i Q'_i(s', ã')``, and
    every ``policy_delay`` steps ascend ``Q_1(s, μ(s))`` and Polyak-update all
    target networks with rate ``tau``.

    See :class:`~hhml.ml.rl.off_policy.OffPolicyAgent` for the parameters.
    """

    actor: DeterministicActor
    critic: TwinCritic
    actor_target: DeterministicActor
    critic_target: TwinCritic

    def _build_networks(self) -> None:
        cfg = self.cfg
        self.actor = DeterministicActor(
            self.obs_dim, self.act_dim, cfg.hidden_size, cfg.hidden_layers
        )
        self.critic = TwinCritic(self.obs_dim, self.act_dim, cfg.hidden_size, cfg.hidden_layers)
        self._make_targets()

    def _build_on_device(self) -> None:
        self.replay = ReplayBuffer(self.cfg.buffer_size, self.obs_dim, self.act_dim, self.device)
        self._make_optimizers()

    def _policy_action(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        action: torch.Tensor = self.actor(obs)
        if explore:
            noise = self._act_normal(tuple(action.shape)) * self.cfg.exploration_noise
            action = (action + noise).clamp(-1.0, 1.0)
        return action

    def _train_step(self) -> dict[str, torch.Tensor | float]:
        cfg = self.cfg
        batch = self.replay.sample(cfg.batch_size, self._generator)
        with torch.no_grad():
            noise = self._normal(tuple(batch.action.shape)) * cfg.target_policy_noise
            noise = noise.clamp(-cfg.target_noise_clip, cfg.target_noise_clip)
            next_action = (self.actor_target(batch.next_obs) + noise).clamp(-1.0, 1.0)
            q1_next, q2_next = self.critic_target(batch.next_obs, next_action)
            target = batch.reward + cfg.gamma * (1.0 - batch.terminated) * torch.min(
                q1_next, q2_next
            )
        q1, q2 = self.critic(batch.obs, batch.action)
        critic_loss = functional.mse_loss(q1, target) + functional.mse_loss(q2, target)
        self.critic_optimizer.zero_grad()
        critic_loss.backward()  # type: ignore[no-untyped-call]
        critic_grad_norm = self._clip_and_norm(self.critic)
        self.critic_optimizer.step()

        if self.num_updates % cfg.policy_delay == 0:
            actor_loss = -self.critic.q1_value(batch.obs, self.actor(batch.obs)).mean()
            self._actor_step(actor_loss)
        return {
            "critic_loss": critic_loss.detach(),
            "critic_grad_norm": critic_grad_norm,
            "lr": cfg.critic_learning_rate,
        }
