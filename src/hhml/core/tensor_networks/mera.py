"""Scale-invariant ternary MERA for the critical transverse-field Ising chain.

The multi-scale entanglement renormalization ansatz (MERA) is optimised with the
Evenbly–Vidal algorithm (G. Evenbly and G. Vidal, Phys. Rev. B 79, 144108 (2009)):
each disentangler and isometry is replaced, in turn, by minus the polar factor (from
an SVD) of its linearised environment, with a Hamiltonian shifted to be negative
definite. Each update minimises the linearised energy of its own tensor, but a sweep can
still raise the total energy: the scale-invariant layer's environment leaves out the
change of its own fixed-point density matrix (at χ = 4 from random isometries the energy
error rises from 7.5e-5 to 1.6e-4 between sweeps 600 and 1500 before falling to 1.7e-5).
The optimiser therefore records the energy of every sweep and returns the lowest-energy
state it has seen, not the last one. The default start is a real-space renormalisation
(each isometry keeps the lowest eigenvectors of a three-site block Hamiltonian), which
reaches the critical fixed point in a few hundred sweeps where random isometries need
about 1600 (seed 0). Scaling dimensions follow from the spectrum of the one-site
scaling superoperator of the scale-invariant layer (R. N. C. Pfeifer, G. Evenbly and
G. Vidal, Phys. Rev. A 79, 040301 (2009)).

Model: H = −Σ_i (σˣ_i σˣ_{i+1} + σᶻ_i), ground-state energy per site −4/π in the
thermodynamic limit, scaling dimensions 1/8 (σ), 1 (ε), 9/8, 2, … Two Ising sites are
blocked into one site of dimension 4 before the first layer.

Index conventions (all tensors real float64 by default, any torch device):

* two-site operator ``h[i, j, k, l] = <i j| h |k l>`` and two-site density matrix
  ``rho`` of the same layout, shape ``(χ, χ, χ, χ)``;
* disentangler ``u[i, j, k, l]``: lower (lattice-side) legs ``i, j``, upper legs
  ``k, l``; unitary: ``u`` reshaped to ``(χ², χ²)`` is orthogonal;
* isometry ``w[a, b, c, m]``: lower legs ``a, b, c`` (dimension ``χ_low``), upper leg
  ``m`` (dimension ``χ_up``); ``w`` reshaped to ``(χ_low³, χ_up)`` has orthonormal
  columns.

Within one layer the isometry ``w_k`` acts on lower sites ``(3k, 3k+1, 3k+2)`` and the
disentanglers act on the pairs ``(3k+2, 3k+3)`` below the isometries, so the middle
leg of every isometry reaches the lower lattice directly.

Public names: :func:`ising_two_site_hamiltonian`, :class:`MeraLayer`,
:func:`random_layer`, :func:`block_layer`, :func:`ascend`, :func:`descend`,
:func:`fixed_point_density`, :func:`scaling_superoperator`, :func:`scaling_dimensions`,
:func:`isometry_defect`, :class:`MeraResult`, :func:`optimize_ising_mera`,
:data:`EXACT_ENERGY_PER_SITE`, :data:`ISING_SCALING_DIMENSIONS`, :data:`INITIALISATIONS`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from hhml.errors import ConfigError, NumericalInstabilityError

INITIALISATIONS: tuple[str, ...] = ("block", "random")
"""Valid ``init`` values of :func:`optimize_ising_mera`."""

EXACT_ENERGY_PER_SITE: float = -4.0 / math.pi
"""Ground-state energy per site of H = −Σ (σˣσˣ + σᶻ) for an infinite chain."""

ISING_SCALING_DIMENSIONS: tuple[float, ...] = (0.0, 0.125, 1.0, 1.125, 2.0)
"""Smallest scaling dimensions of the Ising CFT: 1, σ, ε, ∂σ, T/∂ε (with repeats dropped)."""

_SIGMA_X = ((0.0, 1.0), (1.0, 0.0))
_SIGMA_Z = ((1.0, 0.0), (0.0, -1.0))


def ising_two_site_hamiltonian(
    dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Nearest-neighbour term of the critical Ising chain on blocked sites.

    Two spins form one blocked site (dimension 4). The returned term ``h`` acts on two
    neighbouring blocked sites ``(x, x+1)``; summing it over ``x`` gives the full
    Hamiltonian, so ``Tr(rho h)`` is the energy per blocked site (two spins).

    Parameters
    ----------
    dtype, device
        Floating dtype and torch device of the result.

    Returns
    -------
    torch.Tensor
        ``h[i, j, k, l]``, shape ``(4, 4, 4, 4)``; ``i, k`` label blocked site ``x``
        (spin pair ``(2x, 2x+1)``) and ``j, l`` blocked site ``x+1``.
    """
    sx = torch.tensor(_SIGMA_X, dtype=dtype, device=device)
    sz = torch.tensor(_SIGMA_Z, dtype=dtype, device=device)
    eye2 = torch.eye(2, dtype=dtype, device=device)
    eye4 = torch.eye(4, dtype=dtype, device=device)
    # Term inside one block: σˣσˣ within the pair plus both σᶻ.
    intra = -(torch.kron(sx, sx) + torch.kron(sz, eye2) + torch.kron(eye2, sz))
    # Bond between blocks: σˣ on the right spin of x and the left spin of x+1.
    inter = -torch.kron(torch.kron(eye2, sx), torch.kron(sx, eye2))
    # Each intra-block term is shared by the two bonds that touch that block.
    h = inter + 0.5 * (torch.kron(intra, eye4) + torch.kron(eye4, intra))
    return h.reshape(4, 4, 4, 4)


