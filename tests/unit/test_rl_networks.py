"""Network shapes, the SAC log-density and the Polyak update."""

from __future__ import annotations

import torch

from hhml.ml.rl.networks import (
    DeterministicActor,
    GaussianActor,
    RecurrentActor,
    RecurrentCritic,
    TwinCritic,
    polyak_update,
)


def test_feed_forward_shapes() -> None:
    obs, act = torch.randn(5, 3), torch.rand(5, 2) * 2 - 1
    assert DeterministicActor(3, 2, 8, 2)(obs).shape == (5, 2)
    q1, q2 = TwinCritic(3, 2, 8, 2)(obs, act)
    assert q1.shape == q2.shape == (5, 1)
    actor = GaussianActor(3, 2, 8, 2, -20.0, 2.0)
    action, log_prob = actor.sample(obs, torch.randn(5, 2))
    assert action.shape == (5, 2) and log_prob.shape == (5, 1)
    assert actor(obs).abs().max() <= 1


def test_recurrent_shapes_and_causality() -> None:
    obs = torch.randn(4, 6, 3)
    actor = RecurrentActor(3, 2, 5, 1, 8, 1)
    action, (h, c) = actor(obs)
    assert action.shape == (4, 6, 2) and h.shape == c.shape == (1, 4, 5)
    critic = RecurrentCritic(3, 2, 5, 1, 8, 1)
    q1, q2 = critic.values(critic.features(obs), action)
    assert q1.shape == q2.shape == (4, 6, 1)
    # changing a later step never changes earlier outputs
    changed = obs.clone()
    changed[:, 4:] += 1.0
    assert torch.equal(actor(changed)[0][:, :4], action[:, :4])
    # stepping one observation at a time gives the same actions as the whole sequence
    state = None
    for t in range(6):
        step, state = actor(obs[:, t : t + 1], state)
        assert torch.allclose(step[:, 0], action[:, t], atol=1e-6)


def test_gaussian_log_prob_matches_change_of_variables() -> None:
    torch.manual_seed(0)
    actor = GaussianActor(3, 2, 8, 1, -20.0, 2.0)
    obs, noise = torch.randn(7, 3), torch.randn(7, 2)
    action, log_prob = actor.sample(obs, noise)
    mean, log_std = actor.distribution(obs)
    u = mean + log_std.exp() * noise
    base = torch.distributions.Normal(mean, log_std.exp()).log_prob(u)
    expected = (base - torch.log(1 - torch.tanh(u) ** 2)).sum(-1, keepdim=True)
    assert torch.allclose(log_prob, expected, atol=1e-4)
    assert torch.allclose(action, torch.tanh(u))


def test_polyak_update_numerically() -> None:
    torch.manual_seed(1)
    source, target = TwinCritic(2, 1, 4, 1), TwinCritic(2, 1, 4, 1)
    before = [p.clone() for p in target.parameters()]
    polyak_update(target, source, 0.1)
    for old, s, t in zip(before, source.parameters(), target.parameters(), strict=True):
        assert torch.allclose(t, 0.9 * old + 0.1 * s, atol=1e-7)
    polyak_update(target, source, 1.0)
    assert all(
        torch.equal(s, t) for s, t in zip(source.parameters(), target.parameters(), strict=True)
    )
