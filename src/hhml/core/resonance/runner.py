"""The runner: the time loop of a simulator, with finiteness checks and trackers.

It drives any object with the stepping primitives of
:class:`~hhml.core.resonance.simulator.Simulator` (:class:`Steppable`: advance by one
step of a given size, snapshot/restore, a finiteness test) and knows nothing of the
equation or the integrator.

- :func:`step_checked`: ``n`` steps of ``dt``, checking finiteness every ``check_every``
  steps; a blow-up is replayed from the last finite state to name the first bad step.
- :func:`run_steps`: exactly ``n`` steps with trackers;
- :func:`run_until`: to time ``t_end`` (the last step shorter), calling trackers
  (:mod:`hhml.core.resonance.trackers`) at the start, every ``interval`` and at the end;
  a tracker that raises :class:`~hhml.core.resonance.trackers.StopSimulation` ends it.

The base class of trackers and their stop signal live here too (the concrete trackers
are in :mod:`~hhml.core.resonance.trackers`, which re-exports both).

Public names: :class:`Steppable`, :class:`Tracker`, :class:`StopSimulation`,
:func:`step_checked`, :func:`run_steps`, :func:`run_until`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

from torch import Tensor

from hhml.errors import ConfigError, NumericalInstabilityError

__all__ = ["Steppable", "StopSimulation", "Tracker", "run_steps", "run_until", "step_checked"]


class Steppable(Protocol):
    """What the runner needs of a simulator."""

    dt: float
    t: float
    step_count: int
    check_every: int
    batch: int | None
    lattice: Any

    @property
    def psi(self) -> Tensor:
        """The current state."""

    def advance_by(self, dt: float) -> None:
        """One step of size ``dt`` (no checks)."""

    def snapshot(self) -> tuple[Any, ...]:
        """A copy of the state that :meth:`restore` returns to exactly."""

    def restore(self, snap: tuple[Any, ...]) -> None:
        """Return to a :meth:`snapshot`."""

    def is_finite(self) -> bool:
        """Whether every value of the state is finite (synchronises the device)."""


class StopSimulation(Exception):  # noqa: N818 (a control-flow signal, not an error)
    """Raised by a tracker to end :meth:`Simulator.run` early (the state is kept)."""


class Tracker:
    """Base class: called at the start, every ``interval`` time units, and at the end.

    Parameters
    ----------
    interval
        Simulation time between calls (> 0), rounded to a whole number of steps.

    Attributes
    ----------
    stopped_at : float or None
        The time at which this tracker stopped the run, if it did.
    """

    def __init__(self, interval: float) -> None:
        if not (isinstance(interval, (int, float)) and math.isfinite(interval) and interval > 0):
            raise ConfigError(f"tracker interval = {interval!r}; it must be a time > 0")
        self.interval = float(interval)
        self.stopped_at: float | None = None

    def steps(self, dt: float) -> int:
        """The interval as a whole number of steps of ``dt`` (at least 1)."""
        return max(1, round(self.interval / dt))

    def start(self, sim: Steppable, t_end: float) -> None:
        """Called once before the first step of a run to ``t_end`` (after which
        :meth:`handle` runs at t₀)."""

    def handle(self, sim: Steppable) -> None:
        """Called at t₀ and every interval; raise :class:`StopSimulation` to stop."""

    def finish(self, sim: Steppable) -> None:
        """Called once at the end of the run (also after an early stop or an error)."""


def step_checked(sim: Steppable, n: int) -> Tensor:
    """Advance ``n`` steps of ``sim.dt``, checking finiteness every ``sim.check_every``.

    Raises
    ------
    NumericalInstabilityError
        The state became NaN/Inf; it is left at the last finite step, which the message
        names with its time.
    """
    done = 0
    while done < n:
        chunk = min(sim.check_every, n - done)
        snap = sim.snapshot()
        for _ in range(chunk):
            sim.advance_by(sim.dt)
        if not sim.is_finite():
            _locate_blow_up(sim, snap, chunk)
        done += chunk
    return sim.psi


def _locate_blow_up(sim: Steppable, snap: tuple[Any, ...], chunk: int) -> None:
    sim.restore(snap)
    for _ in range(chunk):
        before = sim.snapshot()
        sim.advance_by(sim.dt)
        if not sim.is_finite():
            sim.restore(before)
            raise NumericalInstabilityError(
                f"the field became NaN/Inf at step {sim.step_count + 1} "
                f"(t = {sim.t + sim.dt:.6g}); the state was kept at step "
                f"{sim.step_count} (t = {sim.t:.6g}). Reduce dt (now {sim.dt:g}) or "
                "the nonlinearity/source amplitude"
            )
    raise NumericalInstabilityError(  # pragma: no cover - non-deterministic device
        "the field became NaN/Inf but the replay stayed finite (non-deterministic device?)"
    )


def run_until(sim: Steppable, t_end: float, trackers: Sequence[Tracker] = ()) -> Tensor:
    """Advance ``sim`` to time ``t_end`` (the last step may be shorter), with trackers.

    Trackers are called at the start, every ``tracker.interval`` (a whole number of
    steps) and at the end; one that raises ``StopSimulation`` ends the run early with the
    state of that moment. Every tracker that started is finished, also on an error.

    Raises
    ------
    ConfigError
        ``t_end`` not finite or before ``sim.t``.
    NumericalInstabilityError
        The state became NaN/Inf.
    """
    if not math.isfinite(t_end) or t_end < sim.t:
        raise ConfigError(f"t_end = {t_end!r} is not valid; it must be ≥ t = {sim.t:g}")
    n = math.floor((t_end - sim.t) / sim.dt + 1e-9)
    return _run(sim, n, t_end, trackers)


def run_steps(sim: Steppable, n: int, trackers: Sequence[Tracker] = ()) -> Tensor:
    """Advance ``sim`` by exactly ``n`` steps of ``dt`` with trackers (as :func:`run_until`,
    with no final partial step: the end time is ``t + n·dt`` up to rounding).

    Raises
    ------
    ConfigError
        ``n`` not an integer ≥ 0.
    NumericalInstabilityError
        The state became NaN/Inf.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ConfigError(f"n = {n!r} is not valid; it must be an integer ≥ 0")
    return _run(sim, n, None, trackers)


