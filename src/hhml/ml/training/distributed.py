"""Several processes training one agent with ``torch.distributed`` (gloo on CPU, NCCL on CUDA).

The model is data parallel, the way ``DistributedDataParallel`` trains a network:

* every rank owns its own batch of ``env.num_envs`` environments (rank ``r`` seeds
  env ``k`` with ``training.seed + r * num_envs + k``) and its own replay buffer;
* all ranks build the agent from the same seed, so the initial weights agree,
  while exploration noise and minibatch draws come from per-rank random streams;
* before every optimiser step the gradients are averaged over the ranks with one
  ``all_reduce`` of a flattened buffer (:class:`GradientAverager`); identical
  weights plus identical averaged gradients keep the weights identical, and
  :func:`check_parameters_in_sync` verifies that at every checkpoint;
* rank 0 alone evaluates, logs and writes the run directory; a checkpoint holds
  every rank's own state (envs, replay buffer, random streams), gathered to rank 0.

A process learns its place from the variables the elastic launcher sets
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``):
``hhml-train --nproc N`` and ``torchrun --nproc-per-node N -m hhml.cli.train``
start the same processes. Without them :data:`SINGLE_PROCESS` applies and every
function here is a no-op.

Public names: ``DistContext``, ``SINGLE_PROCESS``, ``context_from_env``,
``init_distributed``, ``shutdown_distributed``, ``GradientAverager``,
``any_rank``, ``broadcast_object``, ``gather_objects``, ``scatter_objects``,
``check_parameters_in_sync``, ``rank_env_seed``, ``rank_device``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from hhml.errors import ConfigError, HHmLError

__all__ = [
    "SINGLE_PROCESS",
    "DistContext",
    "DistributedError",
    "GradientAverager",
    "any_rank",
    "broadcast_object",
    "check_parameters_in_sync",
    "context_from_env",
    "gather_objects",
    "init_distributed",
    "rank_device",
    "rank_env_seed",
    "scatter_objects",
    "shutdown_distributed",
]


class DistributedError(HHmLError, RuntimeError):
    """The ranks of a distributed run disagree, cannot reach each other, or failed.

    Attributes
    ----------
    exit_code : int
        The exit code to report (a failed rank's own code where all agree, else 1).
    """

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in a distributed run.

    Attributes
    ----------
    rank : int
        Global rank, ``0 <= rank < world_size``.
    world_size : int
        Number of processes.
    local_rank : int
        Rank on this node (selects ``cuda:<local_rank>``).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """True with more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only rank that writes files."""
        return self.rank == 0


#: The context of an ordinary single-process run.
SINGLE_PROCESS = DistContext()


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not an integer") from None


def context_from_env() -> DistContext:
    """The context described by ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (else single).

    Raises
    ------
    ConfigError
        Values that are not integers or not consistent (``0 <= RANK < WORLD_SIZE``).
    """
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", rank)
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ConfigError(
            f"inconsistent launcher variables RANK={rank}, WORLD_SIZE={world}, "
            f"LOCAL_RANK={local}: need 0 <= RANK < WORLD_SIZE and LOCAL_RANK >= 0"
        )
    return DistContext(rank=rank, world_size=world, local_rank=local)


def init_distributed(ctx: DistContext, device: torch.device, timeout_s: float = 1800.0) -> None:
    """Join the process group: NCCL when ``device`` is CUDA, else gloo (no-op when single).

    Raises
    ------
    DistributedError
        The rendezvous fails (e.g. ``MASTER_ADDR``/``MASTER_PORT`` unreachable).
    """
    if not ctx.enabled or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    try:
        dist.init_process_group(
            backend=backend,
            rank=ctx.rank,
            world_size=ctx.world_size,
            timeout=timedelta(seconds=timeout_s),
        )
    except (RuntimeError, ValueError) as exc:
        raise DistributedError(
            f"rank {ctx.rank} of {ctx.world_size} could not join the {backend} process group "
            f"(MASTER_ADDR={os.environ.get('MASTER_ADDR')!r}, "
            f"MASTER_PORT={os.environ.get('MASTER_PORT')!r}): {exc}"
        ) from exc


def shutdown_distributed() -> None:
    """Leave the process group if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_env_seed(seed: int, ctx: DistContext, num_envs: int) -> int:
    """Seed of the first training env of this rank: ``seed + rank * num_envs``.

    Rank ``r``'s envs take seeds ``seed + r * num_envs + k``, so the ranks together
    use the seeds a single process with ``world_size * num_envs`` envs would use.
    """
    return seed + ctx.rank * num_envs


class GradientAverager:
    """Averages the gradients of some parameters over all ranks (DDP's reduction).

    One call flattens the gradients into a single buffer, runs one ``all_reduce``
    (sum) and divides by the world size, i.e. exactly the mean gradient that
    ``DistributedDataParallel`` produces, with one collective per optimiser step.
    Parameters without a gradient contribute zeros on every rank.

    Parameters
    ----------
    world_size
        Number of ranks (the divisor).
    """

    def __init__(self, world_size: int) -> None:
        if world_size < 1:
            raise ConfigError(f"world_size must be >= 1, got {world_size}")
        self.world_size = world_size

    def __call__(self, tensors: Iterable[torch.Tensor]) -> None:
        params = [p for p in tensors if p.requires_grad]
        if not params:
            return
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        grads = [p.grad for p in params if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= self.world_size
        offset = 0
        for g in grads:
            n = g.numel()
            g.copy_(flat[offset : offset + n].view_as(g))
            offset += n


def any_rank(flag: bool, ctx: DistContext, device: torch.device) -> bool:
    """True if ``flag`` is true on any rank (one small ``all_reduce``; ``flag`` when single)."""
    if not ctx.enabled:
        return flag
    value = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def broadcast_object(obj: Any, ctx: DistContext) -> Any:
    """Rank 0's ``obj`` on every rank (picklable objects; ``obj`` itself when single)."""
    if not ctx.enabled:
        return obj
    box = [obj if ctx.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj: Any, ctx: DistContext) -> list[Any] | None:
    """Every rank's ``obj`` as a list on rank 0 (``None`` on the others); ``[obj]`` when single."""
    if not ctx.enabled:
        return [obj]
    out: list[Any] | None = [None] * ctx.world_size if ctx.is_main else None
    dist.gather_object(obj, out, dst=0)
    return out


def scatter_objects(objs: Sequence[Any] | None, ctx: DistContext) -> Any:
    """Element ``rank`` of rank 0's ``objs`` on each rank; ``objs[0]`` when single."""
    if not ctx.enabled:
        assert objs is not None
        return objs[0]
    if ctx.is_main:
        assert objs is not None and len(objs) == ctx.world_size
    out: list[Any] = [None]
    dist.scatter_object_list(out, list(objs) if ctx.is_main and objs is not None else None, src=0)
    return out[0]


def _checksum(modules: Sequence[nn.Module]) -> torch.Tensor:
    values = [p.detach().double().sum() for m in modules for p in m.parameters()]
    return torch.stack(values).cpu() if values else torch.zeros(1, dtype=torch.float64)


def check_parameters_in_sync(modules: Sequence[nn.Module], ctx: DistContext, step: int) -> None:
    """Raise if the ranks' weights differ (per-tensor float64 checksums must agree exactly).

    Raises
    ------
    DistributedError
        Naming the ranks whose weights differ from rank 0's.
    """
    if not ctx.enabled:
        return
    sums = gather_objects(_checksum(modules), ctx)
    verdict: list[int] | None = None
    if ctx.is_main:
        assert sums is not None
        verdict = [r for r in range(1, ctx.world_size) if not torch.equal(sums[r], sums[0])]
    bad = broadcast_object(verdict, ctx)
    if bad:
        raise DistributedError(
            f"at step {step} the weights of rank(s) {bad} differ from rank 0's: the ranks no "
            "longer train one agent (a non-deterministic update or a custom agent that does "
            "not average its gradients)"
        )


def rank_device(spec: str, ctx: DistContext) -> torch.device:
    """The device of this rank: ``spec`` resolved, with CUDA pinned to ``cuda:<local_rank>``.

    Raises
    ------
    DeviceError
        CUDA requested but unavailable, or fewer GPUs than local ranks.
    """
    from hhml.errors import DeviceError
    from hhml.utils.device import resolve_device

    device = resolve_device(spec)
    if not ctx.enabled or device.type != "cuda":
        return device
    count = torch.cuda.device_count()
    if ctx.local_rank >= count:
        raise DeviceError(
            f"local rank {ctx.local_rank} needs cuda:{ctx.local_rank} but only {count} CUDA "
            "device(s) exist; start at most one rank per GPU"
        )
    return torch.device("cuda", ctx.local_rank)
