"""The HaPPY code: the [[5,1,3]] perfect tensor on a {5,4} tiling of the hyperbolic disk.

Pastawski, Yoshida, Harlow and Preskill (JHEP 06 (2015) 149) place one six-leg *perfect tensor*
on every pentagon of the {5,4} tiling (pentagons, four around each vertex): one leg is a bulk
(logical) qubit, the other five are contracted with the neighbouring pentagons across shared
edges; legs on edges with no neighbour are the boundary qubits.

The perfect tensor is the encoding isometry ``V : C^2 -> (C^2)^5`` of the five-qubit code with
stabilizers ``XZZXI`` and its cyclic shifts and logical operators ``X̄ = XXXXX``,
``Z̄ = ZZZZZ``: ``T[a, i1, ..., i5] = <i1...i5|ā>``. Every split of its six legs into 3 | 3 is
maximally entangled: the 8 x 8 reshape is proportional to a unitary.

The tiling is built in the Poincaré disk by hyperbolic reflections and grouped in *vertex
layers*: layer 0 is the central pentagon, layer ``k`` holds every pentagon that shares at least
a vertex with layer ``k - 1`` and is not in an earlier layer (the "inflation" rule of the HaPPY
paper's figures). One layer gives 1 + 10 pentagons and 25 boundary legs.

Public names: :data:`FIVE_QUBIT_STABILIZERS`, :data:`FIVE_QUBIT_LOGICALS`,
:func:`pauli_matrix`, :func:`five_qubit_codewords`, :func:`perfect_tensor`,
:func:`perfect_tensor_deviation`, :func:`is_perfect`, :class:`HaPPYTiling`,
:func:`pentagon_tiling`.
"""

from __future__ import annotations

import cmath
import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from hhml.errors import LatticeError, ValidationError

#: Stabilizer generators of the [[5,1,3]] code: ``XZZXI`` and its cyclic shifts.
FIVE_QUBIT_STABILIZERS: tuple[str, ...] = ("XZZXI", "IXZZX", "XIXZZ", "ZXIXZ")
#: Logical operators ``(X̄, Z̄)`` of the [[5,1,3]] code.
FIVE_QUBIT_LOGICALS: tuple[str, str] = ("XXXXX", "ZZZZZ")

_PAULI: dict[str, NDArray[np.complex128]] = {
    "I": np.eye(2, dtype=np.complex128),
    "X": np.array([[0, 1], [1, 0]], dtype=np.complex128),
    "Y": np.array([[0, -1j], [1j, 0]], dtype=np.complex128),
    "Z": np.array([[1, 0], [0, -1]], dtype=np.complex128),
}

#: Numerical tolerance for identifying vertices and faces of the tiling in the disk.
_POSITION_TOL = 1e-9


def pauli_matrix(word: str) -> NDArray[np.complex128]:
    """Dense matrix of a Pauli string.

    Parameters
    ----------
    word : str
        Letters from ``IXYZ``; the first letter acts on the most significant qubit.

    Returns
    -------
    ndarray, shape (2**n, 2**n), complex128
    """
    bad = sorted(set(word) - set(_PAULI))
    if not word or bad:
        raise ValidationError(f"Pauli word {word!r} must be non-empty and use only I, X, Y, Z")
    out = _PAULI[word[0]]
    for c in word[1:]:
        out = np.kron(out, _PAULI[c]).astype(np.complex128)
    return out


