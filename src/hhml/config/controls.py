"""The 23 control parameters (docs/parameters.md), once, and config section ``controls``.

:data:`CONTROLS` is the one definition of the controls: for each, in action order, its
name, the config field it drives (``lattice.*``, ``dynamics.*`` or ``env.*``, a field of
the same name), its category, what it acts on, whether it is rounded to an integer, its
meaning with units and its default action range. Everything else is derived from it:

- :class:`ControlsConfig`: the fields ``<name>_low`` / ``<name>_high`` of section
  ``controls`` (defaults and docs, hence loading, ``--help``, error messages and dumps);
- ``hhml.ml.env.CONTROLS`` / ``ControlMap`` (re-exported from here);
- the index of each control in an action or a ``values`` row (:data:`CONTROL_INDEX`),
  and the per-env lattice controls (:data:`LATTICE_CONTROLS`) used by analysis;
- the documentation table ``docs/parameters.md`` (``docs/gen_parameters.py``).

The RL action ``a ∈ [−1, 1]^23`` is mapped affinely to the ranges,
``x = low + (a + 1)/2 · (high − low)``. Each range must lie inside the valid range of the
parameter it drives (checked by :class:`hhml.ml.env.ControlMap` when an environment is
built) and have ``low < high``. Defaults are chosen so that the default time step is
stable over the whole box.

Public names: ``Control``, ``CONTROLS``, ``NUM_CONTROLS``, ``CONTROL_INDEX``,
``LATTICE_CONTROLS``, ``CONTROL_SECTIONS``, ``ControlsConfig``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from types import MappingProxyType
from typing import ClassVar, TypeVar

from hhml.config.specs import Section, spec
from hhml.errors import ConfigError

__all__ = [
    "CONTROLS",
    "CONTROL_INDEX",
    "CONTROL_SECTIONS",
    "LATTICE_CONTROLS",
    "NUM_CONTROLS",
    "Control",
    "ControlsConfig",
]

#: The config sections a control may drive.
CONTROL_SECTIONS = ("lattice", "dynamics", "env")


@dataclass(frozen=True)
class Control:
    """One control parameter.

    Attributes
    ----------
    name : str
        The control's name, which is also the name of the config field it drives.
    section : str
        The section of that field: ``"lattice"``, ``"dynamics"`` or ``"env"``.
    category : str
        Group in the documentation (geometry, physics, spectral, ...).
    acts_on : str
        Where the value enters the dynamics.
    description : str
        Meaning with units (e.g. ``"diffusion D (length²/time)"``).
    low, high : float
        Default action range (``controls.<name>_low`` / ``_high``), in the field's units.
    integer : bool
        The mapped value is rounded to the nearest integer.
    """

    name: str
    section: str
    category: str
    acts_on: str
    _: KW_ONLY
    description: str
    low: float
    high: float
    integer: bool = False

    @property
    def path(self) -> str:
        """The driven config key, ``"<section>.<name>"``."""
        return f"{self.section}.{self.name}"

    @property
    def low_key(self) -> str:
        """Field name of the range's low end in section ``controls``."""
        return f"{self.name}_low"

    @property
    def high_key(self) -> str:
        """Field name of the range's high end in section ``controls``."""
        return f"{self.name}_high"

    @property
    def meaning(self) -> str:
        """:attr:`description`, with the rounding stated for an integer control."""
        return self.description + (" (rounded to an integer)" if self.integer else "")


_GEOM = "Miller shaping → metric and inter-strip weights"
_SRC = "boundary sources"

