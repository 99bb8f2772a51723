"""Field snapshots and trajectories as self-describing HDF5 (netCDF-4 compatible) files.

Files are written with h5py in the netCDF-4 data model: every dimension is a
coordinate variable (an HDF5 dimension scale) that the variables attach to, so
``xarray.open_dataset(path, engine="h5netcdf")`` (or any netCDF-4 reader) gives named
dimensions, coordinates and attributes without HHmL or torch. The layout is described in
``docs/data_format.md``:

* dimensions ``env`` (batch index), ``strip`` (strip of the stack), ``u`` and ``v``
  (cell-centred chart coordinates, :func:`chart_coordinates`), ``vortex`` (one entry per
  detected vortex), ``control`` (control names) and, in trajectories, ``time``
  (unlimited);
* a complex field ``psi`` is stored as two real variables ``psi_real`` and
  ``psi_imag`` of its real dtype (float32 for complex64, float64 for complex128): every
  netCDF reader understands them, unlike HDF5 compound or h5netcdf's optional complex
  types;
* the vortices as ``vortex_env``, ``vortex_strip``, ``vortex_i``, ``vortex_j``
  (chart indices), ``vortex_u``, ``vortex_v`` (chart positions), ``vortex_charge`` and
  ``vortex_depth`` along ``vortex``;
* the chart (``nu``, ``nv``, ``strips``, ``length``, ``half_width``, ``topology``,
  ``edge``, ``metric``, ``strip_spacing``), the twist, the control names and one
  attribute ``control_<name>`` per control (its value in each env), the HHmL version
  and the format name and version as global attributes;
* the attribute ``hhml_layout`` (JSON) maps the variables back to the keys, dtypes and
  shapes of the snapshot dict, so :func:`read_snapshot` returns exactly the tensors
  that were written.

Snapshots are written atomically (a temporary file in the target's directory, renamed
over it; :mod:`hhml.utils.atomic_io`); a trajectory is one file that
:class:`FieldWriter` extends frame by frame (flushed after each frame). h5py is imported
only when a file is written or read, so importing this module stays light.

Public names: ``FieldWriter``, ``write_snapshot_h5``, ``read_snapshot``,
``read_trajectory``, ``convert_pt_snapshot``, ``chart_coordinates``,
``chart_from_lattice``, ``is_hdf5_file``, ``SNAPSHOT_FORMAT``, ``TRAJECTORY_FORMAT``,
``FORMAT_VERSION``.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch

from hhml.errors import CheckpointError, ConfigError
from hhml.utils.atomic_io import atomic_write_bytes

__all__ = [
    "FORMAT_VERSION",
    "SNAPSHOT_FORMAT",
    "TRAJECTORY_FORMAT",
    "FieldWriter",
    "chart_coordinates",
    "chart_from_lattice",
    "convert_pt_snapshot",
    "is_hdf5_file",
    "read_snapshot",
    "read_trajectory",
    "write_snapshot_h5",
]

#: Value of the global attribute ``hhml_format`` of a snapshot file.
SNAPSHOT_FORMAT = "hhml-field-snapshot"
#: Value of the global attribute ``hhml_format`` of a trajectory file.
TRAJECTORY_FORMAT = "hhml-field-trajectory"
#: Version of the layout (global attribute ``hhml_format_version``).
FORMAT_VERSION = 1

#: The first 8 bytes of an HDF5 file whose superblock is at offset 0 (h5py's default).
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

#: Chart keys every field file needs, and those it may carry besides.
CHART_REQUIRED = ("nu", "nv", "strips", "length", "half_width")
CHART_OPTIONAL = ("topology", "edge", "metric", "strip_spacing", "twist")

#: Global attributes the writer sets itself (``attrs`` may not replace them).
_RESERVED = frozenset(
    {"hhml_format", "hhml_format_version", "hhml_version", "hhml_layout", "control_names"}
    | set(CHART_REQUIRED)
    | set(CHART_OPTIONAL)
    | {"step", "title"}
)

#: Snapshot keys with a fixed place in the layout: key -> (variable, dims, long name).
_VORTEX_COLUMNS = {
    "vortex_index": (
        ("vortex_env", "vortex_strip", "vortex_i", "vortex_j"),
        ("environment", "strip", "chart index along u", "chart index along v"),
    ),
    "vortex_position": (
        ("vortex_u", "vortex_v"),
        ("chart position along u (length units)", "chart position along v (length units)"),
    ),
}
_LONG_NAMES = {
    "psi": "complex field psi",
    "area_weights": "cell area weights",
    "control_values": "control values of each env",
    "env_time": "time since each env's last reset (simulation time units)",
    "vortex_charge": "vortex charge (winding number)",
    "vortex_depth": "vortex core depth (amplitude dip)",
}
_TENSOR_TAG = "$tensor"
_FIELD_DIMS = ("env", "strip", "u", "v")

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def _h5py() -> Any:
    """h5py, imported on first use."""
    import h5py  # type: ignore[import-untyped,unused-ignore]

    return h5py


def _hhml_version() -> str:
    from hhml import __version__

    return __version__


def is_hdf5_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` starts with the HDF5 signature (files HHmL writes always do).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    """
    with open(path, "rb") as handle:
        return handle.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE


