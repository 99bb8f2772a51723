"""Mean-field GFT condensate cosmology with a massless scalar field φ as relational clock.

Conventions (Oriti, Sindoni & Wilson-Ewing, CQG 33 (2016) 224001, "Emergent Friedmann dynamics
with a quantum bounce from quantum gravity condensates"; Gielen & Oriti reviews). In the
isotropic, free (interaction-free) regime each spin mode ``j`` of the condensate wave function
obeys the linear relational equation

.. math::  σ_j''(φ) = m_j^2\\, σ_j(φ), \\qquad σ_j = ρ_j e^{iθ_j},

(primes are ``d/dφ``; ``m_j^2 = B_j/A_j`` has units of 1/φ²). In polar form

.. math::  ρ_j'' = \\frac{Q_j^2}{ρ_j^3} + m_j^2 ρ_j, \\qquad Q_j = ρ_j^2 θ_j',

with the two conserved quantities (``Q_j`` the phase current, ``E_j`` the "energy")

.. math::  Q_j = \\operatorname{Im}(\\bar σ_j σ_j'), \\qquad
           E_j = |σ_j'|^2 - m_j^2|σ_j|^2 = ρ_j'^2 + \\frac{Q_j^2}{ρ_j^2} - m_j^2 ρ_j^2 .

(``d E_j/dφ = 2ρ_j'(ρ_j'' − Q_j²/ρ_j³ − m_j²ρ_j) = 0``; note the ``+Q_j²/ρ_j²`` sign.) With
``u = ρ_j²`` the equations give ``u'' = 4 m_j^2 u + 2E_j``, whose solution obeying the
constraint is

.. math::  ρ_j(φ)^2 = -\\frac{E_j}{2m_j^2}
           + \\frac{\\sqrt{E_j^2 + 4 m_j^2 Q_j^2}}{2 m_j^2}\\cosh\\bigl(2m_j(φ - φ_0)\\bigr),

so ``min ρ_j² = (√(E_j² + 4m_j²Q_j²) − E_j)/(2m_j²)``, positive exactly when ``Q_j ≠ 0`` or
``E_j < 0``: a bounce. The volume is ``V = Σ_j V_j ρ_j²`` with ``V_j ∝ j^{3/2}`` (Planck
volumes), and

.. math::  \\Bigl(\\frac{V'}{3V}\\Bigr)^2
           = \\Bigl(\\frac{2\\sum_j V_j ρ_j\\,\\mathrm{sgn}(ρ_j')
             \\sqrt{E_j - Q_j^2/ρ_j^2 + m_j^2ρ_j^2}}{3\\sum_j V_j ρ_j^2}\\Bigr)^2
           \\;\\to\\; \\frac{4 m^2}{9} = \\frac{4πG}{3}\\quad (m_j^2 = 3πG,\\ ρ_j → ∞),

the classical flat Friedmann equation of a universe filled with a massless scalar
(``G`` Newton's constant, in units with ħ = c = 1 so that ``G φ²`` is dimensionless).

Public names: :class:`SpinMode`, :class:`CondensateSolution`, :func:`mode_from_initial_data`,
:func:`closed_form_rho_squared`, :func:`rho_squared_from_initial_data`,
:func:`bounce_phi`, :func:`integrate_radial`, :func:`integrate_complex`,
:func:`minimum_rho_squared`,
:func:`has_bounce`, :func:`volume`, :func:`friedmann_ratio`, :func:`classical_mass_squared`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.integrate

from hhml.errors import ConfigError, NumericalInstabilityError

__all__ = [
    "CondensateSolution",
    "SpinMode",
    "bounce_phi",
    "classical_mass_squared",
    "closed_form_rho_squared",
    "friedmann_ratio",
    "has_bounce",
    "integrate_complex",
    "integrate_radial",
    "minimum_rho_squared",
    "mode_from_initial_data",
    "rho_squared_from_initial_data",
    "volume",
]

FloatArray = np.ndarray


def classical_mass_squared(newton_g: float = 1.0) -> float:
    """``m² = 3πG``, the value for which the condensate reproduces classical Friedmann."""
    if newton_g <= 0:
        raise ConfigError(f"Newton's constant must be positive, got G={newton_g}")
    return 3.0 * math.pi * newton_g


@dataclass(frozen=True)
class SpinMode:
    """Initial data of one spin mode at clock time ``phi_init``.

    Attributes
    ----------
    mass : float
        ``m_j > 0`` (units 1/φ).
    rho : float
        ``ρ_j(φ_init) > 0``.
    rho_prime : float
        ``ρ_j'(φ_init)``.
    charge : float
        ``Q_j = ρ_j² θ_j'`` (conserved).
    phi_init : float
        Clock value of the data.
    weight : float
        ``V_j``, the volume carried by one quantum of spin ``j`` (e.g. ``j^{3/2}``).
    """

    mass: float
    rho: float
    rho_prime: float
    charge: float
    phi_init: float = 0.0
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not self.mass > 0:
            raise ConfigError(f"SpinMode.mass must be > 0, got {self.mass}")
        if not self.rho > 0:
            raise ConfigError(f"SpinMode.rho must be > 0, got {self.rho}")
        if not self.weight > 0:
            raise ConfigError(f"SpinMode.weight must be > 0, got {self.weight}")

    @property
    def energy(self) -> float:
        """``E_j = ρ'² + Q²/ρ² − m²ρ²`` evaluated on the initial data."""
        return self.rho_prime**2 + self.charge**2 / self.rho**2 - self.mass**2 * self.rho**2


