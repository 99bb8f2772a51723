"""The report's figures (matplotlib, Agg backend): one function per PNG.

Every function takes data already loaded by :mod:`hhml.analysis.loading` and writes one
PNG; it returns the caption that says what the figure shows, including its null model.

Public names: ``plot_rewards``, ``plot_parameters``, ``plot_density``, ``plot_agent``,
``plot_snapshot``, ``plot_curve_with_band``, ``plot_compare``, ``density_target``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure

from hhml.analysis.loading import RunData, Snapshot
from hhml.core.resonance.vortices import IID_PHASE_VORTEX_FRACTION

__all__ = [
    "plot_agent",
    "plot_compare",
    "plot_curve_with_band",
    "plot_density",
    "plot_parameters",
    "plot_rewards",
    "plot_snapshot",
]

FloatArray = npt.NDArray[np.float64]


def _save(fig: Figure, path: Path) -> None:
    # the object-oriented API (no pyplot): no global backend or figure state is touched
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_rewards(run: RunData, path: Path) -> str:
    """Reward per step and each reward term (training), and evaluation returns."""
    terms = sorted(
        {
            k
            for r in run.of_kind("train")
            for k in r
            if k.startswith("reward/") and k != "reward/total"
        }
    )
    fig = Figure(figsize=(11, 4))
    ax1, ax2 = fig.subplots(1, 2)
    x, y = run.series("reward/total")
    ax1.plot(x, y, "k-", lw=2, label="total")
    for key in terms:
        xs, ys = run.series(key)
        ax1.plot(xs, ys, lw=1, label=key.split("/", 1)[1])
    ax1.set_xlabel("environment steps")
    ax1.set_ylabel("mean reward per env step")
    ax1.set_title("training reward and its terms")
    ax1.legend(fontsize=8)
    xe, ye = run.series("eval/return_mean", "eval")
    _, se = run.series("eval/return_std", "eval")
    if len(xe):
        ax2.errorbar(xe, ye, yerr=se if len(se) == len(ye) else None, fmt="o-", label="policy")
    base = run.of_kind("baseline")
    if base and "baseline/return_mean" in base[0]:
        ax2.axhline(base[0]["baseline/return_mean"], color="grey", ls="--", label="random actions")
    scored = run.of_kind("baselines")
    for name, color, label in (
        ("midpoint", "tab:brown", "mid-point action"),
        ("constant", "tab:red", "best constant (same budget)"),
        ("schedule", "tab:purple", "best schedule (same budget)"),
    ):
        key = f"baselines/{name}/return_mean"
        if scored and key in scored[-1]:
            ax2.axhline(scored[-1][key], color=color, ls=":", label=label)
    ax2.set_xlabel("environment steps")
    ax2.set_ylabel("evaluation return")
    ax2.set_title("evaluation (deterministic policy)")
    ax2.legend(fontsize=8)
    _save(fig, path)
    return (
        "Left: mean training reward per env step and each reward term. Right: evaluation "
        "return (mean ± std over the evaluation episodes) beside the uniformly random policy "
        "on the same seeds (dashed) and, where scored, the non-learning baselines with the "
        "agent's env-step budget (dotted)."
    )


def plot_parameters(run: RunData, path: Path, names: Sequence[str]) -> str:
    """The control-parameter trajectories, one small panel each."""
    n = len(names)
    cols = 6
    rows = max(1, math.ceil(n / cols))
    fig = Figure(figsize=(2.2 * cols, 1.7 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    controls = run.config.get("controls", {})
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            continue
        name = names[k]
        x, y = run.series(f"params/{name}")
        ax.plot(x, y, lw=1)
        lo, hi = controls.get(f"{name}_low"), controls.get(f"{name}_high")
        if isinstance(lo, (int, float)) and isinstance(hi, (int, float)):
            ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
        ax.set_title(f"{k + 1}. {name}", fontsize=7)
        ax.tick_params(labelsize=6)
    _save(fig, path)
    return (
        f"The {n} control parameters (mean over the envs in each log interval) against "
        "environment steps; the vertical range of each panel is its control range."
    )


def density_target(env: Mapping[str, Any]) -> tuple[float, float] | None:
    """The density the run's task aims at, from its ``env`` config section: ``(ρ*, ρ*)``
    for ``target_density``, ``(setpoint_low, setpoint_high)`` for ``setpoint_density``,
    None for the tasks without a density target (or values that are not numbers)."""
    task = env.get("task", "target_density")
    keys = {
        "target_density": ("target_density", "target_density"),
        "setpoint_density": ("setpoint_low", "setpoint_high"),
    }.get(task)
    if keys is None:
        return None
    low, high = env.get(keys[0]), env.get(keys[1])
    if isinstance(low, (int, float)) and isinstance(high, (int, float)):
        return float(low), float(high)
    return None


def plot_density(run: RunData, path: Path) -> str:
    """Vortex density against its null models."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    x, y = run.series("vortex/density")
    xn, yn = run.series("vortex/null_density")
    ax.plot(x, y, "C0-", label="measured")
    if len(xn):
        ax.plot(xn, yn, "C1--", label="Gaussian-field null ⟨k²⟩/4π")
    ax.axhline(IID_PHASE_VORTEX_FRACTION, color="grey", ls=":", label="i.i.d. phases (1/3)")
    band = density_target(run.config.get("env", {}))
    if band is not None and band[0] == band[1]:
        ax.axhline(band[0], color="C2", lw=1, label=f"target {band[0]:g}")
    elif band is not None:
        ax.axhspan(
            *band, color="C2", alpha=0.12, label=f"set-point range [{band[0]:g}, {band[1]:g}]"
        )
    ax.set_yscale("log")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("vortices per plaquette")
    ax.legend(fontsize=8)
    _save(fig, path)
    return (
        "Vortex density (fraction of plaquettes with non-zero winding) during training, beside "
        "the Berry–Dennis density of a Gaussian random field with the same ⟨k²⟩ and the "
        "i.i.d.-phase value 1/3."
    )


