"""Config section ``training``: the training loop, evaluation, logging and checkpoints.

All step counts are *environment* steps summed over the batched envs: with
``env.num_envs = 4`` one vector step advances the counter by 4, and an event
"every N steps" fires on the first vector step that crosses a multiple of N.

Public names: ``TrainingConfig``, ``RUN_NAME_PATTERN``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hhml.config.specs import Section, spec

__all__ = ["RUN_NAME_PATTERN", "TrainingConfig"]

#: A run name: letters, digits, ``.``, ``_`` and ``-`` (a single directory name), or empty.
RUN_NAME_PATTERN = r"(?:[A-Za-z0-9_][A-Za-z0-9._-]*)?"

_DEVICE_PATTERN = r"auto|cpu|cuda(?::[0-9]+)?"  # the rule of simulation.device
_BASELINE = r"(?:random|midpoint|constant|schedule)"


@dataclass
class TrainingConfig(Section):
    """Settings of :class:`hhml.ml.training.Trainer` (config section ``training``).

    Attributes
    ----------
    total_steps : int
        Environment steps to train for (summed over envs).
    seed : int
        Seed of the global RNGs, the agent and the first reset of the training envs.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``: where agent and env run.
    eval_every : int
        Steps between evaluations of the deterministic policy (0: only at the end).
    eval_episodes : int
        Episodes per evaluation; episode ``i`` is reset with seed ``eval_seed + i``.
    eval_seed : int
        Seed of the separate evaluation env (and of the random-action baseline).
    log_every : int
        Steps between training lines in ``metrics.jsonl`` / TensorBoard.
    checkpoint_every : int
        Steps between ``model_last.pt`` checkpoints (one is always written at the end).
    snapshot_every : int
        Steps between field snapshots in ``snapshots/`` (0: none; envs without
        ``snapshot()`` never write any).
    run_root : str
        Directory under which run directories are created.
    run_name : str
        Name of the run directory; empty: a timestamped id.
    save_replay : bool
        Store the replay buffer in ``model_last.pt`` (needed for an exact resume).
    tensorboard : bool
        Write TensorBoard event files to ``tensorboard/``.
    progress_bar : bool
        Show a tqdm progress bar on stderr.
    deterministic : bool
        Ask torch for deterministic kernels (see :func:`hhml.utils.seed_everything`).
    torch_threads : int
        CPU threads torch may use (0: auto, :func:`hhml.ml.training.threads.choose_threads`:
        one thread below 65 536 field nodes per step, else all cores; set 1 on a
        machine shared with other jobs). A bitwise-exact resume needs the same value.
    baselines : str
        Non-learning baselines scored on the evaluation seeds after training, with the
        agent's env-step budget (:mod:`hhml.ml.baselines`): ``"all"``, ``"none"`` or a
        comma-separated subset of ``random,midpoint,constant,schedule``.
    baseline_segments : int
        Segments of the ``schedule`` baseline (piecewise-constant over an episode).
    """

    section_name: ClassVar[str] = "training"

    total_steps: int = spec(
        20_000, low=1, integer=True, doc="environment steps to train for (summed over envs)"
    )
    seed: int = spec(
        0, low=0, high=2**63 - 1, integer=True, doc="seed of global RNGs, agent and training envs"
    )
    device: str = spec(
        "auto",
        pattern=_DEVICE_PATTERN,
        pattern_help="'auto', 'cpu', 'cuda' or 'cuda:N'",
        doc="compute device of agent and environment",
    )
    eval_every: int = spec(
        5_000, low=0, integer=True, doc="steps between evaluations (0: only at the end)"
    )
    eval_episodes: int = spec(
        5, low=1, high=10_000, integer=True, doc="episodes per evaluation (seeds eval_seed + i)"
    )
    eval_seed: int = spec(
        1_000_000,
        low=0,
        high=2**63 - 1,
        integer=True,
        doc="seed of the evaluation env and the random-action baseline",
    )
    log_every: int = spec(
        1_000, low=1, integer=True, doc="steps between training lines in metrics.jsonl"
    )
    checkpoint_every: int = spec(
        5_000, low=1, integer=True, doc="steps between model_last.pt checkpoints"
    )
    snapshot_every: int = spec(
        0, low=0, integer=True, doc="steps between field snapshots in snapshots/ (0: none)"
    )
    run_root: str = spec(
        "results/runs",
        pattern=r"(?s).*\S.*",
        pattern_help="a non-empty directory path",
        doc="directory under which run directories are created",
    )
    run_name: str = spec(
        "",
        pattern=RUN_NAME_PATTERN,
        pattern_help="letters, digits, '.', '_' and '-' (empty: a timestamped id)",
        doc="name of the run directory (empty: timestamped id)",
    )
    save_replay: bool = spec(
        True, doc="store the replay buffer in model_last.pt (needed for an exact resume)"
    )
    tensorboard: bool = spec(True, doc="write TensorBoard event files to tensorboard/")
    progress_bar: bool = spec(True, doc="show a tqdm progress bar on stderr")
    deterministic: bool = spec(True, doc="ask torch for deterministic kernels")
    torch_threads: int = spec(
        0,
        low=0,
        high=1024,
        integer=True,
        doc="CPU threads of torch (0: auto — 1 below 65 536 field nodes per step, else all)",
    )
    baselines: str = spec(
        "all",
        pattern=rf"all|none|{_BASELINE}(?:,{_BASELINE})*",
        pattern_help="'all', 'none' or a comma-separated subset of "
        "random,midpoint,constant,schedule",
        doc="non-learning baselines scored after training with the same env-step budget",
    )
    baseline_segments: int = spec(
        4, low=1, high=64, integer=True, doc="segments of the open-loop schedule baseline"
    )

    def baseline_names(self) -> list[str]:
        """The names :attr:`baselines` selects, in report order."""
        order = ["random", "midpoint", "constant", "schedule"]
        if self.baselines == "all":
            return order
        if self.baselines == "none":
            return []
        chosen = set(self.baselines.split(","))
        return [name for name in order if name in chosen]
