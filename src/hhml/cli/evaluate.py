"""``hhml-evaluate``: run a trained agent on seeded episodes; returns and an animation.

Exit codes: 0 done; 1 error while running; 2 invalid invocation or unreadable input
(one line, nothing written).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import click

from hhml.cli.common import (
    CONTEXT_SETTINGS,
    EXIT_ERROR,
    EXIT_USAGE,
    common_options,
    fail,
    show_progress,
    stderr_is_terminal,
    verbosity,
)
from hhml.errors import HHmLError

_PROG = "hhml-evaluate"

_HELP = """Run the deterministic policy of a trained agent for N episodes and write the
returns and an animation of the field.

SOURCE is a run directory (its model_best.pt; --checkpoint last for model_last.pt) or
a checkpoint file. The episodes follow the trainer's evaluation protocol (one env,
reset with each seed; by default seeds training.eval_seed + i), so the returns equal
what the trainer's evaluation computes for the same checkpoint and seeds.

\b
Writes to --out (default SOURCE/evaluation/ for a run directory,
<checkpoint name>_evaluation/ beside a checkpoint file):
  returns.json         per-episode return and length, the mean with its 95 %
                       Student-t interval, seeds, checkpoint, deterministic flag
  episode_<seed>.gif   one frame per env step (and one after reset): |ψ| and
                       arg ψ of each strip with the vortices marked (▲ +, ▼ −),
                       the 23 controls beside them, step, reward and vortex
                       count in the title (Möbius env only; MP4 with --mp4,
                       which needs ffmpeg)

\b
Examples:
  hhml-evaluate results/runs/quickstart
  hhml-evaluate results/runs/quickstart --checkpoint last --episodes 10 --no-animate
  hhml-evaluate results/runs/quickstart/model_best.pt --seeds 7,8,9 --animate-all

