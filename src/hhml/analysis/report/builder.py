"""Assemble the ``hhml-analyze`` report of a run directory, checkpoint or snapshot.

:func:`build_report` reads the inputs (never writing to them), computes every statistic
with its null model or confidence interval, draws the figures into ``out_dir`` and
returns the :class:`~hhml.analysis.report.document.Document`; :func:`write_report`
renders it as Markdown/HTML/JSON.

Progress over the report sections follows ``hhml-train``'s policy: a tqdm bar when the
stream is a terminal; otherwise (a log file, a pipe, CI) a plain line such as
``hhml-analyze: section 3/8 (37 %), 12 s, eta 20 s`` at most every
``progress_interval_s`` seconds and one last line at the end, never a carriage return;
nothing with ``progress=False`` (``--no-progress``, ``-q``).

Public names: ``build_report``, ``write_report``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from hhml.analysis.loading import RunData, Snapshot, load_run, load_snapshot, open_input
from hhml.analysis.report import figures
from hhml.analysis.report.document import Document
from hhml.analysis.report.statistics_sections import (
    field_section,
    parameter_outcome_section,
    point_pattern_section,
)
from hhml.config.controls import CONTROL_INDEX, NUM_CONTROLS
from hhml.core.resonance.vortices import IID_PHASE_VORTEX_FRACTION
from hhml.errors import CheckpointError, ConfigError
from hhml.utils.progress import LineProgress

__all__ = ["build_report", "write_report"]

Section = Callable[[Document, Path], None]


def _baselines_table(doc: Document, summary: dict[str, Any]) -> None:
    """The non-learning baselines scored with the agent's budget, beside the final eval."""
    baselines = summary.get("baselines")
    if not isinstance(baselines, list) or not baselines:
        return
    verdicts = summary.get("agent_vs_baselines") or {}
    final = summary.get("final_eval") or {}
    rows: list[list[Any]] = []
    if isinstance(final, dict) and "return_mean" in final:
        ci = final.get("return_ci95") or [None, None]
        rows.append(["agent (final eval)", final["return_mean"], ci[0], ci[1], None, ""])
    for record in baselines:
        if not isinstance(record, dict) or "name" not in record:
            continue
        if "skipped" in record:
            rows.append([record["name"], None, None, None, None, f"skipped: {record['skipped']}"])
            continue
        ci = record.get("return_ci95") or [None, None]
        rows.append(
            [
                record["name"],
                record.get("return_mean"),
                ci[0],
                ci[1],
                record.get("search_env_steps"),
                verdicts.get(record["name"], ""),
            ]
        )
    doc.paragraph(
        "Non-learning baselines on the same evaluation seeds: uniformly random actions, the "
        "mid-point of every control range, and the best constant action and best open-loop "
        "schedule found by CMA-ES with the agent's env-step budget. 'agent better' needs "
        "non-overlapping 95 % intervals."
    )
    doc.table(
        ["policy", "return (mean)", "95 % low", "95 % high", "search env steps", "agent vs it"],
        rows,
    )


def _training_section(run: RunData) -> Section:
    def section(doc: Document, out: Path) -> None:
        doc.heading("Training")
        summary = run.summary or {}
        rows: list[list[Any]] = []
        base = summary.get("baseline_return")
        for label, key in (
            ("first eval", "first_eval"),
            ("best eval", "best_eval"),
            ("final eval", "final_eval"),
        ):
            entry = summary.get(key)
            if isinstance(entry, dict) and "return_mean" in entry:
                diff = entry["return_mean"] - base if isinstance(base, (int, float)) else None
                rows.append(
                    [label, entry.get("step"), entry["return_mean"], entry.get("return_std"), diff]
                )
        if isinstance(base, (int, float)):
            rows.insert(0, ["random actions (baseline)", 0, base, None, 0.0])
        if rows:
            doc.table(
                ["evaluation", "step", "return (mean)", "std over episodes", "− baseline"], rows
            )
        _baselines_table(doc, summary)
        doc.numbers["training"] = {
            "baseline_return": base,
            "evaluations": [
                {
                    "step": r.get("step"),
                    "return_mean": r.get("eval/return_mean"),
                    "return_std": r.get("eval/return_std"),
                }
                for r in run.of_kind("eval")
            ],
            "status": summary.get("status"),
            "baselines": summary.get("baselines") or [],
            "agent_vs_baselines": summary.get("agent_vs_baselines") or {},
            "wall_time_s": summary.get("wall_time_s"),
            "steps_per_sec": summary.get("steps_per_sec"),
        }
        caption = figures.plot_rewards(run, out / "rewards.png")
        doc.figure("rewards.png", caption)
        if any(k.startswith("agent/") for r in run.of_kind("train") for k in r):
            doc.figure("agent.png", figures.plot_agent(run, out / "agent.png"))

    return section


