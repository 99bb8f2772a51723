"""Independent reference solutions used by the validation checks.

Nothing here reuses the stencil, seam or integrator code of
:mod:`hhml.core`: these are separate implementations (NumPy, float64) of the
same mathematics, so agreement is evidence that both are right.

Public names: :func:`analytic_flat_spectrum`, :func:`operator_matrix`,
:class:`DoubleCoverSolver`, :func:`boundary_winding`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import torch
from numpy.typing import NDArray

if TYPE_CHECKING:
    from hhml.core.mobius import MobiusStrip

ComplexArray = NDArray[np.complex128]


def analytic_flat_spectrum(
    nu: int, nv: int, length: float, half_width: float, edge: str, twist: float, flip: bool = True
) -> NDArray[np.float64]:
    """Sorted eigenvalues of the flat five-point Laplacian on a Möbius (or cylinder) band.

    Derivation: across the band the cell-centred second difference with ghost
    ``∓ψ`` has eigenvalues ``−(4/Δv²) sin²(πk/2nv)`` with ``k = 1..nv``
    (Dirichlet, mode ``sin(πk(j+½)/nv)``, parity ``(−1)^{k+1}`` under
    ``j → nv−1−j``) or ``k = 0..nv−1`` (Neumann, ``cos``, parity ``(−1)^k``).
    Along the band a mode of parity ``p`` obeys ``c(u+L) = p e^{iθ} c(u)``,
    so its wavenumbers are ``q = (θ + 2πn + π[p = −1]) / L``, ``n = 0..nu−1``,
    with eigenvalues ``−(4/Δu²) sin²(qΔu/2)``.
    """
    du, dv = length / nu, 2.0 * half_width / nv
    ks = np.arange(1, nv + 1) if edge == "dirichlet" else np.arange(0, nv)
    values = []
    for k in ks:
        lam_v = -(4.0 / dv**2) * math.sin(math.pi * k / (2 * nv)) ** 2
        parity = (-1) ** (k + 1) if edge == "dirichlet" else (-1) ** k
        shift = math.pi if (flip and parity < 0) else 0.0
        for n in range(nu):
            q = (twist + 2.0 * math.pi * n + shift) / length
            values.append(lam_v - (4.0 / du**2) * math.sin(q * du / 2.0) ** 2)
    return np.sort(np.array(values))


def operator_matrix(lattice: MobiusStrip, chunk: int = 512) -> sp.csr_matrix:
    """Sparse matrix of ``lattice.laplacian`` by probing with unit vectors.

    Column ``c`` is ``Δ e_c`` with ``e_c`` the unit field at flat index ``c``
    (row-major ``[nu, nv]``). Complex128.
    """
    n = lattice.nu * lattice.nv
    rows, cols, vals = [], [], []
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        basis = torch.zeros(stop - start, n, dtype=torch.complex128, device=lattice.device)
        basis[torch.arange(stop - start), torch.arange(start, stop)] = 1.0
        out = lattice.laplacian(basis.reshape(stop - start, lattice.nu, lattice.nv))
        out_np = out.reshape(stop - start, n).cpu().numpy()
        c_idx, r_idx = np.nonzero(out_np)
        rows.append(r_idx)
        cols.append(c_idx + start)
        vals.append(out_np[c_idx, r_idx])
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )


class DoubleCoverSolver:
    """CGL/NLS on the double cover of a flat Möbius band, spectral in u.

    The band of length L is lifted to a strip of length 2L with
    ``ψ̃(u+L, v) = e^{iθ} ψ(u, −v)``; then ``ψ̃(u+2L) = e^{2iθ} ψ̃(u)`` and
    ``χ = e^{−iθu/L} ψ̃`` is 2L-periodic. The u second difference is applied
    to χ through its FFT symbol ``−(4/Δu²) sin²((k + θ/L)Δu/2)``; the v
    second difference uses explicit ghost padding. Classical RK4 in NumPy.
    """

    def __init__(
        self,
        nu: int,
        nv: int,
        length: float,
        half_width: float,
        edge: str,
        twist: float,
        growth: float,
        diffusion: complex,
        cubic: complex,
    ) -> None:
        self.nu, self.nv, self.twist = nu, nv, twist
        self.length = length
        self.du, self.dv = length / nu, 2.0 * half_width / nv
        self.ghost = -1.0 if edge == "dirichlet" else 1.0
        self.growth, self.diffusion, self.cubic = growth, diffusion, cubic
        u = (np.arange(2 * nu) + 0.5) * self.du
        self.gauge = np.exp(1j * twist * u / length)[:, None]
        k = 2.0 * math.pi * np.fft.fftfreq(2 * nu, d=self.du)
        self.symbol = (-(4.0 / self.du**2) * np.sin((k + twist / length) * self.du / 2) ** 2)[
            :, None
        ]

    def lift(self, psi: ComplexArray) -> ComplexArray:
        """Möbius field ``[nu, nv]`` → cover field ``[2nu, nv]``."""
        return np.concatenate([psi, np.exp(1j * self.twist) * psi[:, ::-1]], axis=0)

    def laplacian(self, f: ComplexArray) -> ComplexArray:
        chi = f / self.gauge
        d_uu = self.gauge * np.fft.ifft(self.symbol * np.fft.fft(chi, axis=0), axis=0)
        padded = np.concatenate([self.ghost * f[:, :1], f, self.ghost * f[:, -1:]], axis=1)
        d_vv = (padded[:, 2:] - 2.0 * f + padded[:, :-2]) / self.dv**2
        return np.asarray(d_uu + d_vv, dtype=np.complex128)

    def rhs(self, f: ComplexArray) -> ComplexArray:
        return np.asarray(
            self.growth * f + self.diffusion * self.laplacian(f) - self.cubic * np.abs(f) ** 2 * f,
            dtype=np.complex128,
        )

    def evolve(self, f: ComplexArray, dt: float, steps: int) -> ComplexArray:
        """RK4 ``steps`` steps of ``dt`` on the cover."""
        for _ in range(steps):
            k1 = self.rhs(f)
            k2 = self.rhs(f + 0.5 * dt * k1)
            k3 = self.rhs(f + 0.5 * dt * k2)
            k4 = self.rhs(f + dt * k3)
            f = f + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        return f


def boundary_winding(psi: ComplexArray, twist: float) -> float:
    """``W``: the sum of wrapped phase increments around the Möbius band's boundary / 2π.

    The single boundary circle is row 0 (``i = 0..nu−1``), then through the
    seam to ``(0, nv−1)`` (factor ``e^{iθ}``), row ``nv−1``, and through the
    seam back to ``(0, 0)`` (factor ``e^{iθ}``). ``psi`` is one field ``[nu, nv]``.
    """
    e = np.exp(1j * twist)
    circle = np.concatenate([psi[:, 0], [e * psi[0, -1]]])
    second = np.concatenate([psi[:, -1], [e * psi[0, 0]]])
    inc = np.angle(circle[1:] * np.conj(circle[:-1])).sum()
    inc += np.angle(second[1:] * np.conj(second[:-1])).sum()
    # the seam factors relate chart values; the two seam jumps are the last increments above
    return float(inc / (2.0 * math.pi))
