"""What the pruned branches leave behind, compared with the kept ones.

For the branches at the final time, split by the pruning criterion into
*pruned* and *kept*:

- **norm share** ``Σ_pruned ‖ψ_b‖² / Σ_all ‖ψ_b‖²``, beside its null
  ``N_pruned/N`` (the share if every branch had the same norm);
- **energy** per branch, the real Ginzburg–Landau functional of the reference
  parameters (γ, D, g),

      E[ψ] = Σ_x w [ D |∇ψ|² − (1 − γ)|ψ|² + (g/2)|ψ|⁴ ],

  with the gradient term by summation by parts, ``Σ w D|∇ψ|² = −D Re⟨ψ, Δψ⟩``
  (``WΔ`` is Hermitian and negative semi-definite, boundary and seam terms
  included). Its gradient flow is the α = β = 0 equation; pinning, sources,
  coupling and the imaginary parts are not in it. The energy share
  ``Σ_pruned E / Σ_all E`` is given only when all energies share one sign;
- **vortex statistics**: plaquettes with non-zero winding
  (:func:`~hhml.core.resonance.winding_numbers`), their count, total ``|q|``
  and density (count / plaquettes), beside the i.i.d.-phase null density 1/3.

Pruned and kept samples are compared with :func:`.statistics.compare_samples`
(Mann–Whitney U, rank-biserial effect size, permutation test).

Public names: :func:`ginzburg_landau_energy`, :func:`vortex_statistics`,
:class:`ResidueSummary`, :func:`summarise_residue`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from hhml.analysis.dark_matter.fidelity import field_norm, inner_product
from hhml.analysis.dark_matter.statistics import GroupComparison, compare_samples, json_number
from hhml.config.schema import FieldParams
from hhml.core.mobius import MobiusStrip, TokamakStack
from hhml.core.resonance import IID_PHASE_VORTEX_FRACTION, winding_numbers
from hhml.errors import ConfigError

__all__ = ["ResidueSummary", "ginzburg_landau_energy", "summarise_residue", "vortex_statistics"]

FloatArray = NDArray[np.float64]


def ginzburg_landau_energy(
    psi: Tensor, lattice: MobiusStrip | TokamakStack, params: FieldParams
) -> Tensor:
    """Real Ginzburg–Landau energy of each field (formula in the module docstring).

    Parameters
    ----------
    psi
        Complex ``[..., *field_shape]``.
    lattice
        The lattice (Laplacian and cell areas).
    params
        Supplies γ (``damping``), D (``diffusion``), g (``nonlinearity``).

    Returns
    -------
    Tensor
        Real ``[...]`` (field units² · length² / time).
    """
    lattice.check_field(psi)
    w = lattice.area_weights().to(device=psi.device, dtype=psi.real.dtype)
    nd = w.dim()
    dims = tuple(range(-nd, 0))
    grad = -inner_product(psi, lattice.laplacian(psi), w).real
    dens = psi.real.square() + psi.imag.square()
    growth = 1.0 - params.damping
    local = (w * (-growth * dens + 0.5 * params.nonlinearity * dens.square())).sum(dim=dims)
    return params.diffusion * grad + local


def vortex_statistics(
    psi: Tensor, lattice: MobiusStrip | TokamakStack
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per-field vortex ``(count, total |q|, density)``, each ``[N]`` for ``psi [N, *field_shape]``.

    Density is the count over the number of plaquettes (all strips of a stack).
    """
    q = winding_numbers(psi, lattice)
    nd = len(lattice.field_shape)
    flat = q.reshape(q.shape[0], -1) if q.dim() > nd else q.reshape(1, -1)
    count = (flat != 0).sum(dim=1).to(torch.float64).cpu().numpy()
    total = flat.abs().sum(dim=1).to(torch.float64).cpu().numpy()
    return count, total, count / flat.shape[1]


