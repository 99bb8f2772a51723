"""Embeddings of bands in R³ and their induced metric.

A band is written as ``X(φ, v) = C(φ) + (cross-section offset)(φ, v)`` where
``C`` is a closed centreline parametrised by the toroidal angle ``φ = 2πu/L``
and the cross-section direction ``d(φ)`` is a unit vector orthogonal to the
centreline tangent. Because ``d ⊥ C'`` and ``|d| = 1``, the induced metric is
diagonal (``g_uv = 0``), which keeps the Laplace–Beltrami stencil a symmetric
five-point stencil.

- Möbius band: ``d(φ) = cos(φ/2) n₁ + sin(φ/2) n₂`` turns by half a revolution
  per circuit, so ``X(φ + 2π, v) = X(φ, −v)`` — exactly the seam identification.
- Cylinder: ``d = n₂`` (no turn).
- Torus: the cross-section is a circle of circumference ``2w`` (v periodic).

Public names: :class:`Centreline`, :class:`CircleCentreline`,
:class:`MillerCentreline`, :func:`band_points`, :func:`band_metric`.
All functions here are host-side NumPy float64 (geometry is computed once).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hhml.errors import LatticeError

FloatArray = NDArray[np.float64]


class Centreline:
    """A closed curve ``C(φ)``, ``φ ∈ [0, 2π)``, around the z axis.

    Subclasses implement :meth:`point`; the tangent is obtained by a
    fourth-order central difference (error ~1e-12 for the smooth curves here).
    """

    def point(self, phi: FloatArray) -> FloatArray:
        """Return ``C(φ)``, shape ``[*phi.shape, 3]`` (lattice length units)."""
        raise NotImplementedError

    def tangent(self, phi: FloatArray) -> FloatArray:
        """Return ``dC/dφ``, shape ``[*phi.shape, 3]``."""
        h = 1e-3
        return (
            -self.point(phi + 2 * h)
            + 8 * self.point(phi + h)
            - 8 * self.point(phi - h)
            + self.point(phi - 2 * h)
        ) / (12 * h)

    def frame(self, phi: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Unit normals ``(n₁, n₂)`` orthogonal to the tangent, periodic in φ.

        ``n₁`` is the cylindrical radial direction ``e_R`` with its tangential
        component removed; ``n₂ = n₁ × T``. For a circle in the z = 0 plane this
        gives ``n₁ = e_R`` and ``n₂ = e_z``.
        """
        t = self.tangent(phi)
        t = t / np.linalg.norm(t, axis=-1, keepdims=True)
        e_r = np.stack([np.cos(phi), np.sin(phi), np.zeros_like(phi)], axis=-1)
        n1 = e_r - np.sum(e_r * t, axis=-1, keepdims=True) * t
        n1 = n1 / np.linalg.norm(n1, axis=-1, keepdims=True)
        n2 = np.cross(n1, t)
        return n1, n2


@dataclass(frozen=True)
class CircleCentreline(Centreline):
    """Circle of radius ``radius`` in the z = 0 plane."""

    radius: float

    def point(self, phi: FloatArray) -> FloatArray:
        return np.stack(
            [self.radius * np.cos(phi), self.radius * np.sin(phi), np.zeros_like(phi)], axis=-1
        )


@dataclass(frozen=True)
class MillerCentreline(Centreline):
    """A curve on a Miller-shaped flux surface, one poloidal turn per toroidal turn.

    With poloidal angle ``χ = φ``:
    ``R = R0 + r cos(χ + arcsin(δ) sin χ)``, ``Z = κ r sin χ``,
    ``C = (R cos φ, R sin φ, Z)``. ``r = 0`` gives the circle of radius ``R0``.
    """

    major_radius: float
    minor_radius: float
    kappa: float = 1.0
    delta: float = 0.0

    def point(self, phi: FloatArray) -> FloatArray:
        chi = phi
        big_r = self.major_radius + self.minor_radius * np.cos(
            chi + math.asin(self.delta) * np.sin(chi)
        )
        z = self.kappa * self.minor_radius * np.sin(chi)
        return np.stack([big_r * np.cos(phi), big_r * np.sin(phi), z], axis=-1)


