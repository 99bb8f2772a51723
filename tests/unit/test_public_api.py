"""``import hhml`` gives the names a user needs, lazily; ``plot_field`` draws what it is given."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import hhml
from hhml.core.mobius import MobiusStrip, TokamakStack
from hhml.core.resonance import Simulator, detect_vortices


def test_import_hhml_is_fast_and_does_not_load_torch() -> None:
    code = "import sys, hhml; print('torch' in sys.modules, hhml.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "False"


def test_the_public_names_are_the_library_objects() -> None:
    from hhml.analysis.loading import load_run
    from hhml.config.schema import FieldParams
    from hhml.plotting import plot_field

    assert hhml.MobiusStrip is MobiusStrip and hhml.TokamakStack is TokamakStack
    assert hhml.Simulator is Simulator and hhml.detect_vortices is detect_vortices
    assert hhml.FieldParams is FieldParams and hhml.plot_field is plot_field
    assert hhml.load_run is load_run
    assert set(hhml.__all__) <= set(dir(hhml))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        hhml.Nope  # noqa: B018


def _scatter_points(ax: object) -> int:
    return sum(len(c.get_offsets()) for c in ax.collections)  # type: ignore[attr-defined]


def test_plot_field_draws_amplitude_phase_and_every_vortex_by_sign() -> None:
    strip = MobiusStrip(48, 12)
    psi = Simulator(strip, hhml.FieldParams(), seed=0).step(40)
    vortices = detect_vortices(psi, strip)
    fig = hhml.plot_field(psi, strip, vortices)
    amp_ax, phase_ax = fig.axes[0], fig.axes[1]
    image = amp_ax.images[0].get_array()
    np.testing.assert_array_equal(image, np.abs(psi.to(torch.complex128).numpy()).T)
    phase = phase_ax.images[0].get_array()
    np.testing.assert_array_equal(phase, np.angle(psi.to(torch.complex128).numpy()).T)
    assert amp_ax.images[0].get_extent() == [0.0, strip.length, -1.0, 1.0]
    assert _scatter_points(amp_ax) == len(vortices) == _scatter_points(phase_ax)
    pos, neg = int((vortices.charge > 0).sum()), int((vortices.charge < 0).sum())
    assert fig._suptitle.get_text() == f"vortices: {pos} ▲ (+), {neg} ▼ (−)"


def test_plot_field_picks_one_env_and_strip_of_a_batched_stack() -> None:
    stack = TokamakStack(2, 24, 8)
    sim = Simulator(stack, hhml.FieldParams(), seed=1, batch=3)
    psi = sim.step(20)  # [3, 2, 24, 8]
    vortices = detect_vortices(psi, stack)
    fig = hhml.plot_field(psi, stack, vortices, env=2)
    image_axes = [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]
    assert len([ax for ax in image_axes if ax.images]) >= 4
    expected = int(((vortices.index[:, 0] == 2)).sum())
    drawn = sum(_scatter_points(ax) for ax in fig.axes[0:4:2])  # amplitude panels
    assert drawn == expected
    with pytest.raises(ValueError, match="expected \\[S, nu, nv\\]"):
        hhml.plot_field(psi[0, 0], stack)


def test_a_vortex_set_repr_is_a_summary() -> None:
    strip = MobiusStrip(48, 12)
    vortices = detect_vortices(Simulator(strip, hhml.FieldParams(), seed=0).step(40), strip)
    text = repr(vortices)
    assert text.startswith(f"VortexSet({len(vortices)} vortices: ")
    assert "tensor(" not in text and len(text) < 120


def test_a_simulator_repr_is_a_summary() -> None:
    sim = Simulator(MobiusStrip(24, 8), hhml.FieldParams(), dt=0.05, seed=0)
    sim.step(5)
    assert repr(sim) == (
        "Simulator(MobiusStrip 24×8 mobius, batch=None, integrator='rk4', dt=0.05, t=0.25, "
        "steps=5, params=shared, device=cpu, dtype=torch.complex64)"
    )
