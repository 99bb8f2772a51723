"""Validation checks of the HaPPY code (group ``tensor-networks`` of ``hhml-validate``).

* ``tn-perfect-tensor``: the [[5,1,3]] six-leg tensor is perfect (every 3 | 3 reshape is
  proportional to a unitary) and its dense form is stabilized by the binary generators.
* ``tn-ryu-takayanagi``: min-cut entropies of all contiguous boundary intervals equal the exact
  stabilizer-rank entropies (bulk legs traced); with the bulk fixed to ``|0̄>`` the stabilizer
  entropy is never above the min cut (the intervals where it is below are reported).
* ``tn-mutual-information-monogamy`` (a code check, not a physics test): ``I3 <= 0`` for
  min-cut entropies of random interval triples. Monogamy holds for the minimal cuts of any
  graph (Hayden, Headrick, Maloney 2013), so a violation can only come from a wrong
  max-flow/min-cut computation; the id is kept for compatibility.

Public names: :data:`CHECKS`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import torch

from hhml.core.tensor_networks.happy import (
    FIVE_QUBIT_LOGICALS,
    FIVE_QUBIT_STABILIZERS,
    pauli_matrix,
    pentagon_tiling,
    perfect_tensor,
    perfect_tensor_deviation,
)
from hhml.core.tensor_networks.mincut import (
    MinCutEntropy,
    contiguous_intervals,
    random_interval_triples,
    tripartite_information,
)
from hhml.core.tensor_networks.stabilizer import (
    happy_state,
    perfect_tensor_stabilizers,
    stabilizer_entropy,
)
from hhml.validation.checks import CheckResult


def check_perfect_tensor(quick: bool, device: torch.device) -> CheckResult:
    """[[5,1,3]] tensor: every 3|3 split maximally entangled (8x8 reshape ∝ unitary)."""
    del quick, device  # a 64-entry tensor: same work in both modes, numpy on CPU
    tensor = perfect_tensor()
    deviation = perfect_tensor_deviation(tensor)
    isometry = tensor.reshape(2, 32)
    iso_err = float(np.max(np.abs(isometry.conj() @ isometry.T - np.eye(2))))
    state = tensor.reshape(64) / np.sqrt(2)
    words = ["I" + g for g in FIVE_QUBIT_STABILIZERS]
    words += ["X" + FIVE_QUBIT_LOGICALS[0], "Z" + FIVE_QUBIT_LOGICALS[1]]
    stab_err = max(float(np.max(np.abs(pauli_matrix(w) @ state - state))) for w in words)
    gens = perfect_tensor_stabilizers()
    rank_entropies = [
        stabilizer_entropy(gens, legs) for legs in itertools.combinations(range(6), 3)
    ]
    measured = max(deviation, iso_err, stab_err)
    return CheckResult(
        name="tn-perfect-tensor",
        description=(
            "[[5,1,3]] encoding tensor: max over the 20 3|3 splits of |M M^†/c - 1|, isometry "
            "error, dense-vs-binary stabilizer error; stabilizer-rank entropy of every 3 legs"
        ),
        measured=measured,
        reference="0 (perfect tensor); S = 3 ln 2 for every 3 legs",
        tolerance="<= 1e-12 and all 3-leg entropies = 3",
        passed=measured <= 1e-12 and all(s == 3 for s in rank_entropies),
        details={
            "unitarity_deviation": deviation,
            "isometry_error": iso_err,
            "stabilizer_error": stab_err,
            "three_leg_entropies_ln2": sorted(set(rank_entropies)),
        },
    )


def check_ryu_takayanagi(quick: bool, device: torch.device) -> CheckResult:
    """HaPPY RT: min-cut = stabilizer-rank entropy for every contiguous boundary interval."""
    del device
    layer_sets = [1] if quick else [1, 2]
    details: dict[str, object] = {}
    worst = 0
    n_checked = 0
    inequality_ok = True
    for layers in layer_sets:
        tiling = pentagon_tiling(layers)
        intervals = contiguous_intervals(tiling.n_boundary)
        for bulk in ("traced", "fixed"):
            state = happy_state(tiling, bulk)
            cut = MinCutEntropy(tiling, bulk)
            diffs = np.array([cut(iv) - state.entropy(iv) for iv in intervals])
            mismatched_lengths = sorted(
                {len(iv) for iv, d in zip(intervals, diffs, strict=True) if d != 0}
            )
            gaps, gap_counts = np.unique(diffs, return_counts=True)
            details[f"layers{layers}_{bulk}"] = {
                "pentagons": tiling.n_tensors,
                "boundary_legs": tiling.n_boundary,
                "intervals": len(intervals),
                "equal": int(np.sum(diffs == 0)),
                "max_mincut_minus_S": int(diffs.max()),
                "min_mincut_minus_S": int(diffs.min()),
                "count_by_mincut_minus_S": {
                    str(int(g)): int(c) for g, c in zip(gaps, gap_counts, strict=True)
                },
                "mismatched_lengths": mismatched_lengths,
            }
            inequality_ok &= bool(diffs.min() >= 0)
            if bulk == "traced":
                worst = max(worst, int(np.abs(diffs).max()))
                n_checked += len(intervals)
    return CheckResult(
        name="tn-ryu-takayanagi",
        description=(
            "HaPPY pentagon code on {5,4} patches: min-cut (max-flow) vs exact stabilizer-rank "
            "entropy of all contiguous boundary intervals, bulk legs traced; with bulk fixed "
            f"to |0̄> S <= min-cut ({n_checked} traced intervals)"
        ),
        measured=float(worst),
        reference="S(A) = |γ_A| ln 2 (Pastawski et al. 2015)",
        tolerance="max |min-cut - S| = 0 (traced bulk) and S <= min-cut (fixed bulk)",
        passed=worst == 0 and inequality_ok,
        details=details,
    )


def check_mutual_information_monogamy(quick: bool, device: torch.device) -> CheckResult:
    """Code check of the min-cut solver: I3(A:B:C) <= 0 for its entropies.

    Monogamy of mutual information holds for minimal cuts on every graph (a theorem), so
    this tests the max-flow/min-cut implementation, not the physics of the HaPPY code.
    """
    del device
    rng = np.random.default_rng(20150424)
    count = 200 if quick else 1000
    details: dict[str, object] = {}
    worst = -np.inf
    for layers in ([1, 2] if quick else [1, 2, 3]):
        tiling = pentagon_tiling(layers)
        for bulk in ("fixed", "traced"):
            cut = MinCutEntropy(tiling, bulk)
            triples = random_interval_triples(tiling.n_boundary, count, rng)
            i3 = np.array([tripartite_information(cut, a, b, c) for a, b, c in triples])
            details[f"layers{layers}_{bulk}"] = {
                "triples": count,
                "max_I3": float(i3.max()),
                "fraction_I3_negative": float(np.mean(i3 < 0)),
            }
            worst = max(worst, float(i3.max()))
    return CheckResult(
        name="tn-mutual-information-monogamy",
        description="code check of the min-cut solver, not of physics (monogamy holds for "
        "the min cuts of any graph): max I3(A:B:C) over random disjoint boundary-interval "
        "triples, min-cut S",
        measured=float(worst),
        reference="I3 <= 0 for any min-cut entropy (Hayden, Headrick, Maloney 2013)",
        tolerance="max I3 <= 0",
        passed=worst <= 0,
        details=details,
    )


CHECKS: dict[str, Callable[[bool, torch.device], CheckResult]] = {
    "tn-perfect-tensor": check_perfect_tensor,
    "tn-ryu-takayanagi": check_ryu_takayanagi,
    "tn-mutual-information-monogamy": check_mutual_information_monogamy,
}
