"""The field simulator: the state of a (batch of) field(s) and its time evolution.

    ∂ψ/∂t = F(ψ, t) + √(2T) η(x, t)

The simulator composes three parts, each usable alone:

- the **equation** ``F`` (:class:`~hhml.core.resonance.equation.FieldEquation`: the
  right-hand side of docs/physics.md with its parameters),
- the **stepper** (an integrator of :mod:`~hhml.core.resonance.integrators`, which takes
  the equation), followed (operator splitting, Euler–Maruyama) by the noise increment
  ``√(2T·dt)·ξ`` and pair seeding of :mod:`~hhml.core.resonance.stochastic`, all random
  numbers from one ``torch.Generator`` on the simulator's device,
- the **runner** (:mod:`~hhml.core.resonance.runner`: the time loop with finiteness
  checks and trackers).

It owns the state ``ψ``, the time, the generator and the stability check of ``dt``.
Parameters are :class:`FieldParams` (one, or one per batch element), or — the hot path
of the batched RL environment — per-element tensors ``[B]`` set with
:meth:`Simulator.set_parameter_tensors`, which never synchronises the device.

Public names: :class:`Simulator`, :data:`TENSOR_PARAMETERS`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from hhml.config.schema import FieldParams
from hhml.core.mobius import LatticeEnsemble, MobiusStrip, TokamakStack
from hhml.core.resonance.equation import TENSOR_PARAMETERS, FieldEquation
from hhml.core.resonance.integrators import INTEGRATORS, RK4, Integrator, max_stable_dt
from hhml.core.resonance.runner import run_until, step_checked
from hhml.core.resonance.stochastic import NoiseIncrement, seed_pairs
from hhml.errors import ConfigError, LatticeError, NumericalInstabilityError

if TYPE_CHECKING:
    from hhml.core.resonance.runner import Tracker

__all__ = ["TENSOR_PARAMETERS", "Simulator"]

Lattice = MobiusStrip | TokamakStack
INITIAL_CONDITIONS = ("noise", "uniform", "zero")


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
        Must be the lattice's (build the lattice on the device and dtype you want).
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
    equation : FieldEquation
        The right-hand side ``F`` and its parameters.
    integrator : Integrator
        The stepper advancing :attr:`equation`.
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
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self.t = 0.0
        self.step_count = 0
        self._noise = NoiseIncrement()
        self._check_stability = True
        self.equation = FieldEquation(
            lattice, params, batch=self.batch, seed=seed, compiled=compiled
        )
        self.state_shape: tuple[int, ...] = self.equation.state_shape
        self.integrator: Integrator = INTEGRATORS[integrator](self.equation)
        self._after_build()
        self.psi = self._initial_state(initial, initial_amplitude)

    def __repr__(self) -> str:
        shape = "×".join(str(n) for n in self.lattice.field_shape)
        params = (
            "tensors"
            if self.equation.tensors is not None
            else ("shared" if isinstance(self.params, FieldParams) else "per element")
        )
        return (
            f"Simulator({type(self.lattice).__name__} {shape} {self.chart.topology}, "
            f"batch={self.batch}, integrator={self.integrator.name!r}, dt={self.dt:g}, "
            f"t={self.t:g}, steps={self.step_count}, params={params}, device={self.device}, "
            f"dtype={self.dtype})"
        )

    # ------------------------------------------------------------- parameters
    @property
    def compiled(self) -> bool | None:
        """The equation's choice of fused kernels (see the class parameters). Settable."""
        return self.equation.compiled

    @compiled.setter
    def compiled(self, value: bool | None) -> None:
        self.equation.compiled = value

    @property
    def params(self) -> FieldParams | tuple[FieldParams, ...]:
        """The physical parameters (one, or one per batch element). Settable."""
        return self.equation.params

    @params.setter
    def params(self, params: FieldParams | Sequence[FieldParams]) -> None:
        saved = self.equation.saved_params()
        self.equation.set_params(params)
        try:
            self._after_build()
        except Exception:
            # a rejected change (e.g. dt now unstable) leaves the simulator as it was
            self.equation.restore_params(saved)
            self.integrator.prepare()
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
        self.equation.set_tensors(values, active)
        self._check_stability = False
        try:
            self._after_build()
        finally:
            self._check_stability = True

    @property
    def parameter_tensors(self) -> dict[str, Tensor] | None:
        """The per-element tensors of :meth:`set_parameter_tensors` (None when the
        parameters are :class:`FieldParams`)."""
        return self.equation.tensors

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
        current = self.equation.params
        self.params = (
            current.replace(**changes)
            if isinstance(current, FieldParams)
            else tuple(p.replace(**changes) for p in current)
        )

    def rebuild(self) -> None:
        """Recompute the forcing and stability check after the lattice changed in place
        (e.g. :meth:`~hhml.core.mobius.LatticeEnsemble.set_geometry`).

        Raises :class:`NumericalInstabilityError` if ``dt`` is no longer stable.
        """
        self.equation.build()
        self._after_build()

    def _after_build(self) -> None:
        """What follows a change of the equation: the per-step limits, the integrator's
        cached operators and (unless switched off) the stability check."""
        plist = self.equation.param_list
        if self.equation.tensors is None:
            rates = [p.pair_seeding * self.dt for p in plist]
            if max(rates) > 1.0:
                raise ConfigError(
                    f"dynamics.pair_seeding × dt = {max(rates):g} > 1: at most one pair can "
                    f"be seeded per step; lower pair_seeding or dt (dt = {self.dt:g})"
                )
        self.integrator.prepare()
        if self._check_stability:
            self.check_time_step(self.dt)

    # -------------------------------------------------------------- stability
    def linear_eigenvalue_samples(self) -> np.ndarray:
        """Samples of the stiff linear spectrum the integrator must keep stable (1/time);
        see :meth:`FieldEquation.linear_eigenvalue_samples`."""
        exact = self.integrator.amplification(np.zeros(1, dtype=np.complex128)) is None
        return self.equation.linear_eigenvalue_samples(exact_linear=exact)

    def max_stable_dt(self) -> float:
        """Largest stable dt for the current parameters and integrator (inf if none)."""
        integ = self.integrator
        mu = self.linear_eigenvalue_samples()
        if integ.amplification(np.zeros(1, dtype=np.complex128)) is None:
            # exact linear part: only the explicit damping terms (coupling, pinning) limit
            # dt, through the explicit RK4 stages of the method
            return max_stable_dt(RK4(self.equation).amplification, mu, self.dt)
        return max_stable_dt(integ.amplification, mu, self.dt)  # type: ignore[arg-type]

    def check_time_step(self, dt: float) -> None:
        """Raise :class:`NumericalInstabilityError` if ``dt`` exceeds the stability bound."""
        limit = self.max_stable_dt()
        if dt > limit:
            plist = self.equation.param_list
            p = plist[int(np.argmax([q.diffusion + abs(q.dispersion) for q in plist]))]
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

    # ------------------------------------------------------------------ state
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
        """Deterministic right-hand side ``F(ψ, t)`` (noise excluded): the equation's
        :meth:`~hhml.core.resonance.equation.FieldEquation.rhs`."""
        return self.equation.rhs(psi, t)

    # --------------------------------------------------------------- stepping
    def advance_by(self, dt: float) -> None:
        """One step of size ``dt``: the integrator, then noise and pair seeding (no checks)."""
        if self.chart.twist != self.equation.built_twist:
            self.rebuild()  # the lattice twist was changed: rebuild sources / eigenbasis
        psi = self.integrator.step(self._psi, self.t, dt)
        eq = self.equation
        c = eq.coefficients
        # a result that does not share the state's memory is ours to update in place
        own = psi.untyped_storage().data_ptr() != self._psi.untyped_storage().data_ptr()
        if c.use_noise:
            psi = self._noise.apply(psi, c.noise, dt, self.generator, in_place=own)
            own = True
        if eq.seed_rate is not None:
            first = eq.param_list[0]
            psi = seed_pairs(
                psi,
                self.lattice,
                eq.seed_rate,
                dt,
                self.generator,
                separation=first.pair_separation,
                core_radius=first.core_radius,
                batched=self.batch is not None,
                in_place=own,
            )
        self._psi = psi
        self.t += dt
        self.step_count += 1

    def snapshot(self) -> tuple[Any, ...]:
        """A copy of the state, time, step count and generator for :meth:`restore`."""
        return (
            self._psi.clone(),
            self.t,
            self.step_count,
            self.generator.get_state(),
        )

    def restore(self, snap: tuple[Any, ...]) -> None:
        """Return exactly to a :meth:`snapshot`."""
        self._psi, self.t, self.step_count = snap[0].clone(), snap[1], snap[2]
        self.generator.set_state(snap[3])

    def is_finite(self) -> bool:
        """Whether every value of the state is finite (synchronises the device)."""
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
        return step_checked(self, n)

    def advance(self, n: int) -> Tensor:
        """Advance ``n`` steps with no finiteness check and no host synchronisation.

        For batched callers that check every element themselves (the RL env flags
        non-finite elements per env). A blow-up is not located or undone here.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigError(f"n = {n!r} is not valid; it must be an integer ≥ 0")
        for _ in range(n):
            self.advance_by(self.dt)
        return self._psi

    def run(self, t_end: float, trackers: Sequence[Tracker] = ()) -> Tensor:
        """Advance to time ``t_end`` with steps of ``dt`` (the last step may be shorter).

        ``trackers`` (:mod:`hhml.core.resonance.trackers`) are called at the start, every
        ``tracker.interval`` (a whole number of steps) and at the end; one that raises
        :class:`~hhml.core.resonance.trackers.StopSimulation` ends the run early with the
        state of that moment. Returns the state. The loop is
        :func:`hhml.core.resonance.runner.run_until`.
        """
        return run_until(self, t_end, trackers)

    # ------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this trajectory exactly."""
        return {
            "psi": self._psi.detach().clone(),
            "t": self.t,
            "step_count": self.step_count,
            "generator_state": self.generator.get_state(),
            "params": [
                {f.name: getattr(p, f.name) for f in fields(p)} for p in self.equation.param_list
            ],
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
