"""Batched vortex measurement of the Möbius vortex environments, without host synchronisation.

:func:`measure_vortices` takes the field ``psi [B, S, nu, nv]`` of ``B`` environments
(stacks of ``S`` strips) and returns, as tensors on ``psi``'s device, the vortices of
every strip (padded to ``K = max_vortices``), the per-environment observation
features and the updated age tracker. Nothing on the path reads a tensor back to the
host (no ``.item()``, ``.cpu()``, ``nonzero``, data-dependent shapes or Python
branches on tensor values), so on a GPU it runs asynchronously.

Vortices
    Exactly :func:`~hhml.core.resonance.vortices.detect_vortices`: plaquette winding
    numbers, the sub-cell position (zero of the bilinear interpolant, 8 Newton steps),
    the seam mapping (a core refined past ``u = L`` moves to ``(u − L, −v)`` and, on the
    Möbius band, its chart charge changes sign) and the core depth
    ``clamp(1 − mean corner |ψ| / rms|ψ|_strip, 0, 1)``. Each strip keeps its first
    ``K`` vortices in plaquette order (``i``-major, then ``j``: the order of
    ``torch.nonzero``); ``overflow`` marks strips that have more.

Per-environment features (float64 ``[B]``)
    ``count``, ``vortex_density`` (count / (S · plaquettes per strip)),
    ``mean_abs_charge``, ``multi_charge_fraction`` (|q| ≥ 2), ``net_charge_density``
    (Σq of the chart charges / plaquettes) and ``core_depth`` (mean depth) use *all*
    vortices of the environment's strips (dense reductions, not capped at ``K``); they
    are 0 for an environment without vortices. ``hexatic_order`` is the mean over
    strips of :func:`~hhml.ml.env.observables.hexatic_order` of the strip's (first
    ``K``) vortices; ``mean_age`` the mean age of those vortices (0 if none).

Hexatic order, neighbour ties
    As :func:`~hhml.ml.env.observables.hexatic_order` (shortest chart displacement
    through the identification, the 6 nearest neighbours, mean ``|ψ₆|``, 0 below
    ``max(min_points, neighbours + 1)`` points), except that a tie in distance at the
    boundary of the neighbour set is broken towards the lower vortex index (NumPy's
    unstable ``argsort`` leaves it unspecified; generic positions have no ties).

Ages: batched matching rule (replaces the minimum-cost (Hungarian) assignment that
the env used before 0.2)
    A link from a previous vortex ``o`` to a new vortex ``n`` of the same strip is
    *allowed* if their shortest band distance (the even/odd-image rule of
    :func:`~hhml.core.resonance.tracking.band_displacement`) is at most
    ``track_distance`` and the transported charge — the old chart charge, negated when
    the shortest path crosses the Möbius seam — equals the new charge. Then, for
    :data:`MATCH_ROUNDS` rounds, every still unlinked pair that are each other's nearest
    allowed unlinked partner is linked (ties towards the lower index). A linked vortex
    is ``dt`` older than its predecessor; any other has age 0.

    Where every vortex has at most one allowed partner this is the Hungarian rule
    (each allowed pair is mutual at once). They differ when allowed links compete:
    the Hungarian rule first maximises the number of links and then minimises their
    total length, the mutual-nearest rule is greedy. Old vortices at ``u = 0`` and
    ``0.5`` and new ones at ``0.3`` and ``0.75`` with ``track_distance = 0.35``:
    the Hungarian rule links 0→0.3 and 0.5→0.75 (two links), mutual nearest links
    only the closest pair 0.5→0.3 and the vortex at 0.75 starts at age 0. Distances
    are ``sqrt(du² + dv²)`` (NumPy's ``hypot`` may differ by one ulp, which only
    matters for a distance exactly at ``track_distance``).

Backends
    ``backend="auto"`` runs the C++/OpenMP kernel
    (:mod:`hhml.ml.env.measure_kernel`) for CPU tensors whose complex dtype equals the
    lattice's, and the padded torch code otherwise (always on CUDA). The kernel does
    the per-strip sparse work, with cost ∝ Σ n_s² or less (n_s the vortices of strip
    ``s``), instead of the dense ``[B·S, K, K]`` tensors, and gives the same numbers:
    identical integers, positions, charges and ages; depths within one ulp (it sums the
    strip rms in another order) and hexatic order within ~1e-15 (it evaluates
    ``e^{6iθ}`` as ``(du + i dv)⁶ / |d|⁶``). It also reduces the per-environment features
    itself (the mean age with compensated summation: within ~1e-15 of torch's sum). If it
    cannot be built,
    :data:`~hhml.ml.env.measure_kernel.KERNEL_STATUS` says why (and a warning is
    logged) and the torch code runs; on the CPU that code processes the pairwise
    tensors in cache-sized blocks of environments. ``backend="torch"`` or ``"cpp"``
    forces one (``"cpp"`` raises :class:`~hhml.errors.ConfigError` where it does not
    apply).

Public names: ``MATCH_ROUNDS``, ``VortexTracks``, ``VortexMeasurement``,
``measure_vortices``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor

from hhml.core.mobius.neighbours import u_plus
from hhml.core.mobius.stack import chart_of
from hhml.core.resonance.vortices import core_positions, winding_numbers
from hhml.errors import ConfigError, LatticeError
from hhml.ml.env import measure_kernel
from hhml.utils.host_sync import device_paths_only

if TYPE_CHECKING:
    from hhml.core.mobius import MobiusStrip, TokamakStack

__all__ = ["MATCH_ROUNDS", "VortexMeasurement", "VortexTracks", "measure_vortices"]

#: Rounds of mutual-nearest-neighbour linking in the age tracker.
MATCH_ROUNDS = 4

# pairs per block of the torch code's [.., K, K] tensors on the CPU (0.5 MB in float64)
_CPU_PAIRS = 1 << 16

Backend = Literal["auto", "torch", "cpp"]


@dataclass
class VortexTracks:
    """Age-tracker state: the previous measurement's vortices of every strip, padded.

    Attributes
    ----------
    position : Tensor
        ``[B, S, K, 2]`` float64 chart positions ``(u, v)`` (length units).
    charge : Tensor
        ``[B, S, K]`` int64 chart charges.
    age : Tensor
        ``[B, S, K]`` float64 ages (time units).
    valid : Tensor
        ``[B, S, K]`` bool, which slots hold a vortex.
    """

    position: Tensor
    charge: Tensor
    age: Tensor
    valid: Tensor

    @classmethod
    def empty(cls, B: int, S: int, K: int, device: torch.device | str) -> VortexTracks:
        """No vortices in any of the ``B × S`` strips, ``K`` slots each."""
        return cls(
            position=torch.zeros(B, S, K, 2, dtype=torch.float64, device=device),
            charge=torch.zeros(B, S, K, dtype=torch.int64, device=device),
            age=torch.zeros(B, S, K, dtype=torch.float64, device=device),
            valid=torch.zeros(B, S, K, dtype=torch.bool, device=device),
        )

    def cleared(self, mask: Tensor) -> VortexTracks:
        """A copy that forgets the environments in ``mask`` (bool ``[B]``, new episodes)."""
        keep = ~mask.to(device=self.valid.device, dtype=torch.bool)
        k3 = keep[:, None, None]
        return VortexTracks(
            position=torch.where(k3[..., None], self.position, 0.0),
            charge=torch.where(k3, self.charge, 0),
            age=torch.where(k3, self.age, 0.0),
            valid=self.valid & k3,
        )

    def state_dict(self) -> dict[str, Tensor]:
        """The four tensors (on their device; the caller moves them for a checkpoint)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor]) -> VortexTracks:
        """Restore :meth:`state_dict`, checking keys, dtypes and shapes."""
        names = [f.name for f in fields(cls)]
        missing = sorted(set(names) - set(state))
        if missing:
            raise ConfigError(f"vortex tracks state is missing {missing}; expected keys {names}")
        tracks = cls(
            position=state["position"].to(torch.float64),
            charge=state["charge"].to(torch.int64),
            age=state["age"].to(torch.float64),
            valid=state["valid"].to(torch.bool),
        )
        shape = tuple(tracks.valid.shape)
        if len(shape) != 3 or tuple(tracks.position.shape) != (*shape, 2):
            raise ConfigError(
                f"vortex tracks state has valid {shape} and position "
                f"{tuple(tracks.position.shape)}; expected [B, S, K] and [B, S, K, 2]"
            )
        for name in ("charge", "age"):
            if tuple(getattr(tracks, name).shape) != shape:
                raise ConfigError(
                    f"vortex tracks state has {name} {tuple(getattr(tracks, name).shape)}; "
                    f"expected {shape} like valid"
                )
        return tracks


