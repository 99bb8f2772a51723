"""Entanglement profile of the simulated field's boundary circle (`holography` helper).

Simulates a complex Ginzburg–Landau field on a Möbius strip, samples the band's single
boundary circle (row v = −w followed, through the seam, by row v = +w: 2·nu sites) at
several times, and passes the samples to
:func:`hhml.core.tensor_networks.holography.boundary_entanglement`, which turns their
two-point function into a translation-invariant free-fermion state and reports S(ℓ) with
a Calabrese–Cardy fit. Writes ``boundary_entanglement.png`` to ``--out``.

This is an analysis of the field's boundary correlations; it makes no claim about gravity.
The fitted c means something only where S(ℓ) grows logarithmically: the "spectral"
construction (fractional occupations) grows faster than logarithmically here, so its fit
is shown only to make that visible; the "fermi_sea" construction fills the N/2 strongest
modes (a Slater determinant), whose c is half its number of Fermi points (Widom): 1 only
when the strong modes form one contiguous band. The script prints that expected value next
to the fit; on the full-size 256-site ring the strong modes are fragmented and c is large.

Example::

    python examples/science/boundary_entanglement.py --out results/science --quick
    python examples/science/boundary_entanglement.py --out results/science samples=64

``--help`` lists the ``key=value`` overrides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from _common import Param, as_float, as_int, build_parser, parse_parameters, run

from hhml.config import FieldParams
from hhml.core.mobius import MobiusStrip
from hhml.core.resonance import Simulator
from hhml.core.resonance.forcing import boundary_cells
from hhml.core.tensor_networks.central_charge import chord_log
from hhml.core.tensor_networks.holography import boundary_entanglement, occupation_jumps

#: Parameters (``key=value``): plain-run default, ``--quick`` value.
PARAMS = (
    Param("nu", 128, "grid points along the strip (the circle has 2·nu sites)", 64, 2),
    Param("nv", 12, "grid points across the strip", minimum=2),
    Param("samples", 32, "field samples of the boundary circle", 8, 1),
    Param("dt", 0.025, "time step (rk4; the 128-point strip needs dt ≤ 0.0268)", 0.05, 1e-4),
    Param("interval", 2.0, "time between samples (at least one step)", minimum=0.05),
    Param("transient", 20.0, "time simulated before the first sample", minimum=0.0),
    Param("seed", 0, "seed of the initial field", minimum=0),
)


def main(argv: list[str] | None = None) -> int:
    """Simulate, sample the boundary circle, write ``boundary_entanglement.png``."""
    parser = build_parser(
        __doc__.split("\n\n")[0], PARAMS, Path("results/science"), "smaller strip, fewer samples"
    )
    args, values = parse_parameters(parser, PARAMS, argv)
    nu, samples = as_int(values, "nu"), as_int(values, "samples")
    interval = as_float(values, "interval")
    lattice = MobiusStrip(nu, as_int(values, "nv"), edge="neumann")
    params = FieldParams(diffusion=0.02, dispersion=0.05, nonlinear_frequency=0.5)
    sim = Simulator(lattice, params, dt=as_float(values, "dt"), seed=as_int(values, "seed"))
    sim.run(as_float(values, "transient"))  # leave the initial transient
    ii, jj, _ = boundary_cells(lattice)
    rows = []
    for _ in range(samples):
        sim.run(sim.t + interval)
        rows.append(sim.psi.numpy()[ii, jj])
    ring = np.asarray(rows)  # [T, 2·nu], ordered along the boundary circle
    args.out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    occupations: tuple[tuple[Literal["spectral", "fermi_sea"], str], ...] = (
        ("spectral", "C0"),
        ("fermi_sea", "C1"),
    )
    for occupation, colour in occupations:
        prof = boundary_entanglement(ring, "field", occupation=occupation)
        x = chord_log(prof.lengths, prof.n_sites)
        ax.plot(x, prof.entropies, "o", ms=3, color=colour, label=f"{occupation}")
        if prof.fit is not None:
            c, c0 = prof.fit.central_charge, prof.fit.offset
            ax.plot(x, c / 3 * x + c0, "-", color=colour, lw=1,
                    label=f"Calabrese–Cardy fit: c = {c:.3f} ± {prof.fit.stderr:.3f}")  # fmt: skip
            expected = (
                f" (Fermi points: {occupation_jumps(ring)}, expected c = "
                f"{occupation_jumps(ring) / 2:g})"
                if occupation == "fermi_sea"
                else ""
            )
            print(f"{occupation}: c = {c:.4f} ± {prof.fit.stderr:.4f}{expected}")
    ax.set_xlabel("ln[(N/π) sin(πℓ/N)]")
    ax.set_ylabel("S(ℓ) (nats)")
    ax.set_title(f"boundary circle of a Möbius field ({2 * nu} sites, {samples} samples)")
    ax.legend(fontsize=8)
    ax.text(0.98, 0.03, "a fitted c is meaningful only where S(ℓ) is linear here",
            transform=ax.transAxes, ha="right", fontsize=7, color="grey")  # fmt: skip
    fig.tight_layout()
    fig.savefig(args.out / "boundary_entanglement.png", dpi=110)
    return 0


if __name__ == "__main__":
    run(main)
