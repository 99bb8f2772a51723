"""The affine action map of the 23 control parameters (docs/parameters.md).

Action ``a ∈ [−1, 1]^23`` → value ``x = low + (a + 1)/2 · (high − low)`` with
``(low, high)`` from the ``controls`` config section; ``boundary_winding`` is
then rounded to the nearest integer. Each control drives one config field
(``lattice.*``, ``dynamics.*`` or ``env.*``); the ranges are checked against that
field's valid range when the map is built.

The table of controls is defined once, in :mod:`hhml.config.controls`; ``Control``,
``CONTROLS`` and ``NUM_CONTROLS`` are re-exported here.

Public names: ``Control``, ``CONTROLS``, ``NUM_CONTROLS``, ``ControlMap``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from hhml.config.controls import CONTROLS, NUM_CONTROLS, Control, ControlsConfig
from hhml.config.schema import HHmLConfig
from hhml.config.specs import field_specs
from hhml.errors import ConfigError

__all__ = ["CONTROLS", "NUM_CONTROLS", "Control", "ControlMap"]

FloatArray = npt.NDArray[np.float64]


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

    def to_values_tensor(self, action: Tensor) -> Tensor:
        """:meth:`to_values` on a float64 tensor ``[N, 23]``, on its device (no host copy)."""
        low, high, integer = self._tensors(action.device)
        x = low + (action.clamp(-1.0, 1.0) + 1.0) * 0.5 * (high - low)
        return torch.where(integer, torch.round(x), x)

    def to_action_tensor(self, values: Tensor) -> Tensor:
        """:meth:`to_action` on a float64 tensor ``[N, 23]``, on its device."""
        low, high, _ = self._tensors(values.device)
        return (2.0 * (values - low) / (high - low) - 1.0).clamp(-1.0, 1.0)

    def _tensors(self, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        cache: dict[torch.device, tuple[Tensor, Tensor, Tensor]] = self.__dict__.setdefault(
            "_cache", {}
        )
        if device not in cache:
            f64 = torch.float64
            cache[device] = (
                torch.as_tensor(self.low, dtype=f64, device=device),
                torch.as_tensor(self.high, dtype=f64, device=device),
                torch.as_tensor(self._integer, device=device),
            )
        return cache[device]

    def defaults(self, cfg: HHmLConfig) -> FloatArray:
        """The config's own values of the 23 parameters, ``[23]``, clipped into the ranges."""
        x = np.asarray([float(getattr(getattr(cfg, c.section), c.name)) for c in CONTROLS])
        out: FloatArray = np.clip(x, self.low, self.high)
        return out