# ---------------------------------------------------------------------------------------
# charts


def _chart_ints(chart: Mapping[str, Any], where: str) -> tuple[int, int, int, float, float]:
    missing = [k for k in CHART_REQUIRED if k not in chart]
    if missing:
        raise ConfigError(f"{where}: the chart lacks {missing}; it needs {list(CHART_REQUIRED)}")
    try:
        nu, nv, strips = int(chart["nu"]), int(chart["nv"]), int(chart["strips"])
        length, half_width = float(chart["length"]), float(chart["half_width"])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: chart values must be numbers ({exc})") from None
    if min(nu, nv, strips) < 1 or not (length > 0 and half_width > 0):
        raise ConfigError(
            f"{where}: chart nu = {nu}, nv = {nv}, strips = {strips}, length = {length}, "
            f"half_width = {half_width}; sizes must be >= 1 and lengths > 0"
        )
    return nu, nv, strips, length, half_width


def chart_coordinates(chart: Mapping[str, Any]) -> tuple[FloatArray, FloatArray]:
    """Cell-centred chart coordinates ``(u [nu], v [nv])`` in length units (float64).

    ``u_i = (i + 1/2) L / nu`` along the centre line (``[0, L]``) and
    ``v_j = (j + 1/2 - nv/2) 2w / nv`` across (``[-w, w]``), the nodes of
    :class:`~hhml.core.mobius.MobiusStrip` (bit for bit).

    Raises
    ------
    ConfigError
        The chart lacks ``nu``, ``nv``, ``strips``, ``length`` or ``half_width``, or one
        is out of range.
    """
    nu, nv, _, length, half_width = _chart_ints(chart, "chart_coordinates")
    du, dv = length / nu, 2.0 * half_width / nv
    u = np.asarray((np.arange(nu) + 0.5) * du, dtype=np.float64)
    v = np.asarray((np.arange(nv) + 0.5 - nv / 2) * dv, dtype=np.float64)
    return u, v


def chart_from_lattice(lattice: Any) -> dict[str, Any]:
    """The chart dict of a strip, a stack or an ensemble (the keys snapshots carry).

    Parameters
    ----------
    lattice
        A :class:`~hhml.core.mobius.MobiusStrip`, a stack or an ensemble (anything with
        ``nu``, ``nv`` and either ``length``/``half_width`` or a ``strip`` that has them).

    Returns
    -------
    dict
        ``nu, nv, strips, length, half_width, topology, edge, metric`` and, where the
        lattice has them, ``strip_spacing`` and a scalar ``twist`` (radians).
    """
    strip = getattr(lattice, "strip", lattice)
    chart: dict[str, Any] = {
        "nu": int(lattice.nu),
        "nv": int(lattice.nv),
        "strips": int(getattr(lattice, "num_strips", 1)),
        "length": float(strip.length),
        "half_width": float(strip.half_width),
        "topology": str(strip.topology),
        "edge": str(strip.edge),
        "metric": str(getattr(lattice, "metric", getattr(strip, "metric", "flat"))),
    }
    spacing = getattr(lattice, "strip_spacing", None)
    if isinstance(spacing, (int, float)):
        chart["strip_spacing"] = float(spacing)
    twist = getattr(lattice, "twist", getattr(strip, "twist", None))
    if isinstance(twist, (int, float)):
        chart["twist"] = float(twist)
    return chart


# ---------------------------------------------------------------------------------------
# attributes


def _attr_value(name: str, value: Any) -> Any:
    """``value`` as a netCDF attribute: str, int64, float64 or a 1-D array of them.

    Booleans become 0/1 integers and mappings JSON text.
    """
    h5py = _h5py()
    if isinstance(value, bool):
        return np.int64(value)
    if isinstance(value, (int, np.integer)):
        return np.int64(value)
    if isinstance(value, (float, np.floating)):
        return np.float64(value)
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        try:
            return json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"attribute {name!r}: the mapping is not JSON ({exc})") from None
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(np.asarray(value).reshape(-1)) if isinstance(value, np.ndarray) else value
        if items and all(isinstance(x, str) for x in items):
            return np.array(items, dtype=h5py.string_dtype())
        if all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in items):
            return np.asarray(items, dtype=np.int64)
        if all(isinstance(x, (int, float, np.integer, np.floating)) for x in items):
            return np.asarray(items, dtype=np.float64)
    raise ConfigError(
        f"attribute {name!r} = {value!r:.80} ({type(value).__name__}) cannot be stored; "
        "use str, int, float, bool, a mapping (stored as JSON) or a list of str or numbers"
    )


