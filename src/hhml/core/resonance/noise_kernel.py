"""C++/OpenMP CPU kernel for the thermal-noise increment ``ψ + amplitude·√dt·ξ``.

ξ is a standard complex normal per element (``E|ξ|² = 1``; real and imaginary parts
independent ``N(0, 1/2)``), made by Box–Muller from a counter-based generator,
Philox4x32-10 (Salmon, Moraes, Dror & Shaw, "Parallel random numbers: as easy as 1, 2, 3",
SC'11; the generator of cuRAND and of torch's CUDA backend). Each element's numbers are a
function of a 64-bit key and the element's index only: the result does not depend on the
thread count, on how the work is split, or on the code path.

The stream (the contract; ``csrc/noise.cpp`` has the formulas)
    Key: one int64 drawn per call from the caller's ``torch.Generator`` by :func:`draw_key`
    (one 64-bit draw whatever the shape), read in C++ (no host synchronisation in Python):
    Philox's ``k0`` is its low word, ``k1`` its high word.
    Counter: ``(j mod 2³², j div 2³², 0, 0)``. complex64: element ``16q + 8h + l``
    (``h ∈ {0, 1}``, ``l < 8``) takes counter ``j = 8q + l`` and its words ``(w0, w1)``
    (``h = 0``) or ``(w2, w3)`` (``h = 1``) as ``(a, b)``; complex128: counter ``j = e``
    for element ``e``, all four words.
    Box–Muller: ``ξ = √(−ln u)·(cos θ + i sin θ)``. complex64:
    ``u = float((a >> 1) | 1)·2⁻³¹`` (the midpoints of 2³⁰ cells of (0, 1], rounded to
    float; ``u ≥ 2⁻³¹``, so ``|ξ| ≤ 4.64``, a bound ``|ξ|`` exceeds with probability
    4.7·10⁻¹⁰), ``θ = 2π·b/2³²``. complex128: ``u = w0·2⁻³² + (w1 + ½)·2⁻⁶⁴``
    (``u ≥ 2⁻⁶⁵``, ``|ξ| ≤ 6.71``), ``θ = 2π·(w2·2³² + w3)/2⁶⁴``. ``ln 0`` never occurs.
    ``ln``, ``cos`` and ``sin`` are the kernel's own polynomials for these bounded arguments
    (no range reduction; a few ulp, see the tests).
    Increment: ``out = ψ + σ·ξ`` with ``σ = amplitude·√dt`` (float64) rounded to ψ's real
    dtype, one rounding for the product and one for the sum.

Code paths (``level``): 0 scalar (builds without AVX2/FMA), 1 AVX2 (eight
Philox counters per vector, four groups in lock-step), 2 AVX-512 (complex64, where the build
has AVX-512F/DQ). All give the same bits: every operation is written once, generic over the
lane type, with explicit fused multiply-adds. The kernel is compiled with
``torch.utils.cpp_extension.load`` on first use (about a minute, then cached by torch in
``~/.cache/torch_extensions``). The functions return None where the kernel does not apply
(non-CPU tensors, dtypes outside the contract) or cannot be built; the reason is recorded in
:data:`NOISE_STATUS` (and a failed build is logged) — never silently. Set
``HHML_CPP_KERNELS=0`` to disable it.

Public names: :func:`cpp_noise_increment`, :func:`cpp_noise_add`, :func:`draw_key`,
:func:`cpp_philox4x32_10`, :func:`noise_simd_level`, :data:`NOISE_STATUS` (a
:class:`~hhml.utils.cpp_build.KernelStatus`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from hhml.errors import ConfigError
from hhml.utils.cpp_build import CppKernel, simd_flags

__all__ = [
    "NOISE_STATUS",
    "cpp_noise_add",
    "cpp_noise_increment",
    "cpp_philox4x32_10",
    "draw_key",
    "noise_simd_level",
]

_SOURCE = Path(__file__).parent / "csrc" / "noise.cpp"
_COMPLEX = (torch.complex64, torch.complex128)
_SCALE_DTYPES = (torch.float32, torch.float64)

_KERNEL = CppKernel(
    "hhml_noise_v1",
    _SOURCE,
    # no FMA contraction: the vector and scalar paths round alike only with the explicit
    # fused multiply-adds of the source
    [
        "-O3",
        "-fopenmp",
        "-ffp-contract=off",
        *(["-mprefer-vector-width=256"] if simd_flags() else []),
    ],
    what="noise kernel",
    fallback="use torch's normal_ for the thermal noise",
)
#: Build state of the noise kernel (and why the last call returned None).
NOISE_STATUS = _KERNEL.status
_load = _KERNEL.load


def _skip(reason: str) -> Tensor | None:
    """Record why the kernel does not apply; returns None (for ``return _skip(...)``)."""
    NOISE_STATUS.last_skip = reason
    return None


def noise_simd_level() -> int | None:
    """The best code path of the build: 0 scalar, 1 AVX2, 2 AVX-512; None if unavailable."""
    module = _load()
    if module is None:
        _skip(f"kernel unavailable: {NOISE_STATUS.reason}")
        return None
    level: int = module.simd_level()
    return level


def _level_arg(level: int | None) -> int:
    """The C++ ``level`` argument (−1: the best) for ``level``.

    Raises
    ------
    ConfigError
        If ``level`` is not None, 0, 1 or 2.
    """
    if level is None:
        return -1
    if isinstance(level, bool) or level not in (0, 1, 2):
        raise ConfigError(f"level = {level!r} is not valid; expected None, 0, 1 or 2")
    return level


def _module_for(code: int) -> Any:
    """The built kernel module, or None if it cannot be built; raises
    :class:`~hhml.errors.ConfigError` if the code path ``code`` exceeds the build's."""
    module = _load()
    if module is not None and code > module.simd_level():
        raise ConfigError(
            f"level = {code} is not valid for this build; expected at most "
            f"{module.simd_level()} (0 scalar, 1 AVX2, 2 AVX-512)"
        )
    return module