def band_points(
    centreline: Centreline,
    topology: str,
    u: FloatArray,
    v: FloatArray,
    length: float,
    half_width: float,
) -> FloatArray:
    """Embed chart points ``(u, v)`` of a band in R³.

    Parameters
    ----------
    centreline
        The band's centreline ``C(φ)``.
    topology
        ``"mobius"``, ``"cylinder"`` or ``"torus"``.
    u, v
        Chart coordinates (broadcastable arrays), lattice length units.
    length, half_width
        ``L`` and ``w`` of the chart.

    Returns
    -------
    ndarray
        Points, shape ``[*broadcast(u, v).shape, 3]``.
    """
    u, v = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)
    np.broadcast_shapes(u.shape, v.shape)  # raises on incompatible shapes
    # the centreline and its frame depend on u only: evaluate them on u's own shape
    # (e.g. [nu, 1]) and broadcast against v at the end
    phi = 2.0 * math.pi * u / length
    c = centreline.point(phi)
    n1, n2 = centreline.frame(phi)
    vv = v[..., None]
    if topology == "mobius":
        d = np.cos(phi / 2)[..., None] * n1 + np.sin(phi / 2)[..., None] * n2
        return np.asarray(c + vv * d, dtype=np.float64)
    if topology == "cylinder":
        return np.asarray(c + vv * n2, dtype=np.float64)
    if topology == "torus":
        tube = half_width / math.pi  # circumference 2w
        theta = (math.pi * v / half_width)[..., None]
        return np.asarray(c + tube * (np.cos(theta) * n1 + np.sin(theta) * n2), dtype=np.float64)
    raise LatticeError(
        f"topology = {topology!r} is not valid; choose 'mobius', 'cylinder', 'torus'"
    )


def band_metric(
    centreline: Centreline,
    topology: str,
    u: FloatArray,
    v: FloatArray,
    length: float,
    half_width: float,
) -> tuple[FloatArray, FloatArray]:
    """Diagonal induced metric ``(g_uu, g_vv)`` of the embedded band at ``(u, v)``.

    Derivatives are fourth-order central differences of :func:`band_points`
    (truncation error ~1e-12). The off-diagonal ``g_uv`` vanishes by
    construction; it is checked to be below 1e-8·√(g_uu g_vv).

    Returns
    -------
    g_uu, g_vv
        Arrays of shape ``broadcast(u, v).shape`` (dimensionless for v,
        (length/length)² for u since u and X share length units).
    """
    u, v = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)

    # the four stencil points of each derivative in one band_points call: a new axis
    # of length 4 in front of the chart axes (after any leading centreline axis)
    stencil = np.array([2.0, 1.0, -1.0, -2.0]).reshape(4, *([1] * max(u.ndim, v.ndim)))
    axis = -(max(u.ndim, v.ndim) + 2)

    def derivative(shift_u: float, shift_v: float) -> FloatArray:
        # a v-derivative keeps u fixed: give u a singleton stencil axis instead of four
        # copies, so the centreline frame is evaluated once, not at every stencil point
        u_pts = u + stencil * shift_u if shift_u else u[None]
        v_pts = v + stencil * shift_v if shift_v else v[None]
        pts = band_points(centreline, topology, u_pts, v_pts, length, half_width)
        p2, p1, m1, m2 = (np.take(pts, k, axis=axis) for k in range(4))
        return np.asarray((-p2 + 8.0 * p1 - 8.0 * m1 + m2) / 12.0, dtype=np.float64)

    hu = 1e-3 * length / (2.0 * math.pi)
    hv = 1e-3 * half_width
    xu = derivative(hu, 0.0) / hu
    xv = derivative(0.0, hv) / hv
    g_uu = np.sum(xu * xu, axis=-1)
    g_vv = np.sum(xv * xv, axis=-1)
    g_uv = np.sum(xu * xv, axis=-1)
    if np.any(np.abs(g_uv) > 1e-8 * np.sqrt(g_uu * g_vv)):
        raise LatticeError("embedded band metric is not diagonal (g_uv ≠ 0); geometry is invalid")
    return g_uu, g_vv
