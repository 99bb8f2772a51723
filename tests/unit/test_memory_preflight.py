"""The memory pre-flight (:mod:`hhml.config.memory`) and its use by ``hhml-train``.

* the estimate's exact terms (parameter counts, replay rows) against the real modules;
* the estimate against the peak RSS growth of real training processes (subprocesses);
* ``available_memory`` / ``check_memory``: the message, the skip with a warning;
* ``hhml-train`` refuses configs that cannot fit, in one line, before allocating.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner, Result

import hhml.config.memory as memory
from hhml.cli.train import main
from hhml.config.loader import dump_config, load_config
from hhml.config.memory import (
    MOBIUS_ACT_DIM,
    MOBIUS_OBS_DIM,
    available_memory,
    check_memory,
    estimate_memory,
)
from hhml.errors import ConfigError
from hhml.ml.rl.networks import (
    DeterministicActor,
    GaussianActor,
    RecurrentActor,
    RecurrentCritic,
    TwinCritic,
)

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "configs" / "experiment" / "quickstart.yaml"
GIB = 1 << 30


def numel(*modules: torch.nn.Module) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


# ----------------------------------------------------------------------------- exact terms


@pytest.mark.parametrize("algorithm", ["td3", "sac", "recurrent_td3"])
def test_network_and_replay_terms_count_the_real_tensors(algorithm: str) -> None:
    cfg = load_config(
        QUICKSTART,
        [
            f"agent.algorithm={algorithm}",
            "agent.hidden_size=24",
            "agent.hidden_layers=3",
            "agent.lstm_hidden=12",
            "agent.lstm_layers=2",
            "agent.buffer_size=5000",
            "env.num_envs=8",
            "training.total_steps=100000",
        ],
    )
    obs, act, a = MOBIUS_OBS_DIM, MOBIUS_ACT_DIM, cfg.agent
    if algorithm == "td3":
        trained = target = numel(DeterministicActor(obs, act, 24, 3), TwinCritic(obs, act, 24, 3))
    elif algorithm == "sac":
        actor = GaussianActor(obs, act, 24, 3, a.log_std_min, a.log_std_max)
        critic = TwinCritic(obs, act, 24, 3)
        trained, target = numel(actor, critic) + 1, numel(critic)  # + log α
    else:
        trained = target = numel(
            RecurrentActor(obs, act, 12, 2, 24, 3), RecurrentCritic(obs, act, 12, 2, 24, 3)
        )
    est = estimate_memory(cfg)
    # agent: params, grads, 2 Adam moments, targets; eval copy: params, 2 moments, targets
    assert est.networks == 4 * (7 * trained + 2 * target)
    row = (2 * obs + act + 2) * 4 + (8 if algorithm == "recurrent_td3" else 0)
    assert est.replay == (5000 + 1) * row  # 5000 // 8 * 8 = 5000 rows for the sequences too
    # model_last.pt: copies of params, targets and moments; the filled replay rows once
    env_state = 8 * 2 * 48 * 12 * 8  # the complex64 fields of the 8 training envs
    assert est.checkpoint == 4 * (3 * trained + target) + 5000 * row + env_state
    assert est.total == sum(est.components.values())


def test_field_terms_scale_with_nodes_envs_and_dtype() -> None:
    base = ["lattice.nu=64", "lattice.nv=16", "env.num_envs=4"]
    small = estimate_memory(load_config(QUICKSTART, base))
    wide = estimate_memory(load_config(QUICKSTART, [*base, "lattice.nu=128"]))
    many = estimate_memory(load_config(QUICKSTART, [*base, "env.num_envs=9"]))
    double = estimate_memory(load_config(QUICKSTART, [*base, "simulation.dtype=complex128"]))
    nodes, junction = 2 * 64 * 16, 64 * 16
    # the CPU kernels: 4 complex64 buffers per node and 1 per junction node
    assert small.field_state == (4 + 1) * (nodes * 4 + junction) * 8
    assert wide.field_state == 2 * small.field_state
    assert many.field_state == 2 * small.field_state  # 9 + 1 envs against 4 + 1
    assert double.field_state == 2 * small.field_state
    assert wide.stability_check == 2 * small.stability_check
    assert many.stability_check == small.stability_check  # 16 elements, whatever num_envs


def test_the_torch_path_counts_its_own_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    """CUDA, or a CPU with HHML_CPP_KERNELS=0, runs the torch code: 10 complex buffers
    per node, float64 geometry and measurement temporaries, the tracker's pair buffers."""
    cfg = load_config(QUICKSTART, ["lattice.nu=64", "lattice.nv=16", "env.num_envs=4"])
    nodes = 2 * 64 * 16
    cpu = estimate_memory(cfg)
    cuda = estimate_memory(cfg, torch.device("cuda"))
    assert cuda.field_state == (4 + 1) * nodes * 10 * 8
    assert cuda.lattice_geometry == (4 + 1) * nodes * (26 * 8 + 4 * 4)
    assert cpu.measurement == 0 < cuda.measurement
    assert estimate_memory(cfg, torch.device("cpu")) == cpu
    monkeypatch.setenv("HHML_CPP_KERNELS", "0")
    assert estimate_memory(cfg) == cuda


