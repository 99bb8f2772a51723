"""Trackers of Simulator.run: called at t0, every interval and at the end, they record the
same states a plain run passes through, can stop a run, and never change the trajectory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hhml.config.schema import FieldParams
from hhml.core.mobius import MobiusStrip
from hhml.core.resonance import Simulator, detect_vortices
from hhml.core.resonance.trackers import (
    FileStorage,
    FiniteTracker,
    MemoryStorage,
    ProgressTracker,
    SteadyStateTracker,
    VortexCountTracker,
)
from hhml.errors import ConfigError, NumericalInstabilityError

C128 = torch.complex128


def _sim(**kwargs: object) -> Simulator:
    strip = MobiusStrip(24, 8, dtype=C128)
    params = FieldParams(diffusion=0.05, dispersion=0.03, nonlinear_frequency=0.5)
    return Simulator(strip, params, dt=0.1, seed=3, **kwargs)  # type: ignore[arg-type]


def test_storage_holds_the_states_a_plain_run_passes_through() -> None:
    tracked, plain = _sim(), _sim()
    store, counts = MemoryStorage(0.5), VortexCountTracker(1.0)
    final = tracked.run(2.0, trackers=[store, counts, ProgressTracker(1.0)])
    assert store.times == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0], abs=1e-12)
    expected = [plain.psi.clone()]
    for _ in range(4):
        expected.append(plain.step(5).clone())
    for got, want in zip(store.fields, expected, strict=True):
        assert torch.equal(got, want)  # the same steps: bit for bit
    assert torch.equal(final, plain.psi)
    assert counts.times == pytest.approx([0.0, 1.0, 2.0], abs=1e-12)
    assert counts.counts[-1] == len(detect_vortices(plain.psi, plain.lattice))


def test_a_run_ends_exactly_at_t_end_after_the_last_tracker_call() -> None:
    sim = _sim()
    store = MemoryStorage(1.0)
    sim.run(2.35, trackers=[store])
    assert sim.t == pytest.approx(2.35, abs=1e-12)  # the final partial step is taken
    assert store.times == pytest.approx([0.0, 1.0, 2.0], abs=1e-12)


def test_the_steady_state_tracker_stops_a_relaxed_field() -> None:
    strip = MobiusStrip(24, 8, topology="torus", dtype=C128)
    sim = Simulator(strip, FieldParams(), dt=0.1, initial="uniform", initial_amplitude=1.0)
    steady = SteadyStateTracker(0.5, rtol=1e-12)
    sim.run(100.0, trackers=[steady])
    # |ψ| = 1 everywhere is a fixed point of the real GL equation: no change at the first check
    assert steady.stopped_at == pytest.approx(0.5) and sim.t == pytest.approx(0.5)
    assert steady.change is not None and steady.change < 1e-12


def test_the_finite_tracker_names_the_time_of_a_non_finite_field() -> None:
    sim = _sim()
    sim.step(3)
    sim.psi = torch.full_like(sim.psi, float("nan"))
    with pytest.raises(NumericalInstabilityError, match=r"NaN/Inf at t = 0\.3"):
        sim.run(1.0, trackers=[FiniteTracker(0.5)])


def test_file_storage_writes_an_hdf5_trajectory_equal_to_memory_storage(tmp_path: Path) -> None:
    from hhml.io import read_trajectory

    sim = _sim()
    memory, path = MemoryStorage(0.5), tmp_path / "traj.h5"
    sim.run(1.5, trackers=[memory, FileStorage(path, 0.5, attrs={"note": "test"})])
    data = read_trajectory(path)
    assert data["time"].tolist() == pytest.approx(memory.times, abs=1e-12)
    stored = data["psi"][:, 0]  # [T, B=1, nu, nv] for one strip
    assert torch.equal(stored.reshape(len(memory.fields), 24, 8), torch.stack(memory.fields))
    assert data["attrs"]["note"] == "test"


@pytest.mark.parametrize("interval", [0.0, -1.0, float("nan")])
def test_a_bad_interval_is_a_config_error(interval: float) -> None:
    with pytest.raises(ConfigError, match="tracker interval"):
        MemoryStorage(interval)
