"""Report sections built on the statistics library: vortex point patterns against
complete spatial randomness, and parameter–outcome correlations of a training run.

Public names: ``point_pattern_section``, ``parameter_outcome_section``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from hhml.analysis.loading import RunData, Snapshot
from hhml.analysis.parameter_outcome import parameter_outcome_correlations
from hhml.analysis.point_process import (
    BandChart,
    hexatic_statistic,
    nearest_neighbour_distance,
    pair_correlation,
)
from hhml.analysis.report import figures
from hhml.analysis.report.document import Document

__all__ = ["parameter_outcome_section", "point_pattern_section"]

Section = Callable[[Document, Path], None]


def _interval(low: float, high: float) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return "—"
    return f"[{low:.4g}, {high:.4g}]"


def point_pattern_section(snap: Snapshot, strip: int = 0, seed: int = 0) -> Section:
    """g(r), nearest-neighbour distance and |ψ₆| of the vortices of strip ``strip``,
    pooled over the envs of one snapshot, each beside CSR on the same chart."""

    def section(doc: Document, out: Path) -> None:
        idx = snap.vortex_index.numpy()
        pos = snap.vortex_position.numpy()
        patterns = [pos[(idx[:, 0] == b) & (idx[:, 1] == strip)] for b in range(snap.num_envs)]
        patterns = [p for p in patterns if len(p) >= 2]
        doc.heading("Vortex positions against complete spatial randomness")
        if not patterns:
            doc.paragraph("Fewer than two vortices per env on this strip: nothing to compare.")
            return
        area = snap.extra.get("area_weights")
        cell = (
            area[0, strip].double().numpy()
            if area is not None
            else np.ones((int(snap.chart["nu"]), int(snap.chart["nv"])))
        )
        chart = BandChart(
            float(snap.chart["length"]),
            float(snap.chart["half_width"]),
            str(snap.chart["topology"]),
            cell,
        )
        gr = pair_correlation(patterns, chart, n_bins=12, n_null=49, n_resamples=200, seed=seed)
        nn = nearest_neighbour_distance(patterns, chart, seed=seed)
        hx = hexatic_statistic(patterns, chart, seed=seed)
        doc.paragraph(
            f"Strip {strip}, {len(patterns)} envs of the snapshot pooled "
            f"({sum(len(p) for p in patterns)} vortices). CSR: uniform points by area on the "
            "chart of env 0 (its cell areas), with the same numbers of points. " + gr.method
        )
        rows = [
            ["mean nearest-neighbour distance (length)", nn.value, _interval(nn.low, nn.high),
             nn.null, _interval(nn.null_low, nn.null_high)],
            ["hexatic order ⟨|ψ₆|⟩", hx.value, _interval(hx.low, hx.high), hx.null,
             _interval(hx.null_low, hx.null_high)],
        ]  # fmt: skip
        doc.table(["statistic", "measured", "interval", "CSR null", "CSR range"], rows)
        doc.paragraph(
            f"Clark–Evans ratio (measured / CSR mean nearest-neighbour distance): "
            f"{nn.value / nn.null:.3g} (< 1: closer than random, > 1: more regular)."
        )
        figures.plot_curve_with_band(
            out / "pair_correlation.png",
            gr.r,
            gr.g,
            (gr.null_low, gr.null_high),
            xlabel="distance r on the strip (length)",
            ylabel="g(r)",
            label="vortices",
            band_label=f"CSR envelope ({gr.level:.0%})",
            reference=1.0,
        )
        doc.figure(
            "pair_correlation.png",
            "Pair correlation g(r) of the vortex positions (shortest distance through the "
            "identification) beside the pointwise envelope of complete spatial randomness on "
            "the same chart; g = 1 for CSR.",
        )
        doc.numbers["point_patterns"] = {
            "strip": strip,
            "pair_correlation": {
                "r": gr.r.tolist(),
                "g": gr.g.tolist(),
                "low": gr.low.tolist(),
                "high": gr.high.tolist(),
                "null_low": gr.null_low.tolist(),
                "null_high": gr.null_high.tolist(),
                "method": gr.method,
            },
            "nearest_neighbour": nn.to_dict(),
            "hexatic": hx.to_dict(),
        }

    return section


def parameter_outcome_section(run: RunData, seed: int = 0) -> Section | None:
    """Correlations of each control trajectory with reward and vortex density."""
    names = sorted({k[7:] for r in run.of_kind("train") for k in r if k.startswith("params/")})
    if not names:
        return None

    def section(doc: Document, out: Path) -> None:
        rows = [r for r in run.of_kind("train") if all(f"params/{n}" in r for n in names)]
        outcomes = {
            key: np.asarray([float(r.get(key, np.nan)) for r in rows])
            for key in ("reward/total", "vortex/density")
        }
        outcomes = {k: v for k, v in outcomes.items() if np.all(np.isfinite(v))}
        doc.heading("Parameter–outcome correlations")
        if len(rows) < 8 or not outcomes:
            doc.paragraph(
                f"{len(rows)} logged intervals: too few for correlations that respect "
                "autocorrelation (at least 8 are needed)."
            )
            return
        params = np.asarray([[float(r[f"params/{n}"]) for n in names] for r in rows])
        analysis = parameter_outcome_correlations(params, outcomes, names, seed=seed)
        doc.paragraph(
            f"{len(rows)} logged intervals, {analysis.n_tests} tests. {analysis.description}. "
            "With T intervals the smallest attainable shift-test p-value is about 1/(2T), so "
            "after the multiple-comparison adjustment short runs cannot show any correlation."
        )
        table = sorted(
            analysis.table(),
            key=lambda t: float(t["p_value"]) if np.isfinite(float(t["p_value"])) else 2.0,
        )
        doc.table(
            ["parameter", "outcome", "r", "interval", "p (shift)", "p (naive)", "Holm", "BH"],
            [
                [t["parameter"], t["outcome"], t["r"], _interval(float(t["r_low"]),
                 float(t["r_high"])), t["p_value"], t["p_naive"], t["p_holm"], t["p_bh"]]
                for t in table[:10]
            ],
        )  # fmt: skip
        doc.paragraph("The ten smallest shift-test p-values are shown; report.json has all.")
        doc.numbers["parameter_outcome"] = {
            "method": analysis.method,
            "n_tests": analysis.n_tests,
            "description": analysis.description,
            "tests": analysis.table(),
        }

    return section
