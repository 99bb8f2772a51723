"""Stabilizer states in the binary symplectic picture, and the exact entropies of the HaPPY state.

A stabilizer group on ``N`` qubits with ``k`` independent generators is stored as a ``uint8``
matrix of shape ``(k, 2N)``: row ``[x | z]`` stands for the Pauli ``X^x Z^z`` (signs are dropped;
entropies do not depend on them). The entropy of a region ``A`` is (Fattal et al. 2004,
Hamma et al. 2005)

    S(A) = (|A| - dim S_A) ln 2,     dim S_A = k - rank(G restricted to the complement of A),

where ``S_A`` is the subgroup of elements supported inside ``A`` and ranks are over GF(2).
All entropies here are returned in units of ``ln 2`` (integers).

The HaPPY network is itself a stabilizer state: each pentagon contributes the Choi state of the
[[5,1,3]] encoding isometry (six qubits: the bulk leg and five in-plane legs), and contracting two
legs is projecting them onto the Bell state (stabilizers ``XX``, ``ZZ``) and discarding them.
The bulk legs are either

* ``bulk="fixed"``: projected onto ``|0>``, i.e. every pentagon encodes the logical ``|0̄>`` and
  the boundary state is pure; or
* ``bulk="traced"``: kept as reference qubits and traced out, i.e. a maximally mixed logical
  input; the boundary state is then mixed.

Public names: :func:`pauli_to_binary`, :func:`gf2_rank`, :func:`stabilizer_entropy`,
:func:`perfect_tensor_stabilizers`, :func:`project_and_discard`, :class:`HaPPYState`,
:func:`happy_state`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from hhml.core.tensor_networks.happy import (
    FIVE_QUBIT_LOGICALS,
    FIVE_QUBIT_STABILIZERS,
    HaPPYTiling,
)
from hhml.errors import ValidationError

BinaryMatrix = NDArray[np.uint8]


def pauli_to_binary(words: Sequence[str]) -> BinaryMatrix:
    """Binary symplectic rows ``[x | z]`` of Pauli strings of equal length.

    Parameters
    ----------
    words : sequence of str
        Letters ``IXYZ`` (``Y`` has ``x = z = 1``).

    Returns
    -------
    ndarray, shape (len(words), 2N), uint8
    """
    if not words or len({len(w) for w in words}) != 1:
        raise ValidationError(f"Pauli words {list(words)!r} must be non-empty and equally long")
    n = len(words[0])
    out = np.zeros((len(words), 2 * n), dtype=np.uint8)
    for r, w in enumerate(words):
        for q, c in enumerate(w):
            if c not in "IXYZ":
                raise ValidationError(f"Pauli word {w!r} has letter {c!r}; valid: I, X, Y, Z")
            out[r, q] = c in "XY"
            out[r, n + q] = c in "YZ"
    return out


def _row_reduce(mat: BinaryMatrix) -> BinaryMatrix:
    """Independent rows spanning the same GF(2) row space (echelon form)."""
    m = mat.copy() % 2
    rank = 0
    rows, cols = m.shape
    for c in range(cols):
        if rank == rows:
            break
        pivots = np.nonzero(m[rank:, c])[0]
        if pivots.size == 0:
            continue
        p = rank + int(pivots[0])
        if p != rank:
            m[[rank, p]] = m[[p, rank]]
        flip = np.nonzero(m[:, c])[0]
        flip = flip[flip != rank]
        m[flip] ^= m[rank]
        rank += 1
    reduced: BinaryMatrix = m[:rank]
    return reduced


def gf2_rank(mat: BinaryMatrix) -> int:
    """Rank of a binary matrix over GF(2)."""
    if mat.size == 0:
        return 0
    return int(_row_reduce(mat).shape[0])


def _columns(qubits: Sequence[int] | NDArray[np.int64], n_qubits: int) -> NDArray[np.int64]:
    q = np.asarray(qubits, dtype=np.int64)
    return np.concatenate([q, q + n_qubits])


def stabilizer_entropy(generators: BinaryMatrix, region: Sequence[int]) -> int:
    """Entropy ``S(A)`` in units of ``ln 2`` of the stabilizer state with these generators.

    Parameters
    ----------
    generators : ndarray, shape (k, 2N), uint8
        Independent generators (``k = N`` for a pure state, ``k < N`` for a mixed one).
    region : sequence of int
        Qubits of ``A``.

    Returns
    -------
    int
        ``|A| - dim S_A`` with ``dim S_A = k - rank(G restricted to the complement)``.
    """
    n = generators.shape[1] // 2
    region_set = set(int(a) for a in region)
    if any(not 0 <= a < n for a in region_set):
        raise ValidationError(f"region {sorted(region_set)} has qubits outside 0..{n - 1}")
    complement = [q for q in range(n) if q not in region_set]
    k = generators.shape[0]
    dim_sub = k - gf2_rank(generators[:, _columns(complement, n)])
    return int(len(region_set) - dim_sub)


def perfect_tensor_stabilizers() -> BinaryMatrix:
    """Stabilizers of the six-qubit Choi state of the [[5,1,3]] encoding isometry.

    Qubit 0 is the bulk leg. Generators: the four code stabilizers on qubits 1..5 and
    ``X ⊗ X̄``, ``Z ⊗ Z̄``.

    Returns
    -------
    ndarray, shape (6, 12), uint8
    """
    words = ["I" + g for g in FIVE_QUBIT_STABILIZERS]
    words += ["X" + FIVE_QUBIT_LOGICALS[0], "Z" + FIVE_QUBIT_LOGICALS[1]]
    return pauli_to_binary(words)


def project_and_discard(
    generators: BinaryMatrix, measured: Sequence[int], projector_group: BinaryMatrix
) -> BinaryMatrix:
    """Project qubits onto a stabilizer state and discard them.

    The post-measurement group is generated by the elements of the old group that commute with
    every element of ``projector_group`` (found by symplectic Gaussian elimination) together with
    ``projector_group``; because ``projector_group`` is maximal on the measured qubits, the
    surviving elements restricted to the other qubits generate the new state's group.

    Parameters
    ----------
    generators : ndarray, shape (k, 2N), uint8
    measured : sequence of int
        The ``m`` measured qubits.
    projector_group : ndarray, shape (m, 2m), uint8
        Generators of the stabilizer state projected onto, in the order of ``measured``.

    Returns
    -------
    ndarray, shape (k', 2(N - m)), uint8
        Independent generators on the remaining qubits (in increasing order).

    Raises
    ------
    ValidationError
        If a pure input does not stay pure (inconsistent generators).
    """
    n = generators.shape[1] // 2
    m = len(measured)
    if projector_group.shape != (m, 2 * m):
        raise ValidationError(
            f"projector_group shape {projector_group.shape} must be ({m}, {2 * m})"
        )
    meas = np.asarray(measured, dtype=np.int64)
    # embed the projector group into N qubits
    h = np.zeros((m, 2 * n), dtype=np.uint8)
    h[:, meas] = projector_group[:, :m]
    h[:, meas + n] = projector_group[:, m:]
    g = generators.copy()
    # symplectic products <g_r, h_s> = x_g.z_h + z_g.x_h mod 2
    comm = (g[:, :n].astype(np.int64) @ h[:, n:].T + g[:, n:].astype(np.int64) @ h[:, :n].T) % 2
    comm = comm.astype(np.uint8)
    alive = np.ones(g.shape[0], dtype=bool)
    for s in range(m):
        rows = np.nonzero(alive & (comm[:, s] == 1))[0]
        if rows.size == 0:
            continue
        pivot, others = rows[0], rows[1:]
        g[others] ^= g[pivot]
        comm[others] ^= comm[pivot]
        alive[pivot] = False
    keep = np.setdiff1d(np.arange(n), meas)
    reduced = _row_reduce(g[alive][:, _columns(keep, n)])
    # a pure state stays pure: one generator per remaining qubit
    if generators.shape[0] == n and reduced.shape[0] != keep.size:
        raise ValidationError(
            f"projection left {reduced.shape[0]} generators on {keep.size} qubits"
        )
    return reduced


@dataclass
class HaPPYState:
    """Stabilizer description of a contracted HaPPY network.

    Attributes
    ----------
    generators : ndarray, shape (k, 2N), uint8
        Independent generators on the ``N`` kept qubits: the boundary legs first (in the
        tiling's boundary order), then, for ``bulk="traced"``, one bulk qubit per pentagon.
    n_boundary : int
        Number of boundary qubits.
    bulk : {"fixed", "traced"}
        How the bulk legs were treated (see the module docstring).
    """

    generators: BinaryMatrix
    n_boundary: int
    bulk: Literal["fixed", "traced"]

    def entropy(self, region: Sequence[int]) -> int:
        """``S(A)`` in units of ``ln 2`` of boundary legs ``region`` (bulk traced out)."""
        if any(not 0 <= a < self.n_boundary for a in region):
            raise ValidationError(
                f"region {list(region)} must be boundary legs 0..{self.n_boundary - 1}"
            )
        return stabilizer_entropy(self.generators, region)


def happy_state(tiling: HaPPYTiling, bulk: Literal["fixed", "traced"] = "fixed") -> HaPPYState:
    """Contract the HaPPY network on ``tiling`` in the stabilizer formalism.

    Pentagon ``f`` owns qubits ``6f`` (bulk) and ``6f + 1 .. 6f + 5`` (its in-plane legs in the
    cyclic order of :meth:`HaPPYTiling.legs`). Every bond projects its two qubits onto the Bell
    state; with ``bulk="fixed"`` every bulk qubit is projected onto ``|0>``.

    Parameters
    ----------
    tiling : HaPPYTiling
    bulk : {"fixed", "traced"}

    Returns
    -------
    HaPPYState
    """
    if bulk not in ("fixed", "traced"):
        raise ValidationError(f"bulk={bulk!r}; valid: 'fixed', 'traced'")
    n_f = tiling.n_tensors
    n = 6 * n_f
    one = perfect_tensor_stabilizers()
    g = np.zeros((n, 2 * n), dtype=np.uint8)
    for f in range(n_f):
        q = 6 * f + np.arange(6)
        g[6 * f : 6 * f + 6, q] = one[:, :6]
        g[6 * f : 6 * f + 6, q + n] = one[:, 6:]
    bond_qubits: list[list[int]] = [[] for _ in tiling.bonds]
    boundary_qubit = [0] * tiling.n_boundary
    for f, legs in enumerate(tiling.legs()):
        for k, (kind, idx) in enumerate(legs):
            if kind == "bond":
                bond_qubits[idx].append(6 * f + 1 + k)
            else:
                boundary_qubit[idx] = 6 * f + 1 + k
    measured: list[int] = []
    blocks: list[BinaryMatrix] = []
    for pair in bond_qubits:
        measured.extend(pair)
        blocks.append(pauli_to_binary(["XX", "ZZ"]))
    if bulk == "fixed":
        for f in range(n_f):
            measured.append(6 * f)
            blocks.append(pauli_to_binary(["Z"]))
    projector = _block_diagonal(blocks)
    remaining = project_and_discard(g, measured, projector)
    # reorder the kept qubits: boundary legs in boundary order, then bulk legs
    kept = [q for q in range(n) if q not in set(measured)]
    position = {q: i for i, q in enumerate(kept)}
    order = [position[q] for q in boundary_qubit]
    if bulk == "traced":
        order += [position[6 * f] for f in range(n_f)]
    n_kept = len(kept)
    cols = np.concatenate([np.array(order), np.array(order) + n_kept])
    return HaPPYState(generators=remaining[:, cols], n_boundary=tiling.n_boundary, bulk=bulk)


def _block_diagonal(blocks: Sequence[BinaryMatrix]) -> BinaryMatrix:
    """Binary symplectic direct sum of groups on disjoint qubit sets (x parts, then z parts)."""
    m = sum(b.shape[0] for b in blocks)
    out = np.zeros((m, 2 * m), dtype=np.uint8)
    r = 0
    for b in blocks:
        k = b.shape[1] // 2
        out[r : r + b.shape[0], r : r + k] = b[:, :k]
        out[r : r + b.shape[0], m + r : m + r + k] = b[:, k:]
        r += b.shape[0]
    return out