def five_qubit_codewords() -> NDArray[np.complex128]:
    """Logical basis states ``|0̄>, |1̄>`` of the [[5,1,3]] code.

    ``|0̄>`` is the projection of ``|00000>`` onto the code space (the product of
    ``(1 + g)/2`` over the stabilizer generators ``g``), normalised; it is the ``Z̄ = +1``
    codeword because ``Z̄`` commutes with the projector. ``|1̄> = X̄|0̄>``.

    Returns
    -------
    ndarray, shape (2, 32), complex128
        Row ``a`` is ``|ā>`` in the computational basis.
    """
    projector = np.eye(32, dtype=np.complex128)
    for g in FIVE_QUBIT_STABILIZERS:
        projector = projector @ (np.eye(32) + pauli_matrix(g)) / 2
    zero = projector[:, 0].copy()
    zero /= np.linalg.norm(zero)
    one = pauli_matrix(FIVE_QUBIT_LOGICALS[0]) @ zero
    return np.stack([zero, one])


def perfect_tensor() -> NDArray[np.complex128]:
    """The six-leg perfect tensor ``T[a, i1, ..., i5] = <i1 ... i5 | ā>``.

    Leg 0 is the logical (bulk) leg, legs 1..5 the physical qubits in cyclic order.
    ``T`` reshaped as ``2 -> 32`` is the encoding isometry (``V^† V = 1``).

    Returns
    -------
    ndarray, shape (2, 2, 2, 2, 2, 2), complex128
    """
    return five_qubit_codewords().reshape((2,) * 6)


def perfect_tensor_deviation(tensor: NDArray[np.complex128]) -> float:
    """Largest deviation of any balanced bipartition of ``tensor`` from a scaled unitary.

    For each split of the ``2m`` legs into ``m | m`` the tensor is reshaped into a
    ``2^m x 2^m`` matrix ``M``; the deviation is ``max |M M^† / c - 1|`` with
    ``c = tr(M M^†) / 2^m``. A perfect tensor has deviation 0 for every split, i.e. every
    ``m | m`` split has entanglement entropy ``m ln 2``.

    Parameters
    ----------
    tensor : ndarray, shape (2,) * 2m

    Returns
    -------
    float
        Maximum over all ``C(2m, m)`` splits.
    """
    n = tensor.ndim
    if n % 2 or any(d != 2 for d in tensor.shape):
        raise ValidationError(f"tensor shape {tensor.shape} must be (2,) * even number of legs")
    half = n // 2
    dim = 2**half
    worst = 0.0
    for legs in itertools.combinations(range(n), half):
        rest = [k for k in range(n) if k not in legs]
        m = np.transpose(tensor, list(legs) + rest).reshape(dim, dim)
        gram = m @ m.conj().T
        scale = np.trace(gram).real / dim
        worst = max(worst, float(np.max(np.abs(gram / scale - np.eye(dim)))))
    return worst


def is_perfect(tensor: NDArray[np.complex128], tol: float = 1e-12) -> bool:
    """Whether every balanced bipartition of ``tensor`` is maximally entangled (within ``tol``)."""
    return perfect_tensor_deviation(tensor) <= tol


# ---------------------------------------------------------------------------------------------
# {5,4} tiling
# ---------------------------------------------------------------------------------------------


def _reflect(z: complex, a: complex, b: complex) -> complex:
    """Reflect the disk point ``z`` in the hyperbolic geodesic through ``a`` and ``b``.

    The Möbius map ``φ(w) = (w - a)/(1 - ā w)`` sends ``a`` to 0, so the geodesic becomes the
    diameter through ``φ(b)``; reflect in that line and map back.
    """
    w = (z - a) / (1 - a.conjugate() * z)
    phase = cmath.exp(2j * cmath.phase((b - a) / (1 - a.conjugate() * b)))
    w = phase * w.conjugate()
    return (w + a) / (1 + a.conjugate() * w)