def test_the_torch_path_on_a_cpu_counts_the_compiler_once_the_batch_is_compiled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The torch code compiles the stack RK4 step from MIN_COMPILED_NODES nodes per batch
    on: ~100 MiB of compiler state in the CPU process (measured 92–107 MiB), counted with
    the runtime; not with the C++ kernels, and not on CUDA (host memory, not the GPU's)."""
    from hhml.core.resonance.flat_kernels import MIN_COMPILED_NODES

    at = ["lattice.nu=64", "lattice.nv=16", f"env.num_envs={MIN_COMPILED_NODES // 2048}"]
    below = [*at[:2], f"env.num_envs={MIN_COMPILED_NODES // 2048 - 1}"]
    kernel = estimate_memory(load_config(QUICKSTART, at))
    monkeypatch.setenv("HHML_CPP_KERNELS", "0")
    torch_cpu = estimate_memory(load_config(QUICKSTART, at))
    cuda = estimate_memory(load_config(QUICKSTART, at), torch.device("cuda"))
    assert torch_cpu.runtime == kernel.runtime + 100 * 2**20 == cuda.runtime + 100 * 2**20
    assert estimate_memory(load_config(QUICKSTART, below)).runtime == kernel.runtime


def test_a_gymnasium_env_has_no_field_terms() -> None:
    est = estimate_memory(load_config(None, ["env.id=Pendulum-v1"]))
    assert est.field_state == est.lattice_geometry == est.measurement == 0
    assert (est.obs_dim, est.act_dim) == (1, 1)


# ----------------------------------------------------------------------------- measured peaks

#: Builds the training components of a config as the trainer does, takes 3 env steps
#: with updates, evaluates one step with the evaluation copy and holds a checkpoint
#: state (what writing model_last.pt holds), then prints the peak RSS growth.
MEASURE = textwrap.dedent("""
    import json, os, resource, sys
    import numpy as np
    import torch
    torch.set_num_threads(1)
    from hhml.config.loader import load_config
    from hhml.config.memory import estimate_memory
    from hhml.ml.training.distributed import SINGLE_PROCESS
    from hhml.ml.training.trainer import build_components, first_observation

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    cfg = load_config(sys.argv[1], sys.argv[2:])
    base = rss()
    c = build_components(cfg)
    obs = first_observation(c.envs, cfg, SINGLE_PROCESS)
    for _ in range(3):
        act = np.asarray(c.agent.act(obs, explore=True), dtype=np.float32)
        nxt, rew, term, trunc, _ = c.envs.step(act)
        nxt = np.asarray(nxt, dtype=np.float32)
        c.agent.observe(obs, act, np.asarray(rew, np.float32), nxt, term, trunc)
        c.agent.update()
        obs = nxt
    c.eval_agent.load_state_dict(c.agent.state_dict(include_replay=False))
    c.eval_envs.reset(seed=0)
    c.eval_envs.step(np.asarray(c.eval_agent.act(obs[:1], explore=False), np.float32))
    checkpoint = (c.agent.state_dict(include_replay=True), c.envs.state_dict())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    print(json.dumps({"measured": peak, "estimate": estimate_memory(cfg).total}))
    """)
COMMON = ["agent.learning_starts=1", "agent.batch_size=16", "training.total_steps=24"]
#: (name, overrides, the component that must dominate the estimate)
SHAPES = {
    "replay": (["agent.buffer_size=2000000", "lattice.nu=8", "lattice.nv=4"], "replay"),
    "field": (
        [
            "agent.buffer_size=1000",
            "lattice.nu=512",
            "lattice.nv=128",
            "simulation.dt=0.0005",
            "env.num_envs=16",
        ],
        "lattice_geometry",  # on the CPU kernels 10 real buffers per node against 4 complex
    ),
    "network": (
        ["agent.buffer_size=1000", "agent.hidden_size=1536", "agent.hidden_layers=3"],
        "networks",
    ),
}


def measure(overrides: list[str]) -> tuple[int, int]:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(QUICKSTART), *COMMON, *overrides],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return int(result["measured"]), int(result["estimate"])


