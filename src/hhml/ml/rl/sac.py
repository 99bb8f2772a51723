"""SAC: soft actor-critic with automatic entropy tuning (Haarnoja et al., 2018).

Public names: ``SAC``.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from hhml.errors import CheckpointError
from hhml.ml.rl.checkpoint import check_tensor, require
from hhml.ml.rl.networks import GaussianActor, TwinCritic, adam, polyak_update
from hhml.ml.rl.off_policy import FlatReplayAgent
from hhml.ml.rl.replay import ReplayBuffer

__all__ = ["SAC"]


class SAC(FlatReplayAgent):
    """SAC with a squashed Gaussian policy, twin critics and a learned temperature α.

    One gradient step: the critics regress on
    ``r + γ (1 − terminated) (min_i Q'_i(s', a') − α log π(a'|s'))`` with
    ``a' ~ π(·|s')``; the actor minimises ``α log π(a|s) − min_i Q_i(s, a)``; the
    temperature minimises ``−log α · (log π(a|s) + H_target)`` so that the policy's
    entropy tracks ``agent.target_entropy`` (``'auto'`` = ``−act_dim``); the target
    critics follow with Polyak rate ``tau``. The actor is updated every step
    (``policy_delay`` is a TD3 setting).

    Exploration samples the policy; evaluation (``explore=False``) uses ``tanh`` of
    the mean. See :class:`~hhml.ml.rl.off_policy.OffPolicyAgent` for the parameters.
    """

    actor: GaussianActor
    critic: TwinCritic

    def _build_networks(self) -> None:
        cfg = self.cfg
        self.actor = GaussianActor(
            self.obs_dim,
            self.act_dim,
            cfg.hidden_size,
            cfg.hidden_layers,
            cfg.log_std_min,
            cfg.log_std_max,
        )
        self.critic = TwinCritic(self.obs_dim, self.act_dim, cfg.hidden_size, cfg.hidden_layers)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.target_entropy = cfg.resolved_target_entropy(self.act_dim)

    def _build_on_device(self) -> None:
        cfg = self.cfg
        self.replay = ReplayBuffer(cfg.buffer_size, self.obs_dim, self.act_dim, self.device)
        self.log_alpha = torch.tensor(
            [math.log(cfg.initial_entropy_coef)], device=self.device, requires_grad=True
        )
        self.actor_optimizer = adam(self.actor.parameters(), cfg.actor_learning_rate)
        self.critic_optimizer = adam(self.critic.parameters(), cfg.critic_learning_rate)
        self.alpha_optimizer = adam([self.log_alpha], cfg.entropy_learning_rate)

    def _networks(self) -> dict[str, nn.Module]:
        return {"actor": self.actor, "critic": self.critic, "critic_target": self.critic_target}

    def _trainable_networks(self) -> list[nn.Module]:
        return [self.actor, self.critic]

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            "actor": self.actor_optimizer,
            "critic": self.critic_optimizer,
            "alpha": self.alpha_optimizer,
        }

    def num_parameters(self) -> int:
        """Trainable network parameters (target critics excluded) plus log α."""
        return super().num_parameters() + self.log_alpha.numel()

    def _extra_state(self) -> dict[str, Any]:
        return {"log_alpha": self.log_alpha.detach()}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        value = check_tensor(require(state, "log_alpha", "extra"), "extra.log_alpha", (1,))
        if not torch.isfinite(value).all():
            raise CheckpointError("checkpoint key 'extra.log_alpha' is not finite")
        with torch.no_grad():
            self.log_alpha.copy_(value.to(self.device))

    def _policy_action(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        action: torch.Tensor
        if not explore:
            action = self.actor(obs)
        else:
            # Act-time noise comes from the act-time generator, like TD3's exploration noise.
            action, _ = self.actor.sample(obs, self._act_normal((obs.shape[0], self.act_dim)))
        return action

    def _train_step(self) -> dict[str, torch.Tensor | float]:
        cfg = self.cfg
        batch = self.replay.sample(cfg.batch_size, self._generator)
        alpha = self.log_alpha.detach().exp()
        with torch.no_grad():
            next_action, next_log_prob = self.actor.sample(
                batch.next_obs, self._normal(tuple(batch.action.shape))
            )
            q1_next, q2_next = self.critic_target(batch.next_obs, next_action)
            soft_value = torch.min(q1_next, q2_next) - alpha * next_log_prob
            target = batch.reward + cfg.gamma * (1.0 - batch.terminated) * soft_value
        q1, q2 = self.critic(batch.obs, batch.action)
        critic_loss = functional.mse_loss(q1, target) + functional.mse_loss(q2, target)
        self.critic_optimizer.zero_grad()
        critic_loss.backward()  # type: ignore[no-untyped-call]
        critic_grad_norm = self._clip_and_norm(self.critic)
        self.critic_optimizer.step()

        action, log_prob = self.actor.sample(batch.obs, self._normal(tuple(batch.action.shape)))
        q1_pi, q2_pi = self.critic(batch.obs, action)
        actor_loss = (alpha * log_prob - torch.min(q1_pi, q2_pi)).mean()
        self.actor_optimizer.zero_grad()
        actor_loss.backward()  # type: ignore[no-untyped-call]
        actor_grad_norm = self._clip_and_norm(self.actor)
        self.actor_optimizer.step()

        alpha_loss = -(self.log_alpha * (log_prob.detach() + self.target_entropy)).mean()
        self.alpha_optimizer.zero_grad()
        alpha_loss.backward()  # type: ignore[no-untyped-call]
        self._sync_gradients([self.log_alpha])
        self.alpha_optimizer.step()

        polyak_update(self.critic_target, self.critic, cfg.tau)
        self._actor_metrics = {
            "actor_loss": actor_loss.detach(),
            "actor_grad_norm": actor_grad_norm,
        }
        return {
            "critic_loss": critic_loss.detach(),
            "critic_grad_norm": critic_grad_norm,
            "lr": cfg.critic_learning_rate,
            "alpha": alpha,
            "entropy": -log_prob.detach().mean(),
        }
