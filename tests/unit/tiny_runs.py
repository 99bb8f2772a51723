"""Overrides of the tiny Möbius training run several test modules train once per module.

A run of 40 env steps (2 envs, 5-step episodes, 16 × 6 strips, a 16-unit TD3) with an
evaluation and a checkpoint every 20 steps and a snapshot at steps 20 and 40: a few
seconds on a CPU, enough for reports, snapshots, evaluation and resume to have data.
"""

from __future__ import annotations

TINY_MOBIUS_RUN = [
    "lattice=env",
    "simulation=env",
    "env=mobius",
    "agent=td3",
    "lattice.nu=16",
    "lattice.nv=6",
    "env.num_envs=2",
    "env.horizon=5",
    "agent.learning_starts=20",
    "agent.batch_size=8",
    "agent.hidden_size=16",
    "training.total_steps=40",
    "training.eval_every=20",
    "training.eval_episodes=1",
    "training.log_every=10",
    "training.checkpoint_every=20",
    "training.snapshot_every=20",
    "training.progress_bar=false",
    "training.tensorboard=false",
]