def _set_attrs(handle: Any, attrs: Mapping[str, Any] | None) -> None:
    for name, value in (attrs or {}).items():
        if not isinstance(name, str) or not name:
            raise ConfigError(f"attribute name {name!r} must be a non-empty str")
        if name in _RESERVED or name.startswith("control_"):
            raise ConfigError(
                f"attribute {name!r} is set by the writer; reserved names are "
                f"{sorted(_RESERVED)} and control_<name>"
            )
        handle.attrs[name] = _attr_value(name, value)


def _chart_attrs(handle: Any, chart: Mapping[str, Any]) -> None:
    for key in (*CHART_REQUIRED, *CHART_OPTIONAL):
        if key in chart:
            handle.attrs[key] = _attr_value(key, chart[key])


# ---------------------------------------------------------------------------------------
# dimensions and variables


def _dimension(
    handle: Any,
    name: str,
    values: npt.NDArray[Any],
    attrs: Mapping[str, str] | None = None,
    *,
    unlimited: bool = False,
) -> Any:
    """A coordinate variable ``name(name)`` made a dimension scale."""
    if name in handle:
        raise ConfigError(f"dimension {name!r} is defined twice (a snapshot key clashes)")
    if unlimited:
        ds = handle.create_dataset(
            name, data=values, maxshape=(None,), chunks=(max(256, len(values)),)
        )
    else:
        ds = handle.create_dataset(name, data=values)
    for key, text in (attrs or {}).items():
        ds.attrs[key] = text
    ds.make_scale(name)
    return ds


def _variable(
    handle: Any,
    name: str,
    data: npt.NDArray[Any],
    dims: Sequence[str],
    attrs: Mapping[str, Any] | None = None,
    **create: Any,
) -> Any:
    """A variable ``name(dims)`` attached to the dimension scales ``dims``."""
    if name in handle:
        raise ConfigError(
            f"variable {name!r} is defined twice: two snapshot keys map to the same name"
        )
    if data.ndim != len(dims):
        raise ConfigError(f"variable {name!r} has {data.ndim} dims but {len(dims)} names {dims}")
    ds = handle.create_dataset(name, data=data, **create)
    for axis, dim in enumerate(dims):
        ds.dims[axis].attach_scale(handle[dim])
        ds.dims[axis].label = dim  # for h5py users; netCDF readers use the scales
    for key, value in (attrs or {}).items():
        ds.attrs[key] = value
    return ds


def _numpy(tensor: torch.Tensor, key: str) -> npt.NDArray[Any]:
    """CPU numpy copy of ``tensor``; bool as uint8, bfloat16 as float32 (both exact)."""
    t = tensor.detach().cpu()
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    elif t.dtype == torch.bfloat16:
        t = t.to(torch.float32)
    try:
        return t.resolve_conj().resolve_neg().numpy()
    except TypeError as exc:
        raise ConfigError(
            f"snapshot key {key!r}: dtype {tensor.dtype} cannot be stored ({exc})"
        ) from None


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _torch_dtype(name: str, where: str) -> torch.dtype:
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise CheckpointError(f"{where}: unknown tensor dtype {name!r} in the layout")
    return dtype


