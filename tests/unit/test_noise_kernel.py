"""Tests of the C++ thermal-noise kernel (``hhml.core.resonance.noise_kernel``) and of
:class:`~hhml.core.resonance.stochastic.NoiseIncrement`, which uses it on the CPU.

References: the published Philox4x32-10 known-answer vectors; an independent NumPy Philox
and float64 Box–Muller of the documented stream; exact normal and Kolmogorov statistics;
the exact stationary variance of the discrete RK4 + Euler–Maruyama Ornstein–Uhlenbeck
process. Every seed is fixed, so the statistical checks are deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from hhml.config.schema import FieldParams
from hhml.core.mobius import MobiusStrip
from hhml.core.resonance import Simulator
from hhml.core.resonance import stochastic as stochastic_module
from hhml.core.resonance.noise_kernel import (
    NOISE_STATUS,
    cpp_noise_add,
    cpp_noise_increment,
    cpp_philox4x32_10,
    draw_key,
    noise_simd_level,
)
from hhml.core.resonance.stochastic import NoiseIncrement
from hhml.errors import ConfigError
from hhml.utils.host_sync import forbid_host_sync

C64, C128 = torch.complex64, torch.complex128
MASK = 0xFFFFFFFF


@pytest.fixture(scope="module")
def kernel_level() -> int:
    """The best code path of the kernel build (skips the test where there is none)."""
    level = noise_simd_level()
    if level is None:
        pytest.skip(f"noise kernel unavailable: {NOISE_STATUS.reason}")
    return level


needs_kernel = pytest.mark.usefixtures("kernel_level")


def kernel_xi(n: int, key: int, dtype: torch.dtype, level: int | None = None) -> torch.Tensor:
    """The kernel's ξ for elements 0 .. n−1 under ``key`` (ψ = 0, σ = 1)."""
    out = cpp_noise_add(
        torch.zeros(n, dtype=dtype), None, 1.0, torch.tensor([key]), False, level=level
    )
    assert out is not None
    return out


# ---------------------------------------------------------------------------------------------
# Philox4x32-10


