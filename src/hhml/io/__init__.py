"""Reading and writing HHmL data in portable formats.

:mod:`hhml.io.fields` holds field snapshots and trajectories as self-describing HDF5
files that ``xarray.open_dataset(path, engine="h5netcdf")`` opens with named
dimensions, coordinates and attributes (see ``docs/data_format.md``).

Public names: ``FieldWriter``, ``write_snapshot_h5``, ``read_snapshot``,
``read_trajectory``, ``convert_pt_snapshot``, ``chart_coordinates``,
``chart_from_lattice``, ``is_hdf5_file``.
"""

from __future__ import annotations

from hhml.io.fields import (
    FieldWriter,
    chart_coordinates,
    chart_from_lattice,
    convert_pt_snapshot,
    is_hdf5_file,
    read_snapshot,
    read_trajectory,
    write_snapshot_h5,
)

__all__ = [
    "FieldWriter",
    "chart_coordinates",
    "chart_from_lattice",
    "convert_pt_snapshot",
    "is_hdf5_file",
    "read_snapshot",
    "read_trajectory",
    "write_snapshot_h5",
]
