"""HHmL — Holo-Harmonic Möbius Lattice.

Complex fields on Möbius-strip lattices, their topological vortices (phase
singularities), and the tools to simulate, detect and validate them.

Start here::

    import hhml

    strip = hhml.MobiusStrip(128, 32)                  # nu × nv nodes, Möbius seam
    params = hhml.FieldParams(diffusion=0.05, dispersion=0.03)
    sim = hhml.Simulator(strip, params, dt=0.05, seed=0)
    psi = sim.step(400)                                # complex [nu, nv]
    vortices = hhml.detect_vortices(psi, strip)        # positions, charges, depths
    hhml.plot_field(psi, strip, vortices).savefig("field.png")

    run = hhml.load_run("results/runs/<run id>")       # a training run's records

    cfg = hhml.load_config(None, ["lattice=small"])    # packaged config groups
    hhml.simulate(cfg, "results/sim1")                 # fields.h5 + config.yaml there

Command-line tools: ``hhml-train``, ``hhml-baselines``, ``hhml-analyze``,
``hhml-validate``, ``hhml-monitor``. The names below are imported on first use, so
``import hhml`` stays fast (torch is loaded only when a name needs it).

Public names: ``MobiusStrip``, ``TokamakStack``, ``FieldParams``, ``Simulator``,
``detect_vortices``, ``plot_field``, ``load_run``, ``load_config``, ``simulate``,
``__version__``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0.dev0"

#: Public name → module it lives in (imported lazily by :func:`__getattr__`).
_LAZY = {
    "MobiusStrip": "hhml.core.mobius",
    "TokamakStack": "hhml.core.mobius",
    "FieldParams": "hhml.config.schema",
    "Simulator": "hhml.core.resonance",
    "detect_vortices": "hhml.core.resonance",
    "plot_field": "hhml.plotting",
    "load_run": "hhml.analysis.loading",
    "load_config": "hhml.config",
    "simulate": "hhml.core.simulate",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hhml' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
