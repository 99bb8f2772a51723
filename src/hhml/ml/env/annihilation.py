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
selection is a stable sort of a padded ``[B, S·K]`` table, the imprints are phase
fields ``[T, nu, nv]`` added per (env, strip). On a GPU ``T = B · max_targets``
(unchosen slots add exactly 0) and nothing is copied to the host; on a CPU, where
there is no device to wait for, only the chosen targets are computed.

Public names: ``annihilate``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hhml.core.mobius import MobiusStrip
from hhml.core.resonance.imprint import _image_distance, _phase
from hhml.core.resonance.imprint_kernel import cpp_imprint_angles
from hhml.ml.env.measure import VortexMeasurement
from hhml.utils.host_sync import device_paths_only

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

    # the imprints of the chosen slots only where the host may look (CPU: compaction and
    # the C++ kernel); on a device every slot is computed, unchosen ones adding exactly 0
    on_host = psi.device.type == "cpu" and not device_paths_only()
    if on_host:
        slots = torch.nonzero(chosen.reshape(-1)).reshape(-1)
    else:
        slots = torch.arange(B * M, device=psi.device)
    env = slots // M
    flat = order.reshape(-1)[slots]  # index into [S·K] of each slot's vortex
    rd = chart.real_dtype
    pos = vortices.position.reshape(B, S * K, 2)[env, flat].to(rd)
    charge = vortices.charge.reshape(B, S * K)[env, flat].to(rd)
    weight = -strength.to(rd)[env] * charge * chosen.reshape(-1)[slots].to(rd)
    r = radius.to(rd)[env]
    group = env * S + flat // K
    total = (
        cpp_imprint_angles(chart, pos[:, 0], pos[:, 1], weight, r, group, B * S)
        if on_host
        else None
    )
    if total is None:  # a device, or the kernel does not apply (IMPRINT_STATUS says why)
        u0, v0 = pos[:, 0, None, None], pos[:, 1, None, None]
        uu, vv = chart.coordinates()
        phi = _phase(chart, uu, vv, u0, v0)  # [T, nu, nv]
        d = _image_distance(chart, uu, vv, u0, v0)
        rr = r[:, None, None]
        angle = weight[:, None, None] * phi * torch.exp(-(d * d) / (2.0 * rr * rr))
        total = torch.zeros(B * S, *psi.shape[2:], dtype=rd, device=psi.device)
        total.index_add_(0, group, angle)
    factor = torch.polar(torch.ones_like(total), total).to(psi.dtype).reshape(psi.shape)
    return psi * factor, targeted
