"""Build lattices and simulators from a validated :class:`~hhml.config.HHmLConfig`.

Public names: :func:`build_lattice`, :func:`build_simulator`.
"""

from __future__ import annotations

import torch

from hhml.config.schema import HHmLConfig, LatticeConfig
from hhml.core.mobius import MobiusStrip, TokamakStack
from hhml.core.resonance.simulator import Simulator
from hhml.utils.device import resolve_device
from hhml.utils.dtypes import resolve_complex_dtype


def build_lattice(
    cfg: LatticeConfig, device: torch.device | str = "cpu", dtype: torch.dtype = torch.complex64
) -> MobiusStrip | TokamakStack:
    """Build the ``lattice`` section: a :class:`MobiusStrip` if ``strips == 1``, else a
    :class:`TokamakStack`."""
    common = dict(
        length=cfg.length,
        half_width=cfg.half_width,
        topology=cfg.topology,
        edge=cfg.edge,
        twist=cfg.twist,
        metric=cfg.metric,
        dtype=dtype,
        device=device,
    )
    if cfg.strips == 1:
        return MobiusStrip(cfg.nu, cfg.nv, aspect=cfg.aspect, **common)  # type: ignore[arg-type]
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


def build_simulator(cfg: HHmLConfig, batch: int | None = None) -> Simulator:
    """A :class:`Simulator` for the config (device ``auto`` resolves here)."""
    sim_cfg = cfg.simulation
    device = resolve_device(sim_cfg.device)
    dtype = resolve_complex_dtype(sim_cfg.dtype)
    lattice = build_lattice(cfg.lattice, device=device, dtype=dtype)
    return Simulator(
        lattice,
        cfg.dynamics,
        dt=sim_cfg.dt,
        integrator=sim_cfg.integrator,
        seed=sim_cfg.seed,
        batch=batch,
        initial=sim_cfg.initial,
        initial_amplitude=sim_cfg.initial_amplitude,
        check_every=sim_cfg.check_every,
    )
