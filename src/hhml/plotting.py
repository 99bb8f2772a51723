"""Pictures of a field: ``|ψ|`` and ``arg ψ`` in a strip's chart, vortices marked by charge.

The chart of a strip has ``u`` along the centre line (``[0, L]``) and ``v`` across
(``[−w, w]``); nodes are cell-centred, so an image of ``nu × nv`` nodes spans exactly
that rectangle. Vortices are drawn at their refined positions: ▲ red for charge +1
(and higher), ▼ blue for negative charges.

Public names: ``plot_field``, ``draw_strip``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["draw_strip", "plot_field"]

#: Marker and colour of positive and negative vortices.
VORTEX_STYLE = ((1, "^", "#d62728"), (-1, "v", "#1f77b4"))


def draw_strip(
    ax_amplitude: Any,
    ax_phase: Any,
    field: npt.ArrayLike,
    extent: tuple[float, float, float, float],
    positions: npt.ArrayLike | None = None,
    charges: npt.ArrayLike | None = None,
) -> tuple[Any, Any, tuple[int, int]]:
    """Draw one strip's ``|ψ|`` and ``arg ψ`` onto two matplotlib axes.

    Parameters
    ----------
    ax_amplitude, ax_phase
        The axes for the amplitude and the phase image.
    field
        Complex ``[nu, nv]`` values of the strip (``u`` first).
    extent
        ``(0, L, −w, w)``: the chart rectangle, lattice length units.
    positions, charges
        ``[K, 2]`` chart positions ``(u, v)`` and ``[K]`` charges of the strip's vortices.

    Returns
    -------
    amplitude_image, phase_image
        The two ``AxesImage`` s (for colour bars).
    counts
        ``(positive, negative)`` vortices drawn.
    """
    values = np.asarray(field)
    amplitude = ax_amplitude.imshow(
        np.abs(values).T, origin="lower", extent=extent, aspect="auto", cmap="viridis"
    )
    phase = ax_phase.imshow(
        np.angle(values).T,
        origin="lower",
        extent=extent,
        aspect="auto",
        cmap="twilight",
        vmin=-np.pi,
        vmax=np.pi,
    )
    counts = [0, 0]
    if positions is not None and charges is not None:
        uv = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
        q = np.asarray(charges).reshape(-1)
        for sign, marker, colour in VORTEX_STYLE:
            chosen = q * sign > 0
            counts[0 if sign > 0 else 1] += int(chosen.sum())
            for ax in (ax_amplitude, ax_phase):
                ax.scatter(
                    uv[chosen, 0],
                    uv[chosen, 1],
                    marker=marker,
                    s=36,
                    c=colour,
                    edgecolors="white",
                    linewidths=0.6,
                )
    return amplitude, phase, (counts[0], counts[1])


def plot_field(psi: Any, lattice: Any, vortices: Any = None, env: int = 0) -> Any:
    """A matplotlib ``Figure`` of ``|ψ|`` and ``arg ψ`` of every strip, vortices marked.

    Parameters
    ----------
    psi
        The field: ``[nu, nv]`` on a :class:`~hhml.core.mobius.MobiusStrip`,
        ``[S, nu, nv]`` on a :class:`~hhml.core.mobius.TokamakStack`, with an optional
        leading batch dimension (``env`` picks one), as a tensor or an array.
    lattice
        The strip or stack the field lives on (its chart gives the extent).
    vortices
        A :class:`~hhml.core.resonance.VortexSet` of ``psi``; None detects them
        (:func:`~hhml.core.resonance.detect_vortices`); False draws none.
    env
        Which batch element to draw when ``psi`` is batched.

    Returns
    -------
    matplotlib.figure.Figure
        One row per strip: amplitude left, phase right, each with a colour bar; the
        title counts the vortices by sign.

    Examples
    --------
    >>> import hhml
    >>> strip = hhml.MobiusStrip(64, 16)
    >>> sim = hhml.Simulator(strip, hhml.FieldParams(), seed=0)
    >>> fig = hhml.plot_field(sim.step(50), strip)      # doctest: +SKIP
    >>> fig.savefig("field.png")                        # doctest: +SKIP
    """
    import torch
    from matplotlib.figure import Figure

    from hhml.core.mobius import TokamakStack
    from hhml.core.resonance import detect_vortices

    stacked = isinstance(lattice, TokamakStack)
    strip = lattice.strip if stacked else lattice
    field = torch.as_tensor(psi)
    base_dims = 3 if stacked else 2
    if field.dim() not in (base_dims, base_dims + 1):
        expected = "[S, nu, nv]" if stacked else "[nu, nv]"
        raise ValueError(
            f"psi has shape {tuple(field.shape)}; expected {expected} with an optional "
            "leading batch dimension"
        )
    batched = field.dim() == base_dims + 1
    if vortices is None:
        vortices = detect_vortices(field, lattice)
    one = field[env] if batched else field
    strips_field = one if stacked else one.unsqueeze(0)
    count = int(strips_field.shape[0])
    extent = (0.0, float(strip.length), -float(strip.half_width), float(strip.half_width))
    fig = Figure(figsize=(10.0, 2.4 * count + 0.6), layout="constrained")
    axes = fig.subplots(count, 2, squeeze=False, sharex=True)
    totals = [0, 0]
    for s in range(count):
        positions = charges = None
        if vortices is not False and vortices is not None:
            index = vortices.index
            mask = torch.ones(index.shape[0], dtype=torch.bool)
            lead = 0
            if batched:
                mask &= index[:, 0] == env
                lead = 1
            if stacked:
                mask &= index[:, lead] == s
            positions = vortices.position[mask].detach().cpu().numpy()
            charges = vortices.charge[mask].cpu().numpy()
        values = strips_field[s].detach().cpu().to(torch.complex128).numpy()
        amp, phase, counts = draw_strip(axes[s][0], axes[s][1], values, extent, positions, charges)
        fig.colorbar(amp, ax=axes[s][0], label="|ψ|")
        fig.colorbar(phase, ax=axes[s][1], label="arg ψ")
        axes[s][0].set_ylabel(f"strip {s}\nv" if count > 1 else "v")
        totals[0] += counts[0]
        totals[1] += counts[1]
    for ax in axes[-1]:
        ax.set_xlabel("u")
    axes[0][0].set_title("|ψ|")
    axes[0][1].set_title("arg ψ")
    fig.suptitle(f"vortices: {totals[0]} ▲ (+), {totals[1]} ▼ (−)")
    return fig
