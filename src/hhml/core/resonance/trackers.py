"""Trackers: what :meth:`Simulator.run <hhml.core.resonance.Simulator.run>` does along the way.

A tracker is called at the start of a run and then every ``interval`` of simulation time
(rounded to a whole number of steps of ``dt``, at least one), and once more at the end.
It may record something, or stop the run early by raising :class:`StopSimulation`::

    from hhml.core.resonance.trackers import (
        FiniteTracker, MemoryStorage, SteadyStateTracker, VortexCountTracker)

    store, counts = MemoryStorage(interval=5.0), VortexCountTracker(interval=1.0)
    sim.run(200.0, trackers=[store, counts, SteadyStateTracker(10.0, rtol=1e-8)])
    store.times, store.fields      # the field every 5 time units
    counts.times, counts.counts    # the vortex count every time unit

Trackers: :class:`MemoryStorage` (fields in memory), :class:`FileStorage` (an HDF5
trajectory via :class:`hhml.io.FieldWriter`, readable with xarray), :class:`VortexCountTracker`,
:class:`FiniteTracker` (stop on NaN/Inf with the time; the run also checks finiteness
itself every ``check_every`` steps), :class:`SteadyStateTracker` (stop when the field no
longer changes), :class:`ProgressTracker` (a progress bar on a terminal, a plain line
every 30 s otherwise).

Public names: ``Tracker``, ``StopSimulation``, ``MemoryStorage``, ``FileStorage``,
``VortexCountTracker``, ``FiniteTracker``, ``SteadyStateTracker``, ``ProgressTracker``.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from hhml.core.resonance.runner import StopSimulation, Tracker
from hhml.errors import ConfigError, NumericalInstabilityError
from hhml.utils.terminal import is_terminal

if TYPE_CHECKING:
    from hhml.core.resonance.runner import Steppable

__all__ = [
    "FileStorage",
    "FiniteTracker",
    "MemoryStorage",
    "ProgressTracker",
    "SteadyStateTracker",
    "StopSimulation",
    "Tracker",
    "VortexCountTracker",
]


class MemoryStorage(Tracker):
    """Keeps a copy of the field every ``interval`` (``times`` and ``fields``, on the CPU)."""

    def __init__(self, interval: float) -> None:
        super().__init__(interval)
        self.times: list[float] = []
        self.fields: list[Tensor] = []

    def handle(self, sim: Steppable) -> None:
        self.times.append(sim.t)
        self.fields.append(sim.psi.detach().to("cpu", copy=True))


class FileStorage(Tracker):
    """Appends the field every ``interval`` to an HDF5 trajectory (:class:`hhml.io.FieldWriter`).

    The file opens with ``xarray.open_dataset(path, engine="h5netcdf")`` (dims time, env,
    strip, u, v) without hhml; ``attrs`` become global attributes.
    """

    def __init__(self, path: str | Path, interval: float, attrs: dict[str, Any] | None = None):
        super().__init__(interval)
        self.path = Path(path)
        self.attrs = dict(attrs or {})
        self._writer: Any = None

    def start(self, sim: Steppable, t_end: float) -> None:
        from hhml.io.fields import FieldWriter, chart_from_lattice

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = FieldWriter(
            self.path,
            chart_from_lattice(sim.lattice),
            num_envs=sim.batch or 1,
            dtype=sim.psi.dtype,
            attrs=self.attrs,
        )

    def handle(self, sim: Steppable) -> None:
        assert self._writer is not None
        self._writer.append(sim.psi, sim.t)

    def finish(self, sim: Steppable) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class VortexCountTracker(Tracker):
    """Counts the vortices (and their net chart charge) every ``interval``."""

    def __init__(self, interval: float) -> None:
        super().__init__(interval)
        self.times: list[float] = []
        self.counts: list[int] = []
        self.net_charges: list[int] = []

    def handle(self, sim: Steppable) -> None:
        from hhml.core.resonance.vortices import detect_vortices

        found = detect_vortices(sim.psi, sim.lattice)
        self.times.append(sim.t)
        self.counts.append(len(found))
        self.net_charges.append(int(found.charge.sum()))


class FiniteTracker(Tracker):
    """Stops the run with :class:`NumericalInstabilityError` (naming the time) as soon as the
    field holds NaN or Inf at one of its calls."""

    def handle(self, sim: Steppable) -> None:
        if not bool(torch.isfinite(torch.view_as_real(sim.psi)).all()):
            self.stopped_at = sim.t
            raise NumericalInstabilityError(
                f"the field holds NaN/Inf at t = {sim.t:g} (FiniteTracker); lower "
                "simulation.dt or check the parameters"
            )


class SteadyStateTracker(Tracker):
    """Stops the run when ``‖ψ(t) − ψ(t − interval)‖ / ‖ψ(t)‖ < rtol`` (2-norms over all nodes)."""

    def __init__(self, interval: float, rtol: float = 1e-8) -> None:
        super().__init__(interval)
        if not (math.isfinite(rtol) and rtol > 0):
            raise ConfigError(f"rtol = {rtol!r}; it must be > 0")
        self.rtol = float(rtol)
        self._last: Tensor | None = None
        self.change: float | None = None

    def handle(self, sim: Steppable) -> None:
        psi = sim.psi.detach()
        if self._last is not None:
            scale = float(torch.linalg.vector_norm(psi))
            diff = float(torch.linalg.vector_norm(psi - self._last))
            self.change = diff / scale if scale > 0 else diff
            if self.change < self.rtol:
                self.stopped_at = sim.t
                raise StopSimulation(f"steady state at t = {sim.t:g} (change {self.change:.3g})")
        self._last = psi.clone()


class ProgressTracker(Tracker):
    """A progress bar of the run on a terminal; a plain line every ``every_s`` seconds
    otherwise (never a carriage return in a log)."""

    def __init__(self, interval: float, every_s: float = 30.0) -> None:
        super().__init__(interval)
        self.every_s = float(every_s)
        self._bar: Any = None
        self._t0 = self._t_end = 0.0
        self._last_line = 0.0

    def start(self, sim: Steppable, t_end: float) -> None:
        self._t0, self._t_end = sim.t, t_end
        self._last_line = time.monotonic()
        if is_terminal(sys.stderr):
            from tqdm.auto import tqdm

            total = max(self._t_end - self._t0, 0.0)
            self._bar = tqdm(total=total, unit="t", desc="simulate", leave=False)

    def handle(self, sim: Steppable) -> None:
        if self._bar is not None:
            self._bar.n = sim.t - self._t0
            self._bar.refresh()
        elif time.monotonic() - self._last_line >= self.every_s:
            self._last_line = time.monotonic()
            print(f"simulate: t = {sim.t:g} of {self._t_end:g}", file=sys.stderr, flush=True)

    def finish(self, sim: Steppable) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
