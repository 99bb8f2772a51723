"""Train stable-baselines3 TD3 on the batched Möbius vortex environment, against a baseline.

The ``--envs`` environments run in one simulator tensor (``MobiusVortexVecEnv``) and
reach SB3 through ``hhml.ml.env.sb3.MobiusVortexSB3VecEnv``. After ``--steps``
transitions, the trained policy (deterministic) and the non-learning baseline — the
constant mid-point action a = 0 (every control at the middle of its range) — each play
one episode from each of ``--episodes`` initial fields, drawn from the same evaluation
seed for both.
TD3's settings come from the ``agent`` config section (``configs/agent/td3.yaml``), so
``agent.key=value`` overrides work. Writes to ``--out``:

- ``sb3_mobius.png``: training episode returns vs transitions, next to the baseline's
  mean; evaluation returns of both, episode by episode;
- ``summary.json``: the numbers behind the figure;
- ``td3_mobius.zip``: the trained SB3 model; ``config.yaml``: the resolved config.

Needs stable-baselines3 (``pip install -e '.[dev]'``). Example::

    python examples/train_sb3_mobius.py --envs 8 --steps 20000 --out results/sb3_mobius
    python examples/train_sb3_mobius.py --quick --out results/sb3_quick   # seconds
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from hhml.config import load_config, save_config
from hhml.config.schema import HHmLConfig
from hhml.errors import ConfigError, HHmLError
from hhml.utils.atomic_io import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
#: The Möbius environment's config groups; user overrides come after these.
BASE = ["lattice=env", "simulation=env", "env=mobius", "agent=td3"]
#: --quick: a few seconds on a laptop (the smoke test of examples/ runs this).
QUICK = [
    "env.horizon=5",
    "agent.learning_starts=16",
    "agent.batch_size=16",
    "agent.hidden_size=32",
]

Policy = Callable[[np.ndarray], np.ndarray]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", type=int, default=None, help="batched envs (default 8)")
    parser.add_argument("--steps", type=int, default=None, help="transitions (default 20000)")
    parser.add_argument(
        "--episodes", type=int, default=None, help="evaluation episodes per policy (default 16)"
    )
    parser.add_argument("--device", default="cpu", help="torch device of simulator and policy")
    parser.add_argument("--seed", type=int, default=0, help="training seed (evaluation: +10000)")
    parser.add_argument("--out", type=Path, default=Path("results/sb3_mobius"))
    parser.add_argument(
        "--quick", action="store_true", help="tiny budget: 2 envs, 48 steps, horizon 5"
    )
    parser.add_argument("overrides", nargs="*", help="section.key=value or group=name overrides")
    args = parser.parse_args(argv)
    for name, full, quick in (("envs", 8, 2), ("steps", 20_000, 48), ("episodes", 16, 2)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    return args


def make_td3(cfg: HHmLConfig, env: Any, steps: int, seed: int, device: str) -> Any:
    """SB3 TD3 with the settings of the ``agent`` config section."""
    from stable_baselines3 import TD3
    from stable_baselines3.common.noise import NormalActionNoise, VectorizedActionNoise

    agent = cfg.agent
    if agent.algorithm != "td3":
        raise ConfigError(f"agent.algorithm = {agent.algorithm!r}; this example trains 'td3'")
    if agent.actor_learning_rate != agent.critic_learning_rate:
        raise ConfigError(
            f"agent.actor_learning_rate = {agent.actor_learning_rate:g} and "
            f"agent.critic_learning_rate = {agent.critic_learning_rate:g}: SB3's TD3 has one "
            "learning rate for both; set them equal"
        )
    dim = env.action_space.shape[0]
    noise = NormalActionNoise(np.zeros(dim), np.full(dim, agent.exploration_noise))
    return TD3(
        "MlpPolicy",
        env,
        learning_rate=agent.actor_learning_rate,
        buffer_size=min(agent.buffer_size, steps),
        learning_starts=agent.learning_starts,
        batch_size=agent.batch_size,
        tau=agent.tau,
        gamma=agent.gamma,
        gradient_steps=agent.gradient_steps,
        policy_delay=agent.policy_delay,
        target_policy_noise=agent.target_policy_noise,
        target_noise_clip=agent.target_noise_clip,
        action_noise=VectorizedActionNoise(noise, env.num_envs),
        policy_kwargs={"net_arch": [agent.hidden_size] * agent.hidden_layers},
        seed=seed,
        device=device,
    )


def evaluate(policy: Policy, cfg: HHmLConfig, episodes: int, seed: int, device: str) -> np.ndarray:
    """Return of one episode from each of ``episodes`` initial fields; the batch (and so
    every initial field) is seeded from ``seed``."""
    from hhml.ml.env.sb3 import MobiusVortexSB3VecEnv

    env = MobiusVortexSB3VecEnv.from_config(cfg, episodes, device, seed)
    obs = env.reset()
    returns = np.zeros(episodes)
    running = np.ones(episodes, dtype=bool)
    while running.any():  # autoreset restarts finished envs; their later rewards are ignored
        obs, rewards, dones, _ = env.step(policy(obs))
        returns += np.where(running, rewards, 0.0)
        running &= ~dones
    env.close()
    return returns


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        from stable_baselines3.common.callbacks import BaseCallback
        from stable_baselines3.common.vec_env import VecMonitor

        from hhml.ml.env.sb3 import MobiusVortexSB3VecEnv

        overrides = BASE + (QUICK if args.quick else []) + args.overrides
        cfg = load_config(None, overrides, config_root=ROOT / "configs")
        if cfg.agent.learning_starts >= args.steps:
            raise ConfigError(
                f"agent.learning_starts = {cfg.agent.learning_starts} ≥ --steps = {args.steps}: "
                "TD3 would only take random actions; raise --steps or lower "
                "agent.learning_starts"
            )
        env = VecMonitor(MobiusVortexSB3VecEnv.from_config(cfg, args.envs, args.device))
        model = make_td3(cfg, env, args.steps, args.seed, args.device)
    except (HHmLError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    curve: list[tuple[int, float]] = []

    report_every = max(args.steps // 10, args.envs)

    class RecordEpisodes(BaseCallback):  # type: ignore[misc]
        """Training episode returns (VecMonitor's ``info["episode"]``) and a progress line
        every 10 % of the budget."""

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    curve.append((self.num_timesteps, float(info["episode"]["r"])))
            if (
                self.num_timesteps // report_every
                > (self.num_timesteps - args.envs) // report_every
            ):
                recent = [r for _, r in curve[-4 * args.envs :]]
                mean = f"{np.mean(recent):.3f}" if recent else "n/a"
                print(f"  {self.num_timesteps:>7} transitions, recent episode return {mean}")
            return True

    print(f"training TD3 for {args.steps} transitions on {args.envs} batched envs ...")
    try:
        model.learn(total_timesteps=args.steps, callback=RecordEpisodes())
        eval_seed = args.seed + 10_000
        dim = env.action_space.shape[0]
        trained = evaluate(
            lambda obs: model.predict(obs, deterministic=True)[0],
            cfg,
            args.episodes,
            eval_seed,
            args.device,
        )
        constant = evaluate(
            lambda obs: np.zeros((len(obs), dim), dtype=np.float32),
            cfg,
            args.episodes,
            eval_seed,
            args.device,
        )
    except HHmLError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    env.close()

    args.out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, args.out / "config.yaml")
    model.save(args.out / "td3_mobius.zip")
    diff = trained - constant
    sem = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
    print(
        f"\nreturn per episode (horizon {cfg.env.horizon}, task {cfg.env.task}; initial "
        f"fields from evaluation seed {eval_seed}, the same for both):"
    )
    print(f"{'episode':>7}  {'TD3':>8}  {'constant a=0':>12}")
    for k, (a, b) in enumerate(zip(trained, constant, strict=True)):
        print(f"{k:>7}  {a:8.3f}  {b:12.3f}")
    print(f"{'mean':>7}  {trained.mean():8.3f}  {constant.mean():12.3f}")
    print(f"TD3 − constant: {diff.mean():+.3f} ± {sem:.3f} (paired, ± standard error)")

    summary = {
        "envs": args.envs,
        "steps": args.steps,
        "seed": args.seed,
        "eval_seed": eval_seed,
        "horizon": cfg.env.horizon,
        "task": cfg.env.task,
        "eval_return_td3": trained.tolist(),
        "eval_return_constant_midpoint": constant.tolist(),
        "mean_difference": float(diff.mean()),
        "standard_error": float(sem),
        "training_curve": {"timestep": [t for t, _ in curve], "return": [r for _, r in curve]},
    }
    atomic_write_text(args.out / "summary.json", json.dumps(summary, indent=2) + "\n")
    plot(curve, trained, constant, eval_seed, args.out / "sb3_mobius.png")
    print(f"wrote {args.out / 'sb3_mobius.png'}, {args.out / 'summary.json'}")
    return 0


def plot(
    curve: list[tuple[int, float]],
    trained: np.ndarray,
    constant: np.ndarray,
    eval_seed: int,
    path: Path,
) -> None:
    """Training returns vs the baseline's mean; evaluation returns seed by seed."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    if curve:
        t, r = np.array(curve).T
        left.plot(t, r, ".", alpha=0.5, label="TD3 training episodes (with exploration noise)")
    left.axhline(constant.mean(), color="grey", ls="--", label="constant a = 0 (evaluation mean)")
    left.set(xlabel="transitions", ylabel="episode return", title="training")
    left.legend(fontsize=8)
    x = np.arange(len(trained))
    width = 0.4
    right.bar(x - width / 2, trained, width, label=f"TD3 (mean {trained.mean():.3f})")
    right.bar(
        x + width / 2, constant, width, color="grey", label=f"a = 0 (mean {constant.mean():.3f})"
    )
    right.set_xticks(x)
    right.margins(y=0.2)  # room for the legend above the bars
    right.set(
        xlabel=f"episode (initial fields from seed {eval_seed})",
        ylabel="episode return",
        title="evaluation: same initial fields for both",
    )
    right.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
