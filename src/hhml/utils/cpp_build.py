"""Building the C++ kernels: one lazily built extension class shared by every kernel.

:class:`CppKernel` compiles one source with ``torch.utils.cpp_extension.load`` on first
use (cached by torch in ``~/.cache/torch_extensions``, per SIMD flag set), records in a
:class:`KernelStatus` whether it is built and why not, and logs a failed build once —
never silently. ``HHML_CPP_KERNELS=0`` disables every kernel.

:data:`KERNELS` names every kernel of the package; :func:`build_kernels` (also
``python -m hhml.utils.cpp_build``, run by ``make install``) builds them all at once, one
process per kernel on every core, so that no later run waits for a compiler.

``load`` serialises builds of one extension with a ``lock`` file in its build directory
and waits for it to disappear. A process killed while building (Ctrl-C, a CI timeout)
leaves the file behind, and every later process would then wait forever. A build takes
about a minute; a lock older than :data:`STALE_LOCK_SECONDS` is therefore taken as left
over, removed, and reported (:func:`clear_stale_build_lock`).

Public names: ``CppKernel``, ``KernelStatus``, ``KERNELS``, ``STALE_LOCK_SECONDS``,
``BuildResult``, ``build_kernels``, ``clear_stale_build_lock``, ``extensions_root``,
``kernel``, ``simd_flags``, ``main``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

__all__ = [
    "KERNELS",
    "STALE_LOCK_SECONDS",
    "BuildResult",
    "CppKernel",
    "KernelStatus",
    "build_kernels",
    "clear_stale_build_lock",
    "extensions_root",
    "kernel",
    "main",
    "simd_flags",
]

_LOG = logging.getLogger(__name__)

#: Age (seconds) from which a build lock is taken as left by a killed build.
STALE_LOCK_SECONDS = 600.0

#: Every C++ kernel of the package: ``"module:attribute"`` of its :class:`CppKernel`.
KERNELS = (
    "hhml.core.resonance.cpp_kernels:_KERNEL",
    "hhml.core.resonance.stack_kernel:_KERNEL",
    "hhml.core.resonance.noise_kernel:_KERNEL",
    "hhml.core.resonance.imprint_kernel:_KERNEL",
    "hhml.core.mobius.geometry_kernel:_KERNEL",
    "hhml.ml.env.measure_kernel:KERNEL",
)


@dataclass
class KernelStatus:
    """Build state of a kernel and why its last call did not apply.

    Attributes
    ----------
    tried, ok
        Whether a build was attempted, and whether it succeeded.
    reason
        Why the kernel is unavailable (build error, or ``HHML_CPP_KERNELS=0``).
    last_skip
        Why the most recent call returned None (kernels that record it); ``""`` after a
        call the kernel computed.
    """

    tried: bool = False
    ok: bool = False
    reason: str = ""
    last_skip: str = ""


def kernels_enabled() -> bool:
    """False when the environment variable ``HHML_CPP_KERNELS`` is ``0``: every C++
    kernel then stays unbuilt and the torch code runs instead."""
    return os.environ.get("HHML_CPP_KERNELS", "1") != "0"


def simd_flags() -> list[str]:
    """``-march=native`` when this x86 CPU has AVX2 and FMA (the build is cached per flag
    set, under a name with the suffix ``_avx2``)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return []
    return ["-march=native"] if "avx2" in flags and "fma" in flags else []


def clear_stale_build_lock(name: str, max_age: float = STALE_LOCK_SECONDS) -> bool:
    """Remove the build lock of extension ``name`` if it is older than ``max_age`` seconds.

    Returns True if a lock was removed (and logs a warning naming it).
    """
    from torch.utils.cpp_extension import _get_build_directory

    lock = Path(_get_build_directory(name, verbose=False)) / "lock"
    try:
        age = time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return False
    if age <= max_age:
        return False
    lock.unlink(missing_ok=True)
    _LOG.warning(
        "removed the build lock %s, left %.0f s ago by a build that did not finish", lock, age
    )
    return True


