"""Vortex tracking on the Möbius band and its cylinder/torus controls.

The vortex detector turns each field snapshot into point defects: chart positions
``(u, v)`` and integer chart charges. This module links those points from snapshot to
snapshot into tracks, and records births, deaths, annihilations, pair creations and
crossings of the seam. It is host-side bookkeeping (NumPy/SciPy), run outside the
integration hot loop; torch tensors are accepted and copied to the host.

Geometry (docs/physics.md, geometry): chart coordinates ``u ∈ [0, L)`` along the band and
``v ∈ [-w, w]`` across it, with the identification

* ``mobius``:   ``(u + L, v) ≡ (u, -v)`` — the chart orientation flips across the seam,
  so a vortex of chart charge ``q`` carried across ``u ≡ 0`` reappears with charge ``-q``;
* ``cylinder``: ``(u + L, v) ≡ (u, v)``;
* ``torus``:    ``(u + L, v) ≡ (u, v)`` and ``(u, v + 2w) ≡ (u, v)``.

Distances use the flat chart metric (Euclidean in ``(u, v)``), in the same length units as
the positions. "The seam" always means the chart cut ``u ≡ 0 (mod L)``; on the torus the
cut ``v ≡ ±w`` is not a seam and is never counted.

Public names
------------
``Topology``, ``TOPOLOGIES``, ``EventKind``
    The topology and event-kind literals.
``BandDisplacement``, ``band_displacement``, ``band_distance``, ``wrap_to_chart``
    Shortest displacement/distance between points modulo the identification, and the
    reduction of arbitrary (lifted) coordinates to the chart.
``Track``, ``TrackEvent``, ``VortexTracker``
    Track records, events, and the tracker itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, NamedTuple, SupportsFloat, TypeAlias

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from hhml.errors import ConfigError, LatticeError

if TYPE_CHECKING:
    import torch

__all__ = [
    "TOPOLOGIES",
    "BandDisplacement",
    "EventKind",
    "Topology",
    "Track",
    "TrackEvent",
    "VortexTracker",
    "band_displacement",
    "band_distance",
    "wrap_to_chart",
]

Topology: TypeAlias = Literal["mobius", "cylinder", "torus"]
EventKind: TypeAlias = Literal["birth", "death", "annihilation", "pair_creation", "seam_crossing"]

#: The topologies understood here; ``mobius`` is the physical one, the others are controls.
TOPOLOGIES: tuple[Topology, ...] = ("mobius", "cylinder", "torus")

FloatArray: TypeAlias = npt.NDArray[np.float64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
IntArray: TypeAlias = npt.NDArray[np.int64]
ArrayInput: TypeAlias = "npt.ArrayLike | torch.Tensor"

# Points whose |v| exceeds the half width by more than this relative slack are rejected on
# the mobius and cylinder topologies (the detector reports plaquette centres strictly inside).
_V_RELATIVE_SLACK = 1e-9


# ---------------------------------------------------------------------------------------------
# Input validation helpers
# ---------------------------------------------------------------------------------------------


def _check_geometry(length: float, half_width: float, topology: str) -> tuple[float, float]:
    """Validate the band geometry and return ``(L, w)`` as floats."""
    values = []
    for name, value in (("length", length), ("half_width", half_width)):
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            raise LatticeError(f"{name} must be a positive finite number, got {value!r}") from exc
        if not (math.isfinite(number) and number > 0.0):
            raise LatticeError(f"{name} must be a positive finite number, got {value!r}")
        values.append(number)
    if topology not in TOPOLOGIES:
        raise LatticeError(f"topology must be one of {', '.join(TOPOLOGIES)}; got {topology!r}")
    return values[0], values[1]


def _to_host(x: ArrayInput, name: str) -> npt.NDArray[np.generic]:
    """Return ``x`` as a NumPy array; torch tensors are detached and copied to the host."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise LatticeError(f"{name} could not be converted to an array: {exc}") from exc