def draw_key(generator: torch.Generator, out: Tensor | None = None) -> Tensor:
    """One 64-bit Philox key from ``generator`` (one int64 draw), as an int64 ``[1]`` tensor.

    Parameters
    ----------
    generator
        A CPU ``torch.Generator``; advanced by exactly one 64-bit draw (what
        ``torch.empty(1, dtype=torch.int64).random_(-2**63, None, generator=generator)``
        takes).
    out
        An int64 ``[1]`` CPU tensor to draw into (reused between calls), or None.
    """
    key = torch.empty(1, dtype=torch.int64) if out is None else out
    return key.random_(-(2**63), None, generator=generator)


def _scale_groups(psi: Tensor, amplitude: Tensor) -> Tensor:
    """``amplitude`` (real, broadcasting over ``psi``) as ``[G]`` (its dtype): one value per run
    of ``psi.numel() / G`` consecutive elements, ``G`` the product of ``psi``'s sizes up to
    the last axis where ``amplitude`` is not 1 (a view where ``amplitude`` has every one of
    those axes in full, e.g. ``[B, 1, ...]``).

    Raises
    ------
    ConfigError
        If ``amplitude`` does not broadcast to ``psi.shape``.
    """
    size = psi.shape
    if amplitude.dim() == len(size) and size and amplitude.shape[0] == size[0] == amplitude.numel():
        return amplitude.reshape(size[0])  # [B, 1, ...], the common case
    shape, ashape = tuple(size), tuple(amplitude.shape)
    padded = (1,) * (len(shape) - len(ashape)) + ashape
    if len(ashape) > len(shape) or any(a not in (1, s) for a, s in zip(padded, shape, strict=True)):
        raise ConfigError(
            f"noise amplitude of shape {list(ashape)} does not broadcast to the field "
            f"{list(shape)}; expected a shape broadcasting to it, e.g. [B, 1, ...]"
        )
    lead = max((k + 1 for k, a in enumerate(padded) if a != 1), default=0)
    groups = math.prod(shape[:lead])
    if amplitude.numel() == groups:
        return amplitude.reshape(groups)
    return amplitude.reshape(padded[:lead]).expand(shape[:lead]).reshape(groups)