Exit codes: 0 done, 1 error while running, 2 invalid invocation or input.
"""


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    fail(_PROG, message, code)


def parse_seeds(text: str) -> list[int]:
    """``"a,b,c"`` → ``[a, b, c]``; :class:`ValueError` naming the bad entry."""
    seeds: list[int] = []
    for part in text.split(","):
        item = part.strip()
        try:
            seeds.append(int(item))
        except ValueError:
            raise ValueError(
                f"--seeds {text!r}: {item!r} is not an integer; give comma-separated "
                "integers, e.g. --seeds 3,4,5"
            ) from None
    return seeds


@click.command(help=_HELP, context_settings=CONTEXT_SETTINGS)
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "--checkpoint",
    "which",
    type=click.Choice(["best", "last"]),
    default="best",
    show_default=True,
    help="Which checkpoint of a run directory.",
)
@click.option(
    "--episodes", type=int, default=None, help="Number of episodes [training.eval_episodes]."
)
@click.option("--seeds", default=None, help="Comma-separated reset seeds [eval_seed + i].")
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), help="Output directory."
)
@click.option(
    "--animate/--no-animate", default=True, show_default=True, help="Animate the first episode."
)
@click.option("--animate-all", is_flag=True, help="Animate every episode.")
@click.option("--fps", type=float, default=5.0, show_default=True, help="Animation frame rate.")
@click.option("--mp4", is_flag=True, help="Write MP4 instead of GIF (needs ffmpeg).")
@click.option("--dpi", type=int, default=72, show_default=True, help="Animation resolution.")
@click.option(
    "--env",
    "env_index",
    type=int,
    default=0,
    show_default=True,
    help="Which env of the evaluation batch to draw (the batch has 1 env).",
)
@click.option("--device", default="cpu", show_default=True, help="Torch device (cpu, cuda).")
@click.option(
    "--json", "json_path", type=click.Path(path_type=Path), help="Also write returns.json here."
)
@common_options(_PROG)
def main(
    source: Path,
    which: str,
    episodes: int | None,
    seeds: str | None,
    out_dir: Path | None,
    animate: bool,
    animate_all: bool,
    fps: float,
    mp4: bool,
    dpi: int,
    env_index: int,
    device: str,
    json_path: Path | None,
) -> None:
    """Entry point of ``hhml-evaluate`` (see ``--help``)."""
    quiet, verbose = verbosity() < 0, verbosity() > 0
    try:
        seed_list = parse_seeds(seeds) if seeds is not None else None
    except ValueError as exc:
        _fail(str(exc))
    if episodes is not None and episodes < 1:
        _fail(f"--episodes {episodes}: give a positive number of episodes")
    if seed_list is not None and episodes is not None and episodes != len(seed_list):
        _fail(f"--episodes {episodes} disagrees with the {len(seed_list)} seeds of --seeds")
    if not (fps > 0):
        _fail(f"--fps {fps}: give a positive frame rate")
    if dpi < 10:
        _fail(f"--dpi {dpi}: give at least 10")
    if env_index != 0:
        _fail(f"--env {env_index}: the evaluation batch has 1 env, so the only index is 0")

    import torch

    from hhml.analysis.animation import AnimationWriter, mp4_available
    from hhml.analysis.evaluate import evaluate, is_mobius, load_evaluation
    from hhml.utils.atomic_io import atomic_write_text
    from hhml.utils.device import resolve_device

    if mp4 and not mp4_available():
        _fail("--mp4 needs ffmpeg, which matplotlib does not find; install it or drop --mp4")
    try:
        dev = resolve_device(device)
        agent, cfg, checkpoint, step = load_evaluation(source, which, dev)
    except HHmLError as exc:
        _fail(str(exc))
    if seed_list is None:
        count = episodes if episodes is not None else cfg.training.eval_episodes
        seed_list = [cfg.training.eval_seed + i for i in range(count)]
    if out_dir is None:
        out_dir = (
            source / "evaluation"
            if source.is_dir()
            else checkpoint.with_name(f"{checkpoint.stem}_evaluation")
        )
    wants_frames = animate or animate_all

    def say(line: str) -> None:
        if not quiet:
            click.echo(line, err=True)

    mobius = is_mobius(cfg)
    if wants_frames and not mobius:
        say(f"note: env {cfg.env.id!r} has no field to animate; writing the returns only")
    suffix = ".mp4" if mp4 else ".gif"
    written: dict[int, str] = {}
    timing = [0.0, 0]  # seconds drawing and writing frames, frames
    animator: list[Any] = []  # one figure, built from the first frame, reused

    class _Sink:
        """Frames of one episode to its file; times each frame."""

        def __init__(self, path: Path) -> None:
            self.path = path
            self.writer: AnimationWriter | None = None

        def add(self, frame: Any) -> None:
            start = time.perf_counter()
            if self.writer is None:
                if not animator:
                    animator.append(_animator_for(frame, cfg, dpi))
                self.writer = AnimationWriter(self.path, animator[0], fps=fps)
            self.writer.add(frame)
            timing[0] += time.perf_counter() - start
            timing[1] += 1

        def close(self) -> None:
            if self.writer is not None:
                self.writer.close()

    def sink_for(episode: int, seed: int) -> _Sink | None:
        if not (wants_frames and mobius and (animate_all or episode == 0)):
            return None
        path = out_dir / f"episode_{seed}{suffix}"
        written[seed] = str(path)
        return _Sink(path)

    bar: Any = None
    if show_progress() and stderr_is_terminal():
        from tqdm.auto import tqdm

        bar = tqdm(total=len(seed_list), unit="episode", desc=_PROG, leave=False)

    def on_episode(result: Any) -> None:
        if bar is not None:
            bar.update(1)
        if verbose and not quiet:
            line = (
                f"seed {result.seed}: return {result.episode_return:.6g} "
                f"over {result.length} steps" + (" (failed)" if result.terminated else "")
            )
            if bar is not None:
                bar.write(line, file=sys.stderr)
            else:
                click.echo(line, err=True)

    try:
        with torch.no_grad():
            result = evaluate(
                agent,
                cfg,
                seed_list,
                device=dev,
                env_index=env_index,
                sink_for=sink_for,
                on_episode=on_episode,
            )
    except BaseException as exc:
        if bar is not None:
            bar.close()
        for path in written.values():  # nothing half-written stays behind
            Path(path).unlink(missing_ok=True)
        if isinstance(exc, HHmLError):
            _fail(str(exc))
        if isinstance(exc, Exception):  # a failure while running, not a usage error
            _fail(f"{type(exc).__name__}: {exc}", EXIT_ERROR)
        raise
    if bar is not None:
        bar.close()
    result.checkpoint, result.step, result.animations = checkpoint, step, written
    payload = {"source": str(source), "env": cfg.env.id, **result.to_dict()}
    text = json.dumps(payload, indent=2) + "\n"
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "returns.json", text)
    if json_path is not None:
        atomic_write_text(json_path, text)
    if quiet:
        return
    ci = result.interval
    interval = "no interval (1 episode)" if ci is None else f"95% CI [{ci[0]:.4g}, {ci[1]:.4g}]"
    click.echo(
        f"return {result.mean:.6g} over {len(result.episodes)} episodes ({interval}); "
        f"checkpoint {checkpoint} (step {step})"
    )
    if verbose and timing[1]:
        click.echo(f"{timing[0] / timing[1]:.3f} s per frame (draw + write)", err=True)
    click.echo(str(out_dir / "returns.json"))
    for path in written.values():
        click.echo(path)


def _animator_for(frame: Any, cfg: Any, dpi: int) -> Any:
    """The figure for the frame's field and chart and the config's control ranges."""
    from hhml.analysis.animation import FieldAnimator
    from hhml.ml.env.controls import CONTROLS, ControlMap

    controls = ControlMap(cfg)
    return FieldAnimator(
        strips=int(frame.psi.shape[0]),
        length=frame.length,
        half_width=frame.half_width,
        control_names=[c.name for c in CONTROLS],
        control_low=controls.low,
        control_high=controls.high,
        horizon=cfg.env.horizon,
        dpi=dpi,
    )


if __name__ == "__main__":  # pragma: no cover
    main()
