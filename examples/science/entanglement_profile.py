"""Entanglement profiles S(ℓ) of the critical Ising and XX chains with Calabrese–Cardy fits.

Peschel (correlation-matrix) entropies of periodic chains, fitted with
S(ℓ) = (c/3) ln[(L/π) sin(πℓ/L)] + c′; the exact-diagonalisation entropies of a small
chain are overlaid as a cross-check. Writes ``entanglement_profile.png`` to ``--out``.

    python examples/science/entanglement_profile.py --out results/science [--quick]
    python examples/science/entanglement_profile.py --out results/science sites=1024

``--help`` lists the ``key=value`` overrides.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from _common import Param, as_int, build_parser, parse_parameters, run

from hhml.core.tensor_networks import exact, free_fermions
from hhml.core.tensor_networks.central_charge import chord_log, fit_central_charge
from hhml.core.tensor_networks.entanglement import block_entropy_profile

#: Parameters (``key=value``): plain-run default, ``--quick`` value.
PARAMS = (
    Param("sites", 512, "sites L of the periodic chains (Peschel entropies)", 128, 2),
    Param("ed_sites", 14, "sites of the exact-diagonalisation cross-check", 10, 2),
)


def main(argv: list[str] | None = None) -> int:
    """Compute and fit both profiles; write ``entanglement_profile.png`` into ``--out``."""
    parser = build_parser(
        __doc__.splitlines()[0], PARAMS, Path("results/science"), "small chains (seconds)"
    )
    args, values = parse_parameters(parser, PARAMS, argv)
    L = as_int(values, "sites")
    L_ed = as_int(values, "ed_sites")
    ells = np.arange(1, L)
    profiles = {
        "Ising (g = 1)": (
            free_fermions.majorana_entropy_profile(
                free_fermions.ising_majorana_correlation(L), ells
            ),
            exact.ising_hamiltonian(L_ed),
            0.5,
        ),
        "XX": (
            free_fermions.hopping_entropy_profile(free_fermions.xx_correlation_matrix(L), ells),
            exact.xx_hamiltonian(L_ed),
            1.0,
        ),
    }
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (name, (s, h_ed, c_exact)) in zip(axes, profiles.items(), strict=True):
        fit = fit_central_charge(ells, s, L)
        x = chord_log(ells, L)
        ax.plot(x, s, ".", ms=3, label=f"Peschel, L = {L}")
        ax.plot(
            x,
            fit.central_charge / 3 * x + fit.offset,
            "-",
            lw=1,
            label=f"fit c = {fit.central_charge:.4f} (exact {c_exact})",
        )
        _, psi = exact.ground_state(h_ed)
        s_ed = block_entropy_profile(exact.site_major_state(psi, L_ed), L_ed)[1:-1]
        ax.plot(chord_log(np.arange(1, L_ed), L_ed), s_ed, "x", label=f"exact diag., L = {L_ed}")
        ax.set_xlabel(r"$\ln[(L/\pi)\sin(\pi\ell/L)]$")
        ax.set_ylabel(r"$S(\ell)$ [nats]")
        ax.set_title(name)
        ax.legend(fontsize=8)
        print(f"{name}: c = {fit.central_charge:.5f} ± {fit.stderr:.1e} (exact {c_exact})")
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "entanglement_profile.png"
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    run(main)