def _random_isometry(
    rows: int, cols: int, generator: torch.Generator, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """A ``(rows, cols)`` matrix with orthonormal columns (QR of a Gaussian matrix)."""
    mat = torch.randn(rows, cols, generator=generator, dtype=torch.float64)
    q, _ = torch.linalg.qr(mat)
    out: torch.Tensor = q.to(dtype=dtype, device=device).contiguous()
    return out


def _polar_update(environment: torch.Tensor) -> torch.Tensor:
    """Minimiser of ``<environment, x>`` over matrices ``x`` with orthonormal columns.

    With ``environment = X S Yᵀ`` (thin SVD) the minimum is at ``x = −X Yᵀ``.
    """
    x, _, yh = torch.linalg.svd(environment, full_matrices=False)
    out: torch.Tensor = -(x @ yh)
    return out


@dataclass
class MeraLayer:
    """One coarse-graining layer: a disentangler and an isometry (translation invariant).

    Attributes
    ----------
    disentangler : torch.Tensor
        ``u[i, j, k, l]``, shape ``(χ_low,) * 4``; lower legs ``i, j``, upper ``k, l``.
    isometry : torch.Tensor
        ``w[a, b, c, m]``, shape ``(χ_low, χ_low, χ_low, χ_up)``; lower legs ``a, b, c``.
    """

    disentangler: torch.Tensor
    isometry: torch.Tensor

    @property
    def chi_low(self) -> int:
        """Bond dimension of the lower (finer) lattice."""
        return int(self.isometry.shape[0])

    @property
    def chi_up(self) -> int:
        """Bond dimension of the upper (coarser) lattice."""
        return int(self.isometry.shape[3])


def random_layer(
    chi_low: int,
    chi_up: int,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> MeraLayer:
    """A layer with identity disentangler and a random isometry.

    Parameters
    ----------
    chi_low, chi_up
        Lower and upper bond dimensions; ``chi_up <= chi_low**3`` is required.
    generator
        Seeded CPU generator (the same seed gives the same layer on every device).
    dtype, device
        Floating dtype and device of the tensors.

    Returns
    -------
    MeraLayer
    """
    if chi_up > chi_low**3 or chi_low < 1 or chi_up < 1:
        raise ConfigError(
            f"MERA layer needs 1 <= chi_up <= chi_low**3, got chi_low={chi_low}, chi_up={chi_up}"
        )
    dev = torch.device(device)
    u = torch.eye(chi_low**2, dtype=dtype, device=dev).reshape(chi_low, chi_low, chi_low, chi_low)
    w = _random_isometry(chi_low**3, chi_up, generator, dtype, dev)
    return MeraLayer(u, w.reshape(chi_low, chi_low, chi_low, chi_up))


def block_layer(h: torch.Tensor, chi_up: int) -> MeraLayer:
    """A real-space renormalisation layer: identity disentangler, block isometry.

    The isometry keeps the ``chi_up`` lowest eigenvectors of the three-site block
    Hamiltonian ``h ⊗ 1 + 1 ⊗ h`` on the sites ``(a, b, c)`` below it. The eigenproblem
    is solved on the CPU in float64, so the layer is the same on every device.

    Parameters
    ----------
    h : torch.Tensor
        Two-site term ``h[i, j, k, l]`` on the lower lattice, shape ``(χ_low,) * 4``.
    chi_up : int
        Upper bond dimension, ``1 <= chi_up <= χ_low**3``.

    Returns
    -------
    MeraLayer
        Tensors with the dtype and device of ``h``.
    """
    chi_low = int(h.shape[0])
    if h.shape != (chi_low,) * 4 or not 1 <= chi_up <= chi_low**3:
        raise ConfigError(
            f"block_layer needs h of shape (χ,)*4 and 1 <= chi_up <= χ**3, got h.shape="
            f"{tuple(h.shape)}, chi_up={chi_up}"
        )
    h2 = h.detach().to("cpu", torch.float64).reshape(chi_low**2, chi_low**2)
    h2 = 0.5 * (h2 + h2.T)
    eye = torch.eye(chi_low, dtype=torch.float64)
    _, vecs = torch.linalg.eigh(torch.kron(h2, eye) + torch.kron(eye, h2))
    w = vecs[:, :chi_up].reshape(chi_low, chi_low, chi_low, chi_up)
    u = torch.eye(chi_low**2, dtype=h.dtype, device=h.device)
    return MeraLayer(u.reshape((chi_low,) * 4), w.to(dtype=h.dtype, device=h.device).contiguous())


def ascend(h: torch.Tensor, layer: MeraLayer) -> torch.Tensor:
    """Ascending superoperator: a two-site operator moved up one layer.

    The operator on a pair of lower sites has three inequivalent positions relative to
    the layer (left of, under, right of a disentangler); the result is their average, so
    an operator summed over all bonds maps to the operator summed over the coarse bonds
    and ``Tr(rho_up ascend(h)) = Tr(descend(rho_up) h)`` is an energy per lower bond.

    Parameters
    ----------
    h : torch.Tensor
        ``h[i, j, k, l]``, shape ``(χ_low,) * 4``.
    layer : MeraLayer

    Returns
    -------
    torch.Tensor
        Shape ``(χ_up,) * 4``.
    """
    u, w = layer.disentangler, layer.isometry
    # Centre: h under one disentangler, whose upper legs feed w_k (right leg c) and
    # w_{k+1} (left leg d).
    hc = torch.einsum("ijkl,ijxy,xymn->klmn", u, h, u)
    left_w = torch.einsum("abcm,abCM->cmCM", w, w)  # w_k with its legs a, b traced
    right_w = torch.einsum("defn,DefN->dnDN", w, w)  # w_{k+1} with e, f traced
    a_c = torch.einsum("cmCM,cdCD,dnDN->mnMN", left_w, hc, right_w)
    # Left: h on (middle leg of w_k, left lower leg of the disentangler).
    hl = torch.einsum("iqkl,bipj,jqxy->bklpxy", u, h, u)
    wl = torch.einsum("abcm,aBCM->bcmBCM", w, w)  # w_k with leg a traced
    a_l = torch.einsum("bcmBCM,bcdBCD,dnDN->mnMN", wl, hl, right_w)
    # Right: h on (right lower leg of the disentangler, middle leg of w_{k+1}).
    hr = torch.einsum("qikl,iejf,qjxy->klexyf", u, h, u)
    wr = torch.einsum("defn,DEfN->denDEN", w, w)  # w_{k+1} with leg f traced
    a_r = torch.einsum("cmCM,cdeCDE,denDEN->mnMN", left_w, hr, wr)
    return (a_l + a_c + a_r) / 3.0


def descend(rho: torch.Tensor, layer: MeraLayer) -> torch.Tensor:
    """Descending superoperator, the adjoint of :func:`ascend`.

    ``Tr(rho ascend(h)) == Tr(descend(rho) h)`` for every ``h`` (checked in the tests).

    Parameters
    ----------
    rho : torch.Tensor
        Two-site density matrix on the upper lattice, ``rho[m, n, M, N]`` (ket ``m, n``,
        bra ``M, N``), shape ``(χ_up,) * 4``.
    layer : MeraLayer

    Returns
    -------
    torch.Tensor
        Two-site density matrix on the lower lattice, shape ``(χ_low,) * 4``.
    """
    u, w = layer.disentangler, layer.isometry
    left_w = torch.einsum("abcm,abCM->cmCM", w, w)
    right_w = torch.einsum("defn,DefN->dnDN", w, w)
    # Centre: both isometries feed one disentangler.
    mid = torch.einsum("cmCM,mnMN,dnDN->cdCD", left_w, rho, right_w)
    r_c = torch.einsum("ijcd,cdCD,xyCD->ijxy", u, mid, u)
    # Left: middle leg of w_k and the left lower leg of the disentangler.
    wl = torch.einsum("abcm,aBCM->bcmBCM", w, w)
    mid_l = torch.einsum("bcmBCM,mnMN,dnDN->bcdBCD", wl, rho, right_w)
    r_l = torch.einsum("iqcd,bcdpCD,jqCD->bipj", u, mid_l, u)
    # Right: right lower leg of the disentangler and middle leg of w_{k+1}.
    wr = torch.einsum("defn,DEfN->denDEN", w, w)
    mid_r = torch.einsum("cmCM,mnMN,denDEN->cdeCDE", left_w, rho, wr)
    r_r = torch.einsum("qicd,cdeCDf,qjCD->iejf", u, mid_r, u)
    return (r_l + r_c + r_r) / 3.0


def fixed_point_density(
    layer: MeraLayer, rho: torch.Tensor | None = None, iterations: int = 30
) -> torch.Tensor:
    """Fixed point of the descending superoperator of a scale-invariant layer.

    Power iteration (the dominant eigenvalue is 1); the result is symmetrised and
    normalised to unit trace.

    Parameters
    ----------
    layer : MeraLayer
        Scale-invariant layer (``chi_low == chi_up``).
    rho : torch.Tensor, optional
        Starting density matrix ``(χ,) * 4`` (warm start); identity/χ² if omitted.
    iterations : int
        Number of power-iteration steps.

    Returns
    -------
    torch.Tensor
        ``rho[i, j, k, l]``, shape ``(χ,) * 4``, unit trace.
    """
    chi = layer.chi_up
    if layer.chi_low != chi:
        raise ConfigError("fixed_point_density needs a scale-invariant layer (chi_low == chi_up)")
    w = layer.isometry
    if rho is None:
        rho = torch.eye(chi * chi, dtype=w.dtype, device=w.device).reshape(chi, chi, chi, chi)
    for _ in range(iterations):
        rho = descend(rho, layer)
        rho = 0.5 * (rho + rho.permute(2, 3, 0, 1))
        rho = rho / torch.einsum("ijij->", rho)
    return rho


def scaling_superoperator(layer: MeraLayer) -> torch.Tensor:
    """One-site scaling superoperator of a scale-invariant layer.

    A one-site operator on the middle leg of an isometry ascends to a one-site operator:
    ``S(o)[m, M] = Σ w[a, b, c, m] o[b, B] w[a, B, c, M]``; its eigenvalues are
    ``3^(−Δ)`` for the scaling dimensions ``Δ``.

    Returns
    -------
    torch.Tensor
        Matrix of shape ``(χ², χ²)`` acting on ``o`` flattened row-major as ``o[b, B]``.
    """
    w = layer.isometry
    s = torch.einsum("abcm,aBcM->mMbB", w, w)
    chi = layer.chi_up
    return s.reshape(chi * chi, layer.chi_low**2)


def scaling_dimensions(layer: MeraLayer, count: int = 8) -> torch.Tensor:
    """Smallest scaling dimensions ``Δ = −log₃|λ|`` from :func:`scaling_superoperator`.

    Parameters
    ----------
    layer : MeraLayer
        Scale-invariant layer.
    count : int
        Number of dimensions returned (sorted ascending, the identity's 0 first).

    Returns
    -------
    torch.Tensor
        float64 CPU tensor of shape ``(count,)``.
    """
    mat = scaling_superoperator(layer).detach().to("cpu", torch.float64)
    eig = torch.linalg.eigvals(mat).abs()
    eig = torch.sort(eig, descending=True).values[:count]
    return -torch.log(eig.clamp_min(1e-300)) / math.log(3.0)


def isometry_defect(tensor: torch.Tensor, upper_legs: int) -> float:
    """Largest deviation of ``tensorᵀ tensor`` from the identity.

    Parameters
    ----------
    tensor : torch.Tensor
        Disentangler (``upper_legs=2``) or isometry (``upper_legs=1``).
    upper_legs : int
        Number of trailing legs that form the column index.

    Returns
    -------
    float
        ``max |Mᵀ M − 1|`` with ``M`` the tensor reshaped to (lower, upper).
    """
    cols = math.prod(tensor.shape[len(tensor.shape) - upper_legs :])
    mat = tensor.reshape(-1, cols)
    eye = torch.eye(cols, dtype=mat.dtype, device=mat.device)
    return float((mat.T @ mat - eye).abs().max())


def _layer_energy(
    h: torch.Tensor, rho_up: torch.Tensor, u: torch.Tensor, w: torch.Tensor
) -> torch.Tensor:
    return torch.einsum("ijkl,klij->", rho_up, ascend(h, MeraLayer(u, w)))


def _update_layer(
    layer: MeraLayer, h: torch.Tensor, rho_up: torch.Tensor, repeats: int = 1
) -> MeraLayer:
    """Evenbly–Vidal update of one layer: disentangler(s), then isometry.

    The environment of ``u`` (or ``w``) is the derivative of the layer energy
    ``Tr(rho_up ascend(h))``; for real symmetric ``h`` and ``rho`` it equals twice the
    linearised environment (ket and bra copies contribute equally), and only its polar
    factor is used.
    """
    u, w = layer.disentangler, layer.isometry
    chi = layer.chi_low
    with torch.enable_grad():
        for _ in range(repeats):
            uv = u.detach().requires_grad_(True)
            (env_u,) = torch.autograd.grad(_layer_energy(h, rho_up, uv, w), uv)
            u = _polar_update(env_u.reshape(chi * chi, chi * chi)).reshape(u.shape)
            wv = w.detach().requires_grad_(True)
            (env_w,) = torch.autograd.grad(_layer_energy(h, rho_up, u, wv), wv)
            w = _polar_update(env_w.reshape(chi**3, layer.chi_up)).reshape(w.shape).detach()
    return MeraLayer(u.detach(), w.detach())


@dataclass
class MeraResult:
    """Outcome of :func:`optimize_ising_mera`.

    The tensors are those of the lowest-energy state seen during the optimisation (entry
    ``best_sweep`` of ``energies``), which need not be the last one.

    Attributes
    ----------
    layers : list[MeraLayer]
        Transitional layers, finest first.
    scale_invariant : MeraLayer
        The layer repeated above the transitional ones.
    rho_top : torch.Tensor
        Fixed-point two-site density matrix of the scale-invariant layer, ``(χ,) * 4``.
    energies : list[float]
        Energy per spin of the state entering each sweep (``sweeps`` entries), then of
        the state after the last sweep; each from the warm-started power iteration.
    best_sweep : int
        Index into ``energies`` of the returned state (the lowest entry).
    energy : float
        Energy per spin of the returned state, with its density matrix converged by 30
        more power-iteration steps.
    relative_error : float
        ``|energy − (−4/π)| / (4/π)``.
    scaling_dimensions : list[float]
        Smallest scaling dimensions from the one-site scaling superoperator.
    seconds : float
        Wall time of the optimisation.
    """

    layers: list[MeraLayer]
    scale_invariant: MeraLayer
    rho_top: torch.Tensor
    energies: list[float] = field(default_factory=list)
    best_sweep: int = -1
    energy: float = math.nan
    relative_error: float = math.nan
    scaling_dimensions: list[float] = field(default_factory=list)
    seconds: float = 0.0


def optimize_ising_mera(
    chi: int = 6,
    sweeps: int = 300,
    transitional_layers: int = 2,
    seed: int = 0,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float64,
    power_iterations: int = 4,
    repeats: int = 1,
    callback: Callable[[int, float], None] | None = None,
    init: str = "block",
) -> MeraResult:
    """Optimise a scale-invariant ternary MERA for the critical Ising chain.

    Each sweep: find the scale-invariant density matrix (warm-started power iteration),
    descend it through the transitional layers, record the energy, then update every
    layer bottom-up (disentangler, isometry) and ascend the Hamiltonian to the next
    layer. The scale-invariant layer is updated with the Hamiltonian reaching its
    bottom, shifted so that its largest eigenvalue is zero. A sweep can raise the energy
    (see the module docstring), so the lowest-energy state seen is kept and returned.

    Parameters
    ----------
    chi : int
        Bond dimension above the first layer (the blocked lattice has dimension 4).
    sweeps : int
        Number of optimisation sweeps.
    transitional_layers : int
        Number of layers below the scale-invariant one (at least 1).
    seed : int
        Seed of the initial isometries for ``init="random"`` (CPU generator, device
        independent); unused by ``init="block"``.
    device, dtype
        Where and in what precision to compute.
    power_iterations : int
        Power-iteration steps for the top density matrix per sweep.
    repeats : int
        Disentangler/isometry update pairs per layer and sweep.
    callback : callable, optional
        Called as ``callback(sweep, energy_per_spin)`` with the energy of the state
        entering each sweep.
    init : str
        ``"block"`` (default): every layer from :func:`block_layer` on the Hamiltonian
        ascended to it; ``"random"``: identity disentanglers and random isometries.

    Returns
    -------
    MeraResult
        The lowest-energy state seen.

    Raises
    ------
    ConfigError
        For invalid sizes or an unknown ``init``.
    NumericalInstabilityError
        If the energy becomes NaN.
    """
    if chi < 2 or sweeps < 1 or transitional_layers < 1 or power_iterations < 1 or repeats < 1:
        raise ConfigError(
            "optimize_ising_mera needs chi >= 2, sweeps >= 1, transitional_layers >= 1, "
            f"power_iterations >= 1, repeats >= 1; got chi={chi}, sweeps={sweeps}, "
            f"transitional_layers={transitional_layers}, power_iterations={power_iterations}, "
            f"repeats={repeats}"
        )
    if init not in INITIALISATIONS:
        raise ConfigError(f"optimize_ising_mera: init={init!r}; valid: {INITIALISATIONS}")
    dev = torch.device(device)
    threads = torch.get_num_threads()
    if dev.type == "cpu":
        # The contractions are tiny (at most χ⁸ flops); intra-op threading only adds
        # synchronisation overhead, which on a busy machine slows them down 100-fold.
        torch.set_num_threads(1)
    try:
        return _optimize(
            chi,
            sweeps,
            transitional_layers,
            seed,
            dev,
            dtype,
            power_iterations,
            repeats,
            callback,
            init,
        )
    finally:
        torch.set_num_threads(threads)


def _energy_per_spin(
    rho_top: torch.Tensor, layers: list[MeraLayer], h_shifted: torch.Tensor, shift: float
) -> tuple[float, list[torch.Tensor]]:
    """Energy per spin and the density matrices ``rhos[l]`` at the bottom of each layer."""
    rhos = [rho_top]
    for layer in reversed(layers):
        rhos.insert(0, descend(rhos[0], layer))
    # Tr(rho h) is the energy per blocked site, i.e. per two spins.
    energy = (float(torch.einsum("ijkl,klij->", rhos[0], h_shifted)) + shift) / 2.0
    return energy, rhos


def _optimize(
    chi: int,
    sweeps: int,
    transitional_layers: int,
    seed: int,
    dev: torch.device,
    dtype: torch.dtype,
    power_iterations: int,
    repeats: int,
    callback: Callable[[int, float], None] | None,
    init: str,
) -> MeraResult:
    start = time.perf_counter()
    h0 = ising_two_site_hamiltonian(dtype, dev)
    # Shift the bond term to be negative definite, so that each polar update lowers the
    # linearised energy of its tensor.
    shift = float(torch.linalg.eigvalsh(h0.reshape(16, 16)).max())
    h_shifted = h0 - shift * torch.eye(16, dtype=dtype, device=dev).reshape(4, 4, 4, 4)

    dims = [4] + [chi] * transitional_layers
    if init == "block":
        layers, h = [], h_shifted
        for i in range(transitional_layers):
            layers.append(block_layer(h, dims[i + 1]))
            h = ascend(h, layers[-1])
        top = block_layer(h, chi)
    else:
        gen = torch.Generator().manual_seed(seed)
        layers = [random_layer(dims[i], dims[i + 1], gen, dtype, dev) for i in range(len(dims) - 1)]
        top = random_layer(chi, chi, gen, dtype, dev)
    eye_top = torch.eye(chi * chi, dtype=dtype, device=dev).reshape(chi, chi, chi, chi)
    rho_top: torch.Tensor | None = None
    energies: list[float] = []
    # Lowest-energy state seen; the layers are never modified in place, so keeping
    # references is enough.
    best_layers, best_top, best_rho, best_sweep = list(layers), top, eye_top, 0

    for sweep in range(sweeps + 1):
        rho_top = fixed_point_density(top, rho_top, power_iterations)
        energy, rhos = _energy_per_spin(rho_top, layers, h_shifted, shift)
        if not math.isfinite(energy):
            raise NumericalInstabilityError(f"MERA energy became {energy} at sweep {sweep}")
        if not energies or energy < energies[best_sweep]:
            best_layers, best_top, best_rho, best_sweep = list(layers), top, rho_top, sweep
        energies.append(energy)
        if sweep == sweeps:
            break  # the state after the last sweep: evaluated, not updated
        if callback is not None:
            callback(sweep, energy)
        h = h_shifted
        for i, layer in enumerate(layers):
            layers[i] = _update_layer(layer, h, rhos[i + 1], repeats)
            h = ascend(h, layers[i])
        # Re-shift the ascended term so its largest eigenvalue is exactly zero: the
        # ascents accumulate a large negative identity part, whose environment (∝ the
        # tensor itself) makes the polar update of the scale-invariant layer creep and
        # leaves its scaling dimensions far from converged (Δ_ε ≈ 0.89 instead of 1).
        top_shift = float(torch.linalg.eigvalsh(h.reshape(chi * chi, chi * chi)).max())
        h_top = h - top_shift * eye_top
        top = _update_layer(top, h_top, rho_top, repeats)

    rho_top = fixed_point_density(best_top, best_rho, 30)
    energy, _ = _energy_per_spin(rho_top, best_layers, h_shifted, shift)
    dims_found = scaling_dimensions(best_top, 8).tolist()
    return MeraResult(
        layers=best_layers,
        scale_invariant=best_top,
        rho_top=rho_top,
        energies=energies,
        best_sweep=best_sweep,
        energy=energy,
        relative_error=abs(energy - EXACT_ENERGY_PER_SITE) / abs(EXACT_ENERGY_PER_SITE),
        scaling_dimensions=dims_found,
        seconds=time.perf_counter() - start,
    )
