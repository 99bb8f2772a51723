"""An ensemble of stacks that differ in geometry and seam twist, in one tensor.

Reinforcement-learning environments run ``B`` simulations side by side and let
each one choose its own geometry (aspect ratio R/w, Miller elongation κ and
triangularity δ, coupling range ℓ) and seam twist θ. :class:`LatticeEnsemble`
holds the ``B`` geometries as stacked coefficient tensors, so one batched field
``[B, S, nu, nv]`` is advanced by one :class:`~hhml.core.resonance.Simulator`.

Element ``b`` is exactly the :class:`~hhml.core.mobius.TokamakStack` with
element ``b``'s geometry (same strips, coefficients, coupling weights and seam
phase): the tests compare the two operator by operator. The chart (u, v grid,
topology, edge rule) is shared by all elements.

Public names: :class:`LatticeEnsemble`, :class:`MillerEnsembleCentreline`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from hhml.core.mobius.geometry import Centreline, band_points
from hhml.core.mobius.lattice import MobiusStrip, band_laplacian
from hhml.core.mobius.stack import TokamakStack
from hhml.errors import LatticeError

__all__ = ["GEOMETRY_KEYS", "LatticeEnsemble", "MillerEnsembleCentreline"]

#: Per-element geometry controls of an ensemble.
GEOMETRY_KEYS = ("aspect", "kappa", "delta", "coupling_range", "twist")

FloatArray = NDArray[np.float64]


class MillerEnsembleCentreline(Centreline):
    """``M`` Miller centrelines evaluated at once (parameters of shape ``[M]``).

    Element ``k`` is ``MillerCentreline(major[k], minor[k], kappa[k], delta[k])``;
    :meth:`point` of ``φ`` with shape ``[...]`` returns ``[M, ..., 3]``.
    """

    def __init__(
        self, major: FloatArray, minor: FloatArray, kappa: FloatArray, delta: FloatArray
    ) -> None:
        self._params = [np.asarray(x, dtype=np.float64) for x in (major, minor, kappa, delta)]

    def point(self, phi: FloatArray) -> FloatArray:
        extra = (1,) * np.ndim(phi)
        r0, r, kappa, delta = (p.reshape(-1, *extra) for p in self._params)
        big_r = r0 + r * np.cos(phi + np.arcsin(delta) * np.sin(phi))
        z = kappa * r * np.sin(phi)
        x, y, z = np.broadcast_arrays(big_r * np.cos(phi), big_r * np.sin(phi), z)
        return np.stack([x, y, z], axis=-1)


def _as_vector(name: str, value: float | Sequence[float] | FloatArray, size: int) -> FloatArray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(size, float(arr))
    if arr.shape != (size,):
        raise LatticeError(f"{name} has shape {arr.shape}; expected a scalar or ({size},)")
    if not np.all(np.isfinite(arr)):
        raise LatticeError(f"{name} = {arr.tolist()} is not valid; values must be finite")
    return arr


class LatticeEnsemble(TokamakStack):
    """``size`` stacks of ``strips`` strips with per-element geometry and twist.

    Parameters
    ----------
    size
        Number of elements ``B`` (the batch size of the simulator that uses it).
    strips, nu, nv
        Strips per stack and grid of every strip.
    aspect, kappa, delta, coupling_range, twist
        Per-element values (scalars or sequences of length ``B``); meanings as in
        :class:`~hhml.core.mobius.TokamakStack` and
        :class:`~hhml.core.mobius.MobiusStrip`.
    strip_spacing, length, half_width, topology, edge, metric, dtype, device
        Shared by all elements.

    Notes
    -----
    Fields on an ensemble have shape ``[B, S, nu, nv]``. :attr:`seam_phase` is a
    complex tensor ``[B, 1, 1, 1]`` (``e^{iθ_b}``) and is what the Laplacian and
    the vortex detector apply at the seam; :attr:`strip` is the shared chart with
    θ = 0 (coordinates, topology, cell sizes).
    """

    def __init__(
        self,
        size: int,
        strips: int,
        nu: int,
        nv: int,
        *,
        aspect: float | Sequence[float] = 12.0,
        kappa: float | Sequence[float] = 1.0,
        delta: float | Sequence[float] = 0.0,
        coupling_range: float | Sequence[float] = 1.0,
        twist: float | Sequence[float] = 0.0,
        strip_spacing: float = 3.0,
        length: float = 2.0 * math.pi,
        half_width: float = 1.0,
        topology: str = "mobius",
        edge: str = "dirichlet",
        metric: str = "embedded",
        dtype: torch.dtype = torch.complex64,
        device: torch.device | str = "cpu",
    ) -> None:
        for name, n in (("size", size), ("strips", strips)):
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise LatticeError(f"{name} = {n!r} is not valid; it must be an integer ≥ 1")
        self.size = size
        self.strip_spacing = float(strip_spacing)
        self._n_strips = strips
        self._chart = MobiusStrip(
            nu,
            nv,
            length=length,
            half_width=half_width,
            topology=topology,
            edge=edge,
            twist=0.0,
            metric="flat",
            dtype=dtype,
            device=device,
        )
        self.metric = metric
        self.nu, self.nv, self.dtype, self.device = nu, nv, self._chart.dtype, self._chart.device
        self._geometry: dict[str, FloatArray] = {}
        self.set_geometry(
            aspect=aspect, kappa=kappa, delta=delta, coupling_range=coupling_range, twist=twist
        )

    # ------------------------------------------------------------- geometry
    def geometry(self) -> dict[str, FloatArray]:
        """Per-element geometry ``{key: array [B]}`` for the keys of :data:`GEOMETRY_KEYS`."""
        return {k: v.copy() for k, v in self._geometry.items()}

    def set_geometry(self, **values: float | Sequence[float] | FloatArray) -> None:
        """Change per-element geometry; only what changed is recomputed.

        Keys are those of :data:`GEOMETRY_KEYS`; each value is a scalar or a
        sequence of length ``B``. Raises :class:`LatticeError` naming the key,
        element and value if a stack cannot be built (e.g. the aspect ratio is
        too small for the number of strips).
        """
        unknown = set(values) - set(GEOMETRY_KEYS)
        if unknown:
            raise LatticeError(
                f"unknown geometry key(s) {sorted(unknown)}; valid: {list(GEOMETRY_KEYS)}"
            )
        new = dict(self._geometry)
        for key, value in values.items():
            new[key] = _as_vector(key, value, self.size)
        self._check(new)
        old = self._geometry
        shape_keys = ("aspect", "kappa", "delta")
        shape_changed = not old or any(not np.array_equal(old[k], new[k]) for k in shape_keys)
        self._geometry = new
        if shape_changed:
            self._build_metric()
        if shape_changed or not np.array_equal(old["coupling_range"], new["coupling_range"]):
            self._weights = torch.tensor(
                np.exp(-self._distances / new["coupling_range"][:, None, None, None]),
                dtype=self._chart.real_dtype,
                device=self.device,
            )
        theta = torch.tensor(new["twist"], dtype=torch.float64, device=self.device)
        self._seam = torch.polar(torch.ones_like(theta), theta).to(self.dtype).reshape(-1, 1, 1, 1)

    def _check(self, geo: dict[str, FloatArray]) -> None:
        w = self._chart.half_width
        r_max = (self._n_strips - 1) * self.strip_spacing * w
        valid = {
            "kappa": ((geo["kappa"] >= 0.5) & (geo["kappa"] <= 3.0), "[0.5, 3]"),
            "delta": ((geo["delta"] > -1.0) & (geo["delta"] < 1.0), "(−1, 1)"),
            "coupling_range": (geo["coupling_range"] > 0.0, "> 0"),
            "aspect": (geo["aspect"] * w - r_max - w > 0.0, f"> {r_max / w + 1:g}"),
        }
        for key, (ok, allowed) in valid.items():
            bad = np.flatnonzero(~ok)
            if bad.size:
                b = int(bad[0])
                raise LatticeError(
                    f"{key} = {geo[key][b]:g} (ensemble element {b}) is not valid for "
                    f"{self._n_strips} strip(s) spaced {self.strip_spacing:g}·w; allowed {allowed}"
                )

    def _build_metric(self) -> None:
        geo, chart = self._geometry, self._chart
        w, S, B = chart.half_width, self._n_strips, self.size
        minor = np.arange(S, dtype=np.float64) * self.strip_spacing * w
        centre = MillerEnsembleCentreline(
            np.repeat(geo["aspect"] * w, S),
            np.tile(minor, B),
            np.repeat(geo["kappa"], S),
            np.repeat(geo["delta"], S),
        )
        band = MobiusStrip(
            self.nu,
            self.nv,
            length=chart.length,
            half_width=w,
            topology=chart.topology,
            edge=chart.edge,
            metric=self.metric,
            aspect=float(geo["aspect"].min()),
            dtype=self.dtype,
            device=self.device,
            centreline=centre,
        )
        shape = (B, S, self.nu, self.nv)
        self._coef64 = tuple(c.expand(B * S, self.nu, self.nv).reshape(shape) for c in band._coef64)
        self._coef_cache = {}
        self._area = band._area.expand(B * S, self.nu, self.nv).reshape(shape)
        pts = band_points(
            centre, chart.topology, chart._u_np[:, None], chart._v_np[None, :], chart.length, w
        ).reshape(B, S, self.nu, self.nv, 3)
        self._points = pts
        self._distances = np.linalg.norm(pts[:, 1:] - pts[:, :-1], axis=-1)

    # ----------------------------------------------------------- properties
    @property
    def num_strips(self) -> int:
        """Number of strips ``S`` of every element."""
        return self._n_strips

    @property
    def strip(self) -> MobiusStrip:
        """The shared chart (θ = 0; the per-element twist is :attr:`seam_phase`)."""
        return self._chart

    @property
    def seam_phase(self) -> Tensor:  # type: ignore[override]
        """``e^{iθ_b}``, complex ``[B, 1, 1, 1]``."""
        return self._seam

    @property
    def twist(self) -> float:
        """Not defined for an ensemble: use ``geometry()["twist"]``."""
        raise LatticeError("a LatticeEnsemble has one twist per element: use geometry()['twist']")

    @twist.setter
    def twist(self, value: float) -> None:
        raise LatticeError("set the twist of a LatticeEnsemble with set_geometry(twist=...)")

    def twists(self) -> Tensor:
        """Per-element twist θ_b, real ``[B, 1]`` (radians)."""
        return torch.tensor(
            self._geometry["twist"], dtype=self._chart.real_dtype, device=self.device
        ).reshape(-1, 1)

    def __repr__(self) -> str:
        return (
            f"LatticeEnsemble(size={self.size}, strips={self._n_strips}, nu={self.nu}, "
            f"nv={self.nv}, metric={self.metric!r}, topology={self._chart.topology!r})"
        )

    def check_field(self, psi: Tensor, name: str = "psi") -> None:
        """Raise :class:`LatticeError` unless ``psi`` is complex ``[B, S, nu, nv]``."""
        expected = (self.size, *self.field_shape)
        if not isinstance(psi, Tensor) or tuple(psi.shape[-4:]) != expected:
            shape = tuple(psi.shape) if isinstance(psi, Tensor) else type(psi).__name__
            raise LatticeError(
                f"{name} has shape {shape}; expected [..., {', '.join(map(str, expected))}]"
            )
        if not psi.is_complex():
            raise LatticeError(f"{name} has dtype {psi.dtype}; a complex dtype is required")

    def zeros(self, *batch: int) -> Tensor:
        """A zero field ``[B, S, nu, nv]`` (``batch`` must be empty or ``(B,)``)."""
        if batch not in ((), (self.size,)):
            raise LatticeError(f"an ensemble field has batch ({self.size},), not {batch}")
        return torch.zeros(self.size, *self.field_shape, dtype=self.dtype, device=self.device)

    def embedding(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Embedded cell centres ``x, y, z``, each ``[B, S, nu, nv]``."""
        return self._points[..., 0], self._points[..., 1], self._points[..., 2]

    # ------------------------------------------------------------ operators
    def laplacian(self, psi: Tensor) -> Tensor:
        """Per-element, per-strip Laplace–Beltrami operator on ``[B, S, nu, nv]``."""
        self.check_field(psi)
        real = torch.float64 if psi.dtype == torch.complex128 else torch.float32
        if real not in self._coef_cache:
            self._coef_cache[real] = tuple(c.to(real) for c in self._coef64)
        coefs = None if self.metric == "flat" else self._coef_cache[real]
        return band_laplacian(psi, self._chart, coefs, seam_phase=self._seam.to(psi.dtype))

    def spectral_radius_bound(self) -> float:
        """Gershgorin bound on ``|λ|`` over all elements (1/length²)."""
        if self.metric == "flat":
            return self._chart.spectral_radius_bound()
        return float(2.0 * torch.stack(self._coef64).sum(dim=0).max())

    def state_dict(self) -> dict[str, Any]:
        """Geometry and shared settings (for checkpoints)."""
        return {
            "geometry": {k: v.tolist() for k, v in self._geometry.items()},
            "size": self.size,
            "strips": self._n_strips,
        }
