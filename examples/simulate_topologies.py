"""One field simulation per lattice topology, each drawn with ``hhml.plot_field``.

The same field equation, grid, time step and seed (the packaged ``default.yaml``: real
Ginzburg–Landau dynamics from small noise, flat metric) run on every topology of
:data:`hhml.core.mobius.TOPOLOGIES` — the Möbius band (seam ψ(u + L, v) ~ ψ(u, −v)), the
cylinder (the same strip glued without the flip) and the torus (periodic in v as well) —
and on a :class:`~hhml.TokamakStack` of three nested Möbius strips coupled through their
embedded distances (``dynamics.coupling = 0.1``). Writes to ``--out``:

- ``topologies.png``: one panel row per topology, each the figure of
  :func:`hhml.plot_field` (|ψ| and arg ψ in the chart, vortices ▲ q > 0, ▼ q < 0);
- ``field_<topology>.png``: the same figures one by one.

It prints the vortex numbers by sign per topology. On the torus (closed and orientable)
the net charge is 0; on the Möbius band a vortex crossing the seam changes sign in the
chart, so its net chart charge need not be.

Example::

    python examples/simulate_topologies.py --out results/topologies
    python examples/simulate_topologies.py --quick --out results/topologies
    python examples/simulate_topologies.py --out results/topologies dynamics.dispersion=1

Public names: ``rows``, ``simulate``, ``main``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
from matplotlib.backends.backend_agg import FigureCanvasAgg

import hhml
from hhml.config import load_config
from hhml.config.loader import packaged_config_root
from hhml.core.factory import build_simulator
from hhml.core.mobius import TOPOLOGIES
from hhml.errors import ConfigError, HHmLError

__all__ = ["main", "rows", "simulate"]

#: Settings shared by every row (flat metric: the torus has no embedding in R³).
COMMON = ("lattice.metric=flat", "lattice.edge=neumann")

#: ``--quick``: a 48 × 12 grid and 100 steps of dt = 0.05.
QUICK = ("lattice.nu=48", "lattice.nv=12", "simulation.steps=100")

#: The stack row: three nested Möbius strips that interact.
STACK = ("lattice.topology=mobius", "lattice.strips=3", "lattice.aspect=12",
         "dynamics.coupling=0.1")  # fmt: skip


def rows() -> list[tuple[str, tuple[str, ...]]]:
    """``(label, overrides)`` of each row: every topology, then the stack."""
    single = [(t, (f"lattice.topology={t}",)) for t in TOPOLOGIES]
    return [*single, ("stack of 3 Möbius strips", STACK)]


def simulate(overrides: Sequence[str]) -> tuple[Any, Any, Any, float]:
    """Run the packaged default config with ``overrides``.

    Returns
    -------
    psi : Tensor
        The final field, complex ``[nu, nv]`` (``[S, nu, nv]`` for a stack).
    lattice : MobiusStrip or TokamakStack
    vortices : VortexSet
        :func:`hhml.detect_vortices` of ``psi``.
    t : float
        The final time.

    Raises
    ------
    ConfigError
        An invalid override.
    """
    cfg = load_config(packaged_config_root() / "default.yaml", list(overrides))
    sim = build_simulator(cfg)
    psi = sim.step(cfg.simulation.steps)
    return psi, sim.lattice, hhml.detect_vortices(psi, sim.lattice), sim.t


def _pixels(fig: Any) -> npt.NDArray[np.uint8]:
    """The RGBA pixels ``[H, W, 4]`` of a matplotlib figure."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # type: ignore[no-untyped-call]
    return np.asarray(canvas.buffer_rgba(), dtype=np.uint8)  # type: ignore[no-untyped-call]


def main(argv: list[str] | None = None) -> int:
    """Simulate every row, write the figures; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/topologies"))
    parser.add_argument("--quick", action="store_true", help="48 × 12 grid, 100 steps")
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value", help="section.key=value overrides (all rows)"
    )
    args = parser.parse_intermixed_args(argv)
    prog = Path(sys.argv[0]).name
    args.out.mkdir(parents=True, exist_ok=True)
    images, labels = [], []
    for label, own in rows():
        overrides = [*COMMON, *(QUICK if args.quick else ()), *own, *args.overrides]
        try:
            psi, lattice, vortices, t = simulate(overrides)
        except ConfigError as exc:
            print(f"{prog}: error: {label}: {exc}", file=sys.stderr)
            return 2
        except HHmLError as exc:
            print(f"{prog}: error: {label}: {exc}", file=sys.stderr)
            return 1
        fig = hhml.plot_field(psi, lattice, vortices)
        name = label.split()[0]
        fig.savefig(args.out / f"field_{name}.png", dpi=100)
        images.append(_pixels(fig))
        positive = int((vortices.charge > 0).sum())
        negative = int((vortices.charge < 0).sum())
        labels.append(f"{label}: t = {t:g}, net chart charge {positive - negative:+d}")
        print(f"{label:<26} {positive:4d} vortices q > 0, {negative:4d} q < 0 at t = {t:g}")
    heights = [img.shape[0] for img in images]
    fig, axes = plt.subplots(
        len(images),
        1,
        figsize=(10, sum(heights) / 100 + 0.4 * len(images)),
        gridspec_kw={"height_ratios": heights},
        layout="constrained",
    )
    for ax, img, label in zip(axes, images, labels, strict=True):
        ax.imshow(img)
        ax.set_axis_off()
        ax.set_title(label, fontsize=11, loc="left")
    path = args.out / "topologies.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path} and field_<topology>.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
