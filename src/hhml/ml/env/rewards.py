"""Bounded reward terms computed from the fixed vortex detector.

Every term is in [0, 1]; the reward of a task is
``(1 − w_q) · term[task] + w_q · quality`` with ``w_q = env.quality_weight``, so
it is in [0, 1] too. A collapsed or unstable field gets ``env.failure_reward``
instead (≤ 0) and ends the episode.

=============  ===========================================================
term           definition
=============  ===========================================================
density        ``exp(−((ρ − ρ*)/σ)²)``: ρ vortex density, ρ* target, σ tolerance
               (ρ* = ``env.target_density``, or the set-point in force for
               ``setpoint_density``)
order          mean local ``|ψ₆|`` of the vortex positions (0 below the minimum count)
persistence    ``1 − exp(−⟨age⟩/τ)``: mean age of the live tracked vortices
quality        mean core depth ``1 − ⟨|ψ|⟩_core/rms|ψ|`` of the detected vortices
=============  ===========================================================

Public names: ``TASK_TERM``, ``reward_terms``, ``combine``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hhml.config.env import EnvConfig

__all__ = ["TASK_TERM", "combine", "reward_terms"]

#: The reward term each task optimises.
TASK_TERM = {
    "target_density": "density",
    "lattice_order": "order",
    "persistence": "persistence",
    "setpoint_density": "density",
}


def reward_terms(
    cfg: EnvConfig,
    density: Tensor,
    order: Tensor,
    mean_age: Tensor,
    quality: Tensor,
    target: Tensor | None = None,
) -> dict[str, Tensor]:
    """The four reward terms, each ``[B]`` float64 in [0, 1] (tensors on the env's device).

    ``target`` ``[B]`` is the density target ρ* per env (vortices per plaquette; the
    set-point in force); None uses ``cfg.target_density`` for every env.
    """
    rho = cfg.target_density if target is None else target
    density_term = torch.exp(-(((density - rho) / cfg.density_tolerance) ** 2))
    persistence = 1.0 - torch.exp(-mean_age.clamp_min(0.0) / cfg.lifetime_scale)
    return {
        "density": density_term,
        "order": order.clamp(0.0, 1.0),
        "persistence": persistence,
        "quality": quality.clamp(0.0, 1.0),
    }


def combine(cfg: EnvConfig, terms: dict[str, Tensor], failed: Tensor) -> Tensor:
    """Total reward ``[B]``: the task's term and the quality term, or the failure reward."""
    w = cfg.quality_weight
    total = (1.0 - w) * terms[TASK_TERM[cfg.task]] + w * terms["quality"]
    return torch.where(failed, torch.full_like(total, cfg.failure_reward), total)
