"""The equation: the deterministic right-hand side of docs/physics.md on a lattice.

    F(ψ, t) = (1 − γ)ψ + (D + iα)Δψ − ν₄Δ²ψ − (g + iβ)|ψ|²ψ − V(x)ψ
              + S(x, t) + c·Σ_{s'} W_{ss'}(ψ_{s'} − ψ_s)

:class:`FieldEquation` holds the parameters (one :class:`FieldParams`, one per batch
element, or per-element tensors ``[B]``), precomputes what the hot loop needs from them
(coefficients, the quenched source and pinning landscapes) and evaluates ``F`` — eagerly,
through the fused flat-strip kernels, or one whole RK4 step through the fused C++ /
compiled kernels. It knows nothing of time stepping, noise or the state: the integrators
of :mod:`hhml.core.resonance.integrators` take it (or any ``F(ψ, t)`` callable), and
:class:`~hhml.core.resonance.simulator.Simulator` owns the state, the noise and the
time loop.

Public names: :class:`FieldEquation`, :class:`Coefficients`, :data:`TENSOR_PARAMETERS`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hhml.config.schema import FieldParams
from hhml.core.mobius import LatticeEnsemble, MobiusStrip, TokamakStack
from hhml.core.resonance.cpp_kernels import cpp_flat_cgl_rhs, cpp_flat_rk4_step
from hhml.core.resonance.flat_kernels import MIN_COMPILED_NODES, flat_cgl_rhs
from hhml.core.resonance.forcing import pinning_profile, source_layout, source_profile
from hhml.core.resonance.stack_kernel import StackRK4Plan, cpp_stack_rk4_plan
from hhml.errors import ConfigError, LatticeError

__all__ = ["TENSOR_PARAMETERS", "Coefficients", "FieldEquation"]

Lattice = MobiusStrip | TokamakStack

#: The parameters :meth:`FieldEquation.set_tensors` takes per batch element.
TENSOR_PARAMETERS = (
    "damping",
    "nonlinearity",
    "diffusion",
    "noise_temperature",
    "dispersion",
    "nonlinear_frequency",
    "spectral_filter",
    "source_amplitude",
    "source_frequency",
    "source_spread",
    "boundary_winding",
    "coupling",
    "pinning",
    "pair_seeding",
)


@dataclass
class Coefficients:
    """Parameters in the form the hot loop uses: floats, or ``[B, 1, 1(, 1)]`` tensors.

    ``noise`` (``√(2T)``) is not part of ``F``; it is here so that the simulator's noise
    increment reads the same per-element values.
    """

    growth: Any  # 1 − γ
    diffusion: Any  # D + iα
    cubic: Any  # g + iβ
    filter: Any  # ν₄
    amplitude: Any  # A
    frequency: Any  # ω
    coupling: Any  # c
    pinning: Any  # V₀
    noise: Any  # √(2T)
    use_filter: bool
    use_sources: bool
    use_coupling: bool
    use_pinning: bool
    use_noise: bool


def _same_objects(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    """Entry by entry the same object, or equal numbers/flags/shapes/dtypes of one type
    (tensors by identity only: no values are compared, nothing synchronises)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x is y:
            continue
        if isinstance(x, Tensor) or isinstance(y, Tensor) or type(x) is not type(y):
            return False
        if isinstance(x, tuple):
            if not _same_objects(x, y):  # type: ignore[arg-type]
                return False
        elif x != y:
            return False
    return True


