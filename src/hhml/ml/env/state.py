"""``EnvState``: every per-environment quantity of the batched Möbius env as tensors.

The state of ``B`` environments lives on the simulator's device with leading
dimension ``B`` (the field itself stays in the simulator). A step replaces the
tensors; a masked reset writes the reset values where a boolean mask ``[B]`` is
set (``torch.where``), so nothing is copied to the host.

Public names: ``EnvState``, ``TERMINATION_REASONS``, ``RUNNING``, ``COLLAPSED``,
``UNSTABLE``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import Tensor

from hhml.errors import CheckpointError
from hhml.ml.env.measure import VortexMeasurement, VortexTracks

__all__ = ["COLLAPSED", "RUNNING", "TERMINATION_REASONS", "UNSTABLE", "EnvState"]

#: Termination codes (``info["termination"]``, int64 ``[B]``) and their names, the
#: only termination keys the trainer logs (``termination/<name>``).
RUNNING, COLLAPSED, UNSTABLE = 0, 1, 2
TERMINATION_REASONS: dict[int, str] = {
    RUNNING: "running",
    COLLAPSED: "collapsed",  # rms |ψ| < env.collapse_rms
    UNSTABLE: "unstable",  # the integration produced NaN/Inf
}


@dataclass
class EnvState:
    """Per-environment state of :class:`~hhml.ml.env.MobiusVortexCore`.

    Attributes
    ----------
    values : Tensor
        ``[B, 23]`` float64: the control values in force (physical units).
    elapsed : Tensor
        ``[B]`` int64: environment steps since the env's reset.
    time : Tensor
        ``[B]`` float64: simulated time since the env's reset.
    last_time : Tensor
        ``[B]`` float64: ``time`` at the previous measurement (ages advance by
        the difference).
    tracks : VortexTracks
        The vortex tracker (positions, charges, ages; padded ``[B, S, K]``).
    vortices : VortexMeasurement | None
        The last measurement (annihilation targets come from it); None before
        the first one.
    measured : dict[str, Tensor]
        Per-env features of the last measurement, float64 ``[B]`` each.
    """

    values: Tensor
    elapsed: Tensor
    time: Tensor
    last_time: Tensor
    tracks: VortexTracks
    vortices: VortexMeasurement | None
    measured: dict[str, Tensor]

    @classmethod
    def initial(cls, defaults: Tensor, strips: int, max_vortices: int) -> EnvState:
        """Fresh state: ``defaults [B, 23]`` control values, clocks at 0, no vortices."""
        B, dev = defaults.shape[0], defaults.device
        zeros = torch.zeros(B, dtype=torch.float64, device=dev)
        return cls(
            values=defaults.clone(),
            elapsed=torch.zeros(B, dtype=torch.int64, device=dev),
            time=zeros.clone(),
            last_time=zeros.clone(),
            tracks=VortexTracks.empty(B, strips, max_vortices, dev),
            vortices=None,
            measured={},
        )

    def state_dict(self) -> dict[str, Any]:
        """Plain tensors and dicts of tensors (loads with ``weights_only=True``)."""
        vort = None if self.vortices is None else _dataclass_tensors(self.vortices)
        return {
            "values": self.values.detach().cpu().clone(),
            "elapsed": self.elapsed.cpu().clone(),
            "time": self.time.cpu().clone(),
            "last_time": self.last_time.cpu().clone(),
            "tracks": {k: v.cpu().clone() for k, v in self.tracks.state_dict().items()},
            "vortices": vort,
            "measured": {k: v.cpu().clone() for k, v in self.measured.items()},
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], like: EnvState) -> EnvState:
        """Restore :meth:`state_dict` onto ``like``'s device, checking shapes against it."""
        missing = {"values", "elapsed", "time", "last_time", "tracks", "measured"} - set(state)
        if missing:
            raise CheckpointError(f"environment state is missing {sorted(missing)}")
        values = state["values"]
        if tuple(values.shape) != tuple(like.values.shape):
            raise CheckpointError(
                f"environment state has {values.shape[0]} envs × {values.shape[1]} controls; "
                f"this environment has {tuple(like.values.shape)}"
            )
        dev = like.values.device
        vort = state.get("vortices")
        return cls(
            values=values.to(dev, torch.float64),
            elapsed=state["elapsed"].to(dev, torch.int64),
            time=state["time"].to(dev, torch.float64),
            last_time=state["last_time"].to(dev, torch.float64),
            tracks=VortexTracks.from_state_dict({k: v.to(dev) for k, v in state["tracks"].items()}),
            vortices=(
                None
                if vort is None
                else VortexMeasurement(**{k: v.to(dev) for k, v in vort.items()})
            ),
            measured={k: v.to(dev, torch.float64) for k, v in state["measured"].items()},
        )

    def where(self, mask: Tensor, other: EnvState) -> EnvState:
        """Per env: ``other``'s values where ``mask [B]`` is set, this state's elsewhere."""

        def pick(a: Tensor, b: Tensor) -> Tensor:
            m = mask.reshape(-1, *([1] * (a.dim() - 1)))
            return torch.where(m, b, a)

        vort = self.vortices
        if vort is not None and other.vortices is not None:
            vort = VortexMeasurement(
                **{
                    f.name: pick(getattr(vort, f.name), getattr(other.vortices, f.name))
                    for f in fields(vort)
                }
            )
        elif other.vortices is not None:
            vort = other.vortices
        tracks = VortexTracks(
            **{
                f.name: pick(getattr(self.tracks, f.name), getattr(other.tracks, f.name))
                for f in fields(self.tracks)
            }
        )
        measured = {
            k: pick(self.measured[k], v) if k in self.measured else v
            for k, v in other.measured.items()
        }
        return replace(
            self,
            values=pick(self.values, other.values),
            elapsed=pick(self.elapsed, other.elapsed),
            time=pick(self.time, other.time),
            last_time=pick(self.last_time, other.last_time),
            tracks=tracks,
            vortices=vort,
            measured=measured,
        )


def _dataclass_tensors(obj: Any) -> dict[str, Tensor]:
    return {f.name: getattr(obj, f.name).detach().cpu().clone() for f in fields(obj)}
