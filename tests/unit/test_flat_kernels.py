"""Flat-metric Laplacian and CGL right-hand side against an index-loop reference.

The reference below is written independently of the module: plain complex numbers, one
lattice node at a time, with the seam and edge rules of DESIGN.md §3 spelled out. The eager
kernel is checked against it for every topology, edge condition and twist; the compiled
kernel on a couple of shapes by default (each new shape compiles for seconds) and on the full
matrix under ``-m slow``.
"""

from __future__ import annotations

import cmath
import itertools
import logging
import subprocess
import sys

import numpy as np
import pytest
import torch

from hhml.core.resonance import flat_kernels
from hhml.core.resonance.flat_kernels import (
    COMPILE_STATUS,
    EDGES,
    TOPOLOGIES,
    flat_cgl_rhs,
    flat_laplacian,
)
from hhml.errors import ConfigError, LatticeError

DU, DV = 0.5, 0.4
PARAMS = {
    "damping": 0.1,
    "diffusion": 0.5,
    "dispersion": 0.3,
    "nonlinearity": 1.0,
    "nonlinear_frequency": 0.5,
}


# ---------------------------------------------------------------------------------------------
# Independent reference
# ---------------------------------------------------------------------------------------------


def reference_laplacian(
    psi: np.ndarray, topology: str, edge: str, twist: float, du: float, dv: float
) -> np.ndarray:
    """Five-point Laplacian of one ``[nu, nv]`` complex field, node by node."""
    nu, nv = psi.shape
    out = np.zeros_like(psi)
    for i in range(nu):
        for j in range(nv):
            seam_j = nv - 1 - j if topology == "mobius" else j
            up = psi[i + 1, j] if i + 1 < nu else cmath.exp(1j * twist) * psi[0, seam_j]
            down = psi[i - 1, j] if i >= 1 else cmath.exp(-1j * twist) * psi[nu - 1, seam_j]

            # Off the v edges: periodic wrap on the torus, else a cell-centred ghost.
            ghost = -psi[i, j] if edge == "dirichlet" else psi[i, j]
            right = psi[i, j + 1] if j + 1 < nv else psi[i, 0] if topology == "torus" else ghost
            left = psi[i, j - 1] if j >= 1 else psi[i, nv - 1] if topology == "torus" else ghost
            out[i, j] = (up - 2 * psi[i, j] + down) / du**2 + (right - 2 * psi[i, j] + left) / dv**2
    return out


def reference_rhs(
    psi: np.ndarray,
    topology: str,
    edge: str,
    twist: float,
    du: float,
    dv: float,
    *,
    damping: float,
    diffusion: float,
    dispersion: float,
    nonlinearity: float,
    nonlinear_frequency: float,
    potential: np.ndarray | None = None,
    source: np.ndarray | None = None,
) -> np.ndarray:
    """(1 − γ)ψ + (D + iα)Δψ − (g + iβ)|ψ|²ψ − Vψ + S for one ``[nu, nv]`` field."""
    lap = reference_laplacian(psi, topology, edge, twist, du, dv)
    nu, nv = psi.shape
    out = np.zeros_like(psi)
    for i in range(nu):
        for j in range(nv):
            p = psi[i, j]
            value = (1 - damping) * p + complex(diffusion, dispersion) * lap[i, j]
            value -= complex(nonlinearity, nonlinear_frequency) * abs(p) ** 2 * p
            if potential is not None:
                value -= potential[i, j] * p
            if source is not None:
                value += source[i, j]
            out[i, j] = value
    return out


def random_field(shape: tuple[int, ...], dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, dtype=dtype, generator=gen)


def assert_close(actual: torch.Tensor, expected: np.ndarray | torch.Tensor, tol: float) -> None:
    expected_t = torch.as_tensor(expected).to(actual.dtype)
    assert actual.shape == expected_t.shape
    scale = max(1.0, float(expected_t.abs().max()))
    err = float((actual - expected_t).abs().max())
    assert err <= tol * scale, f"max error {err:.3e} exceeds {tol:.0e} x {scale:.3g}"


