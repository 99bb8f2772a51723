"""Building the C++ kernels: clearing a build lock left by a killed build.

``torch.utils.cpp_extension.load`` serialises builds of one extension with a ``lock``
file in its build directory and waits for it to disappear. A process killed while
building (Ctrl-C, a CI timeout) leaves the file behind, and every later process would
then wait forever. A build takes about a minute; a lock older than
:data:`STALE_LOCK_SECONDS` is therefore taken as left over, removed, and reported.

Public names: ``STALE_LOCK_SECONDS``, ``clear_stale_build_lock``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

__all__ = ["STALE_LOCK_SECONDS", "clear_stale_build_lock"]

_LOG = logging.getLogger(__name__)

#: Age (seconds) from which a build lock is taken as left by a killed build.
STALE_LOCK_SECONDS = 600.0


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
