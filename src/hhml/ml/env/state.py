"""``EnvState``: every per-environment quantity of the batched Möbius env as tensors.

The state of ``B`` environments lives on the simulator's device with leading
dimension ``B`` (the field itself stays in the simulator). A step replaces the
tensors; a masked reset writes the reset values where a boolean mask ``[B]`` is
set (``torch.where``), so nothing is copied to the host.

The density targets of the episode are part of the state (``targets``, ``switches``):
a fixed target for the tasks with one goal, a sequence of set-points drawn per episode
for ``env.task = setpoint_density``; they are saved and restored with the rest.

Public names: ``EnvState``, ``TERMINATION_REASONS``, ``RUNNING``, ``COLLAPSED``,
``UNSTABLE``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import Tensor

from hhml.errors import CheckpointError, ConfigError
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
    targets : Tensor
        ``[B, K]`` float64: the density targets of the episode (vortices per
        plaquette), set-point ``k`` in force from env step ``switches[:, k]`` on.
    switches : Tensor
        ``[B, K]`` int64, non-decreasing along ``K``, ``switches[:, 0] = 0``: the env
        step (``elapsed``) at which each set-point takes over.
    """

    values: Tensor
    elapsed: Tensor
    time: Tensor
    last_time: Tensor
    tracks: VortexTracks
    vortices: VortexMeasurement | None
    measured: dict[str, Tensor]
    targets: Tensor
    switches: Tensor

    @classmethod
    def initial(
        cls,
        defaults: Tensor,
        strips: int,
        max_vortices: int,
        targets: Tensor | None = None,
        switches: Tensor | None = None,
    ) -> EnvState:
        """Fresh state: ``defaults [B, 23]`` control values, clocks at 0, no vortices.

        ``targets``/``switches`` ``[B, K]`` give the episode's set-points (default: one
        target 0 from step 0, for callers that do not use targets).

        Raises
        ------
        ConfigError
            ``targets`` and ``switches`` differ in shape or do not have ``B`` rows.
        """
        B, dev = defaults.shape[0], defaults.device
        zeros = torch.zeros(B, dtype=torch.float64, device=dev)
        if targets is None:
            targets = torch.zeros(B, 1, dtype=torch.float64, device=dev)
        if switches is None:
            switches = torch.zeros(targets.shape, dtype=torch.int64, device=dev)
        if targets.shape != switches.shape or targets.shape[0] != B:
            raise ConfigError(
                f"set-point targets {tuple(targets.shape)} and switches "
                f"{tuple(switches.shape)} must both be ({B}, K)"
            )
        return cls(
            values=defaults.clone(),
            elapsed=torch.zeros(B, dtype=torch.int64, device=dev),
            time=zeros.clone(),
            last_time=zeros.clone(),
            tracks=VortexTracks.empty(B, strips, max_vortices, dev),
            vortices=None,
            measured={},
            targets=targets.to(torch.float64),
            switches=switches.to(torch.int64),
        )

    def current_target(self) -> Tensor:
        """The set-point in force at step ``elapsed``, ``[B]`` float64 (no host sync)."""
        index = (self.switches <= self.elapsed[:, None]).sum(dim=1) - 1
        return self.targets.gather(1, index.clamp_min(0)[:, None])[:, 0]

    def steps_to_switch(self, horizon: int) -> Tensor:
        """Env steps until the next set-point takes over (to the end of the episode,
        ``horizon``, after the last one), ``[B]`` int64."""
        later = torch.where(
            self.switches > self.elapsed[:, None],
            self.switches,
            torch.full_like(self.switches, horizon),
        )
        return (later.min(dim=1).values - self.elapsed).clamp_min(0)

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
            "targets": self.targets.cpu().clone(),
            "switches": self.switches.cpu().clone(),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], like: EnvState) -> EnvState:
        """Restore :meth:`state_dict` onto ``like``'s device, checking shapes against it.

        A state without ``targets``/``switches`` (written before set-points existed)
        keeps ``like``'s, which is exact for the fixed-target tasks; the caller checks
        that the task allows it.
        """
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
        targets = state.get("targets", like.targets)
        switches = state.get("switches", like.switches)
        if tuple(targets.shape) != tuple(like.targets.shape) or tuple(switches.shape) != tuple(
            like.targets.shape
        ):
            raise CheckpointError(
                f"environment state has set-points {tuple(targets.shape)} / switches "
                f"{tuple(switches.shape)}; this environment has {tuple(like.targets.shape)} "
                "(env.setpoint_count or env.task differ)"
            )
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
            targets=targets.to(dev, torch.float64),
            switches=switches.to(dev, torch.int64),
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
            targets=pick(self.targets, other.targets),
            switches=pick(self.switches, other.switches),
        )


def _dataclass_tensors(obj: Any) -> dict[str, Tensor]:
    return {f.name: getattr(obj, f.name).detach().cpu().clone() for f in fields(obj)}