class _SnapshotWriter:
    """Places the tensors and values of one snapshot dict into an open HDF5 file."""

    def __init__(self, handle: Any, snapshot: Mapping[str, Any]) -> None:
        self.handle = handle
        self.snapshot = snapshot
        self.field_shape: tuple[int, int, int, int] | None = None
        self.vortices: int | None = None
        self.controls: int | None = None
        self._generic = 0

    # which layout applies -------------------------------------------------------------
    def plan(self) -> None:
        """Decide whether this is a field snapshot (``psi [B, S, nu, nv]`` and a chart)."""
        snap = self.snapshot
        chart, psi = snap.get("chart"), snap.get("psi")
        if not isinstance(chart, Mapping) or not isinstance(psi, torch.Tensor):
            return  # not a field snapshot: every tensor gets generic dimensions
        nu, nv, strips, _, _ = _chart_ints(chart, "snapshot")
        if psi.dim() != 4 or tuple(psi.shape[1:]) != (strips, nu, nv):
            raise ConfigError(
                f"snapshot: psi has shape {tuple(psi.shape)} but the chart says "
                f"[B, {strips}, {nu}, {nv}]"
            )
        self.field_shape = (int(psi.shape[0]), strips, nu, nv)
        u, v = chart_coordinates(chart)
        h = self.handle
        _dimension(h, "env", np.arange(psi.shape[0], dtype=np.int64), {"long_name": "env"})
        _dimension(h, "strip", np.arange(strips, dtype=np.int64), {"long_name": "strip"})
        _dimension(h, "u", u, {"long_name": "chart coordinate along the centre line"})
        _dimension(h, "v", v, {"long_name": "chart coordinate across the strip"})
        for key in ("u", "v"):
            h[key].attrs["units"] = "lattice length units"
        charge, index = snap.get("vortex_charge"), snap.get("vortex_index")
        ref = charge if isinstance(charge, torch.Tensor) else index
        if isinstance(ref, torch.Tensor) and ref.dim() >= 1:
            self.vortices = int(ref.shape[0])
            _dimension(h, "vortex", np.arange(self.vortices, dtype=np.int64))
        names = snap.get("control_names")
        values = snap.get("values")
        if (
            isinstance(names, (list, tuple))
            and all(isinstance(n, str) for n in names)
            and isinstance(values, torch.Tensor)
            and tuple(values.shape) == (psi.shape[0], len(names))
        ):
            self.controls = len(names)
            _dimension(h, "control", np.array(list(names), dtype=_h5py().string_dtype()))

    def _dims_of(self, path: tuple[str, ...], shape: tuple[int, ...]) -> tuple[str, ...] | None:
        """Named dimensions of a tensor at ``path`` of ``shape``, or None (generic)."""
        if self.field_shape is None:
            return None
        batch = self.field_shape[0]
        if shape == self.field_shape:
            return _FIELD_DIMS
        if path in (("vortex_charge",), ("vortex_depth",)) and shape == (self.vortices,):
            return ("vortex",)
        if path == ("values",) and self.controls is not None:
            return ("env", "control")
        if shape == (batch,):
            return ("env",)
        return None

    # tensors --------------------------------------------------------------------------
    def tensor(self, path: tuple[str, ...], tensor: torch.Tensor) -> dict[str, Any]:
        """Write ``tensor``; return its entry of the layout."""
        key = "/".join(path)
        shape = tuple(int(n) for n in tensor.shape)
        entry: dict[str, Any] = {"dtype": _dtype_name(tensor.dtype), "shape": list(shape)}
        top = path[0] if len(path) == 1 else None
        if top in _VORTEX_COLUMNS and self.vortices is not None:
            names, long_names = _VORTEX_COLUMNS[top]
            if shape != (self.vortices, len(names)):
                raise ConfigError(
                    f"snapshot: {top} has shape {list(shape)}; expected "
                    f"[{self.vortices}, {len(names)}] (K from vortex_charge)"
                )
            data = _numpy(tensor, key)
            for column, (name, long_name) in enumerate(zip(names, long_names, strict=True)):
                _variable(
                    self.handle,
                    name,
                    np.ascontiguousarray(data[:, column]),
                    ("vortex",),
                    {"long_name": long_name},
                )
            entry.update(how="columns", vars=list(names))
            return entry
        name = {"values": "control_values", "time": "env_time"}.get(top or "", "_".join(path))
        dims = self._dims_of(path, shape)
        if dims is None:
            dims = tuple(f"{name}_dim{i}" for i in range(len(shape)))
            for dim, size in zip(dims, shape, strict=True):
                _dimension(self.handle, dim, np.arange(size, dtype=np.int64))
        long_name = _LONG_NAMES.get(name, key)
        data = _numpy(tensor, key)
        if tensor.is_complex():
            for part, values in (("real", data.real), ("imag", data.imag)):
                _variable(
                    self.handle,
                    f"{name}_{part}",
                    np.ascontiguousarray(values),
                    dims,
                    {"long_name": f"{part} part of {long_name}"},
                )
            entry.update(how="complex", vars=[f"{name}_real", f"{name}_imag"])
        else:
            _variable(self.handle, name, data, dims, {"long_name": long_name})
            entry.update(how="plain", vars=[name])
        return entry

    # the whole tree -------------------------------------------------------------------
    def skeleton(self, value: Any, path: tuple[str, ...]) -> Any:
        """``value`` with every tensor written and replaced by its layout entry."""
        where = "/".join(path) or "<root>"
        if isinstance(value, torch.Tensor):
            return {_TENSOR_TAG: self.tensor(path, value)}
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for key, item in value.items():
                if not isinstance(key, str) or key == _TENSOR_TAG:
                    raise ConfigError(f"snapshot key {key!r} under {where} must be a str")
                out[key] = self.skeleton(item, (*path, key))
            return out
        if isinstance(value, (list, tuple)):
            if any(isinstance(item, (torch.Tensor, Mapping)) for item in value):
                raise ConfigError(
                    f"snapshot key {where!r}: a list may hold only str, numbers, bools, None "
                    "and lists of them (put tensors under their own key)"
                )
            return [self.skeleton(item, (*path, str(i))) for i, item in enumerate(value)]
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise ConfigError(
            f"snapshot key {where!r} has type {type(value).__name__}; a snapshot holds "
            "tensors, str, numbers, bools, None and lists/mappings of them"
        )

    def global_attrs(self) -> None:
        """Chart, twist, step and per-env controls as global attributes."""
        snap, h = self.snapshot, self.handle
        chart = snap.get("chart")
        if isinstance(chart, Mapping):
            _chart_attrs(h, chart)
        step = snap.get("step")
        if isinstance(step, int) and not isinstance(step, bool):
            h.attrs["step"] = np.int64(step)
        names, values = snap.get("control_names"), snap.get("values")
        if self.controls is not None:
            assert isinstance(names, (list, tuple)) and isinstance(values, torch.Tensor)
            h.attrs["control_names"] = _attr_value("control_names", list(names))
            table = values.detach().cpu().to(torch.float64).numpy()
            for column, name in enumerate(names):
                h.attrs[f"control_{name}"] = table[:, column]
        twist = _twist_of(snap)
        if twist is not None:
            h.attrs["twist"] = twist