class FieldEquation:
    """The right-hand side ``F(ψ, t)`` of the field equation on one lattice.

    Parameters
    ----------
    lattice
        A :class:`~hhml.core.mobius.MobiusStrip` or :class:`~hhml.core.mobius.TokamakStack`.
    params
        One :class:`FieldParams` for every field, or one per batch element.
    batch
        Number of fields ``B`` (state ``[B, *field_shape]``), None for one unbatched field.
    seed
        Seeds the quenched source amplitudes (``seed + 1``) and pinning sites (``seed + 2``).
    compiled
        As :class:`~hhml.core.resonance.simulator.Simulator`'s ``compiled``.

    Attributes
    ----------
    coefficients : Coefficients
        The current parameters in hot-loop form.
    potential : Tensor or None
        ``V(x)`` (``V₀`` times the pinning landscape), None without pinning.
    source : Tensor or None
        ``S(x, 0)``: the source at ``t = 0`` (``S(x, t) = S(x, 0) e^{−iωt}``).
    raw : dict[str, float | Tensor]
        γ, D, α, g, β as the flat kernels take them.
    seed_rate : Tensor or None
        ``pair_seeding`` per element ``[B or 1]`` float64, None when no element seeds.
    pinning_peak : float
        Peak of the pinning landscape (enters the stability check).
    """

    def __init__(
        self,
        lattice: Lattice,
        params: FieldParams | Sequence[FieldParams],
        *,
        batch: int | None,
        seed: int,
        compiled: bool | None = None,
    ) -> None:
        self.lattice = lattice
        self.chart: MobiusStrip = lattice.strip if isinstance(lattice, TokamakStack) else lattice
        self.is_stack = isinstance(lattice, TokamakStack)
        self.batch = batch
        self.seed = seed
        self.compiled = compiled
        self.device = lattice.device
        self.state_shape: tuple[int, ...] = (
            *(() if batch is None else (batch,)),
            *lattice.field_shape,
        )
        # the fused flat kernels cover every term except the spectral filter and coupling
        self._fused = not self.is_stack and self.chart.metric == "flat"
        nodes = self.chart.nu * self.chart.nv
        # the hand-written C++ kernel (CPU, scalar parameters) is the fastest path; it is
        # built on first use, so small grids skip it unless asked for explicitly
        self._use_cpp = self._fused and (
            compiled is True or (compiled is None and nodes >= MIN_COMPILED_NODES)
        )
        self._tensors: dict[str, Tensor] | None = None
        self._active: frozenset[str] = frozenset()
        self._source_layout = source_layout(self.chart, seed + 1)
        self._pinning_cache: dict[tuple[int, float], tuple[Tensor, float]] = {}
        # the C++ stack kernel's checked arguments and the objects they were made from
        self._plan_cache: tuple[tuple[object, ...], StackRK4Plan] | None = None
        self.built_twist = self.chart.twist
        self.set_params(params)

    # ------------------------------------------------------------- parameters
    @property
    def params(self) -> FieldParams | tuple[FieldParams, ...]:
        """The physical parameters (one, or one per batch element)."""
        return self._params

    @property
    def param_list(self) -> list[FieldParams]:
        """:attr:`params` as a list (one entry for a shared :class:`FieldParams`)."""
        return self._plist

    def set_params(self, params: FieldParams | Sequence[FieldParams]) -> None:
        """Validate and set :attr:`params` (clearing any parameter tensors) and rebuild.

        Raises
        ------
        ConfigError
            A non-:class:`FieldParams` entry, an invalid one, or a count that is not
            the batch size; the equation is then unchanged.
        """
        plist = [params] if isinstance(params, FieldParams) else list(params)
        for k, p in enumerate(plist):
            if not isinstance(p, FieldParams):
                raise ConfigError(f"params[{k}] is a {type(p).__name__}, expected FieldParams")
            p.validate()
        if not isinstance(params, FieldParams) and len(plist) != self.batch:
            raise ConfigError(f"got {len(plist)} FieldParams for a batch of {self.batch}")
        previous = self.saved_params()
        self._params = params if isinstance(params, FieldParams) else tuple(plist)
        self._plist = plist
        self._tensors = None
        try:
            self.build()
        except Exception:
            self.restore_params(previous)
            raise

    def saved_params(self) -> tuple[Any, ...]:
        """An opaque copy of the parameter state for :meth:`restore_params`."""
        return (
            getattr(self, "_params", None),
            getattr(self, "_plist", None),
            self._tensors,
            self._active,
        )

    def restore_params(self, saved: tuple[Any, ...]) -> None:
        """Go back to a :meth:`saved_params` state (and rebuild, if there was one)."""
        self._params, self._plist, self._tensors, self._active = saved
        if saved[0] is not None:
            self.build()

    def set_tensors(self, values: Mapping[str, Tensor], active: Collection[str] | None) -> None:
        """Per-element parameters from tensors, without any host synchronisation.

        Parameters
        ----------
        values
            Every name of :data:`TENSOR_PARAMETERS` → a real tensor ``[B]`` on the
            lattice's device (``boundary_winding`` already rounded). The other fields
            stay those of :attr:`params`.
        active
            Names whose term can be non-zero (None: all); the others are skipped.

        Raises
        ------
        ConfigError
            An unbatched equation, a missing or unknown name, or a tensor that is not
            ``[B]`` on the device.
        """
        if self.batch is None:
            raise ConfigError("set_parameter_tensors needs a batched simulator (batch=B)")
        missing = set(TENSOR_PARAMETERS) - set(values)
        unknown = set(values) - set(TENSOR_PARAMETERS)
        if missing or unknown:
            raise ConfigError(
                f"set_parameter_tensors: missing {sorted(missing)}, unknown {sorted(unknown)}; "
                f"expected exactly {list(TENSOR_PARAMETERS)}"
            )
        for name, value in values.items():
            if not isinstance(value, Tensor) or tuple(value.shape) != (self.batch,):
                shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise ConfigError(
                    f"parameter tensor {name!r} has shape {shape}; expected ({self.batch},)"
                )
            if value.device != self.device:
                raise ConfigError(
                    f"parameter tensor {name!r} is on {value.device}; the simulator is on "
                    f"{self.device}"
                )
        self._tensors = dict(values)
        self._active = frozenset(TENSOR_PARAMETERS if active is None else active)
        self.build()

    @property
    def tensors(self) -> dict[str, Tensor] | None:
        """The per-element tensors of :meth:`set_tensors` (None with :class:`FieldParams`)."""
        return None if self._tensors is None else dict(self._tensors)

    def _values(self, name: str) -> Any:
        shape = (-1,) + (1,) * len(self.lattice.field_shape)
        if self._tensors is not None and name in self._tensors:
            return self._tensors[name].to(self.chart.real_dtype).reshape(shape)
        vals = [float(getattr(p, name)) for p in self._plist]
        if isinstance(self._params, FieldParams):
            return vals[0]
        return torch.tensor(vals, dtype=self.chart.real_dtype, device=self.device).reshape(shape)

    def _any(self, name: str) -> bool:
        if self._tensors is not None and name in self._tensors:
            return name in self._active
        return any(float(getattr(p, name)) != 0.0 for p in self._plist)

    def build(self) -> None:
        """Precompute everything the hot loop needs from the parameters and the lattice
        (call after the lattice changed in place)."""
        v = self._values
        self.raw: dict[str, Any] = {
            name: v(name)
            for name in (
                "damping",
                "diffusion",
                "dispersion",
                "nonlinearity",
                "nonlinear_frequency",
            )
        }
        self.coefficients = Coefficients(
            growth=1.0 - v("damping"),
            diffusion=v("diffusion") + 1j * v("dispersion"),
            cubic=v("nonlinearity") + 1j * v("nonlinear_frequency"),
            filter=v("spectral_filter"),
            amplitude=v("source_amplitude"),
            frequency=v("source_frequency"),
            coupling=v("coupling"),
            pinning=v("pinning"),
            noise=(2.0 * v("noise_temperature")) ** 0.5,
            use_filter=self._any("spectral_filter"),
            use_sources=self._any("source_amplitude"),
            use_coupling=self.is_stack and self._any("coupling"),
            use_pinning=self._any("pinning"),
            use_noise=self._any("noise_temperature"),
        )
        c = self.coefficients
        # profiles: one chart pattern, shared by all strips of a stack
        first = self._plist[0]
        self.source: Tensor | None = None
        if c.use_sources:
            twist = self.lattice.twists() if isinstance(self.lattice, LatticeEnsemble) else None
            prof = source_profile(
                self.chart,
                v("boundary_winding"),
                v("source_spread"),
                self.seed + 1,
                twist,
                layout=self._source_layout,
            )
            self.source = self._per_strip(prof) * c.amplitude
        self.potential: Tensor | None = None
        self.pinning_peak = 0.0
        layouts = {(p.pinning_sites, p.pinning_radius) for p in self._plist}
        if c.use_pinning:
            if len(layouts) > 1:
                raise ConfigError(
                    "pinning_sites and pinning_radius must be the same for every batch element"
                )
            key = (first.pinning_sites, first.pinning_radius)
            if key not in self._pinning_cache:  # the landscape is quenched: build it once
                prof_v = pinning_profile(self.chart, *key, self.seed + 2)
                self._pinning_cache = {key: (prof_v, float(prof_v.max()))}
            prof_v, self.pinning_peak = self._pinning_cache[key]
            self.potential = self._per_strip(prof_v) * c.pinning
        pairs = {(p.pair_separation, p.core_radius) for p in self._plist}
        self.seed_rate: Tensor | None = None
        if self._any("pair_seeding"):
            if len(pairs) > 1:
                raise ConfigError(
                    "pair_separation and core_radius must be the same for every batch element"
                )
            rate = v("pair_seeding")
            self.seed_rate = (
                rate.reshape(-1).to(torch.float64)
                if isinstance(rate, Tensor)
                else torch.full((1,), rate, dtype=torch.float64, device=self.device)
            )
        self.built_twist = self.chart.twist

    def _per_strip(self, prof: Tensor) -> Tensor:
        """Insert the strip axis for stacks: ``[B?, nu, nv]`` → ``[B?, 1, nu, nv]``."""
        return prof.unsqueeze(-3) if self.is_stack else prof

    # -------------------------------------------------------------- stability
    def linear_eigenvalue_samples(self, exact_linear: bool = False) -> np.ndarray:
        """Samples of the stiff linear spectrum ``(D+iα)λ − ν₄λ² − c·κ`` (1/time).

        ``λ`` runs over ``[−ρ, 0]`` with ρ the Gershgorin bound of the Laplacian, ``κ``
        over the coupling operator's range ``[0, 4 max W]``; the pinning potential
        contributes ``[−V₀·peak, 0]``. The physical growth ``1 − γ`` is not part of the
        stability check. ``exact_linear``: the integrator treats ``(D+iα)Δ − ν₄Δ²``
        exactly (ETD), so only the coupling and pinning samples are returned.
        """
        rho = self.lattice.spectral_radius_bound()
        lam = -np.linspace(0.0, rho, 2001)
        kmax = 0.0
        if self.is_stack:
            assert isinstance(self.lattice, TokamakStack)
            kmax = (
                4.0 * float(self.lattice.coupling_weights().max())
                if self.lattice.num_strips > 1
                else 0.0
            )
        out = []
        for p in self._plist:
            mu = (p.diffusion + 1j * p.dispersion) * lam - p.spectral_filter * lam**2
            if exact_linear:
                mu = np.zeros(0, dtype=np.complex128)
            # the pinning potential is V₀ times a sum of Gaussians: its peak can exceed V₀
            extra = -(p.coupling * kmax + p.pinning * self.pinning_peak) * np.linspace(0.0, 1.0, 11)
            out.append(np.concatenate([mu, extra]))
        return np.concatenate(out).astype(np.complex128)

    # ------------------------------------------------------- right-hand side
    def rhs(self, psi: Tensor, t: float) -> Tensor:
        """``F(ψ, t)``: the deterministic right-hand side (noise excluded).

        Parameters
        ----------
        psi
            Complex tensor of the state's shape ``[B?, *field_shape]``.
        t
            Time (enters through the source phase ``e^{−iωt}``).
        """
        if tuple(psi.shape) != self.state_shape:
            raise LatticeError(f"psi has shape {tuple(psi.shape)}; expected {self.state_shape}")
        return self.rhs_unchecked(psi, t)

    __call__ = rhs

    def linear_symbol(self, eigenvalues: Tensor) -> Tensor:
        """``(1 − γ) + (D + iα)λ − ν₄λ²`` for Laplacian eigenvalues λ (ETD)."""
        c = self.coefficients
        lam = eigenvalues.to(torch.complex128)
        return c.growth + c.diffusion * lam - c.filter * lam * lam  # type: ignore[no-any-return]

    def nonlinear(self, psi: Tensor, t: float) -> Tensor:
        """The part of ``F`` not in :meth:`linear_symbol`."""
        c = self.coefficients
        out = -(c.cubic * (psi.real.square() + psi.imag.square())) * psi
        return self._add_local_terms(out, psi, t)

    def _add_local_terms(self, out: Tensor, psi: Tensor, t: float) -> Tensor:
        c = self.coefficients
        if self.potential is not None:
            out = out - self.potential * psi
        source = self.source_at(t)
        if source is not None:
            out = out + source
        if c.use_coupling:
            assert isinstance(self.lattice, TokamakStack)
            out = out + c.coupling * self.lattice.coupling(psi)
        return out

    def source_at(self, t: float) -> Tensor | None:
        """``S(x, t) = S(x, 0) e^{−iωt}``, None without sources."""
        if self.source is None:
            return None
        phase = self.coefficients.frequency * t
        rot = (
            torch.polar(torch.ones_like(phase), -phase)
            if isinstance(phase, Tensor)
            else complex(math.cos(phase), -math.sin(phase))
        )
        out: Tensor = self.source * rot
        return out

    def _flat_chart(self) -> dict[str, Any]:
        """The chart arguments of the flat kernels (topology, edge, twist, spacings)."""
        chart = self.chart
        return dict(
            topology=chart.topology, edge=chart.edge, twist=chart.twist, du=chart.du, dv=chart.dv
        )

    def rhs_unchecked(self, psi: Tensor, t: float) -> Tensor:
        """:meth:`rhs` without the shape check (the integrators' hot path)."""
        c = self.coefficients
        if self._fused:
            chart = self.chart
            source = self.source_at(t)
            out_cpp = (
                cpp_flat_cgl_rhs(psi, chart, c.growth, c.diffusion, c.cubic, self.potential, source)
                if self._use_cpp
                else None
            )
            if out_cpp is not None:
                if c.use_filter:
                    out_cpp = out_cpp - c.filter * chart.laplacian(chart.laplacian(psi))
                return out_cpp
            out = flat_cgl_rhs(
                psi,
                **self._flat_chart(),
                potential=self.potential,
                source=source,
                compiled=self.compiled,
                **self.raw,
            )
            if c.use_filter:
                out = out - c.filter * chart.laplacian(chart.laplacian(psi))
            return out
        lap = self.lattice.laplacian(psi)
        out = (
            c.growth * psi
            + c.diffusion * lap
            - c.cubic * (psi.real.square() + psi.imag.square()) * psi
        )
        if c.use_filter:
            out = out - c.filter * self.lattice.laplacian(lap)
        return self._add_local_terms(out, psi, t)

    def fused_rk4_step(self, psi: Tensor, t: float, dt: float) -> Tensor | None:
        """One RK4 step by a fused kernel (stage combinations included), or None.

        Stacks: on the CPU the C++ kernel
        :func:`~hhml.core.resonance.stack_kernel.cpp_stack_rk4_step`; on other devices, or
        where that kernel is unavailable or declines, the compiled step
        :func:`~hhml.core.resonance.compiled_rk4.compiled_stack_rk4_step` (with
        ``compiled=None`` only for at least ``MIN_COMPILED_NODES`` nodes in the batch).
        Flat single strips without a spectral filter, where the right-hand side would be
        compiled: :func:`~hhml.core.resonance.cpp_kernels.cpp_flat_rk4_step` on the CPU
        (scalar parameters), else
        :func:`~hhml.core.resonance.compiled_rk4.compiled_flat_rk4_step`. None with
        ``compiled=False``, where no fused step applies, or when compilation is
        unavailable; the reason is in ``RK4_COMPILE_STATUS.last_skip`` (and
        ``STACK_STATUS`` / ``CPP_STATUS`` for the C++ kernels). Same numbers as the
        classical RK4 of :mod:`~hhml.core.resonance.integrators` to rounding."""
        # imported here: loading the compiled module pulls in torch.compile machinery
        from hhml.core.resonance.compiled_rk4 import (
            RK4_COMPILE_STATUS,
            compiled_flat_rk4_step,
            compiled_stack_rk4_step,
        )

        c = self.coefficients
        if self.compiled is False:
            RK4_COMPILE_STATUS.last_skip = "Simulator.compiled is False"
            return None
        on_cpu = psi.device.type == "cpu"
        if not self.is_stack:
            # flat single strip, no spectral filter, a grid the compiled rhs would run on
            if not self._use_cpp or c.use_filter or self.chart.nv < 4:
                RK4_COMPILE_STATUS.last_skip = (
                    "flat strip with a spectral filter, nv < 4 or (compiled=None) fewer "
                    "than MIN_COMPILED_NODES nodes"
                )
                return None
            if on_cpu:
                out_cpp = cpp_flat_rk4_step(
                    psi,
                    t,
                    dt,
                    self.chart,
                    c.growth,
                    c.diffusion,
                    c.cubic,
                    self.potential,
                    self.source,
                    c.frequency,
                )
                if out_cpp is not None:
                    return out_cpp
            return compiled_flat_rk4_step(
                psi,
                t,
                dt,
                **self._flat_chart(),
                potential=self.potential,
                source=self.source,
                frequency=c.frequency,
                **self.raw,
            )
        assert isinstance(self.lattice, TokamakStack)
        real = self.chart.real_dtype
        batched = psi if self.batch is not None else psi.unsqueeze(0)
        args: dict[str, Any] = dict(
            coefficients=self.lattice.face_coefficients(real),
            seam_phase=self.lattice.seam_phase,
            growth=c.growth,
            diffusion=c.diffusion,
            cubic=c.cubic,
            filter=c.filter if c.use_filter else 0.0,
            frequency=c.frequency,
            coupling=c.coupling,
            weights=self.lattice.coupling_weights(copy=False) if c.use_coupling else None,
            potential=self.potential,
            source=self.source,
            flip=self.chart.flip,
            periodic_v=self.chart.periodic_v,
            ghost_sign=self.chart.ghost_sign,
        )
        plan = self._stack_plan(batched, args) if on_cpu else None
        out = None if plan is None else plan.step(batched, t, dt)
        if out is None:
            if self.compiled is None and batched.numel() < MIN_COMPILED_NODES:
                RK4_COMPILE_STATUS.last_skip = (
                    f"compiled=None and {batched.numel()} nodes < MIN_COMPILED_NODES"
                )
                return None
            out = compiled_stack_rk4_step(batched, t, dt, **args)
        if out is None or self.batch is not None:
            return out
        return out.squeeze(0)

    def _stack_plan(self, psi: Tensor, args: dict[str, Any]) -> StackRK4Plan | None:
        """The kernel plan of these arguments: the one of the previous step when every
        argument is the same object (the parameters and the lattice change between env
        steps, not between the simulator steps of one), else a new one; None where the
        kernel does not apply (reason in ``STACK_STATUS``)."""
        key = (tuple(psi.shape), psi.dtype, *args.values())
        cached = self._plan_cache
        if cached is not None and _same_objects(cached[0], key):
            return cached[1]
        plan = cpp_stack_rk4_plan(psi, **args)
        if plan is not None:  # (None is not cached: the next step retries)
            self._plan_cache = (key, plan)
        return plan
