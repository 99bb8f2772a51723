"""The 23 control parameters of DESIGN §5 and the affine action map.

Action ``a ∈ [−1, 1]^23`` → value ``x = low + (a + 1)/2 · (high − low)`` with
``(low, high)`` from the ``controls`` config section; ``boundary_winding`` is
then rounded to the nearest integer. Each control drives one config field
(``lattice.*``, ``dynamics.*`` or ``env.*``); the ranges are checked against that
field's valid range when the map is built.

Public names: ``Control``, ``CONTROLS``, ``ControlMap``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hhml.config.controls import ControlsConfig
from hhml.config.schema import HHmLConfig
from hhml.config.specs import field_specs
from hhml.errors import ConfigError

__all__ = ["CONTROLS", "Control", "ControlMap"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Control:
    """One control parameter: its name, the config field it drives and what it acts on."""

    name: str
    section: str
    category: str
    acts_on: str
    integer: bool = False


#: The 23 controls in action order (DESIGN §5).
CONTROLS: tuple[Control, ...] = (
    Control("aspect", "lattice", "geometry", "embedded metric"),
    Control("kappa", "lattice", "geometry", "Miller shaping → metric and inter-strip weights"),
    Control("delta", "lattice", "geometry", "Miller shaping → metric and inter-strip weights"),
    Control("coupling_range", "lattice", "geometry", "inter-strip weights exp(−d/ℓ)"),
    Control("damping", "dynamics", "physics", "linear term"),
    Control("nonlinearity", "dynamics", "physics", "cubic term"),
    Control("diffusion", "dynamics", "physics", "Laplacian"),
    Control("noise_temperature", "dynamics", "physics", "stochastic forcing"),
    Control("dispersion", "dynamics", "spectral", "Laplacian (imaginary part)"),
    Control("nonlinear_frequency", "dynamics", "spectral", "cubic term (imaginary part)"),
    Control("spectral_filter", "dynamics", "spectral", "biharmonic damping"),
    Control("source_amplitude", "dynamics", "sources", "boundary sources"),
    Control("source_frequency", "dynamics", "sources", "boundary sources"),
    Control("source_spread", "dynamics", "sources", "boundary sources"),
    Control("boundary_winding", "dynamics", "sources", "boundary source phases", integer=True),
    Control("twist", "lattice", "topology", "seam identification"),
    Control("coupling", "dynamics", "topology", "stack coupling"),
    Control("pinning", "dynamics", "topology", "pinning potential at seeded sites"),
    Control("pair_seeding", "dynamics", "seeding", "vortex–antivortex pair imprints"),
    Control("antivortex_strength", "env", "annihilation", "opposite-charge imprint"),
    Control("annihilation_radius", "env", "annihilation", "imprint envelope"),
    Control("quality_threshold", "env", "annihilation", "which vortices are targeted"),
    Control("preserve_ratio", "env", "annihilation", "at most (1 − p) of vortices targeted"),
)

NUM_CONTROLS = len(CONTROLS)


class ControlMap:
    """Affine map between actions in ``[−1, 1]^23`` and parameter values.

    Parameters
    ----------
    cfg
        The config: ``controls`` gives the ranges, the other sections the valid
        range of each driven field (a control range outside it is a
        :class:`ConfigError` naming both keys).
    """

    def __init__(self, cfg: HHmLConfig) -> None:
        ranges: ControlsConfig = cfg.controls
        sections = HHmLConfig.section_types()
        low, high = [], []
        for c in CONTROLS:
            lo = float(getattr(ranges, f"{c.name}_low"))
            hi = float(getattr(ranges, f"{c.name}_high"))
            if not lo < hi:
                raise ConfigError(
                    f"controls.{c.name}_low = {lo:g} must be smaller than "
                    f"controls.{c.name}_high = {hi:g}"
                )
            target = field_specs(sections[c.section])[c.name]
            for end, value in (("low", lo), ("high", hi)):
                if (target.low is not None and value < target.low) or (
                    target.high is not None and value > target.high
                ):
                    raise ConfigError(
                        f"controls.{c.name}_{end} = {value:g} is outside the valid range of "
                        f"{c.section}.{c.name}: {target.allowed()}"
                    )
            low.append(lo)
            high.append(hi)
        self.low: FloatArray = np.asarray(low)
        self.high: FloatArray = np.asarray(high)
        self.names: tuple[str, ...] = tuple(c.name for c in CONTROLS)
        self._integer = np.asarray([c.integer for c in CONTROLS])

    def to_values(self, action: npt.ArrayLike) -> FloatArray:
        """Parameter values ``[N, 23]`` for actions ``[N, 23]`` (clipped to [−1, 1])."""
        a = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        x = self.low + (a + 1.0) * 0.5 * (self.high - self.low)
        out: FloatArray = np.where(self._integer, np.round(x), x)
        return out

    def to_action(self, values: npt.ArrayLike) -> FloatArray:
        """Inverse map: normalised values ``[N, 23]`` in ``[−1, 1]`` (clipped)."""
        x = np.asarray(values, dtype=np.float64)
        out: FloatArray = np.clip(2.0 * (x - self.low) / (self.high - self.low) - 1.0, -1.0, 1.0)
        return out

    def defaults(self, cfg: HHmLConfig) -> FloatArray:
        """The config's own values of the 23 parameters, ``[23]``, clipped into the ranges."""
        x = np.asarray([float(getattr(getattr(cfg, c.section), c.name)) for c in CONTROLS])
        out: FloatArray = np.clip(x, self.low, self.high)
        return out