def _twist_of(snap: Mapping[str, Any]) -> Any:
    """The twist (radians): scalar of a strip, or one per env of an ensemble."""
    chart = snap.get("chart")
    if isinstance(chart, Mapping) and isinstance(chart.get("twist"), (int, float)):
        return np.float64(chart["twist"])
    lattice = snap.get("lattice")
    if isinstance(lattice, Mapping):
        if isinstance(lattice.get("twist"), (int, float)):
            return np.float64(lattice["twist"])
        geometry = lattice.get("geometry")
        if isinstance(geometry, Mapping) and isinstance(geometry.get("twist"), list):
            return np.asarray(geometry["twist"], dtype=np.float64)
    names, values = snap.get("control_names"), snap.get("values")
    if (
        isinstance(names, (list, tuple))
        and "twist" in names
        and isinstance(values, torch.Tensor)
        and values.dim() == 2
        and values.shape[1] == len(names)
    ):
        return values[:, list(names).index("twist")].to(torch.float64).numpy()
    return None


def _snapshot_bytes(snapshot: Mapping[str, Any], attrs: Mapping[str, Any] | None) -> bytes:
    """The HDF5 file image of ``snapshot``."""
    h5py = _h5py()
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        writer = _SnapshotWriter(handle, snapshot)
        writer.plan()
        layout = writer.skeleton(dict(snapshot), ())
        handle.attrs["title"] = "HHmL field snapshot"
        handle.attrs["hhml_format"] = SNAPSHOT_FORMAT
        handle.attrs["hhml_format_version"] = np.int64(FORMAT_VERSION)
        handle.attrs["hhml_version"] = _hhml_version()
        writer.global_attrs()
        _set_attrs(handle, attrs)
        handle.attrs["hhml_layout"] = json.dumps(layout, allow_nan=True)
    return buffer.getvalue()


def write_snapshot_h5(
    path: str | os.PathLike[str],
    snapshot: Mapping[str, Any],
    *,
    attrs: Mapping[str, Any] | None = None,
) -> Path:
    """Write a snapshot dict to ``path`` as HDF5, atomically.

    Parameters
    ----------
    path
        Target file (conventionally ``step_<n>.h5``); replaced whole or not at all.
    snapshot
        A dict as ``MobiusVortexCore.snapshot()`` returns it, plus ``step``: ``psi``
        ``[B, S, nu, nv]`` complex with ``chart`` gets the named layout of the module
        docstring; other tensors of shape ``[B]`` or ``[B, S, nu, nv]`` are placed on
        ``env`` / ``(env, strip, u, v)``; any other tensor ``x`` gets dimensions
        ``x_dim0, x_dim1, ...`` (so does every tensor of a dict without ``chart``).
        Nested dicts are flattened into names joined by ``_`` (``measured_norm``).
        Non-tensor values (str, numbers, bools, None, lists and dicts of them) are kept
        in the ``hhml_layout`` attribute; tuples come back as lists.
    attrs
        Extra global attributes: str, int, float, bool (stored as 0/1), a mapping
        (stored as JSON text) or a list of str or numbers. Names the writer sets
        (chart keys, ``step``, ``control_*``, ``hhml_*``, ``title``) are refused.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ConfigError
        A value that cannot be stored, a ``psi`` whose shape disagrees with the chart,
        two keys mapping to one variable name, or a reserved attribute name.
    """
    return atomic_write_bytes(path, _snapshot_bytes(snapshot, attrs))


