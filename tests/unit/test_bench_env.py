"""``benchmarks/bench_env.py --kernels``: the split of the env step into C++ kernel time and
the rest.

What is asserted is the accounting, not a speed: every C++ kernel of the step is timed
(both groups non-zero where each runs), their time fits inside the step time,
and the kernel modules are restored afterwards (a leaked timer would slow every later
call).
"""

from __future__ import annotations

from types import ModuleType

import pytest


def test_kernels_split_the_step_and_leave_the_modules_as_they_were(
    bench_env: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    kernels = bench_env._kernel_objects()
    if any(k._module is None for k in kernels):
        pytest.skip("a C++ kernel is unavailable here")
    before = [k._module for k in kernels]
    res = bench_env.main(
        ["--envs", "3", "--steps", "3", "--rounds", "1", "--warmup", "1", "--kernels"]
    )
    row = res["new"][0]
    assert row["kernel_pde_s"] > 0.0 and row["kernel_other_s"] > 0.0
    # medians of per-step sums: the kernel time is part of the step time
    assert row["kernel_pde_s"] + row["kernel_other_s"] < row["median_s_per_step"] * 1.5
    assert [k._module for k in bench_env._kernel_objects()] == before
    assert "non-PDE share if the time outside the kernels were 0" in capsys.readouterr().out
