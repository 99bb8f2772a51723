"""Nested Möbius strips with Miller shaping: :class:`TokamakStack`.

``S`` strips ("flux surfaces") share one chart grid. Strip ``s`` is a Möbius
band whose centreline lies on the Miller flux surface of minor radius
``r_s = s · spacing · w`` around the magnetic axis ``R0 = aspect · w``:

    R = R0 + r cos(χ + arcsin(δ) sin χ),  Z = κ r sin χ,  χ = φ,

so elongation κ and triangularity δ change each strip's induced metric and the
distances between strips. Strip 0 (``r = 0``) is the plain Möbius band.
Neighbouring strips are coupled node-to-node (same chart index) with weights
``W = exp(−d/ℓ)`` from the 3-D distance ``d`` between the two nodes; the
coupling term is ``Σ_{s'=s±1} W_{ss'} (ψ_{s'} − ψ_s)`` (symmetric, conserves
``Σ_s ψ_s`` pointwise). Fields have shape ``[..., S, nu, nv]``.

Public names: :class:`TokamakStack`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from hhml.core.mobius.geometry import MillerCentreline
from hhml.core.mobius.lattice import MobiusStrip, band_laplacian
from hhml.errors import LatticeError


class TokamakStack:
    """``S`` nested Möbius strips coupled through their embedded distances.

    Parameters
    ----------
    strips
        Number of strips ``S ≥ 1``.
    nu, nv
        Grid of every strip.
    kappa, delta
        Miller elongation κ ∈ [0.5, 3] and triangularity δ ∈ (−1, 1).
    aspect
        ``R0 / w``.
    strip_spacing
        Radial distance between neighbouring centrelines, in units of ``w``.
    coupling_range
        ℓ in ``exp(−d/ℓ)`` (length units).
    **strip_kwargs
        Forwarded to every :class:`MobiusStrip` (``length``, ``half_width``,
        ``topology``, ``edge``, ``twist``, ``metric``, ``dtype``, ``device``).
    """

    def __init__(
        self,
        strips: int,
        nu: int,
        nv: int,
        kappa: float = 1.0,
        delta: float = 0.0,
        aspect: float = 12.0,
        strip_spacing: float = 3.0,
        coupling_range: float = 1.0,
        **strip_kwargs: Any,
    ) -> None:
        if isinstance(strips, bool) or not isinstance(strips, int) or strips < 1:
            raise LatticeError(f"strips = {strips!r} is not valid; it must be an integer ≥ 1")
        if not (0.5 <= kappa <= 3.0):
            raise LatticeError(f"kappa = {kappa} is out of range; allowed [0.5, 3]")
        if not (-1.0 < delta < 1.0):
            raise LatticeError(f"delta = {delta} is out of range; allowed (−1, 1)")
        if not (coupling_range > 0 and math.isfinite(coupling_range)):
            raise LatticeError(f"coupling_range = {coupling_range} is not valid; it must be > 0")
        half_width = float(strip_kwargs.get("half_width", 1.0))
        r_max = (strips - 1) * strip_spacing * half_width
        # the band must stay away from the z axis: R0 − r_max(1 + |δ|-ish) − w > 0
        if aspect * half_width - r_max - half_width <= 0:
            raise LatticeError(
                f"aspect = {aspect} is too small for {strips} strips spaced "
                f"{strip_spacing}·w apart; need aspect > {r_max / half_width + 1:g}"
            )
        self.kappa, self.delta = float(kappa), float(delta)
        self.aspect, self.strip_spacing = float(aspect), float(strip_spacing)
        self.coupling_range = float(coupling_range)
        self.strips = [
            MobiusStrip(
                nu,
                nv,
                aspect=aspect,
                centreline=MillerCentreline(
                    aspect * half_width, s * strip_spacing * half_width, kappa, delta
                ),
                **strip_kwargs,
            )
            for s in range(strips)
        ]
        first = self.strips[0]
        self.nu, self.nv, self.dtype, self.device = nu, nv, first.dtype, first.device
        self._coef64 = tuple(torch.stack([s._coef64[k] for s in self.strips]) for k in range(4))
        self._coef_cache: dict[torch.dtype, tuple[Tensor, ...]] = {}
        self._area = torch.stack([s._area for s in self.strips])
        self._weights = self._coupling_weights()

    # ------------------------------------------------------------- properties
    @property
    def num_strips(self) -> int:
        """Number of strips ``S``."""
        return len(self.strips)

    @property
    def strip(self) -> MobiusStrip:
        """The innermost strip; its chart (u, v, du, dv, topology) is shared by all strips."""
        return self.strips[0]

    @property
    def field_shape(self) -> tuple[int, ...]:
        """Trailing field shape ``(S, nu, nv)``."""
        return (self.num_strips, self.nu, self.nv)

    @property
    def seam_phase(self) -> complex | None:
        """``e^{iθ}`` shared by all strips (None for θ = 0)."""
        return self.strip.seam_phase

    @property
    def twist(self) -> float:
        """Seam twist θ shared by all strips."""
        return self.strip.twist

    @twist.setter
    def twist(self, value: float) -> None:
        for s in self.strips:
            s.twist = value

    def __repr__(self) -> str:
        return (
            f"TokamakStack(strips={self.num_strips}, nu={self.nu}, nv={self.nv}, "
            f"kappa={self.kappa:g}, delta={self.delta:g}, aspect={self.aspect:g}, "
            f"coupling_range={self.coupling_range:g}, strip={self.strip!r})"
        )

    def check_field(self, psi: Tensor, name: str = "psi") -> None:
        """Raise :class:`LatticeError` unless ``psi`` is complex ``[..., S, nu, nv]``."""
        if (
            not isinstance(psi, Tensor)
            or psi.dim() < 3
            or tuple(psi.shape[-3:]) != self.field_shape
        ):
            shape = tuple(psi.shape) if isinstance(psi, Tensor) else type(psi).__name__
            raise LatticeError(
                f"{name} has shape {shape}; expected [..., {self.num_strips}, {self.nu}, {self.nv}]"
            )
        if not psi.is_complex():
            raise LatticeError(f"{name} has dtype {psi.dtype}; a complex dtype is required")

    def zeros(self, *batch: int) -> Tensor:
        """A zero field of shape ``[*batch, S, nu, nv]``."""
        return torch.zeros(*batch, *self.field_shape, dtype=self.dtype, device=self.device)

    # --------------------------------------------------------------- geometry
    def embedding(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Embedded cell centres ``x, y, z``, each ``[S, nu, nv]``."""
        parts = [s.embedding() for s in self.strips]
        return tuple(np.stack([p[k] for p in parts]) for k in range(3))  # type: ignore[return-value]

    def area_weights(self) -> Tensor:
        """Cell areas, shape ``[S, nu, nv]``."""
        return self._area.clone()

    def coupling_weights(self, copy: bool = True) -> Tensor:
        """``exp(−d/ℓ)`` between strip ``s`` and ``s+1`` at each node, shape ``[S−1, nu, nv]``
        (``[B, S−1, nu, nv]`` for an ensemble); ``copy=False`` returns the stored tensor
        itself (read-only use, e.g. by a kernel)."""
        return self._weights.clone() if copy else self._weights

    def face_coefficients(self, real: torch.dtype) -> tuple[Tensor, ...]:
        """The Laplacian's face coefficients ``(c_u+, c_u−, c_v+, c_v−)`` in precision
        ``real`` (cached casts of the float64 ones; not copies), ``[.., S, nu, nv]``."""
        if real not in self._coef_cache:
            self._coef_cache[real] = tuple(c.to(real) for c in self._coef64)
        return self._coef_cache[real]

    def _coupling_weights(self) -> Tensor:
        x, y, z = self.embedding()
        pts = np.stack([x, y, z], axis=-1)
        d = np.linalg.norm(pts[1:] - pts[:-1], axis=-1)
        return torch.tensor(
            np.exp(-d / self.coupling_range), dtype=self.strip.real_dtype, device=self.device
        )

    # -------------------------------------------------------------- operators
    def laplacian(self, psi: Tensor) -> Tensor:
        """Per-strip Laplace–Beltrami operator on ``[..., S, nu, nv]`` fields."""
        self.check_field(psi)
        real = torch.float64 if psi.dtype == torch.complex128 else torch.float32
        return band_laplacian(psi, self.strip, self.face_coefficients(real))

    def coupling(self, psi: Tensor) -> Tensor:
        """Inter-strip coupling ``Σ_{s'=s±1} W_{ss'} (ψ_{s'} − ψ_s)``, shape as ``psi``."""
        self.check_field(psi)
        out = torch.zeros_like(psi)
        if self.num_strips == 1:
            return out
        w = self._weights.to(psi.real.dtype)
        diff = w * (psi[..., 1:, :, :] - psi[..., :-1, :, :])
        out[..., :-1, :, :] += diff
        out[..., 1:, :, :] -= diff
        return out

    def spectral_radius_bound(self) -> float:
        """Gershgorin bound on ``|λ|`` of the stacked Laplacian (1/length²)."""
        return max(s.spectral_radius_bound() for s in self.strips)


def chart_of(lattice: MobiusStrip | TokamakStack) -> MobiusStrip:
    """The chart (u, v grid, topology, seam rule) of a strip, or the shared chart of a stack."""
    return lattice.strip if isinstance(lattice, TokamakStack) else lattice