class CppKernel:
    """One C++ extension, compiled on the first :meth:`load`.

    Parameters
    ----------
    name
        Extension name (a version suffix, bumped when the source changes incompatibly);
        ``_avx2`` is appended when :func:`simd_flags` adds flags.
    source
        The ``.cpp`` file.
    cflags
        Compiler flags besides the SIMD ones (e.g. ``-O3 -fopenmp``); linked with OpenMP.
    what, fallback
        For the warning when it cannot be built: ``"HHmL <what> unavailable (<reason>);
        <fallback>"``.
    warn_disabled
        Also warn when ``HHML_CPP_KERNELS=0`` disables it.
    """

    def __init__(
        self,
        name: str,
        source: Path,
        cflags: Sequence[str],
        what: str,
        fallback: str,
        warn_disabled: bool = False,
    ) -> None:
        self.name, self.source, self.cflags = name, source, tuple(cflags)
        self.what, self.fallback, self.warn_disabled = what, fallback, warn_disabled
        self.status = KernelStatus()
        self._module: ModuleType | None = None
        self._lock = threading.Lock()

    @property
    def extension(self) -> str:
        """The extension's name: :attr:`name`, plus ``_avx2`` when :func:`simd_flags`
        adds flags (each flag set is built and cached apart)."""
        return self.name + ("_avx2" if simd_flags() else "")

    def load(self) -> ModuleType | None:
        """The compiled module, built on the first call; None if it is unavailable."""
        with self._lock:
            if self.status.tried:
                return self._module
            self.status.tried = True
            if not kernels_enabled():
                self.status.reason = "disabled by HHML_CPP_KERNELS=0"
                if self.warn_disabled:
                    _LOG.warning("HHmL %s %s; %s", self.what, self.status.reason, self.fallback)
                return None
            try:
                from torch.utils.cpp_extension import load

                extension = self.extension
                clear_stale_build_lock(extension)
                self._module = load(
                    name=extension,
                    sources=[str(self.source)],
                    extra_cflags=[*self.cflags, *simd_flags()],
                    extra_ldflags=["-fopenmp"],
                    verbose=False,
                )
                self.status.ok = True
            except Exception as exc:  # compiler, ninja or headers missing: report, loudly
                self.status.reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
                _LOG.warning(
                    "HHmL %s unavailable (%s); %s", self.what, self.status.reason, self.fallback
                )
            return self._module


def kernel(ref: str) -> CppKernel:
    """The :class:`CppKernel` named by ``ref`` (``"module:attribute"``, as in
    :data:`KERNELS`); importing its module builds nothing."""
    module, _, attribute = ref.partition(":")
    found = getattr(importlib.import_module(module), attribute, None)
    if not isinstance(found, CppKernel):
        raise TypeError(f"{ref} is not a CppKernel")
    return found


def extensions_root() -> Path:
    """The folder torch builds this interpreter's extensions in: ``$TORCH_EXTENSIONS_DIR``
    if set, else its per-Python, per-accelerator folder under ``~/.cache/torch_extensions``
    (e.g. ``py311_cpu``). A subprocess given this folder as ``TORCH_EXTENSIONS_DIR`` uses
    the kernels already built here instead of building its own copies."""
    from torch.utils.cpp_extension import _get_build_directory

    return Path(_get_build_directory(kernel(KERNELS[0]).extension, verbose=False)).parent


@dataclass(frozen=True)
class BuildResult:
    """Outcome of building one kernel (:func:`build_kernels`).

    Attributes
    ----------
    ref
        Its entry of :data:`KERNELS`.
    extension
        The extension's name (:attr:`CppKernel.extension`).
    ok
        Whether it is built (False also when ``HHML_CPP_KERNELS=0`` disables it).
    reason
        Why not (empty when built).
    seconds
        Wall time of the build, or of loading the cached build.
    """

    ref: str
    extension: str
    ok: bool
    reason: str
    seconds: float


def _build(ref: str) -> BuildResult:
    """Build (or load the cached build of) one kernel; run in a worker process."""
    t0 = time.perf_counter()
    k = kernel(ref)
    k.load()
    return BuildResult(ref, k.extension, k.status.ok, k.status.reason, time.perf_counter() - t0)


def build_kernels(refs: Sequence[str] = KERNELS, workers: int | None = None) -> list[BuildResult]:
    """Build the kernels ``refs`` now, each in its own process, ``workers`` at a time
    (default: the number of cores, at most one per kernel).

    A kernel built before (same source, flags and torch) only loads. Builds of different
    kernels run side by side (each is one compiler process); nothing is raised for a
    kernel that cannot be built: its :class:`BuildResult` says why.

    Returns
    -------
    list of BuildResult
        In the order of ``refs``.
    """
    refs = list(refs)
    if not refs:
        return []
    workers = max(1, min(len(refs), workers or os.cpu_count() or 1))
    # spawn: the workers import torch afresh (no fork of a process with OpenMP threads)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(_build, refs))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hhml.utils.cpp_build``: build every kernel; exit 1 if one is unavailable."""
    parser = argparse.ArgumentParser(
        prog="python -m hhml.utils.cpp_build",
        description=(
            "Compile HHmL's C++ CPU kernels now, side by side on every core, instead of on "
            "their first use (each takes about a minute to build; a kernel built before "
            "only loads). Without a C++ compiler the kernels are unavailable and HHmL runs "
            "the slower torch code in their place; this command says why."
        ),
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="kernels built at once (default: the number of cores)",
    )
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
    t0 = time.perf_counter()
    results = build_kernels(workers=args.workers)
    for r in results:
        state = "built" if r.ok else f"unavailable: {r.reason}"
        print(f"{r.extension:<34} {r.seconds:6.1f} s  {state}")
    failed = [r for r in results if not r.ok]
    print(
        f"{len(results) - len(failed)} of {len(results)} kernels built in "
        f"{time.perf_counter() - t0:.1f} s, in {extensions_root()}"
    )
    if failed:
        print(
            "the torch code runs in place of the unavailable kernels (slower, same results)",
            file=sys.stderr,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    # through the imported module: the workers must find the same classes and functions
    from hhml.utils import cpp_build

    sys.exit(cpp_build.main())
