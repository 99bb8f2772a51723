"""Data-parallel helpers: gradient averaging against torch's DistributedDataParallel,
pooled interval statistics, launcher variables and rank seeding."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from hhml.errors import ConfigError
from hhml.ml.training.distributed import (
    SINGLE_PROCESS,
    DistContext,
    GradientAverager,
    any_rank,
    broadcast_object,
    context_from_env,
    gather_objects,
    rank_env_seed,
    scatter_objects,
)
from hhml.ml.training.launch import worker_environment
from hhml.ml.training.metrics import IntervalStats


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))


def _batch(rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(100 + rank)
    return torch.randn(8, 3, generator=gen), torch.randn(8, 2, generator=gen)


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        x, y = _batch(rank)
        # Reference: torch's DistributedDataParallel, three SGD steps.
        ddp_model = nn.parallel.DistributedDataParallel(_model())
        ddp_opt = torch.optim.SGD(ddp_model.parameters(), lr=0.1)
        # Ours: a plain module whose gradients GradientAverager averages.
        own_model = _model()
        own_opt = torch.optim.SGD(own_model.parameters(), lr=0.1)
        average = GradientAverager(world)
        for _ in range(3):
            ddp_opt.zero_grad()
            nn.functional.mse_loss(ddp_model(x), y).backward()
            ddp_opt.step()
            own_opt.zero_grad()
            nn.functional.mse_loss(own_model(x), y).backward()
            average(own_model.parameters())
            own_opt.step()
        ctx = DistContext(rank, world, rank)
        flags = any_rank(rank == 1, ctx, torch.device("cpu"))
        told = broadcast_object({"from": rank}, ctx)
        gathered = gather_objects(rank * 10, ctx)
        scattered = scatter_objects(["a", "b"] if rank == 0 else None, ctx)
        torch.save(
            {
                "ddp": [p.detach() for p in ddp_model.module.parameters()],
                "own": [p.detach() for p in own_model.parameters()],
                "any": flags,
                "broadcast": told,
                "gather": gathered,
                "scatter": scattered,
            },
            Path(out) / f"rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


def test_gradient_averaging_matches_distributed_data_parallel(tmp_path: Path) -> None:
    world = 2
    mp.spawn(_worker, args=(world, _free_port(), str(tmp_path)), nprocs=world, join=True)
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(world)]
    for result in results:
        for ours, reference in zip(result["own"], result["ddp"], strict=True):
            torch.testing.assert_close(ours, reference, rtol=1e-6, atol=1e-7)
    # The weights are identical on both ranks, and differ from one rank's own data alone.
    for a, b in zip(results[0]["own"], results[1]["own"], strict=True):
        assert torch.equal(a, b)
    single = _model()
    opt = torch.optim.SGD(single.parameters(), lr=0.1)
    x, y = _batch(0)
    for _ in range(3):
        opt.zero_grad()
        nn.functional.mse_loss(single(x), y).backward()
        opt.step()
    assert not torch.allclose(next(single.parameters()).detach(), results[0]["own"][0])
    # The object collectives.
    assert [r["any"] for r in results] == [True, True]
    assert [r["broadcast"] for r in results] == [{"from": 0}, {"from": 0}]
    assert results[0]["gather"] == [0, 10] and results[1]["gather"] is None
    assert [r["scatter"] for r in results] == ["a", "b"]


def test_single_process_helpers_are_identities() -> None:
    assert not SINGLE_PROCESS.enabled and SINGLE_PROCESS.is_main
    assert any_rank(True, SINGLE_PROCESS, torch.device("cpu")) is True
    assert broadcast_object(5, SINGLE_PROCESS) == 5
    assert gather_objects(5, SINGLE_PROCESS) == [5]
    assert scatter_objects([7], SINGLE_PROCESS) == 7


def test_rank_env_seeds_partition_the_seeds_of_one_big_batch() -> None:
    seeds = [rank_env_seed(11, DistContext(r, 3, r), 4) + k for r in range(3) for k in range(4)]
    assert seeds == list(range(11, 23))


def test_context_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert context_from_env() == SINGLE_PROCESS
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert context_from_env() == DistContext(1, 2, 1)
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ConfigError, match=r"RANK=2, WORLD_SIZE=2"):
        context_from_env()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ConfigError, match=r"RANK='x' is not an integer"):
        context_from_env()


def test_worker_environment_splits_cores_and_keeps_user_settings() -> None:
    extra = worker_environment(2, {})
    assert extra["OMP_NUM_THREADS"] == str(max(1, (os.cpu_count() or 1) // 2))
    assert extra.get("GLOO_SOCKET_IFNAME") in (None, "lo", "lo0")
    assert worker_environment(2, {"OMP_NUM_THREADS": "3", "GLOO_SOCKET_IFNAME": "eth0"}) == {}


def test_merged_interval_stats_pool_all_values() -> None:
    a, b = IntervalStats(), IntervalStats()
    a.add("reward/total", [1.0, 3.0])  # one call: mean 2
    a.add("reward/total", [4.0])
    b.add("reward/total", [10.0])
    a.add_count("termination/collapse", 1)
    b.add_count("termination/collapse", 2)
    a.set_last("params/gamma", 0.5)
    b.set_last("params/gamma", 0.9)
    means = IntervalStats.merged([a.state_dict(), b.state_dict()]).means()
    assert means["reward/total"] == pytest.approx((2.0 + 4.0 + 10.0) / 3)
    assert means["termination/collapse"] == 3.0
    assert means["params/gamma"] == 0.5  # latest values: rank 0's
