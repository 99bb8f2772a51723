"""``hhml-analyze``: a report of a run directory, training checkpoint or field snapshot.

Exit codes: 0 report written; 2 invalid invocation or unreadable input (missing,
corrupted or malformed files) — reported in one line, nothing written.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import click

from hhml.cli.common import (
    CONTEXT_SETTINGS,
    EXIT_USAGE,
    common_options,
    exit_codes_epilog,
    fail,
    show_progress,
)
from hhml.errors import HHmLError

__all__ = ["EXIT_USAGE", "main"]

_HELP = """Analyse a run directory, a training checkpoint (model_*.pt) or a field snapshot
(snapshots/step_*.h5, or .pt of older runs) and write a report.

The report (report.md or report.html, with PNG figures, and always report.json with
every number in it) shows the training and evaluation returns beside a random-action
baseline, each reward term, the 23 control-parameter trajectories, the vortex density
beside its null models (i.i.d. phases: 1/3; Gaussian random field: ⟨k²⟩/4π), the latest
field snapshot with its vortices and their statistics (|q| distribution, pair
correlation g(r), nearest neighbours and hexatic order, each against complete spatial
randomness on the same strip), field correlations and spectra, and parameter–outcome
correlations with autocorrelation-aware p-values. Inputs are only read: the run
directory is never modified, and checkpoints written on CUDA load on the CPU.

Progress over the report sections is a bar on a terminal and, in a log file or pipe, a
line every 30 s and one at the end (no carriage returns); --no-progress or -q turn it
off.

\b
Examples:
  hhml-analyze results/runs/20261124-101500
  hhml-analyze results/runs/quickstart --out results/analysis/qs --format html
  hhml-analyze results/runs/a --compare results/runs/b results/runs/c
  hhml-analyze results/runs/a/model_last.pt --dark-matter
"""

_EPILOG = exit_codes_epilog({0: "report written", 2: "invalid invocation or unreadable input"})


def _fail(message: str) -> NoReturn:
    fail("hhml-analyze", message, EXIT_USAGE)


@click.command(help=_HELP, epilog=_EPILOG, context_settings=CONTEXT_SETTINGS)
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Directory for the report and figures (default results/analysis/<input name>).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "html", "json"]),
    default="md",
    show_default=True,
    help="Report format; report.json with every number is written in any case.",
)
@click.option(
    "--compare",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Another run directory to compare with (repeatable).",
)
@click.option(
    "--dark-matter",
    is_flag=True,
    help="Also run the ensemble-branch ('pruning residue') analysis on the last snapshot "
    "(docs/dark_matter.md; an analysis of the model, not a cosmological claim).",
)
@common_options("hhml-analyze")
def main(
    source: Path,
    out_dir: Path | None,
    fmt: str,
    compare: tuple[Path, ...],
    dark_matter: bool,
) -> None:
    """Entry point of ``hhml-analyze`` (see ``--help``)."""
    from hhml.analysis.report import build_report, write_report

    out = out_dir if out_dir is not None else Path("results") / "analysis" / source.name
    # As hhml-train: build_report shows a bar only if stderr is a terminal, else plain lines.
    try:
        doc = build_report(
            source, out, compare=compare, dark_matter=dark_matter, progress=show_progress()
        )
        written = write_report(doc, out, [fmt])
    except HHmLError as exc:
        _fail(str(exc))
    for path in written:
        click.echo(str(path))


if __name__ == "__main__":  # pragma: no cover
    main()
