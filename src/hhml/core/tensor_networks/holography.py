"""Entanglement profile and fitted central charge of boundary data (an analysis tool).

This module measures how a 1-D "boundary" object's entanglement entropy grows with block
size and fits the Calabrese–Cardy form to it. It is a diagnostic borrowed from the
holographic-duality literature (where ``S(ℓ)`` of a boundary CFT is the length of a bulk
geodesic); **it makes no claim about gravity, bulk geometry or holography of the simulated
field**. A fitted ``c`` only says how the boundary data's correlations scale.

Accepted boundary data (:func:`boundary_entanglement`):

``"state"``
    A pure state of ``n`` qubits (``2**n`` amplitudes, site 0 the slowest index); entropies
    of the blocks ``[0, ℓ)`` by SVD (:mod:`~hhml.core.tensor_networks.entanglement`).
``"correlation"``
    A fermionic hopping correlation matrix ``C_ij = ⟨c†_i c_j⟩`` (``[N, N]``, Hermitian,
    eigenvalues in [0, 1]); Peschel entropies (:mod:`~hhml.core.tensor_networks.free_fermions`).
``"field"``
    Complex samples ``ψ_j`` on a ring (``[N]``, or ``[T, N]`` for ``T`` snapshots), e.g. the
    simulated field on the strip's boundary circle. Construction (a choice, documented here):
    the ring's translation-averaged two-point function ``K_ij = ⟨ψ_{i+s} ψ*_{j+s}⟩_{s,t}`` is
    circulant with eigenvalues ``P_k = ⟨|ψ̂_k|²⟩_t / N`` (the power spectrum). It is turned
    into the correlation matrix of a Gaussian, translation-invariant free-fermion state on
    the ring, ``C = F† diag(n_k) F``, with mode occupations

    - ``occupation="spectral"``: ``n_k = P_k / max P`` (occupations proportional to power;
      fractional occupations add a volume-law term ∝ ℓ, e.g. for white noise), or
    - ``occupation="fermi_sea"``: ``n_k = 1`` for the ``N/2`` strongest modes, else 0 (a
      Slater determinant; its ``c`` counts the jumps of ``n_k``: ``c = (#jumps)/2``, so a
      single contiguous band of strong modes gives ``c = 1``).

    Entropies then follow from Peschel's formula. The fitted ``c`` is meaningful only when
    ``S(ℓ)`` is logarithmic; check ``fit.residual_rms``. The field's amplitude, phase convention
    and overall normalisation drop out; only the shape of its spectrum matters.

Public names: :class:`EntanglementProfile`, :func:`boundary_entanglement`,
:func:`field_correlation_matrix`, :func:`mode_occupations`, :func:`occupation_jumps`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from hhml.core.tensor_networks.central_charge import CentralChargeFit, fit_central_charge
from hhml.core.tensor_networks.entanglement import entanglement_entropy
from hhml.core.tensor_networks.free_fermions import hopping_block_entropy
from hhml.errors import ConfigError

BoundaryKind = Literal["state", "correlation", "field"]
Occupation = Literal["spectral", "fermi_sea"]


@dataclass(frozen=True)
class EntanglementProfile:
    """Block entropies of boundary data and their Calabrese–Cardy fit.

    Attributes
    ----------
    n_sites : int
        Number of boundary sites ``N``.
    lengths : ndarray of int, shape ``[n]``
        Block lengths ``ℓ`` (blocks ``[0, ℓ)``).
    entropies : ndarray, shape ``[n]``
        Von Neumann entropies ``S(ℓ)`` in nats.
    fit : CentralChargeFit or None
        Fit of ``S(ℓ) = (c/3) ln[(N/π) sin(πℓ/N)] + c′`` (``None`` if too few points).
    kind : str
        ``"state"``, ``"correlation"`` or ``"field"``.
    construction : str
        One line saying how the entropies were obtained.
    """

    n_sites: int
    lengths: NDArray[np.int64]
    entropies: NDArray[np.float64]
    fit: CentralChargeFit | None
    kind: str
    construction: str

    def as_dict(self) -> dict[str, object]:
        """JSON-ready summary."""
        return {
            "n_sites": self.n_sites,
            "lengths": self.lengths.tolist(),
            "entropies": self.entropies.tolist(),
            "central_charge": None if self.fit is None else self.fit.central_charge,
            "central_charge_stderr": None if self.fit is None else self.fit.stderr,
            "fit_window": None if self.fit is None else [self.fit.ell_min, self.fit.ell_max],
            "kind": self.kind,
            "construction": self.construction,
        }


def mode_occupations(
    samples: NDArray[np.generic], occupation: Occupation = "spectral"
) -> NDArray[np.float64]:
    """The mode occupations ``n_k`` ``[N]`` (in FFT order) that
    :func:`field_correlation_matrix` builds from ring samples ``[N]`` or ``[T, N]``."""
    psi = np.atleast_2d(np.asarray(samples))
    if psi.ndim != 2 or psi.shape[1] < 4:
        raise ConfigError(f"ring samples have shape {np.shape(samples)}; expected [N] or [T, N]")
    if not np.all(np.isfinite(psi)):
        raise ConfigError("ring samples contain NaN or Inf")
    n = psi.shape[1]
    power = np.mean(np.abs(np.fft.fft(psi, axis=1)) ** 2, axis=0) / n
    if power.max() <= 0.0:
        raise ConfigError("ring samples are identically zero; the profile is undefined")
    if occupation == "spectral":
        occ = power / power.max()
    elif occupation == "fermi_sea":
        occ = np.zeros(n)
        occ[np.argsort(-power, kind="stable")[: n // 2]] = 1.0
    else:
        raise ConfigError(f"occupation={occupation!r}; valid: spectral, fermi_sea")
    return np.asarray(occ, dtype=np.float64)


def occupation_jumps(samples: NDArray[np.generic]) -> int:
    """Jumps of the ``"fermi_sea"`` occupations around the momentum circle (Fermi points).

    For a Slater determinant of ``m`` contiguous bands of momenta (``2m`` jumps) the block
    entropy grows as ``(m/3) ln ℓ``: the central charge a Calabrese–Cardy fit finds is
    ``c = (#jumps)/2`` (Widom's formula), 1 only when the strong modes form one band.
    """
    occ = mode_occupations(samples, "fermi_sea")
    return int(np.count_nonzero(occ != np.roll(occ, 1)))


def field_correlation_matrix(
    samples: NDArray[np.generic], occupation: Occupation = "spectral"
) -> NDArray[np.complex128]:
    """Free-fermion correlation matrix built from ring samples (see the module docstring).

    Parameters
    ----------
    samples : ndarray, shape ``[N]`` or ``[T, N]``
        Complex (or real) field values at ``N`` equally spaced points of a ring.
    occupation : {"spectral", "fermi_sea"}
        How the power spectrum sets the mode occupations.

    Returns
    -------
    ndarray, shape ``[N, N]``
        Hermitian circulant matrix with eigenvalues ``n_k ∈ [0, 1]``.
    """
    occ = mode_occupations(samples, occupation)
    n = occ.shape[0]
    # C_ij = (1/N) Σ_k n_k e^{ik(i−j)}: the first column is the inverse FFT of n_k.
    col = np.fft.ifft(occ)
    idx = (np.arange(n)[:, None] - np.arange(n)[None, :]) % n
    return np.asarray(col[idx], dtype=np.complex128)


def boundary_entanglement(
    data: NDArray[np.generic],
    kind: BoundaryKind,
    occupation: Occupation = "spectral",
    ell_min: int | None = None,
    max_length: int | None = None,
) -> EntanglementProfile:
    """Entanglement profile ``S(ℓ)`` of boundary data and its fitted central charge.

    Parameters
    ----------
    data : ndarray
        ``kind="state"``: ``2**N`` amplitudes (any shape, flattened in C order);
        ``"correlation"``: ``[N, N]`` matrix;
        ``"field"``: ``[N]`` or ``[T, N]`` ring samples.
    kind : {"state", "correlation", "field"}
        What ``data`` is (see the module docstring).
    occupation : {"spectral", "fermi_sea"}
        Only for ``kind="field"``.
    ell_min : int, optional
        Smallest block length in the fit (default ``max(2, N // 16)``).
    max_length : int, optional
        Largest block length computed (default ``N // 2``; for a periodic, pure or
        translation-invariant state ``S(ℓ) = S(N − ℓ)``).

    Returns
    -------
    EntanglementProfile
        ``fit`` assumes a periodic chain; it is ``None`` when the window has < 3 points.
    """
    arr = np.asarray(data)
    if kind == "state":
        arr = arr.reshape(-1)
        n = round(math.log2(arr.size)) if arr.size > 1 else 0
        if arr.ndim != 1 or 2**n != arr.size or n < 2:
            raise ConfigError(f"state has shape {arr.shape}; expected 2**N amplitudes, N ≥ 2")
        top = n // 2 if max_length is None else max_length
        ells = np.arange(1, top + 1)
        s = np.array([entanglement_entropy(arr, [2] * n, range(ell)) for ell in ells])
        how = "SVD of the reshaped pure state"
    elif kind in ("correlation", "field"):
        if kind == "field":
            corr = field_correlation_matrix(arr, occupation)
            how = f"Peschel entropies of the ring's power spectrum, occupation={occupation!r}"
        else:
            if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
                raise ConfigError(f"correlation matrix has shape {arr.shape}; expected [N, N]")
            corr = arr.astype(np.complex128)
            how = "Peschel entropies of the hopping correlation matrix"
        n = corr.shape[0]
        top = n // 2 if max_length is None else max_length
        ells = np.arange(1, top + 1)
        s = np.array([hopping_block_entropy(corr, np.arange(ell)) for ell in ells])
    else:
        raise ConfigError(f"kind={kind!r}; valid: state, correlation, field")
    if not 1 <= top <= n:
        raise ConfigError(f"max_length={max_length} must lie in [1, {n}]")
    lo = max(2, n // 16) if ell_min is None else ell_min
    fit = fit_central_charge(ells, s, n, lo) if int(np.sum(ells >= lo)) >= 3 else None
    return EntanglementProfile(n, ells.astype(np.int64), s, fit, kind, how)
