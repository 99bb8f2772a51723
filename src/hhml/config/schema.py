"""The typed configuration schema: sections, defaults, ranges and meanings.

Every default a user might want to change lives here, once. A YAML file, a
``section.key=value`` override and Python code all end up in these dataclasses and
are validated by the same field specs (:mod:`hhml.config.specs`).

Units: lengths are in lattice length units (the strip's half-width ``w`` and
length ``L`` are given in the same unit), times in lattice time units (the unit in
which the linear growth rate ``1 − γ`` is measured).

Public names: ``FieldParams``, ``LatticeConfig``, ``SimulationConfig``,
``HHmLConfig``, ``Topology``, ``EdgeCondition``, ``Metric``, ``Integrator``,
``ComplexDType``, ``DEVICE_PATTERN``.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from hhml.config.agent import AgentConfig
from hhml.config.controls import ControlsConfig
from hhml.config.env import EnvConfig
from hhml.config.specs import Section, spec, validate_section
from hhml.config.training import TrainingConfig
from hhml.errors import ConfigError

__all__ = [
    "DEVICE_PATTERN",
    "ComplexDType",
    "EdgeCondition",
    "FieldParams",
    "HHmLConfig",
    "Integrator",
    "LatticeConfig",
    "Metric",
    "SimulationConfig",
    "Topology",
]

Topology = Literal["mobius", "cylinder", "torus"]
EdgeCondition = Literal["dirichlet", "neumann"]
Metric = Literal["flat", "embedded"]
Integrator = Literal["rk4", "etd", "euler"]
ComplexDType = Literal["complex64", "complex128"]

#: Valid device strings (the same rule as :func:`hhml.utils.device.resolve_device`).
DEVICE_PATTERN = r"auto|cpu|cuda(?::[0-9]+)?"

_TWO_PI = 2.0 * math.pi


def _choices(literal: Any) -> tuple[str, ...]:
    return tuple(str(arg) for arg in typing.get_args(literal))


@dataclass
class FieldParams(Section):
    r"""Physical parameters of the field equation (config section ``dynamics``).

    The complex field ψ(u, v, t) on the lattice obeys

    .. math::

        ∂ψ/∂t = (1 − γ)ψ + (D + iα) Δψ − ν₄ Δ²ψ − (g + iβ)|ψ|²ψ − V(x)ψ
                + S(x, t) + c·(coupling to neighbouring strips) + √(2T) η(x, t)

    where Δ is the seam-aware lattice Laplacian, V the pinning potential (depth V₀
    at ``pinning_sites`` random sites of radius ``pinning_radius``), S the boundary
    sources (amplitude A, frequency ω, per-source amplitude spread σ_A, boundary
    phase winding m) and η complex lattice white noise,
    ⟨η_i(t) η_j*(t′)⟩ = δ_ij δ(t − t′) per node (each step adds √(2T·dt)·ξ, ⟨|ξ|²⟩ = 1).

    Units: time in lattice time units, length in lattice length units; rates are
    per unit time, D, α in length²/time, ν₄ in length⁴/time.

    Special cases: real Ginzburg–Landau (α = β = 0); the conservative defocusing
    NLS / Gross–Pitaevskii equation iψ_t = −αΔψ + β|ψ|²ψ (γ = 1, D = g = 0);
    linear diffusion (γ = 1, g = 0); the canonical complex Ginzburg–Landau
    equation ∂ψ/∂t = ψ + (1 + ib)∇²ψ − (1 + ic)|ψ|²ψ (γ = 0, D = 1, α = b, g = 1,
    β = c; preset ``dynamics=cgl_canonical``, docs/physics.md).

    Ranges are physical validity only: a quantity whose sign is fixed by its
    meaning (a damping, diffusion, filter, temperature, amplitude or rate) has
    ``low = 0`` (D < 0 or ν₄ < 0 is anti-diffusion, ill-posed at short
    wavelengths; T < 0 has no meaning), a signed one (α, β, ω, and the integer m)
    is any finite value; NaN and ±inf are always refused.
    Whether a time step resolves the resulting dynamics is checked by the
    simulator (:meth:`~hhml.core.resonance.Simulator.check_time_step`), and the
    range an RL agent may explore is the controls table
    (:mod:`hhml.config.controls`), not this schema.

    Attributes
    ----------
    damping : float
        γ, linear damping; the linear growth rate is 1 − γ. Range γ ≥ 0.
    nonlinearity : float
        g, real (saturating) cubic coefficient. Range g ≥ 0 (g < 0 without a
        higher-order saturation blows up).
    diffusion : float
        D, real diffusion coefficient. Range D ≥ 0.
    noise_temperature : float
        T, strength of the additive complex white noise. Range T ≥ 0.
    dispersion : float
        α, linear dispersion (imaginary part of the Laplacian coefficient). Any real.
    nonlinear_frequency : float
        β, nonlinear frequency shift (imaginary cubic coefficient). Any real.
    spectral_filter : float
        ν₄, biharmonic (hyperviscous) damping. Range ν₄ ≥ 0.
    source_amplitude : float
        A, amplitude of the boundary sources. Range A ≥ 0.
    source_frequency : float
        ω, angular frequency of the boundary sources. Any real.
    source_spread : float
        σ_A, relative spread of the per-source amplitudes. Range σ_A ≥ 0.
    boundary_winding : int
        m, phase winding of the sources around the boundary circle. Any integer.
    coupling : float
        c, coupling strength between neighbouring strips of a stack. Range c ≥ 0.
    pinning : float
        V₀, depth of the pinning potential. Range V₀ ≥ 0.
    pair_seeding : float
        Rate of vortex–antivortex pair imprints (pairs per unit time). Range ≥ 0;
        the simulator also needs rate × dt ≤ 1.
    pinning_sites : int
        Number of pinning sites. Range [0, 256].
    pinning_radius : float
        Radius of one pinning site (length). Range [1e−3, 10].
    pair_separation : float
        Distance between the two vortices of a seeded pair (length). Range [1e−3, 10].
    core_radius : float
        Core radius of imprinted vortices (length). Range [1e−3, 10].
    """

    section_name: ClassVar[str] = "dynamics"

    damping: float = spec(
        0.0, low=0.0, symbol="γ", doc="linear damping; growth rate is 1 − γ (1/time)"
    )
    nonlinearity: float = spec(
        1.0, low=0.0, symbol="g", doc="real cubic (saturating) coefficient (1/time)"
    )
    diffusion: float = spec(0.01, low=0.0, symbol="D", doc="diffusion coefficient (length²/time)")
    noise_temperature: float = spec(
        0.0, low=0.0, symbol="T", doc="additive complex white-noise temperature"
    )
    dispersion: float = spec(0.0, symbol="α", doc="linear dispersion, i·α·Δψ (length²/time)")
    nonlinear_frequency: float = spec(
        0.0, symbol="β", doc="nonlinear frequency shift, i·β·|ψ|²ψ (1/time)"
    )
    spectral_filter: float = spec(
        0.0, low=0.0, symbol="ν₄", doc="biharmonic damping −ν₄Δ²ψ (length⁴/time)"
    )
    source_amplitude: float = spec(0.0, low=0.0, symbol="A", doc="boundary source amplitude")
    source_frequency: float = spec(
        0.0, symbol="ω", doc="boundary source angular frequency (1/time)"
    )
    source_spread: float = spec(
        0.0, low=0.0, symbol="σ_A", doc="relative spread of per-source amplitudes"
    )
    boundary_winding: int = spec(
        0, integer=True, symbol="m", doc="source phase winding on the boundary"
    )
    coupling: float = spec(0.0, low=0.0, symbol="c", doc="inter-strip coupling strength (1/time)")
    pinning: float = spec(0.0, low=0.0, symbol="V₀", doc="pinning potential depth (1/time)")
    pair_seeding: float = spec(
        0.0, low=0.0, doc="vortex–antivortex pair imprints per unit time (≤ 1/dt)"
    )
    pinning_sites: int = spec(8, low=0, high=256, integer=True, doc="number of pinning sites")
    pinning_radius: float = spec(0.15, low=1e-3, high=10.0, doc="radius of a pinning site (length)")
    pair_separation: float = spec(
        0.3, low=1e-3, high=10.0, doc="separation of a seeded vortex pair (length)"
    )
    core_radius: float = spec(
        0.1, low=1e-3, high=10.0, doc="core radius of imprinted vortices (length)"
    )


@dataclass
class LatticeConfig(Section):
    """Geometry and discretisation of the strip(s) (config section ``lattice``).

    Coordinates u ∈ [0, L) along the strip and v ∈ (−w, w) across it, on a
    cell-centred ``nu × nv`` grid. The seam identification is
    ψ(u + L, v) = e^{iθ} ψ(u, −v) for ``mobius``; ``cylinder`` has no flip and
    ``torus`` is periodic in v as well.

    Attributes
    ----------
    nu, nv : int
        Grid points along (u) and across (v) the strip.
    length : float
        L, length of the strip along u (length units).
    half_width : float
        w, half-width of the strip (length units).
    topology : {"mobius", "cylinder", "torus"}
        Identification at the seam.
    edge : {"dirichlet", "neumann"}
        Boundary condition at v = ±w (ignored for ``torus``).
    twist : float
        θ, extra seam phase (radians), in [−2π, 2π].
    metric : {"flat", "embedded"}
        Flat metric (validation) or the band's induced metric in R³.
    aspect : float
        R/w, major radius of the embedding over the half-width.
    strips : int
        Number of nested strips; more than 1 builds a tokamak-like stack.
    kappa : float
        κ, Miller elongation of the stack's flux surfaces.
    delta : float
        δ, Miller triangularity.
    strip_spacing : float
        Radial distance between neighbouring strips, in units of ``half_width``.
    coupling_range : float
        ℓ, decay length of the inter-strip weights exp(−d/ℓ) (length units).
    """

    section_name: ClassVar[str] = "lattice"

    nu: int = spec(128, low=4, high=16384, integer=True, doc="grid points along the strip (u)")
    nv: int = spec(32, low=2, high=16384, integer=True, doc="grid points across the strip (v)")
    length: float = spec(_TWO_PI, low=1e-9, symbol="L", doc="strip length along u (length)")
    half_width: float = spec(1.0, low=1e-9, symbol="w", doc="strip half-width (length)")
    topology: Topology = spec(  # noqa: RUF009 (a dataclass field, not a shared default)
        "mobius", choices=_choices(Topology), doc="seam identification of the strip"
    )
    edge: EdgeCondition = spec(  # noqa: RUF009 (a dataclass field, not a shared default)
        "neumann", choices=_choices(EdgeCondition), doc="boundary condition at v = ±w"
    )
    twist: float = spec(
        0.0, low=-_TWO_PI, high=_TWO_PI, symbol="θ", doc="seam twist phase (radians)"
    )
    metric: Metric = spec(  # noqa: RUF009 (a dataclass field, not a shared default)
        "embedded", choices=_choices(Metric), doc="flat metric or the induced metric in R³"
    )
    aspect: float = spec(
        3.0, low=1.2, high=50.0, symbol="R/w", doc="embedding major radius over half-width"
    )
    strips: int = spec(
        1, low=1, high=64, integer=True, doc="number of nested strips (>1: tokamak stack)"
    )
    kappa: float = spec(1.0, low=0.5, high=3.0, symbol="κ", doc="Miller elongation")
    delta: float = spec(0.0, low=-0.9, high=0.9, symbol="δ", doc="Miller triangularity")
    strip_spacing: float = spec(
        3.0, low=0.5, high=50.0, doc="radial distance between strips (units of half_width)"
    )
    coupling_range: float = spec(
        1.0, low=1e-3, high=100.0, symbol="ℓ", doc="decay length of exp(−d/ℓ) weights (length)"
    )


@dataclass
class SimulationConfig(Section):
    """Numerical settings of a simulation run (config section ``simulation``).

    Attributes
    ----------
    dt : float
        Time step (time units); checked against the integrator's stability bound.
    integrator : {"rk4", "etd", "euler"}
        Time-stepping scheme.
    steps : int
        Number of time steps.
    seed : int
        Seed of every random number generator (initial field, noise, sites).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    dtype : {"complex64", "complex128"}
        Complex dtype of the field.
    snapshot_every : int
        Steps between field snapshots; 0 disables snapshots.
    check_every : int
        Steps between finiteness/stability checks of the state.
    initial : {"noise", "uniform", "zero"}
        Initial field (a zero field with no sources never moves: use it deliberately).
    initial_amplitude : float
        RMS amplitude of the initial noise, or the value of a uniform start.
    output_dir : str
        Directory where :func:`hhml.core.simulate.simulate` writes ``fields.h5`` (the
        field every ``snapshot_every`` steps) and ``config.yaml``.
    """

    section_name: ClassVar[str] = "simulation"

    dt: float = spec(0.05, low=1e-7, high=10.0, doc="time step (time)")
    integrator: Integrator = spec(  # noqa: RUF009 (a dataclass field, not a shared default)
        "rk4", choices=_choices(Integrator), doc="time-stepping scheme"
    )
    steps: int = spec(400, low=0, high=10**9, integer=True, doc="number of time steps")
    seed: int = spec(0, low=0, high=2**63 - 1, integer=True, doc="seed of all random generators")
    device: str = spec(
        "auto",
        pattern=DEVICE_PATTERN,
        pattern_help="'auto', 'cpu', 'cuda' or 'cuda:N'",
        doc="compute device",
    )
    dtype: ComplexDType = spec(  # noqa: RUF009 (a dataclass field, not a shared default)
        "complex64", choices=_choices(ComplexDType), doc="complex dtype of the field"
    )
    snapshot_every: int = spec(
        50, low=0, integer=True, doc="steps between field snapshots (0: none)"
    )
    check_every: int = spec(
        20, low=1, integer=True, doc="steps between stability checks of the state"
    )
    initial: str = spec(
        "noise",
        choices=("noise", "uniform", "zero"),
        doc="initial field: seeded complex noise, a uniform value, or zero",
    )
    initial_amplitude: float = spec(
        0.1, low=0.0, high=100.0, doc="rms of the initial noise / value of a uniform start"
    )
    output_dir: str = spec(
        "results/simulations",
        pattern=r"(?s).*\S.*",
        pattern_help="a non-empty directory path",
        doc="directory for simulation outputs",
    )


@dataclass
class HHmLConfig:
    """The whole configuration: one attribute per section.

    Each field is a :class:`~hhml.config.specs.Section` subclass; the field name is
    the section's key in YAML and in overrides. Adding a section (``env``,
    ``agent``, ``training``) is adding one field here::

        env: EnvConfig = dataclasses.field(default_factory=EnvConfig)
    controls: ControlsConfig = dataclasses.field(default_factory=ControlsConfig)

    The loader, ``config_to_dict``/``dump_config`` and validation discover sections
    from these fields; a config group directory ``configs/env/`` then works too.

    Attributes
    ----------
    lattice : LatticeConfig
        Geometry and discretisation.
    dynamics : FieldParams
        Physical parameters of the field equation.
    simulation : SimulationConfig
        Numerical settings of a run.
    env : EnvConfig
        The RL environment (:mod:`hhml.ml.env`).
    controls : ControlsConfig
        Ranges of the 23 control parameters the agent's actions map to.
    agent : AgentConfig
        The RL algorithm and its hyperparameters (:mod:`hhml.ml.rl`).
    training : TrainingConfig
        The training loop (:mod:`hhml.ml.training`).
    """

    lattice: LatticeConfig = dataclasses.field(default_factory=LatticeConfig)
    dynamics: FieldParams = dataclasses.field(default_factory=FieldParams)
    simulation: SimulationConfig = dataclasses.field(default_factory=SimulationConfig)
    env: EnvConfig = dataclasses.field(default_factory=EnvConfig)
    controls: ControlsConfig = dataclasses.field(default_factory=ControlsConfig)
    agent: AgentConfig = dataclasses.field(default_factory=AgentConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def section_types(cls) -> dict[str, type[Section]]:
        """Return ``{section name: section class}`` in declaration order."""
        return dict(_section_types(cls))

    def validate(self) -> None:
        """Validate every section (types, ranges, choices).

        Raises
        ------
        ConfigError
            A section of the wrong type or an invalid field, named by dotted path.
        """
        for name, section_type in self.section_types().items():
            section = getattr(self, name)
            if not isinstance(section, section_type):
                raise ConfigError(
                    f"config section {name!r} must be a {section_type.__name__}, "
                    f"got {type(section).__name__}"
                )
            validate_section(section, name)


_SECTION_TYPES: dict[type, dict[str, type[Section]]] = {}


def _section_types(cls: type[HHmLConfig]) -> dict[str, type[Section]]:
    # Resolved once per class: the annotations are strings (postponed evaluation).
    if cls in _SECTION_TYPES:
        return _SECTION_TYPES[cls]
    hints = typing.get_type_hints(cls)
    result: dict[str, type[Section]] = {}
    for f in dataclasses.fields(cls):
        section_type = hints[f.name]
        if not (isinstance(section_type, type) and issubclass(section_type, Section)):
            raise TypeError(f"{cls.__name__}.{f.name} must be a Section subclass")
        result[f.name] = section_type
    _SECTION_TYPES[cls] = result
    return result