# ---------------------------------------------------------------------------------------
# reading


def _open_h5(path: Path) -> Any:
    h5py = _h5py()
    try:
        return h5py.File(path, "r", locking=False)
    except FileNotFoundError:
        raise CheckpointError(f"no file at {path}") from None
    except OSError as exc:
        raise CheckpointError(f"{path} is corrupted or not an HDF5 file: {exc}") from None


def _read_tensor(handle: Any, entry: Mapping[str, Any], where: str) -> torch.Tensor:
    dtype = _torch_dtype(str(entry["dtype"]), where)
    shape = tuple(int(n) for n in entry["shape"])
    names = [str(n) for n in entry["vars"]]
    missing = [n for n in names if n not in handle]
    if missing:
        raise CheckpointError(f"{where}: the layout names missing variable(s) {missing}")
    arrays = [np.asarray(handle[n][()]) for n in names]
    how = entry["how"]
    if how == "complex":
        real, imag = arrays
        data = np.empty(real.shape, dtype=np.result_type(real.dtype, np.complex64))
        data.real, data.imag = real, imag
    elif how == "columns":
        data = np.stack(arrays, axis=1) if arrays[0].size else np.zeros((0, len(arrays)))
        data = data.astype(arrays[0].dtype, copy=False)
    elif how == "plain":
        data = arrays[0]
    else:
        raise CheckpointError(f"{where}: unknown layout kind {how!r}")
    if data.size != math.prod(shape):
        raise CheckpointError(
            f"{where}: variable(s) {names} hold {data.size} values; the layout says {shape}"
        )
    return torch.from_numpy(np.ascontiguousarray(data).reshape(shape)).to(dtype)


