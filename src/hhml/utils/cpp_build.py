"""Building the C++ kernels: one lazily built extension class shared by every kernel.

:class:`CppKernel` compiles one source with ``torch.utils.cpp_extension.load`` on first
use (cached by torch in ``~/.cache/torch_extensions``, per SIMD flag set), records in a
:class:`KernelStatus` whether it is built and why not, and logs a failed build once —
never silently. ``HHML_CPP_KERNELS=0`` disables every kernel.

``load`` serialises builds of one extension with a ``lock`` file in its build directory
and waits for it to disappear. A process killed while building (Ctrl-C, a CI timeout)
leaves the file behind, and every later process would then wait forever. A build takes
about a minute; a lock older than :data:`STALE_LOCK_SECONDS` is therefore taken as left
over, removed, and reported (:func:`clear_stale_build_lock`).

Public names: ``CppKernel``, ``KernelStatus``, ``STALE_LOCK_SECONDS``,
``clear_stale_build_lock``, ``simd_flags``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

__all__ = [
    "STALE_LOCK_SECONDS",
    "CppKernel",
    "KernelStatus",
    "clear_stale_build_lock",
    "simd_flags",
]

_LOG = logging.getLogger(__name__)

#: Age (seconds) from which a build lock is taken as left by a killed build.
STALE_LOCK_SECONDS = 600.0


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

                simd = simd_flags()
                extension = self.name + ("_avx2" if simd else "")
                clear_stale_build_lock(extension)
                self._module = load(
                    name=extension,
                    sources=[str(self.source)],
                    extra_cflags=[*self.cflags, *simd],
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
