"""Training statistics accumulated on the device, copied to the host once per interval.

The trainer's step never waits for the device: rewards, reward terms, vortex
statistics, losses, episode returns and termination counts are summed into
tensors here, and :meth:`DeviceStats.flush` copies all of them to the host in
one transfer at log, checkpoint and end-of-run time, adding them to the
plain-Python :class:`~hhml.ml.training.metrics.IntervalStats` and the loop's
episode counters. The means are the same as accumulating on the host: every
``add`` contributes the mean of its values once (float64).

Public names: ``DeviceStats``, ``EpisodeTotals``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from hhml.ml.env.state import RUNNING, TERMINATION_REASONS
from hhml.ml.training.metrics import IntervalStats

__all__ = ["DeviceStats", "EpisodeTotals"]


@dataclass
class EpisodeTotals:
    """What a flush hands back to the loop's plain-Python counters.

    Attributes
    ----------
    finished : int
        Episodes that ended since the previous flush.
    returns, lengths : list
        The running return and length of each env's current episode.
    non_finite : list of str
        Names of the accumulated quantities that were NaN or infinite at some step
        since the previous flush (e.g. ``agent/critic_loss``, ``action``).
    """

    finished: int
    returns: list[float]
    lengths: list[int]
    non_finite: list[str]


class DeviceStats:
    """Accumulators of ``N`` envs' training statistics on ``device``.

    Parameters
    ----------
    num_envs
        ``N``.
    device
        Where the accumulators live (the env's and agent's device).
    returns, lengths
        The current episodes' running returns and lengths ``[N]`` (from a checkpoint),
        or None for fresh episodes.
    """

    def __init__(
        self,
        num_envs: int,
        device: torch.device | str,
        returns: Sequence[float] | None = None,
        lengths: Sequence[int] | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.num_envs = int(num_envs)
        f64, i64 = torch.float64, torch.int64
        zeros = [0.0] * self.num_envs
        self.returns = torch.tensor(zeros if returns is None else list(returns), dtype=f64)
        self.lengths = torch.tensor([0] * self.num_envs if lengths is None else list(lengths))
        self.returns = self.returns.to(self.device)
        self.lengths = self.lengths.to(self.device, i64)
        self._sums: dict[tuple[str, ...], Tensor] = {}
        self._counts: dict[tuple[str, ...], int] = {}
        self._last: dict[tuple[str, ...], Tensor] = {}
        self._finite: dict[str, Tensor] = {}
        self._episode_sums = torch.zeros(2, dtype=f64, device=self.device)  # returns, lengths
        self._episodes = torch.zeros((), dtype=i64, device=self.device)
        self._terminations = torch.zeros(len(TERMINATION_REASONS), dtype=i64, device=self.device)

    # ---------------------------------------------------------------- accumulation

    def add(self, name: str, values: Tensor) -> None:
        """Accumulate the mean of ``values`` (any shape) under ``name``."""
        self.add_group((name,), values.detach().reshape(1, -1))

    def add_group(self, names: tuple[str, ...], values: Tensor) -> None:
        """Accumulate the means of the rows of ``values`` ``[len(names), …]`` under ``names``.

        Several metrics in one tensor cost one reduction instead of one per name.
        """
        means = values.detach().reshape(len(names), -1).mean(dim=1, dtype=torch.float64)
        old = self._sums.get(names)
        self._sums[names] = means if old is None else old + means
        self._counts[names] = self._counts.get(names, 0) + 1

    def add_mapping(self, prefix: str, group: Mapping[str, Tensor]) -> None:
        """:meth:`add_group` for ``{name: [N] tensor}`` (keys become ``prefix + name``)."""
        if group:
            names = tuple(prefix + name for name in group)
            self.add_group(names, torch.stack([v.to(torch.float64) for v in group.values()]))

    def set_last_mapping(self, prefix: str, group: Mapping[str, Tensor]) -> None:
        """Remember the means of ``{name: [N] tensor}`` as the latest values."""
        if group:
            names = tuple(prefix + name for name in group)
            stacked = torch.stack([v.to(torch.float64) for v in group.values()])
            self._last[names] = stacked.detach().mean(dim=1)

    def add_terminations(self, codes: Tensor) -> None:
        """Count the termination codes ``[N]`` (int64, 0 = running) by reason."""
        # scatter_add, not bincount: CUDA's bincount reads the maximum back to the host
        flat = codes.reshape(-1).to(torch.int64)
        self._terminations.scatter_add_(0, flat, torch.ones_like(flat))

    def check_finite(self, name: str, values: Tensor) -> None:
        """Remember whether every entry of ``values`` was finite (reported at the flush)."""
        ok = torch.isfinite(values.detach()).all()
        old = self._finite.get(name)
        self._finite[name] = ok if old is None else old & ok

    def end_step(self, reward: Tensor, done: Tensor) -> None:
        """Add ``reward`` ``[N]`` to the running returns; close the episodes where ``done``."""
        self.returns = self.returns + reward.to(torch.float64)
        self.lengths = self.lengths + 1
        finished = done.to(torch.float64)
        self._episode_sums += torch.stack(
            [(self.returns * finished).sum(), (self.lengths.to(torch.float64) * finished).sum()]
        )
        self._episodes += done.to(torch.int64).sum()
        self.returns = torch.where(done, torch.zeros_like(self.returns), self.returns)
        self.lengths = torch.where(done, torch.zeros_like(self.lengths), self.lengths)

    # ---------------------------------------------------------------- to the host

    def flush(self, stats: IntervalStats) -> EpisodeTotals:
        """Copy everything to the host in one transfer, add it to ``stats`` and reset
        the interval accumulators (the running episodes carry on).

        Keys: the :meth:`add` names (means over the calls), ``episode/return_mean`` and
        ``episode/length_mean`` (means over the episodes finished in the interval, if
        any), ``termination/<reason>`` (counts, if non-zero) and the latest values.
        """
        sums = list(self._sums.items())
        lasts = list(self._last.items())
        finite = list(self._finite.items())
        parts = [t.to(torch.float64).reshape(-1) for _, t in sums + lasts]
        parts += [self._episode_sums, self._episodes.to(torch.float64).reshape(1)]
        parts += [self._terminations.to(torch.float64)]
        parts += [ok.to(torch.float64).reshape(1) for _, ok in finite]
        parts += [self.returns, self.lengths.to(torch.float64)]
        flat = torch.cat(parts).cpu().tolist()  # the one host copy of the interval
        at = 0
        for names, _ in sums:
            for name in names:
                stats.add_sum(name, flat[at], self._counts[names])
                at += 1
        for names, _ in lasts:
            for name in names:
                stats.last[name] = flat[at]
                at += 1
        return_sum, length_sum, episodes = flat[at], flat[at + 1], int(flat[at + 2])
        at += 3
        if episodes:
            stats.add_sum("episode/return_mean", return_sum, episodes)
            stats.add_sum("episode/length_mean", length_sum, episodes)
        for code, reason in TERMINATION_REASONS.items():
            if code != RUNNING and flat[at + code]:
                stats.add_count(f"termination/{reason}", flat[at + code])
        at += len(TERMINATION_REASONS)
        non_finite = [name for (name, _), ok in zip(finite, flat[at:], strict=False) if not ok]
        at += len(finite)
        n = self.num_envs
        returns, lengths = flat[at : at + n], [int(x) for x in flat[at + n : at + 2 * n]]
        self._sums.clear()
        self._counts.clear()
        self._last.clear()
        self._finite.clear()
        self._episode_sums.zero_()
        self._episodes.zero_()
        self._terminations.zero_()
        return EpisodeTotals(episodes, returns, lengths, non_finite)
