"""The batched env reproduces the outputs recorded from the per-env implementation.

``data/env_reference.npz`` was written by ``data/record_env_reference.py`` with the
environment as it was before the device-native rewrite (per-env NumPy loops, SciPy
assignment for the ages): complex128, 4 envs, 30 steps of seeded random actions with
the two random controls (noise, pair seeding) at 0, from a stored initial field.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hhml.ml.env import MobiusVortexVecEnv

DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(DATA))
from record_env_reference import NUM_ENVS, SEED, scenario_config  # noqa: E402

#: The issue's bound, 1e-10 relative (float64). Measured: features and rewards differ by at
#: most 9.0e-12 relative (hexatic order; rewards 1.1e-13), positions by 1.8e-11 absolute
#: (length units): the embedded metric is now computed analytically in torch, the recorded
#: one by finite differences (~1e-12), and the imprint kernel rounds differently (SLEEF
#: vector functions, one atan2 per node, terms below eps/256 left out); 30 steps of chaotic
#: dynamics amplify those last-bit differences (1.2e-12 and 1.5e-12 before that change).
RTOL = 1e-10


@pytest.fixture(scope="module")
def replay() -> tuple[dict[str, np.ndarray], list[dict[str, np.ndarray]]]:
    ref = dict(np.load(DATA / "env_reference.npz"))
    env = MobiusVortexVecEnv(scenario_config(), num_envs=NUM_ENVS)
    env.reset(seed=SEED)
    core = env.core
    core.reset(field=torch.from_numpy(ref["initial_psi"]))
    steps = []
    for a in ref["actions"]:
        out = core.step(torch.as_tensor(a))
        vort = core.state.vortices
        assert vort is not None
        valid = vort.valid.numpy()
        b, s, k = np.nonzero(valid)
        rows = np.stack(
            [
                b,
                s,
                vort.i.numpy()[b, s, k],
                vort.j.numpy()[b, s, k],
                vort.charge.numpy()[b, s, k],
            ],
            axis=1,
        )
        steps.append(
            {
                "measured": {key: v.numpy() for key, v in core.state.measured.items()},
                "reward": out.reward.numpy(),
                "failed": out.terminated.numpy(),
                "targeted": out.targeted.numpy(),
                "terms": {key: v.numpy() for key, v in out.terms.items()},
                "obs": core.observation().numpy(),
                "rows": rows,
                "position": vort.position.numpy()[b, s, k],
                "depth": vort.depth.numpy()[b, s, k],
                "overflow": vort.overflow.numpy(),
            }
        )
    return ref, steps


def test_vortex_sets_counts_and_charges_are_identical(replay) -> None:  # type: ignore[no-untyped-def]
    ref, steps = replay
    rows = ref["vortices"]
    for k, step in enumerate(steps):
        assert not step["overflow"].any()  # the recorded strips hold ≤ 119 < 256 vortices
        mine = rows[rows[:, 0] == k]
        np.testing.assert_array_equal(step["rows"], mine[:, 1:6].astype(np.int64))
        np.testing.assert_allclose(step["position"], mine[:, 6:8], rtol=RTOL, atol=1e-11)
        np.testing.assert_allclose(step["depth"], mine[:, 8], rtol=RTOL, atol=1e-11)
        np.testing.assert_array_equal(step["measured"]["count"], ref["measured/count"][k])
        np.testing.assert_array_equal(step["targeted"], ref["targeted"][k])
        np.testing.assert_array_equal(step["failed"], ref["failed"][k])


@pytest.mark.parametrize(
    "key",
    [
        "vortex_density",
        "mean_abs_charge",
        "multi_charge_fraction",
        "net_charge_density",
        "core_depth",
        "hexatic_order",
        "null_density",
        "norm",
        "quartic",
        "gradient",
        "k2",
    ],
)
def test_features_match_to_rounding(replay, key: str) -> None:  # type: ignore[no-untyped-def]
    ref, steps = replay
    got = np.stack([s["measured"][key] for s in steps])
    np.testing.assert_allclose(got, ref[f"measured/{key}"], rtol=RTOL, atol=1e-14)


def test_rewards_and_observations_match(replay) -> None:  # type: ignore[no-untyped-def]
    ref, steps = replay
    np.testing.assert_allclose(
        np.stack([s["reward"] for s in steps]), ref["reward"], rtol=RTOL, atol=1e-14
    )
    for name in ("density", "order", "quality"):
        got = np.stack([s["terms"][name] for s in steps])
        np.testing.assert_allclose(got, ref[f"terms/{name}"], rtol=RTOL, atol=1e-14)
    # float32 observations: equal up to the last bit of float32, except column 6
    # (log mean age, see test_ages_follow_the_documented_matching_rule)
    obs = np.stack([s["obs"] for s in steps])
    age_column = 6
    keep = [c for c in range(obs.shape[-1]) if c != age_column]
    np.testing.assert_allclose(obs[..., keep], ref["obs"][..., keep], rtol=2e-7)


def test_ages_follow_the_documented_matching_rule(replay) -> None:  # type: ignore[no-untyped-def]
    """Ages come from iterated mutual-nearest-neighbour links (hhml.ml.env.measure), not
    from the Hungarian assignment, which links the most vortices. Where every link is
    unique both agree (tests/unit/test_env_measure.py); in this dense random-action run
    (up to 119 vortices per strip) they agree exactly in 63 of 120 env-steps, the mean
    ages differ by 4.5 % on average and their sum is 3.7 % lower (measured): fewer
    links, younger vortices. The bounds below are about twice those figures."""
    ref, steps = replay
    new = np.stack([s["measured"]["mean_age"] for s in steps])
    old = ref["measured/mean_age"]
    equal = np.isclose(new, old, rtol=1e-10, atol=0.0)
    assert equal.sum() >= 50
    relative = np.abs(new - old).sum() / old.sum()
    assert relative < 0.1
    assert new.sum() <= old.sum()