# ---------------------------------------------------------------------------------------------
# Eager kernel against the reference
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("twist", [0.0, 0.7])
@pytest.mark.parametrize(("topology", "edge"), list(itertools.product(TOPOLOGIES, EDGES)))
def test_eager_matches_reference(topology: str, edge: str, twist: float) -> None:
    psi = random_field((6, 4), torch.complex128)
    gen = torch.Generator().manual_seed(1)
    potential = torch.rand((6, 4), dtype=torch.float64, generator=gen)
    source = torch.randn((6, 4), dtype=torch.complex128, generator=gen)
    lattice = {"topology": topology, "edge": edge, "twist": twist, "du": DU, "dv": DV}

    lap = flat_laplacian(psi, compiled=False, **lattice)
    assert_close(lap, reference_laplacian(psi.numpy(), topology, edge, twist, DU, DV), 1e-12)

    rhs = flat_cgl_rhs(psi, potential=potential, source=source, compiled=False, **lattice, **PARAMS)
    expected = reference_rhs(
        psi.numpy(),
        topology,
        edge,
        twist,
        DU,
        DV,
        potential=potential.numpy(),
        source=source.numpy(),
        **PARAMS,
    )
    assert_close(rhs, expected, 1e-12)
    assert rhs.is_contiguous() and rhs.dtype == torch.complex128


def test_eager_batch_and_per_batch_parameters() -> None:
    psi = random_field((2, 3, 6, 4), torch.complex128)
    gamma = torch.tensor([0.1, 0.3]).view(2, 1, 1, 1)
    beta = torch.tensor([[0.5, -0.2, 0.0]], dtype=torch.float64).view(1, 3, 1, 1)
    twist = torch.tensor([0.0, 0.7], dtype=torch.float64).view(2, 1, 1, 1)
    params = {**PARAMS, "damping": gamma, "nonlinear_frequency": beta}
    rhs = flat_cgl_rhs(
        psi,
        topology="mobius",
        edge="dirichlet",
        twist=twist,
        du=DU,
        dv=DV,
        compiled=False,
        **params,
    )
    assert rhs.shape == psi.shape
    for b, c in itertools.product(range(2), range(3)):
        scalars = {**PARAMS, "damping": float(gamma[b]), "nonlinear_frequency": float(beta[0, c])}
        expected = reference_rhs(
            psi[b, c].numpy(), "mobius", "dirichlet", float(twist[b]), DU, DV, **scalars
        )
        assert_close(rhs[b, c], expected, 1e-12)


def test_broadcast_potential_and_source() -> None:
    psi = random_field((6, 5), torch.complex128)
    potential = torch.linspace(0.0, 1.0, 6, dtype=torch.float64).view(6, 1)
    source = torch.tensor(0.3 - 0.2j, dtype=torch.complex128)
    rhs = flat_cgl_rhs(
        psi,
        topology="cylinder",
        edge="neumann",
        twist=0.7,
        du=DU,
        dv=DV,
        potential=potential,
        source=source,
        compiled=False,
        **PARAMS,
    )
    expected = reference_rhs(
        psi.numpy(),
        "cylinder",
        "neumann",
        0.7,
        DU,
        DV,
        potential=np.broadcast_to(potential.numpy(), (6, 5)),
        source=np.full((6, 5), 0.3 - 0.2j),
        **PARAMS,
    )
    assert_close(rhs, expected, 1e-12)