def mode_from_initial_data(
    mass: float,
    energy: float,
    charge: float,
    phi_bounce: float,
    weight: float = 1.0,
    phi_init: float = 0.0,
) -> SpinMode:
    """Spin mode with prescribed ``(E_j, Q_j)`` whose ``ρ_j`` is minimal at ``phi_bounce``.

    The data at ``phi_init`` are read off the cosh form:
    ``ρ² = −E/(2m²) + A cosh x``, ``ρρ' = m A sinh x`` with ``x = 2m(φ_init − φ_0)``,
    ``A = √(E² + 4m²Q²)/(2m²)``. Requires a bounce (``Q ≠ 0`` or ``E < 0``), otherwise ``ρ``
    reaches 0 and there is no minimum.
    """
    if not mass > 0:
        raise ConfigError(f"mass must be > 0, got {mass}")
    if not has_bounce(energy, charge):
        raise ConfigError(
            f"(E={energy}, Q={charge}) has no bounce (needs Q != 0 or E < 0); "
            "give initial data away from ρ = 0 with SpinMode instead"
        )
    x = 2.0 * mass * (phi_init - phi_bounce)
    amp = math.hypot(energy, 2.0 * mass * charge) / (2.0 * mass**2)
    rho2 = minimum_rho_squared(mass, energy, charge) + amp * (math.cosh(x) - 1.0)
    rho = math.sqrt(rho2)
    return SpinMode(mass, rho, mass * amp * math.sinh(x) / rho, charge, phi_init, weight)


def minimum_rho_squared(mass: float, energy: float, charge: float) -> float:
    """``min_φ ρ² = (√(E² + 4m²Q²) − E)/(2m²)`` (0 when ``Q = 0`` and ``E >= 0``).

    Computed as ``2Q²/(√(E² + 4m²Q²) + E)`` for ``E > 0`` to avoid cancellation.
    """
    root = math.hypot(energy, 2.0 * mass * charge)
    if energy > 0:
        return 2.0 * charge**2 / (root + energy)
    return (root - energy) / (2.0 * mass**2)


def has_bounce(energy: float, charge: float) -> bool:
    """Whether the volume has a non-zero minimum: ``Q ≠ 0`` or ``E < 0``."""
    return charge != 0.0 or energy < 0.0


def closed_form_rho_squared(
    phi: FloatArray | float, mass: float, energy: float, charge: float, phi0: float
) -> FloatArray:
    """``ρ² = −E/(2m²) + √(E² + 4m²Q²)/(2m²) cosh(2m(φ − φ_0))`` (the cosh form)."""
    ph = np.asarray(phi, dtype=np.float64)
    amp = math.hypot(energy, 2.0 * mass * charge) / (2.0 * mass**2)
    return np.asarray(-energy / (2.0 * mass**2) + amp * np.cosh(2.0 * mass * (ph - phi0)))


