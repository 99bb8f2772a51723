"""Neural networks of the agents, their optimiser, and the Polyak update of target networks.

Feed-forward: :class:`DeterministicActor` (TD3), :class:`GaussianActor` (SAC),
:class:`TwinCritic` (two Q-functions). Recurrent: :class:`RecurrentActor` and
:class:`RecurrentCritic`, an LSTM over the observation history followed by an MLP
head. Actions are in ``[-1, 1]^act_dim`` (``tanh`` output).

Public names: ``mlp``, ``DeterministicActor``, ``GaussianActor``, ``TwinCritic``,
``RecurrentActor``, ``RecurrentCritic``, ``LSTMState``, ``adam``, ``polyak_update``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

import torch
from torch import nn
from torch.nn import functional

__all__ = [
    "DeterministicActor",
    "GaussianActor",
    "LSTMState",
    "RecurrentActor",
    "RecurrentCritic",
    "TwinCritic",
    "adam",
    "mlp",
    "polyak_update",
]

#: ``(h, c)`` of an LSTM, each ``[layers, N, hidden]``.
LSTMState = tuple[torch.Tensor, torch.Tensor]

_LOG_2 = math.log(2.0)

_log = logging.getLogger(__name__)


def mlp(in_dim: int, out_dim: int, hidden_size: int, hidden_layers: int) -> nn.Sequential:
    """A ReLU multilayer perceptron ``in_dim → hidden_size × hidden_layers → out_dim``."""
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(hidden_layers):
        layers += [nn.Linear(width, hidden_size), nn.ReLU()]
        width = hidden_size
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def adam(params: Iterable[torch.Tensor], lr: float) -> torch.optim.Adam:
    """An Adam optimiser, fused where this torch supports it for the parameters' device.

    The fused implementation (CUDA; CPU from torch 2.4) updates all parameters in one
    kernel and reads its step counters on the device, so an update never waits for
    the device (the for-each one reads them with ``.item()``). Where fused Adam is
    unsupported, the for-each implementation is used and that is logged once.
    """
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, ValueError) as exc:
        global _FUSED_ADAM_NOTED
        if not _FUSED_ADAM_NOTED:
            _log.info("fused Adam unavailable (%s); using the for-each implementation", exc)
            _FUSED_ADAM_NOTED = True
        return torch.optim.Adam(params, lr=lr)


_FUSED_ADAM_NOTED = False


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Move ``target``'s parameters towards ``source``'s: ``θ' ← (1 − τ) θ' + τ θ``.

    Buffers (none in these networks) are copied as they are.
    """
    for t, s in zip(target.parameters(), source.parameters(), strict=True):
        t.mul_(1.0 - tau).add_(s, alpha=tau)
    for tb, sb in zip(target.buffers(), source.buffers(), strict=True):
        tb.copy_(sb)


class DeterministicActor(nn.Module):
    """``μ(s) = tanh(MLP(s))``: observations ``[..., obs_dim]`` → actions ``[..., act_dim]``."""

    def __init__(self, obs_dim: int, act_dim: int, hidden_size: int, hidden_layers: int) -> None:
        super().__init__()
        self.net = mlp(obs_dim, act_dim, hidden_size, hidden_layers)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(obs))


