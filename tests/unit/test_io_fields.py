"""Field snapshots and trajectories as HDF5 (``hhml.io.fields``): exact round trips,
the xarray view in a process without hhml or torch, the trajectory writer, the trainer's
``.h5`` snapshots read by hhml-analyze and the dashboard, and old ``.pt`` snapshots."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from tiny_runs import TINY_MOBIUS_RUN

from hhml.analysis.loading import load_run, load_snapshot, open_input
from hhml.cli.train import main as train_main
from hhml.core.mobius import MobiusStrip
from hhml.errors import CheckpointError, ConfigError
from hhml.io.fields import (
    FieldWriter,
    chart_coordinates,
    chart_from_lattice,
    convert_pt_snapshot,
    read_snapshot,
    read_trajectory,
    write_snapshot_h5,
)
from hhml.monitoring.runs import latest_snapshot
from hhml.monitoring.snapshot_image import render_snapshot_png

TINY = TINY_MOBIUS_RUN


def synthetic_snapshot(dtype: torch.dtype, vortices: int = 5) -> dict[str, Any]:
    """A snapshot dict with the keys of ``MobiusVortexCore.snapshot()`` (B=3, S=2)."""
    gen = torch.Generator().manual_seed(1)
    b, s, nu, nv = 3, 2, 12, 5
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    psi = torch.complex(
        torch.randn(b, s, nu, nv, generator=gen, dtype=real),
        torch.randn(b, s, nu, nv, generator=gen, dtype=real),
    )
    names = ["aspect", "twist", "damping"]
    return {
        "step": 1200,
        "psi": psi,
        "vortex_index": torch.randint(0, 5, (vortices, 4), generator=gen),
        "vortex_position": torch.rand(vortices, 2, generator=gen),
        "vortex_charge": torch.randint(-2, 3, (vortices,), generator=gen),
        "vortex_depth": torch.rand(vortices, generator=gen),
        "values": torch.rand(b, len(names), generator=gen, dtype=torch.float64),
        "control_names": names,
        "time": torch.rand(b, generator=gen, dtype=torch.float64),
        "lattice": {"geometry": {"twist": [0.1, -0.2, 0.3]}, "size": b, "strips": s},
        "chart": {
            "nu": nu,
            "nv": nv,
            "strips": s,
            "length": 7.5,
            "half_width": 1.25,
            "topology": "mobius",
            "edge": "neumann",
            "metric": "embedded",
            "strip_spacing": 2.0,
        },
        "area_weights": torch.rand(b, s, nu, nv, generator=gen),
        "measured": {
            "norm": torch.rand(b, generator=gen, dtype=torch.float64),
            "alive": torch.tensor([True, False, True]),
        },
    }


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Exact equality of two snapshot trees: keys in order, tensors' dtype, shape, values."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), where
        assert (a.dtype, a.shape) == (b.dtype, b.shape), where
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for key in a:
            assert_same(a[key], b[key], f"{where}/{key}")
    else:
        assert type(a) is type(b) and a == b, where


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("vortices", [5, 0])
def test_round_trip_is_exact(tmp_path: Path, dtype: torch.dtype, vortices: int) -> None:
    snap = synthetic_snapshot(dtype, vortices)
    path = write_snapshot_h5(tmp_path / "step_0000001200.h5", snap, attrs={"run": "r1"})
    back = read_snapshot(path)
    # bit-exact: measured error 0 (real and imaginary parts stored in their own dtype)
    assert_same(snap, back)
    assert back["psi"].dtype == dtype
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary file


def test_chart_coordinates_are_the_strip_nodes() -> None:
    strip = MobiusStrip(10, 7, length=5.0, half_width=1.5, twist=0.25, dtype=torch.complex128)
    chart = chart_from_lattice(strip)
    assert chart["twist"] == 0.25 and chart["strips"] == 1
    u, v = chart_coordinates(chart)
    # the same formula as the lattice: equal bit for bit (tolerance 0, error 0)
    assert np.array_equal(u, strip.u.numpy()) and np.array_equal(v, strip.v.numpy())


def test_field_writer_appends_along_time(tmp_path: Path) -> None:
    chart = chart_from_lattice(MobiusStrip(8, 4, twist=0.5))
    gen = torch.Generator().manual_seed(0)
    frames = [torch.randn(2, 1, 8, 4, dtype=torch.complex64, generator=gen) for _ in range(4)]
    path = tmp_path / "traj.h5"
    with FieldWriter(path, chart, num_envs=2, attrs={"diffusion": 0.05}) as writer:
        assert [writer.append(f, t) for f, t in zip(frames[:3], (0.1, 0.2, 0.3), strict=True)] == [
            0,
            1,
            2,
        ]
        with pytest.raises(ConfigError, match="must be finite and >"):
            writer.append(frames[3], 0.3)
        with pytest.raises(ConfigError, match=r"psi has shape \(1, 8, 4\)"):
            writer.append(frames[3][0], 0.4)
    with FieldWriter(path, chart, num_envs=2, mode="a") as writer:
        assert writer.frames == 3 and writer.append(frames[3], 0.4) == 3
    with pytest.raises(ConfigError, match="expected 'hhml-field-trajectory'"):
        FieldWriter(path, chart, num_envs=3, mode="a")
    data = read_trajectory(path)
    assert torch.equal(data["psi"], torch.stack(frames))  # exact (error 0)
    assert torch.equal(data["time"], torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64))
    assert data["attrs"]["diffusion"] == 0.05 and data["attrs"]["twist"] == 0.5
    # one env, one strip: a [nu, nv] field is accepted
    with FieldWriter(tmp_path / "one.h5", chart) as writer:
        writer.append(frames[0][0, 0], 0.0)
    assert read_trajectory(tmp_path / "one.h5")["psi"].shape == (1, 1, 1, 8, 4)


def test_bad_inputs_raise_named_errors(tmp_path: Path) -> None:
    snap = synthetic_snapshot(torch.complex64)
    with pytest.raises(ConfigError, match="'topology' is set by the writer"):
        write_snapshot_h5(tmp_path / "a.h5", snap, attrs={"topology": "torus"})
    with pytest.raises(ConfigError, match=r"psi has shape \(3, 2, 12, 4\)"):
        write_snapshot_h5(tmp_path / "b.h5", {**snap, "psi": snap["psi"][..., :4]})
    with pytest.raises(ConfigError, match="'extra' has type object"):
        write_snapshot_h5(tmp_path / "c.h5", {**snap, "extra": object()})
    assert not list(tmp_path.iterdir())  # nothing written
    import h5py

    with h5py.File(tmp_path / "foreign.h5", "w") as handle:
        handle["x"] = np.zeros(3)
    with pytest.raises(CheckpointError, match="hhml_format = 'None'"):
        read_snapshot(tmp_path / "foreign.h5")
    with pytest.raises(CheckpointError, match="no file at"):
        read_snapshot(tmp_path / "missing.h5")


def test_import_does_not_load_h5py() -> None:
    code = "import sys, hhml, hhml.io.fields; assert 'h5py' not in sys.modules, 'h5py'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "tiny"
    result = CliRunner().invoke(
        train_main, [*TINY, "--device", "cpu", "--run-dir", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return out


#: Runs in a fresh interpreter that may import only h5py, xarray and numpy.
XARRAY_CHECK = textwrap.dedent("""
    import json, sys
    import numpy as np
    import xarray as xr

    snap_path, traj_path, expected_path = sys.argv[1:4]
    expected = json.load(open(expected_path))
    with xr.open_dataset(snap_path, engine="h5netcdf") as ds:
        assert ds["psi_real"].dims == ("env", "strip", "u", "v"), ds["psi_real"].dims
        assert ds["vortex_charge"].dims == ("vortex",)
        assert ds["control_values"].dims == ("env", "control")
        assert np.array_equal(ds["u"].values, np.array(expected["u"]))
        assert np.array_equal(ds["v"].values, np.array(expected["v"]))
        assert list(ds["control"].values) == expected["control_names"]
        assert ds.attrs["topology"] == "mobius" and ds.attrs["metric"] == "embedded"
        assert np.array_equal(np.atleast_1d(ds.attrs["twist"]), np.array(expected["twist"]))
        assert ds.attrs["hhml_version"] == expected["version"]
        assert json.loads(ds.attrs["config"])["lattice"]["nu"] == 16
        psi = ds["psi_real"].values + 1j * ds["psi_imag"].values
        assert np.array_equal(psi, np.load(expected["psi"]))
    with xr.open_dataset(traj_path, engine="h5netcdf") as tr:
        assert tr["psi_real"].dims == ("time", "env", "strip", "u", "v")
        assert np.array_equal(tr["time"].values, np.array([0.0, 0.5]))
    assert "hhml" not in sys.modules and "torch" not in sys.modules
    print("ok")
    """)


def test_trainer_snapshot_opens_with_xarray_without_hhml(run_dir: Path, tmp_path: Path) -> None:
    import hhml

    snaps = sorted((run_dir / "snapshots").iterdir())
    assert [p.name for p in snaps] == ["step_0000000020.h5", "step_0000000040.h5"]
    data = read_snapshot(snaps[-1])
    chart = data["chart"]
    strip = MobiusStrip(
        chart["nu"], chart["nv"], chart["length"], chart["half_width"], dtype=torch.complex128
    )
    traj = tmp_path / "traj.h5"
    with FieldWriter(traj, chart, num_envs=2, dtype=torch.complex64) as writer:
        writer.append(data["psi"], 0.0)
        writer.append(data["psi"], 0.5)
    np.save(tmp_path / "psi.npy", data["psi"].numpy())
    expected = {
        "u": strip.u.tolist(),
        "v": strip.v.tolist(),
        "twist": data["lattice"]["geometry"]["twist"],
        "control_names": data["control_names"],
        "version": hhml.__version__,
        "psi": str(tmp_path / "psi.npy"),
    }
    (tmp_path / "expected.json").write_text(json.dumps(expected))
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            XARRAY_CHECK,
            str(snaps[-1]),
            str(traj),
            str(tmp_path / "expected.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_analyze_and_dashboard_read_h5_and_old_pt(run_dir: Path, tmp_path: Path) -> None:
    from hhml.analysis.report import build_report

    run = load_run(run_dir)
    assert [p.suffix for p in run.snapshots] == [".h5", ".h5"]
    snap = load_snapshot(run.snapshots[-1])
    assert snap.step == 40 and snap.psi.shape == (2, 2, 16, 6)
    kind, again = open_input(run.snapshots[-1])
    assert kind == "snapshot" and torch.equal(again.psi, snap.psi)
    doc = build_report(run_dir, tmp_path / "report", progress=False)
    counts = [int((snap.vortex_index[:, 0] == b).sum()) for b in range(2)]
    assert doc.numbers["snapshot"]["counts_per_env"] == counts
    png = render_snapshot_png(run.snapshots[-1], env=1, dpi=40)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")

    # an old run: .pt snapshots, then one converted; a mixed directory sorts by step
    old = tmp_path / "old"
    (old / "snapshots").mkdir(parents=True)
    (old / "config.yaml").write_bytes((run_dir / "config.yaml").read_bytes())
    first = read_snapshot(run.snapshots[0])
    torch.save(first, old / "snapshots" / "step_0000000020.pt")
    torch.save(read_snapshot(run.snapshots[-1]), old / "snapshots" / "step_0000000040.pt")
    pt_snap = load_snapshot(old / "snapshots" / "step_0000000020.pt")
    assert pt_snap.step == 20 and torch.equal(pt_snap.psi, first["psi"])
    assert render_snapshot_png(old / "snapshots" / "step_0000000020.pt", dpi=40) == (
        render_snapshot_png(run.snapshots[0], dpi=40)
    )
    assert latest_snapshot(old / "snapshots") == old / "snapshots" / "step_0000000040.pt"
    converted = convert_pt_snapshot(old / "snapshots" / "step_0000000040.pt")
    assert converted == old / "snapshots" / "step_0000000040.h5"
    assert_same(read_snapshot(converted), read_snapshot(run.snapshots[-1]))
    with pytest.raises(ConfigError, match="exists"):
        convert_pt_snapshot(old / "snapshots" / "step_0000000040.pt")
    assert [p.name for p in load_run(old).snapshots] == [
        "step_0000000020.pt",
        "step_0000000040.h5",
    ]
    assert latest_snapshot(old / "snapshots") == converted
