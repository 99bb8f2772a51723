"""Tests of ``hhml.monitoring.snapshot_image``: a snapshot renders to a PNG of the expected
size; unreadable snapshots and out-of-range envs raise ``CheckpointError``."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch

from hhml.errors import CheckpointError
from hhml.monitoring.snapshot_image import load_snapshot, render_snapshot_png


def write_snapshot(path: Path, strips: int = 2) -> Path:
    torch.manual_seed(0)
    psi = torch.polar(torch.rand(3, strips, 16, 6) + 0.1, torch.rand(3, strips, 16, 6) * 6.28)
    torch.save(
        {
            "step": 1000,
            "psi": psi,
            "vortex_index": torch.tensor([[0, 0, 3, 2], [0, 1, 5, 1], [2, 0, 1, 1]]),
            "vortex_position": torch.tensor([[1.2, 0.1], [2.0, -0.5], [0.5, 0.0]]),
            "vortex_charge": torch.tensor([1, -1, 1]),
            "chart": {"length": 6.28, "half_width": 1.0, "strips": strips},
        },
        path,
    )
    return path


def test_render_gives_a_png_with_one_row_per_strip(tmp_path: Path) -> None:
    import matplotlib.image

    path = write_snapshot(tmp_path / "step_0000001000.pt")
    png = render_snapshot_png(path, env=0, dpi=50)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert image.shape[:2] == (round((2.4 * 2 + 0.4) * 50), 10 * 50)
    one_strip = render_snapshot_png(write_snapshot(tmp_path / "one.pt", strips=1), dpi=50)
    assert matplotlib.image.imread(io.BytesIO(one_strip), format="png").shape[0] == round(
        (2.4 + 0.4) * 50
    )


def test_bad_snapshots_raise_checkpoint_error(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path / "s.pt")
    with pytest.raises(CheckpointError, match="env 3 out of range"):
        render_snapshot_png(path, env=3)
    (tmp_path / "torn.pt").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_snapshot(tmp_path / "torn.pt")
    torch.save({"psi": torch.zeros(3)}, tmp_path / "flat.pt")
    with pytest.raises(CheckpointError, match=r"\[B, S, nu, nv\]"):
        load_snapshot(tmp_path / "flat.pt")
    with pytest.raises(CheckpointError, match="no such file"):
        load_snapshot(tmp_path / "missing.pt")