def assert_estimate_matches(shape: str) -> None:
    overrides, dominant = SHAPES[shape]
    est = estimate_memory(load_config(QUICKSTART, [*COMMON, *overrides]))
    assert est.largest(1)[0][0] == dominant
    measured, estimate = measure(overrides)
    assert estimate == est.total
    # Measured on a 2-core CPU (torch 2.13, complex64, the C++ kernels), estimate / peak
    # RSS growth: replay 1.000, field 1.044, network 1.001 (docs/memory.md); other shapes
    # there reach 0.861 and 1.170, so the bound is 25 %, not 10x the error of these three.
    assert abs(estimate / measured - 1) <= 0.25, (shape, measured, estimate)


def test_estimate_within_25_percent_of_the_measured_peak_replay_dominated() -> None:
    assert_estimate_matches("replay")


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["field", "network"])
def test_estimate_within_25_percent_of_the_measured_peak(shape: str) -> None:
    assert_estimate_matches(shape)


@pytest.mark.slow
def test_torch_path_estimate_within_25_percent_where_the_step_is_compiled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HHML_CPP_KERNELS=0 on a 256 × 64 lattice with 4 envs (a compiled RK4 step):
    measured 279.5 MiB against 285.3 estimated, 1.021 (docs/memory.md); 185.3 before the
    compiler was counted (0.66)."""
    monkeypatch.setenv("HHML_CPP_KERNELS", "0")
    overrides = ["agent.buffer_size=1000", "lattice.nu=256", "lattice.nv=64"]
    overrides += ["simulation.dt=0.002", "env.num_envs=4"]
    measured, estimate = measure(overrides)
    assert abs(estimate / measured - 1) <= 0.25, (measured, estimate)


# ----------------------------------------------------------------------------- free memory


def test_available_memory_reads_meminfo(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:  2000 kB\nMemFree:  10 kB\nMemAvailable:  1500 kB\n")
    assert available_memory(torch.device("cpu"), meminfo) == 1500 * 1024
    assert available_memory(torch.device("cpu")) > 0  # the real /proc/meminfo


@pytest.mark.parametrize(
    ("text", "reason"),
    [(None, "No such file"), ("MemTotal: 5 kB\n", "no MemAvailable"), ("MemAvailable: x kB", "")],
)
def test_unreadable_meminfo_skips_the_check_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str | None, reason: str
) -> None:
    meminfo = tmp_path / "meminfo"
    if text is not None:
        meminfo.write_text(text)
    with pytest.raises(OSError, match=rf"cannot read MemAvailable from .*meminfo.*{reason}"):
        available_memory(torch.device("cpu"), meminfo)
    cfg = load_config(None, ["agent.buffer_size=1000000000000"])  # 18 TB of replay
    with caplog.at_level(logging.WARNING, logger="hhml.config.memory"):
        est = check_memory(cfg, torch.device("cpu"), meminfo=meminfo)
    assert est.total > 10**13
    (record,) = caplog.records
    assert "memory pre-flight skipped: cannot read MemAvailable" in record.getMessage()


def test_check_memory_message_names_estimate_available_parts_and_keys(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(f"MemAvailable: {2 * GIB // 1024} kB\n")
    cfg = load_config(QUICKSTART, ["agent.buffer_size=20000000"])  # 7.2 GiB of replay
    with pytest.raises(ConfigError) as info:
        check_memory(cfg, torch.device("cpu"), meminfo=meminfo)
    message = str(info.value)
    assert "needs about 7.3" in message and "GiB" in message  # 7.23 GiB replay + the rest
    assert "cpu has 2 GiB available" in message
    assert "largest parts: replay 7.23 GiB" in message and "reduce agent.buffer_size" in message
    assert "\n" not in message
    small = load_config(QUICKSTART, ["agent.buffer_size=1000"])
    assert check_memory(small, torch.device("cpu"), meminfo=meminfo).total < GIB
    with pytest.raises(ConfigError, match=r"\(24 processes × "):
        check_memory(small, torch.device("cpu"), processes=24, meminfo=meminfo)


# ----------------------------------------------------------------------------- hhml-train

HUGE = {
    "lattice": ["lattice.nu=16384", "lattice.nv=4096"],
    "envs": ["lattice.nu=2048", "lattice.nv=512", "env.num_envs=4096"],
    "network": ["agent.hidden_size=65536", "agent.hidden_layers=8"],
    "replay": ["agent.buffer_size=1000000000000"],
}
KEYS = {
    "lattice": "lattice.nu, lattice.nv",
    "envs": "lattice.nu, lattice.nv",
    "network": "agent.hidden_size, agent.hidden_layers",
    "replay": "agent.buffer_size",
}


@pytest.fixture()
def sixteen_gib(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check sees 16 GiB free, whatever this machine has."""
    monkeypatch.setattr(memory, "available_memory", lambda device, meminfo=None: 16 * GIB)


