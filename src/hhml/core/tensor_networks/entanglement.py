"""Entanglement of pure states on tensor-product spaces: Schmidt values, reduced density
matrices, von Neumann and Rényi entropies, Haar-random states and Page's mean entropy.

A pure state on parties with local dimensions ``dims = (d_0, …, d_{n−1})`` is an array of
``prod(dims)`` amplitudes in C order (party 0 is the slowest index). Entropies use the natural
logarithm (nats).

Public names: :func:`schmidt_values`, :func:`reduced_density_matrix`,
:func:`entropy_from_spectrum`, :func:`entanglement_entropy`, :func:`density_matrix_entropy`,
:func:`block_entropy_profile`, :func:`haar_random_state`, :func:`page_entropy`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from hhml.errors import ConfigError

_EPS = 1e-300


def _split(
    state: NDArray[np.generic], dims: Sequence[int], keep: Sequence[int]
) -> NDArray[np.complex128]:
    """Reshape ``state`` to a ``[d_keep, d_rest]`` matrix."""
    dims = tuple(int(d) for d in dims)
    if any(d < 1 for d in dims):
        raise ConfigError(f"dims={dims} must all be positive")
    total = math.prod(dims)
    arr = np.asarray(state)
    if arr.size != total:
        raise ConfigError(f"state has {arr.size} amplitudes; dims={dims} need {total}")
    keep_t = tuple(sorted(set(int(k) for k in keep)))
    if len(keep_t) != len(list(keep)) or any(k < 0 or k >= len(dims) for k in keep_t):
        raise ConfigError(f"keep={list(keep)} must be distinct party indices in [0, {len(dims)})")
    rest = tuple(i for i in range(len(dims)) if i not in keep_t)
    t = arr.reshape(dims).transpose(keep_t + rest)
    d_keep = math.prod(dims[i] for i in keep_t)
    return np.ascontiguousarray(t.reshape(d_keep, total // d_keep)).astype(np.complex128)


def schmidt_values(
    state: NDArray[np.generic], dims: Sequence[int], keep: Sequence[int]
) -> NDArray[np.float64]:
    """Schmidt coefficients of the bipartition ``keep | rest`` by SVD.

    Parameters
    ----------
    state : ndarray, ``prod(dims)`` amplitudes
        Pure state (normalised or not; the result is normalised to ``Σ s² = 1``).
    dims : sequence of int, length n
        Local dimensions of the parties.
    keep : sequence of int
        Parties in subsystem A (any subset, not necessarily contiguous).

    Returns
    -------
    ndarray, shape ``[min(d_A, d_Ā)]``
        Schmidt values in decreasing order.
    """
    s = np.linalg.svd(_split(state, dims, keep), compute_uv=False)
    norm = float(np.sqrt(np.sum(s**2)))
    if norm == 0.0:
        raise ConfigError("state is the zero vector")
    return np.asarray(s / norm, dtype=np.float64)


def reduced_density_matrix(
    state: NDArray[np.generic], dims: Sequence[int], keep: Sequence[int]
) -> NDArray[np.complex128]:
    """Reduced density matrix ``ρ_A = Tr_Ā |ψ⟩⟨ψ|`` (normalised to unit trace).

    Parameters
    ----------
    state, dims, keep
        As in :func:`schmidt_values`.

    Returns
    -------
    ndarray, shape ``[d_A, d_A]``
        Hermitian, positive, unit-trace matrix; parties of A in increasing index order.
    """
    m = _split(state, dims, keep)
    rho = m @ m.conj().T
    tr = float(np.trace(rho).real)
    if tr == 0.0:
        raise ConfigError("state is the zero vector")
    return np.asarray(rho / tr, dtype=np.complex128)


def entropy_from_spectrum(probabilities: NDArray[np.floating], alpha: float = 1.0) -> float:
    """Rényi-α entropy of a probability vector (α = 1: von Neumann/Shannon), in nats.

    Parameters
    ----------
    probabilities : ndarray, shape ``[k]``
        Non-negative weights (eigenvalues of ρ, or squared Schmidt values); renormalised.
    alpha : float
        Rényi index, ``α ≥ 0``; ``α = 1`` gives ``−Σ p ln p``, ``α = ∞`` gives ``−ln max p``.

    Returns
    -------
    float
        The entropy.
    """
    if alpha < 0:
        raise ConfigError(f"Rényi index alpha={alpha} must be ≥ 0")
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 0.0, None)
    p = p / p.sum()
    p = p[p > _EPS]
    if alpha == 1.0:
        return float(-np.sum(p * np.log(p)))
    if math.isinf(alpha):
        return float(-np.log(p.max()))
    return float(np.log(np.sum(p**alpha)) / (1.0 - alpha))


def entanglement_entropy(
    state: NDArray[np.generic], dims: Sequence[int], keep: Sequence[int], alpha: float = 1.0
) -> float:
    """Entanglement entropy of subsystem ``keep`` of a pure state, by SVD.

    Parameters
    ----------
    state, dims, keep
        As in :func:`schmidt_values`.
    alpha : float
        Rényi index (1 = von Neumann).

    Returns
    -------
    float
        ``S_α(A)`` in nats.
    """
    if len(list(keep)) == 0 or len(list(keep)) == len(list(dims)):
        return 0.0
    return entropy_from_spectrum(schmidt_values(state, dims, keep) ** 2, alpha)


def density_matrix_entropy(rho: NDArray[np.generic], alpha: float = 1.0) -> float:
    """Rényi-α entropy of a (mixed) density matrix from its eigenvalues.

    Parameters
    ----------
    rho : ndarray, shape ``[d, d]``
        Hermitian positive matrix (renormalised to unit trace).
    alpha : float
        Rényi index (1 = von Neumann).

    Returns
    -------
    float
        ``S_α(ρ)`` in nats.
    """
    rho = np.asarray(rho)
    if rho.ndim != 2 or rho.shape[0] != rho.shape[1]:
        raise ConfigError(f"rho has shape {rho.shape}; expected a square matrix")
    w = np.linalg.eigvalsh(0.5 * (rho + rho.conj().T))
    return entropy_from_spectrum(w, alpha)


def block_entropy_profile(
    state: NDArray[np.generic], n_sites: int, local_dim: int = 2, alpha: float = 1.0
) -> NDArray[np.float64]:
    """Entropies ``S(ℓ)`` of the blocks ``[0, ℓ)`` for ``ℓ = 0 … n_sites``.

    Parameters
    ----------
    state : ndarray, ``local_dim**n_sites`` amplitudes
        Pure chain state; party ``i`` is the ``i``-th slowest index (see
        :func:`hhml.core.tensor_networks.exact.site_major_state` for ED states).
    n_sites : int
        Number of sites.
    local_dim : int
        Local Hilbert-space dimension.
    alpha : float
        Rényi index.

    Returns
    -------
    ndarray, shape ``[n_sites + 1]``
        ``S(0) = S(n_sites) = 0``.
    """
    dims = [local_dim] * n_sites
    return np.array(
        [entanglement_entropy(state, dims, range(ell), alpha) for ell in range(n_sites + 1)]
    )


def haar_random_state(dim: int, rng: np.random.Generator) -> NDArray[np.complex128]:
    """A Haar-random pure state: a normalised vector of i.i.d. complex Gaussians.

    Parameters
    ----------
    dim : int
        Hilbert-space dimension.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    ndarray, shape ``[dim]``
        Unit-norm complex vector.
    """
    if dim < 1:
        raise ConfigError(f"dim={dim} must be ≥ 1")
    v = rng.standard_normal(dim) + 1j * rng.standard_normal(dim)
    return np.asarray(v / np.linalg.norm(v), dtype=np.complex128)


def page_entropy(m: int, n: int) -> float:
    """Page's mean entanglement entropy of an ``m × n`` Haar-random pure state.

    ``S_Page(m, n) = Σ_{k=n+1}^{mn} 1/k − (m − 1)/(2n)`` for ``m ≤ n`` (arguments are
    swapped if ``m > n``; the formula is symmetric in the sense ``S(A) = S(Ā)``).

    Parameters
    ----------
    m, n : int
        Dimensions of the two subsystems.

    Returns
    -------
    float
        Mean von Neumann entropy in nats.
    """
    if m < 1 or n < 1:
        raise ConfigError(f"dimensions m={m}, n={n} must be ≥ 1")
    m, n = min(m, n), max(m, n)
    k = np.arange(n + 1, m * n + 1, dtype=np.float64)
    return float(np.sum(1.0 / k) - (m - 1) / (2.0 * n))
