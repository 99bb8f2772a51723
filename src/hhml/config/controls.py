"""Config section ``controls``: the range of each of the 23 control parameters.

The RL action ``a ∈ [−1, 1]^23`` is mapped affinely to these ranges,
``x = low + (a + 1)/2 · (high − low)`` (DESIGN §5). Each range must lie inside
the valid range of the parameter it drives (checked by :mod:`hhml.ml.env.controls`
when an environment is built) and have ``low < high``. Defaults are chosen so
that the default time step is stable over the whole box.

Generated table; the order is the action order of DESIGN §5.

Public names: ``ControlsConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hhml.config.specs import Section, spec

__all__ = ["ControlsConfig"]


@dataclass
class ControlsConfig(Section):
    """Ranges ``<name>_low``/``<name>_high`` of the 23 controls (section ``controls``)."""

    section_name: ClassVar[str] = "controls"

    aspect_low: float = spec(
        6.0,
        doc="low end: aspect ratio R/w of the embedding → lattice.aspect",
    )
    aspect_high: float = spec(
        16.0,
        doc="high end: aspect ratio R/w of the embedding → lattice.aspect",
    )
    kappa_low: float = spec(
        0.8,
        doc="low end: Miller elongation κ → lattice.kappa",
    )
    kappa_high: float = spec(
        2.0,
        doc="high end: Miller elongation κ → lattice.kappa",
    )
    delta_low: float = spec(
        -0.5,
        doc="low end: Miller triangularity δ → lattice.delta",
    )
    delta_high: float = spec(
        0.5,
        doc="high end: Miller triangularity δ → lattice.delta",
    )
    coupling_range_low: float = spec(
        0.2,
        doc="low end: inter-strip coupling range ℓ (length) → lattice.coupling_range",
    )
    coupling_range_high: float = spec(
        3.0,
        doc="high end: inter-strip coupling range ℓ (length) → lattice.coupling_range",
    )
    damping_low: float = spec(
        0.0,
        doc="low end: damping γ → dynamics.damping",
    )
    damping_high: float = spec(
        1.5,
        doc="high end: damping γ → dynamics.damping",
    )
    nonlinearity_low: float = spec(
        0.2,
        doc="low end: nonlinearity g → dynamics.nonlinearity",
    )
    nonlinearity_high: float = spec(
        3.0,
        doc="high end: nonlinearity g → dynamics.nonlinearity",
    )
    diffusion_low: float = spec(
        0.002,
        doc="low end: diffusion D (length²/time) → dynamics.diffusion",
    )
    diffusion_high: float = spec(
        0.05,
        doc="high end: diffusion D (length²/time) → dynamics.diffusion",
    )
    noise_temperature_low: float = spec(
        0.0,
        doc="low end: noise temperature T → dynamics.noise_temperature",
    )
    noise_temperature_high: float = spec(
        0.02,
        doc="high end: noise temperature T → dynamics.noise_temperature",
    )
    dispersion_low: float = spec(
        -0.05,
        doc="low end: linear dispersion α (length²/time) → dynamics.dispersion",
    )
    dispersion_high: float = spec(
        0.05,
        doc="high end: linear dispersion α (length²/time) → dynamics.dispersion",
    )
    nonlinear_frequency_low: float = spec(
        -1.0,
        doc="low end: nonlinear frequency β → dynamics.nonlinear_frequency",
    )
    nonlinear_frequency_high: float = spec(
        1.0,
        doc="high end: nonlinear frequency β → dynamics.nonlinear_frequency",
    )
    spectral_filter_low: float = spec(
        0.0,
        doc="low end: spectral filter ν₄ (length⁴/time) → dynamics.spectral_filter",
    )
    spectral_filter_high: float = spec(
        1e-05,
        doc="high end: spectral filter ν₄ (length⁴/time) → dynamics.spectral_filter",
    )
    source_amplitude_low: float = spec(
        0.0,
        doc="low end: source amplitude A → dynamics.source_amplitude",
    )
    source_amplitude_high: float = spec(
        2.0,
        doc="high end: source amplitude A → dynamics.source_amplitude",
    )
    source_frequency_low: float = spec(
        -2.0,
        doc="low end: source frequency ω (1/time) → dynamics.source_frequency",
    )
    source_frequency_high: float = spec(
        2.0,
        doc="high end: source frequency ω (1/time) → dynamics.source_frequency",
    )
    source_spread_low: float = spec(
        0.0,
        doc="low end: amplitude spread σ_A → dynamics.source_spread",
    )
    source_spread_high: float = spec(
        0.5,
        doc="high end: amplitude spread σ_A → dynamics.source_spread",
    )
    boundary_winding_low: float = spec(
        -4.0,
        doc="low end: boundary winding m (rounded to an integer) → dynamics.boundary_winding",
    )
    boundary_winding_high: float = spec(
        4.0,
        doc="high end: boundary winding m (rounded to an integer) → dynamics.boundary_winding",
    )
    twist_low: float = spec(
        -3.141592653589793,
        doc="low end: seam twist phase θ (radians) → lattice.twist",
    )
    twist_high: float = spec(
        3.141592653589793,
        doc="high end: seam twist phase θ (radians) → lattice.twist",
    )
    coupling_low: float = spec(
        0.0,
        doc="low end: inter-strip coupling c (1/time) → dynamics.coupling",
    )
    coupling_high: float = spec(
        1.0,
        doc="high end: inter-strip coupling c (1/time) → dynamics.coupling",
    )
    pinning_low: float = spec(
        0.0,
        doc="low end: pinning strength V₀ (1/time) → dynamics.pinning",
    )
    pinning_high: float = spec(
        2.0,
        doc="high end: pinning strength V₀ (1/time) → dynamics.pinning",
    )
    pair_seeding_low: float = spec(
        0.0,
        doc="low end: pair seeding rate (pairs per unit time) → dynamics.pair_seeding",
    )
    pair_seeding_high: float = spec(
        2.0,
        doc="high end: pair seeding rate (pairs per unit time) → dynamics.pair_seeding",
    )
    antivortex_strength_low: float = spec(
        0.0,
        doc="low end: antivortex imprint strength s → env.antivortex_strength",
    )
    antivortex_strength_high: float = spec(
        1.0,
        doc="high end: antivortex imprint strength s → env.antivortex_strength",
    )
    annihilation_radius_low: float = spec(
        0.05,
        doc="low end: annihilation envelope radius r (length) → env.annihilation_radius",
    )
    annihilation_radius_high: float = spec(
        0.5,
        doc="high end: annihilation envelope radius r (length) → env.annihilation_radius",
    )
    quality_threshold_low: float = spec(
        0.0,
        doc="low end: core depth a vortex needs to be targeted → env.quality_threshold",
    )
    quality_threshold_high: float = spec(
        1.0,
        doc="high end: core depth a vortex needs to be targeted → env.quality_threshold",
    )
    preserve_ratio_low: float = spec(
        0.0,
        doc="low end: preserve ratio p: at most (1 − p) of vortices targeted → env.preserve_ratio",
    )
    preserve_ratio_high: float = spec(
        1.0,
        doc="high end: preserve ratio p: at most (1 − p) of vortices targeted → env.preserve_ratio",
    )
