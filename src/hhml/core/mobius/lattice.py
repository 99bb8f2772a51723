"""The Möbius-strip lattice and its seam-aware Laplacian.

Public names: :class:`MobiusStrip`, :data:`TOPOLOGIES`, :data:`EDGES`, :data:`METRICS`.

Geometry (docs/physics.md, geometry): chart coordinates ``u ∈ [0, L)`` along the band and
``v ∈ (−w, w)`` across it on a cell-centred grid ``u_i = (i+½)Δu``,
``v_j = −w + (j+½)Δv`` so that ``−v_j = v_{nv−1−j}`` exactly. The seam
identification is ``ψ(u+L, v) = e^{iθ} ψ(u, −v)``; topology ``cylinder``
drops the flip and ``torus`` is additionally periodic in v.

The Laplacian is a conservative finite-volume Laplace–Beltrami operator

    (Δψ)_ij = 1/√g_ij · [ Σ_u-faces a (ψ_nb − ψ_ij)/Δu² + Σ_v-faces b (ψ_nb − ψ_ij)/Δv² ],

with face coefficients ``a = √g g^{uu}``, ``b = √g g^{vv}`` evaluated at the
face midpoints. Because each face coefficient is shared by the two cells it
separates, ``W Δ`` is Hermitian for ``W = diag(area_weights())``: the operator
is self-adjoint with respect to the cell areas. For ``metric="flat"`` all
coefficients are 1 and this is the standard five-point stencil.
"""

from __future__ import annotations

import cmath
import math
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from hhml.core.mobius.geometry import Centreline, CircleCentreline, band_metric, band_points
from hhml.core.mobius.neighbours import u_minus, u_plus, v_minus, v_plus
from hhml.errors import LatticeError

TOPOLOGIES = ("mobius", "cylinder", "torus")
EDGES = ("dirichlet", "neumann")
METRICS = ("flat", "embedded")
_COMPLEX_DTYPES = (torch.complex64, torch.complex128)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        valid = ", ".join(repr(a) for a in allowed)
        raise LatticeError(f"{name} = {value!r} is not valid; choose one of {valid}")
    return value