# Random123 (D. E. Shaw Research), tests/kat_vectors, the three "philox4x32 10" lines
# (https://github.com/DEShawResearch/random123/blob/main/tests/kat_vectors): counter words,
# key words, expected output words.
KAT = [
    ((0x00000000, 0x00000000, 0x00000000, 0x00000000), (0x00000000, 0x00000000),
     (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF),
     (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]  # fmt: skip


def philox_reference(counter: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Philox4x32-10 in NumPy from the SC'11 definition: counters ``[N, 4]``, keys ``[N, 2]``
    (uint64 holding 32-bit words) -> ``[N, 4]``."""
    c = [counter[:, k].astype(np.uint64) for k in range(4)]
    k0, k1 = key[:, 0].astype(np.uint64), key[:, 1].astype(np.uint64)
    for r in range(10):
        if r:
            k0, k1 = (k0 + 0x9E3779B9) & MASK, (k1 + 0xBB67AE85) & MASK
        p0 = c[0] * np.uint64(0xD2511F53)  # < 2^64: no overflow
        p1 = c[2] * np.uint64(0xCD9E8D57)
        hi0, hi1 = p0 >> np.uint64(32), p1 >> np.uint64(32)
        c = [hi1 ^ c[1] ^ k0, p1 & MASK, hi0 ^ c[3] ^ k1, p0 & MASK]
    return np.stack(c, axis=1)


@pytest.mark.parametrize("level", [0, 1, 2])
def test_philox_matches_the_published_known_answers(level: int, kernel_level: int) -> None:
    if level > kernel_level:
        pytest.skip(f"this build's best code path is level {kernel_level}")
    counter = torch.tensor([row[0] for row in KAT], dtype=torch.int64)
    key = torch.tensor([row[1] for row in KAT], dtype=torch.int64)
    out = cpp_philox4x32_10(counter, key, level=level)
    assert out is not None
    assert out.tolist() == [list(row[2]) for row in KAT]
    # and the NumPy reference the stream tests below rely on
    ref = philox_reference(counter.numpy().astype(np.uint64), key.numpy().astype(np.uint64))
    assert ref.tolist() == [list(row[2]) for row in KAT]


def test_philox_of_random_words_matches_the_reference_on_every_path(kernel_level: int) -> None:
    gen = torch.Generator().manual_seed(5)
    counter = torch.randint(0, 2**32, (64, 4), generator=gen, dtype=torch.int64)
    key = torch.randint(0, 2**32, (64, 2), generator=gen, dtype=torch.int64)
    ref = philox_reference(counter.numpy().astype(np.uint64), key.numpy().astype(np.uint64))
    for level in range(kernel_level + 1):
        out = cpp_philox4x32_10(counter, key, level=level)
        assert out is not None and np.array_equal(out.numpy().astype(np.uint64), ref)


@needs_kernel
def test_philox_rejects_malformed_words() -> None:
    with pytest.raises(ConfigError, match=r"counter is torch\.int32 \[1, 4\]"):
        cpp_philox4x32_10(
            torch.zeros(1, 4, dtype=torch.int32), torch.zeros(1, 2, dtype=torch.int64)
        )
    with pytest.raises(ConfigError, match=r"key has values outside \[0, 2\*\*32\)"):
        cpp_philox4x32_10(
            torch.zeros(1, 4, dtype=torch.int64), torch.full((1, 2), 2**32, dtype=torch.int64)
        )
    with pytest.raises(ConfigError, match="level = 3 is not valid"):
        cpp_philox4x32_10(
            torch.zeros(1, 4, dtype=torch.int64), torch.zeros(1, 2, dtype=torch.int64), level=3
        )


# ---------------------------------------------------------------------------------------------
# the stream: counters, uniforms, Box–Muller


def reference_xi(n: int, key: int, dtype: torch.dtype) -> np.ndarray:
    """ξ of elements 0 .. n−1 from the documented stream, in float64 (NumPy Philox)."""
    k = key % 2**64
    e = np.arange(n, dtype=np.uint64)
    if dtype == C64:
        j = np.uint64(8) * (e // np.uint64(16)) + e % np.uint64(8)
        half = ((e % np.uint64(16)) // np.uint64(8)).astype(np.int64)
    else:
        j, half = e, np.zeros(n, dtype=np.int64)
    counter = np.stack([j & MASK, j >> np.uint64(32), 0 * j, 0 * j], axis=1)
    keys = np.tile(np.array([k & MASK, k >> 32], dtype=np.uint64), (n, 1))
    w = philox_reference(counter, keys)
    rows = np.arange(n)
    if dtype == C64:
        a, b = w[rows, 2 * half], w[rows, 2 * half + 1]
        # u = float32((a >> 1) | 1) 2^-31: the float32 rounding is part of the definition
        u = ((a >> np.uint64(1)) | np.uint64(1)).astype(np.float32).astype(np.float64) * 2.0**-31
        theta = 2 * np.pi * b.astype(np.float64) * 2.0**-32
    else:
        u = w[:, 0] * 2.0**-32 + (w[:, 1] + 0.5) * 2.0**-64
        theta = 2 * np.pi * (w[:, 2] * 2.0**-32 + w[:, 3] * 2.0**-64)
    return np.sqrt(-np.log(u)) * np.exp(1j * theta)


@needs_kernel
@pytest.mark.parametrize("dtype", [C64, C128])
def test_normals_follow_the_documented_stream(dtype: torch.dtype) -> None:
    """Kernel ξ against the float64 reference of the documented counter / uniform / angle
    mapping, element by element. Measured max |Δξ|: 2.6e-7 (complex64: the angle's fraction
    is a float32, ln, cos, sin float32 polynomials), 1.9e-15 (complex128, mostly the
    reference's own float64 rounding). Tolerances 2e-6 and 5e-15."""
    n, key = 4099, -8322921849960486353
    got = kernel_xi(n, key, dtype).numpy().astype(np.complex128)
    ref = reference_xi(n, key, dtype)
    err = np.abs(got - ref).max()
    assert err < (2e-6 if dtype == C64 else 5e-15)


@pytest.mark.parametrize("dtype", [C64, C128])
def test_every_code_path_gives_the_same_bits(dtype: torch.dtype, kernel_level: int) -> None:
    """Scalar, AVX2 and AVX-512 paths (those of this build), in place or not, with group
    boundaries inside blocks and a tail shorter than a block."""
    gen = torch.Generator().manual_seed(2)
    psi = torch.randn(1001, dtype=dtype, generator=gen)
    scale = torch.rand(7, dtype=torch.float64, generator=gen)
    key = draw_key(gen)
    levels = range(kernel_level + 1)
    outs = [cpp_noise_add(psi, scale, 0.7, key, False, level=lv) for lv in levels]
    ins = [cpp_noise_add(psi.clone(), scale, 0.7, key, True, level=lv) for lv in levels]
    for out in outs + ins:
        assert out is not None and torch.equal(out, outs[0])
    big = torch.randn(64, 2, 48, 12, dtype=dtype, generator=gen)  # superblocks, threads
    per_env = torch.rand(64, dtype=torch.float32, generator=gen)
    outs = [cpp_noise_add(big, per_env, 0.3, key, False, level=lv) for lv in levels]
    for out in outs:
        assert out is not None and torch.equal(out, outs[0])


# ---------------------------------------------------------------------------------------------
# distribution


@needs_kernel
def test_distribution_of_two_million_draws() -> None:
    """2²⁰ complex64 ξ (2²¹ real draws) against N(0, 1/2) per part. Measured with this key,
    in standard errors (se): |mean| 1.5, E|ξ|² − 1 0.8, Var Re − ½ −0.9, Var Im − ½ 2.0,
    kurtosis − 3 −0.3 (Re), −1.8 (Im), corr(Re, Im) 0.04, 4σ tail 120 of an expected 132.8
    (−1.2 sd), lag-1 correlation 1.4, correlation with the next call 0.6; KS 1.05e-3 against
    the α = 1e-3 critical value 1.35e-3 (p = 0.02 for this key; 0.25 to 0.67 for three others
    at 2²⁴ draws). Tolerance: 4 se for the moments (a correct generator fails one with
    probability 6e-5), the critical value for KS."""
    n = 2**20
    xi = kernel_xi(n, 0x243F6A8885A308D3, C64).to(C128)
    re, im = xi.real.numpy(), xi.imag.numpy()
    se = 1 / math.sqrt(n)  # of a mean of n unit-variance terms
    assert abs(complex(xi.mean())) < 4 * se  # E|ξ|² = 1
    assert abs(float((xi.abs() ** 2).mean()) - 1) < 4 * se  # Var |ξ|² = 1 (exponential)
    # Var of a sample variance of N(0, ½): 2 (½)² / n
    for part in (re, im):
        assert abs(part.var() - 0.5) < 4 * math.sqrt(2 * 0.25 / n)
        kurtosis = (part**4).mean() / part.var() ** 2
        assert abs(kurtosis - 3) < 4 * math.sqrt(24 / n)
    assert abs(np.corrcoef(re, im)[0, 1]) < 4 * se
    both = np.concatenate([re, im]) * math.sqrt(2)  # N(0, 1)
    ks = stats.kstest(both, "norm").statistic
    assert ks < math.sqrt(-math.log(1e-3 / 2) / (2 * both.size))
    # tails beyond 4 sigma per part: P = 2 Phi(-4)
    p4 = 2 * stats.norm.cdf(-4.0)
    count = int((np.abs(both) > 4).sum())
    expected = p4 * both.size
    assert abs(count - expected) < 4 * math.sqrt(expected * (1 - p4))
    # neighbours (lag 1 in memory) and the next call (the next key of a generator)
    lag = complex((xi[1:] * xi[:-1].conj()).mean())
    assert abs(lag) < 4 * se
    gen = torch.Generator().manual_seed(11)
    first = NoiseIncrement().apply(torch.zeros(n, dtype=C64), 1.0, 1.0, gen, False)
    second = NoiseIncrement().apply(torch.zeros(n, dtype=C64), 1.0, 1.0, gen, False)
    across = complex((first.to(C128) * second.to(C128).conj()).mean())
    assert abs(across) < 4 * se


# ---------------------------------------------------------------------------------------------
# NoiseIncrement: reproducibility, amplitude, generator


def _twin(gen: torch.Generator) -> torch.Generator:
    twin = torch.Generator()
    twin.set_state(gen.get_state())
    return twin


@needs_kernel
@pytest.mark.parametrize("dtype", [C64, C128])
def test_same_generator_state_gives_the_same_bits_in_place_or_not(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(3)
    psi = torch.randn(4, 2, 48, 12, dtype=dtype, generator=gen)
    state = gen.get_state()
    out = NoiseIncrement().apply(psi, 0.4, 0.1, gen, in_place=False)
    gen.set_state(state)
    inplace = NoiseIncrement().apply(psi.clone(), 0.4, 0.1, gen, in_place=True)
    assert torch.equal(out, inplace) and not torch.equal(out, psi)


@needs_kernel
@pytest.mark.parametrize("shape", [(5,), (128, 2, 48, 12)])
def test_each_call_takes_one_64_bit_draw_whatever_the_shape(shape: tuple[int, ...]) -> None:
    """The generator advances by one int64 draw, and ξ is the stream of that key."""
    gen = torch.Generator().manual_seed(4)
    twin = _twin(gen)
    out = NoiseIncrement().apply(torch.zeros(shape, dtype=C64), 1.0, 1.0, gen, in_place=False)
    key = torch.empty(1, dtype=torch.int64).random_(-(2**63), None, generator=twin)
    assert torch.equal(gen.get_state(), twin.get_state())
    again = cpp_noise_add(torch.zeros(shape, dtype=C64), None, 1.0, key, False)
    assert again is not None and torch.equal(out, again)


@needs_kernel
def test_result_does_not_depend_on_the_thread_count() -> None:
    psi = torch.randn(64, 2, 48, 12, dtype=C64, generator=torch.Generator().manual_seed(6))
    saved = torch.get_num_threads()
    outs = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            gen = torch.Generator().manual_seed(7)
            outs.append(NoiseIncrement().apply(psi, 0.3, 0.1, gen, in_place=False))
    finally:
        torch.set_num_threads(saved)
    assert torch.equal(outs[0], outs[1])


@needs_kernel
@pytest.mark.parametrize("dtype", [C64, C128])
def test_per_env_amplitude_scales_each_env(dtype: torch.dtype) -> None:
    """ψ_b + σ_b ξ_b with σ_b = amplitude_b·√dt rounded to ψ's real dtype, against the same
    ξ (unit amplitude, same generator state) scaled in torch: bit for bit."""
    gen = torch.Generator().manual_seed(8)
    psi = torch.randn(6, 2, 8, 4, dtype=dtype, generator=gen)
    amp = torch.tensor([0.0, 0.5, 1.0, 2.0, 0.25, 3.0], dtype=torch.float32).reshape(6, 1, 1, 1)
    dt = 0.1
    state = gen.get_state()
    out = NoiseIncrement().apply(psi, amp, dt, gen, in_place=False)
    gen.set_state(state)
    xi = NoiseIncrement().apply(torch.zeros_like(psi), 1.0, 1.0, gen, in_place=False)
    real = psi.real.dtype
    sigma = (amp.double() * math.sqrt(dt)).to(real).unsqueeze(-1)  # [6, 1, 1, 1, 1]
    want = torch.view_as_complex(torch.view_as_real(psi) + sigma * torch.view_as_real(xi))
    assert torch.equal(out, want)
    assert torch.equal(out[0], psi[0])  # amplitude 0 leaves that env as it was


@needs_kernel
def test_amplitude_zero_leaves_psi() -> None:
    psi = torch.randn(3, 16, 8, dtype=C64, generator=torch.Generator().manual_seed(9))
    out = NoiseIncrement().apply(psi, 0.0, 0.1, torch.Generator().manual_seed(1), False)
    assert torch.equal(out, psi)


@needs_kernel
def test_non_contiguous_psi_gets_the_contiguous_result() -> None:
    base = torch.randn(12, 8, dtype=C64, generator=torch.Generator().manual_seed(10))
    view = base.t()  # [8, 12], not contiguous
    want = NoiseIncrement().apply(
        view.contiguous(), 0.3, 0.1, torch.Generator().manual_seed(1), False
    )
    out = NoiseIncrement().apply(view, 0.3, 0.1, torch.Generator().manual_seed(1), True)
    assert out.data_ptr() == base.data_ptr() and torch.equal(out, want)


@needs_kernel
def test_amplitude_that_does_not_broadcast_is_a_config_error() -> None:
    psi = torch.zeros(4, 2, 8, 4, dtype=C64)
    with pytest.raises(ConfigError, match=r"amplitude of shape \[3, 1, 1, 1\] does not broadcast"):
        NoiseIncrement().apply(psi, torch.ones(3, 1, 1, 1), 0.1, torch.Generator(), False)


@needs_kernel
def test_kernel_runs_inside_the_host_sync_guard() -> None:
    psi = torch.randn(4, 2, 8, 4, dtype=C64, generator=torch.Generator().manual_seed(12))
    amp = torch.full((4, 1, 1, 1), 0.3)
    want = NoiseIncrement().apply(psi, amp, 0.1, torch.Generator().manual_seed(2), False)
    with forbid_host_sync():
        out = NoiseIncrement().apply(psi, amp, 0.1, torch.Generator().manual_seed(2), False)
    assert torch.equal(out, want)


@needs_kernel
def test_where_the_kernel_does_not_apply_it_says_why_and_draws_nothing() -> None:
    gen = torch.Generator().manual_seed(13)
    state = gen.get_state()
    assert cpp_noise_increment(torch.zeros(4), 1.0, 0.1, gen, False) is None
    assert "expected complex64 or complex128" in NOISE_STATUS.last_skip
    assert torch.equal(gen.get_state(), state)


def test_without_the_kernel_the_torch_path_draws_torch_randn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fallback (CUDA, HHML_CPP_KERNELS=0): ψ + (amplitude·√dt)·randn, bit for bit, and
    2·numel normals drawn."""
    monkeypatch.setattr(stochastic_module, "cpp_noise_increment", lambda *a, **k: None)
    gen = torch.Generator().manual_seed(14)
    psi = torch.randn(3, 8, 4, dtype=C64, generator=gen)
    twin = _twin(gen)
    out = NoiseIncrement().apply(psi, 0.3, 0.1, gen, in_place=False)
    want = psi + (0.3 * 0.1**0.5) * torch.randn(psi.shape, dtype=C64, generator=twin)
    assert torch.equal(out, want) and torch.equal(gen.get_state(), twin.get_state())


# ---------------------------------------------------------------------------------------------
# physics: a damped linear field with noise (Ornstein–Uhlenbeck)


def rk4_factor(z: float) -> float:
    return 1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24


@needs_kernel
@pytest.mark.parametrize("dtype", [C64, C128])
def test_damped_noisy_field_reaches_the_ou_stationary_variance(dtype: torch.dtype) -> None:
    """dψ = −γψ dt + √(2T) dW on every node (growth 1 − damping = −1, no other term).
    The simulator's scheme ψ ← R ψ + √(2T dt) ξ (R the RK4 factor of −γ dt) is stationary at
    ⟨|ψ|²⟩ = 2T dt / (1 − R²) = 1.1033 T at dt = 0.1 (the continuum T/γ is 10 % off).
    Time average over 400 steps after a burn-in of 60, 1024 nodes; its standard error (se,
    0.5 % of the value) from the spread of the per-node averages (independent nodes).
    Measured deviation: 0.65 se (complex64), 0.15 se (complex128); tolerance 4 se. The
    continuum value is 18 se away."""
    gamma, temperature, dt = 1.0, 0.05, 0.1
    params = FieldParams(
        damping=1.0 + gamma, diffusion=0.0, nonlinearity=0.0, noise_temperature=temperature
    )
    lat = MobiusStrip(16, 8, dtype=dtype)
    sim = Simulator(lat, params, dt=dt, batch=8, seed=21, initial="zero")
    sim.step(60)  # R^60 = 2.5e-3: the zero start is forgotten
    total = torch.zeros(sim.psi.shape, dtype=torch.float64)
    steps = 400
    for _ in range(steps):
        sim.step(1)
        total += sim.psi.abs().double() ** 2
    per_node = (total / steps).reshape(-1)
    mean = float(per_node.mean())
    se = float(per_node.std()) / math.sqrt(per_node.numel())
    r = rk4_factor(-gamma * dt)
    exact = 2 * temperature * dt / (1 - r**2)
    assert abs(mean - exact) < 4 * se
    assert abs(exact - temperature / gamma) > 8 * se  # the test tells the discrete value apart
