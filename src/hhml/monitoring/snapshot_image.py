"""Render a field snapshot (``snapshots/step_<n>.h5``, or ``.pt``) of one environment to a PNG.

One row per strip of the stack: the amplitude ``|ψ|`` and the phase ``arg ψ`` on
the strip's chart (u along the centre line, v across; cell-centred nodes, so the
image spans ``[0, L] × [-w, w]``), with the detected vortices marked by charge
(▲ positive, ▼ negative).

Uses matplotlib's object-oriented API (no pyplot state), so it is safe to call
from the server's worker threads; calls are serialised by a lock anyway. The panels
are placed by hand (fixed margins in inches) rather than by a layout engine, which
makes a render about 2.5 × faster; the server caches the images
(:mod:`~hhml.monitoring.snapshot_cache`).

Public names: ``render_snapshot_png``, ``load_snapshot``.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

import torch

from hhml.errors import CheckpointError
from hhml.plotting import draw_strip

__all__ = ["load_snapshot", "render_snapshot_png"]

_render_lock = threading.Lock()


def load_snapshot(path: Path) -> dict[str, Any]:
    """Load a snapshot file: HDF5 (``step_<n>.h5``, :func:`hhml.io.fields.read_snapshot`)
    or an old torch file (``step_<n>.pt``, ``weights_only=True``: no code runs from it).

    Raises
    ------
    CheckpointError
        The file is missing, unreadable, or lacks ``psi`` ``[B, S, nu, nv]``.
    """
    from hhml.io.fields import is_hdf5_file, read_snapshot

    try:
        if is_hdf5_file(path):
            data: Any = read_snapshot(path)
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise CheckpointError(f"snapshot {path}: no such file") from exc
    except CheckpointError as exc:
        raise CheckpointError(f"snapshot {path}: cannot be read ({exc})") from exc
    except Exception as exc:  # torch raises many types for a corrupt/unsafe file
        raise CheckpointError(f"snapshot {path}: cannot be read ({exc})") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"snapshot {path}: expected a dict, got {type(data).__name__}")
    psi = data.get("psi")
    if not isinstance(psi, torch.Tensor) or psi.dim() != 4:
        raise CheckpointError(f"snapshot {path}: 'psi' must be a [B, S, nu, nv] tensor")
    return data


# Fixed layout of the figure, in inches (no layout engine: it would cost about half of
# the render time measuring every tick label twice).
_LEFT, _RIGHT, _TOP, _BOTTOM = 0.95, 0.7, 0.5, 0.5  # margins
_COLUMN_GAP, _ROW_GAP = 1.15, 0.15  # between the two columns / the strips
_BAR_GAP, _BAR_WIDTH = 0.06, 0.12  # between a panel and its colour bar / its width


def _panel_axes(fig: Any, strips: int) -> tuple[list[list[Any]], list[list[Any]]]:
    """Image axes ``[strip][amplitude, phase]`` and their colour-bar axes, placed by hand.

    The panels of one column share the u axis; only the bottom row labels it.
    """
    width, height = fig.get_size_inches()
    panel_w = (width - _LEFT - _RIGHT - _COLUMN_GAP - 2 * (_BAR_GAP + _BAR_WIDTH)) / 2
    panel_h = (height - _TOP - _BOTTOM - (strips - 1) * _ROW_GAP) / strips
    axes: list[list[Any]] = []
    bars: list[list[Any]] = []
    for s in range(strips):
        bottom = height - _TOP - (s + 1) * panel_h - s * _ROW_GAP
        row: list[Any] = []
        row_bars: list[Any] = []
        for column in range(2):
            left = _LEFT + column * (panel_w + _BAR_GAP + _BAR_WIDTH + _COLUMN_GAP)
            ax = fig.add_axes(
                (left / width, bottom / height, panel_w / width, panel_h / height),
                sharex=axes[0][column] if axes else None,
            )
            if s < strips - 1:
                ax.tick_params(labelbottom=False)
            bar_left = left + panel_w + _BAR_GAP
            row.append(ax)
            row_bars.append(
                fig.add_axes(
                    (bar_left / width, bottom / height, _BAR_WIDTH / width, panel_h / height)
                )
            )
        axes.append(row)
        bars.append(row_bars)
    return axes, bars


def render_snapshot_png(path: Path, env: int = 0, *, dpi: int = 100) -> bytes:
    """|ψ| and phase of environment ``env`` of the snapshot at ``path``, as PNG bytes.

    Parameters
    ----------
    path
        A ``step_<n>.h5`` (or older ``.pt``) file written by the trainer.
    env
        Which environment of the batch to draw (``0 <= env < B``).
    dpi
        Resolution of the figure (the figure is 10 × 2.4·S inches).

    Raises
    ------
    CheckpointError
        The snapshot cannot be read, or ``env`` is out of range.
    """
    from matplotlib.figure import Figure

    data = load_snapshot(path)
    psi = data["psi"]
    batch, strips = int(psi.shape[0]), int(psi.shape[1])
    if not 0 <= env < batch:
        raise CheckpointError(f"snapshot {path}: env {env} out of range (0 to {batch - 1})")
    field = psi[env].to(torch.complex128).numpy()
    chart_value = data.get("chart")
    chart: dict[str, Any] = chart_value if isinstance(chart_value, dict) else {}
    length = float(chart.get("length", field.shape[1]))
    half_width = float(chart.get("half_width", field.shape[2] / 2))
    extent = (0.0, length, -half_width, half_width)

    index = data.get("vortex_index")
    position = data.get("vortex_position")
    charge = data.get("vortex_charge")
    have_vortices = all(isinstance(t, torch.Tensor) for t in (index, position, charge))

    with _render_lock:
        fig = Figure(figsize=(10.0, 2.4 * strips + 0.4), dpi=dpi)
        axes, colorbar_axes = _panel_axes(fig, strips)
        counts = [0, 0]
        for s in range(strips):
            ax_amp, ax_phase = axes[s]
            positions = charges = None
            if have_vortices:
                assert isinstance(index, torch.Tensor)
                assert isinstance(position, torch.Tensor)
                assert isinstance(charge, torch.Tensor)
                mask = (index[:, 0] == env) & (index[:, 1] == s)
                positions, charges = position[mask].double().numpy(), charge[mask].numpy()
            amp, phase, drawn = draw_strip(ax_amp, ax_phase, field[s], extent, positions, charges)
            fig.colorbar(amp, cax=colorbar_axes[s][0], label="|ψ|")
            fig.colorbar(phase, cax=colorbar_axes[s][1], label="arg ψ")
            counts[0] += drawn[0]
            counts[1] += drawn[1]
            label = f"strip {s}" if strips > 1 else "strip"
            ax_amp.set_ylabel(f"{label}\nv")
            ax_amp.set_title("|ψ|" if s == 0 else "", fontsize=10)
            ax_phase.set_title("arg ψ" if s == 0 else "", fontsize=10)
        for ax in axes[-1]:
            ax.set_xlabel("u")
        step = data.get("step")
        title = f"env {env}" + (f", step {int(step)}" if isinstance(step, int) else "")
        if have_vortices:
            title += f" — vortices: {counts[0]} ▲ (+), {counts[1]} ▼ (−)"
        fig.suptitle(title, fontsize=11, y=1 - 0.08 / fig.get_size_inches()[1], va="top")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    return buffer.getvalue()
