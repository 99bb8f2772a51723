"""Report sections built on the statistics library: vortex point patterns against
complete spatial randomness, and parameter–outcome correlations of a training run.

Public names: ``point_pattern_section``, ``parameter_outcome_section``, ``field_section``.
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

__all__ = ["field_section", "parameter_outcome_section", "point_pattern_section"]

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


def field_section(snap: Snapshot, seed: int = 0) -> Section:
    """g₁ along u with its correlation length per env, and the power spectrum of env 0.

    Each env lives on its own lattice (its seam twist is a control), so every env is
    analysed on its own chart; the strips of its stack are the samples of the bootstrap.
    """
    from hhml.analysis.correlations import field_correlation, power_spectrum
    from hhml.core.mobius import MobiusStrip

    def section(doc: Document, out: Path) -> None:
        chart = snap.chart
        if int(chart["strips"]) < 2:
            return
        names = list(snap.extra.get("control_names") or [])
        values = snap.extra.get("values")
        twist_col = names.index("twist") if "twist" in names else None
        doc.heading("Field correlations and spectrum")
        rows = []
        results = []
        for b in range(snap.num_envs):
            theta = (
                float(values[b, twist_col]) if twist_col is not None and values is not None else 0.0
            )
            lattice = MobiusStrip(
                int(chart["nu"]), int(chart["nv"]), length=float(chart["length"]),
                half_width=float(chart["half_width"]), topology=str(chart["topology"]),
                edge=str(chart.get("edge", "neumann")), twist=theta, dtype=snap.psi.dtype,
            )  # fmt: skip
            corr = field_correlation(snap.psi[b], lattice, n_resamples=200, n_null=19, seed=seed)
            xi = corr.correlation_length
            rows.append([b, theta, xi.value, _interval(xi.low, xi.high)])
            results.append((lattice, corr))
        doc.paragraph(
            "g₁(s) = ⟨ψ*(u, v) ψ(u + s, v)⟩ / ⟨|ψ|²⟩ along the strip, continued through the "
            "seam with each env's own twist θ; ξ from |g₁(s)| ≈ A e^{−s/ξ}. Each env is "
            f"analysed on its own chart, its {int(chart['strips'])} strips being the bootstrap "
            f"samples. {results[0][1].method}"
        )
        doc.table(["env", "twist θ", "correlation length ξ (length)", "bootstrap interval"], rows)
        lattice0, corr0 = results[0]
        figures.plot_curve_with_band(
            out / "g1.png", corr0.lag, np.abs(corr0.g1),
            (np.zeros_like(corr0.null_high), corr0.null_high),
            xlabel="shift s along u (length)", ylabel="|g₁(s)|", label="env 0",
            band_label="cell-shuffled fields (no correlation)",
        )  # fmt: skip
        doc.figure(
            "g1.png",
            "|g₁(s)| of env 0 along the strip (through the seam) beside the range of fields "
            "with the same cells shuffled, which have no spatial correlation.",
        )
        spec = power_spectrum(snap.psi[0], lattice0, n_resamples=200, seed=seed)
        figures.plot_curve_with_band(
            out / "spectrum.png", spec.k, spec.power, (spec.low, spec.high),
            xlabel="wavenumber k along u (1/length)", ylabel="power |ψ̂(k)|²", label="env 0",
            band_label="bootstrap over strips", reference=spec.white, logy=True,
        )  # fmt: skip
        doc.figure(
            "spectrum.png",
            "Power spectrum of env 0 along the strip (on the double cover for the Möbius "
            "band), with the flat white-noise level of the same total power (dotted).",
        )
        doc.numbers["field"] = {
            "correlation_length": [
                {"env": r[0], "twist": r[1], **res[1].correlation_length.to_dict()}
                for r, res in zip(rows, results, strict=True)
            ],
            "g1_env0": {"lag": corr0.lag.tolist(), "abs": np.abs(corr0.g1).tolist(),
                        "null_high": corr0.null_high.tolist()},
            "spectrum_env0": {"k": spec.k.tolist(), "power": spec.power.tolist(),
                              "white": spec.white, "method": spec.method},
        }  # fmt: skip

    return section