@dataclass
class HaPPYTiling:
    """A finite patch of the {5,4} tiling with one perfect tensor per pentagon.

    Attributes
    ----------
    layers : int
        Number of vertex layers around the central pentagon.
    centers : ndarray, shape (F,), complex128
        Pentagon centres in the Poincaré disk.
    faces : list of tuple of int
        The five vertex ids of each pentagon, in cyclic order.
    vertices : ndarray, shape (V,), complex128
        Vertex positions in the Poincaré disk.
    face_layer : ndarray, shape (F,), int
        Vertex layer of each pentagon (0 = centre).
    bonds : list of tuple of int
        In-plane bonds ``(f, g)``, ``f < g``: pentagons that share an edge (one qubit each).
    boundary_legs : list of tuple of int
        Dangling legs ``(f, v0, v1)``: pentagon ``f`` and the edge ``v0 - v1`` with no neighbour,
        ordered counterclockwise around the boundary of the patch.
    """

    layers: int
    centers: NDArray[np.complex128]
    faces: list[tuple[int, ...]]
    vertices: NDArray[np.complex128]
    face_layer: NDArray[np.int64]
    bonds: list[tuple[int, int]] = field(default_factory=list)
    boundary_legs: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def n_tensors(self) -> int:
        """Number of pentagons (= bulk legs)."""
        return len(self.faces)

    @property
    def n_boundary(self) -> int:
        """Number of dangling (boundary) legs."""
        return len(self.boundary_legs)

    def boundary_owner(self) -> NDArray[np.int64]:
        """Pentagon of each boundary leg, shape ``(n_boundary,)``."""
        return np.array([f for f, _, _ in self.boundary_legs], dtype=np.int64)

    def legs(self) -> list[list[tuple[str, int]]]:
        """The five in-plane legs of each pentagon in cyclic (edge) order.

        Returns
        -------
        list of list of (kind, index)
            ``("bond", b)`` refers to ``bonds[b]``, ``("boundary", j)`` to ``boundary_legs[j]``.
        """
        edge_to_leg: dict[tuple[int, frozenset[int]], tuple[str, int]] = {}
        for b, (f, g) in enumerate(self.bonds):
            shared = frozenset(self.faces[f]) & frozenset(self.faces[g])
            edge_to_leg[(f, shared)] = ("bond", b)
            edge_to_leg[(g, shared)] = ("bond", b)
        for j, (f, v0, v1) in enumerate(self.boundary_legs):
            edge_to_leg[(f, frozenset((v0, v1)))] = ("boundary", j)
        out = []
        for f, face in enumerate(self.faces):
            edges = [frozenset((face[k], face[(k + 1) % 5])) for k in range(5)]
            out.append([edge_to_leg[(f, e)] for e in edges])
        return out