def _rebuild(handle: Any, value: Any, where: str) -> Any:
    if isinstance(value, dict):
        if _TENSOR_TAG in value:
            return _read_tensor(handle, value[_TENSOR_TAG], where)
        return {k: _rebuild(handle, v, f"{where}/{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_rebuild(handle, v, where) for v in value]
    return value


def _format_of(handle: Any) -> str:
    value = handle.attrs.get("hhml_format")
    return value.decode() if isinstance(value, bytes) else str(value)


def _read_h5_snapshot(path: Path) -> dict[str, Any]:
    with _open_h5(path) as handle:
        kind = _format_of(handle)
        if kind != SNAPSHOT_FORMAT:
            raise CheckpointError(
                f"{path}: hhml_format = {kind!r}; expected {SNAPSHOT_FORMAT!r} (a trajectory "
                "is read with read_trajectory)"
            )
        version = int(handle.attrs.get("hhml_format_version", -1))
        if version > FORMAT_VERSION:
            raise CheckpointError(
                f"{path}: format version {version} is newer than this HHmL reads "
                f"({FORMAT_VERSION}); upgrade hhml"
            )
        try:
            layout = json.loads(handle.attrs["hhml_layout"])
        except (KeyError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{path}: no readable hhml_layout attribute ({exc})") from None
        if not isinstance(layout, dict):
            raise CheckpointError(f"{path}: hhml_layout must be a JSON object")
        try:
            data = _rebuild(handle, layout, str(path))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: malformed layout entry ({exc!r})") from None
    assert isinstance(data, dict)
    return data


def _read_pt_snapshot(path: Path) -> dict[str, Any]:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated/foreign files
        raise CheckpointError(f"{path} is corrupted or not a torch file: {exc}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} does not hold a snapshot dict ({type(data).__name__})")
    return data


def read_snapshot(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a snapshot written by :func:`write_snapshot_h5` or an old ``step_<n>.pt``.

    The format is recognised by content (the HDF5 signature), not by the suffix; a
    ``.pt`` file is read with ``torch.load(weights_only=True, map_location="cpu")``.

    Returns
    -------
    dict
        The keys that were written, tensors on the CPU with their original dtype and
        shape (``psi`` ``[B, S, nu, nv]`` complex64/128 bit for bit), other values as
        written (tuples as lists).

    Raises
    ------
    CheckpointError
        No file at ``path``, a corrupted file, a foreign HDF5 file or a newer format.
    """
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"no file at {file}")
    if is_hdf5_file(file):
        return _read_h5_snapshot(file)
    return _read_pt_snapshot(file)


def convert_pt_snapshot(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Convert an old ``step_<n>.pt`` snapshot to HDF5 (the ``.pt`` file is kept).

    Parameters
    ----------
    path
        The ``.pt`` snapshot (read with ``torch.load(weights_only=True)``).
    out
        Target; default ``path`` with the suffix ``.h5``.
    overwrite
        Replace an existing ``out``.

    Returns
    -------
    Path
        The HDF5 file written.

    Raises
    ------
    CheckpointError
        ``path`` is missing or not a torch snapshot dict.
    ConfigError
        ``out`` exists and ``overwrite`` is false, or the snapshot holds a value HDF5
        cannot store.
    """
    source = Path(path)
    target = Path(out) if out is not None else source.with_suffix(".h5")
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} exists; pass overwrite=True to replace it")
    if not source.is_file():
        raise CheckpointError(f"no file at {source}")
    data = _read_pt_snapshot(source)
    if "step" not in data:
        stem = source.stem
        if stem.startswith("step_") and stem[5:].isascii() and stem[5:].isdigit():
            data = {"step": int(stem[5:]), **data}
    return write_snapshot_h5(target, data, attrs={"converted_from": source.name})


# ---------------------------------------------------------------------------------------
# trajectories


class FieldWriter:
    """Append fields ``psi [B, S, nu, nv]`` along an unlimited ``time`` dimension.

    The file has the dimensions ``time`` (unlimited), ``env``, ``strip``, ``u``, ``v``
    with coordinates, the variables ``psi_real(time, env, strip, u, v)`` and
    ``psi_imag`` (chunked one frame per chunk, extended by h5py's resizable datasets)
    and the chart, twist and ``attrs`` as global attributes. The file is flushed after
    every frame; a crash loses at most the frame being written (the file is not
    written atomically as a whole, unlike snapshots).

    Parameters
    ----------
    path
        The ``.h5`` file.
    chart
        ``nu, nv, strips, length, half_width`` (and ``topology``, ``edge``, ``metric``,
        ``strip_spacing``, ``twist``), e.g. from :func:`chart_from_lattice`.
    num_envs
        ``B``.
    dtype
        ``torch.complex64`` (stored as float32 parts) or ``torch.complex128``.
    attrs
        Extra global attributes (parameters, ...), as for :func:`write_snapshot_h5`.
    mode
        ``"w"`` creates (or truncates) the file; ``"a"`` appends to an existing
        trajectory, which must have the same chart sizes, ``num_envs`` and dtype.

    Raises
    ------
    ConfigError
        A bad chart or dtype, or (``mode="a"``) a file that does not match.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        chart: Mapping[str, Any],
        *,
        num_envs: int = 1,
        dtype: torch.dtype = torch.complex64,
        attrs: Mapping[str, Any] | None = None,
        mode: Literal["w", "a"] = "w",
    ) -> None:
        nu, nv, strips, _, _ = _chart_ints(chart, "FieldWriter")
        if dtype not in (torch.complex64, torch.complex128):
            raise ConfigError(f"FieldWriter dtype = {dtype}; use torch.complex64 or complex128")
        if num_envs < 1:
            raise ConfigError(f"FieldWriter num_envs = {num_envs}; it must be >= 1")
        if mode not in ("w", "a"):
            raise ConfigError(f"FieldWriter mode = {mode!r}; use 'w' or 'a'")
        self.path = Path(path)
        self.shape = (num_envs, strips, nu, nv)
        self.dtype = dtype
        self._real = np.float32 if dtype == torch.complex64 else np.float64
        h5py = _h5py()
        if mode == "a":
            if not self.path.is_file():
                raise ConfigError(f"FieldWriter mode='a': no trajectory at {self.path}")
            self._handle = h5py.File(self.path, "a")
            self._check_existing()
        else:
            self._handle = h5py.File(self.path, "w")
            self._create(chart, attrs)
        self._last_time = float(self._handle["time"][-1]) if self.frames else -math.inf

    def _create(self, chart: Mapping[str, Any], attrs: Mapping[str, Any] | None) -> None:
        h = self._handle
        batch, strips = self.shape[:2]
        u, v = chart_coordinates(chart)
        _dimension(
            h,
            "time",
            np.zeros(0, dtype=np.float64),
            {"long_name": "simulation time", "units": "simulation time units"},
            unlimited=True,
        )
        _dimension(h, "env", np.arange(batch, dtype=np.int64), {"long_name": "env"})
        _dimension(h, "strip", np.arange(strips, dtype=np.int64), {"long_name": "strip"})
        _dimension(h, "u", u, {"long_name": "chart coordinate along the centre line"})
        _dimension(h, "v", v, {"long_name": "chart coordinate across the strip"})
        for key in ("u", "v"):
            h[key].attrs["units"] = "lattice length units"
        for part in ("real", "imag"):
            _variable(
                h,
                f"psi_{part}",
                np.zeros((0, *self.shape), dtype=self._real),
                ("time", *_FIELD_DIMS),
                {"long_name": f"{part} part of complex field psi"},
                maxshape=(None, *self.shape),
                chunks=(1, *self.shape),
            )
        h.attrs["title"] = "HHmL field trajectory"
        h.attrs["hhml_format"] = TRAJECTORY_FORMAT
        h.attrs["hhml_format_version"] = np.int64(FORMAT_VERSION)
        h.attrs["hhml_version"] = _hhml_version()
        _chart_attrs(h, chart)
        _set_attrs(h, attrs)
        h.flush()

    def _check_existing(self) -> None:
        h = self._handle
        kind = _format_of(h)
        found = tuple(h["psi_real"].shape[1:]) if "psi_real" in h else None
        dtype = h["psi_real"].dtype if "psi_real" in h else None
        if kind != TRAJECTORY_FORMAT or found != self.shape or dtype != self._real:
            h.close()
            raise ConfigError(
                f"FieldWriter mode='a': {self.path} is {kind!r} with psi {found} {dtype}; "
                f"expected {TRAJECTORY_FORMAT!r} with {self.shape} {np.dtype(self._real)}"
            )

    @property
    def frames(self) -> int:
        """Frames written so far (the length of ``time``)."""
        return int(self._handle["time"].shape[0])

    def append(self, psi: torch.Tensor, time: float) -> int:
        """Append one frame.

        Parameters
        ----------
        psi
            Complex field ``[B, S, nu, nv]``; ``[S, nu, nv]`` or ``[nu, nv]`` when the
            missing leading sizes are 1. Converted to the writer's dtype (on the CPU).
        time
            Simulation time of the frame; finite and larger than the previous frame's.

        Returns
        -------
        int
            The frame's index along ``time``.

        Raises
        ------
        ConfigError
            A shape that does not match, a real ``psi``, a time that is not finite or
            not increasing, or a closed writer.
        """
        if not self._handle:
            raise ConfigError(f"FieldWriter for {self.path} is closed")
        if not psi.is_complex():
            raise ConfigError(f"FieldWriter.append: psi has dtype {psi.dtype}; it must be complex")
        lead = 4 - psi.dim()
        if not (
            lead >= 0
            and tuple(psi.shape) == self.shape[lead:]
            and all(n == 1 for n in self.shape[:lead])
        ):
            raise ConfigError(
                f"FieldWriter.append: psi has shape {tuple(psi.shape)}; expected "
                f"{list(self.shape)} (B, S, nu, nv)"
            )
        t = float(time)
        if not math.isfinite(t) or t <= self._last_time:
            raise ConfigError(
                f"FieldWriter.append: time = {t} must be finite and > the previous frame's "
                f"{self._last_time}"
            )
        data = psi.detach().to("cpu", self.dtype).reshape(self.shape).numpy()
        h = self._handle
        index = self.frames
        h["time"].resize((index + 1,))
        h["time"][index] = t
        for part, values in (("real", data.real), ("imag", data.imag)):
            ds = h[f"psi_{part}"]
            ds.resize((index + 1, *self.shape))
            ds[index] = values
        h.flush()
        self._last_time = t
        return index

    def close(self) -> None:
        """Flush and close the file (idempotent)."""
        if self._handle:
            self._handle.close()

    def __enter__(self) -> FieldWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_trajectory(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a trajectory written by :class:`FieldWriter`.

    Returns
    -------
    dict
        ``psi`` ``[T, B, S, nu, nv]`` complex tensor, ``time`` ``[T]`` float64 tensor,
        ``u`` ``[nu]`` and ``v`` ``[nv]`` float64 tensors and ``attrs`` (the global
        attributes: chart, twist, version, the writer's ``attrs``).

    Raises
    ------
    CheckpointError
        No file, a corrupted file or not an HHmL trajectory.
    """
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"no file at {file}")
    with _open_h5(file) as handle:
        kind = _format_of(handle)
        if kind != TRAJECTORY_FORMAT:
            raise CheckpointError(f"{file}: hhml_format = {kind!r}; expected {TRAJECTORY_FORMAT!r}")
        real = np.asarray(handle["psi_real"][()])
        imag = np.asarray(handle["psi_imag"][()])
        psi = np.empty(real.shape, dtype=np.result_type(real.dtype, np.complex64))
        psi.real, psi.imag = real, imag
        attrs = {key: _plain(value) for key, value in handle.attrs.items()}
        return {
            "psi": torch.from_numpy(psi),
            "time": torch.from_numpy(np.asarray(handle["time"][()], dtype=np.float64)),
            "u": torch.from_numpy(np.asarray(handle["u"][()], dtype=np.float64)),
            "v": torch.from_numpy(np.asarray(handle["v"][()], dtype=np.float64)),
            "attrs": attrs,
        }


def _plain(value: Any) -> Any:
    """An attribute as a Python value (str, int, float or a list of them)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return [_plain(item) for item in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value
