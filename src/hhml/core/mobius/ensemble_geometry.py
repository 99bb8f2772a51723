"""Batched embedded geometry of stacked Miller–Möbius bands, in torch (any device).

What :class:`~hhml.core.mobius.LatticeEnsemble` needs every time an environment
changes its geometry, computed for ``B`` stacks of ``S`` strips at once in float64
on the ensemble's device, without a host round trip (no ``.item()``, no
data-dependent shapes, no NumPy):

- the induced metric at the cell centres (``√g``), at the u-faces
  ``u_i + Δu/2`` (``√g g^{uu}``) and at the ``nv + 1`` v-faces (``√g g^{vv}``)
  (:meth:`MillerBandGeometry.evaluate`);
- the finite-volume face coefficients and cell areas built from them
  (:func:`face_coefficients`, the batched form of ``MobiusStrip._build_coefficients``,
  and its fused equivalent :meth:`MillerBandGeometry.coefficients`);
- the embedded distance between neighbouring strips at every node;
- the embedded cell centres ``[B, S, nu, nv, 3]``.

Geometry (as in :mod:`hhml.core.mobius.geometry`): strip ``s`` of element ``b``
follows the Miller centreline with ``R0 = aspect_b·w``, ``r = s·strip_spacing·w``,
``κ_b``, ``δ_b``::

    R(φ) = R0 + r cos(φ + arcsin(δ) sin φ),   Z(φ) = κ r sin φ,   φ = 2πu/L,

and the band is ``X(u, v) = C(φ) + Σ_k c_k(v) f_k(φ)`` with the frame
``n₁ = unit(e_R − (e_R·T)T)``, ``n₂ = n₁ × T``:

- Möbius: ``c = (v)``, ``f = (d)``, ``d = cos(φ/2) n₁ + sin(φ/2) n₂``;
- cylinder: ``c = (v)``, ``f = (n₂)``;
- torus: ``c = (ρ cos ϑ, ρ sin ϑ)``, ``f = (n₁, n₂)``, ``ϑ = πv/w``, ``ρ = w/π``.

Method. Vectors are written in the rotating cylindrical basis ``(e_R, e_φ, e_z)``
(``e_R' = e_φ``, ``e_φ' = −e_R``), where ``C' = (R', R, Z')`` and
``C'' = (R'' − R, 2R', Z'')``. With ``s = |C'|`` and ``q = √(R² + Z'²)`` the frame
is closed-form, ``n₁ = (q/s, −R'R/(sq), −R'Z'/(sq))``, ``n₂ = (0, −Z'/q, R/q)``, and
it moves as ``n₁' = α T + τ n₂``, ``n₂' = β T − τ n₁`` with the scalars

    α = −C''·n₁/s,   β = −C''·n₂/s,   τ = n₁'·n₂ = −(Z's² + R'q C''·n₂)/(s q²),

all analytic in φ (no finite differences). The metric follows without any vector
algebra: ``g_vv = |X_v|² = 1``, ``g_uv = 0`` (Möbius, cylinder) and ``g_uv = kρτ``
(torus: the tube frame twists), and ``g_uu = k²|X_φ|²`` (``k = 2π/L``) with

    Möbius    |X_φ|² = (s + vγ)² + v²(½ + τ)²,   γ = α cos(φ/2) + β sin(φ/2),
    cylinder  |X_φ|² = (s + vβ)² + v²τ²,
    torus     |X_φ|² = (s + ρ(α cos ϑ + β sin ϑ))² + ρ²τ²,

a quadratic form in ``c(v)``: per-φ features ``[B·S, 2nu, F]`` times a fixed
``[F, n_v]`` basis gives the metric on the whole grid in one matrix product.
The squared strip distances ``|ΔC + Σ_k c_k Δf_k|²`` (same φ, same v) are the
same kind of quadratic form in the vectors at the cell centres.

The C++ kernel :mod:`hhml.core.mobius.geometry_kernel` evaluates the same formulas
in one pass on the CPU, from :meth:`MillerBandGeometry.kernel_tensors`.

Public names: :class:`MillerBandGeometry` (``evaluate``, ``coefficients``,
``distances``, ``points``, ``offdiagonal``, ``kernel_tensors``), :class:`BandMetric`,
:class:`LaplacianGeometry`, :class:`CentrelineFrame`, :func:`miller_frame`,
:func:`face_coefficients`.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from hhml.core.mobius.neighbours import u_minus
from hhml.errors import LatticeError

__all__ = [
    "BandMetric",
    "CentrelineFrame",
    "LaplacianGeometry",
    "MillerBandGeometry",
    "face_coefficients",
    "miller_frame",
]

_TOPOLOGIES = ("mobius", "cylinder", "torus")


class CentrelineFrame(NamedTuple):
    """Centrelines, their normal frames and the rates at which the frames turn.

    Vectors are ``[3, M, P]`` (component first; ``M`` curves, ``P`` angles) in the
    rotating cylindrical basis ``(e_R, e_φ, e_z)`` at the same ``φ``; scalars are
    ``[M, P]``. The frame equations are ``n₁' = α T + τ n₂``, ``n₂' = β T − τ n₁``
    (``'`` = d/dφ).

    Attributes
    ----------
    point : Tensor
        ``C(φ)`` (length units).
    n1, n2 : Tensor
        Unit normals.
    speed : Tensor
        ``|C'(φ)|`` (length units per radian).
    alpha, beta, tau : Tensor
        ``n₁'·T``, ``n₂'·T`` and ``n₁'·n₂`` (per radian).
    """

    point: Tensor
    n1: Tensor
    n2: Tensor
    speed: Tensor
    alpha: Tensor
    beta: Tensor
    tau: Tensor


class BandMetric(NamedTuple):
    """Induced metric of every strip of every element and the strip distances.

    Attributes
    ----------
    sqrt_g : Tensor
        ``√g`` at the cell centres ``(u_i, v_j)``, ``[B, S, nu, nv]`` (dimensionless:
        u, v and X share length units).
    a_face : Tensor
        ``√g g^{uu}`` at the u-faces ``(u_i + Δu/2, v_j)``, ``[B, S, nu, nv]``; the last
        one (``u = L``) is the seam face.
    b_faces : Tensor
        ``√g g^{vv}`` at ``(u_i, −w + jΔv)``, ``j = 0..nv``, ``[B, S, nu, nv + 1]``.
    distances : Tensor
        Embedded distance between the nodes ``(u_i, v_j)`` of strips ``s`` and
        ``s + 1``, ``[B, S − 1, nu, nv]`` (length units).
    """

    sqrt_g: Tensor
    a_face: Tensor
    b_faces: Tensor
    distances: Tensor


class LaplacianGeometry(NamedTuple):
    """What the ensemble's Laplacian and coupling need (:meth:`MillerBandGeometry.coefficients`).

    Attributes
    ----------
    coefficients : tuple of Tensor
        ``(c_u+, c_u−, c_v+, c_v−)`` as in :func:`face_coefficients`, each
        ``[B, S, nu, nv]`` (1/length²).
    area : Tensor
        Cell areas ``√g Δu Δv``, ``[B, S, nu, nv]`` (length²).
    distances : Tensor
        Embedded distance between neighbouring strips, ``[B, S − 1, nu, nv]``.
    """

    coefficients: tuple[Tensor, Tensor, Tensor, Tensor]
    area: Tensor
    distances: Tensor


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """Dot product of component-first vectors ``[3, ...]`` → ``[...]``."""
    return (a * b).sum(dim=0)


def miller_frame(
    phi: Tensor, major: Tensor, minor: Tensor, kappa: Tensor, delta: Tensor
) -> CentrelineFrame:
    """Miller centrelines, their frames and the frames' turning rates, in closed form.

    Parameters
    ----------
    phi
        Toroidal angles, ``[P]`` (radians), float64.
    major, minor, kappa, delta
        ``R0``, ``r`` (length units), ``κ``, ``δ`` of ``M`` curves, each ``[M]``,
        float64 on the device of ``phi``. Requires ``|δ| < 1`` and ``R0 > r``: then
        ``R > 0``, the tangent is never radial and the frame is defined everywhere.

    Returns
    -------
    CentrelineFrame
        Vectors ``[3, M, P]`` (cylindrical components) and scalars ``[M, P]``.
    """
    col = (-1, 1)
    r0, r, kap = major.reshape(col), minor.reshape(col), kappa.reshape(col)
    a = torch.asin(delta).reshape(col)
    cos_p, sin_p = torch.cos(phi), torch.sin(phi)
    psi = phi + a * sin_p
    cos_s, sin_s = torch.cos(psi), torch.sin(psi)
    dpsi = 1.0 + a * cos_p
    big_r = r0 + r * cos_s
    d_r = -r * sin_s * dpsi  # R'
    dd_r = r * (a * sin_s * sin_p - cos_s * dpsi * dpsi)  # R''
    z = kap * r * sin_p
    d_z = kap * r * cos_p  # Z' (and Z'' = −Z)
    q = torch.sqrt(big_r * big_r + d_z * d_z)
    speed = torch.sqrt(d_r * d_r + q * q)
    # C'' = (R'' − R, 2R', −Z) projected on n₁ = (q/s, −R'R/(sq), −R'Z'/(sq)) and
    # n₂ = (0, −Z'/q, R/q)
    acc_n2 = (big_r * -z - 2.0 * d_r * d_z) / q
    acc_n1 = ((dd_r - big_r) * q * q - d_r * (2.0 * d_r * big_r - z * d_z)) / (speed * q)
    alpha = -acc_n1 / speed
    beta = -acc_n2 / speed
    tau = -(d_z * speed * speed + d_r * q * acc_n2) / (speed * q * q)
    sq = speed * q
    n1 = torch.stack([q / speed, -d_r * big_r / sq, -d_r * d_z / sq])
    n2 = torch.stack([torch.zeros_like(q), -d_z / q, big_r / q])
    point = torch.stack([big_r, torch.zeros_like(big_r), z])
    return CentrelineFrame(point, n1, n2, speed, alpha, beta, tau)


def _quadratic_features(a0: Tensor, vecs: list[Tensor]) -> Tensor:
    """``[a0·a0, a0·f_k, f_k·f_l (k ≤ l)]`` of vectors ``[3, ...]``, stacked last: ``[..., F]``."""
    feats = [_dot(a0, a0)] + [_dot(a0, f) for f in vecs]
    for k in range(len(vecs)):
        feats += [_dot(vecs[k], vecs[m]) for m in range(k, len(vecs))]
    return torch.stack(feats, dim=-1)


def _on_grid(feats: Tensor, basis: Tensor) -> Tensor:
    """``feats [..., F] @ basis [F, n]`` as one 2-D matrix product → ``[..., n]``."""
    return (feats.reshape(-1, feats.shape[-1]) @ basis).reshape(*feats.shape[:-1], basis.shape[1])


def _quadratic_basis(c: Tensor) -> Tensor:
    """Rows ``[1, 2c_k, c_k c_l (×2 if k < l)]`` so that ``features @ basis``
    is ``|a0 + Σ_k c_k f_k|²``; ``c`` is ``[n, K]``, the result ``[F, n]``."""
    rows = [torch.ones_like(c[:, 0])] + [2.0 * c[:, k] for k in range(c.shape[1])]
    for k in range(c.shape[1]):
        rows += [(1.0 if m == k else 2.0) * c[:, k] * c[:, m] for m in range(k, c.shape[1])]
    return torch.stack(rows)


class MillerBandGeometry:
    """Induced metric and strip distances of ``B`` stacks of Miller–Möbius strips.

    The chart (grid, topology, strip count and spacing) is fixed at construction,
    and every function of it (angles, ``v``-dependent factors) is kept on
    ``device``; the methods take the per-element shape ``(aspect, κ, δ)`` as
    float64 tensors ``[B]`` on that device and launch device work only. Inputs
    are not validated (that would need their values on the host): keep
    ``|δ| < 1`` and ``aspect > (S − 1)·strip_spacing + 1``.

    Parameters
    ----------
    strips
        Strips per stack ``S ≥ 1``; strip ``s`` has minor radius ``s·strip_spacing·w``.
    nu, nv
        Cells along and across each strip (cell-centred grid of
        :class:`~hhml.core.mobius.MobiusStrip`).
    strip_spacing
        Distance between neighbouring centrelines in units of ``w``.
    length, half_width
        Chart length ``L`` and half-width ``w`` (length units).
    topology
        ``"mobius"``, ``"cylinder"`` or ``"torus"``.
    device
        Device of the inputs and outputs.
    """

    def __init__(
        self,
        strips: int,
        nu: int,
        nv: int,
        *,
        strip_spacing: float,
        length: float,
        half_width: float,
        topology: str,
        device: torch.device | str = "cpu",
    ) -> None:
        if topology not in _TOPOLOGIES:
            raise LatticeError(
                f"topology = {topology!r} is not valid; choose 'mobius', 'cylinder', 'torus'"
            )
        self.strips, self.nu, self.nv = strips, nu, nv
        self.topology = topology
        self.length, self.half_width = float(length), float(half_width)
        self.device = torch.device(device)
        self.du, self.dv = self.length / nu, 2.0 * self.half_width / nv
        self.k = 2.0 * math.pi / self.length  # dφ/du (1/length)
        # the chart grid, built as MobiusStrip builds it (same float64 values)
        u_c = (np.arange(nu) + 0.5) * self.du
        u_all = np.concatenate([u_c, u_c + self.du / 2])
        v_c = (np.arange(nv) + 0.5 - nv / 2) * self.dv
        v_f = -self.half_width + np.arange(nv + 1) * self.dv

        def tensor(x: NDArray[np.floating[Any]]) -> Tensor:
            return torch.tensor(x, dtype=torch.float64, device=self.device)

        #: φ at the cell centres (first nu) and at the u-faces (last nu), [2 nu]
        self.phi = tensor(2.0 * math.pi * u_all / self.length)
        half = 0.5 * self.phi
        self._cos_half, self._sin_half = torch.cos(half), torch.sin(half)
        self._minor = tensor(np.arange(strips) * float(strip_spacing) * self.half_width)
        # c_k(v) on the v centres, then the v faces: [2nv + 1, K]
        c_all = tensor(self._offsets(np.concatenate([v_c, v_f])))
        self._c_centre = c_all[:nv]
        # g_uu = k²|X_φ|² on (u, v): features [.., F] @ basis [F, n_v]
        self._metric_all = _quadratic_basis(c_all) * (self.k * self.k)  # [F, 2nv + 1]
        self._metric_centre = self._metric_all[:, :nv].contiguous()
        self._distance_basis = _quadratic_basis(self._c_centre).contiguous()  # [F, nv]
        # the same with the cell factors of the coefficients folded in (see coefficients)
        self._g_u_faces = self._metric_centre * self.du**4
        self._g_v_faces = self._metric_all[:, nv:] / self.dv**4
        self._cos_phi, self._sin_phi = torch.cos(self.phi), torch.sin(self.phi)

    def kernel_tensors(self) -> tuple[Tensor, ...]:
        """The fixed chart tensors the C++ geometry kernel reads (float64, contiguous).

        Returns
        -------
        tuple of Tensor
            ``φ``, ``cos φ``, ``sin φ``, ``cos(φ/2)``, ``sin(φ/2)`` (each ``[2nu]``: cell
            centres, then u-faces), the minor radii ``[S]`` (length units), and the
            ``v``-bases ``[F, nv]`` (centres), ``[F, nv]`` (u-faces, × Δu⁴),
            ``[F, nv + 1]`` (v-faces, ÷ Δv⁴) and ``[F, nv]`` (strip distances).
        """
        return (
            self.phi,
            self._cos_phi,
            self._sin_phi,
            self._cos_half,
            self._sin_half,
            self._minor,
            self._metric_centre,
            self._g_u_faces,
            self._g_v_faces,
            self._distance_basis,
        )

    def _offsets(self, v: NDArray[np.float64]) -> NDArray[np.float64]:
        """Cross-section coordinates ``c_k(v)``, ``[n, K]`` (``|dX/dv| = 1``)."""
        if self.topology == "torus":
            tube = self.half_width / math.pi  # circumference 2w
            theta = math.pi * v / self.half_width
            return np.stack([tube * np.cos(theta), tube * np.sin(theta)], axis=-1)
        return v[:, None]

    def _frames(self, aspect: Tensor, kappa: Tensor, delta: Tensor) -> CentrelineFrame:
        """Frames of all ``B·S`` centrelines at :attr:`phi` (``P = 2nu``)."""
        S, w = self.strips, self.half_width
        B = aspect.shape[0]

        def per_strip(x: Tensor) -> Tensor:  # [B] → [B·S], element-major
            return x.reshape(B, 1).expand(B, S).reshape(B * S)

        return miller_frame(
            self.phi,
            per_strip(aspect * w),
            self._minor.reshape(1, S).expand(B, S).reshape(B * S),
            per_strip(kappa),
            per_strip(delta),
        )

    def _metric_features(self, frame: CentrelineFrame) -> Tensor:
        """Features ``[B·S, 2nu, F]`` of ``|X_φ|²`` for :func:`_quadratic_basis`:
        ``[|C'|², C'·f_k', f_k'·f_l' (k ≤ l)]`` from the frame equations."""
        s, al, be, tau = frame.speed, frame.alpha, frame.beta, frame.tau
        if self.topology == "mobius":
            # d' = γ T + (½ + τ)(cos(φ/2) n₂ − sin(φ/2) n₁), γ = α cos(φ/2) + β sin(φ/2)
            gamma = al * self._cos_half + be * self._sin_half
            return torch.stack([s * s, s * gamma, gamma * gamma + (0.5 + tau) ** 2], dim=-1)
        tau2 = tau * tau
        if self.topology == "cylinder":  # n₂' = β T − τ n₁
            return torch.stack([s * s, s * be, be * be + tau2], dim=-1)
        return torch.stack([s * s, s * al, s * be, al * al + tau2, al * be, be * be + tau2], dim=-1)

    def _sections(self, frame: CentrelineFrame, nu: int) -> list[Tensor]:
        """Cross-section directions ``f_k`` at the first ``nu`` angles, ``[3, B·S, nu]``."""
        n1, n2 = frame.n1[..., :nu], frame.n2[..., :nu]
        if self.topology == "mobius":
            return [self._cos_half[:nu] * n1 + self._sin_half[:nu] * n2]
        if self.topology == "cylinder":
            return [n2]
        return [n1, n2]

    def evaluate(self, aspect: Tensor, kappa: Tensor, delta: Tensor) -> BandMetric:
        """Metric of every strip and the distances between neighbouring strips.

        Parameters
        ----------
        aspect, kappa, delta
            ``R0/w``, ``κ``, ``δ`` of each element, float64 ``[B]`` on :attr:`device`.

        Returns
        -------
        BandMetric
            ``sqrt_g``, ``a_face``, ``b_faces``, ``distances`` (see :class:`BandMetric`).
        """
        B, S, nu, nv = aspect.shape[0], self.strips, self.nu, self.nv
        frame = self._frames(aspect, kappa, delta)
        feats = self._metric_features(frame)
        root = torch.sqrt(_on_grid(feats[:, :nu], self._metric_all))  # √g_uu: v centres, v faces
        a_face = torch.rsqrt(_on_grid(feats[:, nu:], self._metric_centre))  # √(g_vv/g_uu), u faces
        shape = (B, S, nu)
        return BandMetric(
            root[..., :nv].reshape(*shape, nv),
            a_face.reshape(*shape, nv),
            root[..., nv:].reshape(*shape, nv + 1),
            self._distances(frame, B),
        )

    def coefficients(self, aspect: Tensor, kappa: Tensor, delta: Tensor) -> LaplacianGeometry:
        """Finite-volume coefficients, cell areas and strip distances, fused.

        Equal (to rounding) to :func:`face_coefficients` applied to :meth:`evaluate`,
        with the cell factors folded into the ``v``-basis so that each coefficient
        takes two or three passes over ``[B, S, nu, nv]`` (``g_vv = 1``):
        ``c_u± = 1/√(g_uu(face) Δu⁴ · g_uu(centre))``,
        ``c_v± = √(g_uu(face) / (Δv⁴ g_uu(centre)))``.

        Parameters
        ----------
        aspect, kappa, delta
            As in :meth:`evaluate`.

        Returns
        -------
        LaplacianGeometry
            Coefficients ``(c_u+, c_u−, c_v+, c_v−)`` (1/length²) and areas
            ``√g Δu Δv`` (length²), each float64 ``[B, S, nu, nv]``, and the strip
            distances ``[B, S − 1, nu, nv]``.
        """
        B, S, nu, nv = aspect.shape[0], self.strips, self.nu, self.nv
        frame = self._frames(aspect, kappa, delta)
        feats = self._metric_features(frame)
        shape = (B, S, nu)
        g_c = _on_grid(feats[:, :nu], self._metric_centre).reshape(*shape, nv)
        g_u = _on_grid(feats[:, nu:], self._g_u_faces).reshape(*shape, nv)  # × Δu⁴
        g_v = _on_grid(feats[:, :nu], self._g_v_faces).reshape(*shape, nv + 1)  # ÷ Δv⁴
        # each face value is shared by the two cells it separates (seam-aware for u)
        g_u_minus = u_minus(g_u, self.topology == "mobius")
        if self.topology == "torus":
            g_v_minus = torch.cat([g_v[..., -1:], g_v[..., 1:-1]], dim=-1)
        else:
            g_v_minus = g_v[..., :-1]
        # in-place where a buffer is no longer needed (fewer large allocations)
        c_v_plus = (g_v[..., 1:] / g_c).sqrt_()
        c_v_minus = (g_v_minus / g_c).sqrt_()
        coefficients = (g_u.mul_(g_c).rsqrt_(), g_u_minus.mul_(g_c).rsqrt_(), c_v_plus, c_v_minus)
        area = g_c.sqrt_().mul_(self.du * self.dv)
        return LaplacianGeometry(coefficients, area, self._distances(frame, B))

    def distances(self, aspect: Tensor, kappa: Tensor, delta: Tensor) -> Tensor:
        """Embedded distance between neighbouring strips, ``[B, S − 1, nu, nv]``.

        The ``distances`` field of :meth:`evaluate`, without the metric.
        """
        return self._distances(self._frames(aspect, kappa, delta), aspect.shape[0])

    def _distances(self, frame: CentrelineFrame, B: int) -> Tensor:
        # |ΔC + Σ c_k Δf_k|² between strips s + 1 and s at the cell centres (same φ, v)
        nu = self.nu
        shape = (3, B, self.strips, nu)
        point = frame.point[..., :nu].reshape(shape)
        dirs = [f.reshape(shape) for f in self._sections(frame, nu)]
        feats = _quadratic_features(
            point[:, :, 1:] - point[:, :, :-1], [f[:, :, 1:] - f[:, :, :-1] for f in dirs]
        )
        # rounding can leave −1e-16 where two strips touch; such geometry is rejected
        # by the ensemble's aspect check, so the clamp never changes a valid distance
        return _on_grid(feats, self._distance_basis).clamp_min_(0.0).sqrt_()

    def points(self, aspect: Tensor, kappa: Tensor, delta: Tensor) -> Tensor:
        """Embedded cell centres in Cartesian coordinates, ``[B, S, nu, nv, 3]``."""
        B, S, nu, nv = aspect.shape[0], self.strips, self.nu, self.nv
        frame = self._frames(aspect, kappa, delta)
        pts = frame.point[..., :nu, None]  # [3, B·S, nu, 1]
        for j, f in enumerate(self._sections(frame, nu)):
            pts = pts + f[..., None] * self._c_centre[:, j]
        cos_p = torch.cos(self.phi[:nu]).reshape(nu, 1)
        sin_p = torch.sin(self.phi[:nu]).reshape(nu, 1)
        x = pts[0] * cos_p - pts[1] * sin_p
        y = pts[0] * sin_p + pts[1] * cos_p
        return torch.stack([x, y, pts[2]], dim=-1).reshape(B, S, nu, nv, 3)

    def offdiagonal(self, aspect: Tensor, kappa: Tensor, delta: Tensor) -> Tensor:
        """Largest ``|g_uv| / √(g_uu g_vv)`` of each element, ``[B]``.

        Over the points where the metric is used (centres, u-faces, v-faces). It is
        identically 0 for the Möbius band and the cylinder (``X_φ·X_v`` cancels in
        the frame equations); for the torus ``g_uv = kρτ``: the tube frame twists
        unless the centreline is planar.
        """
        B = aspect.shape[0]
        if self.topology != "torus":
            return torch.zeros_like(aspect)
        nu = self.nu
        frame = self._frames(aspect, kappa, delta)
        feats = self._metric_features(frame)
        g_uv = (self.k * self.half_width / math.pi) * frame.tau.abs()  # [B·S, 2nu]
        ratio_c = g_uv[:, :nu, None] * torch.rsqrt(_on_grid(feats[:, :nu], self._metric_all))
        ratio_f = g_uv[:, nu:, None] * torch.rsqrt(_on_grid(feats[:, nu:], self._metric_centre))
        return torch.cat([ratio_c.reshape(B, -1), ratio_f.reshape(B, -1)], dim=1).amax(dim=1)


def face_coefficients(
    sqrt_g: Tensor,
    a_face: Tensor,
    b_faces: Tensor,
    du: float,
    dv: float,
    flip: bool,
    periodic_v: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Finite-volume coefficients ``(c_u+, c_u−, c_v+, c_v−)`` of the Laplacian.

    The batched counterpart of ``MobiusStrip._build_coefficients``: each face
    coefficient is shared by the two cells it separates (the −u face of cell
    ``i`` is the +u face of its seam-aware −u neighbour) and divided by
    ``√g Δ²`` of the cell it acts on.

    Parameters
    ----------
    sqrt_g, a_face
        ``√g`` at the centres and ``√g g^{uu}`` at the +u faces, ``[..., nu, nv]``.
    b_faces
        ``√g g^{vv}`` at the v-faces, ``[..., nu, nv + 1]``.
    du, dv
        Cell sizes (length units).
    flip, periodic_v
        Seam flip (Möbius) and periodic v (torus).

    Returns
    -------
    tuple of Tensor
        Four tensors ``[..., nu, nv]`` (1/length²), dtype of the inputs.
    """
    a_minus = u_minus(a_face, flip)
    b_plus = b_faces[..., 1:]
    if periodic_v:
        b_minus = torch.cat([b_faces[..., -1:], b_faces[..., 1:-1]], dim=-1)
    else:
        b_minus = b_faces[..., :-1]
    su, sv = sqrt_g * du * du, sqrt_g * dv * dv
    return a_face / su, a_minus / su, b_plus / sv, b_minus / sv
