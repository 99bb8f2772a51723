"""Starting ``N`` local ranks with torch.distributed's elastic launcher (what ``torchrun`` does).

``hhml-train --nproc N ...`` calls :func:`launch_local`, which runs
``python -m hhml.cli.train ...`` ``N`` times on this machine with the launcher
variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``) set, after a c10d rendezvous on a free loopback port. It is the
equivalent of::

    torchrun --standalone --nproc-per-node N -m hhml.cli.train ...

which is what to use on a cluster (with ``--nnodes`` and a shared rendezvous
endpoint instead of ``--standalone``).

Public names: ``launch_local``, ``worker_environment``.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Mapping, Sequence

from hhml.errors import ConfigError
from hhml.ml.training.distributed import DistributedError

__all__ = ["launch_local", "worker_environment"]


def _loopback_interface() -> str | None:
    """Name of the loopback interface (for gloo), if it can be found."""
    import socket

    try:
        names = [name for _, name in socket.if_nameindex()]
    except (OSError, AttributeError):
        return None
    for candidate in ("lo", "lo0"):
        if candidate in names:
            return candidate
    return None


def worker_environment(nproc: int, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Variables to add for local workers, where the user has not set them.

    ``OMP_NUM_THREADS`` = CPU cores // ``nproc`` (at least 1), so ranks do not
    oversubscribe the cores (``torchrun`` sets 1); ``GLOO_SOCKET_IFNAME`` = the
    loopback interface, so a single-machine run never leaves the host.
    """
    env = os.environ if environ is None else environ
    extra: dict[str, str] = {}
    if "OMP_NUM_THREADS" not in env:
        extra["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // nproc))
    if "GLOO_SOCKET_IFNAME" not in env:
        loopback = _loopback_interface()
        if loopback is not None:
            extra["GLOO_SOCKET_IFNAME"] = loopback
    return extra


def launch_local(nproc: int, module: str, args: Sequence[str]) -> None:
    """Run ``python -m module *args`` as ``nproc`` ranks on this machine and wait.

    Each worker inherits stdout/stderr. No restarts: the first failing rank
    stops the others.

    Parameters
    ----------
    nproc
        Number of ranks (>= 1).
    module
        Module to run with ``python -m`` (e.g. ``"hhml.cli.train"``).
    args
        Its command-line arguments.

    Raises
    ------
    ConfigError
        ``nproc < 1``.
    DistributedError
        A rank failed (the message names each failed rank and its exit code;
        ``exit_code`` is theirs), or a signal interrupted the run (``exit_code`` 130).
    """
    if nproc < 1:
        raise ConfigError(f"--nproc must be >= 1, got {nproc}")
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    os.environ.update(worker_environment(nproc))
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint="127.0.0.1:0",
        max_restarts=0,
        monitor_interval=0.2,
    )
    try:
        elastic_launch(config, entrypoint=sys.executable)("-m", module, *args)
    except ChildFailedError as exc:
        failed = ", ".join(
            f"rank {rank} exit code {failure.exitcode}"
            for rank, failure in sorted(exc.failures.items())
        )
        codes = {failure.exitcode for failure in exc.failures.values()}
        code = codes.pop() if len(codes) == 1 else 1
        raise DistributedError(f"{failed} (their messages are above)", code) from None
    except SignalException as exc:
        # The launcher forwarded the signal; the ranks stop together after a checkpoint.
        raise DistributedError(
            f"interrupted ({exc}); the ranks were asked to write a checkpoint", 130
        ) from None
