"""Targeted annihilation: opposite-charge imprints on selected vortices (controls 20–23).

For environment ``b`` with ``N_b`` detected vortices, the candidates are the
vortices whose core depth is at least the quality threshold ``q_b``; the
``min(floor((1 − p_b) · N_b), max_targets)`` deepest candidates are targeted
(``p_b`` the preserve ratio, ``max_targets`` = ``env.max_targets``). A target of
charge ``q`` at ``x_v`` multiplies the field of its strip by

    exp(−i · s_b · q · Φ_v(x) · exp(−d(x, x_v)² / 2r_b²))

with ``Φ_v`` the seam-consistent unit-charge phase field around ``x_v``
(:func:`hhml.core.resonance.imprint.vortex_factor`), ``d`` the chart distance,
``s_b`` the antivortex strength and ``r_b`` the annihilation radius. At
``s_b = 1`` the winding around the core is cancelled; a phase winding cannot be
removed by a local smooth factor, so the envelope leaves a phase step across
the ray where Φ_v jumps, inside the radius ``r_b``, which the dynamics then
relaxes. ``s_b = 0`` or ``p_b = 1`` leaves the field unchanged.

Public names: ``annihilate``.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from hhml.core.mobius import MobiusStrip
from hhml.core.resonance.imprint import _image_distance, _phase
from hhml.core.resonance.vortices import VortexSet

__all__ = ["annihilate"]

FloatArray = npt.NDArray[np.float64]


def annihilate(
    psi: Tensor,
    chart: MobiusStrip,
    vortices: VortexSet,
    strength: FloatArray,
    radius: FloatArray,
    quality_threshold: FloatArray,
    preserve_ratio: FloatArray,
    max_targets: int,
) -> tuple[Tensor, npt.NDArray[np.int64]]:
    """Apply the targeted imprints; return the new field and the targets per env.

    Parameters
    ----------
    psi
        Field ``[B, S, nu, nv]``.
    chart
        The shared chart of the ensemble.
    vortices
        The detections in ``psi`` (index columns ``b, s, i, j``).
    strength, radius, quality_threshold, preserve_ratio
        Per-environment controls, ``[B]``.
    max_targets
        Most vortices targeted per environment.

    Returns
    -------
    psi, targeted
        The field (a new tensor if anything was imprinted) and the number of
        targeted vortices per environment ``[B]``.
    """
    B = psi.shape[0]
    targeted = np.zeros(B, dtype=np.int64)
    if len(vortices) == 0:
        return psi, targeted
    env = vortices.index[:, 0].cpu().numpy()
    strip = vortices.index[:, 1].cpu().numpy()
    depth = vortices.depth.detach().cpu().numpy()
    charge = vortices.charge.cpu().numpy()
    pos = vortices.position.detach().cpu().numpy()
    chosen_all: list[int] = []
    for b in range(B):
        if strength[b] <= 0.0:
            continue
        mine = np.flatnonzero(env == b)
        n_target = min(math.floor((1.0 - preserve_ratio[b]) * len(mine) + 1e-9), max_targets)
        candidates = mine[depth[mine] >= quality_threshold[b]]
        if n_target == 0 or candidates.size == 0:
            continue
        chosen = candidates[np.argsort(-depth[candidates], kind="stable")[:n_target]]
        chosen_all.extend(int(k) for k in chosen)
        targeted[b] = len(chosen)
    if not chosen_all:
        return psi, targeted
    # all imprints at once: phase and envelope fields [K, nu, nv], summed per (env, strip)
    sel = np.asarray(chosen_all)
    rd, dev = chart.real_dtype, psi.device
    uu, vv = chart.coordinates()
    u0 = torch.as_tensor(pos[sel, 0], dtype=rd, device=dev).reshape(-1, 1, 1)
    v0 = torch.as_tensor(pos[sel, 1], dtype=rd, device=dev).reshape(-1, 1, 1)
    phi = _phase(chart, uu, vv, u0, v0)
    d = _image_distance(chart, uu, vv, u0, v0)
    r = torch.as_tensor(radius[env[sel]], dtype=rd, device=dev).reshape(-1, 1, 1)
    s = torch.as_tensor(strength[env[sel]] * charge[sel], dtype=rd, device=dev).reshape(-1, 1, 1)
    angle = -s * phi * torch.exp(-(d * d) / (2.0 * r * r))
    flat = torch.as_tensor(env[sel] * psi.shape[1] + strip[sel], device=dev)
    total = torch.zeros(psi.shape[0] * psi.shape[1], *psi.shape[2:], dtype=rd, device=dev)
    total.index_add_(0, flat, angle)
    factor = torch.polar(torch.ones_like(total), total).to(psi.dtype).reshape(psi.shape)
    return psi * factor, targeted
