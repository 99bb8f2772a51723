"""Integrating-factor RK4 ("etd"): the linear part is integrated exactly.

Splitting ``dψ/dt = 𝓛ψ + N(ψ, t)`` with the diagonal-in-eigenbasis linear
operator ``𝓛 = (1 − γ) + (D + iα)Δ − ν₄Δ²`` of the flat lattice
(:class:`~hhml.core.resonance.spectral.FlatSpectralBasis`), the variable
``e^{−𝓛t}ψ̂`` is advanced with classical RK4. Stiff diffusion, dispersion and
the spectral filter then impose no time-step limit; only the explicit
``N = −(g + iβ)|ψ|²ψ − Vψ + S + coupling`` does. Fourth order in dt.

Public names: :class:`IntegratingFactorRK4`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hhml.core.resonance.integrators.base import RHS, Equation, Integrator, SplitEquation
from hhml.core.resonance.spectral import FlatSpectralBasis
from hhml.errors import ConfigError


class IntegratingFactorRK4(Integrator):
    """IF-RK4 in the exact eigenbasis of the flat lattice Laplacian.

    Needs a :class:`~hhml.core.resonance.integrators.base.SplitEquation` (such as
    :class:`~hhml.core.resonance.equation.FieldEquation`): a bare ``F(psi, t)`` has no
    linear part to integrate exactly.
    """

    name = "etd"
    order = 4

    def __init__(self, equation: Equation | RHS) -> None:
        super().__init__(equation)
        if not isinstance(self.equation, SplitEquation):
            raise ConfigError(
                "integrator 'etd' needs an equation with a linear part (linear_symbol, "
                "nonlinear and chart, e.g. a FieldEquation); got "
                f"{type(equation).__name__}; use 'rk4' for a bare right-hand side"
            )
        self.split: SplitEquation = self.equation

    def prepare(self) -> None:
        self.basis = FlatSpectralBasis(self.split.chart)
        self._factors: dict[tuple[float, torch.dtype], tuple[Tensor, Tensor]] = {}

    def _exp(self, dt: float, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        key = (dt, dtype)
        if key not in self._factors:
            symbol = self.split.linear_symbol(self.basis.eigenvalues).to(torch.complex128)
            half = torch.exp(0.5 * dt * symbol).to(dtype)
            full = torch.exp(dt * symbol).to(dtype)
            if len(self._factors) > 8:
                self._factors.clear()
            self._factors[key] = (half, full)
        return self._factors[key]

    def step(self, psi: Tensor, t: float, dt: float) -> Tensor:
        e_half, e_full = self._exp(dt, psi.dtype)
        fwd, inv = self.basis.forward, self.basis.inverse

        def n_hat(c: Tensor, time: float) -> Tensor:
            return dt * fwd(self.split.nonlinear(inv(c), time))

        c = fwd(psi)
        a = n_hat(c, t)
        b = n_hat(e_half * (c + 0.5 * a), t + 0.5 * dt)
        cc = n_hat(e_half * c + 0.5 * b, t + 0.5 * dt)
        d = n_hat(e_full * c + e_half * cc, t + dt)
        new = e_full * c + (e_full * a + 2.0 * e_half * (b + cc) + d) / 6.0
        return inv(new)
