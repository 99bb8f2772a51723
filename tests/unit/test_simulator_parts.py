"""The simulator's three parts used on their own: equation, steppers, runner.

The steppers take any right-hand side ``F(psi, t)``; the runner drives any object with
the stepping primitives; neither imports the simulator (no import cycle).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor

import hhml.core.resonance
from hhml.config.schema import FieldParams
from hhml.core.mobius import MobiusStrip
from hhml.core.resonance import FieldEquation, Simulator
from hhml.core.resonance.integrators import RK4, Euler, IntegratingFactorRK4
from hhml.core.resonance.runner import run_until
from hhml.core.resonance.trackers import MemoryStorage
from hhml.errors import ConfigError, NumericalInstabilityError


@pytest.mark.parametrize("lam", [-1.0, -0.3 + 2.0j, 0.5j])
def test_rk4_on_a_bare_callable_is_its_stability_polynomial(lam: complex) -> None:
    """One RK4 step of dψ/dt = λψ multiplies by R(λdt) = Σ_{k≤4} (λdt)^k/k! exactly
    (measured 1.1e-16 relative; tolerance 1e-15)."""
    psi = torch.tensor([1.0 + 0.5j, -0.2 + 0.1j], dtype=torch.complex128)
    dt = 0.1
    z = lam * dt
    expected = psi * (1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24)
    out = RK4(lambda p, t: lam * p).step(psi, 0.0, dt)
    assert float((out - expected).abs().max() / expected.abs().max()) < 1e-15
    assert torch.equal(Euler(lambda p, t: lam * p).step(psi, 0.0, dt), psi + dt * (lam * psi))


def test_rk4_on_a_time_dependent_callable_is_fourth_order() -> None:
    """dψ/dt = cos t, ψ(0) = 0 → ψ(1) = sin 1: the error falls as dt⁴ (ratio 16 when dt
    halves; measured 15.98 and 15.99, tolerance ±0.5)."""

    def errors(n: int) -> float:
        step, psi, dt = RK4(lambda p, t: torch.full_like(p, np.cos(t))), None, 1.0 / n
        psi = torch.zeros(1, dtype=torch.complex128)
        for k in range(n):
            psi = step.step(psi, k * dt, dt)
        return abs(complex(psi[0]) - np.sin(1.0))

    e = [errors(n) for n in (4, 8, 16)]
    assert 15.5 < e[0] / e[1] < 16.5 and 15.5 < e[1] / e[2] < 16.5


def test_etd_needs_an_equation_with_a_linear_part() -> None:
    with pytest.raises(ConfigError, match="integrator 'etd' needs an equation with a linear"):
        IntegratingFactorRK4(lambda p, t: -p)
    with pytest.raises(ConfigError, match=r"needs a right-hand side F\(psi, t\).*got int"):
        RK4(3)  # type: ignore[arg-type]


def test_the_simulator_is_its_equation_advanced_by_its_stepper() -> None:
    """Simulator.step == the integrator on the equation (noise off): bit for bit."""
    strip = MobiusStrip(24, 8, dtype=torch.complex128)
    params = FieldParams(source_amplitude=0.2, pinning=0.1)
    sim = Simulator(strip, params, dt=0.05, seed=3)
    eq = FieldEquation(strip, params, batch=None, seed=3)
    psi = sim.psi.clone()
    expected = RK4(eq).step(psi, 0.0, 0.05)
    sim.step(1)
    assert torch.equal(sim.psi, expected)
    assert torch.equal(eq(psi, 0.3), sim.rhs(psi, 0.3))


class _Decay:
    """A minimal Steppable: ψ' = −ψ by forward Euler (no simulator involved)."""

    def __init__(self) -> None:
        self.dt, self.t, self.step_count, self.check_every = 0.1, 0.0, 0, 3
        self.batch, self.lattice = None, None
        self.psi = torch.ones(2, dtype=torch.complex128)

    def advance_by(self, dt: float) -> None:
        self.psi = self.psi * (1 - dt) if self.t < 0.45 else self.psi * float("nan")
        self.t += dt
        self.step_count += 1

    def snapshot(self) -> tuple[Any, ...]:
        return self.psi.clone(), self.t, self.step_count

    def restore(self, snap: tuple[Any, ...]) -> None:
        self.psi, self.t, self.step_count = snap[0].clone(), snap[1], snap[2]

    def is_finite(self) -> bool:
        return bool(torch.isfinite(torch.view_as_real(self.psi)).all())


def test_the_runner_drives_any_steppable_with_trackers_and_locates_a_blow_up() -> None:
    sim = _Decay()
    store = MemoryStorage(interval=0.2)
    run_until(sim, 0.35, trackers=[store])  # 3 steps of 0.1 and one of 0.05
    assert store.times == pytest.approx([0.0, 0.2])  # every 2 steps; the end calls finish
    expected: Tensor = torch.full((2,), 0.9**3 * 0.95, dtype=torch.complex128)
    assert torch.allclose(sim.psi, expected, rtol=1e-15, atol=0)
    with pytest.raises(NumericalInstabilityError, match=r"NaN/Inf at step 7 .*kept at step 6"):
        run_until(sim, 2.0)
    assert sim.step_count == 6 and sim.is_finite()


def test_the_steppers_and_the_runner_do_not_import_the_simulator() -> None:
    """No import of the simulator module from its parts, not even for type checking
    (the integrators and the simulator used to import each other)."""
    root = Path(hhml.core.resonance.__file__).parent
    parts = [*sorted((root / "integrators").glob("*.py")), root / "runner.py"]
    parts += [root / "equation.py", root / "stochastic.py", root / "trackers.py"]
    for path in parts:
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names] if isinstance(node, ast.Import) else []
            )
            assert not any(n.endswith("simulator") for n in names), path.name
