"""HaPPY code on a {5,4} tiling: the tensor network and Ryu–Takayanagi entropies of intervals.

Draws the pentagon patch in the Poincaré disk (bonds between pentagon centres, dangling
boundary legs) and the entropy S(l) of contiguous boundary intervals against their length:
the min-cut (RT) value and the exact stabilizer-rank value, with the bulk legs traced and fixed
to the logical |0̄>.

Usage::

    python examples/science/happy_rt.py --out figures/ [--quick] [--layers 2]
    python examples/science/happy_rt.py --out figures/ layers=3

``--layers N`` and ``layers=N`` are the same setting; either wins over ``--quick``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from _common import Param, as_int, build_parser, parse_parameters, run
from matplotlib.axes import Axes
from matplotlib.patches import Circle

from hhml.core.tensor_networks.happy import HaPPYTiling, pentagon_tiling
from hhml.core.tensor_networks.mincut import MinCutEntropy, interval_profile
from hhml.core.tensor_networks.stabilizer import happy_state


def draw_tiling(tiling: HaPPYTiling, ax: Axes) -> None:
    """Pentagons (outlines), bonds between centres, and dangling legs, in the Poincaré disk."""
    ax.add_patch(Circle((0, 0), 1, fill=False, color="0.6", lw=0.8))
    for face in tiling.faces:
        z = tiling.vertices[[*list(face), face[0]]]
        ax.plot(z.real, z.imag, color="0.75", lw=0.6)
    for f, g in tiling.bonds:
        c = tiling.centers[[f, g]]
        ax.plot(c.real, c.imag, color="C0", lw=1.0)
    for f, v0, v1 in tiling.boundary_legs:
        mid = 0.5 * (tiling.vertices[v0] + tiling.vertices[v1])
        c = tiling.centers[f]
        ax.plot([c.real, mid.real], [c.imag, mid.imag], color="C3", lw=0.8)
    ax.scatter(tiling.centers.real, tiling.centers.imag, s=12, c=tiling.face_layer, cmap="viridis")
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(
        f"{{5,4}} HaPPY patch: {tiling.n_tensors} tensors, {tiling.n_boundary} boundary legs"
    )


#: Parameters (``key=value``): plain-run default, ``--quick`` value.
PARAMS = (Param("layers", 2, "vertex layers of the tiling", quick=1, minimum=1),)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, compute the profiles and write ``happy_rt.png``."""
    parser = build_parser(__doc__.splitlines()[0], PARAMS, Path("."), "one layer (fast)")
    parser.add_argument("--layers", type=int, default=None, help="vertex layers of the tiling")
    args, values = parse_parameters(parser, PARAMS, argv)
    layers = as_int(values, "layers")
    tiling = pentagon_tiling(layers)
    n = tiling.n_boundary

    fig, (ax_t, ax_s) = plt.subplots(1, 2, figsize=(12, 5.5))
    draw_tiling(tiling, ax_t)
    for bulk, colour in (("traced", "C0"), ("fixed", "C1")):
        cut = MinCutEntropy(tiling, bulk)  # type: ignore[arg-type]
        state = happy_state(tiling, bulk)  # type: ignore[arg-type]
        lengths, mean_cut, lo, hi = interval_profile(cut, n)
        _, mean_stab, _, _ = interval_profile(state.entropy, n)
        ax_s.fill_between(lengths, lo, hi, color=colour, alpha=0.2)
        ax_s.plot(lengths, mean_cut, color=colour, label=f"min-cut, bulk {bulk}")
        ax_s.plot(lengths, mean_stab, "o", ms=3, color=colour, label=f"stabilizer, bulk {bulk}")
        print(
            f"bulk {bulk}: max |min-cut - S| averaged per length = "
            f"{np.max(np.abs(mean_cut - mean_stab)):.3f}"
        )
    ax_s.set_xlabel("interval length l (boundary legs)")
    ax_s.set_ylabel("S(l) / ln 2")
    ax_s.set_title("RT entropy of contiguous intervals (band: min–max over starts)")
    ax_s.legend(fontsize=8)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "happy_rt.png"
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    run(main)
