"""Exact diagonalisation of small spin-½ chains: transverse-field Ising and XX.

Conventions
-----------
Basis states are integers ``b`` whose bit ``i`` is site ``i`` (site 0 is the least
significant bit, and the *last* axis when a state vector is reshaped to ``[2] * L``
in C order is site 0 — see :func:`site_major_state`). A set bit means spin down:
``σᶻ_i |b⟩ = (1 − 2 b_i) |b⟩``.

- Transverse-field Ising: ``H = −J Σ_i σˣ_i σˣ_{i+1} − g Σ_i σᶻ_i``. At ``J = g = 1`` with
  periodic boundary the ground state lies in the even-parity sector (``Π σᶻ = +1``), which
  maps to antiperiodic Jordan–Wigner fermions, and
  ``E₀(L) = −2 / sin(π / 2L)`` exactly (:func:`ising_critical_ground_energy`).
- XX chain: ``H = −J Σ_i (σˣ_i σˣ_{i+1} + σʸ_i σʸ_{i+1}) / 2 = −J Σ_i (σ⁺_i σ⁻_{i+1} + h.c.)``,
  i.e. free fermions hopping with amplitude ``J`` (single-particle energies ``−2J cos k``).

``boundary`` is ``"periodic"`` (bond ``L−1 — 0`` present) or ``"open"``.

Public names: :func:`ising_hamiltonian`, :func:`xx_hamiltonian`, :func:`ground_state`,
:func:`ising_critical_ground_energy`, :func:`xx_ground_energy`, :func:`site_major_state`,
:data:`MAX_SITES`.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from numpy.typing import NDArray

from hhml.errors import ConfigError

MAX_SITES = 22
"""Largest chain length accepted by the sparse builders (2²² states ≈ 4·10⁶)."""

_BOUNDARIES = ("periodic", "open")


def _check_chain(L: int, boundary: str) -> None:
    if not isinstance(L, int) or L < 2 or L > MAX_SITES:
        raise ConfigError(f"chain length L={L!r} must be an integer in [2, {MAX_SITES}]")
    if boundary not in _BOUNDARIES:
        raise ConfigError(f"boundary={boundary!r}; valid: {', '.join(_BOUNDARIES)}")


def _bonds(L: int, boundary: str) -> list[tuple[int, int]]:
    bonds = [(i, i + 1) for i in range(L - 1)]
    if boundary == "periodic" and L > 2:
        bonds.append((L - 1, 0))
    return bonds


def _spin_z(L: int) -> NDArray[np.float64]:
    """``σᶻ_i`` eigenvalues of every basis state, shape ``[2**L, L]``."""
    idx = np.arange(2**L, dtype=np.int64)
    bits = (idx[:, None] >> np.arange(L, dtype=np.int64)[None, :]) & 1
    return (1.0 - 2.0 * bits).astype(np.float64)


def ising_hamiltonian(
    L: int, g: float = 1.0, J: float = 1.0, boundary: str = "periodic"
) -> sp.csr_matrix:
    """Transverse-field Ising chain ``H = −J Σ σˣσˣ − g Σ σᶻ`` as a sparse matrix.

    Parameters
    ----------
    L : int
        Number of sites, 2 ≤ L ≤ :data:`MAX_SITES`.
    g : float
        Transverse field (``g = J`` is the critical point).
    J : float
        Ising coupling.
    boundary : {"periodic", "open"}
        Boundary condition of the spin chain.

    Returns
    -------
    scipy.sparse.csr_matrix
        Real symmetric matrix of shape ``[2**L, 2**L]``.
    """
    _check_chain(L, boundary)
    dim = 2**L
    idx = np.arange(dim, dtype=np.int64)
    diag = -g * _spin_z(L).sum(axis=1)
    rows = [idx]
    cols = [idx]
    vals = [diag]
    for i, j in _bonds(L, boundary):
        rows.append(idx)
        cols.append(idx ^ ((1 << i) | (1 << j)))  # σˣ_i σˣ_j flips both spins
        vals.append(np.full(dim, -J))
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(dim, dim)
    )


def xx_hamiltonian(L: int, J: float = 1.0, boundary: str = "periodic") -> sp.csr_matrix:
    """XX chain ``H = −J Σ (σˣσˣ + σʸσʸ)/2`` as a sparse matrix.

    Parameters
    ----------
    L : int
        Number of sites, 2 ≤ L ≤ :data:`MAX_SITES`.
    J : float
        Hopping amplitude.
    boundary : {"periodic", "open"}
        Boundary condition of the spin chain.

    Returns
    -------
    scipy.sparse.csr_matrix
        Real symmetric matrix of shape ``[2**L, 2**L]``.
    """
    _check_chain(L, boundary)
    dim = 2**L
    idx = np.arange(dim, dtype=np.int64)
    rows, cols, vals = [], [], []
    for i, j in _bonds(L, boundary):
        differ = ((idx >> i) & 1) != ((idx >> j) & 1)  # σ⁺σ⁻ + h.c. swaps antiparallel spins
        src = idx[differ]
        rows.append(src)
        cols.append(src ^ ((1 << i) | (1 << j)))
        vals.append(np.full(src.size, -J))
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(dim, dim)
    )


def ground_state(
    hamiltonian: sp.spmatrix | NDArray[np.float64], k: int = 2
) -> tuple[float, NDArray[np.float64]]:
    """Lowest eigenpair by Lanczos (:func:`scipy.sparse.linalg.eigsh`), dense below 64 states.

    Parameters
    ----------
    hamiltonian : sparse matrix or ndarray, shape ``[D, D]``
        Real symmetric Hamiltonian.
    k : int
        Number of Lanczos eigenpairs to converge (≥ 2 makes the lowest one robust against a
        near-degenerate partner).

    Returns
    -------
    energy : float
        Ground-state energy.
    state : ndarray, shape ``[D]``
        Normalised ground state (real; overall sign arbitrary).
    """
    dim = hamiltonian.shape[0]
    if dim <= 64:
        dense = (
            np.asarray(hamiltonian.toarray())  # type: ignore[union-attr]
            if sp.issparse(hamiltonian)
            else np.asarray(hamiltonian)
        )
        w, v = np.linalg.eigh(dense)
        return float(w[0]), np.ascontiguousarray(v[:, 0])
    rng = np.random.default_rng(0)  # deterministic start vector
    v0 = rng.standard_normal(dim)
    w, v = spla.eigsh(hamiltonian, k=k, which="SA", v0=v0, tol=0.0)
    order = np.argsort(w)
    state = np.asarray(v[:, order[0]], dtype=np.float64)
    return float(w[order[0]]), state / np.linalg.norm(state)


def site_major_state(state: NDArray[np.generic], L: int) -> NDArray[np.generic]:
    """Reorder a basis-bit-ordered state so that axis ``i`` of ``[2] * L`` is site ``i``.

    Parameters
    ----------
    state : ndarray, shape ``[2**L]``
        Amplitudes indexed by basis integer (bit ``i`` = site ``i``).
    L : int
        Number of sites.

    Returns
    -------
    ndarray, shape ``[2] * L``
        Same amplitudes with axes ordered by site (site 0 first).
    """
    if state.shape != (2**L,):
        raise ConfigError(f"state has shape {state.shape}; expected ({2**L},) for L={L}")
    # C-order reshape puts the most significant bit (site L−1) first; reverse the axes.
    return np.ascontiguousarray(state.reshape([2] * L).transpose(tuple(range(L - 1, -1, -1))))


def ising_critical_ground_energy(L: int) -> float:
    """Exact ground energy ``−2 / sin(π/2L)`` of the periodic critical chain (J = g = 1)."""
    return -2.0 / math.sin(math.pi / (2 * L))


def xx_ground_energy(L: int, J: float = 1.0, boundary: str = "periodic") -> float:
    """Exact ground energy of the XX chain from its free-fermion spectrum.

    The spin chain's periodic boundary maps to fermions that are periodic for an odd and
    antiperiodic for an even particle number; the minimum over all fillings is returned.

    Parameters
    ----------
    L : int
        Number of sites (≥ 2).
    J : float
        Hopping amplitude.
    boundary : {"periodic", "open"}
        Boundary condition of the spin chain.

    Returns
    -------
    float
        Ground-state energy.
    """
    if boundary not in _BOUNDARIES or L < 2:
        raise ConfigError(f"need L ≥ 2 and boundary in {_BOUNDARIES}; got L={L}, {boundary!r}")
    if boundary == "open":
        eps = -2.0 * J * np.cos(np.pi * np.arange(1, L + 1) / (L + 1))
        return float(np.minimum(eps, 0.0).sum())
    best = math.inf
    for n_particles in range(L + 1):
        shift = 0.5 if n_particles % 2 == 0 else 0.0
        k = 2.0 * np.pi * (np.arange(L) + shift) / L
        eps = np.sort(-2.0 * J * np.cos(k))
        best = min(best, float(eps[:n_particles].sum()))
    return best