def _run(sim: Steppable, n: int, t_end: float | None, trackers: Sequence[Tracker]) -> Tensor:
    """``n`` checked steps, then the partial step to ``t_end`` (if given), with trackers."""
    if not trackers:
        step_checked(sim, n)
        return sim.psi if t_end is None else _finish(sim, t_end)
    every = [tracker.steps(sim.dt) for tracker in trackers]
    started: list[Tracker] = []
    try:
        for tracker in trackers:
            tracker.start(sim, sim.t + n * sim.dt if t_end is None else t_end)
            started.append(tracker)
        for tracker in trackers:
            tracker.handle(sim)
        done = 0
        while done < n:
            chunk = min(n - done, *(e - done % e for e in every))
            step_checked(sim, chunk)
            done += chunk
            for tracker, e in zip(trackers, every, strict=True):
                if done % e == 0:
                    tracker.handle(sim)
        if t_end is not None:
            _finish(sim, t_end)
    except StopSimulation:
        pass
    finally:
        for tracker in started:
            tracker.finish(sim)
    return sim.psi


def _finish(sim: Steppable, t_end: float) -> Tensor:
    """The final partial step to exactly ``t_end``."""
    rest = t_end - sim.t
    if rest > 1e-12 * sim.dt:
        snap = sim.snapshot()
        sim.advance_by(rest)
        if not sim.is_finite():
            sim.restore(snap)
            raise NumericalInstabilityError(
                f"the field became NaN/Inf in the final partial step to t = {t_end:g}"
            )
    return sim.psi
