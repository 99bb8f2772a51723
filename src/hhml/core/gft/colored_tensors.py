"""Colored tensor models: the melonic two-point function and the Gurau degree.

Melonic Schwinger–Dyson equation
--------------------------------
At leading order in 1/N the full two-point function of the i.i.d. colored tensor model of
rank ``D`` (``D + 1`` colors) is a sum over melonic graphs and obeys (Gurau, Bonzom–Gurau–
Riello–Rivasseau 2011)

.. math::  G = 1 + z\\,G^{D+1}, \\qquad z = \\lambda\\bar\\lambda ,

(``G`` in units of the bare propagator, ``z`` dimensionless). The physical branch is the one
continuous from ``G(0) = 1``; its Taylor coefficients are the Fuss–Catalan numbers

.. math::  G(z) = \\sum_{n \\ge 0} C^{(D+1)}_n z^n, \\qquad
           C^{(D+1)}_n = \\frac{1}{Dn + 1}\\binom{(D+1)n}{n},

and the branch ends in a square-root singularity at

.. math::  z_c = \\frac{D^D}{(D+1)^{D+1}}, \\qquad G_c = \\frac{D+1}{D}, \\qquad
           G_c - G \\simeq G_c\\sqrt{\\tfrac{2 (z_c - z)}{z_c D (D+1)}}
           \\quad (z \\to z_c^-),

i.e. the susceptibility exponent 1/2 (continuum limit of branched polymers).

Gurau degree
------------
A closed (D+1)-colored graph with ``p`` black and ``p`` white vertices is a tuple of ``D + 1``
permutations ``σ_c`` of ``{0, …, p−1}``: the edge of color ``c`` joins black vertex ``b`` to
white vertex ``σ_c(b)``. Its faces of colors ``(i, j)`` are the cycles of ``σ_i^{-1} σ_j``.
For a connected graph the total number of faces ``F`` defines the degree ``ω ≥ 0`` by

.. math::  F = \\frac{D(D-1)}{2} p + D - \\frac{2}{(D-1)!}\\,\\omega ,

and ``ω`` equals the sum of the genera of the ``D!/2`` jackets; ``ω = 0`` exactly for melonic
graphs (those reducible to the elementary melon by removing D-dipoles).

Public names: :func:`critical_coupling`, :func:`critical_two_point`, :func:`fuss_catalan`,
:func:`melonic_series_coefficients`, :func:`melonic_two_point_series`,
:func:`melonic_two_point`, :func:`critical_gap`, :func:`fit_susceptibility_exponent`,
:class:`ExponentFit`, :class:`ColoredGraph`, :func:`enumerate_colored_graphs`,
:func:`is_melonic`, :func:`degree_census`, :class:`DegreeCensus`.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import scipy.optimize

from hhml.errors import ConfigError, NumericalInstabilityError

__all__ = [
    "ColoredGraph",
    "DegreeCensus",
    "ExponentFit",
    "critical_coupling",
    "critical_gap",
    "critical_two_point",
    "degree_census",
    "enumerate_colored_graphs",
    "fit_susceptibility_exponent",
    "fuss_catalan",
    "is_melonic",
    "melonic_series_coefficients",
    "melonic_two_point",
    "melonic_two_point_series",
]


def _check_rank(D: int) -> None:
    if not isinstance(D, int) or D < 1:
        raise ConfigError(f"tensor rank D must be an integer >= 1, got {D!r}")


# ----------------------------------------------------------------------------- melonic SD
def critical_coupling(D: int) -> float:
    """Critical coupling ``z_c = (λλ̄)_c = D^D / (D+1)^{D+1}`` (dimensionless)."""
    _check_rank(D)
    return float(Fraction(D**D, (D + 1) ** (D + 1)))


def critical_two_point(D: int) -> float:
    """Two-point function at criticality, ``G_c = (D+1)/D`` (units of the bare propagator)."""
    _check_rank(D)
    return (D + 1) / D


def fuss_catalan(n: int, D: int) -> int:
    """Fuss–Catalan number ``C_n^{(D+1)} = binom((D+1)n, n) / (Dn + 1)`` (exact integer)."""
    _check_rank(D)
    if n < 0:
        raise ConfigError(f"Fuss–Catalan index n must be >= 0, got {n}")
    num = math.comb((D + 1) * n, n)
    q, r = divmod(num, D * n + 1)
    assert r == 0  # a theorem; kept as an internal sanity assertion
    return q


def melonic_series_coefficients(n_max: int, D: int) -> list[int]:
    """Taylor coefficients ``g_0 … g_{n_max}`` of the SD solution, by exact iteration.

    Iterates ``G ← 1 + z G^{D+1}`` on power series truncated at order ``n_max`` with Python
    integers; after ``n_max + 1`` iterations the coefficients up to ``z^{n_max}`` are exact.
    This is independent of the closed form :func:`fuss_catalan`.

    Parameters
    ----------
    n_max : int
        Highest order kept (>= 0).
    D : int
        Tensor rank (number of colors minus one).

    Returns
    -------
    list of int
        Length ``n_max + 1``.
    """
    _check_rank(D)
    if n_max < 0:
        raise ConfigError(f"n_max must be >= 0, got {n_max}")
    size = n_max + 1

    def mul(a: list[int], b: list[int]) -> list[int]:
        out = [0] * size
        for i, ai in enumerate(a):
            if ai:
                for j in range(size - i):
                    out[i + j] += ai * b[j]
        return out

    g = [1] + [0] * n_max
    for _ in range(size):
        power = [1] + [0] * n_max
        for _ in range(D + 1):
            power = mul(power, g)
        g = [1, *power[: size - 1]]  # 1 + z·G^{D+1}
    return g


def melonic_two_point_series(z: float, D: int, n_terms: int = 2000) -> float:
    """Partial sum ``Σ_{n<n_terms} C_n^{(D+1)} z^n`` of the melonic two-point function.

    Converges for ``|z| <= z_c`` (slowly, like ``n^{-3/2}``, at ``|z| = z_c``). Terms are built
    from the ratio ``C_{n+1}/C_n`` in floating point so large ``n_terms`` are cheap.
    """
    _check_rank(D)
    if abs(z) > critical_coupling(D):
        raise ConfigError(
            f"series diverges for |z| > z_c = {critical_coupling(D):.6g} (D={D}); got z={z}"
        )
    total = 0.0
    term = 1.0  # C_0 z^0
    for n in range(n_terms):
        total += term
        # C_{n+1}/C_n = prod_k((D+1)n+k, k=1..D+1) / ((n+1) prod_k(Dn+k, k=1..D))
        #               · (Dn+1)/(Dn+D+1)
        ratio = (D * n + 1) / ((n + 1) * (D * n + D + 1))
        for k in range(1, D + 2):
            ratio *= (D + 1) * n + k
        for k in range(1, D + 1):
            ratio /= D * n + k
        term *= ratio * z
    return total


def _sd_residual(g: float, z: float, D: int) -> float:
    return 1.0 + z * g ** (D + 1) - g


def melonic_two_point(z: float, D: int) -> float:
    """Solution of ``G = 1 + z G^{D+1}`` on the branch continuous from ``G(0) = 1``.

    Root finding (Brent) on the bracket ``[1, G_c]`` for ``0 <= z <= z_c`` and ``[0, 1]`` for
    ``z < 0``; the residual changes sign on these brackets and the root is unique there.

    Raises
    ------
    ConfigError
        If ``z > z_c`` (the physical branch has no real continuation).
    """
    _check_rank(D)
    zc, gc = critical_coupling(D), critical_two_point(D)
    if z > zc:
        raise ConfigError(f"z={z} exceeds the critical coupling z_c={zc:.10g} for D={D}")
    if z == 0.0:
        return 1.0
    if z == zc:
        return gc
    lo, hi = (1.0, gc) if z > 0 else (0.0, 1.0)
    root = scipy.optimize.brentq(_sd_residual, lo, hi, args=(z, D), xtol=1e-15, rtol=1e-15)
    return float(root)


def critical_gap(dz: float, D: int) -> float:
    """``δ = G_c − G(z_c − dz)`` computed without cancellation, for ``0 < dz <= z_c``.

    Substituting ``G = G_c − δ`` and using the two critical conditions removes the constant and
    linear terms exactly:

    .. math:: z_c \\sum_{k=2}^{D+1} \\binom{D+1}{k} G_c^{D+1-k} (-δ)^k = dz\\,(G_c − δ)^{D+1},

    which is solved for ``δ ∈ (0, G_c − 1]`` by Brent's method to relative precision ~1e-15.
    """
    _check_rank(D)
    zc, gc = critical_coupling(D), critical_two_point(D)
    if not 0.0 < dz <= zc:
        raise ConfigError(f"dz must lie in (0, z_c={zc:.6g}] for D={D}, got {dz}")

    def residual(delta: float) -> float:
        lhs = sum(math.comb(D + 1, k) * gc ** (D + 1 - k) * (-delta) ** k for k in range(2, D + 2))
        return zc * lhs - dz * (gc - delta) ** (D + 1)

    hi = gc - 1.0 if dz < zc else gc
    lo = 0.0
    # residual(0) = −dz·G_c^{D+1} < 0 and residual(G_c − 1) >= 0 (G >= 1 for z >= 0)
    return float(scipy.optimize.brentq(residual, lo, hi, xtol=1e-300, rtol=1e-15))


@dataclass(frozen=True)
class ExponentFit:
    """Power-law fit ``G_c − G = a (z_c − z)^γ`` near criticality.

    Attributes
    ----------
    exponent : float
        Fitted γ (expected 1/2).
    amplitude : float
        Fitted ``a``.
    amplitude_exact : float
        Leading-order amplitude ``G_c sqrt(2 / (z_c D (D+1)))``.
    dz : numpy.ndarray
        Distances to criticality used, shape ``(n,)``.
    gap : numpy.ndarray
        ``G_c − G`` at those distances, shape ``(n,)``.
    """

    exponent: float
    amplitude: float
    amplitude_exact: float
    dz: np.ndarray
    gap: np.ndarray


def fit_susceptibility_exponent(
    D: int, dz: Sequence[float] | np.ndarray | None = None
) -> ExponentFit:
    """Least-squares fit of ``log(G_c − G)`` against ``log(z_c − z)``.

    The corrections are relative ``O((z_c − z)^{1/2})``, so with the default
    ``dz = z_c · 10^{-14…-10}`` the fitted exponent is 1/2 to ~1e-6.
    """
    _check_rank(D)
    zc, gc = critical_coupling(D), critical_two_point(D)
    dzs = np.asarray(zc * np.logspace(-14, -10, 9) if dz is None else dz, dtype=np.float64)
    if dzs.ndim != 1 or dzs.size < 2 or np.any(dzs <= 0):
        raise ConfigError("dz must be a 1-D sequence of at least two positive distances")
    gaps = np.array([critical_gap(float(d), D) for d in dzs])
    slope, intercept = np.polyfit(np.log(dzs), np.log(gaps), 1)
    return ExponentFit(
        exponent=float(slope),
        amplitude=float(np.exp(intercept)),
        amplitude_exact=gc * math.sqrt(2.0 / (zc * D * (D + 1))),
        dz=dzs,
        gap=gaps,
    )


# ----------------------------------------------------------------------------- colored graphs
def _cycle_count(perm: Sequence[int]) -> int:
    seen = [False] * len(perm)
    cycles = 0
    for start in range(len(perm)):
        if not seen[start]:
            cycles += 1
            k = start
            while not seen[k]:
                seen[k] = True
                k = perm[k]
    return cycles


@dataclass(frozen=True)
class ColoredGraph:
    """A closed bipartite (D+1)-colored graph given by one permutation per color.

    Attributes
    ----------
    perms : tuple of tuple of int
        ``perms[c][b]`` is the white vertex joined to black vertex ``b`` by the edge of color
        ``c``; ``D + 1`` permutations of ``range(p)``.
    """

    perms: tuple[tuple[int, ...], ...]
    _inverse: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.perms) < 2:
            raise ConfigError(f"need at least 2 colors, got {len(self.perms)}")
        p = len(self.perms[0])
        if p < 1:
            raise ConfigError("a colored graph needs p >= 1 black vertices")
        inv = []
        for c, s in enumerate(self.perms):
            if sorted(s) != list(range(p)):
                raise ConfigError(f"color {c}: {s} is not a permutation of range({p})")
            t = [0] * p
            for b, w in enumerate(s):
                t[w] = b
            inv.append(tuple(t))
        object.__setattr__(self, "_inverse", tuple(inv))

    @property
    def dimension(self) -> int:
        """Rank ``D`` (number of colors minus one)."""
        return len(self.perms) - 1

    @property
    def order(self) -> int:
        """Number ``p`` of black (= white) vertices."""
        return len(self.perms[0])

    def faces_of(self, i: int, j: int) -> int:
        """Number of bicolored cycles (faces) of colors ``(i, j)``: cycles of σ_i^{-1}σ_j."""
        inv_i, s_j = self._inverse[i], self.perms[j]
        return _cycle_count([inv_i[s_j[b]] for b in range(self.order)])

    def faces(self) -> int:
        """Total number of faces ``F`` over all ``D(D+1)/2`` color pairs."""
        n = len(self.perms)
        return sum(self.faces_of(i, j) for i in range(n) for j in range(i + 1, n))

    def is_connected(self) -> bool:
        """Whether the graph (2p vertices, (D+1)p edges) is connected (union–find on blacks)."""
        p = self.order
        parent = list(range(p))

        def find(a: int) -> int:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        # two blacks are linked when a white vertex joins them: b ~ σ_0^{-1}(σ_c(b))
        inv0 = self._inverse[0]
        for s in self.perms[1:]:
            for b in range(p):
                ra, rb = find(b), find(inv0[s[b]])
                if ra != rb:
                    parent[ra] = rb
        return len({find(b) for b in range(p)}) == 1

    def gurau_degree(self) -> Fraction:
        """``ω = (D−1)!/2 · (D(D−1)p/2 + D − F)`` from the face count (exact rational).

        For a connected graph this is a non-negative integer; the value is returned as a
        :class:`~fractions.Fraction` so that callers can verify integrality.
        """
        D, p = self.dimension, self.order
        return Fraction(math.factorial(D - 1), 2) * (
            Fraction(D * (D - 1) * p, 2) + D - self.faces()
        )

    def jacket_genera(self) -> list[Fraction]:
        """Genera of the ``D!/2`` jackets (cyclic color orders up to reversal, color 0 first).

        A jacket with cycle ``(c_0 … c_D)`` is the ribbon graph whose faces are the faces of the
        consecutive pairs; ``2 − 2g = 2p − (D+1)p + F_J``. ``Σ_J g_J = ω``.
        """
        D, p = self.dimension, self.order
        out: list[Fraction] = []
        for rest in itertools.permutations(range(1, D + 1)):
            if D >= 2 and rest[0] > rest[-1]:
                continue  # reversal gives the same jacket
            cyc = (0, *rest)
            f_j = sum(self.faces_of(cyc[k], cyc[(k + 1) % (D + 1)]) for k in range(D + 1))
            out.append(Fraction(2 - 2 * p + (D + 1) * p - f_j, 2))
        return out


def enumerate_colored_graphs(p: int, D: int = 3) -> Iterator[ColoredGraph]:
    """All labeled (D+1)-colored graphs with ``p`` black vertices and ``σ_0 = id``.

    Fixing ``σ_0`` to the identity labels every white vertex by its color-0 neighbour; every
    labeled graph is obtained from exactly ``p!`` of the ``(p!)^{D+1}`` tuples, so the degree
    distribution over this set equals the one over all labeled graphs. ``(p!)^D`` graphs.
    """
    _check_rank(D)
    if p < 1:
        raise ConfigError(f"p must be >= 1, got {p}")
    ident = tuple(range(p))
    perms = list(itertools.permutations(range(p)))
    for rest in itertools.product(perms, repeat=D):
        yield ColoredGraph((ident, *rest))


def is_melonic(graph: ColoredGraph) -> bool:
    """Melonicity by D-dipole reduction, independent of the face count.

    Repeatedly finds a black/white pair joined by exactly ``D`` edges (an elementary melon,
    a D-dipole), deletes it and joins its two remaining edges of color ``k``. D-dipole
    removal preserves connectedness and the degree, and every melonic graph with ``p > 1``
    contains one, so the graph is melonic iff the reduction reaches the elementary melon
    (``p = 1``). The graph must be connected.
    """
    if not graph.is_connected():
        raise ConfigError("is_melonic expects a connected colored graph")
    D = graph.dimension
    # adjacency as dicts so vertices can be removed: sig[c][b] = white, inv[c][w] = black
    sig = [dict(enumerate(s)) for s in graph.perms]
    inv = [{w: b for b, w in s.items()} for s in sig]
    while len(sig[0]) > 1:
        found = False
        for b in list(sig[0]):
            targets = Counter(sig[c][b] for c in range(D + 1))
            w, mult = targets.most_common(1)[0]
            if mult == D:
                k = next(c for c in range(D + 1) if sig[c][b] != w)
                w_out, b_out = sig[k][b], inv[k][w]
                for c in range(D + 1):
                    del inv[c][sig[c][b]]
                    del sig[c][b]
                # b_out lost its color-k partner w and w_out lost b: join them
                sig[k][b_out] = w_out
                inv[k][w_out] = b_out
                found = True
                break
        if not found:
            return False
    return True


@dataclass(frozen=True)
class DegreeCensus:
    """Gurau-degree statistics of all labeled graphs of one order (``σ_0 = id``).

    Attributes
    ----------
    order : int
        ``p``.
    dimension : int
        ``D``.
    n_graphs : int
        Graphs enumerated, ``(p!)^D``.
    n_connected : int
        Connected ones.
    omega_counts : dict[int, int]
        ``ω`` → number of connected graphs with that degree.
    n_melonic_by_reduction : int
        Connected graphs that :func:`is_melonic` reduces to the elementary melon.
    n_formula_violations : int
        Connected graphs whose ``ω`` from the face formula is not a non-negative integer, or
        whose jacket genera are not non-negative integers summing to ``ω``.
    n_melonic_mismatch : int
        Connected graphs where ``ω == 0`` and melonicity-by-reduction disagree.
    """

    order: int
    dimension: int
    n_graphs: int
    n_connected: int
    omega_counts: dict[int, int]
    n_melonic_by_reduction: int
    n_formula_violations: int
    n_melonic_mismatch: int

    @property
    def expected_melonic(self) -> int:
        """``(p−1)! · C_p^{(D+1)}``: rooted melonic graphs (Fuss–Catalan) times labelings.

        Connected colored graphs have free automorphism groups, so labeled graphs with
        ``σ_0 = id`` number ``(p−1)!`` times the graphs rooted at a color-0 edge; cutting the
        root gives the melonic two-point graphs counted by ``C_p^{(D+1)}``.
        """
        return math.factorial(self.order - 1) * fuss_catalan(self.order, self.dimension)


def degree_census(p: int, D: int = 3) -> DegreeCensus:
    """Enumerate all graphs of order ``p`` and tabulate ``ω`` (see :class:`DegreeCensus`).

    Cost grows like ``(p!)^D``: ``p <= 3`` is instant for ``D = 3``, ``p = 4`` takes seconds.
    """
    n_graphs = n_conn = n_mel = n_bad = n_mismatch = 0
    counts: Counter[int] = Counter()
    for g in enumerate_colored_graphs(p, D):
        n_graphs += 1
        if not g.is_connected():
            continue
        n_conn += 1
        omega = g.gurau_degree()
        jackets = g.jacket_genera()
        ok = (
            omega.denominator == 1
            and omega >= 0
            and all(j.denominator == 1 and j >= 0 for j in jackets)
            and sum(jackets) == omega
        )
        if not ok:
            n_bad += 1
            continue
        counts[int(omega)] += 1
        mel = is_melonic(g)
        n_mel += int(mel)
        n_mismatch += int(mel != (omega == 0))
    if n_graphs == 0:
        raise NumericalInstabilityError("no graphs enumerated")  # unreachable for p >= 1
    return DegreeCensus(
        order=p,
        dimension=D,
        n_graphs=n_graphs,
        n_connected=n_conn,
        omega_counts=dict(sorted(counts.items())),
        n_melonic_by_reduction=n_mel,
        n_formula_violations=n_bad,
        n_melonic_mismatch=n_mismatch,
    )