def pentagon_tiling(layers: int) -> HaPPYTiling:
    """Build ``layers`` vertex layers of the {5,4} tiling around a central pentagon.

    Construction: the central regular pentagon has hyperbolic circumradius ``R`` with
    ``cosh R = cot(π/5) cot(π/4)`` (Poincaré radius ``tanh(R/2)``). Neighbours across an edge
    are its reflections in that edge's geodesic. Layer ``k`` is built from layer ``k - 1`` by
    collecting all reflections at edge distance 1 and 2 (the four pentagons around a vertex are
    the face, its two edge neighbours and the neighbour of a neighbour) and keeping those that
    share a vertex with layer ``k - 1`` and are new. Vertices are identified by position.

    Parameters
    ----------
    layers : int
        Number of layers, 0 <= layers <= 3 (layer sizes 1, 10, 40, 150; beyond three layers
        the patch reaches so close to the disk boundary that positions stop being reliable).

    Returns
    -------
    HaPPYTiling

    Raises
    ------
    LatticeError
        If ``layers`` is out of range or the patch boundary is not a simple cycle.
    """
    if not 0 <= layers <= 3:
        raise LatticeError(f"layers={layers} must lie in 0..3")
    p, q = 5, 4
    radius = math.acosh(1.0 / (math.tan(math.pi / p) * math.tan(math.pi / q)))
    r0 = math.tanh(radius / 2)
    vertices: list[complex] = []

    def vertex_id(z: complex) -> int:
        for k, w in enumerate(vertices):
            if abs(w - z) < _POSITION_TOL * 1e3:
                return k
        vertices.append(z)
        return len(vertices) - 1

    center_face = tuple(vertex_id(r0 * cmath.exp(2j * math.pi * k / p)) for k in range(p))
    centers: list[complex] = [0j]
    faces: list[tuple[int, ...]] = [center_face]
    face_layer = [0]

    def find_face(c: complex) -> int:
        for k, w in enumerate(centers):
            if abs(w - c) < _POSITION_TOL * 1e3:
                return k
        return -1

    def neighbours(c: complex, face: tuple[int, ...]) -> list[tuple[complex, tuple[int, ...]]]:
        out = []
        for k in range(p):
            a, b = vertices[face[k]], vertices[face[(k + 1) % p]]
            new_c = _reflect(c, a, b)
            # reflection reverses orientation; reverse back so faces stay counterclockwise
            new_face = tuple(vertex_id(_reflect(vertices[v], a, b)) for v in face)[::-1]
            out.append((new_c, new_face))
        return out

    for layer in range(1, layers + 1):
        previous = [f for f in range(len(faces)) if face_layer[f] == layer - 1]
        touched = set().union(*(faces[f] for f in previous))
        candidates: list[tuple[complex, tuple[int, ...]]] = []
        for f in previous:
            first = neighbours(centers[f], faces[f])
            candidates.extend(first)
            for c1, face1 in first:
                candidates.extend(neighbours(c1, face1))
        for c, face in candidates:
            if find_face(c) < 0 and touched & set(face):
                centers.append(c)
                faces.append(face)
                face_layer.append(layer)

    # candidates that were rejected also created vertices: keep only those of kept faces
    used = sorted(set().union(*faces))
    relabel = {v: k for k, v in enumerate(used)}
    faces = [tuple(relabel[v] for v in face) for face in faces]
    vertices = [vertices[v] for v in used]
    edge_faces: dict[frozenset[int], list[int]] = {}
    for f, face in enumerate(faces):
        for k in range(p):
            edge_faces.setdefault(frozenset((face[k], face[(k + 1) % p])), []).append(f)
    bonds = sorted((min(fs), max(fs)) for fs in edge_faces.values() if len(fs) == 2)
    tiling = HaPPYTiling(
        layers=layers,
        centers=np.array(centers, dtype=np.complex128),
        faces=faces,
        vertices=np.array(vertices, dtype=np.complex128),
        face_layer=np.array(face_layer, dtype=np.int64),
        bonds=bonds,
    )
    tiling.boundary_legs = _boundary_cycle(tiling, edge_faces)
    return tiling


def _boundary_cycle(
    tiling: HaPPYTiling, edge_faces: dict[frozenset[int], list[int]]
) -> list[tuple[int, int, int]]:
    """Dangling edges ordered by walking the patch boundary counterclockwise."""
    dangling = {e: fs[0] for e, fs in edge_faces.items() if len(fs) == 1}
    incident: dict[int, list[frozenset[int]]] = {}
    for e in dangling:
        for v in e:
            incident.setdefault(v, []).append(e)
    if any(len(es) != 2 for es in incident.values()):
        raise LatticeError("the patch boundary is not a simple cycle; use fewer layers")
    start = min(dangling, key=lambda e: min(e))
    v = min(start)
    order: list[tuple[int, int, int]] = []
    edge = start
    while True:
        (w,) = edge - {v}
        order.append((dangling[edge], v, w))
        nxt = next(e for e in incident[w] if e != edge)
        v, edge = w, nxt
        if edge == start:
            break
    if len(order) != len(dangling):
        raise LatticeError("the patch boundary has several components")
    # orient counterclockwise: positive signed area of the boundary polygon
    pts = tiling.vertices[[a for _, a, _ in order]]
    area = float(np.sum(pts.real * np.roll(pts.imag, -1) - np.roll(pts.real, -1) * pts.imag))
    if area < 0:
        order = [(f, b, a) for f, a, b in reversed(order)]
    return order
