"""An ensemble of stacks that differ in geometry and seam twist, in one tensor.

Reinforcement-learning environments run ``B`` simulations side by side and let
each one choose its own geometry (aspect ratio R/w, Miller elongation κ and
triangularity δ, coupling range ℓ) and seam twist θ. :class:`LatticeEnsemble`
holds the ``B`` geometries as stacked coefficient tensors, so one batched field
``[B, S, nu, nv]`` is advanced by one :class:`~hhml.core.resonance.Simulator`.

Element ``b`` is the :class:`~hhml.core.mobius.TokamakStack` with element ``b``'s
geometry (same strips, coefficients, coupling weights and seam phase): the tests
compare the two operator by operator. The chart (u, v grid, topology, edge rule)
is shared by all elements.

The geometry lives on the ensemble's device as float64 tensors ``[B]``, and the
metric, coupling weights and seam phases are computed there, batched, by
:mod:`hhml.core.mobius.ensemble_geometry` (analytic derivatives; no host round
trip) — on the CPU in one C++ pass by :mod:`hhml.core.mobius.geometry_kernel`
(the same formulas, to a few ulp), which writes the coefficients only in the
precisions the Laplacian holds; the float64 ones are then computed when first read.
:meth:`LatticeEnsemble.set_geometry_tensors` is the hot path of an environment
step; :meth:`LatticeEnsemble.set_geometry` validates host values and calls it.

Public names: :class:`LatticeEnsemble`, :data:`GEOMETRY_KEYS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from hhml.core.mobius.ensemble_geometry import MillerBandGeometry
from hhml.core.mobius.geometry_kernel import GEOMETRY_STATUS, cpp_band_update
from hhml.core.mobius.lattice import METRICS, MobiusStrip, band_laplacian
from hhml.core.mobius.stack import TokamakStack
from hhml.errors import LatticeError

__all__ = ["GEOMETRY_KEYS", "LatticeEnsemble"]

#: Per-element geometry controls of an ensemble.
GEOMETRY_KEYS = ("aspect", "kappa", "delta", "coupling_range", "twist")

#: Largest |g_uv|/√(g_uu g_vv) accepted for an embedded band (the metric is taken diagonal).
_OFFDIAGONAL_TOLERANCE = 1e-8

FloatArray = NDArray[np.float64]


def _as_vector(name: str, value: float | Sequence[float] | FloatArray, size: int) -> FloatArray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(size, float(arr))
    if arr.shape != (size,):
        raise LatticeError(f"{name} has shape {arr.shape}; expected a scalar or ({size},)")
    if not np.all(np.isfinite(arr)):
        raise LatticeError(f"{name} = {arr.tolist()} is not valid; values must be finite")
    return arr


def _on_device(tensor: Tensor, device: torch.device) -> bool:
    """Whether ``tensor`` lives on ``device`` (``cuda`` without an index: any CUDA device)."""
    return tensor.device.type == device.type and (
        device.index is None or tensor.device.index == device.index
    )


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
        if metric not in METRICS:
            valid = ", ".join(repr(m) for m in METRICS)
            raise LatticeError(f"metric = {metric!r} is not valid; choose one of {valid}")
        self.metric = metric
        self.nu, self.nv, self.dtype, self.device = nu, nv, self._chart.dtype, self._chart.device
        self._kernel = MillerBandGeometry(
            strips,
            nu,
            nv,
            strip_spacing=self.strip_spacing,
            length=self._chart.length,
            half_width=self._chart.half_width,
            topology=self._chart.topology,
            device=self.device,
        )
        self._coef_cache: dict[torch.dtype, tuple[Tensor, ...]] = {}
        #: float64 coefficients; None after a kernel update that did not need them (then
        #: computed from the stored geometry on the first read of :attr:`_coef64`)
        self._coef64_value: tuple[Tensor, ...] | None = None
        if metric == "flat":
            # the flat coefficients do not depend on the geometry: set them once
            flat = self._chart
            shape = (size, strips, nu, nv)
            self._coef64 = tuple(c.expand(shape) for c in flat._coef64)
            self._area = flat._area.expand(shape)
        self._geo: dict[str, Tensor] = {}
        self.set_geometry(
            aspect=aspect, kappa=kappa, delta=delta, coupling_range=coupling_range, twist=twist
        )

    # ------------------------------------------------------------- geometry
    def geometry(self) -> dict[str, FloatArray]:
        """Per-element geometry ``{key: array [B]}`` for the keys of :data:`GEOMETRY_KEYS`.

        A host copy (this synchronises with the device; keep it off the hot path).
        """
        return {k: v.detach().cpu().numpy().copy() for k, v in self._geo.items()}

    def geometry_tensors(self) -> dict[str, Tensor]:
        """Per-element geometry ``{key: float64 tensor [B]}`` on the device (copies)."""
        return {k: v.clone() for k, v in self._geo.items()}

    def set_geometry(self, **values: float | Sequence[float] | FloatArray) -> None:
        """Validate and change per-element geometry (host values).

        Keys are those of :data:`GEOMETRY_KEYS`; each value is a scalar or a
        sequence of length ``B``; keys not given keep their values. Raises
        :class:`LatticeError` naming the key, element and value if a stack cannot
        be built (e.g. the aspect ratio is too small for the number of strips).
        The new values are copied to the device and applied by
        :meth:`set_geometry_tensors`.
        """
        unknown = set(values) - set(GEOMETRY_KEYS)
        if unknown:
            raise LatticeError(
                f"unknown geometry key(s) {sorted(unknown)}; valid: {list(GEOMETRY_KEYS)}"
            )
        if not self._geo and set(values) != set(GEOMETRY_KEYS):
            missing = sorted(set(GEOMETRY_KEYS) - set(values))
            raise LatticeError(f"geometry key(s) {missing} missing; a new ensemble needs all")
        given = {key: _as_vector(key, value, self.size) for key, value in values.items()}
        self._check(given)
        new = dict(self._geo)
        for key, arr in given.items():
            new[key] = torch.tensor(arr, dtype=torch.float64, device=self.device)
        shape_keys = ("aspect", "kappa", "delta")
        if (
            self.metric == "embedded"
            and self._chart.topology == "torus"
            and any(k in given for k in shape_keys)
        ):
            # the only chart whose embedded metric can have g_uv ≠ 0 (a twisting tube
            # frame); the tensor path takes the metric diagonal, so reject it here
            ratio = self._kernel.offdiagonal(*(new[k] for k in shape_keys)).cpu().numpy()
            bad = np.flatnonzero(~(ratio <= _OFFDIAGONAL_TOLERANCE))
            if bad.size:
                b = int(bad[0])
                raise LatticeError(
                    f"embedded band metric is not diagonal (g_uv ≠ 0); geometry is invalid: "
                    f"|g_uv|/√(g_uu g_vv) = {ratio[b]:.3g} > {_OFFDIAGONAL_TOLERANCE:g} for "
                    f"ensemble element {b} (topology 'torus' with {self._n_strips} strip(s); "
                    "an embedded torus needs strips = 1 or metric = 'flat')"
                )
        self.set_geometry_tensors(**new)

    def set_geometry_tensors(
        self,
        aspect: Tensor,
        kappa: Tensor,
        delta: Tensor,
        coupling_range: Tensor,
        twist: Tensor,
    ) -> None:
        """Change the geometry of every element from device tensors, without syncing.

        The hot path of an environment step: everything is computed on the
        ensemble's device from the tensors given (no ``.item()``, host copies or
        data-dependent shapes), so on a GPU it only queues kernels.

        Parameters
        ----------
        aspect, kappa, delta, coupling_range, twist
            Per-element ``R0/w``, ``κ``, ``δ``, ``ℓ`` (length units) and ``θ``
            (radians): float64 tensors ``[B]`` on :attr:`device`. Values are
            trusted (not checked): keep them inside the ranges that
            :meth:`set_geometry` accepts (``κ ∈ [0.5, 3]``, ``|δ| < 1``, ``ℓ > 0``,
            ``aspect > (S − 1)·strip_spacing + 1``). Shapes, dtypes and devices
            are checked (host metadata only).

        Notes
        -----
        Metric, areas and coupling weights are recomputed for all ``B`` elements,
        not only for those whose values changed: without a host decision (a sync)
        the only alternative is to recompute all and keep the old values with
        ``torch.where`` masks, which costs the same plus the selects (measured
        with ``benchmarks/bench_geometry.py`` on a 2-core CPU, 1 thread, half of the
        elements changing: masked/all = 1.15–1.23 at B = 128 and 1.10–1.19 at
        B = 4096 over two runs). The
        computation is deterministic, so elements whose inputs did not change get
        bit-identical coefficients. Cast copies of the coefficients held for the
        Laplacian's precisions are refreshed, not dropped. Outputs are new tensors
        (the previous ones are not modified in place).

        On the CPU the C++ kernel (:func:`~hhml.core.mobius.geometry_kernel.cpp_band_update`)
        computes everything in one pass and writes the coefficients directly in the
        precisions of :meth:`face_coefficients`' cache (float32 for complex64 fields: the
        float64 values rounded); float64 coefficients nobody holds are computed from the
        stored geometry when first read (``spectral_radius_bound``, a complex128
        Laplacian), with the same kernel, so they are the values an eager update would
        have stored. Where the kernel does not apply (other devices, inside
        ``forbid_host_sync``, kernel unavailable: reason in ``GEOMETRY_STATUS``) the torch
        path runs. ``benchmarks/bench_geometry.py`` times both.
        """
        geo = {
            "aspect": aspect,
            "kappa": kappa,
            "delta": delta,
            "coupling_range": coupling_range,
            "twist": twist,
        }
        for key, value in geo.items():
            if (
                not isinstance(value, Tensor)
                or value.dtype != torch.float64
                or tuple(value.shape) != (self.size,)
                or not _on_device(value, self.device)
            ):
                got = (
                    f"{value.dtype} {tuple(value.shape)} on {value.device}"
                    if isinstance(value, Tensor)
                    else type(value).__name__
                )
                raise LatticeError(
                    f"{key} is {got}; expected a torch.float64 tensor ({self.size},) "
                    f"on {self.device}"
                )
        real = self._chart.real_dtype
        embedded = self.metric == "embedded"
        # the C++ kernel (CPU; None elsewhere, reason in GEOMETRY_STATUS): one pass that
        # writes the coefficients only in the precisions the Laplacian holds
        casts = tuple(self._coef_cache) if embedded else ()
        update = cpp_band_update(
            self._kernel,
            aspect,
            kappa,
            delta,
            coupling_range,
            coefficient_dtypes=casts,
            area_dtype=real if embedded else None,
            weight_dtype=real,
        )
        if update is not None:
            if embedded:
                if update.area is None:
                    raise LatticeError(
                        "the geometry kernel returned no areas (they were asked for)"
                    )
                # float64 ones nobody holds are computed when first read (_coef64)
                self._coef64_value = update.coefficients.get(torch.float64)
                for cast in casts:
                    self._coef_cache[cast] = update.coefficients[cast]
                self._area = update.area
            if update.weights is None:
                raise LatticeError("the geometry kernel returned no weights (they were asked for)")
            self._weights = update.weights
        else:
            if embedded:
                geo_lap = self._kernel.coefficients(aspect, kappa, delta)
                self._coef64 = geo_lap.coefficients
                self._area = geo_lap.area.to(real)
                for cast in casts:
                    self._coef_cache[cast] = tuple(c.to(cast) for c in self._coef64)
                distances = geo_lap.distances
            else:
                distances = self._kernel.distances(aspect, kappa, delta)
            rate = (-1.0 / coupling_range).reshape(-1, 1, 1, 1)
            self._weights = (distances * rate).exp_().to(real)
        self._seam = torch.polar(torch.ones_like(twist), twist).to(self.dtype).reshape(-1, 1, 1, 1)
        self._geo = {k: v.detach().clone() for k, v in geo.items()}

    @property
    def _coef64(self) -> tuple[Tensor, ...]:
        """The Laplacian's face coefficients in float64, ``(c_u+, c_u−, c_v+, c_v−)``, each
        ``[B, S, nu, nv]`` (1/length²).

        After a kernel update that did not need them (no float64 Laplacian yet), computed
        from the stored geometry on first read: the same kernel and inputs, so the same
        values as an eager update, and the cached float32 copies are these rounded.
        """
        if self._coef64_value is None:
            shape = [self._geo[k] for k in ("aspect", "kappa", "delta")]
            update = cpp_band_update(
                self._kernel, *shape, coefficient_dtypes=(torch.float64,), follow_device_paths=False
            )
            if update is None:  # the kernel ran for the update: it applies to its inputs
                raise LatticeError(
                    "float64 coefficients are due from the geometry kernel, which returned "
                    f"none: {GEOMETRY_STATUS.last_skip}"
                )
            self._coef64_value = update.coefficients[torch.float64]
        return self._coef64_value

    @_coef64.setter
    def _coef64(self, value: tuple[Tensor, ...]) -> None:
        self._coef64_value = value

    def _check(self, geo: dict[str, FloatArray]) -> None:
        w = self._chart.half_width
        r_max = (self._n_strips - 1) * self.strip_spacing * w
        rules: dict[str, tuple[Callable[[FloatArray], NDArray[np.bool_]], str]] = {
            "kappa": (lambda x: (x >= 0.5) & (x <= 3.0), "[0.5, 3]"),
            "delta": (lambda x: (x > -1.0) & (x < 1.0), "(−1, 1)"),
            "coupling_range": (lambda x: x > 0.0, "> 0"),
            "aspect": (lambda x: x * w - r_max - w > 0.0, f"> {r_max / w + 1:g}"),
        }
        for key, (rule, allowed) in rules.items():
            if key not in geo:
                continue
            bad = np.flatnonzero(~rule(geo[key]))
            if bad.size:
                b = int(bad[0])
                raise LatticeError(
                    f"{key} = {geo[key][b]:g} (ensemble element {b}) is not valid for "
                    f"{self._n_strips} strip(s) spaced {self.strip_spacing:g}·w; allowed {allowed}"
                )

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
        """Per-element twist θ_b, real ``[B, 1]`` (radians), on the device (no host copy)."""
        return self._geo["twist"].to(self._chart.real_dtype, copy=True).reshape(-1, 1)

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
        """Embedded cell centres ``x, y, z``, each ``[B, S, nu, nv]`` (host arrays)."""
        pts = self._kernel.points(*(self._geo[k] for k in ("aspect", "kappa", "delta")))
        x, y, z = pts.cpu().numpy().transpose(4, 0, 1, 2, 3)
        return x, y, z

    # ------------------------------------------------------------ operators
    def laplacian(self, psi: Tensor) -> Tensor:
        """Per-element, per-strip Laplace–Beltrami operator on ``[B, S, nu, nv]``."""
        self.check_field(psi)
        real = torch.float64 if psi.dtype == torch.complex128 else torch.float32
        coefs = None if self.metric == "flat" else self.face_coefficients(real)
        return band_laplacian(psi, self._chart, coefs, seam_phase=self._seam.to(psi.dtype))

    def spectral_radius_bound(self) -> float:
        """Gershgorin bound on ``|λ|`` over all elements (1/length²)."""
        if self.metric == "flat":
            return self._chart.spectral_radius_bound()
        return float(2.0 * torch.stack(self._coef64).sum(dim=0).max())

    def state_dict(self) -> dict[str, Any]:
        """Geometry and shared settings (for checkpoints)."""
        return {
            "geometry": {k: v.tolist() for k, v in self._geo.items()},
            "size": self.size,
            "strips": self._n_strips,
        }
