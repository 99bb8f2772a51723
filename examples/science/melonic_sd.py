"""Melonic Schwinger–Dyson equation of colored tensor models: G(λλ̄) and its critical point.

Solves G = 1 + z G^{D+1} (z = λλ̄) on the branch G(0) = 1 by root finding and by the
Fuss–Catalan series (:mod:`hhml.core.gft.colored_tensors`) and writes ``melonic_sd.png`` to
``--out``: G(z) for several D with the critical points (z_c, G_c), and the square-root
singularity G_c − G ∝ (z_c − z)^{1/2} on log–log axes.

Example::

    python examples/science/melonic_sd.py --out results/gft --quick
    python examples/science/melonic_sd.py --out results/gft points=500 series_terms=800

``--help`` lists the ``key=value`` overrides.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from _common import Param, as_int, build_parser, parse_parameters, run

from hhml.core.gft.colored_tensors import (
    critical_coupling,
    critical_two_point,
    fit_susceptibility_exponent,
    melonic_two_point,
    melonic_two_point_series,
)
from hhml.errors import HHmLError

#: Parameters (``key=value``): plain-run default, ``--quick`` value.
PARAMS = (
    Param("points", 200, "points of each G(z) curve", quick=40, minimum=2),
    Param("series_terms", 400, "terms of the Fuss–Catalan series", minimum=1),
)


def main(argv: list[str] | None = None) -> int:
    """Solve the melonic equation for D = 2, 3, 4; write ``melonic_sd.png``."""
    parser = build_parser(__doc__.split("\n\n")[0], PARAMS, Path("results/gft"), "fewer points")
    args, values = parse_parameters(parser, PARAMS, argv)
    dims = (2, 3, 4)
    n = as_int(values, "points")
    terms = as_int(values, "series_terms")
    args.out.mkdir(parents=True, exist_ok=True)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    try:
        for D in dims:
            zc, gc = critical_coupling(D), critical_two_point(D)
            z = np.linspace(-0.5 * zc, zc, n)
            g = np.array([melonic_two_point(float(x), D) for x in z])
            zs = z[:: max(1, n // 10)]
            gs = [melonic_two_point_series(float(x), D, terms) for x in zs[zs < 0.95 * zc]]
            (line,) = ax.plot(z, g, label=f"D={D}")
            ax.plot(zs[zs < 0.95 * zc], gs, "o", color=line.get_color(), ms=4)
            ax.plot([zc], [gc], "*", color=line.get_color(), ms=12)
            fit = fit_susceptibility_exponent(D, zc * np.logspace(-12, -1, 23))
            ax2.loglog(
                fit.dz / zc,
                fit.gap,
                "o-",
                color=line.get_color(),
                ms=3,
                label=f"D={D}: γ = {fit_susceptibility_exponent(D).exponent:.6f}",
            )
    except HHmLError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    ax.set_xlabel("z = λλ̄")
    ax.set_ylabel("G(z)")
    ax.set_title("melonic 2-point function (lines: root; dots: series; ★: (z_c, G_c))")
    ax.legend()
    ax2.set_xlabel("(z_c − z)/z_c")
    ax2.set_ylabel("G_c − G")
    ax2.set_title("square-root singularity")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(args.out / "melonic_sd.png", dpi=120)
    plt.close(fig)
    print(f"wrote {args.out}/melonic_sd.png")
    return 0


if __name__ == "__main__":
    run(main)
