"""Topology controls: the same lattice with cylinder and torus identifications.

The Möbius seam flip is the one thing the controls change: a control lattice
has the same grid, length, width, edge rule, twist, metric and dtype, and the
analysis runs with the same parameters and seeds. Per-branch quantities of two
topologies (Lyapunov exponents, final fidelities) are compared with
:func:`.statistics.compare_samples` (Mann–Whitney U with the rank-biserial
effect size, and a permutation test of the difference of means).

The branches of one run descend from one snapshot per topology, so such a test
compares the two branch ensembles of those snapshots; a statement about the
topologies in general needs repetitions over independent seeds, with the
snapshot as the unit.

Public names: :data:`CONTROL_TOPOLOGIES`, :func:`with_topology`, :func:`compare_topologies`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from hhml.analysis.dark_matter.statistics import GroupComparison, compare_samples
from hhml.core.mobius import TOPOLOGIES, LatticeEnsemble, MobiusStrip, TokamakStack
from hhml.errors import LatticeError

__all__ = ["CONTROL_TOPOLOGIES", "compare_topologies", "with_topology"]

#: The topologies the analysis runs on: the Möbius band and its two controls.
CONTROL_TOPOLOGIES = ("mobius", "cylinder", "torus")

FloatArray = NDArray[np.float64]


def with_topology(lattice: MobiusStrip | TokamakStack, topology: str) -> MobiusStrip | TokamakStack:
    """A copy of ``lattice`` with another seam identification (everything else equal)."""
    if topology not in TOPOLOGIES:
        raise LatticeError(
            f"topology = {topology!r} is not valid; choose one of "
            + ", ".join(repr(t) for t in TOPOLOGIES)
        )
    if isinstance(lattice, LatticeEnsemble):
        raise LatticeError("with_topology: a LatticeEnsemble cannot be used for branching")
    if isinstance(lattice, TokamakStack):
        s = lattice.strip
        return TokamakStack(
            lattice.num_strips,
            lattice.nu,
            lattice.nv,
            kappa=lattice.kappa,
            delta=lattice.delta,
            aspect=lattice.aspect,
            strip_spacing=lattice.strip_spacing,
            coupling_range=lattice.coupling_range,
            length=s.length,
            half_width=s.half_width,
            topology=topology,
            edge=s.edge,
            twist=s.twist,
            metric=s.metric,
            dtype=s.dtype,
            device=s.device,
        )
    if not isinstance(lattice, MobiusStrip):
        raise LatticeError(
            f"lattice must be a MobiusStrip or TokamakStack, got {type(lattice).__name__}"
        )
    args = lattice.state_dict()
    args["topology"] = topology
    return MobiusStrip(
        **args, dtype=lattice.dtype, device=lattice.device, centreline=lattice.centreline
    )


def compare_topologies(
    samples: Mapping[str, Mapping[str, FloatArray]],
    primary: str,
    *,
    n_boot: int = 1000,
    n_permutations: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, GroupComparison]]:
    """Compare per-branch quantities of ``primary`` with every other topology.

    Parameters
    ----------
    samples
        ``{topology: {quantity: values [N]}}``.
    primary
        The topology the others are compared with (group ``a``).
    n_boot, n_permutations, confidence, seed
        Settings of :func:`.statistics.compare_samples`.

    Returns
    -------
    dict
        ``{"<primary>_vs_<other>": {quantity: GroupComparison}}``.
    """
    if primary not in samples:
        raise LatticeError(f"primary topology {primary!r} is not among {sorted(samples)}")
    out: dict[str, dict[str, GroupComparison]] = {}
    for k, (other, values) in enumerate(samples.items()):
        if other == primary:
            continue
        key = f"{primary}_vs_{other}"
        out[key] = {}
        for j, (quantity, a) in enumerate(samples[primary].items()):
            if quantity not in values:
                raise LatticeError(f"quantity {quantity!r} missing for topology {other!r}")
            out[key][quantity] = compare_samples(
                a,
                values[quantity],
                quantity=quantity,
                labels=(primary, other),
                n_boot=n_boot,
                n_permutations=n_permutations,
                confidence=confidence,
                seed=seed + 100 * k + j,
            )
    return out