def _as_points(
    x: ArrayInput, name: str, half_width: float, topology: str, *, allow_empty: bool = False
) -> FloatArray:
    """Convert ``x`` to a float64 ``[..., 2]`` array of finite points inside the band."""
    raw = _to_host(x, name)
    if raw.dtype.kind not in "iuf":
        raise LatticeError(f"{name} must hold real numbers, got dtype {raw.dtype}")
    arr = raw.astype(np.float64, copy=False)
    if allow_empty and arr.size == 0:
        return np.zeros((0, 2), dtype=np.float64)
    if arr.ndim == 0 or arr.shape[-1] != 2:
        raise LatticeError(f"{name} must have shape [..., 2] (u, v), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise LatticeError(f"{name} contains non-finite values (NaN or Inf)")
    if topology != "torus":
        limit = half_width * (1.0 + _V_RELATIVE_SLACK)
        if np.any(np.abs(arr[..., 1]) > limit):
            worst = float(np.max(np.abs(arr[..., 1])))
            raise LatticeError(
                f"{name} has |v| = {worst!r} outside the band; on the {topology} topology "
                f"v must lie in [-half_width, half_width] = [{-half_width!r}, {half_width!r}]"
            )
    return arr


def _wrap_periodic(x: FloatArray, low: float, period: float) -> tuple[FloatArray, FloatArray]:
    """Reduce ``x`` into ``[low, low + period)``; return the result and the number of periods.

    ``x = wrapped + n * period`` up to rounding. The floor division can land one period off
    (or exactly on the upper end) in floating point, hence the two correction passes.
    """
    n = np.floor((x - low) / period)
    wrapped = x - n * period
    for _ in range(2):
        high = wrapped >= low + period
        wrapped = np.where(high, wrapped - period, wrapped)
        n = np.where(high, n + 1.0, n)
        below = wrapped < low
        wrapped = np.where(below, wrapped + period, wrapped)
        n = np.where(below, n - 1.0, n)
    return wrapped, n


# ---------------------------------------------------------------------------------------------
# Geometry
# ---------------------------------------------------------------------------------------------


def _image_displacements(
    p: FloatArray, q: FloatArray, length: float, half_width: float, topology: str
) -> tuple[FloatArray, FloatArray]:
    """Displacements from ``p`` to the nearest even and the nearest odd ``u``-image of ``q``.

    The images of ``q = (u, v)`` are ``(u + kL, s**k v)`` with ``s = -1`` on the Möbius band
    and ``s = 1`` otherwise (torus: also ``v + 2mw``, folded into the shortest ``m``). An odd
    ``k`` means the straight path crosses the seam an odd number of times. Because all even
    images share one ``v`` (and all odd images another), the nearest of each parity is the one
    whose ``k`` is the even (odd) integer closest to ``-(u_q - u_p) / L``.

    Returns
    -------
    even, odd : ndarray, shape ``broadcast(p, q)``, float64
        ``(du, dv)`` to the nearest even image and to the nearest odd image.
    """
    du0 = q[..., 0] - p[..., 0]
    y = -du0 / length
    k_even = 2.0 * np.round(0.5 * y)
    k_odd = 2.0 * np.floor(0.5 * y) + 1.0
    du_even = du0 + k_even * length
    du_odd = du0 + k_odd * length
    dv_even = q[..., 1] - p[..., 1]
    # Crossing the Möbius seam an odd number of times reflects v.
    dv_odd = -q[..., 1] - p[..., 1] if topology == "mobius" else dv_even
    if topology == "torus":
        period = 2.0 * half_width
        dv_even = dv_even - period * np.round(dv_even / period)
        dv_odd = dv_odd - period * np.round(dv_odd / period)
    even = np.stack(np.broadcast_arrays(du_even, dv_even), axis=-1)
    odd = np.stack(np.broadcast_arrays(du_odd, dv_odd), axis=-1)
    return even, odd


class BandDisplacement(NamedTuple):
    """Shortest displacement between two points of the band, modulo the identification.

    Attributes
    ----------
    distance : ndarray, shape ``[...]``, float64
        Length of the shortest straight path (chart length units).
    crosses_seam : ndarray, shape ``[...]``, bool
        Whether that path crosses the seam ``u ≡ 0 (mod L)`` an odd number of times (for
        chart inputs with ``u ∈ [0, L)``: whether it crosses the seam at all). On the Möbius
        band this is exactly when the chart orientation — and a vortex's chart charge — flips
        between the two points. Ties between a crossing and a non-crossing path resolve to
        ``False``.
    displacement : ndarray, shape ``[..., 2]``, float64
        ``(du, dv)`` from ``p`` to the nearest image of ``q``, in ``p``'s chart frame.
    """

    distance: FloatArray
    crosses_seam: BoolArray
    displacement: FloatArray


def band_displacement(
    p: ArrayInput,
    q: ArrayInput,
    *,
    length: float,
    half_width: float,
    topology: Topology,
) -> BandDisplacement:
    """Shortest displacement from ``p`` to ``q`` on the band, accounting for the identification.

    Parameters
    ----------
    p, q : array_like or torch.Tensor, shape ``[..., 2]``
        Points ``(u, v)``; the leading dimensions broadcast. ``u`` may lie outside
        ``[0, L)`` (lifted coordinates); ``v`` must lie in ``[-w, w]`` unless the topology is
        ``torus``.
    length : float
        Band length ``L`` (period in ``u``), > 0.
    half_width : float
        Band half width ``w``, > 0.
    topology : {"mobius", "cylinder", "torus"}
        Identification: Möbius ``(u + L, v) ≡ (u, -v)``; cylinder ``(u + L, v) ≡ (u, v)``;
        torus additionally ``(u, v + 2w) ≡ (u, v)``.

    Returns
    -------
    BandDisplacement
        ``(distance [...], crosses_seam [...], displacement [..., 2])``.

    Raises
    ------
    LatticeError
        Invalid geometry or topology, wrong shapes, non-finite values, or ``|v| > w`` on a
        band with edges.

    Examples
    --------
    >>> d = band_displacement([0.1, 0.5], [9.9, -0.5], length=10.0, half_width=1.0,
    ...                       topology="mobius")
    >>> round(float(d.distance), 12), bool(d.crosses_seam)
    (0.2, True)
    """
    L, w = _check_geometry(length, half_width, topology)
    pa = _as_points(p, "p", w, topology)
    qa = _as_points(q, "q", w, topology)
    try:
        np.broadcast_shapes(pa.shape, qa.shape)
    except ValueError as exc:
        raise LatticeError(f"p and q must broadcast, got shapes {pa.shape} and {qa.shape}") from exc
    even, odd = _image_displacements(pa, qa, L, w, topology)
    dist_even = np.hypot(even[..., 0], even[..., 1])
    dist_odd = np.hypot(odd[..., 0], odd[..., 1])
    crosses = dist_odd < dist_even
    distance = np.where(crosses, dist_odd, dist_even)
    displacement = np.where(crosses[..., None], odd, even)
    return BandDisplacement(distance, crosses, displacement)


def band_distance(
    p: ArrayInput,
    q: ArrayInput,
    *,
    length: float,
    half_width: float,
    topology: Topology,
) -> FloatArray:
    """Shortest flat-chart distance between ``p`` and ``q`` modulo the identification.

    This is the quotient metric of the flat strip: the minimum Euclidean distance from ``p``
    to any image of ``q``. It is symmetric, non-negative, zero exactly for identified points
    and satisfies the triangle inequality.

    Parameters
    ----------
    p, q : array_like or torch.Tensor, shape ``[..., 2]``
        Points ``(u, v)``, broadcasting; see :func:`band_displacement`.
    length, half_width : float
        Band length ``L`` and half width ``w``.
    topology : {"mobius", "cylinder", "torus"}
        Identification of the band.

    Returns
    -------
    ndarray, shape ``[...]``, float64
        Distances in chart length units.

    Examples
    --------
    >>> d = band_distance([0.1, 0.5], [9.9, -0.5], length=10.0, half_width=1.0,
    ...                   topology="cylinder")
    >>> round(float(d) ** 2, 12)
    1.04
    """
    return band_displacement(p, q, length=length, half_width=half_width, topology=topology).distance


def wrap_to_chart(
    points: ArrayInput,
    *,
    length: float,
    half_width: float,
    topology: Topology,
) -> tuple[FloatArray, BoolArray]:
    """Reduce (possibly lifted) points to the chart ``u ∈ [0, L)``.

    On the Möbius band an odd number of periods in ``u`` also reflects ``v``; on the torus
    ``v`` is folded into ``[-w, w)``.

    Parameters
    ----------
    points : array_like or torch.Tensor, shape ``[..., 2]``
        Points ``(u, v)``.
    length, half_width : float
        Band length ``L`` and half width ``w``.
    topology : {"mobius", "cylinder", "torus"}
        Identification of the band.

    Returns
    -------
    wrapped : ndarray, shape ``[..., 2]``, float64
        The same points in the chart.
    flipped : ndarray, shape ``[...]``, bool
        Where the chart orientation of the result is opposite to that of the input (Möbius,
        odd number of periods): a chart charge given at the input point must be negated.
    """
    L, w = _check_geometry(length, half_width, topology)
    arr = _as_points(points, "points", w, topology)
    return _wrap(arr, L, w, topology)


def _wrap(arr: FloatArray, L: float, w: float, topology: str) -> tuple[FloatArray, BoolArray]:
    """Unchecked core of :func:`wrap_to_chart`."""
    u, n = _wrap_periodic(arr[..., 0], 0.0, L)
    odd = np.mod(n, 2.0) != 0.0
    v = arr[..., 1]
    if topology == "mobius":
        flipped = odd
        v = np.where(flipped, -v, v)
    else:
        flipped = np.zeros(u.shape, dtype=bool)
        if topology == "torus":
            v, _ = _wrap_periodic(v, -w, 2.0 * w)
    return np.stack([u, v], axis=-1), flipped


# ---------------------------------------------------------------------------------------------
# Track records and events
# ---------------------------------------------------------------------------------------------


@dataclass
class Track:
    """One vortex followed through successive snapshots.

    Treat instances as read-only; the :class:`VortexTracker` that owns them updates them.
    """

    #: Stable integer id, unique within one tracker, assigned in order of appearance from 0.
    track_id: int
    #: Time of the first snapshot in which the vortex was seen (simulation time units).
    birth_time: float
    #: Chart charge in the first snapshot in which the vortex was seen.
    birth_charge: int
    #: Observations ``(t, u, v, chart charge)``, one per snapshot in which the vortex was seen.
    history: list[tuple[float, float, float, int]] = field(default_factory=list)
    #: Time of the first snapshot in which the vortex was missing; ``None`` while alive.
    death_time: float | None = None
    #: Number of links along this track that crossed the seam ``u ≡ 0 (mod L)``.
    seam_crossings: int = 0
    #: ``True`` if the vortex was already present in the tracker's first snapshot, so its
    #: birth was not observed (``birth_time`` is then only an upper bound: left-censored).
    initial: bool = False
    #: Track id of the partner when this vortex was born in a pair creation, else ``None``.
    created_with: int | None = None
    #: Track id of the partner when this vortex died in an annihilation, else ``None``.
    annihilated_with: int | None = None

    @property
    def alive(self) -> bool:
        """Whether the vortex was present in the most recent snapshot."""
        return self.death_time is None

    @property
    def charge(self) -> int:
        """Chart charge at the last observation (it flips at each Möbius seam crossing)."""
        return self.history[-1][3]

    @property
    def position(self) -> tuple[float, float]:
        """Chart position ``(u, v)`` at the last observation."""
        _, u, v, _ = self.history[-1]
        return (u, v)

    @property
    def last_seen(self) -> float:
        """Time of the last observation."""
        return self.history[-1][0]

    def lifetime(self) -> float:
        """``death_time - birth_time``; for a live track, ``last_seen - birth_time``.

        The live value is a lower bound (right-censored).
        """
        end = self.death_time if self.death_time is not None else self.last_seen
        return end - self.birth_time


@dataclass(frozen=True)
class TrackEvent:
    """Something that happened to one or two tracks during one update.

    ``kind`` and the meaning of the fields:

    * ``birth``: a vortex that no existing track could claim; ``position`` where it was seen.
    * ``death``: a track with no successor; ``position`` where it was last seen.
    * ``annihilation``: two tracks that died in the same update, opposite in charge in the
      band's frame and within ``annihilation_distance``; ``position`` is the midpoint of the
      shortest path between their last positions. Each also has its own ``death`` event.
    * ``pair_creation``: two births in the same update, opposite in charge in the band's frame
      and within ``creation_distance``; ``position`` is their midpoint. Each also has its own
      ``birth`` event.
    * ``seam_crossing``: a link that crossed the seam ``u ≡ 0``; ``position`` is where the
      straight path meets the seam, reported on the ``u = 0`` side of the chart;
      ``charges`` is (before, after) — opposite on the Möbius band, equal on the controls.
    """

    #: What happened.
    kind: EventKind
    #: Time of the update in which it was detected (simulation time units).
    time: float
    #: Chart position ``(u, v)`` of the event.
    position: tuple[float, float]
    #: Tracks involved: one for birth/death/seam_crossing, two for annihilation/pair_creation.
    track_ids: tuple[int, ...]
    #: Chart charges of the tracks involved, each in the chart frame at its own position
    #: (for ``seam_crossing``: the track's charge before and after the crossing).
    charges: tuple[int, ...]


# ---------------------------------------------------------------------------------------------
# Tracker
# ---------------------------------------------------------------------------------------------


class VortexTracker:
    """Link per-snapshot vortex detections into tracks on the band.

    Each :meth:`update` links the new detections to the live tracks by gated optimal
    assignment (:func:`scipy.optimize.linear_sum_assignment`): a link is allowed only if the
    shortest compatible path between the two positions is at most ``max_distance`` long and
    the charges agree after transport along that path — equal if the path does not cross the
    Möbius seam, opposite if it does (on the cylinder and torus charges never flip). Among the
    allowed links the tracker first maximises the number of links, then minimises their total
    length. Unclaimed detections start new tracks (births); live tracks left without a
    successor end (deaths).

    Deaths in the same update that are opposite in charge in the band's frame (i.e. after
    transporting one charge to the other along the shortest path) and lie within
    ``annihilation_distance`` are paired into annihilation events; births are paired into
    pair-creation events the same way with ``creation_distance``. Pairing is greedy, closest
    pair first (ties broken by track id), and each track joins at most one pair.

    Notes
    -----
    * ``birth_time`` is the time of the first snapshot containing the vortex and
      ``death_time`` the time of the first snapshot that no longer contains it, so a vortex
      seen in ``n`` snapshots spaced ``dt`` apart has lifetime ``n * dt``.
    * Vortices in the first snapshot start tracks flagged ``initial=True``; their birth was
      not observed, so they produce no ``birth`` or ``pair_creation`` events.
    * Seam crossings (links crossing ``u ≡ 0``) are counted on all three topologies so that
      the Möbius band and its controls are measured the same way; only on the Möbius band do
      they flip the chart charge. Wrapping in ``v`` on the torus is not a seam crossing.
    * Positions with ``u`` outside ``[0, L)`` are reduced to the chart first (on the Möbius
      band an odd number of periods reflects ``v`` and negates the given charge).
    * ``max_distance`` is a per-update gate; it should stay well below ``L / 2`` and the
      typical vortex spacing for the links to be unambiguous.

    Parameters
    ----------
    length : float
        Band length ``L``, > 0.
    half_width : float
        Band half width ``w``, > 0.
    topology : {"mobius", "cylinder", "torus"}, default "mobius"
        Identification of the band.
    max_distance : float
        Longest allowed link between consecutive snapshots (chart length units), > 0.
    annihilation_distance : float, optional
        Largest separation of two simultaneous deaths that counts as an annihilation
        (>= 0); defaults to ``max_distance``.
    creation_distance : float, optional
        Largest separation of two simultaneous births that counts as a pair creation
        (>= 0); defaults to ``annihilation_distance``.

    Raises
    ------
    LatticeError
        Invalid geometry or topology.
    ConfigError
        Invalid distance threshold.
    """

    def __init__(
        self,
        length: float,
        half_width: float,
        topology: Topology = "mobius",
        *,
        max_distance: float,
        annihilation_distance: float | None = None,
        creation_distance: float | None = None,
    ) -> None:
        self._length, self._half_width = _check_geometry(length, half_width, topology)
        self._topology: Topology = topology
        self._max_distance = _check_threshold("max_distance", max_distance, strict=True)
        self._annihilation_distance = (
            self._max_distance
            if annihilation_distance is None
            else _check_threshold("annihilation_distance", annihilation_distance, strict=False)
        )
        self._creation_distance = (
            self._annihilation_distance
            if creation_distance is None
            else _check_threshold("creation_distance", creation_distance, strict=False)
        )
        self._tracks: list[Track] = []
        self._alive: list[Track] = []
        self._events: list[TrackEvent] = []
        self._time: float | None = None
        self._n_updates = 0

    # -- configuration --------------------------------------------------------------------

    @property
    def length(self) -> float:
        """Band length ``L``."""
        return self._length

    @property
    def half_width(self) -> float:
        """Band half width ``w``."""
        return self._half_width

    @property
    def topology(self) -> Topology:
        """Identification of the band."""
        return self._topology

    @property
    def max_distance(self) -> float:
        """Longest allowed link per update."""
        return self._max_distance

    @property
    def annihilation_distance(self) -> float:
        """Largest separation of an annihilating pair."""
        return self._annihilation_distance

    @property
    def creation_distance(self) -> float:
        """Largest separation of a created pair."""
        return self._creation_distance

    # -- state ----------------------------------------------------------------------------

    @property
    def tracks(self) -> list[Track]:
        """All tracks, live and ended, in order of id."""
        return list(self._tracks)

    @property
    def alive(self) -> list[Track]:
        """Tracks present in the most recent snapshot, in order of id."""
        return sorted(self._alive, key=lambda track: track.track_id)

    @property
    def events(self) -> list[TrackEvent]:
        """All events so far, in order of detection."""
        return list(self._events)

    @property
    def seam_crossings(self) -> int:
        """Total number of seam crossings over all tracks."""
        return sum(track.seam_crossings for track in self._tracks)

    @property
    def time(self) -> float | None:
        """Time of the most recent update, ``None`` before the first."""
        return self._time

    @property
    def n_updates(self) -> int:
        """Number of snapshots processed."""
        return self._n_updates

    def track(self, track_id: int) -> Track:
        """Return the track with id ``track_id``.

        Raises
        ------
        KeyError
            No such track.
        """
        if 0 <= track_id < len(self._tracks):
            return self._tracks[track_id]
        raise KeyError(f"no track with id {track_id}; ids run from 0 to {len(self._tracks) - 1}")

    # -- statistics -------------------------------------------------------------------------

    def lifetimes(self, include_alive: bool = False, include_initial: bool = True) -> FloatArray:
        """Track lifetimes in simulation time units, in order of track id.

        Parameters
        ----------
        include_alive : bool, default False
            Also include live tracks, with the right-censored value
            ``last update time - birth_time``.
        include_initial : bool, default True
            Include tracks present in the first snapshot (whose birth was not observed, so
            their lifetime is left-censored).

        Returns
        -------
        ndarray, shape ``[n]``, float64
        """
        values = [
            track.lifetime()
            for track in self._tracks
            if (include_alive or not track.alive) and (include_initial or not track.initial)
        ]
        return np.asarray(values, dtype=np.float64)

    def mean_lifetime(self, include_alive: bool = False, include_initial: bool = True) -> float:
        """Mean of :meth:`lifetimes`; ``nan`` when no track qualifies."""
        values = self.lifetimes(include_alive=include_alive, include_initial=include_initial)
        return float(values.mean()) if values.size else math.nan

    def count(self, kind: EventKind) -> int:
        """Number of events of one kind."""
        return sum(1 for event in self._events if event.kind == kind)

    def summary(self) -> dict[str, float]:
        """Counts and the mean lifetime of ended tracks, as plain numbers.

        Keys: ``n_updates``, ``n_tracks``, ``n_alive``, ``n_initial``, ``n_births``,
        ``n_deaths``, ``n_annihilations``, ``n_pair_creations``, ``n_seam_crossings``,
        ``mean_lifetime`` (ended tracks; ``nan`` if none), ``time`` (last update; ``nan``
        before the first).
        """
        return {
            "n_updates": self._n_updates,
            "n_tracks": len(self._tracks),
            "n_alive": len(self._alive),
            "n_initial": sum(1 for track in self._tracks if track.initial),
            "n_births": self.count("birth"),
            "n_deaths": self.count("death"),
            "n_annihilations": self.count("annihilation"),
            "n_pair_creations": self.count("pair_creation"),
            "n_seam_crossings": self.seam_crossings,
            "mean_lifetime": self.mean_lifetime(),
            "time": math.nan if self._time is None else self._time,
        }

    # -- update -----------------------------------------------------------------------------

    def update(self, positions: ArrayInput, charges: ArrayInput, t: SupportsFloat) -> IntArray:
        """Process one snapshot.

        Parameters
        ----------
        positions : array_like or torch.Tensor, shape ``[K, 2]``
            Chart positions ``(u, v)`` of the detected vortices (``K`` may be 0).
        charges : array_like or torch.Tensor, shape ``[K]``
            Their non-zero integer chart charges.
        t : float
            Snapshot time (simulation time units; anything ``float()`` accepts, e.g. a 0-d
            tensor); must not decrease between updates.

        Returns
        -------
        ndarray, shape ``[K]``, int64
            The track id of each detected vortex, in input order.

        Raises
        ------
        LatticeError
            Wrong shapes, non-finite or out-of-band positions, non-integer or zero charges,
            non-finite or decreasing ``t``.
        """
        time = self._check_time(t)
        new_pos, new_q = self._check_snapshot(positions, charges)
        ids = np.full(new_q.shape[0], -1, dtype=np.int64)
        survivors: list[Track] = []
        first = self._n_updates == 0
        if not first:
            ended = self._link(new_pos, new_q, time, ids, survivors)
            self._end(ended, time)
        self._begin(new_pos, new_q, time, ids, survivors, initial=first)
        self._alive = survivors
        self._time = time
        self._n_updates += 1
        return ids

    # -- internals --------------------------------------------------------------------------

    def _link(
        self,
        new_pos: FloatArray,
        new_q: IntArray,
        time: float,
        ids: IntArray,
        survivors: list[Track],
    ) -> list[Track]:
        """Extend the live tracks onto the new detections; return the tracks left over.

        Fills ``ids`` for the linked detections and appends the extended tracks to
        ``survivors``.
        """
        L, w, topology = self._length, self._half_width, self._topology
        old = self._alive
        old_pos = np.asarray([track.position for track in old], dtype=np.float64).reshape(-1, 2)
        old_q = np.asarray([track.charge for track in old], dtype=np.int64)
        dist, crosses, disp = _compatible_paths(
            old_pos, old_q, new_pos, new_q, "same", L, w, topology
        )
        linked: set[int] = set()
        for i, j in _gated_assignment(dist, self._max_distance):
            track = old[i]
            linked.add(i)
            before = track.charge
            u, v = new_pos[j]
            charge = int(new_q[j])
            track.history.append((time, float(u), float(v), charge))
            ids[j] = track.track_id
            survivors.append(track)
            if crosses[i, j]:
                track.seam_crossings += 1
                where = _seam_point(old_pos[i], disp[i, j], L, w, topology)
                self._emit("seam_crossing", time, where, (track.track_id,), (before, charge))
        ended = [track for i, track in enumerate(old) if i not in linked]
        return sorted(ended, key=lambda track: track.track_id)

    def _end(self, ended: list[Track], time: float) -> None:
        """Record deaths, then pair simultaneous deaths into annihilations."""
        for track in ended:
            track.death_time = time
            self._emit("death", time, track.position, (track.track_id,), (track.charge,))
        for a, b, where in self._opposite_pairs(ended, self._annihilation_distance):
            a.annihilated_with, b.annihilated_with = b.track_id, a.track_id
            ids, charges = (a.track_id, b.track_id), (a.charge, b.charge)
            self._emit("annihilation", time, where, ids, charges)

    def _begin(
        self,
        new_pos: FloatArray,
        new_q: IntArray,
        time: float,
        ids: IntArray,
        survivors: list[Track],
        *,
        initial: bool,
    ) -> None:
        """Start tracks for unclaimed detections; record births and pair creations.

        In the first snapshot (``initial``) births were not observed, so no events.
        """
        born: list[Track] = []
        for k in np.flatnonzero(ids < 0).tolist():
            track = self._start_track(time, new_pos[k], int(new_q[k]), initial)
            ids[k] = track.track_id
            born.append(track)
        survivors.extend(born)
        if initial:
            return
        for track in born:
            self._emit("birth", time, track.position, (track.track_id,), (track.charge,))
        for a, b, where in self._opposite_pairs(born, self._creation_distance):
            a.created_with, b.created_with = b.track_id, a.track_id
            ids_ab, charges = (a.track_id, b.track_id), (a.charge, b.charge)
            self._emit("pair_creation", time, where, ids_ab, charges)

    def _opposite_pairs(
        self, tracks: list[Track], gate: float
    ) -> list[tuple[Track, Track, FloatArray]]:
        """Greedy disjoint vortex–antivortex pairs (band frame) within ``gate``, with midpoints."""
        if len(tracks) < 2:
            return []
        L, w, topology = self._length, self._half_width, self._topology
        tracks = sorted(tracks, key=lambda track: track.track_id)  # ties go to lower ids
        pos = np.asarray([track.position for track in tracks], dtype=np.float64)
        charge = np.asarray([track.charge for track in tracks], dtype=np.int64)
        dist, _, disp = _compatible_paths(pos, charge, pos, charge, "opposite", L, w, topology)
        return [
            (tracks[a], tracks[b], _midpoint(pos[a], disp[a, b], L, w, topology))
            for a, b in _greedy_pairs(dist, gate)
        ]

    def _check_time(self, t: SupportsFloat) -> float:
        try:
            time = float(t)
        except (TypeError, ValueError) as exc:
            raise LatticeError(f"t must be a finite real number, got {t!r}") from exc
        if not math.isfinite(time):
            raise LatticeError(f"t must be a finite real number, got {t!r}")
        if self._time is not None and time < self._time:
            raise LatticeError(
                f"t must not decrease between updates: got t={time!r} after t={self._time!r}"
            )
        return time

    def _check_snapshot(
        self, positions: ArrayInput, charges: ArrayInput
    ) -> tuple[FloatArray, IntArray]:
        pos = _as_points(positions, "positions", self._half_width, self._topology, allow_empty=True)
        if pos.ndim != 2:
            raise LatticeError(f"positions must have shape [K, 2], got shape {pos.shape}")
        raw = _to_host(charges, "charges")
        if raw.size == 0 and pos.shape[0] == 0:
            return pos, np.zeros(0, dtype=np.int64)
        if raw.ndim != 1 or raw.shape[0] != pos.shape[0]:
            raise LatticeError(
                f"charges must have shape [K] = [{pos.shape[0]}] to match positions, "
                f"got shape {raw.shape}"
            )
        if raw.dtype.kind in "iu":
            q = raw.astype(np.int64)
        elif raw.dtype.kind == "f":
            as_float = raw.astype(np.float64)
            if not np.all(np.isfinite(as_float)) or np.any(as_float != np.round(as_float)):
                raise LatticeError("charges must be integers (winding numbers)")
            q = as_float.astype(np.int64)
        else:
            raise LatticeError(f"charges must be integers (winding numbers), got dtype {raw.dtype}")
        if np.any(q == 0):
            raise LatticeError("charges must be non-zero: a charge-0 plaquette is not a vortex")
        wrapped, flipped = _wrap(pos, self._length, self._half_width, self._topology)
        return wrapped, np.where(flipped, -q, q)

    def _start_track(self, time: float, position: FloatArray, charge: int, initial: bool) -> Track:
        track_id = len(self._tracks)
        track = Track(
            track_id=track_id,
            birth_time=time,
            birth_charge=charge,
            history=[(time, float(position[0]), float(position[1]), charge)],
            initial=initial,
        )
        self._tracks.append(track)
        return track

    def _emit(
        self,
        kind: EventKind,
        time: float,
        position: tuple[float, float] | FloatArray,
        track_ids: tuple[int, ...],
        charges: tuple[int, ...],
    ) -> None:
        where = (float(position[0]), float(position[1]))
        self._events.append(TrackEvent(kind, time, where, track_ids, charges))


def _check_threshold(name: str, value: float, *, strict: bool) -> float:
    """Validate a distance threshold (> 0 if ``strict``, else >= 0)."""
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a finite number, got {value!r}") from exc
    bound = "> 0" if strict else ">= 0"
    if not math.isfinite(number) or number < 0.0 or (strict and number == 0.0):
        raise ConfigError(
            f"{name} must be a finite number {bound} (chart length units), got {value!r}"
        )
    return number


def _compatible_paths(
    p: FloatArray,
    qp: IntArray,
    r: FloatArray,
    qr: IntArray,
    relation: Literal["same", "opposite"],
    length: float,
    half_width: float,
    topology: str,
) -> tuple[FloatArray, BoolArray, FloatArray]:
    """Shortest charge-compatible paths between two point sets.

    A path from ``p[i]`` to ``r[j]`` is compatible when, after transporting charge
    ``qp[i]`` along it (negating it if it crosses the Möbius seam an odd number of times),
    it equals ``qr[j]`` (``relation="same"``: the same vortex) or ``-qr[j]``
    (``relation="opposite"``: a vortex–antivortex pair). Both the nearest non-crossing and
    the nearest crossing image are considered, so a compatible path is found even where it
    is not the overall shortest one.

    Returns
    -------
    distance : ndarray, shape ``[n, m]``
        Length of the shortest compatible path, ``inf`` where there is none.
    crosses : ndarray, shape ``[n, m]``, bool
        Whether that path crosses the seam.
    displacement : ndarray, shape ``[n, m, 2]``
        ``(du, dv)`` of that path in the chart frame at ``p[i]``.
    """
    even, odd = _image_displacements(p[:, None, :], r[None, :, :], length, half_width, topology)
    odd_sign = -1 if topology == "mobius" else 1
    target = qr[None, :] if relation == "same" else -qr[None, :]
    ok_even = qp[:, None] == target
    ok_odd = odd_sign * qp[:, None] == target
    d_even = np.where(ok_even, np.hypot(even[..., 0], even[..., 1]), np.inf)
    d_odd = np.where(ok_odd, np.hypot(odd[..., 0], odd[..., 1]), np.inf)
    crosses = d_odd < d_even
    distance = np.where(crosses, d_odd, d_even)
    displacement = np.where(crosses[..., None], odd, even)
    return distance, crosses, displacement


def _gated_assignment(cost: FloatArray, gate: float) -> list[tuple[int, int]]:
    """Optimal links ``(row, col)`` among entries with ``cost <= gate``.

    Forbidden entries get a penalty larger than any possible sum of allowed costs, so the
    solver first maximises the number of allowed links and then minimises their total cost;
    links it is forced to make through forbidden entries are dropped afterwards.
    """
    allowed = cost <= gate
    if not allowed.any():
        return []
    rows = np.flatnonzero(allowed.any(axis=1))
    cols = np.flatnonzero(allowed.any(axis=0))
    sub_allowed = allowed[np.ix_(rows, cols)]
    penalty = gate * (min(rows.size, cols.size) + 1) + 1.0
    sub_cost = np.where(sub_allowed, cost[np.ix_(rows, cols)], penalty)
    r, c = linear_sum_assignment(sub_cost)
    return [(int(rows[a]), int(cols[b])) for a, b in zip(r, c, strict=True) if sub_allowed[a, b]]


def _greedy_pairs(distance: FloatArray, gate: float) -> list[tuple[int, int]]:
    """Disjoint pairs ``(a, b)``, ``a < b``, with ``distance <= gate``, closest first."""
    a, b = np.triu_indices(distance.shape[0], k=1)
    d = distance[a, b]
    ok = d <= gate
    a, b, d = a[ok], b[ok], d[ok]
    used: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for k in np.lexsort((b, a, d)):
        i, j = int(a[k]), int(b[k])
        if i not in used and j not in used:
            used.update((i, j))
            pairs.append((i, j))
    return pairs


def _midpoint(
    p: FloatArray, displacement: FloatArray, length: float, half_width: float, topology: str
) -> FloatArray:
    """Chart position of the midpoint of the path ``p -> p + displacement``."""
    wrapped, _ = _wrap(p + 0.5 * displacement, length, half_width, topology)
    return wrapped


def _seam_point(
    p: FloatArray, displacement: FloatArray, length: float, half_width: float, topology: str
) -> FloatArray:
    """Where the straight path ``p -> p + displacement`` (``p`` in the chart) meets ``u ≡ 0``.

    Reported on the ``u = 0`` side of the chart (a point ``(L, v)`` on the Möbius band is
    the chart point ``(0, -v)``).
    """
    du = float(displacement[0])
    boundary = length if du > 0.0 else 0.0
    fraction = (boundary - float(p[0])) / du if du != 0.0 else 0.0
    fraction = min(max(fraction, 0.0), 1.0)
    point = p + fraction * displacement
    point[0] = boundary
    wrapped, _ = _wrap(point, length, half_width, topology)
    return wrapped
