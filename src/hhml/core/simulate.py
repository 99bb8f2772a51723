"""Run the simulation a config describes and store it: the config's ``simulation`` section
in action.

:func:`simulate` builds the simulator of a config (:func:`hhml.core.factory.build_simulator`),
advances it ``simulation.steps`` steps and writes into ``simulation.output_dir`` (or the
directory given):

- ``fields.h5``: the field every ``simulation.snapshot_every`` steps (and at t = 0), an
  HDF5 trajectory that ``xarray.open_dataset(path, engine="h5netcdf")`` opens with named
  dimensions ``(time, env, strip, u, v)`` (:class:`hhml.io.FieldWriter`; none when
  ``snapshot_every`` is 0);
- ``config.yaml``: the resolved config, loadable with :func:`hhml.config.load_config`.

::

    from hhml.config import load_config
    from hhml.core.simulate import simulate

    result = simulate(load_config(None, ["simulation=quick", "lattice=small"]), "out/run1")
    result.simulator.psi, result.fields_path

Public names: :func:`simulate`, :class:`SimulationResult`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hhml.config.loader import dump_config, save_config
from hhml.config.schema import HHmLConfig
from hhml.core.factory import build_simulator
from hhml.core.resonance.runner import Tracker, run_steps
from hhml.core.resonance.simulator import Simulator
from hhml.core.resonance.trackers import FileStorage, ProgressTracker
from hhml.errors import ConfigError

__all__ = ["SimulationResult", "simulate"]

#: The trajectory file :func:`simulate` writes in its output directory.
FIELDS_FILE = "fields.h5"


@dataclass
class SimulationResult:
    """What :func:`simulate` made.

    Attributes
    ----------
    simulator : Simulator
        The simulator after the run (state, time, parameters).
    output_dir : Path
        The directory written to.
    fields_path : Path or None
        The HDF5 trajectory, None when ``simulation.snapshot_every`` is 0.
    """

    simulator: Simulator
    output_dir: Path
    fields_path: Path | None


def simulate(
    cfg: HHmLConfig,
    output_dir: str | Path | None = None,
    *,
    trackers: Sequence[Tracker] = (),
    progress: bool = True,
    overwrite: bool = False,
) -> SimulationResult:
    """Run ``cfg.simulation.steps`` steps of the config's simulation and store them.

    Parameters
    ----------
    cfg
        The whole config (lattice, dynamics, simulation sections are used).
    output_dir
        Where to write ``fields.h5`` and ``config.yaml``; default
        ``cfg.simulation.output_dir``.
    trackers
        More trackers (:mod:`hhml.core.resonance.trackers`) to run alongside.
    progress
        A progress bar on a terminal, a plain line every 30 s otherwise.
    overwrite
        Replace an existing ``fields.h5`` (otherwise refused: nothing is lost).

    Raises
    ------
    ConfigError
        ``output_dir`` exists and is not a directory, or it holds a ``fields.h5`` and
        ``overwrite`` is False.
    NumericalInstabilityError
        The field became NaN/Inf (the trajectory written so far is kept).
    """
    out = Path(cfg.simulation.output_dir if output_dir is None else output_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"simulation.output_dir = {str(out)!r} exists and is not a directory")
    fields_path = out / FIELDS_FILE if cfg.simulation.snapshot_every > 0 else None
    if fields_path is not None and fields_path.exists() and not overwrite:
        raise ConfigError(
            f"{fields_path} already exists; choose another simulation.output_dir or pass "
            "overwrite=True to replace it"
        )
    sim = build_simulator(cfg)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.yaml")
    every_t = sim.dt * max(1, cfg.simulation.snapshot_every)
    run_trackers: list[Tracker] = []
    if fields_path is not None:
        if fields_path.exists():
            fields_path.unlink()
        run_trackers.append(FileStorage(fields_path, every_t, attrs={"config": dump_config(cfg)}))
    if progress:
        run_trackers.append(ProgressTracker(sim.dt * max(1, cfg.simulation.steps // 100)))
    run_steps(sim, cfg.simulation.steps, [*run_trackers, *trackers])
    return SimulationResult(simulator=sim, output_dir=out, fields_path=fields_path)
