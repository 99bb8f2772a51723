"""The field simulator: the equation of docs/physics.md on a lattice.

    ∂ψ/∂t = (1 − γ)ψ + (D + iα)Δψ − ν₄Δ²ψ − (g + iβ)|ψ|²ψ − V(x)ψ
            + S(x, t) + c·Σ_{s'} W_{ss'}(ψ_{s'} − ψ_s) + √(2T) η(x, t)

The deterministic right-hand side (:meth:`Simulator.rhs`) is advanced by the
chosen integrator; then (operator splitting, Euler–Maruyama) the noise
increment ``√(2T·dt)·ξ`` with ``ξ`` a standard complex normal per node
(``⟨|ξ|²⟩ = 1``) is added, and vortex–antivortex pairs are seeded with
probability ``pair_seeding·dt`` per step and batch element (all random numbers
come from one ``torch.Generator`` on the simulator's device).

Parameters are :class:`FieldParams` (one, or one per batch element), or — the
hot path of the batched RL environment — per-element tensors ``[B]`` set with
:meth:`Simulator.set_parameter_tensors`, which never synchronises the device.

Public names: :class:`Simulator`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from hhml.config.schema import FieldParams
from hhml.core.mobius import LatticeEnsemble, MobiusStrip, TokamakStack
from hhml.core.resonance.cpp_kernels import cpp_flat_cgl_rhs, cpp_flat_rk4_step
from hhml.core.resonance.flat_kernels import MIN_COMPILED_NODES, flat_cgl_rhs
from hhml.core.resonance.forcing import pinning_profile, source_layout, source_profile
from hhml.core.resonance.imprint import pair_factors
from hhml.core.resonance.imprint_kernel import cpp_pair_factors
from hhml.core.resonance.integrators import INTEGRATORS, Integrator, max_stable_dt
from hhml.core.resonance.stack_kernel import cpp_stack_rk4_step
from hhml.errors import ConfigError, LatticeError, NumericalInstabilityError
from hhml.utils.host_sync import device_paths_only

if TYPE_CHECKING:
    from hhml.core.resonance.trackers import Tracker

Lattice = MobiusStrip | TokamakStack
INITIAL_CONDITIONS = ("noise", "uniform", "zero")

#: The parameters :meth:`Simulator.set_parameter_tensors` takes per batch element.
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
class _Coefficients:
    """Parameters in the form the hot loop uses: floats, or ``[B, 1, 1(, 1)]`` tensors."""

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


class Simulator:
    """Integrates a (batch of) complex field(s) on a Möbius lattice or stack.

    Parameters
    ----------
    lattice
        A :class:`~hhml.core.mobius.MobiusStrip` or :class:`~hhml.core.mobius.TokamakStack`.
    params
        One :class:`FieldParams` for every field, or a sequence of them (one per
        batch element; the batch size is then its length).
    dt
        Time step (lattice time units). Checked against the integrator's
        stability bound on construction and whenever parameters change.
    integrator
        ``"rk4"`` (default), ``"etd"`` (integrating-factor RK4, flat-metric
        single strip only) or ``"euler"``.
    seed
        Seeds the noise, the initial condition, the quenched source amplitudes,
        the pinning sites and the pair seeding. Same seed ⇒ same trajectory on
        the same device.
    device, dtype
        Default: the lattice's. If they differ from the lattice's, a copy of
        the lattice is made on that device/dtype.
    batch
        Number of independent fields ``B`` (state shape ``[B, *field_shape]``);
        None for an unbatched state ``field_shape``.
    initial
        ``"noise"`` (seeded complex Gaussian, rms ``initial_amplitude``),
        ``"uniform"`` (ψ = initial_amplitude) or ``"zero"``.
    check_every
        Steps between finiteness checks (each one synchronises the device).
    compiled
        Flat-metric single strips evaluate the right-hand side with the fused
        kernels of :mod:`~hhml.core.resonance.flat_kernels`: ``None`` compiles
        them for grids of at least ``MIN_COMPILED_NODES`` nodes, ``True``
        always, ``False`` never (eager). Compiled means the C++/OpenMP kernel of
        :mod:`~hhml.core.resonance.cpp_kernels` on CPU with scalar parameters,
        else the torch.compile kernels. All give the same numbers to rounding.

    Attributes
    ----------
    psi : Tensor
        The state, ``[B?, *field_shape]`` complex. Settable.
    t : float
        Current time.
    step_count : int
        Number of steps taken.
    """

    def __init__(
        self,
        lattice: Lattice,
        params: FieldParams | Sequence[FieldParams] | None = None,
        dt: float = 0.05,
        integrator: str = "rk4",
        seed: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        batch: int | None = None,
        initial: str = "noise",
        initial_amplitude: float = 0.1,
        check_every: int = 20,
        compiled: bool | None = None,
    ) -> None:
        if not isinstance(lattice, (MobiusStrip, TokamakStack)):
            raise LatticeError(
                f"lattice must be a MobiusStrip or TokamakStack, got {type(lattice).__name__}"
            )
        if (device is not None and torch.device(device) != lattice.device) or (
            dtype is not None and dtype != lattice.dtype
        ):
            raise ConfigError(
                f"Simulator(device={device}, dtype={dtype}) differs from the lattice "
                f"(device={lattice.device}, dtype={lattice.dtype}); build the lattice with "
                "the device and dtype you want to simulate on"
            )
        if integrator not in INTEGRATORS:
            raise ConfigError(
                f"integrator = {integrator!r} is not valid; choose one of "
                + ", ".join(repr(k) for k in INTEGRATORS)
            )
        if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
            raise ConfigError(f"dt = {dt!r} is not valid; it must be a finite number > 0")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"seed = {seed!r} is not valid; it must be an integer ≥ 0")
        if initial not in INITIAL_CONDITIONS:
            raise ConfigError(
                f"initial = {initial!r} is not valid; choose one of {INITIAL_CONDITIONS}"
            )
        if isinstance(check_every, bool) or not isinstance(check_every, int) or check_every < 1:
            raise ConfigError(f"check_every = {check_every!r} is not valid; need an integer ≥ 1")
        self.lattice = lattice
        self.chart: MobiusStrip = lattice.strip if isinstance(lattice, TokamakStack) else lattice
        self.is_stack = isinstance(lattice, TokamakStack)
        if integrator == "etd" and (self.is_stack or self.chart.metric != "flat"):
            raise ConfigError(
                "integrator = 'etd' needs a single MobiusStrip with metric='flat' (it uses the "
                "exact eigenbasis of the flat Laplacian); use integrator='rk4' for "
                f"{type(lattice).__name__} with metric={self.chart.metric!r}"
            )
        self.device = lattice.device
        self.dtype = lattice.dtype
        self.dt = float(dt)
        self.seed = seed
        self.check_every = check_every
        self.compiled = compiled
        # the fused flat kernels cover every term except the spectral filter and coupling
        self._fused = not self.is_stack and self.chart.metric == "flat"
        nodes = self.chart.nu * self.chart.nv
        # the hand-written C++ kernel (CPU, scalar parameters) is the fastest path; it is
        # built on first use, so small grids skip it unless asked for explicitly
        self._use_cpp = self._fused and (
            compiled is True or (compiled is None and nodes >= MIN_COMPILED_NODES)
        )
        if params is None:
            params = FieldParams()
        if isinstance(params, FieldParams):
            self.batch = batch
        else:
            params = tuple(params)
            if batch is not None and batch != len(params):
                raise ConfigError(f"batch = {batch} but {len(params)} FieldParams were given")
            self.batch = len(params)
        if self.batch is not None and (isinstance(self.batch, bool) or self.batch < 1):
            raise ConfigError(f"batch = {self.batch!r} is not valid; need an integer ≥ 1")
        if isinstance(lattice, LatticeEnsemble) and self.batch != lattice.size:
            raise ConfigError(
                f"batch = {self.batch} but the LatticeEnsemble has {lattice.size} elements; "
                "a simulator on an ensemble advances one field per element"
            )
        self.state_shape: tuple[int, ...] = (
            *(() if self.batch is None else (self.batch,)),
            *lattice.field_shape,
        )
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self.integrator: Integrator = INTEGRATORS[integrator](self)
        self.t = 0.0
        self.step_count = 0
        self._built_twist = self.chart.twist
        self._tensors: dict[str, Tensor] | None = None
        self._active: frozenset[str] = frozenset()
        self._source_layout = source_layout(self.chart, seed + 1)
        self._pinning_cache: dict[tuple[int, float], tuple[Tensor, float]] = {}
        self.params = params  # type: ignore[assignment]  # property: validates, builds forcing
        self.psi = self._initial_state(initial, initial_amplitude)

    # ------------------------------------------------------------- parameters
    @property
    def params(self) -> FieldParams | tuple[FieldParams, ...]:
        """The physical parameters (one, or one per batch element). Settable."""
        return self._params

    @params.setter
    def params(self, params: FieldParams | Sequence[FieldParams]) -> None:
        plist = [params] if isinstance(params, FieldParams) else list(params)
        for k, p in enumerate(plist):
            if not isinstance(p, FieldParams):
                raise ConfigError(f"params[{k}] is a {type(p).__name__}, expected FieldParams")
            p.validate()
        if not isinstance(params, FieldParams) and len(plist) != self.batch:
            raise ConfigError(f"got {len(plist)} FieldParams for a batch of {self.batch}")
        previous = getattr(self, "_params", None), getattr(self, "_plist", None), self._tensors
        self._params = params if isinstance(params, FieldParams) else tuple(plist)
        self._plist = plist
        self._tensors = None
        try:
            self._build()
        except Exception:
            # a rejected change (e.g. dt now unstable) leaves the simulator as it was
            self._params, self._plist, self._tensors = previous  # type: ignore[assignment]
            if previous[0] is not None:
                self._build()
            raise

    def set_parameter_tensors(
        self, values: Mapping[str, Tensor], active: Collection[str] | None = None
    ) -> None:
        """Set per-element parameters from tensors, without any host synchronisation.

        The hot path of the batched environment: no :class:`FieldParams` objects,
        no Python loop over elements, no stability check (the caller must have
        established stability for every value that can occur, as
        :class:`hhml.ml.env.MobiusVortexCore` does for its control box).

        Parameters
        ----------
        values
            Every name of :data:`TENSOR_PARAMETERS` → a real tensor ``[B]`` on the
            simulator's device (``boundary_winding`` already rounded). The other
            fields (pinning sites and radius, pair separation, core radius) stay
            those of :attr:`params`, which must be one :class:`FieldParams` or a
            batch of equal ones in those fields.
        active
            Names whose term can be non-zero (default: all). A term not listed is
            skipped in the right-hand side, so its values must be 0.

        Raises
        ------
        ConfigError
            A missing or unknown name, or a tensor that is not ``[B]`` on the device.
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
        self._check_stability = False
        try:
            self._build()
        finally:
            self._check_stability = True

    @property
    def parameter_tensors(self) -> dict[str, Tensor] | None:
        """The per-element tensors of :meth:`set_parameter_tensors` (None when the
        parameters are :class:`FieldParams`)."""
        return None if self._tensors is None else dict(self._tensors)

    def update_params(
        self, params: FieldParams | Sequence[FieldParams], check_stability: bool = True
    ) -> None:
        """Set :attr:`params`; ``check_stability=False`` skips the dt stability check.

        Skip it only when stability has been established for every parameter
        set that can occur (as :class:`hhml.ml.env.MobiusVortexCore` does for
        its whole control box once, at construction); the NaN check while
        stepping still applies.
        """
        self._check_stability = check_stability
        try:
            self.params = params  # type: ignore[assignment]
        finally:
            self._check_stability = True

    def set_params(self, **changes: Any) -> None:
        """Change parameters of every batch element, e.g. ``sim.set_params(damping=0.2)``."""
        self.params = (
            self._params.replace(**changes)
            if isinstance(self._params, FieldParams)
            else tuple(p.replace(**changes) for p in self._params)
        )

    def rebuild(self) -> None:
        """Recompute the forcing and stability check after the lattice changed in place
        (e.g. :meth:`~hhml.core.mobius.LatticeEnsemble.set_geometry`).

        Raises :class:`NumericalInstabilityError` if ``dt`` is no longer stable.
        """
        self._build()

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

    def _build(self) -> None:
        """Precompute everything the hot loop needs from the parameters."""
        v = self._values
        one = 1.0
        self._raw = {
            name: v(name)
            for name in (
                "damping",
                "diffusion",
                "dispersion",
                "nonlinearity",
                "nonlinear_frequency",
            )
        }
        self._c = _Coefficients(
            growth=one - v("damping"),
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
        # profiles: one chart pattern, shared by all strips of a stack
        first = self._plist[0]
        self._source = None
        if self._c.use_sources:
            twist = self.lattice.twists() if isinstance(self.lattice, LatticeEnsemble) else None
            prof = source_profile(
                self.chart,
                v("boundary_winding"),
                v("source_spread"),
                self.seed + 1,
                twist,
                layout=self._source_layout,
            )
            self._source = self._per_strip(prof) * self._c.amplitude
        self._potential = None
        self._pinning_peak = 0.0
        layouts = {(p.pinning_sites, p.pinning_radius) for p in self._plist}
        if self._c.use_pinning:
            if len(layouts) > 1:
                raise ConfigError(
                    "pinning_sites and pinning_radius must be the same for every batch element"
                )
            key = (first.pinning_sites, first.pinning_radius)
            if key not in self._pinning_cache:  # the landscape is quenched: build it once
                prof_v = pinning_profile(self.chart, *key, self.seed + 2)
                self._pinning_cache = {key: (prof_v, float(prof_v.max()))}
            prof_v, self._pinning_peak = self._pinning_cache[key]
            self._potential = self._per_strip(prof_v) * self._c.pinning
        if self._tensors is None:
            rates = [p.pair_seeding * self.dt for p in self._plist]
            if max(rates) > 1.0:
                raise ConfigError(
                    f"dynamics.pair_seeding × dt = {max(rates):g} > 1: at most one pair can "
                    f"be seeded per step; lower pair_seeding or dt (dt = {self.dt:g})"
                )
        pairs = {(p.pair_separation, p.core_radius) for p in self._plist}
        self._seed_rate: Tensor | None = None
        if self._any("pair_seeding"):
            if len(pairs) > 1:
                raise ConfigError(
                    "pair_separation and core_radius must be the same for every batch element"
                )
            rate = v("pair_seeding")
            self._seed_rate = (
                rate.reshape(-1).to(torch.float64)
                if isinstance(rate, Tensor)
                else torch.full((1,), rate, dtype=torch.float64, device=self.device)
            )
        self._built_twist = self.chart.twist
        self.integrator.prepare()
        if getattr(self, "_check_stability", True):
            self.check_time_step(self.dt)

    def _per_strip(self, prof: Tensor) -> Tensor:
        """Insert the strip axis for stacks: ``[B?, nu, nv]`` → ``[B?, 1, nu, nv]``."""
        return prof.unsqueeze(-3) if self.is_stack else prof

    # -------------------------------------------------------------- stability
    def linear_eigenvalue_samples(self) -> np.ndarray:
        """Samples of the stiff linear spectrum ``(D+iα)λ − ν₄λ² − c·κ`` (1/time).

        ``λ`` runs over ``[−ρ, 0]`` with ρ the Gershgorin bound of the
        Laplacian, ``κ`` over the coupling operator's range ``[0, 4 max W]``.
        The physical growth ``1 − γ`` is not part of the stability check.
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
            if isinstance(self.integrator, INTEGRATORS["etd"]):
                mu = np.zeros(0, dtype=np.complex128)  # linear part is exact
            # the pinning potential is V₀ times a sum of Gaussians: its peak can exceed V₀
            extra = -(p.coupling * kmax + p.pinning * self._pinning_peak) * np.linspace(
                0.0, 1.0, 11
            )
            out.append(np.concatenate([mu, extra]))
        return np.concatenate(out).astype(np.complex128)

    def max_stable_dt(self) -> float:
        """Largest stable dt for the current parameters and integrator (inf if none)."""
        integ = self.integrator
        if integ.amplification(np.zeros(1, dtype=np.complex128)) is None:
            # exact linear part: only the explicit damping terms (coupling, pinning) limit dt
            from hhml.core.resonance.integrators.runge_kutta import RK4

            rk = RK4(self)
            return max_stable_dt(rk.amplification, self.linear_eigenvalue_samples(), self.dt)
        return max_stable_dt(integ.amplification, self.linear_eigenvalue_samples(), self.dt)  # type: ignore[arg-type]

    def check_time_step(self, dt: float) -> None:
        """Raise :class:`NumericalInstabilityError` if ``dt`` exceeds the stability bound."""
        limit = self.max_stable_dt()
        if dt > limit:
            p = self._plist[int(np.argmax([q.diffusion + abs(q.dispersion) for q in self._plist]))]
            raise NumericalInstabilityError(
                f"dt = {dt:g} exceeds the {self.integrator.name} stability limit {limit:.4g} "
                f"for diffusion={p.diffusion:g}, dispersion={p.dispersion:g}, "
                f"spectral_filter={p.spectral_filter:g}, coupling={p.coupling:g}, "
                f"pinning={p.pinning:g} on this lattice (max |λ| ≈ "
                f"{self.lattice.spectral_radius_bound():.4g}); use dt ≤ {0.95 * limit:.3g}"
                + (
                    ""
                    if self.integrator.name == "etd" or self.is_stack
                    else " or integrator='etd' with metric='flat'"
                )
            )

    # ------------------------------------------------------------ equation
    def _initial_state(self, initial: str, amplitude: float) -> Tensor:
        if initial == "zero":
            return torch.zeros(self.state_shape, dtype=self.dtype, device=self.device)
        if initial == "uniform":
            return torch.full(self.state_shape, amplitude, dtype=self.dtype, device=self.device)
        return amplitude * torch.randn(
            self.state_shape, dtype=self.dtype, device=self.device, generator=self.generator
        )

    @property
    def psi(self) -> Tensor:
        """Current state ``[B?, *field_shape]``."""
        return self._psi

    @psi.setter
    def psi(self, value: Tensor) -> None:
        if not isinstance(value, Tensor) or tuple(value.shape) != self.state_shape:
            shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise LatticeError(
                f"psi has shape {shape}; this simulator's state is {self.state_shape}"
            )
        if not value.is_complex():
            raise LatticeError(f"psi has dtype {value.dtype}; expected {self.dtype}")
        self._psi = value.to(device=self.device, dtype=self.dtype)

    def rhs(self, psi: Tensor, t: float) -> Tensor:
        """Deterministic right-hand side ``F(ψ, t)`` (noise excluded).

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

    def linear_symbol(self, eigenvalues: Tensor) -> Tensor:
        """``(1 − γ) + (D + iα)λ − ν₄λ²`` for Laplacian eigenvalues λ (ETD)."""
        c = self._c
        lam = eigenvalues.to(torch.complex128)
        return c.growth + c.diffusion * lam - c.filter * lam * lam  # type: ignore[no-any-return]

    def nonlinear(self, psi: Tensor, t: float) -> Tensor:
        """The part of the right-hand side not in :meth:`linear_symbol`."""
        c = self._c
        out = -(c.cubic * (psi.real.square() + psi.imag.square())) * psi
        return self._add_local_terms(out, psi, t)

    def _add_local_terms(self, out: Tensor, psi: Tensor, t: float) -> Tensor:
        c = self._c
        if self._potential is not None:
            out = out - self._potential * psi
        source = self._source_at(t)
        if source is not None:
            out = out + source
        if c.use_coupling:
            assert isinstance(self.lattice, TokamakStack)
            out = out + c.coupling * self.lattice.coupling(psi)
        return out

    def _source_at(self, t: float) -> Tensor | None:
        if self._source is None:
            return None
        phase = self._c.frequency * t
        rot = (
            torch.polar(torch.ones_like(phase), -phase)
            if isinstance(phase, Tensor)
            else complex(math.cos(phase), -math.sin(phase))
        )
        out: Tensor = self._source * rot
        return out

    def rhs_unchecked(self, psi: Tensor, t: float) -> Tensor:
        """:meth:`rhs` without the shape check (the integrators' hot path)."""
        c = self._c
        if self._fused:
            chart = self.chart
            source = self._source_at(t)
            out_cpp = (
                cpp_flat_cgl_rhs(
                    psi, chart, c.growth, c.diffusion, c.cubic, self._potential, source
                )
                if self._use_cpp
                else None
            )
            if out_cpp is not None:
                if c.use_filter:
                    out_cpp = out_cpp - c.filter * chart.laplacian(chart.laplacian(psi))
                return out_cpp
            out = flat_cgl_rhs(
                psi,
                topology=chart.topology,
                edge=chart.edge,
                twist=chart.twist,
                du=chart.du,
                dv=chart.dv,
                potential=self._potential,
                source=source,
                compiled=self.compiled,
                **self._raw,
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
        ``STACK_STATUS`` / ``CPP_STATUS`` for the C++ kernels). Same numbers as
        :class:`RK4` to rounding."""
        # imported here: this method is the only user in this module
        from hhml.core.resonance.compiled_rk4 import (
            RK4_COMPILE_STATUS,
            compiled_flat_rk4_step,
            compiled_stack_rk4_step,
        )

        c = self._c
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
                    self._potential,
                    self._source,
                    c.frequency,
                )
                if out_cpp is not None:
                    return out_cpp
            chart = self.chart
            return compiled_flat_rk4_step(
                psi,
                t,
                dt,
                topology=chart.topology,
                edge=chart.edge,
                twist=chart.twist,
                du=chart.du,
                dv=chart.dv,
                potential=self._potential,
                source=self._source,
                frequency=c.frequency,
                **self._raw,
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
            potential=self._potential,
            source=self._source,
            flip=self.chart.flip,
            periodic_v=self.chart.periodic_v,
            ghost_sign=self.chart.ghost_sign,
        )
        out = cpp_stack_rk4_step(batched, t, dt, **args) if on_cpu else None
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

    # --------------------------------------------------------------- stepping
    def _advance(self, dt: float) -> None:
        psi = self.integrator.step(self._psi, self.t, dt)
        c = self._c
        # a result that does not share the state's memory is ours to update in place
        own = psi.untyped_storage().data_ptr() != self._psi.untyped_storage().data_ptr()
        if c.use_noise:
            psi = self._add_noise(psi, dt, own)
            own = True
        if self._seed_rate is not None:
            psi = self._seed_pairs(psi, dt, self._seed_rate, in_place=own)
        self._psi = psi
        self.t += dt
        self.step_count += 1

    def _add_noise(self, psi: Tensor, dt: float, in_place: bool) -> Tensor:
        """``psi + noise·√dt·ξ`` with ξ complex standard normal (``E|ξ|² = 1``).

        ξ takes the numbers ``torch.randn(psi.shape, dtype=psi.dtype, generator=...)``
        would (the same draws from :attr:`generator`: real and imaginary parts normal with
        standard deviation ``1/√2``, as torch draws a complex normal), written into a
        buffer kept between steps and scaled there (a real scale times a complex number:
        the same roundings as the complex product). ``in_place``: add into ``psi``.
        """
        buf: Tensor | None = getattr(self, "_noise_buffer", None)
        like = (psi.shape, psi.dtype, psi.device)
        if buf is None or (buf.shape, buf.dtype, buf.device) != like:
            buf = torch.empty(psi.shape, dtype=psi.dtype, device=psi.device)
            self._noise_buffer = buf
        parts = torch.view_as_real(buf)
        # std / sqrt(2) in double, as at::normal_ computes it for a complex tensor
        parts.normal_(0.0, 1.0 / math.sqrt(2.0), generator=self.generator)
        scale = self._c.noise * math.sqrt(dt)
        parts.mul_(scale.unsqueeze(-1) if isinstance(scale, Tensor) else scale)
        return psi.add_(buf) if in_place else psi + buf

    def _seed_pairs(self, psi: Tensor, dt: float, rate: Tensor, in_place: bool = False) -> Tensor:
        """Imprint a ±1 pair with probability ``pair_seeding·dt`` per batch element.

        Every element draws its uniform number, centre ``(u0, v0)``
        (``v0 ∈ (−0.8w, 0.8w)``), sign and strip from :attr:`generator` whether or
        not it seeds, so the stream does not depend on the outcome. On CPU only the
        seeding elements' imprints are computed; on other devices all of them are,
        masked, so that nothing waits for the host. Both give the same numbers.
        ``in_place``: ``psi`` may be updated in place (on the CPU path).
        """
        n = rate.shape[0]
        dev, gen, f64 = self.device, self.generator, torch.float64
        draws = torch.rand(n, 4, generator=gen, dtype=f64, device=dev)
        seeding = draws[:, 0] < rate * dt
        u0 = draws[:, 1] * self.chart.length
        v0 = (draws[:, 2] * 1.6 - 0.8) * self.chart.half_width
        sign = torch.where(draws[:, 3] < 0.5, 1.0, -1.0).to(f64)
        strips = self.lattice.field_shape[0] if self.is_stack else 1
        strip = torch.randint(strips, (n,), generator=gen, device=dev)
        first = self._plist[0]
        rd = self.chart.real_dtype

        def factors(idx: Tensor | slice) -> Tensor:
            args = (u0[idx].to(rd), v0[idx].to(rd), first.pair_separation, sign[idx].to(rd))
            out = cpp_pair_factors(self.chart, *args, first.core_radius) if on_host else None
            if out is None:  # a device, or the kernel does not apply (IMPRINT_STATUS)
                out = pair_factors(self.chart, *args, first.core_radius)
            return out.to(psi.dtype)

        on_host = dev.type == "cpu" and not device_paths_only()

        batched = psi if self.batch is not None else psi.unsqueeze(0)
        if not self.is_stack:
            batched = batched.unsqueeze(1)  # a strip axis of length 1
        if on_host:
            idx = torch.nonzero(seeding).reshape(-1)
            if idx.numel() == 0:
                return psi
            out = batched if in_place else batched.clone()
            out[idx, strip[idx]] = batched[idx, strip[idx]] * factors(idx)
        else:
            hit = seeding[:, None] & (strip[:, None] == torch.arange(strips, device=dev))
            imprinted = batched * factors(slice(None))[:, None]
            out = torch.where(hit[:, :, None, None], imprinted, batched)
        if not self.is_stack:
            out = out.squeeze(1)
        return out if self.batch is not None else out.squeeze(0)

    def _snapshot(self) -> tuple[Any, ...]:
        return (
            self._psi.clone(),
            self.t,
            self.step_count,
            self.generator.get_state(),
        )

    def _restore(self, snap: tuple[Any, ...]) -> None:
        self._psi, self.t, self.step_count = snap[0].clone(), snap[1], snap[2]
        self.generator.set_state(snap[3])

    def _finite(self) -> bool:
        return bool(torch.isfinite(torch.view_as_real(self._psi)).all())

    def step(self, n: int = 1) -> Tensor:
        """Advance ``n`` steps of ``dt``; returns the new state.

        Finiteness is checked every ``check_every`` steps. If the state became
        NaN/Inf, the run is replayed from the last checked state to find the
        first bad step, the state is left at the last finite value, and
        :class:`NumericalInstabilityError` names the step and time.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigError(f"n = {n!r} is not valid; it must be an integer ≥ 0")
        if self.chart.twist != self._built_twist:
            self._build()  # the lattice twist was changed: rebuild sources / eigenbasis
        done = 0
        while done < n:
            chunk = min(self.check_every, n - done)
            snap = self._snapshot()
            for _ in range(chunk):
                self._advance(self.dt)
            if not self._finite():
                self._locate_blow_up(snap, chunk)
            done += chunk
        return self._psi

    def advance(self, n: int) -> Tensor:
        """Advance ``n`` steps with no finiteness check and no host synchronisation.

        For batched callers that check every element themselves (the RL env flags
        non-finite elements per env). A blow-up is not located or undone here.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigError(f"n = {n!r} is not valid; it must be an integer ≥ 0")
        if self.chart.twist != self._built_twist:
            self._build()
        for _ in range(n):
            self._advance(self.dt)
        return self._psi

    def _locate_blow_up(self, snap: tuple[Any, ...], chunk: int) -> None:
        self._restore(snap)
        for _ in range(chunk):
            before = self._snapshot()
            self._advance(self.dt)
            if not self._finite():
                self._restore(before)
                raise NumericalInstabilityError(
                    f"the field became NaN/Inf at step {self.step_count + 1} "
                    f"(t = {self.t + self.dt:.6g}); the state was kept at step "
                    f"{self.step_count} (t = {self.t:.6g}). Reduce dt (now {self.dt:g}) or "
                    "the nonlinearity/source amplitude"
                )
        raise NumericalInstabilityError(  # pragma: no cover - non-deterministic device
            "the field became NaN/Inf but the replay stayed finite (non-deterministic device?)"
        )

    def run(self, t_end: float, trackers: Sequence[Tracker] = ()) -> Tensor:
        """Advance to time ``t_end`` with steps of ``dt`` (the last step may be shorter).

        ``trackers`` (:mod:`hhml.core.resonance.trackers`) are called at the start, every
        ``tracker.interval`` (a whole number of steps) and at the end; one that raises
        :class:`~hhml.core.resonance.trackers.StopSimulation` ends the run early with the
        state of that moment. Returns the state.
        """
        from hhml.core.resonance.trackers import StopSimulation

        if not math.isfinite(t_end) or t_end < self.t:
            raise ConfigError(f"t_end = {t_end!r} is not valid; it must be ≥ t = {self.t:g}")
        n = math.floor((t_end - self.t) / self.dt + 1e-9)
        if not trackers:
            self.step(n)
            return self._finish_run(t_end)
        self._run_t_end = float(t_end)
        every = [tracker.steps(self.dt) for tracker in trackers]
        started: list[Tracker] = []
        try:
            for tracker in trackers:
                tracker.start(self)
                started.append(tracker)
            for tracker in trackers:
                tracker.handle(self)
            done = 0
            while done < n:
                chunk = min(n - done, *(e - done % e for e in every))
                self.step(chunk)
                done += chunk
                for tracker, e in zip(trackers, every, strict=True):
                    if done % e == 0:
                        tracker.handle(self)
            self._finish_run(t_end)
        except StopSimulation:
            pass
        finally:
            for tracker in started:
                tracker.finish(self)
        return self._psi

    def _finish_run(self, t_end: float) -> Tensor:
        """The final partial step of :meth:`run` to exactly ``t_end``."""
        rest = t_end - self.t
        if rest > 1e-12 * self.dt:
            snap = self._snapshot()
            self._advance(rest)
            if not self._finite():
                self._restore(snap)
                raise NumericalInstabilityError(
                    f"the field became NaN/Inf in the final partial step to t = {t_end:g}"
                )
        return self._psi

    # ------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this trajectory exactly."""
        return {
            "psi": self._psi.detach().clone(),
            "t": self.t,
            "step_count": self.step_count,
            "generator_state": self.generator.get_state(),
            "params": [{f.name: getattr(p, f.name) for f in fields(p)} for p in self._plist],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (same lattice, batch and parameters layout)."""
        missing = {"psi", "t", "step_count", "generator_state"} - set(state)
        if missing:
            raise ConfigError(f"simulator state is missing {sorted(missing)}")
        self.psi = state["psi"]
        self.t = float(state["t"])
        self.step_count = int(state["step_count"])
        self.generator.set_state(state["generator_state"])
