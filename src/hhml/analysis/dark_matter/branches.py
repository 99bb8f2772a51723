"""Perturbed branches of one snapshot, evolved together with the real simulator.

From a snapshot ``ψ₀`` (shape ``field_shape``) we build ``N`` perturbed copies
and evolve them, together with the unperturbed reference, as one batch
``[N + 1, *field_shape]`` of a :class:`~hhml.core.resonance.Simulator`
(element 0 is the reference). All branches obey the same deterministic
dynamics; the stochastic forcing (noise temperature ``T`` and random pair
seeding) is switched off unless asked for, because it would make even
identical copies diverge.

Perturbation kinds (:data:`PERTURBATION_KINDS`), each seeded:

``"noise"``
    Additive complex Gaussian noise of relative rms ε:
    ``ψ_b = ψ₀ + ε · rms(ψ₀) · ξ_b`` with ``ξ_b`` standard complex normal per
    node (``⟨|ξ|²⟩ = 1``) and ``rms(ψ₀) = ‖ψ₀‖/√(Σ w)`` (area-weighted), so
    ``E‖ψ_b − ψ₀‖² = ε² ‖ψ₀‖²``.
``"phase"``
    Random phase kicks: ``ψ_b = ψ₀ · e^{i ε φ_b}``, ``φ_b`` standard normal
    per node (relative rms perturbation ≈ ε for small ε).
``"pair"``
    One vortex–antivortex pair (:func:`~hhml.core.resonance.imprint_pair`)
    imprinted at a uniformly drawn chart point ``u ∈ [0, L)``,
    ``v ∈ [−0.8w, 0.8w]`` (a uniformly drawn strip of a stack), the vortex
    at ``u₀ − ε/2`` or ``u₀ + ε/2`` with equal probability; ε is the pair
    separation (length units), the core radius is the parameters'
    ``core_radius``.
``"params"``
    Parameter jitter: the branch starts at ``ψ₀`` but its parameters are
    drawn per branch: ``γ → γ + ε ζ₁`` (additive; γ = 0 is common),
    ``g → g (1 + ε ζ₂)``, ``D → D (1 + ε ζ₃)`` with ``ζ`` standard normal,
    clipped to the parameters' valid ranges (:data:`JITTERED_PARAMETERS`).

Public names: :data:`PERTURBATION_KINDS`, :data:`JITTERED_PARAMETERS`,
:class:`BranchEnsemble`, :func:`perturb_snapshot`, :func:`jitter_params`,
:func:`evolve_branches`, :func:`deterministic_params`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from hhml.analysis.dark_matter.fidelity import fidelity, field_norm
from hhml.config.schema import FieldParams
from hhml.config.specs import field_specs
from hhml.core.mobius import LatticeEnsemble, MobiusStrip, TokamakStack
from hhml.core.resonance import Simulator, imprint_pair
from hhml.errors import ConfigError, LatticeError

__all__ = [
    "JITTERED_PARAMETERS",
    "PERTURBATION_KINDS",
    "BranchEnsemble",
    "ProgressCallback",
    "deterministic_params",
    "evolve_branches",
    "jitter_params",
    "perturb_snapshot",
]

#: The documented perturbation kinds.
PERTURBATION_KINDS = ("noise", "phase", "pair", "params")

#: Parameters jittered by kind ``"params"``: name → ``"additive"`` or ``"relative"``.
JITTERED_PARAMETERS: dict[str, str] = {
    "damping": "additive",
    "nonlinearity": "relative",
    "diffusion": "relative",
}

#: ``progress(stage, fraction)`` with ``fraction`` in [0, 1].
ProgressCallback = Callable[[str, float], None]

Lattice = MobiusStrip | TokamakStack
FloatArray = NDArray[np.float64]


def _chart(lattice: Lattice) -> MobiusStrip:
    return lattice.strip if isinstance(lattice, TokamakStack) else lattice


def check_lattice(lattice: object) -> Lattice:
    """Raise :class:`LatticeError` unless ``lattice`` is a strip or a (non-ensemble) stack."""
    if isinstance(lattice, LatticeEnsemble) or not isinstance(lattice, (MobiusStrip, TokamakStack)):
        raise LatticeError(
            f"lattice must be a MobiusStrip or TokamakStack, got {type(lattice).__name__} "
            "(branches use the batch dimension, so a LatticeEnsemble cannot be branched)"
        )
    return lattice


def deterministic_params(params: FieldParams, stochastic: bool) -> FieldParams:
    """``params`` with noise temperature and pair seeding set to 0 unless ``stochastic``."""
    if stochastic:
        return params
    return params.replace(noise_temperature=0.0, pair_seeding=0.0)


def _check_epsilon(kind: str, epsilon: float) -> None:
    if kind not in PERTURBATION_KINDS:
        raise ConfigError(
            f"kind = {kind!r} is not valid; choose one of "
            + ", ".join(repr(k) for k in PERTURBATION_KINDS)
        )
    if not (isinstance(epsilon, (int, float)) and math.isfinite(epsilon) and epsilon > 0):
        raise ConfigError(f"epsilon = {epsilon!r} is not valid; it must be a finite number > 0")


def perturb_snapshot(
    psi0: Tensor,
    lattice: Lattice,
    *,
    kind: str,
    epsilon: float,
    n_branches: int,
    seed: int,
    core_radius: float = 0.1,
) -> Tensor:
    """``N`` perturbed copies of a snapshot (kinds in the module docstring).

    Parameters
    ----------
    psi0
        Complex snapshot of shape ``lattice.field_shape``.
    lattice
        The lattice the snapshot lives on.
    kind
        One of :data:`PERTURBATION_KINDS`; ``"params"`` returns unperturbed copies.
    epsilon
        Perturbation size (relative rms, phase rms in radians, or pair separation
        in length units).
    n_branches
        ``N ≥ 1``.
    seed
        Seeds every random draw.
    core_radius
        Core radius of an imprinted pair (length units).

    Returns
    -------
    Tensor
        ``[N, *field_shape]`` in the lattice's dtype and device.
    """
    lattice = check_lattice(lattice)
    _check_epsilon(kind, epsilon)
    if isinstance(n_branches, bool) or not isinstance(n_branches, int) or n_branches < 1:
        raise ConfigError(f"n_branches = {n_branches!r} is not valid; need an integer ≥ 1")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed = {seed!r} is not valid; it must be an integer ≥ 0")
    if not isinstance(psi0, Tensor) or tuple(psi0.shape) != lattice.field_shape:
        shape = tuple(psi0.shape) if isinstance(psi0, Tensor) else type(psi0).__name__
        raise LatticeError(f"psi0 has shape {shape}; expected {lattice.field_shape}")
    if not psi0.is_complex():
        raise LatticeError(f"psi0 has dtype {psi0.dtype}; a complex dtype is required")
    psi0 = psi0.to(device=lattice.device, dtype=lattice.dtype)
    weights = lattice.area_weights()
    norm0 = float(field_norm(psi0, weights))
    if not (math.isfinite(norm0) and norm0 > 0):
        raise LatticeError(f"psi0 has norm {norm0}; branching needs a finite, non-zero snapshot")
    gen = torch.Generator(device=lattice.device)
    gen.manual_seed(seed)
    copies = psi0.expand(n_branches, *psi0.shape).clone()
    if kind == "noise":
        rms = norm0 / math.sqrt(float(weights.sum()))
        xi = torch.randn(copies.shape, dtype=copies.dtype, device=copies.device, generator=gen)
        return copies + (epsilon * rms) * xi
    if kind == "phase":
        phi = torch.randn(copies.shape, dtype=weights.dtype, device=copies.device, generator=gen)
        return copies * torch.polar(torch.ones_like(phi), epsilon * phi).to(copies.dtype)
    if kind == "pair":
        chart = _chart(lattice)
        rng = np.random.default_rng(seed)
        out = []
        for b in range(n_branches):
            u0 = float(rng.uniform(0.0, chart.length))
            v0 = float(rng.uniform(-0.8, 0.8) * chart.half_width)
            sign = 1 if rng.random() < 0.5 else -1
            # the orientation is drawn by swapping the two cores (a signed separation with
            # charge +1): imprint_pair's torus gauge ramp assumes charge +1
            separation = sign * float(epsilon)
            field = copies[b]
            if isinstance(lattice, TokamakStack):
                s = int(rng.integers(lattice.num_strips))
                field = field.clone()
                field[s] = imprint_pair(field[s], chart, (u0, v0), separation, 1, core_radius)
            else:
                field = imprint_pair(field, chart, (u0, v0), separation, 1, core_radius)
            out.append(field)
        return torch.stack(out)
    return copies  # "params": the perturbation is in the parameters


def jitter_params(
    params: FieldParams, *, epsilon: float, n_branches: int, seed: int
) -> list[FieldParams]:
    """Per-branch parameters for kind ``"params"`` (rules in :data:`JITTERED_PARAMETERS`).

    Values are clipped to each parameter's valid range, so a jittered set is
    always valid. Seeded by ``seed`` (a stream separate from the field draws).
    """
    _check_epsilon("params", epsilon)
    specs = field_specs(params)
    rng = np.random.default_rng([seed, 1])
    zeta = rng.standard_normal((n_branches, len(JITTERED_PARAMETERS)))
    out = []
    for b in range(n_branches):
        changes: dict[str, float] = {}
        for k, (name, rule) in enumerate(JITTERED_PARAMETERS.items()):
            value = float(getattr(params, name))
            new = (
                value + epsilon * zeta[b, k]
                if rule == "additive"
                else value * (1.0 + epsilon * zeta[b, k])
            )
            lo, hi = specs[name].low, specs[name].high
            new = max(new, float(lo)) if lo is not None else new
            new = min(new, float(hi)) if hi is not None else new
            changes[name] = new
        out.append(params.replace(**changes))
    return out


@dataclass
class BranchEnsemble:
    """An evolved ensemble of branches and its unperturbed reference.

    Attributes
    ----------
    lattice : MobiusStrip or TokamakStack
        The lattice the fields live on.
    params : FieldParams
        Parameters of the reference (and of every branch unless kind is ``"params"``).
    branch_params : list of FieldParams
        Parameters of each branch, length ``N``.
    kind : str
        Perturbation kind.
    epsilon : float
        Perturbation size.
    seed : int
        Seed of the perturbations and the simulator.
    initial : Tensor
        Perturbed initial fields ``[N, *field_shape]``.
    branches : Tensor
        Branch fields at the final time ``[N, *field_shape]``.
    reference : Tensor
        Reference field at the final time ``field_shape``.
    times : ndarray
        Recording times ``[K]`` (time units), starting at 0.
    separation : ndarray
        ``‖ψ_b(t) − ψ_ref(t)‖`` (weighted L² norm), ``[K, N]``.
    reference_norm : ndarray
        ``‖ψ_ref(t)‖``, ``[K]``.
    fidelity_to_reference : ndarray
        ``F(ψ_b(t), ψ_ref(t))``, ``[K, N]``.
    """

    lattice: Lattice
    params: FieldParams
    branch_params: list[FieldParams]
    kind: str
    epsilon: float
    seed: int
    initial: Tensor
    branches: Tensor
    reference: Tensor
    times: FloatArray
    separation: FloatArray
    reference_norm: FloatArray
    fidelity_to_reference: FloatArray

    @property
    def n_branches(self) -> int:
        """Number of branches ``N``."""
        return int(self.branches.shape[0])

    @property
    def t_end(self) -> float:
        """Final time."""
        return float(self.times[-1])


def evolve_branches(
    lattice: Lattice,
    params: FieldParams,
    psi0: Tensor,
    *,
    n_branches: int,
    kind: str,
    epsilon: float,
    t_end: float,
    seed: int,
    dt: float = 0.05,
    integrator: str = "rk4",
    n_records: int = 40,
    stochastic: bool = False,
    progress: ProgressCallback | None = None,
) -> BranchEnsemble:
    """Perturb ``psi0`` into ``N`` branches and evolve them with the reference.

    Parameters
    ----------
    lattice, params
        Lattice and field parameters (the real simulator's equation, docs/physics.md).
    psi0
        Snapshot ``field_shape``.
    n_branches, kind, epsilon, seed
        See :func:`perturb_snapshot` and :func:`jitter_params`.
    t_end
        Evolution time (time units); ``round(t_end/dt) ≥ 1`` steps are taken.
    dt, integrator
        Passed to :class:`~hhml.core.resonance.Simulator`.
    n_records
        Approximate number of recorded times after t = 0.
    stochastic
        Keep the parameters' noise temperature and pair seeding (default: off).
    progress
        Called as ``progress("evolve", fraction)``.
    """
    lattice = check_lattice(lattice)
    if not isinstance(params, FieldParams):
        raise ConfigError(f"params must be a FieldParams, got {type(params).__name__}")
    if not (isinstance(t_end, (int, float)) and math.isfinite(t_end) and t_end > 0):
        raise ConfigError(f"t_end = {t_end!r} is not valid; it must be a finite number > 0")
    if isinstance(n_records, bool) or not isinstance(n_records, int) or n_records < 2:
        raise ConfigError(f"n_records = {n_records!r} is not valid; need an integer ≥ 2")
    params = deterministic_params(params, stochastic)
    initial = perturb_snapshot(
        psi0,
        lattice,
        kind=kind,
        epsilon=epsilon,
        n_branches=n_branches,
        seed=seed,
        core_radius=params.core_radius,
    )
    branch_params = (
        jitter_params(params, epsilon=epsilon, n_branches=n_branches, seed=seed)
        if kind == "params"
        else [params] * n_branches
    )
    sim_params: FieldParams | list[FieldParams] = (
        [params, *branch_params] if kind == "params" else params
    )
    sim = Simulator(
        lattice,
        sim_params,
        dt=dt,
        integrator=integrator,
        seed=seed,
        batch=n_branches + 1,
        initial="zero",
    )
    ref0 = psi0.to(device=lattice.device, dtype=lattice.dtype).unsqueeze(0)
    sim.psi = torch.cat([ref0, initial], dim=0)
    n_steps = max(1, round(t_end / dt))
    every = max(1, n_steps // n_records)
    weights = lattice.area_weights()
    times, seps, ref_norms, fids = [], [], [], []

    def record() -> None:
        state = sim.psi
        ref, br = state[:1], state[1:]
        times.append(sim.t)
        seps.append(field_norm(br - ref, weights).double().cpu().numpy())
        ref_norms.append(float(field_norm(ref[0], weights)))
        fids.append(fidelity(br, ref, weights).double().cpu().numpy())

    record()
    done = 0
    while done < n_steps:
        chunk = min(every, n_steps - done)
        sim.step(chunk)
        done += chunk
        record()
        if progress is not None:
            progress("evolve", done / n_steps)
    final = sim.psi
    return BranchEnsemble(
        lattice=lattice,
        params=params,
        branch_params=branch_params,
        kind=kind,
        epsilon=float(epsilon),
        seed=seed,
        initial=initial,
        branches=final[1:].clone(),
        reference=final[0].clone(),
        times=np.asarray(times, dtype=np.float64),
        separation=np.stack(seps),
        reference_norm=np.asarray(ref_norms, dtype=np.float64),
        fidelity_to_reference=np.stack(fids),
    )