def assert_memory_error(result: Result, keys: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("hhml-train: error: this config needs about ")
    assert "but cpu has 16 GiB available" in line and f"reduce {keys}" in line
    assert "Traceback" not in result.output


@pytest.mark.parametrize("case", list(HUGE))
@pytest.mark.usefixtures("sixteen_gib")
def test_train_refuses_a_config_that_cannot_fit(tmp_path: Path, case: str) -> None:
    run_dir = tmp_path / "run"
    args = ["--config", str(QUICKSTART), *HUGE[case], "--device", "cpu", "--run-dir", str(run_dir)]
    result = CliRunner().invoke(main, args)
    assert_memory_error(result, KEYS[case])
    assert not run_dir.exists()


@pytest.mark.usefixtures("sixteen_gib")
def test_resume_and_restart_check_memory_before_touching_the_run(tmp_path: Path) -> None:
    cfg = load_config(QUICKSTART, [*HUGE["replay"], "training.device=cpu"])
    resumable = tmp_path / "resumable"
    resumable.mkdir()
    (resumable / "config.yaml").write_text(dump_config(cfg))
    (resumable / "model_last.pt").write_bytes(b"never read: the check comes first")
    assert_memory_error(CliRunner().invoke(main, ["--resume", str(resumable)]), KEYS["replay"])
    unstarted = tmp_path / "unstarted"
    unstarted.mkdir()
    (unstarted / "config.yaml").write_text(dump_config(cfg))
    (unstarted / "metrics.jsonl").write_text('{"kind": "baseline", "step": 0}\n')
    result = CliRunner().invoke(main, ["--resume", str(unstarted)])
    assert_memory_error(result, KEYS["replay"])
    assert sorted(p.name for p in unstarted.iterdir()) == ["config.yaml", "metrics.jsonl"]