def plot_agent(run: RunData, path: Path) -> str:
    """Losses, gradient norms and throughput."""
    keys = sorted({k for r in run.of_kind("train") for k in r if k.startswith("agent/")})
    keys = [k for k in keys if len(run.series(k)[0])]
    panels = [*keys, "time/steps_per_sec"]
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(3.2 * cols, 2.4 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, key in zip(axes.flat, panels, strict=False):
        x, y = run.series(key)
        ax.plot(x, y, lw=1)
        ax.set_title(key, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    _save(fig, path)
    return "Agent losses, gradient norms and learning rate, and training throughput (steps/s)."


def plot_snapshot(snap: Snapshot, path: Path, env: int = 0) -> str:
    """|ψ| and arg ψ of every strip of one env, vortices marked by charge."""
    psi = snap.psi[env].numpy()
    strips = psi.shape[0]
    L, w = float(snap.chart["length"]), float(snap.chart["half_width"])
    extent = (0.0, L, -w, w)
    fig = Figure(figsize=(11, 2.4 * strips))
    axes = fig.subplots(strips, 2, squeeze=False)
    idx = snap.vortex_index.numpy()
    pos = snap.vortex_position.numpy()
    q = snap.vortex_charge.numpy()
    for s in range(strips):
        for col, (data, cmap, label) in enumerate(
            ((np.abs(psi[s]), "viridis", "|ψ|"), (np.angle(psi[s]), "twilight", "arg ψ"))
        ):
            ax = axes[s, col]
            im = ax.imshow(data.T, origin="lower", extent=extent, aspect="auto", cmap=cmap)
            fig.colorbar(im, ax=ax, fraction=0.03)
            sel = (idx[:, 0] == env) & (idx[:, 1] == s)
            for sign, marker, colour in ((1, "+", "red"), (-1, "x", "cyan")):
                m = sel & (np.sign(q) == sign)
                ax.scatter(pos[m, 0], pos[m, 1], marker=marker, c=colour, s=25, lw=1)
            ax.set_title(f"strip {s}: {label}", fontsize=9)
            ax.set_xlabel("u")
            ax.set_ylabel("v")
    _save(fig, path)
    n = int(((idx[:, 0] == env)).sum())
    step = f"step {snap.step}" if snap.step is not None else "the snapshot"
    return (
        f"Env {env} at {step}: |ψ| and arg ψ on the chart of each strip, {n} vortices "
        "(+: positive, ×: negative chart charge)."
    )


def plot_curve_with_band(
    path: Path,
    x: FloatArray,
    y: FloatArray,
    band: tuple[FloatArray, FloatArray] | None,
    *,
    xlabel: str,
    ylabel: str,
    label: str,
    band_label: str,
    reference: float | None = None,
    logy: bool = False,
) -> None:
    """A measured curve beside a shaded null/confidence band and a reference line."""
    fig = Figure(figsize=(6.5, 3.8))
    ax = fig.subplots()
    if band is not None:
        ax.fill_between(x, band[0], band[1], color="grey", alpha=0.3, label=band_label)
    ax.plot(x, y, "C0-o", ms=3, label=label)
    if reference is not None:
        ax.axhline(reference, color="k", lw=0.8, ls=":")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_compare(runs: Sequence[RunData], path: Path) -> str:
    """Evaluation returns of several runs on one axis."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for run in runs:
        x, y = run.series("eval/return_mean", "eval")
        ax.plot(x, y, "o-", label=run.path.name)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("evaluation return")
    ax.legend(fontsize=8)
    _save(fig, path)
    return "Evaluation return of each compared run against environment steps."
