"""Record reference outputs of the Möbius vortex environment (run once, by hand).

The file ``env_reference.npz`` beside this script was written by the environment as it
was before the device-native rewrite (commit 3c872e4, per-env Python/NumPy loops), so that
the batched code can be checked against it:

    python tests/unit/data/record_env_reference.py

Scenario: the default env config in complex128 with 4 envs, reset with seed 11, then 30
steps of seeded uniformly random actions in [−1, 1]^23, except the two random controls
(noise temperature and pair seeding) held at their lower end 0, so the trajectory does
not depend on how random numbers are drawn. Recorded per step: the actions, every
measured feature, the reward terms, rewards, failures, targeted counts, and the vortex
set (env, strip, i, j, charge, u, v, depth), plus the initial field.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from hhml.ml.env import CONTROLS, MobiusVortexVecEnv, default_env_config

OUT = Path(__file__).with_name("env_reference.npz")
NUM_ENVS, STEPS, SEED = 4, 30, 11


def scenario_actions() -> np.ndarray:
    """The actions ``[STEPS, NUM_ENVS, 23]`` of the recorded scenario."""
    rng = np.random.default_rng(2026)
    actions = rng.uniform(-1.0, 1.0, (STEPS, NUM_ENVS, len(CONTROLS)))
    names = [c.name for c in CONTROLS]
    for quiet in ("noise_temperature", "pair_seeding"):
        actions[:, :, names.index(quiet)] = -1.0
    return actions


def scenario_config():  # type: ignore[no-untyped-def]
    cfg = default_env_config()
    return dataclasses.replace(cfg, simulation=cfg.simulation.replace(dtype="complex128"))


def main() -> None:
    env = MobiusVortexVecEnv(scenario_config(), num_envs=NUM_ENVS)
    env.reset(seed=SEED)
    out: dict[str, list[np.ndarray]] = {}
    initial = env.core.sim.psi.clone().numpy()
    vort_rows = []
    for k, a in enumerate(scenario_actions()):
        reward, failed, info = env.core.step(a)
        m = env.core._last
        for key, value in m.items():
            out.setdefault(f"measured/{key}", []).append(np.asarray(value, dtype=np.float64))
        for key, value in info["reward_terms"].items():
            out.setdefault(f"terms/{key}", []).append(np.asarray(value, dtype=np.float64))
        out.setdefault("reward", []).append(reward)
        out.setdefault("failed", []).append(failed)
        out.setdefault("targeted", []).append(info["vortex"]["targeted"])
        out.setdefault("obs", []).append(env.core.observation())
        v = env.core._vortices
        rows = np.concatenate(
            [
                np.full((len(v), 1), k),
                v.index.numpy(),
                v.charge.numpy()[:, None],
                v.position.numpy(),
                v.depth.numpy()[:, None],
            ],
            axis=1,
        )
        vort_rows.append(rows)
    arrays = {k: np.stack(v) for k, v in out.items()}
    arrays["actions"] = scenario_actions()
    arrays["initial_psi"] = initial
    arrays["vortices"] = np.concatenate(vort_rows)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT}: {len(arrays['vortices'])} vortex rows, {STEPS} steps")


if __name__ == "__main__":
    main()
