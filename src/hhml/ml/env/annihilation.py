"""Targeted annihilation: opposite-charge imprints on selected vortices (controls 20–23).

For environment ``b`` with ``N_b`` detected vortices, the candidates are the
tracked vortices (the first ``env.max_vortices`` of each strip, in plaquette
order) whose core depth is at least the quality threshold ``q_b``; the
``min(floor((1 − p_b) · N_b), max_targets)`` deepest candidates are targeted
(``p_b`` the preserve ratio, ``max_targets`` = ``env.max_targets``; ties keep
the plaquette order). A target of charge ``q`` at ``x_v`` multiplies the field
of its strip by

    exp(−i · s_b · q · Φ_v(x) · exp(−d(x, x_v)² / 2r_b²))

with ``Φ_v`` the seam-consistent unit-charge phase field around ``x_v``
(:func:`hhml.core.resonance.imprint.vortex_factor`), ``d`` the chart distance,
``s_b`` the antivortex strength and ``r_b`` the annihilation radius. At
``s_b = 1`` the winding around the core is cancelled; a phase winding cannot be
removed by a local smooth factor, so the envelope leaves a phase step across
the ray where Φ_v jumps, inside the radius ``r_b``, which the dynamics then
relaxes. ``s_b = 0`` or ``p_b = 1`` leaves the field unchanged.

The whole batch is one set of tensor operations on the field's device: the
selection is a stable sort of a padded ``[B, S·K]`` table, the imprints are
``[B, max_targets, nu, nv]`` phase fields summed per (env, strip). Nothing is
copied to the host.

Public names: ``annihilate``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hhml.core.mobius import MobiusStrip
from hhml.core.resonance.imprint import _image_distance, _phase
from hhml.ml.env.measure import VortexMeasurement

__all__ = ["annihilate"]


def annihilate(
    psi: Tensor,
    chart: MobiusStrip,
    vortices: VortexMeasurement,
    strength: Tensor,
    radius: Tensor,
    quality_threshold: Tensor,
    preserve_ratio: Tensor,
    max_targets: int,
) -> tuple[Tensor, Tensor]:
    """Apply the targeted imprints; return the new field and the targets per env.

    Parameters
    ----------
    psi
        Field ``[B, S, nu, nv]``.
    chart
        The shared chart of the ensemble.
    vortices
        The detections in ``psi`` (padded per strip, ``[B, S, K]``).
    strength, radius, quality_threshold, preserve_ratio
        Per-environment controls, float64 ``[B]`` on the field's device.
    max_targets
        Most vortices targeted per environment.

    Returns
    -------
    psi, targeted
        The field and the number of targeted vortices per environment
        (int64 ``[B]``).
    """
    B, S = psi.shape[0], psi.shape[1]
    K = vortices.valid.shape[-1]
    M = min(max_targets, S * K)
    if M == 0:
        return psi, torch.zeros(B, dtype=torch.int64, device=psi.device)
    depth = vortices.depth.reshape(B, S * K)
    candidate = vortices.valid.reshape(B, S * K) & (depth >= quality_threshold[:, None])
    n_target = torch.floor((1.0 - preserve_ratio) * vortices.count + 1e-9).clamp_max(M)
    n_target = torch.where(strength > 0.0, n_target, torch.zeros_like(n_target))
    # deepest candidates first; a stable sort keeps the plaquette order among equals
    key = torch.where(candidate, -depth, torch.full_like(depth, float("inf")))
    order = torch.sort(key, dim=1, stable=True).indices[:, :M]
    rank = torch.arange(M, device=psi.device)
    chosen = torch.gather(candidate, 1, order) & (rank[None, :] < n_target[:, None])
    targeted = chosen.sum(dim=1)

    rd = chart.real_dtype
    pos = vortices.position.reshape(B, S * K, 2)
    u0 = torch.gather(pos[..., 0], 1, order).to(rd)[..., None, None]
    v0 = torch.gather(pos[..., 1], 1, order).to(rd)[..., None, None]
    charge = torch.gather(vortices.charge.reshape(B, S * K), 1, order).to(rd)
    strip = order // K  # [B, M]
    uu, vv = chart.coordinates()
    phi = _phase(chart, uu, vv, u0, v0)  # [B, M, nu, nv]
    d = _image_distance(chart, uu, vv, u0, v0)
    r = radius.to(rd)[:, None, None, None]
    s = (strength.to(rd)[:, None] * charge * chosen.to(rd))[..., None, None]
    angle = -s * phi * torch.exp(-(d * d) / (2.0 * r * r))
    onehot = (strip[:, :, None] == torch.arange(S, device=psi.device)).to(rd)  # [B, M, S]
    total = torch.einsum("bmxy,bms->bsxy", angle, onehot)
    factor = torch.polar(torch.ones_like(total), total).to(psi.dtype)
    return psi * factor, targeted
