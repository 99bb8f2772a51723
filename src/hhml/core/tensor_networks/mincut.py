"""Ryu–Takayanagi entropies of HaPPY boundary intervals as minimal cuts, and monogamy of MI.

In a network of perfect tensors the entropy of a boundary region ``A`` is bounded by (and, for
contiguous intervals on small patches, equal to) the number of bonds crossed by the minimal cut
separating ``A`` from its complement — the discrete Ryu–Takayanagi formula ``S(A) = |γ_A| ln 2``
for qubit bonds. The minimal cut is found as a maximum flow (max-flow = min-cut): a super-source
is joined to the legs of ``A`` and a super-sink to those of the complement with unbounded
capacity; every bond and every dangling leg has capacity 1.

Bulk legs: with ``bulk="fixed"`` (logical ``|0̄>`` on every pentagon) they carry no
entanglement and are left out of the graph; with ``bulk="traced"`` each pentagon is joined to the
super-sink with capacity 1, because the traced bulk qubits purify the boundary together with
the complement.

Entropies are in units of ``ln 2`` (integers). Min-cut entropies obey monogamy of mutual
information, ``I3(A:B:C) = S_A + S_B + S_C - S_AB - S_BC - S_AC + S_ABC <= 0`` (Hayden, Headrick,
Maloney 2013), for any disjoint boundary regions.

Public names: :class:`MinCutEntropy`, :func:`contiguous_intervals`,
:func:`random_interval_triples`, :func:`tripartite_information`,
:func:`interval_profile`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_flow

from hhml.core.tensor_networks.happy import HaPPYTiling
from hhml.errors import ValidationError


class MinCutEntropy:
    """Min-cut (RT) entropy of boundary regions of a HaPPY tiling, cached per region.

    Parameters
    ----------
    tiling : HaPPYTiling
    bulk : {"fixed", "traced"}
        Whether the bulk legs are fixed to a logical state or traced out (module docstring).

    Notes
    -----
    Graph nodes: pentagons ``0..F-1``, boundary legs ``F..F+B-1``, source ``F+B``,
    sink ``F+B+1``. Every bond is a pair of antiparallel unit-capacity arcs.
    """

    def __init__(self, tiling: HaPPYTiling, bulk: Literal["fixed", "traced"] = "fixed") -> None:
        if bulk not in ("fixed", "traced"):
            raise ValidationError(f"bulk={bulk!r}; valid: 'fixed', 'traced'")
        self.tiling = tiling
        self.bulk = bulk
        f, b = tiling.n_tensors, tiling.n_boundary
        self.n_boundary = b
        self._source, self._sink = f + b, f + b + 1
        self._n_nodes = f + b + 2
        # more than the total capacity of all unit arcs, so source/sink arcs are never cut
        self._infinite = len(tiling.bonds) + b + f + 1
        rows: list[int] = []
        cols: list[int] = []
        for g, h in tiling.bonds:
            rows += [g, h]
            cols += [h, g]
        for j, owner in enumerate(tiling.boundary_owner()):
            rows += [f + j, int(owner)]
            cols += [int(owner), f + j]
        if bulk == "traced":
            rows += list(range(f))
            cols += [self._sink] * f
        self._rows = np.array(rows, dtype=np.int64)
        self._cols = np.array(cols, dtype=np.int64)
        self._cache: dict[frozenset[int], int] = {}

    def __call__(self, region: Iterable[int]) -> int:
        """``S(A)`` in units of ``ln 2`` for the boundary legs ``region``."""
        key = frozenset(int(j) for j in region)
        if any(not 0 <= j < self.n_boundary for j in key):
            raise ValidationError(
                f"region {sorted(key)} must be boundary legs 0..{self.n_boundary - 1}"
            )
        if key not in self._cache:
            self._cache[key] = self._max_flow(key)
        return self._cache[key]

    def _max_flow(self, region: frozenset[int]) -> int:
        if not region:
            return 0
        f = self.tiling.n_tensors
        inside = np.array(sorted(region), dtype=np.int64)
        outside = np.setdiff1d(np.arange(self.n_boundary), inside)
        if outside.size == 0 and self.bulk == "fixed":
            return 0
        rows = np.concatenate([self._rows, np.full(inside.size, self._source), f + outside])
        cols = np.concatenate([self._cols, f + inside, np.full(outside.size, self._sink)])
        caps = np.ones(rows.size, dtype=np.int32)
        caps[self._rows.size :] = self._infinite
        graph = csr_matrix((caps, (rows, cols)), shape=(self._n_nodes, self._n_nodes))
        return int(maximum_flow(graph, self._source, self._sink).flow_value)

    def cut_bonds(self, region: Iterable[int]) -> int:
        """Alias of calling the object: the number of unit bonds in the minimal cut."""
        return self(region)


def contiguous_intervals(n: int) -> list[tuple[int, ...]]:
    """All contiguous intervals of a ring of ``n`` legs with length ``1..n-1``.

    Returns
    -------
    list of tuple of int
        ``(s, s+1, ..., s+l-1) mod n`` for every start ``s`` and length ``l``.
    """
    if n < 2:
        raise ValidationError(f"a ring of n={n} legs has no proper intervals; need n >= 2")
    return [tuple((s + k) % n for k in range(length)) for length in range(1, n) for s in range(n)]


def random_interval_triples(
    n: int, count: int, rng: np.random.Generator
) -> list[tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """Random triples of disjoint, contiguous, non-empty intervals of a ring of ``n`` legs.

    Six sorted points ``c0 <= ... <= c5`` are drawn (with replacement) and the intervals are
    ``[c0, c1)``, ``[c2, c3)``, ``[c4, c5)`` rotated by a random offset; draws with an empty
    interval are rejected. Adjacent intervals (``c1 = c2``) therefore occur.

    Parameters
    ----------
    n : int
        Ring size, at least 3.
    count : int
        Number of triples.
    rng : numpy.random.Generator

    Returns
    -------
    list of (A, B, C)
    """
    if n < 3:
        raise ValidationError(f"need n >= 3 boundary legs for three disjoint intervals, got {n}")
    out: list[tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = []
    while len(out) < count:
        c = np.sort(rng.integers(0, n + 1, size=6))
        if c[0] == c[1] or c[2] == c[3] or c[4] == c[5] or c[5] - c[0] >= n + 1:
            continue
        shift = int(rng.integers(n))
        arcs = [tuple((int(j) + shift) % n for j in range(c[k], c[k + 1])) for k in (0, 2, 4)]
        out.append((arcs[0], arcs[1], arcs[2]))
    return out


def tripartite_information(
    entropy: Callable[[Sequence[int]], int | float],
    a: Sequence[int],
    b: Sequence[int],
    c: Sequence[int],
) -> float:
    """``I3(A:B:C) = S_A + S_B + S_C - S_AB - S_BC - S_AC + S_ABC`` (same units as ``entropy``)."""
    sets = [list(a), list(b), list(c)]
    flat = [j for s in sets for j in s]
    if len(set(flat)) != len(flat):
        raise ValidationError("regions A, B, C must be disjoint")
    s = [float(entropy(x)) for x in sets]
    s_ab = float(entropy(sets[0] + sets[1]))
    s_bc = float(entropy(sets[1] + sets[2]))
    s_ac = float(entropy(sets[0] + sets[2]))
    return sum(s) - s_ab - s_bc - s_ac + float(entropy(flat))


def interval_profile(
    entropy: Callable[[Sequence[int]], int | float], n: int
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Entropy of contiguous intervals against their length (over all start positions).

    Returns
    -------
    lengths, mean, min, max : ndarray, shape (n - 1,)
    """
    lengths = np.arange(1, n, dtype=np.int64)
    values = np.array(
        [[float(entropy([(s + k) % n for k in range(int(l))])) for s in range(n)] for l in lengths]
    )
    return lengths, values.mean(axis=1), values.min(axis=1), values.max(axis=1)
