"""The pre-registered pruning criterion and the retained-fraction curve.

A :class:`PruningCriterion` is fixed *before* the branches are evolved and is
stored in the result. The rule is

    prune branch b  ⇔  F(ψ_b(T), ψ_ref(T)) < τ,

with ``F`` the phase-invariant fidelity (:mod:`.fidelity`), ``T`` the final
time and ``ψ_ref`` either the unperturbed trajectory evolved alongside the
branches (``reference="unperturbed"``) or the phase-aligned centroid of the
branches at ``T`` (``reference="centroid"``).

The retained fraction ``R(τ) = #{b : F_b ≥ τ}/N`` is reported over a grid of
thresholds with a percentile-bootstrap band over branches and beside its null
model ``(1 − τ²)^{n−1}``: the retained fraction if the branches were
independent isotropic random fields (:func:`.fidelity.null_fidelity_survival`).

Public names: :data:`REFERENCES`, :data:`DEFAULT_THRESHOLDS`, :class:`PruningCriterion`,
:class:`RetentionCurve`, :func:`retention_curve`, :func:`reference_fidelities`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from hhml.analysis.dark_matter.fidelity import (
    fidelity,
    null_fidelity_survival,
    phase_aligned_centroid,
)
from hhml.analysis.dark_matter.statistics import check_confidence, check_count, json_number
from hhml.errors import ConfigError

__all__ = [
    "DEFAULT_THRESHOLDS",
    "REFERENCES",
    "PruningCriterion",
    "RetentionCurve",
    "reference_fidelities",
    "retention_curve",
]

FloatArray = NDArray[np.float64]

#: What a branch is compared with.
REFERENCES = ("unperturbed", "centroid")

#: Default threshold grid: τ_k = 1 − 10^(−k/4), k = 0..24, i.e. 1 − τ from 1 to 1e−6.
DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(1.0 - 10.0 ** (-k / 4.0) for k in range(25))


@dataclass(frozen=True)
class PruningCriterion:
    """The rule that decides which branches are pruned, declared before evolution.

    Attributes
    ----------
    threshold : float
        τ ∈ (0, 1]: a branch is pruned if its fidelity to the reference at the
        final time is below τ.
    reference : {"unperturbed", "centroid"}
        The unperturbed trajectory, or the phase-aligned branch centroid.
    """

    threshold: float = 0.999
    reference: str = "unperturbed"

    def __post_init__(self) -> None:
        t = self.threshold
        if not (isinstance(t, (int, float)) and math.isfinite(t) and 0.0 < t <= 1.0):
            raise ConfigError(f"criterion threshold = {t!r} is not valid; need 0 < τ ≤ 1")
        if self.reference not in REFERENCES:
            raise ConfigError(
                f"criterion reference = {self.reference!r} is not valid; choose one of "
                + ", ".join(repr(r) for r in REFERENCES)
            )

    def statement(self) -> str:
        """The rule in words (stored with every result)."""
        ref = (
            "the unperturbed reference trajectory evolved with the same dynamics"
            if self.reference == "unperturbed"
            else "the phase-aligned centroid of the branches"
        )
        return (
            f"prune branch b if F(psi_b(T), psi_ref(T)) < {self.threshold:.10g}, where F is the "
            f"area-weighted phase-invariant fidelity, T the final time and psi_ref {ref}; "
            "declared before evolution"
        )

    def kept(self, fidelities: FloatArray) -> NDArray[np.bool_]:
        """Boolean ``[N]``: True where the branch is kept (``F_b ≥ τ``)."""
        return np.asarray(fidelities, dtype=np.float64) >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able description."""
        return {
            "threshold": self.threshold,
            "reference": self.reference,
            "statement": self.statement(),
        }


def reference_fidelities(
    branches: Tensor, reference: Tensor, weights: Tensor, criterion: PruningCriterion
) -> FloatArray:
    """Fidelities ``[N]`` of ``branches [N, *field_shape]`` to the criterion's reference."""
    target = (
        reference
        if criterion.reference == "unperturbed"
        else phase_aligned_centroid(branches, weights)
    )
    out: FloatArray = (
        fidelity(branches, target.unsqueeze(0), weights).to(torch.float64).cpu().numpy()
    )
    return out


@dataclass(frozen=True)
class RetentionCurve:
    """Retained fraction against threshold, with its bootstrap band and null model.

    Attributes
    ----------
    thresholds : ndarray
        τ grid ``[M]``.
    retained : ndarray
        ``R(τ)`` ``[M]``.
    lower, upper : ndarray
        Percentile-bootstrap band over branches ``[M]``.
    null_retained : ndarray
        ``(1 − τ²)^{n−1}``: ``R(τ)`` for independent isotropic random fields ``[M]``.
    confidence : float
        Level of the band.
    n_boot : int
        Bootstrap resamples.
    n_branches : int
        ``N``.
    dof : int
        ``n``, complex degrees of freedom of a field.
    """

    thresholds: FloatArray
    retained: FloatArray
    lower: FloatArray
    upper: FloatArray
    null_retained: FloatArray
    confidence: float
    n_boot: int
    n_branches: int
    dof: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able lists."""

        def lst(x: FloatArray) -> list[float | int | None]:
            return [json_number(v) for v in x]

        return {
            "thresholds": lst(self.thresholds),
            "retained": lst(self.retained),
            "lower": lst(self.lower),
            "upper": lst(self.upper),
            "null_retained": lst(self.null_retained),
            "confidence": self.confidence,
            "n_boot": self.n_boot,
            "n_branches": self.n_branches,
            "dof": self.dof,
        }


def retention_curve(
    fidelities: FloatArray,
    thresholds: FloatArray | Sequence[float],
    *,
    dof: int,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> RetentionCurve:
    """``R(τ)`` of fidelities ``[N]`` over ``thresholds [M]`` with a bootstrap band.

    Branches are the resampled units (``n_boot`` resamples of size ``N`` with
    replacement); the band is the central ``confidence`` percentile interval.
    """
    check_count("n_boot", n_boot, 1)
    check_confidence(confidence)
    f = np.asarray(fidelities, dtype=np.float64).ravel()
    if f.size == 0 or not np.all(np.isfinite(f)):
        raise ConfigError("fidelities must be a non-empty array of finite values")
    tau = np.asarray(thresholds, dtype=np.float64).ravel()
    if tau.size == 0 or not np.all(np.isfinite(tau)) or np.any((tau < 0) | (tau > 1)):
        raise ConfigError(f"thresholds = {tau.tolist()} is not valid; need values in [0, 1]")
    above = f[:, None] >= tau[None, :]  # [N, M]
    retained = above.mean(axis=0)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, f.size, size=(n_boot, f.size))
    boot = above[idx].mean(axis=1)  # [n_boot, M]
    alpha = 1.0 - confidence
    lower, upper = np.quantile(boot, [alpha / 2, 1 - alpha / 2], axis=0)
    return RetentionCurve(
        thresholds=tau,
        retained=retained,
        lower=np.asarray(lower, dtype=np.float64),
        upper=np.asarray(upper, dtype=np.float64),
        null_retained=null_fidelity_survival(tau, dof),
        confidence=confidence,
        n_boot=n_boot,
        n_branches=int(f.size),
        dof=dof,
    )