def rho_squared_from_initial_data(phi: FloatArray | float, mode: SpinMode) -> FloatArray:
    """Closed-form ``ρ_j²(φ)`` from the initial data (valid for every ``E, Q``, bounce or not).

    ``u = ρ²`` solves ``u'' = 4m²u + 2E``; with ``x = 2m(φ − φ_init)``,
    ``u = −E/(2m²) + α eˣ + β e⁻ˣ`` where ``α + β = u(φ_init) + E/(2m²)`` and
    ``2m(α − β) = u'(φ_init) = 2ρρ'``. (The constraint gives ``4αβ = A²``, the cosh
    amplitude squared, so this equals :func:`closed_form_rho_squared` with
    ``φ_0 = φ_init − ln(α/β)/(4m)``.)
    """
    m, e = mode.mass, mode.energy
    c = -e / (2.0 * m**2)
    s = mode.rho**2 - c
    d = 2.0 * mode.rho * mode.rho_prime / (2.0 * m)
    alpha, beta = 0.5 * (s + d), 0.5 * (s - d)
    x = 2.0 * m * (np.asarray(phi, dtype=np.float64) - mode.phi_init)
    return np.asarray(c + alpha * np.exp(x) + beta * np.exp(-x))


def bounce_phi(mode: SpinMode) -> float:
    """``φ_0`` of the cosh form, ``φ_init − ln(α/β)/(4m)`` (requires ``α, β > 0``)."""
    m, e = mode.mass, mode.energy
    s = mode.rho**2 + e / (2.0 * m**2)
    d = mode.rho * mode.rho_prime / m
    alpha, beta = 0.5 * (s + d), 0.5 * (s - d)
    if alpha <= 0 or beta <= 0:
        raise ConfigError(f"mode {mode} has no bounce (E={e}, Q={mode.charge})")
    return mode.phi_init - math.log(alpha / beta) / (4.0 * m)


@dataclass(frozen=True)
class CondensateSolution:
    """Numerical trajectory of several spin modes.

    Attributes
    ----------
    phi : numpy.ndarray
        Clock values, shape ``(n,)``.
    rho : numpy.ndarray
        ``ρ_j(φ)``, shape ``(n_modes, n)``.
    rho_prime : numpy.ndarray
        ``ρ_j'(φ)``, shape ``(n_modes, n)``.
    energy : numpy.ndarray
        ``E_j`` evaluated along the trajectory, shape ``(n_modes, n)``.
    charge : numpy.ndarray
        ``Q_j`` along the trajectory, shape ``(n_modes, n)`` (constant by construction for
        :func:`integrate_radial`, measured from ``Im(σ̄σ')`` for :func:`integrate_complex`).
    weights : numpy.ndarray
        ``V_j``, shape ``(n_modes,)``.
    """

    phi: FloatArray
    rho: FloatArray
    rho_prime: FloatArray
    energy: FloatArray
    charge: FloatArray
    weights: FloatArray

    @property
    def volume(self) -> FloatArray:
        """``V(φ) = Σ_j V_j ρ_j²``, shape ``(n,)``."""
        return np.asarray(self.weights @ self.rho**2)

    @property
    def volume_prime(self) -> FloatArray:
        """``V'(φ) = Σ_j 2 V_j ρ_j ρ_j'``, shape ``(n,)``."""
        return np.asarray(self.weights @ (2.0 * self.rho * self.rho_prime))


def _phi_grid(
    modes: Sequence[SpinMode], phi_span: tuple[float, float], n_points: int
) -> tuple[float, FloatArray]:
    if not modes:
        raise ConfigError("need at least one spin mode")
    phi_init = modes[0].phi_init
    if any(md.phi_init != phi_init for md in modes):
        raise ConfigError("all spin modes must share phi_init")
    lo, hi = phi_span
    if not lo <= phi_init <= hi or lo >= hi:
        raise ConfigError(f"phi_span {phi_span} must contain phi_init={phi_init}")
    if n_points < 2:
        raise ConfigError(f"n_points must be >= 2, got {n_points}")
    return phi_init, np.linspace(lo, hi, n_points)


def _two_sided(
    rhs: object, y0: FloatArray, phi_init: float, grid: FloatArray, rtol: float, atol: float
) -> FloatArray:
    """Integrate from ``phi_init`` forwards and backwards; return ``y`` on ``grid``."""
    out = np.empty((y0.size, grid.size))
    for mask in (grid >= phi_init, grid < phi_init):
        pts = grid[mask]
        if pts.size == 0:
            continue
        end = float(pts[-1] if pts[0] >= phi_init else pts[0])
        t_eval = pts if end >= phi_init else pts[::-1]
        if end == phi_init:
            out[:, mask] = y0[:, None]
            continue
        sol = scipy.integrate.solve_ivp(
            rhs,  # type: ignore[arg-type]
            (phi_init, end),
            y0,
            method="DOP853",
            t_eval=t_eval,
            rtol=rtol,
            atol=atol,
        )
        if not sol.success:
            raise NumericalInstabilityError(f"condensate integration failed: {sol.message}")
        out[:, mask] = sol.y if end >= phi_init else sol.y[:, ::-1]
    return out