class TwinCritic(nn.Module):
    """Two independent Q-functions ``Q_i(s, a) = MLP_i([s, a])``, each ``[..., 1]``."""

    def __init__(self, obs_dim: int, act_dim: int, hidden_size: int, hidden_layers: int) -> None:
        super().__init__()
        self.q1 = mlp(obs_dim + act_dim, 1, hidden_size, hidden_layers)
        self.q2 = mlp(obs_dim + act_dim, 1, hidden_size, hidden_layers)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([obs, action], dim=-1)
        return self.q1(x), self.q2(x)

    def q1_value(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Only the first Q-function (the actor's objective in TD3)."""
        out: torch.Tensor = self.q1(torch.cat([obs, action], dim=-1))
        return out


class GaussianActor(nn.Module):
    """Squashed Gaussian policy of SAC: ``a = tanh(m + σ ε)``, ``ε ~ N(0, 1)``.

    ``log σ`` is clamped to ``[log_std_min, log_std_max]``.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden_size: int,
        hidden_layers: int,
        log_std_min: float,
        log_std_max: float,
    ) -> None:
        super().__init__()
        self.trunk = mlp(obs_dim, 2 * act_dim, hidden_size, hidden_layers)
        self.act_dim = act_dim
        self.log_std_min = log_std_min
        self.log_std_max = log_std_max

    def distribution(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and ``log σ`` of the pre-``tanh`` Gaussian, each ``[..., act_dim]``."""
        mean, log_std = self.trunk(obs).split(self.act_dim, dim=-1)
        return mean, log_std.clamp(self.log_std_min, self.log_std_max)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """The deterministic action ``tanh(m)`` ``[..., act_dim]``."""
        mean, _ = self.distribution(obs)
        return torch.tanh(mean)

    def sample(self, obs: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised sample and its log-density.

        Parameters
        ----------
        obs
            ``[B, obs_dim]``.
        noise
            Standard normal ``ε``, ``[B, act_dim]`` (drawn by the caller's generator).

        Returns
        -------
        action : Tensor
            ``tanh(m + σ ε)``, ``[B, act_dim]``.
        log_prob : Tensor
            ``log π(a | s)`` in nats including the ``tanh`` Jacobian, ``[B, 1]``.
        """
        mean, log_std = self.distribution(obs)
        u = mean + log_std.exp() * noise
        gaussian = -0.5 * noise.pow(2) - log_std - 0.5 * math.log(2.0 * math.pi)
        # log(1 − tanh(u)²) = 2 (log 2 − u − softplus(−2u)), stable for large |u|.
        log_jacobian = 2.0 * (_LOG_2 - u - functional.softplus(-2.0 * u))
        log_prob = (gaussian - log_jacobian).sum(dim=-1, keepdim=True)
        return torch.tanh(u), log_prob


class RecurrentActor(nn.Module):
    """``μ(h_t) = tanh(MLP([LSTM(o_{≤t}), o_t]))`` over observation sequences.

    Input ``[B, T, obs_dim]`` (batch first), output ``[B, T, act_dim]``.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        lstm_hidden: int,
        lstm_layers: int,
        hidden_size: int,
        hidden_layers: int,
    ) -> None:
        super().__init__()
        self.lstm = nn.LSTM(obs_dim, lstm_hidden, num_layers=lstm_layers, batch_first=True)
        self.head = mlp(lstm_hidden + obs_dim, act_dim, hidden_size, hidden_layers)

    def forward(
        self, obs: torch.Tensor, state: LSTMState | None = None
    ) -> tuple[torch.Tensor, LSTMState]:
        """Actions ``[B, T, act_dim]`` and the LSTM state after the last step."""
        features, new_state = self.lstm(obs, state)
        return torch.tanh(self.head(torch.cat([features, obs], dim=-1))), new_state


class RecurrentCritic(nn.Module):
    """Two Q-functions over histories: ``Q_i(h_t, a) = MLP_i([LSTM_i(o_{≤t}), o_t, a])``.

    Each Q-function has its own LSTM, so the twin estimates stay independent.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        lstm_hidden: int,
        lstm_layers: int,
        hidden_size: int,
        hidden_layers: int,
    ) -> None:
        super().__init__()
        self.lstm1 = nn.LSTM(obs_dim, lstm_hidden, num_layers=lstm_layers, batch_first=True)
        self.lstm2 = nn.LSTM(obs_dim, lstm_hidden, num_layers=lstm_layers, batch_first=True)
        in_dim = lstm_hidden + obs_dim + act_dim
        self.q1 = mlp(in_dim, 1, hidden_size, hidden_layers)
        self.q2 = mlp(in_dim, 1, hidden_size, hidden_layers)

    def features(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """History features of both LSTMs, each ``[B, T, lstm_hidden + obs_dim]``."""
        h1, _ = self.lstm1(obs)
        h2, _ = self.lstm2(obs)
        return torch.cat([h1, obs], dim=-1), torch.cat([h2, obs], dim=-1)

    def values(
        self, features: tuple[torch.Tensor, torch.Tensor], action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``Q_1, Q_2`` ``[B, T, 1]`` from :meth:`features` and actions ``[B, T, act_dim]``."""
        return (
            self.q1(torch.cat([features[0], action], dim=-1)),
            self.q2(torch.cat([features[1], action], dim=-1)),
        )