@dataclass
class VortexMeasurement:
    """Vortices of every strip (padded) and the per-environment features.

    Attributes
    ----------
    valid : Tensor
        ``[B, S, K]`` bool: slot holds a vortex (the strip's first ``K`` in plaquette
        order).
    i, j : Tensor
        ``[B, S, K]`` int64 plaquette indices (0 in empty slots).
    charge : Tensor
        ``[B, S, K]`` int64 chart charge at ``position`` (0 in empty slots).
    position : Tensor
        ``[B, S, K, 2]`` float64 chart position ``(u, v)`` (length units).
    depth : Tensor
        ``[B, S, K]`` float64 core depth in [0, 1].
    overflow : Tensor
        ``[B, S]`` bool: the strip has more than ``K`` vortices.
    count, vortex_density, mean_abs_charge, multi_charge_fraction, net_charge_density,
    core_depth, hexatic_order, mean_age : Tensor
        ``[B]`` float64 per-environment features (see the module docstring); counts,
        charges and depths over all vortices, hexatic order and ages over the first
        ``K`` of each strip; ``mean_age`` in time units.
    """

    valid: Tensor
    i: Tensor
    j: Tensor
    charge: Tensor
    position: Tensor
    depth: Tensor
    overflow: Tensor
    count: Tensor
    vortex_density: Tensor
    mean_abs_charge: Tensor
    multi_charge_fraction: Tensor
    net_charge_density: Tensor
    core_depth: Tensor
    hexatic_order: Tensor
    mean_age: Tensor