def test_conjugate_and_strided_inputs() -> None:
    base = random_field((8, 6), torch.complex128)
    lattice = {"topology": "mobius", "edge": "neumann", "twist": 0.7, "du": DU, "dv": DV}
    for psi in (base.conj(), base.t().contiguous().t()[:, ::1], base[::2]):
        expected = reference_rhs(psi.resolve_conj().numpy(), **lattice, **PARAMS)
        assert_close(flat_cgl_rhs(psi, compiled=False, **lattice, **PARAMS), expected, 1e-12)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"topology": "klein"}, LatticeError),
        ({"edge": "robin"}, LatticeError),
        ({"du": 0.0}, LatticeError),
        ({"damping": torch.ones(4)}, ConfigError),
        ({"damping": torch.ones(3, 1, 1)}, ConfigError),
        ({"dispersion": torch.ones(1, 1, dtype=torch.complex128)}, ConfigError),
        ({"potential": torch.ones(6, 4, dtype=torch.complex128)}, ConfigError),
        ({"source": torch.ones(2, 6, 4, dtype=torch.complex128)}, ConfigError),
    ],
)
def test_invalid_arguments(kwargs: dict[str, object], error: type[Exception]) -> None:
    args: dict[str, object] = {"topology": "mobius", "edge": "dirichlet", "twist": 0.0}
    args |= {"du": DU, "dv": DV, **PARAMS}
    args.update(kwargs)
    with pytest.raises(error):
        flat_cgl_rhs(random_field((6, 4), torch.complex128), compiled=False, **args)  # type: ignore[arg-type]
    with pytest.raises(LatticeError):
        flat_laplacian(torch.ones(6, 4), topology="mobius", edge="dirichlet", twist=0.0, du=1, dv=1)


# ---------------------------------------------------------------------------------------------
# Compiled kernel
# ---------------------------------------------------------------------------------------------


def test_import_does_not_compile() -> None:
    code = (
        "import hhml.core.resonance.flat_kernels as fk; "
        "assert fk.COMPILE_STATUS.state == 'untried' and fk.COMPILE_STATUS.kernels == 0"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_compiled_rhs_batch_parameters_potential_source() -> None:
    """One compiled shape covering batch dims, per-batch values, V, S and the Möbius seam."""
    psi = random_field((2, 3, 6, 8), torch.complex128)
    gen = torch.Generator().manual_seed(2)
    potential = torch.rand((6, 8), dtype=torch.float64, generator=gen)
    source = torch.randn((3, 6, 8), dtype=torch.complex128, generator=gen)
    params = {
        **PARAMS,
        "diffusion": torch.tensor([0.5, 0.2], dtype=torch.float64).view(2, 1, 1, 1),
        "nonlinearity": torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64).view(1, 3, 1, 1),
    }
    lattice = {"topology": "mobius", "edge": "dirichlet", "twist": 0.7, "du": DU, "dv": DV}

    def both() -> tuple[torch.Tensor, torch.Tensor]:
        common = {"potential": potential, "source": source, **lattice, **params}
        return flat_cgl_rhs(psi, compiled=True, **common), flat_cgl_rhs(
            psi, compiled=False, **common
        )

    compiled, eager = both()
    if COMPILE_STATUS.state == "unavailable":
        pytest.skip(f"torch.compile unavailable here: {COMPILE_STATUS.reason}")
    assert compiled.is_contiguous() and compiled.dtype == torch.complex128
    assert_close(compiled, eager, 1e-12)
    for b, c in itertools.product(range(2), range(3)):
        scalars = {
            **PARAMS,
            "diffusion": float(params["diffusion"][b]),
            "nonlinearity": float(params["nonlinearity"][0, c]),
        }
        expected = reference_rhs(
            psi[b, c].numpy(),
            "mobius",
            "dirichlet",
            0.7,
            DU,
            DV,
            potential=potential.numpy(),
            source=source[c].numpy(),
            **scalars,
        )
        assert_close(compiled[b, c], expected, 1e-12)

    # The interleaved potential is cached; an in-place change must invalidate it.
    potential.mul_(3.0)
    compiled, eager = both()
    assert_close(compiled, eager, 1e-12)


def test_compiled_laplacian_complex64() -> None:
    psi = random_field((5, 8, 12), torch.complex64)
    lattice = {"topology": "cylinder", "edge": "neumann", "twist": 0.7, "du": DU, "dv": DV}
    compiled = flat_laplacian(psi, compiled=True, **lattice)
    if COMPILE_STATUS.state == "unavailable":
        pytest.skip(f"torch.compile unavailable here: {COMPILE_STATUS.reason}")
    eager = flat_laplacian(psi, compiled=False, **lattice)
    assert compiled.dtype == torch.complex64 and compiled.is_contiguous()
    assert_close(compiled, eager, 1e-5)
    expected = reference_laplacian(
        psi[3].to(torch.complex128).numpy(), "cylinder", "neumann", 0.7, DU, DV
    )
    assert_close(compiled[3].to(torch.complex128), expected, 1e-5)