@dataclass(frozen=True)
class ResidueSummary:
    """Pruned versus kept branches at the final time.

    Attributes
    ----------
    n_pruned, n_kept : int
        Group sizes.
    norm_share_pruned : float
        ``Σ_pruned ‖ψ‖² / Σ_all ‖ψ‖²``.
    norm_share_null : float
        ``N_pruned / N``.
    energy_share_pruned : float
        ``Σ_pruned E / Σ_all E`` (NaN when the energies change sign).
    energy_reference : float
        ``E`` of the unperturbed reference field.
    vortex_density_null : float
        1/3, the i.i.d.-phase density.
    vortex_count_reference : float
        Vortex count of the reference field.
    norm, energy, vortex_count, vortex_density : GroupComparison
        Pruned (``a``) versus kept (``b``) comparisons of the per-branch values.
    per_branch : dict
        ``{"norm_sq", "energy", "vortex_count", "abs_charge", "vortex_density"}`` → ``[N]``.
    """

    n_pruned: int
    n_kept: int
    norm_share_pruned: float
    norm_share_null: float
    energy_share_pruned: float
    energy_reference: float
    vortex_density_null: float
    vortex_count_reference: float
    norm: GroupComparison
    energy: GroupComparison
    vortex_count: GroupComparison
    vortex_density: GroupComparison
    per_branch: dict[str, FloatArray]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able numbers (NaN → None)."""
        return {
            "n_pruned": self.n_pruned,
            "n_kept": self.n_kept,
            "norm_share_pruned": json_number(self.norm_share_pruned),
            "norm_share_null": json_number(self.norm_share_null),
            "energy_share_pruned": json_number(self.energy_share_pruned),
            "energy_share_null": json_number(self.norm_share_null),
            "energy_reference": json_number(self.energy_reference),
            "vortex_density_null": self.vortex_density_null,
            "vortex_count_reference": json_number(self.vortex_count_reference),
            "comparisons": {
                "norm_sq": self.norm.to_dict(),
                "energy": self.energy.to_dict(),
                "vortex_count": self.vortex_count.to_dict(),
                "vortex_density": self.vortex_density.to_dict(),
            },
            "per_branch": {k: [json_number(x) for x in v] for k, v in self.per_branch.items()},
        }


def summarise_residue(
    branches: Tensor,
    reference: Tensor,
    kept: NDArray[np.bool_],
    lattice: MobiusStrip | TokamakStack,
    params: FieldParams,
    *,
    n_boot: int = 1000,
    n_permutations: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> ResidueSummary:
    """Norm, energy and vortex residue of the pruned branches.

    Parameters
    ----------
    branches
        Final branch fields ``[N, *field_shape]``.
    reference
        Final reference field ``field_shape``.
    kept
        Boolean ``[N]`` from :meth:`.pruning.PruningCriterion.kept`.
    lattice, params
        Lattice and the parameters of the energy functional.
    n_boot, n_permutations, confidence, seed
        Settings of the comparisons.
    """
    mask = np.asarray(kept, dtype=bool)
    if mask.shape != (branches.shape[0],):
        raise ConfigError(f"kept has shape {mask.shape}; expected ({branches.shape[0]},)")
    w = lattice.area_weights()
    norm_sq = field_norm(branches, w).double().square().cpu().numpy()
    energy = ginzburg_landau_energy(branches, lattice, params).double().cpu().numpy()
    e_ref = float(ginzburg_landau_energy(reference, lattice, params))
    count, total_q, density = vortex_statistics(branches, lattice)
    ref_count, _, _ = vortex_statistics(reference.unsqueeze(0), lattice)
    pruned = ~mask
    n = mask.size
    norm_share = float(norm_sq[pruned].sum() / norm_sq.sum()) if norm_sq.sum() > 0 else math.nan
    same_sign = bool(np.all(energy > 0) or np.all(energy < 0))
    energy_share = float(energy[pruned].sum() / energy.sum()) if same_sign else math.nan
    labels = ("pruned", "kept")

    def cmp(values: FloatArray, name: str, offset: int) -> GroupComparison:
        return compare_samples(
            values[pruned],
            values[mask],
            quantity=name,
            labels=labels,
            n_boot=n_boot,
            n_permutations=n_permutations,
            confidence=confidence,
            seed=seed + offset,
        )

    return ResidueSummary(
        n_pruned=int(pruned.sum()),
        n_kept=int(mask.sum()),
        norm_share_pruned=norm_share,
        norm_share_null=float(pruned.sum()) / n,
        energy_share_pruned=energy_share,
        energy_reference=e_ref,
        vortex_density_null=IID_PHASE_VORTEX_FRACTION,
        vortex_count_reference=float(ref_count[0]),
        norm=cmp(norm_sq, "norm_sq", 0),
        energy=cmp(energy, "energy", 1),
        vortex_count=cmp(count, "vortex_count", 2),
        vortex_density=cmp(density, "vortex_density", 3),
        per_branch={
            "norm_sq": norm_sq,
            "energy": energy,
            "vortex_count": count,
            "abs_charge": total_q,
            "vortex_density": density,
        },
    )
