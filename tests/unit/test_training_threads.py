"""training.torch_threads = 0 chooses the thread count from the work size."""

from __future__ import annotations

from pathlib import Path

from hhml.config import load_config
from hhml.ml.training.threads import AUTO_MIN_NODES, choose_threads

QUICKSTART = Path(__file__).parents[2] / "configs" / "experiment" / "quickstart.yaml"


def test_small_env_work_gets_one_thread_and_large_work_all_cores() -> None:
    quick = load_config(QUICKSTART)  # 8 × 2 × 48 × 12 = 9216 nodes
    assert choose_threads(quick, cores=2) == (1, f"auto: 9216 field nodes < {AUTO_MIN_NODES}")
    big = load_config(QUICKSTART, ["env.num_envs=128"])
    assert choose_threads(big, cores=2) == (2, "auto: 147456 field nodes on 2 cores")
    assert choose_threads(big, cores=1) == (1, "auto: one core")


def test_an_explicit_count_and_small_gymnasium_envs() -> None:
    fixed = load_config(QUICKSTART, ["training.torch_threads=3"])
    assert choose_threads(fixed, cores=2) == (3, "training.torch_threads")
    pendulum = load_config(None, ["env.id=Pendulum-v1"])
    assert choose_threads(pendulum, cores=8) == (1, "auto: env Pendulum-v1 is small")
