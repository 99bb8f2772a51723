"""Build lattices and simulators from a validated :class:`~hhml.config.HHmLConfig`.

This is the one place that turns a ``lattice`` section (plus ``simulation.dtype`` and
``simulation.device``) into lattice objects; the environment, analysis, validation and
examples call it rather than passing the fields by hand:

- :func:`build_lattice`: a ``lattice`` section → :class:`MobiusStrip` (``strips == 1``)
  or :class:`TokamakStack`;
- :func:`lattice_from_config`: the same for a whole config (its dtype and device);
- :func:`lattice_kwargs`: the keyword arguments a :class:`LatticeEnsemble` of the config
  shares between its elements;
- :func:`ensemble_from_config`: a :class:`LatticeEnsemble` of ``B`` elements whose
  geometry and twist are the lattice columns of control values ``[B, 23]``.

Public names: :func:`build_lattice`, :func:`lattice_from_config`, :func:`lattice_kwargs`,
:func:`ensemble_from_config`, :func:`build_simulator`, :class:`EnsembleKwargs`.
"""

from __future__ import annotations

from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt
import torch

from hhml.config.controls import CONTROL_INDEX, LATTICE_CONTROLS, NUM_CONTROLS
from hhml.config.schema import HHmLConfig, LatticeConfig
from hhml.core.mobius import LatticeEnsemble, MobiusStrip, TokamakStack
from hhml.core.resonance.simulator import Simulator
from hhml.errors import LatticeError
from hhml.utils.device import resolve_device
from hhml.utils.dtypes import resolve_complex_dtype

__all__ = [
    "EnsembleKwargs",
    "build_lattice",
    "build_simulator",
    "ensemble_from_config",
    "lattice_from_config",
    "lattice_kwargs",
]


class EnsembleKwargs(TypedDict):
    """Keyword arguments shared by every element of a :class:`LatticeEnsemble`."""

    strip_spacing: float
    length: float
    half_width: float
    topology: str
    edge: str
    metric: str
    dtype: torch.dtype
    device: torch.device


def _chart(cfg: LatticeConfig) -> dict[str, Any]:
    """The strip chart of a ``lattice`` section (shared by every constructor)."""
    return dict(
        length=cfg.length,
        half_width=cfg.half_width,
        topology=cfg.topology,
        edge=cfg.edge,
        metric=cfg.metric,
    )


def build_lattice(
    cfg: LatticeConfig, device: torch.device | str = "cpu", dtype: torch.dtype = torch.complex64
) -> MobiusStrip | TokamakStack:
    """Build the ``lattice`` section: a :class:`MobiusStrip` if ``strips == 1``, else a
    :class:`TokamakStack`.

    Parameters
    ----------
    cfg
        The ``lattice`` section (grid, chart, topology, metric, geometry, twist).
    device, dtype
        Torch device and complex dtype of the lattice.
    """
    common: dict[str, Any] = dict(_chart(cfg), twist=cfg.twist, dtype=dtype, device=device)
    if cfg.strips == 1:
        return MobiusStrip(cfg.nu, cfg.nv, aspect=cfg.aspect, **common)
    return TokamakStack(
        cfg.strips,
        cfg.nu,
        cfg.nv,
        kappa=cfg.kappa,
        delta=cfg.delta,
        aspect=cfg.aspect,
        strip_spacing=cfg.strip_spacing,
        coupling_range=cfg.coupling_range,
        **common,
    )


def _device(cfg: HHmLConfig, device: torch.device | str | None) -> torch.device:
    return resolve_device(cfg.simulation.device) if device is None else torch.device(device)


def lattice_from_config(
    cfg: HHmLConfig, device: torch.device | str | None = None
) -> MobiusStrip | TokamakStack:
    """:func:`build_lattice` of ``cfg.lattice`` with dtype ``cfg.simulation.dtype``.

    Parameters
    ----------
    cfg
        The config.
    device
        Torch device; ``None`` resolves ``cfg.simulation.device`` (``auto`` → CUDA if
        available).
    """
    dtype = resolve_complex_dtype(cfg.simulation.dtype)
    return build_lattice(cfg.lattice, device=_device(cfg, device), dtype=dtype)


def lattice_kwargs(cfg: HHmLConfig, device: torch.device | str | None = None) -> EnsembleKwargs:
    """Keyword arguments of a :class:`LatticeEnsemble` for ``cfg`` other than the grid
    and the per-element geometry: ``LatticeEnsemble(B, lat.strips, lat.nu, lat.nv,
    **geometry, **lattice_kwargs(cfg, device))``.

    Parameters
    ----------
    cfg
        The config: ``lattice`` (chart, metric, strip spacing) and ``simulation.dtype``.
    device
        Torch device; ``None`` resolves ``cfg.simulation.device``.
    """
    lat = cfg.lattice
    return EnsembleKwargs(
        strip_spacing=lat.strip_spacing,
        length=lat.length,
        half_width=lat.half_width,
        topology=lat.topology,
        edge=lat.edge,
        metric=lat.metric,
        dtype=resolve_complex_dtype(cfg.simulation.dtype),
        device=_device(cfg, device),
    )


def ensemble_from_config(
    cfg: HHmLConfig,
    values: npt.ArrayLike | torch.Tensor,
    device: torch.device | str | None = None,
) -> LatticeEnsemble:
    """The :class:`LatticeEnsemble` of ``B`` environments with control values ``values``.

    Element ``b`` has the grid, chart, metric and strip spacing of ``cfg.lattice`` and
    the geometry and twist (the controls of :data:`~hhml.config.controls.LATTICE_CONTROLS`)
    of row ``b`` of ``values``.

    Parameters
    ----------
    cfg
        The config (``lattice`` and ``simulation.dtype``).
    values
        Control values ``[B, 23]`` in action order (``ControlMap.to_values``); only the
        lattice columns are read. A tensor is copied to the host.
    device
        Torch device; ``None`` resolves ``cfg.simulation.device``.

    Raises
    ------
    LatticeError
        ``values`` is not ``[B, 23]`` with ``B ≥ 1``, or a geometry is invalid.
    """
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != NUM_CONTROLS or arr.shape[0] < 1:
        raise LatticeError(
            f"control values have shape {arr.shape}; expected (B, {NUM_CONTROLS}) with B ≥ 1"
        )
    geometry: dict[str, Any] = {k: arr[:, CONTROL_INDEX[k]].copy() for k in LATTICE_CONTROLS}
    lat = cfg.lattice
    return LatticeEnsemble(
        arr.shape[0], lat.strips, lat.nu, lat.nv, **geometry, **lattice_kwargs(cfg, device)
    )


def build_simulator(cfg: HHmLConfig, batch: int | None = None) -> Simulator:
    """A :class:`Simulator` for the config (device ``auto`` resolves here)."""
    sim_cfg = cfg.simulation
    return Simulator(
        lattice_from_config(cfg),
        cfg.dynamics,
        dt=sim_cfg.dt,
        integrator=sim_cfg.integrator,
        seed=sim_cfg.seed,
        batch=batch,
        initial=sim_cfg.initial,
        initial_amplitude=sim_cfg.initial_amplitude,
        check_every=sim_cfg.check_every,
    )