def _parameters_section(run: RunData) -> Section:
    def section(doc: Document, out: Path) -> None:
        names = sorted(
            {
                k.split("/", 1)[1]
                for r in run.of_kind("train")
                for k in r
                if k.startswith("params/")
            },
            key=lambda n: CONTROL_INDEX.get(n, NUM_CONTROLS),
        )
        if not names:
            return
        doc.heading("Control parameters")
        doc.figure("parameters.png", figures.plot_parameters(run, out / "parameters.png", names))
        controls = run.config.get("controls", {})
        rows = []
        final: dict[str, float] = {}
        for k, name in enumerate(names, 1):
            _, y = run.series(f"params/{name}")
            if len(y):
                final[name] = float(y[-1])
                rows.append(
                    [
                        k,
                        name,
                        controls.get(f"{name}_low"),
                        controls.get(f"{name}_high"),
                        float(y[0]),
                        float(y[-1]),
                    ]
                )
        doc.table(["#", "control", "low", "high", "first interval", "last interval"], rows)
        doc.numbers["parameters"] = {"final": final}

    return section


def _density_section(run: RunData) -> Section:
    def section(doc: Document, out: Path) -> None:
        x, y = run.series("vortex/density")
        if not len(x):
            return
        doc.heading("Vortex density during training")
        doc.figure("density.png", figures.plot_density(run, out / "density.png"))
        _, yn = run.series("vortex/null_density")
        last = {"density": float(y[-1]), "iid_null": IID_PHASE_VORTEX_FRACTION}
        if len(yn):
            last["gaussian_field_null"] = float(yn[-1])
        doc.table(
            ["last log interval", "vortices per plaquette"],
            [
                ["measured", last["density"]],
                ["Gaussian-field null ⟨k²⟩/4π", last.get("gaussian_field_null")],
                ["i.i.d. phases", IID_PHASE_VORTEX_FRACTION],
            ],
        )
        doc.numbers["density"] = last

    return section


def _snapshot_section(snap: Snapshot) -> Section:
    def section(doc: Document, out: Path) -> None:
        doc.heading("Field snapshot" + (f" (step {snap.step})" if snap.step is not None else ""))
        doc.figure("snapshot.png", figures.plot_snapshot(snap, out / "snapshot.png"))
        idx = snap.vortex_index.numpy()
        q = snap.vortex_charge.numpy()
        chart = snap.chart
        plaquettes = (
            int(chart["strips"])
            * int(chart["nu"])
            * (int(chart["nv"]) - (0 if chart["topology"] == "torus" else 1))
        )
        counts = (
            np.bincount(idx[:, 0], minlength=snap.num_envs)
            if len(idx)
            else np.zeros(snap.num_envs, int)
        )
        density = counts / plaquettes
        charges, freq = (
            np.unique(np.abs(q), return_counts=True)
            if len(q)
            else (np.zeros(0, int), np.zeros(0, int))
        )
        rows = [
            [
                "vortices per env (mean)",
                float(counts.mean()),
                f"min {counts.min()}, max {counts.max()}",
            ],
            [
                "density per plaquette (mean over envs)",
                float(density.mean()),
                f"i.i.d.-phase null {IID_PHASE_VORTEX_FRACTION:.4f}",
            ],
            ["net charge (all envs)", int(q.sum()) if len(q) else 0, ""],
        ]
        measured = snap.extra.get("measured")
        if isinstance(measured, dict) and "null_density" in measured:
            null = measured["null_density"].numpy()
            rows.append(["Gaussian-field null ⟨k²⟩/4π (mean over envs)", float(null.mean()), ""])
        doc.table(["quantity", "value", "null / range"], rows)
        doc.table(
            ["|q|", "vortices", "fraction"],
            [
                [int(c), int(f), float(f) / max(1, len(q))]
                for c, f in zip(charges, freq, strict=True)
            ],
        )
        doc.numbers["snapshot"] = {
            "step": snap.step,
            "file": str(snap.path),
            "counts_per_env": counts.tolist(),
            "density_per_env": density.tolist(),
            "abs_charge_histogram": {int(c): int(f) for c, f in zip(charges, freq, strict=True)},
        }

    return section