# --------------------------------------------------------------------------------------
# checks and dispatch
# --------------------------------------------------------------------------------------


def _check_args(
    psi: Tensor,
    lattice: MobiusStrip | TokamakStack,
    tracks: VortexTracks,
    dt: Tensor,
    max_vortices: int,
    track_distance: float,
    min_vortices_for_order: int,
    neighbours: int,
) -> None:
    lattice.check_field(psi)
    if psi.dim() != 4:
        raise LatticeError(
            f"psi has shape {tuple(psi.shape)}; measure_vortices needs [B, S, nu, nv]"
        )
    B, S = int(psi.shape[0]), int(psi.shape[1])
    for name, value, low in (
        ("max_vortices", max_vortices, 1),
        ("min_vortices_for_order", min_vortices_for_order, 0),
        ("neighbours", neighbours, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name} = {value!r} is not valid; it must be an integer ≥ {low}")
    if not (isinstance(track_distance, (int, float)) and math.isfinite(track_distance)):
        raise ConfigError(f"track_distance = {track_distance!r} is not a finite number")
    if track_distance <= 0:
        raise ConfigError(f"track_distance = {track_distance!r} is not valid; it must be > 0")
    K = max_vortices
    if tuple(tracks.valid.shape) != (B, S, K):
        raise ConfigError(
            f"vortex tracks have shape {tuple(tracks.valid.shape)}; this measurement needs "
            f"[B, S, max_vortices] = [{B}, {S}, {K}] (VortexTracks.empty(B, S, K, device))"
        )
    if tracks.valid.device != psi.device:
        raise ConfigError(
            f"vortex tracks are on {tracks.valid.device}, psi on {psi.device}; "
            "they must be on the same device"
        )
    if not isinstance(dt, Tensor) or tuple(dt.shape) != (B,):
        shape = tuple(dt.shape) if isinstance(dt, Tensor) else type(dt).__name__
        raise ConfigError(f"dt has shape {shape}; expected a float64 tensor [B] = [{B}]")


def _seam_row(psi: Tensor, lattice: MobiusStrip | TokamakStack) -> Tensor:
    """The +u neighbours of the last row, ``[..., 1, nv]`` (exactly as :func:`u_plus`)."""
    chart = chart_of(lattice)
    seam = psi[..., :1, :]
    if chart.flip:
        seam = seam.flip(-1)
    phase = lattice.seam_phase
    if phase is not None:
        seam = seam * phase
    return seam


def _use_kernel(psi: Tensor, lattice: MobiusStrip | TokamakStack, backend: str) -> bool:
    if backend not in ("auto", "torch", "cpp"):
        raise ConfigError(f"backend = {backend!r} is not valid; use 'auto', 'torch' or 'cpp'")
    if backend == "torch" or (backend == "auto" and device_paths_only()):
        return False  # (inside forbid_host_sync: the path a GPU takes)
    chart = chart_of(lattice)
    applies = psi.device.type == "cpu" and psi.dtype == chart.dtype
    if backend == "cpp":
        if not applies:
            raise ConfigError(
                f"backend = 'cpp' needs a CPU field of the lattice's dtype {chart.dtype}; "
                f"psi is {psi.dtype} on {psi.device}"
            )
        if measure_kernel.load() is None:
            raise ConfigError(
                "backend = 'cpp': the C++ measurement kernel is unavailable "
                f"({measure_kernel.KERNEL_STATUS.reason})"
            )
        return True
    return applies and measure_kernel.load() is not None


def measure_vortices(
    psi: Tensor,
    lattice: MobiusStrip | TokamakStack,
    tracks: VortexTracks,
    dt: Tensor,
    *,
    max_vortices: int,
    track_distance: float,
    min_vortices_for_order: int,
    neighbours: int = 6,
    backend: Backend = "auto",
) -> tuple[VortexMeasurement, VortexTracks]:
    """Detect the vortices of every strip, their features and ages (no host sync).

    Parameters
    ----------
    psi
        Complex field ``[B, S, nu, nv]`` on ``lattice`` (a
        :class:`~hhml.core.mobius.LatticeEnsemble`, whose ``seam_phase`` is
        ``e^{iθ_b}`` ``[B, 1, 1, 1]``, or a :class:`~hhml.core.mobius.TokamakStack`).
    lattice
        The lattice (chart, topology, seam rule and twist).
    tracks
        The previous measurement's vortices (``K = max_vortices`` slots per strip);
        :meth:`VortexTracks.empty` at the start.
    dt
        float64 ``[B]``: time since each environment's previous measurement (time
        units); linked vortices age by it.
    max_vortices
        ``K``, the vortex slots per strip.
    track_distance
        Longest link between consecutive measurements (length units).
    min_vortices_for_order
        Vortices a strip needs before its hexatic order counts (else 0).
    neighbours
        Neighbours in the bond-orientational order (6).
    backend
        ``"auto"`` (C++ kernel on CPU, torch elsewhere), ``"torch"`` or ``"cpp"``.

    Returns
    -------
    VortexMeasurement, VortexTracks
        The measurement and the tracker state to pass to the next call.

    Raises
    ------
    LatticeError
        ``psi`` is not a complex ``[B, S, nu, nv]`` field of ``lattice``.
    ConfigError
        Invalid sizes, distances, tracker shape, ``dt`` shape or backend.
    """
    _check_args(
        psi,
        lattice,
        tracks,
        dt,
        max_vortices,
        track_distance,
        min_vortices_for_order,
        neighbours,
    )
    dt = dt.to(device=psi.device, dtype=torch.float64)
    if _use_kernel(psi, lattice, backend):
        return measure_kernel.measure_cpu(
            psi,
            lattice,
            _seam_row(psi, lattice),
            tracks,
            dt,
            max_vortices=max_vortices,
            track_distance=float(track_distance),
            min_points=max(min_vortices_for_order, neighbours + 1),
            neighbours=neighbours,
            rounds=MATCH_ROUNDS,
        )
    return _measure_torch(
        psi,
        lattice,
        tracks,
        dt,
        max_vortices,
        float(track_distance),
        max(min_vortices_for_order, neighbours + 1),
        neighbours,
    )


# --------------------------------------------------------------------------------------
# torch path
# --------------------------------------------------------------------------------------


def _measure_torch(
    psi: Tensor,
    lattice: MobiusStrip | TokamakStack,
    tracks: VortexTracks,
    dt: Tensor,
    K: int,
    track_distance: float,
    min_points: int,
    neighbours: int,
) -> tuple[VortexMeasurement, VortexTracks]:
    chart = chart_of(lattice)
    B, S, nu, nv = (int(n) for n in psi.shape)
    P1, P2 = chart.plaquette_shape
    P = P1 * P2
    dev = psi.device
    q = winding_numbers(psi, lattice)  # [B, S, P1, P2]
    up = u_plus(psi, chart.flip, lattice.seam_phase)
    if chart.periodic_v:
        corners = (psi, up, torch.roll(up, -1, dims=-1), torch.roll(psi, -1, dims=-1))
    else:
        corners = (psi[..., :, :-1], up[..., :, :-1], up[..., :, 1:], psi[..., :, 1:])
    nonzero = q != 0

    # ---- dense depth and chart charges of every plaquette
    rms = psi.abs().pow(2).mean(dim=(-2, -1)).sqrt().clamp_min(torch.finfo(chart.u.dtype).tiny)
    a = [c.abs() for c in corners]
    mean_corner = (a[0] + a[1] + a[2] + a[3]) / 4.0
    depth = (1.0 - mean_corner / rms[..., None, None]).clamp(0.0, 1.0)
    chart_q = q
    if chart.flip:
        # only a core in the last row (i = nu − 1) can be refined past u = L
        last = tuple(c[..., -1, :] for c in corners)
        i_last = torch.full_like(q[..., -1, :], P1 - 1)
        j_all = torch.arange(P2, device=dev).expand_as(i_last)
        _, _, q_last = core_positions(chart, i_last, j_all, q[..., -1, :], last)
        chart_q = torch.cat([q[..., :-1, :], q_last[..., None, :]], dim=-2)

    # ---- per-env statistics over all vortices
    env_dims = (1, 2, 3)
    f64 = torch.float64
    count = nonzero.sum(dim=env_dims).to(f64)
    abs_q = q.abs()
    has = count > 0
    denom = count.clamp_min(1.0)
    zero = torch.zeros_like(count)
    mean_abs = torch.where(has, abs_q.sum(dim=env_dims).to(f64) / denom, zero)
    multi = torch.where(has, (abs_q >= 2).sum(dim=env_dims).to(f64) / denom, zero)
    plaquettes = float(S * P)
    net = torch.where(has, chart_q.sum(dim=env_dims).to(f64) / plaquettes, zero)
    depth_sum = torch.where(nonzero, depth.to(f64), 0.0).sum(dim=env_dims)
    core_depth = torch.where(has, depth_sum / denom, zero)

    # ---- first K vortices of every strip: compaction by the running count
    flat = nonzero.reshape(B, S, P)
    csum = flat.cumsum(dim=-1)
    strip_count = csum[..., -1]
    rank = torch.arange(1, K + 1, device=dev, dtype=csum.dtype)
    slot = torch.searchsorted(csum, rank.expand(B, S, K).contiguous())
    valid = rank[None, None, :] <= strip_count[..., None]
    slot = torch.where(valid, slot, 0)
    i, j = slot // P2, slot % P2
    j1 = (j + 1) % nv
    n00, n01 = i * nv + j, i * nv + j1
    psi_flat = psi.reshape(B, S, nu * nv)
    up_flat = up.reshape(B, S, nu * nv)
    f00, f01 = psi_flat.gather(-1, n00), psi_flat.gather(-1, n01)
    f10, f11 = up_flat.gather(-1, n00), up_flat.gather(-1, n01)
    q_slot = q.reshape(B, S, P).gather(-1, slot)
    u, v, q_chart = core_positions(chart, i, j, q_slot, (f00, f10, f11, f01))
    position = torch.stack([u, v], dim=-1).to(f64)
    position = torch.where(valid[..., None], position, 0.0)
    q_chart = torch.where(valid, q_chart, 0)
    depth_slot = torch.where(valid, depth.reshape(B, S, P).gather(-1, slot).to(f64), 0.0)
    i = torch.where(valid, i, 0)
    j = torch.where(valid, j, 0)

    # ---- hexatic order and ages of the first K
    # the [.., K, K] pairwise work, in blocks of environments on the CPU (cache-sized
    # tensors); one block on other devices
    step = B if dev.type != "cpu" else max(1, _CPU_PAIRS // (S * K * K))
    hexatic = torch.cat(
        [
            _hexatic_torch(
                position[b : b + step], valid[b : b + step], chart, min_points, neighbours
            )
            for b in range(0, B, step)
        ]
    )
    ages = torch.cat(
        [
            _ages_torch(
                position[b : b + step],
                q_chart[b : b + step],
                valid[b : b + step],
                _slice_tracks(tracks, b, b + step),
                dt[b : b + step],
                chart,
                track_distance,
            )
            for b in range(0, B, step)
        ]
    )
    n_valid = valid.sum(dim=(1, 2)).to(f64)
    mean_age = torch.where(
        n_valid > 0, torch.where(valid, ages, 0.0).sum(dim=(1, 2)) / n_valid.clamp_min(1.0), 0.0
    )
    meas = VortexMeasurement(
        valid=valid,
        i=i,
        j=j,
        charge=q_chart,
        position=position,
        depth=depth_slot,
        overflow=strip_count > K,
        count=count,
        vortex_density=count / plaquettes,
        mean_abs_charge=mean_abs,
        multi_charge_fraction=multi,
        net_charge_density=net,
        core_depth=core_depth,
        hexatic_order=hexatic.mean(dim=1),
        mean_age=mean_age,
    )
    new_tracks = VortexTracks(position=position, charge=q_chart, age=ages, valid=valid)
    return meas, new_tracks


def _slice_tracks(tracks: VortexTracks, lo: int, hi: int) -> VortexTracks:
    return VortexTracks(
        tracks.position[lo:hi], tracks.charge[lo:hi], tracks.age[lo:hi], tracks.valid[lo:hi]
    )


def _hexatic_torch(
    position: Tensor, valid: Tensor, chart: MobiusStrip, min_points: int, neighbours: int
) -> Tensor:
    """Hexatic order ``[B, S]`` of the padded points, as :func:`observables.hexatic_order`."""
    K = position.shape[-2]
    u, v = position[..., 0], position[..., 1]
    L, w = chart.length, chart.half_width
    flip = -1.0 if chart.topology == "mobius" else 1.0
    v_shifts = [0.0, 2 * w, -2 * w] if chart.topology == "torus" else [0.0]
    images = [
        (shift, sign, vs) for shift, sign in ((0.0, 1.0), (L, flip), (-L, flip)) for vs in v_shifts
    ]

    def displacement(
        k: int, uj: Tensor, vj: Tensor, ui: Tensor, vi: Tensor
    ) -> tuple[Tensor, Tensor]:
        shift, sign, vs = images[k]
        return (uj + shift) - ui, (sign * vj + vs) - vi

    # squared distance through the first image that is strictly shortest (reference order)
    ui, vi, uj, vj = u[..., :, None], v[..., :, None], u[..., None, :], v[..., None, :]
    best = torch.full((*u.shape, K), math.inf, dtype=u.dtype, device=u.device)
    image = torch.zeros(best.shape, dtype=torch.int8, device=u.device)
    for k in range(len(images)):
        du, dv = displacement(k, uj, vj, ui, vi)
        d2 = du * du + dv * dv
        better = d2 < best
        best = torch.where(better, d2, best)
        image = torch.where(better, k, image) if k else image
    eye = torch.eye(K, dtype=torch.bool, device=u.device)
    best.masked_fill_(eye | ~valid[..., None, :], math.inf)
    # the nearest neighbours, nearest first; argmin takes the lowest index among ties
    nearest = torch.empty((*u.shape, neighbours), dtype=torch.int64, device=u.device)
    for a in range(neighbours):
        j = best.argmin(dim=-1, keepdim=True)
        nearest[..., a : a + 1] = j
        best.scatter_(-1, j, math.inf)
    # their displacements through the chosen image, recomputed on [.., K, neighbours]
    img = image.gather(-1, nearest).to(torch.int64)
    uj, vj = u[..., None, :].expand_as(image).gather(-1, nearest), v[..., None, :].expand_as(
        image
    ).gather(-1, nearest)
    du = torch.zeros_like(uj)
    dv = torch.zeros_like(vj)
    for k in range(len(images)):
        duk, dvk = displacement(k, uj, vj, u[..., None], v[..., None])
        du = torch.where(img == k, duk, du)
        dv = torch.where(img == k, dvk, dv)
    angle = torch.atan2(dv, du)
    re = torch.zeros_like(u)
    im = torch.zeros_like(u)
    for a in range(neighbours):  # in order, as the reference's mean
        re = re + torch.cos(6.0 * angle[..., a])
        im = im + torch.sin(6.0 * angle[..., a])
    psi6 = torch.hypot(re / neighbours, im / neighbours)
    n = valid.sum(dim=-1)
    total = torch.where(valid, psi6, 0.0).sum(dim=-1)
    return torch.where(n >= min_points, total / n.clamp_min(1).to(u.dtype), 0.0)


def _band_distance(old: Tensor, new: Tensor, chart: MobiusStrip) -> tuple[Tensor, Tensor]:
    """Shortest band distance and seam crossing, ``[..., Ko, Kn]`` (band_displacement rule)."""
    L = chart.length
    uo, vo = old[..., :, None, 0], old[..., :, None, 1]
    un, vn = new[..., None, :, 0], new[..., None, :, 1]
    du0 = un - uo
    y = -du0 / L
    du_even = du0 + 2.0 * torch.round(0.5 * y) * L
    du_odd = du0 + (2.0 * torch.floor(0.5 * y) + 1.0) * L
    dv_even = vn - vo
    dv_odd = -vn - vo if chart.topology == "mobius" else dv_even
    if chart.topology == "torus":
        period = 2.0 * chart.half_width
        dv_even = dv_even - period * torch.round(dv_even / period)
        dv_odd = dv_odd - period * torch.round(dv_odd / period)
    dist_even = torch.sqrt(du_even * du_even + dv_even * dv_even)
    dist_odd = torch.sqrt(du_odd * du_odd + dv_odd * dv_odd)
    crosses = dist_odd < dist_even
    return torch.where(crosses, dist_odd, dist_even), crosses


def _ages_torch(
    position: Tensor,
    charge: Tensor,
    valid: Tensor,
    tracks: VortexTracks,
    dt: Tensor,
    chart: MobiusStrip,
    track_distance: float,
) -> Tensor:
    """Ages ``[B, S, K]`` by iterated mutual nearest allowed neighbours."""
    K = valid.shape[-1]
    dist, crosses = _band_distance(tracks.position, position, chart)
    old_q = tracks.charge[..., :, None]
    if chart.topology == "mobius":
        old_q = torch.where(crosses, -old_q, old_q)
    allowed = (
        tracks.valid[..., :, None]
        & valid[..., None, :]
        & (dist <= track_distance)
        & (old_q == charge[..., None, :])
    )
    free_old, free_new = tracks.valid, valid
    link = torch.full_like(charge, -1)
    index = torch.arange(K, device=valid.device)
    dist = torch.where(allowed, dist, math.inf)
    for _ in range(MATCH_ROUNDS):
        d = torch.where(free_old[..., :, None] & free_new[..., None, :], dist, math.inf)
        # min over a dim gives the first (lowest) index among equal minima
        d_new, best_new = d.min(dim=-1)
        d_old, best_old = d.min(dim=-2)
        mutual_new = (best_new.gather(-1, best_old) == index) & torch.isfinite(d_old)
        mutual_old = (best_old.gather(-1, best_new) == index) & torch.isfinite(d_new)
        link = torch.where(mutual_new, best_old, link)
        free_new = free_new & ~mutual_new
        free_old = free_old & ~mutual_old
    linked = link >= 0
    old_age = tracks.age.gather(-1, link.clamp_min(0))
    return torch.where(linked, old_age + dt[:, None, None], 0.0)
