"""Exact eigenbasis of the flat-metric lattice Laplacian (used by the ETD integrator).

On a flat band the five-point Laplacian separates. Across the band (v) the
cell-centred Dirichlet/Neumann second difference has the orthonormal
eigenvectors ``sin(πk(j+½)/nv)`` (k = 1..nv) and ``cos(πk(j+½)/nv)``
(k = 0..nv−1), with eigenvalues ``−(4/Δv²) sin²(πk/2nv)``; for the torus the
Fourier modes ``e^{2πikj/nv}`` with ``−(4/Δv²) sin²(πk/nv)``. Under the seam
flip ``j → nv−1−j`` the k-th mode (0-based column index) has parity ``(−1)^k``,
so along u it obeys the twisted periodicity ``c(u+L) = p_k e^{iθ} c(u)``
(``p_k = 1`` without the flip). Writing ``p_k e^{iθ} = e^{i a_k L}``, the
functions ``e^{i(a_k + 2πn/L)u}`` diagonalise the u-difference with eigenvalue
``−(4/Δu²) sin²((a_k + 2πn/L)Δu/2)``. The transform is: v-basis matrix, gauge
factor ``e^{−i a_k u}``, FFT along u.

Public names: :class:`FlatSpectralBasis`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from hhml.core.mobius import MobiusStrip


def v_modes(nv: int, dv: float, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal v-eigenvectors (columns) and eigenvalues for ``kind`` in
    ``{"dirichlet", "neumann", "periodic"}``."""
    j = np.arange(nv) + 0.5
    k = np.arange(nv)
    if kind == "dirichlet":
        basis = np.sin(np.pi * np.outer(j, k + 1) / nv)
        lam = -(4.0 / dv**2) * np.sin(np.pi * (k + 1) / (2 * nv)) ** 2
    elif kind == "neumann":
        basis = np.cos(np.pi * np.outer(j, k) / nv)
        lam = -(4.0 / dv**2) * np.sin(np.pi * k / (2 * nv)) ** 2
    else:
        basis = np.exp(2j * np.pi * np.outer(np.arange(nv), k) / nv)
        lam = -(4.0 / dv**2) * np.sin(np.pi * k / nv) ** 2
    basis = basis / np.linalg.norm(basis, axis=0, keepdims=True)
    return basis, lam


class FlatSpectralBasis:
    """Forward/inverse transform to the Laplacian eigenbasis of a flat :class:`MobiusStrip`.

    Attributes
    ----------
    eigenvalues : Tensor
        Real ``[nu, nv]`` eigenvalue of each spectral coefficient (1/length²).
    """

    def __init__(self, lattice: MobiusStrip) -> None:
        kind = "periodic" if lattice.periodic_v else lattice.edge
        basis, lam_v = v_modes(lattice.nv, lattice.dv, kind)
        parity = (-1.0) ** np.arange(lattice.nv) if lattice.flip else np.ones(lattice.nv)
        a = (lattice.twist + np.where(parity < 0, math.pi, 0.0)) / lattice.length
        n = np.fft.fftfreq(lattice.nu, d=1.0 / lattice.nu)  # integer wavenumbers
        q = a[None, :] + 2.0 * math.pi * n[:, None] / lattice.length
        lam_u = -(4.0 / lattice.du**2) * np.sin(q * lattice.du / 2.0) ** 2
        dev, cd = lattice.device, torch.complex128
        self.eigenvalues = torch.tensor(lam_u + lam_v[None, :], dtype=torch.float64, device=dev)
        self._basis = torch.tensor(basis, dtype=cd, device=dev)
        gauge = np.exp(-1j * np.outer(lattice._u_np, a))
        self._gauge = torch.tensor(gauge, dtype=cd, device=dev)
        self._cache: dict[torch.dtype, tuple[Tensor, Tensor, Tensor, Tensor]] = {}

    def _mats(self, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        if dtype not in self._cache:
            b = self._basis.to(dtype)
            g = self._gauge.to(dtype)
            self._cache[dtype] = (b, b.conj().T.contiguous(), g, g.conj())
        return self._cache[dtype]

    def forward(self, psi: Tensor) -> Tensor:
        """Field ``[..., nu, nv]`` → spectral coefficients ``[..., nu, nv]``."""
        b, _, g, _ = self._mats(psi.dtype)
        out: Tensor = torch.fft.fft((psi @ b) * g, dim=-2)
        return out

    def inverse(self, coeffs: Tensor) -> Tensor:
        """Spectral coefficients → field (exact inverse of :meth:`forward`)."""
        _, bh, _, gc = self._mats(coeffs.dtype)
        out: Tensor = (torch.fft.ifft(coeffs, dim=-2) * gc) @ bh
        return out