def _psi_reason(psi: Tensor, in_place: bool) -> str:
    """``""`` when ``psi`` fits the kernel, else the reason."""
    if not isinstance(psi, Tensor) or psi.dtype not in _COMPLEX:
        what = psi.dtype if isinstance(psi, Tensor) else type(psi).__name__
        return f"psi is {what}; expected complex64 or complex128"
    if psi.device.type != "cpu":
        return f"psi is on {psi.device}; the kernel runs on the CPU"
    if in_place and not psi.is_contiguous():
        return "psi is not contiguous; in-place addition needs a contiguous psi"
    return ""


def _scale_reason(psi: Tensor, scale: Tensor | None) -> str:
    """``""`` when ``scale`` (None or a float32/float64 ``[G]``) fits ``psi``, else the reason."""
    if scale is None:
        return ""
    if isinstance(scale, Tensor):
        if (
            scale.device.type == "cpu"
            and scale.dtype in _SCALE_DTYPES
            and scale.dim() == 1
            and scale.numel() >= 1
            and psi.numel() % scale.numel() == 0
        ):
            return ""
        desc = f"{scale.dtype} {list(scale.shape)} on {scale.device}"
    else:
        desc = type(scale).__name__
    return f"scale is {desc}; expected a CPU float32 or float64 [G] with G dividing {psi.numel()}"


def cpp_noise_add(
    psi: Tensor,
    scale: Tensor | None,
    factor: float,
    key: Tensor,
    in_place: bool,
    *,
    level: int | None = None,
) -> Tensor | None:
    """``ψ + σ·ξ``, ξ the Philox/Box–Muller normals of ``key`` (module docstring), or None.

    Parameters
    ----------
    psi
        Complex64 or complex128 CPU tensor, any shape (made contiguous; with ``in_place`` it
        must be contiguous already).
    scale
        float32 or float64 ``[G]`` CPU tensor, ``G`` dividing ``psi.numel()``:
        ``σ = scale[g]·factor`` (in float64) on the ``g``-th run of ``numel/G`` consecutive
        elements; or None: ``σ = factor``.
    factor
        Real factor of ``σ`` (e.g. ``√dt``, √time; ψ units per unit of ξ without ``scale``).
    key
        int64 ``[1]`` CPU tensor, the 64-bit Philox key (:func:`draw_key`).
    in_place
        Add into ``psi`` and return it, else return a new tensor.
    level
        The code path: None the best of the build (:func:`noise_simd_level`), 0 scalar,
        1 AVX2, 2 AVX-512 — the same bits on every path (for tests).

    Returns
    -------
    Tensor or None
        Complex, ``psi``'s shape and dtype. None (reason in ``NOISE_STATUS.last_skip``) for a
        non-CPU or non-complex64/128 ``psi``, a non-contiguous ``psi`` with ``in_place``, a
        ``scale`` or ``key`` outside the contract, or when the kernel is unavailable.

    Raises
    ------
    ConfigError
        If ``level`` is not None, 0, 1 or 2, or above :func:`noise_simd_level`.
    """
    code = _level_arg(level)
    reason = _psi_reason(psi, in_place) or _scale_reason(psi, scale)
    if reason:
        return _skip(reason)
    if not (
        isinstance(key, Tensor)
        and key.device.type == "cpu"
        and key.dtype == torch.int64
        and key.numel() == 1
    ):
        return _skip("key must be a CPU int64 tensor of one element")
    module = _module_for(code)
    if module is None:
        return _skip(f"kernel unavailable: {NOISE_STATUS.reason}")
    src = psi if in_place else psi.contiguous()
    out: Tensor = module.noise_add(src, scale, float(factor), key, in_place, code)
    NOISE_STATUS.last_skip = ""
    return out