def test_unavailable_compiler_falls_back_with_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        def kernel(*a: object, **k: object) -> torch.Tensor:
            raise RuntimeError("no C++ compiler found")

        return kernel

    monkeypatch.setattr(flat_kernels, "_make_compiled", broken)
    monkeypatch.setattr(COMPILE_STATUS, "state", COMPILE_STATUS.state)
    monkeypatch.setattr(COMPILE_STATUS, "reason", COMPILE_STATUS.reason)
    psi = random_field((7, 9), torch.complex128)
    lattice = {"topology": "torus", "edge": "dirichlet", "twist": 0.3, "du": DU, "dv": DV}
    with caplog.at_level(logging.WARNING, logger=flat_kernels.__name__):
        out = flat_cgl_rhs(psi, compiled=True, **lattice, **PARAMS)
    assert COMPILE_STATUS.state == "unavailable"
    assert "no C++ compiler found" in COMPILE_STATUS.reason
    assert any("unavailable" in record.getMessage() for record in caplog.records)
    assert_close(out, flat_cgl_rhs(psi, compiled=False, **lattice, **PARAMS), 0.0)
    # Later calls stay eager without trying (or warning) again.
    caplog.clear()
    flat_laplacian(psi, compiled=True, **lattice)
    assert not caplog.records


def test_small_grids_default_to_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> object:
        raise AssertionError("a small grid must not be compiled by default")

    monkeypatch.setattr(flat_kernels, "_make_compiled", forbidden)
    psi = random_field((16, 16), torch.complex128)
    flat_cgl_rhs(psi, topology="mobius", edge="dirichlet", twist=0.0, du=DU, dv=DV, **PARAMS)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64])
@pytest.mark.parametrize("twist", [0.0, 0.7])
@pytest.mark.parametrize(("topology", "edge"), list(itertools.product(TOPOLOGIES, EDGES)))
def test_compiled_matches_eager_everywhere(
    topology: str, edge: str, twist: float, dtype: torch.dtype
) -> None:
    psi = random_field((6, 4), dtype)
    gen = torch.Generator().manual_seed(3)
    potential = torch.rand((6, 4), dtype=torch.float64, generator=gen)
    source = torch.randn((6, 4), dtype=dtype, generator=gen)
    lattice = {"topology": topology, "edge": edge, "twist": twist, "du": DU, "dv": DV}
    tol = 1e-12 if dtype == torch.complex128 else 1e-5
    common = {"potential": potential, "source": source, **lattice, **PARAMS}
    compiled = flat_cgl_rhs(psi, compiled=True, **common)
    if COMPILE_STATUS.state == "unavailable":
        pytest.skip(f"torch.compile unavailable here: {COMPILE_STATUS.reason}")
    assert_close(compiled, flat_cgl_rhs(psi, compiled=False, **common), tol)
    lap = flat_laplacian(psi, compiled=True, **lattice)
    assert_close(lap, flat_laplacian(psi, compiled=False, **lattice), tol)
    if dtype == torch.complex128:
        expected = reference_rhs(
            psi.numpy(),
            topology,
            edge,
            twist,
            DU,
            DV,
            potential=potential.numpy(),
            source=source.numpy(),
            **PARAMS,
        )
        assert_close(compiled, expected, 1e-12)


@pytest.mark.slow
def test_compiled_large_grid_matches_eager() -> None:
    psi = random_field((2, 160, 136), torch.complex128)
    lattice = {"topology": "mobius", "edge": "neumann", "twist": 2.0, "du": 0.05, "dv": 0.03}
    assert_close(
        flat_cgl_rhs(psi, **lattice, **PARAMS),
        flat_cgl_rhs(psi, compiled=False, **lattice, **PARAMS),
        1e-12,
    )