class MobiusStrip:
    """A band lattice: Möbius strip (default), or cylinder/torus controls.

    Parameters
    ----------
    nu, nv
        Number of cells along (u) and across (v) the band. ``nu ≥ 2``, ``nv ≥ 2``.
    length
        Chart length ``L`` of the band (lattice length units).
    half_width
        Half-width ``w``; ``v ∈ (−w, w)``.
    topology
        ``"mobius"`` (seam flip), ``"cylinder"`` (no flip) or ``"torus"``
        (no flip, periodic in v).
    edge
        Boundary condition at ``v = ±w``: ``"dirichlet"`` (ghost = −ψ, ψ ≈ 0 on
        the edge) or ``"neumann"`` (ghost = +ψ, zero normal derivative). Ignored
        for the torus.
    twist
        Seam twist phase θ (radians) in ``ψ(u+L, v) = e^{iθ} ψ(u, −v)``.
    metric
        ``"flat"`` (unit metric, used for validation) or ``"embedded"`` (the
        induced metric of :meth:`embedding`).
    aspect
        ``R/w`` of the embedding: the centreline radius is ``aspect · w``.
    dtype
        Complex dtype of fields on this lattice (``torch.complex64`` or
        ``torch.complex128``).
    device
        Torch device for coordinate and coefficient tensors.
    centreline
        Optional centreline of the embedding (used by
        :class:`~hhml.core.mobius.TokamakStack`); default a circle of radius
        ``aspect · w``.

    Attributes
    ----------
    u : Tensor
        Cell-centre u coordinates, shape ``[nu]``, real dtype.
    v : Tensor
        Cell-centre v coordinates, shape ``[nv]``, real dtype.
    du, dv : float
        Cell sizes ``L/nu`` and ``2w/nv``.
    """

    def __init__(
        self,
        nu: int,
        nv: int,
        length: float = 2.0 * math.pi,
        half_width: float = 1.0,
        topology: str = "mobius",
        edge: str = "dirichlet",
        twist: float = 0.0,
        metric: str = "flat",
        aspect: float = 3.0,
        dtype: torch.dtype = torch.complex64,
        device: torch.device | str = "cpu",
        centreline: Centreline | None = None,
    ) -> None:
        for name, n in (("nu", nu), ("nv", nv)):
            if isinstance(n, bool) or not isinstance(n, int) or n < 2:
                raise LatticeError(f"{name} = {n!r} is not valid; it must be an integer ≥ 2")
        for name, x in (("length", length), ("half_width", half_width), ("aspect", aspect)):
            if not (isinstance(x, (int, float)) and math.isfinite(x) and x > 0):
                raise LatticeError(f"{name} = {x!r} is not valid; it must be a finite number > 0")
        if dtype not in _COMPLEX_DTYPES:
            raise LatticeError(
                f"dtype = {dtype} is not valid; choose torch.complex64 or complex128"
            )
        self.nu = nu
        self.nv = nv
        self.length = float(length)
        self.half_width = float(half_width)
        self.topology = _choice("topology", topology, TOPOLOGIES)
        self.edge = _choice("edge", edge, EDGES)
        self.metric = _choice("metric", metric, METRICS)
        self.aspect = float(aspect)
        self.dtype = dtype
        self.real_dtype = torch.float64 if dtype == torch.complex128 else torch.float32
        self.device = torch.device(device)
        if metric == "embedded" and centreline is None and self.aspect <= 1.0:
            raise LatticeError(f"aspect = {aspect} is not valid for an embedded band; need > 1")
        self.centreline: Centreline = centreline or CircleCentreline(self.aspect * self.half_width)
        self.du = self.length / nu
        self.dv = 2.0 * self.half_width / nv
        self.flip = self.topology == "mobius"
        self.periodic_v = self.topology == "torus"
        self.ghost_sign = -1.0 if self.edge == "dirichlet" else 1.0
        self._u_np: NDArray[np.float64] = np.asarray(
            (np.arange(nu) + 0.5) * self.du, dtype=np.float64
        )
        self._v_np: NDArray[np.float64] = np.asarray(
            # (j + ½ − nv/2) is exact in binary, so −v_j == v_{nv−1−j} holds bit for bit
            (np.arange(nv) + 0.5 - nv / 2) * self.dv,
            dtype=np.float64,
        )
        self.u = torch.tensor(self._u_np, dtype=self.real_dtype, device=self.device)
        self.v = torch.tensor(self._v_np, dtype=self.real_dtype, device=self.device)
        self.twist = twist  # property: validates and caches e^{iθ}
        self._build_coefficients()

    # ------------------------------------------------------------------ basics
    @property
    def twist(self) -> float:
        """Seam twist phase θ in radians; setting it updates the seam factor."""
        return self._twist

    @twist.setter
    def twist(self, value: float) -> None:
        if not (isinstance(value, (int, float)) and math.isfinite(value)):
            raise LatticeError(f"twist = {value!r} is not valid; it must be a finite angle")
        self._twist = float(value)
        self._phase: complex | None = cmath.exp(1j * self._twist) if self._twist != 0.0 else None

    @property
    def seam_phase(self) -> complex | None:
        """``e^{iθ}`` or None when θ = 0."""
        return self._phase

    @property
    def field_shape(self) -> tuple[int, ...]:
        """Trailing shape of a field on this lattice: ``(nu, nv)``."""
        return (self.nu, self.nv)

    @property
    def plaquette_shape(self) -> tuple[int, int]:
        """Shape of the plaquette-charge array: ``(nu, nv−1)``, ``(nu, nv)`` for a torus."""
        return (self.nu, self.nv if self.periodic_v else self.nv - 1)

    def __repr__(self) -> str:
        return (
            f"MobiusStrip(nu={self.nu}, nv={self.nv}, length={self.length:g}, "
            f"half_width={self.half_width:g}, topology={self.topology!r}, edge={self.edge!r}, "
            f"twist={self.twist:g}, metric={self.metric!r}, aspect={self.aspect:g}, "
            f"dtype={self.dtype}, device={self.device})"
        )

    def check_field(self, psi: Tensor, name: str = "psi") -> None:
        """Raise :class:`LatticeError` unless ``psi`` is a complex ``[..., nu, nv]`` tensor."""
        if not isinstance(psi, Tensor):
            raise LatticeError(f"{name} must be a torch.Tensor, got {type(psi).__name__}")
        if tuple(psi.shape[-2:]) != self.field_shape or psi.dim() < 2:
            raise LatticeError(
                f"{name} has shape {tuple(psi.shape)}; expected [..., {self.nu}, {self.nv}] "
                f"for {self!r}"
            )
        if not psi.is_complex():
            raise LatticeError(f"{name} has dtype {psi.dtype}; a complex dtype is required")

    def coordinates(self) -> tuple[Tensor, Tensor]:
        """Cell-centre coordinate grids ``(U, V)``, each of shape ``[nu, nv]``."""
        uu, vv = torch.meshgrid(self.u, self.v, indexing="ij")
        return uu, vv

    def zeros(self, *batch: int) -> Tensor:
        """A zero field of shape ``[*batch, nu, nv]`` on this lattice's device/dtype."""
        return torch.zeros(*batch, *self.field_shape, dtype=self.dtype, device=self.device)

    # ---------------------------------------------------------------- geometry
    def embedding(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Cell centres embedded in R³: arrays ``x, y, z`` of shape ``[nu, nv]``.

        Möbius: ``X = C(φ) + v (cos(φ/2) n₁ + sin(φ/2) n₂)`` with ``φ = 2πu/L``,
        so ``X(u+L, v) = X(u, −v)``. See :mod:`hhml.core.mobius.geometry`.
        """
        pts = band_points(
            self.centreline,
            self.topology,
            self._u_np[:, None],
            self._v_np[None, :],
            self.length,
            self.half_width,
        )
        return pts[..., 0], pts[..., 1], pts[..., 2]

    def area_weights(self) -> Tensor:
        """Cell areas ``√g Δu Δv``, shape ``[nu, nv]``, real dtype (length²)."""
        return self._area.clone()

    def _metric_sqrt_ratio(
        self, u: NDArray[np.float64], v: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """``(√g, √g g^{uu}, √g g^{vv})`` at chart points."""
        g_uu, g_vv = band_metric(self.centreline, self.topology, u, v, self.length, self.half_width)
        sqrt_g = np.sqrt(g_uu * g_vv)
        return sqrt_g, np.sqrt(g_vv / g_uu), np.sqrt(g_uu / g_vv)

    def _build_coefficients(self) -> None:
        nu, nv, du, dv = self.nu, self.nv, self.du, self.dv
        if self.metric == "flat":
            sqrt_g = np.ones((nu, nv))
            a_face = np.ones((nu, nv))
            b_faces = np.ones((nu, nv + 1))
        else:
            u_c, v_c = self._u_np[:, None], self._v_np[None, :]
            sqrt_g, _, _ = self._metric_sqrt_ratio(u_c, v_c)
            # u-faces at u_i + Δu/2 (the last one is the seam face at u = L)
            _, a_face, _ = self._metric_sqrt_ratio(u_c + du / 2, v_c)
            v_faces = np.asarray(-self.half_width + np.arange(nv + 1) * dv, dtype=np.float64)
            _, _, b_faces = self._metric_sqrt_ratio(u_c, v_faces[None, :])
        rd = dict(dtype=torch.float64, device=self.device)
        a_plus = torch.tensor(a_face, **rd)  # type: ignore[arg-type]
        # the −u face of cell i is the +u face of its −u neighbour (seam-aware, no phase):
        # sharing one value per face is what makes the operator symmetric.
        a_minus = u_minus(a_plus, self.flip)
        b = torch.tensor(b_faces, **rd)  # type: ignore[arg-type]
        # (leading dims: a batched centreline gives coefficients [M, nu, nv])
        b_minus, b_plus = b[..., :-1], b[..., 1:]
        if self.periodic_v:
            b_minus = b_minus.clone()
            b_minus[..., 0] = b_plus[..., -1]
        sg = torch.tensor(sqrt_g, **rd)  # type: ignore[arg-type]
        self._area = (sg * du * dv).to(self.real_dtype)
        self._coef64 = (
            a_plus / (sg * du * du),
            a_minus / (sg * du * du),
            b_plus / (sg * dv * dv),
            b_minus / (sg * dv * dv),
        )
        self._coef_cache: dict[torch.dtype, tuple[Tensor, ...]] = {}

    def _coefficients(self, dtype: torch.dtype) -> tuple[Tensor, ...]:
        real = torch.float64 if dtype in (torch.complex128, torch.float64) else torch.float32
        if real not in self._coef_cache:
            self._coef_cache[real] = tuple(c.to(real) for c in self._coef64)
        return self._coef_cache[real]

    # --------------------------------------------------------------- operators
    def laplacian(self, psi: Tensor) -> Tensor:
        """Seam-aware Laplace–Beltrami operator.

        Parameters
        ----------
        psi
            Complex field, shape ``[..., nu, nv]`` (any leading batch dims).

        Returns
        -------
        Tensor
            ``Δψ``, same shape and dtype (1/length² times the field's units).
        """
        self.check_field(psi)
        return self._laplacian(psi)

    def _laplacian(self, psi: Tensor) -> Tensor:
        coefficients = None if self.metric == "flat" else self._coefficients(psi.dtype)
        return band_laplacian(psi, self, coefficients)

    def spectral_radius_bound(self) -> float:
        """Gershgorin upper bound on ``|λ|`` of the Laplacian (1/length²).

        Used to check time steps against integrator stability limits.
        """
        # |diagonal| + Σ|off-diagonal| = 2 Σ(face coefficients) in every row; a Dirichlet
        # ghost moves one coefficient from the off-diagonal sum to the diagonal.
        total = torch.stack(self._coef64).sum(dim=0)
        return float(2.0 * total.max())

    def state_dict(self) -> dict[str, Any]:
        """Constructor arguments (for checkpoints); centreline is not included."""
        return dict(
            nu=self.nu,
            nv=self.nv,
            length=self.length,
            half_width=self.half_width,
            topology=self.topology,
            edge=self.edge,
            twist=self.twist,
            metric=self.metric,
            aspect=self.aspect,
        )


def band_laplacian(
    psi: Tensor,
    chart: MobiusStrip,
    coefficients: tuple[Tensor, ...] | None,
    seam_phase: complex | Tensor | None = None,
) -> Tensor:
    """Five-point finite-volume Laplacian on the chart of ``chart``.

    Parameters
    ----------
    psi
        Field ``[..., nu, nv]``.
    chart
        Supplies the seam rule (flip, twist), edge ghosts and cell sizes.
    coefficients
        ``(c_u+, c_u−, c_v+, c_v−)`` face coefficients already divided by the
        cell area factor (broadcastable to ``psi``), or None for the flat metric.
    seam_phase
        ``e^{iθ}`` applied at the seam; default the chart's. A complex tensor
        broadcastable to ``psi[..., :1, :]`` gives per-element twists.
    """
    phase = chart.seam_phase if seam_phase is None else seam_phase
    up = u_plus(psi, chart.flip, phase)
    dn = u_minus(psi, chart.flip, phase)
    rt = v_plus(psi, chart.periodic_v, chart.ghost_sign)
    lt = v_minus(psi, chart.periodic_v, chart.ghost_sign)
    if coefficients is None:
        iu2 = 1.0 / (chart.du * chart.du)
        iv2 = 1.0 / (chart.dv * chart.dv)
        return (up + dn) * iu2 + (rt + lt) * iv2 - (2.0 * (iu2 + iv2)) * psi
    cup, cum, cvp, cvm = coefficients
    return cup * (up - psi) + cum * (dn - psi) + cvp * (rt - psi) + cvm * (lt - psi)