def integrate_radial(
    modes: Sequence[SpinMode],
    phi_span: tuple[float, float],
    n_points: int = 401,
    rtol: float = 1e-10,
    atol: float = 1e-12,
) -> CondensateSolution:
    """Integrate ``ρ_j'' = Q_j²/ρ_j³ + m_j²ρ_j`` for every mode (DOP853, ``solve_ivp``).

    Requires a bounce for every mode (``ρ_j`` must not reach 0, where ``Q²/ρ³`` is singular);
    without one use :func:`integrate_complex`.
    """
    phi_init, grid = _phi_grid(modes, phi_span, n_points)
    for md in modes:
        if not has_bounce(md.energy, md.charge):
            raise ConfigError(f"radial equation reaches ρ = 0 for mode {md}; use integrate_complex")
    m = np.array([md.mass for md in modes])
    q = np.array([md.charge for md in modes])
    k = len(modes)

    def rhs(_phi: float, y: FloatArray) -> FloatArray:
        rho, rp = y[:k], y[k:]
        return np.concatenate([rp, q**2 / rho**3 + m**2 * rho])

    y0 = np.array([md.rho for md in modes] + [md.rho_prime for md in modes])
    y = _two_sided(rhs, y0, phi_init, grid, rtol, atol)
    rho, rp = y[:k], y[k:]
    energy = rp**2 + (q**2)[:, None] / rho**2 - (m**2)[:, None] * rho**2
    return CondensateSolution(
        grid, rho, rp, energy, np.repeat(q[:, None], grid.size, 1), _weights(modes)
    )


def integrate_complex(
    modes: Sequence[SpinMode],
    phi_span: tuple[float, float],
    n_points: int = 401,
    rtol: float = 1e-10,
    atol: float = 1e-12,
) -> CondensateSolution:
    """Integrate the linear equation ``σ_j'' = m_j² σ_j`` in Cartesian form.

    Initial data ``σ = ρ``, ``σ' = ρ' + iQ/ρ`` (phase 0 at ``φ_init``). ``Q_j = Im(σ̄σ')`` and
    ``E_j = |σ'|² − m²|σ|²`` are then *measured* along the trajectory, so their constancy is a
    genuine test of the integrator; ``ρ = |σ|``, ``ρ' = Re(σ̄σ')/ρ``.
    """
    phi_init, grid = _phi_grid(modes, phi_span, n_points)
    m = np.array([md.mass for md in modes])
    k = len(modes)

    def rhs(_phi: float, y: FloatArray) -> FloatArray:
        return np.concatenate([y[2 * k :], np.tile(m**2, 2) * y[: 2 * k]])

    y0 = np.concatenate(
        [
            [md.rho for md in modes],
            np.zeros(k),
            [md.rho_prime for md in modes],
            [md.charge / md.rho for md in modes],
        ]
    )
    y = _two_sided(rhs, y0, phi_init, grid, rtol, atol)
    sig = y[:k] + 1j * y[k : 2 * k]
    dsig = y[2 * k : 3 * k] + 1j * y[3 * k :]
    rho = np.abs(sig)
    prod = np.conj(sig) * dsig
    energy = np.abs(dsig) ** 2 - (m**2)[:, None] * rho**2
    return CondensateSolution(grid, rho, prod.real / rho, energy, prod.imag, _weights(modes))


def _weights(modes: Sequence[SpinMode]) -> FloatArray:
    return np.array([md.weight for md in modes], dtype=np.float64)


def volume(phi: FloatArray | float, modes: Sequence[SpinMode]) -> FloatArray:
    """Closed-form ``V(φ) = Σ_j V_j ρ_j²(φ)``."""
    return np.asarray(sum(md.weight * rho_squared_from_initial_data(phi, md) for md in modes))


def friedmann_ratio(solution: CondensateSolution, newton_g: float = 1.0) -> FloatArray:
    """``(V'/3V)² / (4πG/3)`` along a trajectory; → 1 at large volume when ``m_j² = 3πG``."""
    if newton_g <= 0:
        raise ConfigError(f"Newton's constant must be positive, got G={newton_g}")
    h = solution.volume_prime / (3.0 * solution.volume)
    return np.asarray(h**2 / (4.0 * math.pi * newton_g / 3.0))