#: The 23 controls in action order (docs/parameters.md).
CONTROLS: tuple[Control, ...] = (
    Control("aspect", "lattice", "geometry", "embedded metric",
            description="aspect ratio R/w of the embedding", low=6.0, high=16.0),
    Control("kappa", "lattice", "geometry", _GEOM,
            description="Miller elongation κ", low=0.8, high=2.0),
    Control("delta", "lattice", "geometry", _GEOM,
            description="Miller triangularity δ", low=-0.5, high=0.5),
    Control("coupling_range", "lattice", "geometry", "inter-strip weights exp(−d/ℓ)",
            description="inter-strip coupling range ℓ (length)", low=0.2, high=3.0),
    Control("damping", "dynamics", "physics", "linear term",
            description="damping γ", low=0.0, high=1.5),
    Control("nonlinearity", "dynamics", "physics", "cubic term",
            description="nonlinearity g", low=0.2, high=3.0),
    Control("diffusion", "dynamics", "physics", "Laplacian",
            description="diffusion D (length²/time)", low=0.002, high=0.05),
    Control("noise_temperature", "dynamics", "physics", "stochastic forcing",
            description="noise temperature T", low=0.0, high=0.02),
    Control("dispersion", "dynamics", "spectral", "Laplacian (imaginary part)",
            description="linear dispersion α (length²/time)", low=-0.05, high=0.05),
    Control("nonlinear_frequency", "dynamics", "spectral", "cubic term (imaginary part)",
            description="nonlinear frequency β", low=-1.0, high=1.0),
    Control("spectral_filter", "dynamics", "spectral", "biharmonic damping",
            description="spectral filter ν₄ (length⁴/time)", low=0.0, high=1e-05),
    Control("source_amplitude", "dynamics", "sources", _SRC,
            description="source amplitude A", low=0.0, high=2.0),
    Control("source_frequency", "dynamics", "sources", _SRC,
            description="source frequency ω (1/time)", low=-2.0, high=2.0),
    Control("source_spread", "dynamics", "sources", _SRC,
            description="amplitude spread σ_A", low=0.0, high=0.5),
    Control("boundary_winding", "dynamics", "sources", "boundary source phases",
            description="boundary winding m", low=-4.0, high=4.0, integer=True),
    Control("twist", "lattice", "topology", "seam identification",
            description="seam twist phase θ (radians)", low=-math.pi, high=math.pi),
    Control("coupling", "dynamics", "topology", "stack coupling",
            description="inter-strip coupling c (1/time)", low=0.0, high=1.0),
    Control("pinning", "dynamics", "topology", "pinning potential at seeded sites",
            description="pinning strength V₀ (1/time)", low=0.0, high=2.0),
    Control("pair_seeding", "dynamics", "seeding", "vortex–antivortex pair imprints",
            description="pair seeding rate (pairs per unit time)", low=0.0, high=2.0),
    Control("antivortex_strength", "env", "annihilation", "opposite-charge imprint",
            description="antivortex imprint strength s", low=0.0, high=1.0),
    Control("annihilation_radius", "env", "annihilation", "imprint envelope",
            description="annihilation envelope radius r (length)", low=0.05, high=0.5),
    Control("quality_threshold", "env", "annihilation", "which vortices are targeted",
            description="core depth a vortex needs to be targeted", low=0.0, high=1.0),
    Control("preserve_ratio", "env", "annihilation", "at most (1 − p) of vortices targeted",
            description="preserve ratio p: at most (1 − p) of vortices targeted",
            low=0.0, high=1.0),
)  # fmt: skip

#: ``23``, the dimension of an action.
NUM_CONTROLS = len(CONTROLS)

#: ``{name: index}``: the column of each control in an action or a ``values`` row.
CONTROL_INDEX: Mapping[str, int] = MappingProxyType({c.name: k for k, c in enumerate(CONTROLS)})

#: The controls that drive ``lattice.*`` (per-env geometry and seam twist), in action order.
LATTICE_CONTROLS: tuple[str, ...] = tuple(c.name for c in CONTROLS if c.section == "lattice")


def _check_table(controls: tuple[Control, ...]) -> None:
    """Reject a malformed table (duplicate name, unknown section, empty range) at import."""
    seen: set[str] = set()
    for c in controls:
        if c.name in seen:
            raise ConfigError(f"control {c.name!r} is defined twice in CONTROLS")
        seen.add(c.name)
        if c.section not in CONTROL_SECTIONS:
            raise ConfigError(
                f"control {c.name!r} drives section {c.section!r}; valid: {CONTROL_SECTIONS}"
            )
        if not c.low < c.high:
            raise ConfigError(
                f"control {c.name!r} has default range [{c.low:g}, {c.high:g}]; "
                "low must be smaller than high"
            )


_check_table(CONTROLS)

_S = TypeVar("_S", bound=Section)


def _with_range_fields(cls: type[_S]) -> type[_S]:
    """Give ``cls`` one float field ``<name>_low`` and ``<name>_high`` per control, in
    action order (defaults and docs from :data:`CONTROLS`), and make it a dataclass."""
    annotations = dict(inspect.get_annotations(cls))
    for c in CONTROLS:
        for end, default, key in (("low", c.low, c.low_key), ("high", c.high, c.high_key)):
            annotations[key] = "float"
            setattr(cls, key, spec(default, doc=f"{end} end: {c.meaning} → {c.path}"))
    cls.__annotations__ = annotations
    return dataclass(cls)


@_with_range_fields
class ControlsConfig(Section):
    """Ranges ``<name>_low``/``<name>_high`` of the 23 controls (section ``controls``).

    The fields are generated from :data:`CONTROLS` (one pair per control, in action
    order); read them with ``getattr(cfg.controls, control.low_key)``.
    """

    section_name: ClassVar[str] = "controls"