def _compare_section(runs: Sequence[RunData]) -> Section:
    def section(doc: Document, out: Path) -> None:
        doc.heading("Comparison")
        doc.figure("compare.png", figures.plot_compare(runs, out / "compare.png"))
        rows = []
        for run in runs:
            s = run.summary or {}
            final = s.get("final_eval") or {}
            best = s.get("best_eval") or {}
            rows.append(
                [
                    run.path.name,
                    s.get("algorithm"),
                    s.get("baseline_return"),
                    best.get("return_mean"),
                    final.get("return_mean"),
                    s.get("step"),
                ]
            )
        doc.table(["run", "algorithm", "baseline", "best eval", "final eval", "steps"], rows)
        doc.numbers["compare"] = [
            dict(zip(["run", "algorithm", "baseline", "best", "final", "steps"], r, strict=True))
            for r in rows
        ]

    return section


class _SectionProgress(LineProgress):
    """Progress over the report sections: tqdm on a terminal, plain lines elsewhere.

    Parameters
    ----------
    total
        Number of sections.
    enabled
        ``False``: print nothing.
    interval_s
        Seconds between two plain lines (ignored on a terminal); > 0.
    stream
        Where to write; ``None``: ``sys.stderr`` at construction.
    clock
        Monotonic clock in seconds (tests pass a fake one).
    """

    def __init__(
        self,
        total: int,
        enabled: bool,
        *,
        interval_s: float,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        bar = {"desc": "hhml-analyze", "unit": "section"}
        super().__init__(
            total, 0, enabled, interval_s=interval_s, stream=stream, clock=clock, bar=bar
        )

    def advance(self) -> None:
        """Count one finished section (a plain line if ``interval_s`` has passed)."""
        self._advance(1)

    def line(self) -> str:
        """The plain line, e.g. ``hhml-analyze: section 3/8 (37 %), 12 s, eta 20 s``."""
        elapsed = self._clock() - self._start
        text = f"hhml-analyze: section {self._count}/{self._total}"
        if self._total > 0:
            text += f" ({100 * self._count // self._total} %)"
        text += f", {elapsed:.0f} s"
        if 0 < self._count < self._total:
            text += f", eta {elapsed / self._count * (self._total - self._count):.0f} s"
        return text


def build_report(
    source: str | Path,
    out_dir: str | Path,
    *,
    compare: Sequence[str | Path] = (),
    dark_matter: bool = False,
    progress: bool = True,
    progress_interval_s: float = 30.0,
    progress_stream: TextIO | None = None,
    extra_sections: Sequence[Callable[[Any, Snapshot | None], Section | None]] = (),
) -> Document:
    """Analyse ``source`` (run directory, checkpoint or snapshot) into ``out_dir``.

    Parameters
    ----------
    source
        What to analyse.
    out_dir
        Where figures go (created; must not be inside a run directory being analysed).
    compare
        Other run directories to compare evaluation curves with.
    dark_matter
        Also run the ensemble-branch analysis (:mod:`hhml.analysis.dark_matter`) on the
        last snapshot.
    progress
        Show progress over the report sections: a tqdm bar if ``progress_stream`` is a
        terminal, else plain lines (see the module docstring); ``False``: nothing.
    progress_interval_s
        Seconds between two plain progress lines (ignored on a terminal); > 0.
    progress_stream
        Where progress goes; ``None``: ``sys.stderr`` at the call.
    extra_sections
        Callables ``make(data, snapshot)`` returning one more section (or ``None``).

    Raises
    ------
    ConfigError
        ``progress_interval_s`` is not a positive number.
    CheckpointError
        An input is missing, unreadable or malformed, or ``out_dir`` is inside the
        analysed run directory.
    """
    if not progress_interval_s > 0:
        raise ConfigError(
            f"progress_interval_s = {progress_interval_s!r} is invalid; give seconds > 0"
        )
    kind, data = open_input(source)
    out = Path(out_dir)
    src = Path(source).resolve()
    if src.is_dir() and (out.resolve() == src or src in out.resolve().parents):
        raise CheckpointError(
            f"--out {out} is inside the analysed run directory {src}; hhml-analyze never "
            "writes into a run directory: choose another output directory"
        )
    out.mkdir(parents=True, exist_ok=True)
    doc = Document(title=f"HHmL analysis: {Path(source).name}")
    doc.numbers["input"] = {"path": str(source), "kind": kind}
    sections: list[Section] = []
    snap: Snapshot | None = None
    if kind == "run":
        run: RunData = data
        s = run.summary or {}
        algorithm = s.get("algorithm", run.config.get("agent", {}).get("algorithm"))
        env_id = s.get("env_id", run.config.get("env", {}).get("id"))
        status = s.get("status", "running (no metrics.json yet)")
        doc.paragraph(
            f"Run directory {run.path}: algorithm {algorithm}, environment {env_id}, seed "
            f"{s.get('seed')}, status {status}, {s.get('step', '?')} environment steps, "
            f"{len(run.records)} metrics records, {len(run.snapshots)} snapshots. Every number "
            "stands beside its null model or interval; nothing here is a verdict."
        )
        doc.numbers["run"] = {
            "summary": run.summary,
            "records": len(run.records),
            "snapshots": [str(p) for p in run.snapshots],
        }
        sections += [_training_section(run), _parameters_section(run), _density_section(run)]
        outcome = parameter_outcome_section(run)
        if outcome is not None:
            sections.append(outcome)
        if run.snapshots:
            snap = load_snapshot(run.snapshots[-1])
    elif kind == "checkpoint":
        ckpt, snap = data
        doc.paragraph(
            f"Checkpoint {source}: kind {ckpt.get('kind')}, step {ckpt.get('step')}, agent "
            f"{ckpt.get('agent_class')}, written by hhml {ckpt.get('hhml_version')}."
        )
        doc.numbers["checkpoint"] = {
            k: ckpt.get(k)
            for k in ("kind", "step", "agent_class", "hhml_version", "obs_dim", "act_dim")
        }
    else:
        snap = data
    if snap is not None:
        sections += [_snapshot_section(snap), point_pattern_section(snap), field_section(snap)]
    for make in extra_sections:
        extra = make(data, snap)
        if extra is not None:
            sections.append(extra)
    if dark_matter:
        if snap is None:
            raise CheckpointError(f"--dark-matter needs a field snapshot, and {source} has none")
        from hhml.analysis.report.dark_matter_section import dark_matter_section

        if kind == "run":
            cfg = data.config
        elif kind == "checkpoint":
            cfg = data[0].get("config", {})
        else:
            cfg = {}
        dynamics = cfg.get("dynamics") if isinstance(cfg, dict) else None
        sections.append(dark_matter_section(snap, dynamics=dynamics))
    if compare:
        runs = [data] if kind == "run" else []
        runs += [load_run(p) for p in compare]
        sections.append(_compare_section(runs))
    shown = _SectionProgress(
        len(sections), progress, interval_s=progress_interval_s, stream=progress_stream
    )
    try:
        for section in sections:
            section(doc, out)
            shown.advance()
    finally:
        shown.close()
    return doc


def write_report(doc: Document, out_dir: str | Path, formats: Sequence[str]) -> list[Path]:
    """Write ``report.md``/``report.html``/``report.json`` into ``out_dir``."""
    return doc.write(Path(out_dir), tuple(formats))
