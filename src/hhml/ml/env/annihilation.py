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

On a device the whole batch is one set of tensor operations: the selection is a
partial stable sort of a padded ``[B, S·K]`` table, the imprints are phase fields
``[T, nu, nv]`` added per (env, strip), ``T = B · max_targets`` (unchosen slots add
exactly 0), and nothing is copied to the host. On a CPU, where there is no device to
wait for, the C++ kernels select the targets
(:func:`~hhml.core.resonance.imprint_kernel.cpp_select_targets`, the same targets in the
same order) and compute only the chosen imprints
(:func:`~hhml.core.resonance.imprint_kernel.cpp_imprint_apply`, which also applies the
factor, and leaves out terms below the last bit of the angle; see its module).

Public names: ``annihilate``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hhml.core.mobius import MobiusStrip
from hhml.core.resonance.imprint import _image_distance, _phase
from hhml.core.resonance.imprint_kernel import cpp_imprint_apply, cpp_select_targets
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
    controls = (strength, radius, quality_threshold, preserve_ratio)
    rd = chart.real_dtype
    # the imprints of the chosen slots only where the host may look (CPU: the selection and
    # the imprints in C++); on a device every slot is computed, unchosen ones adding 0
    if psi.device.type == "cpu" and not device_paths_only():
        picked = _select_cpp(vortices, *controls, M, rd)
        if picked is None:  # (reason in IMPRINT_STATUS) the same selection in torch
            picked = _select_torch(vortices, *controls, M, rd, compact=True)
        u0, v0, weight, r, group, targeted = picked
        # psi · e^{i·angles} in one C++ pass (None: the kernel does not apply, see
        # IMPRINT_STATUS; then the torch code below runs)
        strips = psi.reshape(B * S, *psi.shape[2:])
        out = cpp_imprint_apply(strips, chart, u0, v0, weight, r, group)
        if out is not None:
            return out.reshape(psi.shape), targeted
    else:
        u0, v0, weight, r, group, targeted = _select_torch(
            vortices, *controls, M, rd, compact=False
        )
    uu, vv = chart.coordinates()
    u0, v0 = u0[:, None, None], v0[:, None, None]
    phi = _phase(chart, uu, vv, u0, v0)  # [T, nu, nv]
    d = _image_distance(chart, uu, vv, u0, v0)
    rr = r[:, None, None]
    angle = weight[:, None, None] * phi * torch.exp(-(d * d) / (2.0 * rr * rr))
    total = torch.zeros(B * S, *psi.shape[2:], dtype=rd, device=psi.device)
    total.index_add_(0, group, angle)
    factor = torch.polar(torch.ones_like(total), total).to(psi.dtype).reshape(psi.shape)
    return psi * factor, targeted


def _select_cpp(
    vortices: VortexMeasurement,
    strength: Tensor,
    radius: Tensor,
    quality_threshold: Tensor,
    preserve_ratio: Tensor,
    M: int,
    rd: torch.dtype,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor] | None:
    """The targets of :func:`annihilate` by the C++ kernel (the chosen slots only, as
    :func:`_select_torch` with ``compact``), or None where it does not apply (reason in
    ``IMPRINT_STATUS``)."""
    B, S, K = vortices.valid.shape
    return cpp_select_targets(
        vortices.depth.reshape(B, S * K),
        vortices.valid.reshape(B, S * K),
        vortices.count,
        vortices.position.reshape(B, S * K, 2),
        vortices.charge.reshape(B, S * K),
        strength,
        radius,
        quality_threshold,
        preserve_ratio,
        M,
        K,
        rd,
    )


def _select_torch(
    vortices: VortexMeasurement,
    strength: Tensor,
    radius: Tensor,
    quality_threshold: Tensor,
    preserve_ratio: Tensor,
    M: int,
    rd: torch.dtype,
    compact: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The targets of :func:`annihilate` as tensor operations (no host synchronisation
    unless ``compact``).

    Returns ``u0, v0, weight, radius, group, targeted`` like
    :func:`~hhml.core.resonance.imprint_kernel.cpp_select_targets`: with ``compact`` the
    chosen slots only (a ``nonzero``, which synchronises a device); otherwise all ``B·M``
    slots, the unchosen ones with weight 0 (shapes independent of the values).
    """
    B, S, K = vortices.valid.shape
    dev = vortices.valid.device
    depth = vortices.depth.reshape(B, S * K)
    candidate = vortices.valid.reshape(B, S * K) & (depth >= quality_threshold[:, None])
    n_target = torch.floor((1.0 - preserve_ratio) * vortices.count + 1e-9).clamp_max(M)
    n_target = torch.where(strength > 0.0, n_target, torch.zeros_like(n_target))
    # deepest candidates first; a stable sort keeps the plaquette order among equals
    key = torch.where(candidate, -depth, float("inf"))
    order = _smallest_stable(key, M)
    rank = torch.arange(M, device=dev)
    chosen = torch.gather(candidate, 1, order) & (rank[None, :] < n_target[:, None])
    targeted = chosen.sum(dim=1)
    if compact:
        slots = torch.nonzero(chosen.reshape(-1)).reshape(-1)
    else:
        slots = torch.arange(B * M, device=dev)
    env = slots // M
    flat = order.reshape(-1).index_select(0, slots)  # index into [S·K] of each slot's vortex
    node = env * (S * K) + flat  # index into [B·S·K]
    pos = vortices.position.reshape(B * S * K, 2).index_select(0, node).to(rd)
    charge = vortices.charge.reshape(B * S * K).index_select(0, node).to(rd)
    weight = -strength.to(rd).index_select(0, env) * charge
    if not compact:  # (the compacted slots are all chosen: × 1 is exact)
        weight = weight * chosen.reshape(-1).to(rd)
    r = radius.to(rd).index_select(0, env)
    group = env * S + flat // K
    return pos[:, 0], pos[:, 1], weight, r, group, targeted


def _smallest_stable(key: Tensor, m: int) -> Tensor:
    """Column indices ``[B, m]`` of the ``m`` smallest entries of each row of ``key``
    ``[B, n]`` (no NaN, ``m ≤ n``), in (value, column) order.

    Equal to ``torch.sort(key, dim=1, stable=True).indices[:, :m]`` without sorting the
    whole row: ``topk`` gives each row's ``m``-th smallest value ``τ``; the entries below
    ``τ`` and the first entries equal to ``τ`` (in column order) are the ``m`` chosen,
    taken in column order by a second ``topk`` (of distinct integer scores) and then
    stably sorted by value (``[B, m]``). Deterministic, and no host synchronisation
    (shapes do not depend on values).
    """
    B, n = key.shape
    tau = torch.topk(key, m, dim=1, largest=False, sorted=True).values[:, m - 1 :]
    less = key < tau
    equal = key == tau
    need = m - less.sum(dim=1, keepdim=True)
    take = less | (equal & (torch.cumsum(equal, dim=1) <= need))
    # the m chosen columns in column order: the m smallest distinct scores
    columns = torch.arange(n, device=key.device).expand(B, n)
    score = torch.where(take, columns, columns + n)
    chosen = torch.topk(score, m, dim=1, largest=False, sorted=True).values
    by_value = torch.sort(key.gather(1, chosen), dim=1, stable=True).indices
    return chosen.gather(1, by_value)
