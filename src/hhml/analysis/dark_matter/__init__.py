"""Ensemble-branch "pruning residue" analysis of the field model.

Perturbed branches of one snapshot are evolved with the real simulator, pruned
by a criterion declared before evolution (phase-invariant fidelity to the
unperturbed reference), and what the pruned branches carry — norm, energy,
vortices — is compared with the kept ones; the growth of branch separation is
fitted; the Möbius band is compared with cylinder and torus controls. Every
number comes with its null model, bootstrap interval or test. See
``docs/dark_matter.md``.

This is an analysis of the model's ensemble of perturbed trajectories. It makes
no claim about cosmological dark matter.

Modules: :mod:`.fidelity`, :mod:`.branches`, :mod:`.pruning`, :mod:`.residue`,
:mod:`.lyapunov`, :mod:`.controls`, :mod:`.statistics`, :mod:`.analysis`.

Public names: :func:`run_dark_matter_analysis`, :class:`DarkMatterResult`,
:class:`TopologyAnalysis`, :data:`DISCLAIMER`, :func:`default_lattice`,
:class:`PruningCriterion`, :class:`RetentionCurve`, :func:`retention_curve`,
:class:`BranchEnsemble`, :func:`evolve_branches`, :func:`perturb_snapshot`,
:func:`jitter_params`, :data:`PERTURBATION_KINDS`, :func:`inner_product`,
:func:`field_norm`, :func:`fidelity`, :func:`fidelity_matrix`,
:func:`isotropic_gaussian_fields`, :func:`null_fidelity_survival`,
:class:`LyapunovFit`, :func:`fit_separation_growth`, :class:`ResidueSummary`,
:func:`ginzburg_landau_energy`, :func:`summarise_residue`, :class:`GroupComparison`,
:func:`compare_samples`, :func:`with_topology`, :func:`compare_topologies`.
"""

from hhml.analysis.dark_matter.analysis import (
    DISCLAIMER,
    DarkMatterResult,
    TopologyAnalysis,
    default_lattice,
    run_dark_matter_analysis,
)
from hhml.analysis.dark_matter.branches import (
    JITTERED_PARAMETERS,
    PERTURBATION_KINDS,
    BranchEnsemble,
    evolve_branches,
    jitter_params,
    perturb_snapshot,
)
from hhml.analysis.dark_matter.controls import (
    CONTROL_TOPOLOGIES,
    compare_topologies,
    with_topology,
)
from hhml.analysis.dark_matter.fidelity import (
    fidelity,
    fidelity_matrix,
    field_norm,
    inner_product,
    isotropic_gaussian_fields,
    null_fidelity_survival,
    phase_aligned_centroid,
)
from hhml.analysis.dark_matter.lyapunov import LyapunovFit, fit_separation_growth
from hhml.analysis.dark_matter.pruning import (
    DEFAULT_THRESHOLDS,
    PruningCriterion,
    RetentionCurve,
    retention_curve,
)
from hhml.analysis.dark_matter.residue import (
    ResidueSummary,
    ginzburg_landau_energy,
    summarise_residue,
    vortex_statistics,
)
from hhml.analysis.dark_matter.statistics import GroupComparison, compare_samples

__all__ = [
    "CONTROL_TOPOLOGIES",
    "DEFAULT_THRESHOLDS",
    "DISCLAIMER",
    "JITTERED_PARAMETERS",
    "PERTURBATION_KINDS",
    "BranchEnsemble",
    "DarkMatterResult",
    "GroupComparison",
    "LyapunovFit",
    "PruningCriterion",
    "ResidueSummary",
    "RetentionCurve",
    "TopologyAnalysis",
    "compare_samples",
    "compare_topologies",
    "default_lattice",
    "evolve_branches",
    "fidelity",
    "fidelity_matrix",
    "field_norm",
    "fit_separation_growth",
    "ginzburg_landau_energy",
    "inner_product",
    "isotropic_gaussian_fields",
    "jitter_params",
    "null_fidelity_survival",
    "perturb_snapshot",
    "phase_aligned_centroid",
    "retention_curve",
    "run_dark_matter_analysis",
    "summarise_residue",
    "vortex_statistics",
    "with_topology",
]
