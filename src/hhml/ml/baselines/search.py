"""The best constant action and the best open-loop schedule, found by CMA-ES.

An open-loop policy of ``K`` segments is a point ``x ∈ [−1, 1]^{K·A}`` (``A`` controls
per step; ``K = 1``: a constant action). :func:`search_open_loop` maximises its
episode return with CMA-ES (the ``cmaes`` package; Hansen's (μ/μ_w, λ)-CMA-ES with
bound handling by resampling and clipping): each generation's ``λ`` candidates run
one episode each, side by side as the ``λ`` envs of one vector env, reset from seeds
of a search stream that never coincides with the evaluation seeds (so the search does
not select for the evaluation episodes). Every env step taken counts against the
budget — the agent's ``training.total_steps`` when the baselines are compared with an
agent — including the steps of envs whose episode already ended while others of the
generation still run.

Choosing the result: one episode is a noisy score, so the best single candidate is
biased upwards, and the mean of the final search distribution (what CMA-ES converges
to) may not be reached within a small budget. So the last quarter of the budget (when it
affords at least two episodes per finalist) re-scores :data:`FINALISTS` policies — the
final mean and the best distinct candidates seen — on fresh seeds of the search stream,
and the one with the highest mean return is the result.

Public names: ``SearchResult``, ``episode_horizon``, ``search_open_loop``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import numpy.typing as npt

from hhml.config.schema import HHmLConfig
from hhml.errors import ConfigError
from hhml.ml.baselines.policies import segment_of
from hhml.ml.env.factory import MOBIUS_ENV_ID, make_vector_env

__all__ = ["SearchResult", "episode_horizon", "search_open_loop"]

FloatArray = npt.NDArray[np.float32]

#: Mixed into the search stream's seeds so they differ from ``training.eval_seed + i``.
_SEARCH_STREAM = 0x0B5E4C4
#: Policies re-scored at the end: the final CMA-ES mean and the best candidates seen.
FINALISTS = 4
#: Share of the budget reserved for re-scoring the finalists.
SELECTION_SHARE = 0.25


@dataclass
class SearchResult:
    """What :func:`search_open_loop` found and what it cost.

    Attributes
    ----------
    actions : ndarray
        ``[K, act_dim]`` float32 in ``[−1, 1]``: the schedule (``K = 1``: the constant).
    env_steps : int
        Env steps taken by the search (≤ the budget).
    episodes : int
        Episodes run by the search.
    generations : int
        CMA-ES generations.
    selection_episodes : int
        Episodes spent re-scoring the finalists (0 if the budget did not allow it).
    population : int
        Candidates per generation.
    search_return : float
        Mean return of the chosen policy on the search stream (its re-scoring episodes, or
        the last generation's mean without them); a progress indicator, not a score.
    wall_s : float
        Wall time of the search (seconds).
    """

    actions: FloatArray
    env_steps: int
    episodes: int
    generations: int
    selection_episodes: int
    population: int
    search_return: float
    wall_s: float


def episode_horizon(cfg: HHmLConfig) -> int:
    """Steps of one episode: ``env.horizon`` for the Möbius env, the gymnasium spec's
    ``max_episode_steps`` otherwise.

    Raises
    ------
    ConfigError
        The env has no finite episode length (an open-loop schedule needs one).
    """
    if cfg.env.id == MOBIUS_ENV_ID:
        return int(cfg.env.horizon)
    try:
        steps = gym.spec(cfg.env.id).max_episode_steps
    except gym.error.Error as exc:
        raise ConfigError(f"env.id = {cfg.env.id!r} is not a registered env: {exc}") from None
    if steps is None:
        raise ConfigError(
            f"env.id = {cfg.env.id!r} has no max_episode_steps; open-loop baselines need "
            "episodes of a fixed length"
        )
    return int(steps)


def _search_seed(base: int, generation: int) -> int:
    """Reset seed of a generation (``generation = 0, 1, …``; ``-1``, ``-2``: building the
    search and the selection envs)."""
    state = np.random.SeedSequence([base, _SEARCH_STREAM, generation + 2]).generate_state(1)
    return int(state[0])


def _run_generation(
    envs: gym.vector.VectorEnv,
    candidates: FloatArray,
    horizon: int,
    env_action: Callable[[FloatArray], FloatArray],
    seed: int,
) -> tuple[npt.NDArray[np.float64], int]:
    """One episode per candidate ``[P, K, A]`` in the ``P`` envs of ``envs``; returns
    the episode returns ``[P]`` and the env steps taken."""
    population, segments = candidates.shape[0], candidates.shape[1]
    envs.reset(seed=seed)
    returns = np.zeros(population)
    alive = np.ones(population, dtype=bool)
    steps = 0
    for t in range(horizon):
        action = candidates[:, segment_of(t, segments, horizon)]
        _, reward, terminated, truncated, _ = envs.step(env_action(action))
        steps += population
        returns += np.where(alive, np.asarray(reward, dtype=np.float64), 0.0)
        alive &= ~(np.asarray(terminated, dtype=bool) | np.asarray(truncated, dtype=bool))
        if not alive.any():
            break
    return returns, steps


def search_open_loop(
    cfg: HHmLConfig,
    segments: int,
    budget: int,
    env_action: Callable[[FloatArray], FloatArray],
    population: int | None = None,
    seed: int = 0,
    sigma: float = 1.0,
) -> SearchResult:
    """Search the best ``segments``-piece open-loop schedule with at most ``budget`` env steps.

    Parameters
    ----------
    cfg
        The config of the env (``env.*``; ``lattice``/``dynamics``/``simulation`` for
        the Möbius env).
    segments
        ``K ≥ 1`` (1: a constant action).
    budget
        Env steps the search may take (e.g. the agent's ``training.total_steps``).
    env_action
        Maps actions in ``[−1, 1]`` onto the env's Box (as the trainer does).
    population
        Candidates per generation (default: CMA-ES's ``4 + ⌊3 ln n⌋`` for ``n``
        parameters, at most what the budget allows for one generation).
    seed
        Seeds CMA-ES and the search stream of env resets.
    sigma
        Initial step size in action units: the search starts at the mid-point, 0, with
        half the width of the ``[−1, 1]`` box (on the quickstart, 0.5 reached 30.0 and 29.9,
        1.0 reached 35.8 and 28.8, 2.0 34.0 and 32.9 on 10 evaluation episodes with search
        seeds 0 and 1: the default is the a-priori choice, not the best of these).

    Raises
    ------
    ConfigError
        ``segments < 1``, a population below 2, or a budget below two episodes.
    """
    from cmaes import CMA

    horizon = episode_horizon(cfg)
    if segments < 1:
        raise ConfigError(f"segments = {segments}: an open-loop schedule needs at least 1")
    probe = make_vector_env(cfg, num_envs=1, seed=seed)
    space = probe.single_action_space
    probe.close()
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise ConfigError(f"env.id = {cfg.env.id!r} has action space {space}; need a 1-D Box")
    act_dim = int(space.shape[0])
    dim = segments * act_dim
    # cmaes needs at least two dimensions: a one-dimensional search carries one unused
    # coordinate (it does not change any action).
    search_dim = max(dim, 2)
    default_population = 4 + math.floor(3 * math.log(search_dim))
    affordable = budget // horizon
    size = min(population or default_population, affordable)
    if size < 2:
        raise ConfigError(
            f"a budget of {budget} env steps allows {affordable} episode(s) of {horizon} steps; "
            "the open-loop search needs at least 2 (raise the budget)"
        )
    if population is not None and population < 2:
        raise ConfigError(f"population = {population}: CMA-ES needs at least 2 candidates")
    per_finalist = int(budget * SELECTION_SHARE) // (FINALISTS * horizon)
    reserve = FINALISTS * per_finalist * horizon if per_finalist >= 2 else 0
    if (budget - reserve) // horizon < size:
        reserve = 0  # the search itself needs the whole budget
    start = time.perf_counter()
    optimizer = CMA(
        mean=np.zeros(search_dim),
        sigma=sigma,
        bounds=np.tile([-1.0, 1.0], (search_dim, 1)),
        seed=seed,
        population_size=size,
    )
    envs = make_vector_env(cfg, num_envs=size, seed=_search_seed(seed, -1))
    used = episodes = generations = 0
    last_mean = float("nan")
    seen: list[tuple[float, npt.NDArray[np.float64]]] = []
    try:
        while used + size * horizon <= budget - reserve:
            xs = np.stack([optimizer.ask() for _ in range(size)])
            candidates = xs[:, :dim].reshape(size, segments, act_dim).astype(np.float32)
            returns, steps = _run_generation(
                envs, candidates, horizon, env_action, _search_seed(seed, generations)
            )
            # cmaes minimises: tell it the negative returns
            optimizer.tell([(x, -float(r)) for x, r in zip(xs, returns, strict=True)])
            seen.extend((float(r), x[:dim]) for x, r in zip(xs, returns, strict=True))
            used += steps
            episodes += size
            generations += 1
            last_mean = float(returns.mean())
    finally:
        envs.close()
    finalists = [np.clip(optimizer.mean[:dim], -1.0, 1.0)]
    for _, x in sorted(seen, key=lambda item: -item[0]):
        if len(finalists) == FINALISTS:
            break
        if not any(np.array_equal(x, f) for f in finalists):
            finalists.append(np.clip(x, -1.0, 1.0))
    best, selection = finalists[0], 0
    if reserve and len(finalists) > 1:
        table = np.repeat(np.stack(finalists), per_finalist, axis=0)
        candidates = table.reshape(-1, segments, act_dim).astype(np.float32)
        final_envs = make_vector_env(cfg, num_envs=len(table), seed=_search_seed(seed, -2))
        try:
            returns, steps = _run_generation(
                final_envs, candidates, horizon, env_action, _search_seed(seed, generations)
            )
        finally:
            final_envs.close()
        means = returns.reshape(len(finalists), per_finalist).mean(axis=1)
        best = finalists[int(np.argmax(means))]
        last_mean = float(means.max())
        used += steps
        selection = len(table)
        episodes += selection
    return SearchResult(
        actions=best.reshape(segments, act_dim).astype(np.float32),
        env_steps=used,
        episodes=episodes,
        generations=generations,
        selection_episodes=selection,
        population=size,
        search_return=last_mean,
        wall_s=time.perf_counter() - start,
    )