def cpp_noise_increment(
    psi: Tensor,
    amplitude: float | Tensor,
    dt: float,
    generator: torch.Generator,
    in_place: bool,
    key: Tensor | None = None,
) -> Tensor | None:
    """``ψ + amplitude·√dt·ξ`` through the kernel, drawing the key from ``generator``; or None.

    The key is drawn (one 64-bit draw, :func:`draw_key`) only when the kernel applies: a call
    that returns None leaves ``generator`` untouched.

    Parameters
    ----------
    psi
        The field, complex64 or complex128 on the CPU, any shape.
    amplitude
        ``√(2T)`` (ψ units per √time): a float, or a real CPU tensor broadcasting over ψ
        (e.g. ``[B, 1, ...]``, per env; float16/bfloat16 are converted to float64);
        ``σ = amplitude·√dt`` in float64.
    dt
        Time step (time units).
    generator
        The CPU generator the key comes from.
    in_place
        Add into ``psi`` (which the caller owns; a non-contiguous ``psi`` is computed out of
        place and copied back) instead of returning a new tensor.
    key
        An int64 ``[1]`` CPU tensor to draw the key into (reused), or None.

    Returns
    -------
    Tensor or None
        See :func:`cpp_noise_add`; None (reason in ``NOISE_STATUS.last_skip``) where it
        returns None, for a non-real or non-CPU ``amplitude`` tensor, or a non-CPU generator.

    Raises
    ------
    ConfigError
        If an ``amplitude`` tensor does not broadcast to ``psi.shape``.
    """
    reason = _psi_reason(psi, in_place=False)
    if reason:
        return _skip(reason)
    if generator.device.type != "cpu":
        return _skip(f"the generator is on {generator.device}; the kernel draws a CPU key")
    root = math.sqrt(dt)
    scale: Tensor | None = None
    factor = root
    if isinstance(amplitude, Tensor):
        if amplitude.device.type != "cpu" or not amplitude.is_floating_point():
            return _skip(
                f"amplitude is {amplitude.dtype} on {amplitude.device}; expected a real "
                "floating-point CPU tensor"
            )
        scale = _scale_groups(psi, amplitude)
        if scale.dtype not in _SCALE_DTYPES:
            scale = scale.to(torch.float64)
    else:
        factor = float(amplitude) * root
    module = _load()
    if module is None:
        return _skip(f"kernel unavailable: {NOISE_STATUS.reason}")
    contiguous = psi.is_contiguous()
    k = draw_key(generator, key)
    src = psi if contiguous else psi.contiguous()
    out: Tensor = module.noise_add(src, scale, factor, k, in_place and contiguous, -1)
    NOISE_STATUS.last_skip = ""
    if in_place and not contiguous:
        return psi.copy_(out)
    return out


def cpp_philox4x32_10(counter: Tensor, key: Tensor, *, level: int | None = None) -> Tensor | None:
    """Philox4x32-10 of 128-bit counters under 64-bit keys (the kernel's generator), or None.

    Parameters
    ----------
    counter
        int64 ``[N, 4]``: the counter words ``(c0, c1, c2, c3)``, values in ``[0, 2³²)``.
    key
        int64 ``[N, 2]``: the key words ``(k0, k1)``, values in ``[0, 2³²)``.
    level
        The code path the words go through (as :func:`cpp_noise_add`; the vector paths put a
        row in every lane and check that the lanes agree).

    Returns
    -------
    Tensor or None
        int64 ``[N, 4]``, the output words in ``[0, 2³²)``. None (reason in
        ``NOISE_STATUS.last_skip``) when the kernel is unavailable.

    Raises
    ------
    ConfigError
        For tensors of other shapes, dtypes or devices, values outside ``[0, 2³²)``, or a
        ``level`` the build does not have.
    """
    code = _level_arg(level)
    for name, x, width in (("counter", counter, 4), ("key", key, 2)):
        ok = (
            isinstance(x, Tensor)
            and x.dtype == torch.int64
            and x.device.type == "cpu"
            and x.dim() == 2
            and x.shape[1] == width
        )
        if not ok:
            desc = f"{x.dtype} {list(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
            raise ConfigError(f"{name} is {desc}; expected a CPU int64 [N, {width}]")
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= 2**32):
            raise ConfigError(f"{name} has values outside [0, 2**32); the words are 32-bit")
    if counter.shape[0] != key.shape[0]:
        raise ConfigError(
            f"counter has {counter.shape[0]} rows and key {key.shape[0]}; expected as many"
        )
    module = _module_for(code)
    if module is None:
        return _skip(f"kernel unavailable: {NOISE_STATUS.reason}")
    out: Tensor = module.philox(counter.contiguous(), key.contiguous(), code)
    NOISE_STATUS.last_skip = ""
    return out
