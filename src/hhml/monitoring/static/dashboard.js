// HHmL monitor: live charts of a run directory fed by server-sent events.
//
// Safety: every string that comes from a run directory (run names, paths, config text,
// metric keys, summary values) is inserted with textContent, never as markup; strings
// handed to plotly (trace names, titles) are HTML-escaped first because plotly interprets
// a few tags in them. The server's Content-Security-Policy forbids inline scripts as well.
"use strict";

(function () {
  const MAX_POINTS = 5000; // per series, oldest points dropped first
  const RENDER_DELAY_MS = 150;
  const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2",
    "#ca8a04", "#db2777", "#4b5563", "#65a30d"];
  const PLOT_CONFIG = { displaylogo: false, responsive: true };

  const state = {
    runs: [],
    run: null,
    source: null,
    series: new Map(), // metric key -> {x: number[], y: number[]}
    order: [], // metric keys in order of first appearance
    info: null,
    clockOffset: 0,
    renderTimer: null,
    snapshotStep: null,
  };

  // ---- helpers --------------------------------------------------------------------------

  function esc(text) {
    // For plotly labels: plotly decodes these entities back to characters when it draws.
    return String(text).replace(/[&<>"']/g, (c) => ({
      "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
    })[c]);
  }

  function el(id) { return document.getElementById(id); }

  function setText(id, text) { el(id).textContent = text == null ? "" : String(text); }

  function fmt(value) {
    if (typeof value === "number") {
      if (Number.isInteger(value)) return String(value);
      const abs = Math.abs(value);
      return abs !== 0 && (abs < 1e-3 || abs >= 1e5) ? value.toExponential(3) : value.toPrecision(4);
    }
    return value == null ? "–" : String(value);
  }

  function fillList(dl, rows) {
    dl.replaceChildren();
    for (const [key, value] of rows) {
      const dt = document.createElement("dt");
      dt.textContent = key;
      const dd = document.createElement("dd");
      dd.textContent = fmt(value);
      dl.append(dt, dd);
    }
  }

  // ---- metrics store --------------------------------------------------------------------

  function clearSeries() {
    state.series = new Map();
    state.order = [];
  }

  function addRecords(records) {
    for (const rec of records) {
      const step = rec.step;
      if (typeof step !== "number") continue;
      for (const [key, value] of Object.entries(rec)) {
        if (key === "step" || typeof value !== "number") continue;
        let s = state.series.get(key);
        if (!s) {
          s = { x: [], y: [] };
          state.series.set(key, s);
          state.order.push(key);
        }
        s.x.push(step);
        s.y.push(value);
        if (s.x.length > MAX_POINTS) {
          s.x.splice(0, s.x.length - MAX_POINTS);
          s.y.splice(0, s.y.length - MAX_POINTS);
        }
      }
    }
    scheduleRender();
  }

  function keys(predicate) { return state.order.filter(predicate); }

  function line(key, opts) {
    const s = state.series.get(key);
    return Object.assign({
      type: "scatter", mode: "lines", name: esc(key), x: s.x.slice(), y: s.y.slice(),
    }, opts || {});
  }

  // ---- charts ---------------------------------------------------------------------------

  function baseLayout(title, extra) {
    return Object.assign({
      title: { text: esc(title) + " <span style='font-size:11px;color:#6b7280'>vs step</span>",
        font: { size: 14 }, x: 0.02 },
      margin: { l: 55, r: 20, t: 36, b: 30 },
      xaxis: { automargin: true, hoverformat: "d" }, // x is the environment step
      yaxis: { automargin: true },
      legend: { orientation: "h", x: 0, y: -0.1, yanchor: "top", font: { size: 11 } },
      uirevision: state.run,
      hovermode: "x unified",
    }, extra || {});
  }

  function draw(id, traces, layout) {
    if (traces.length === 0) {
      layout.annotations = [{ text: "waiting for data", showarrow: false, xref: "paper",
        yref: "paper", x: 0.5, y: 0.5, font: { color: "#6b7280" } }];
    }
    Plotly.react(el(id), traces, layout, PLOT_CONFIG);
  }

  function stepRange() {
    let lo = Infinity, hi = -Infinity;
    for (const s of state.series.values()) {
      if (s.x.length) { lo = Math.min(lo, s.x[0]); hi = Math.max(hi, s.x[s.x.length - 1]); }
    }
    return lo <= hi ? [lo, Math.max(hi, lo + 1)] : null;
  }

  function hline(value, name, color) {
    const range = stepRange();
    if (range == null || typeof value !== "number") return [];
    return [{ type: "scatter", mode: "lines", name: esc(name), x: range, y: [value, value],
      line: { dash: "dash", color: color, width: 1.5 }, hoverinfo: "name+y" }];
  }

  function renderReward() {
    const traces = [];
    if (state.series.has("episode/return_mean")) {
      traces.push(line("episode/return_mean", { name: "episode return (train)", line: { color: COLORS[0] } }));
    }
    if (state.series.has("eval/return_mean")) {
      const std = state.series.get("eval/return_std");
      traces.push(line("eval/return_mean", {
        name: "eval return", mode: "lines+markers", line: { color: COLORS[2] },
        error_y: std && std.y.length === state.series.get("eval/return_mean").y.length
          ? { type: "data", array: std.y.slice(), visible: true } : undefined,
      }));
    }
    const base = state.series.get("baseline/return_mean");
    if (base) traces.push(...hline(base.y[base.y.length - 1], "baseline (random actions)", "#6b7280"));
    for (const [name, label, color] of [
      ["midpoint", "mid-point action", "#a16207"],
      ["constant", "best constant (same budget)", "#b91c1c"],
      ["schedule", "best schedule (same budget)", "#7c3aed"],
    ]) {
      const scored = state.series.get(`baselines/${name}/return_mean`);
      if (scored) traces.push(...hline(scored.y[scored.y.length - 1], label, color));
    }
    if (state.series.has("reward/total")) {
      traces.push(line("reward/total", { name: "reward/total (per step, right axis)", yaxis: "y2",
        line: { color: COLORS[1], width: 1 } }));
    }
    draw("chart-reward", traces, baseLayout("Reward", {
      yaxis: { title: { text: "episode return" }, automargin: true },
      yaxis2: { title: { text: "reward per step" }, overlaying: "y", side: "right", automargin: true,
        showgrid: false },
    }));
  }

  function renderKeys(id, title, predicate, yTitle) {
    const traces = keys(predicate).map((k, i) => line(k, { line: { color: COLORS[i % COLORS.length] } }));
    draw(id, traces, baseLayout(title, { yaxis: { title: { text: esc(yTitle) }, automargin: true } }));
  }

  function renderVortex() {
    const traces = [];
    for (const [i, key] of ["vortex/density", "vortex/null_density"].entries()) {
      if (state.series.has(key)) traces.push(line(key, { line: { color: COLORS[i] } }));
    }
    if (state.series.has("eval/vortex/density")) {
      traces.push(line("eval/vortex/density", { mode: "markers", marker: { color: COLORS[2] } }));
    }
    const info = state.info || {};
    if (traces.length && typeof info.target_density === "number") {
      traces.push(...hline(info.target_density, "target density", "#16a34a"));
    }
    if (traces.length && typeof info.setpoint_low === "number") {
      traces.push(...hline(info.setpoint_low, "lowest set-point", "#16a34a"));
      traces.push(...hline(info.setpoint_high, "highest set-point", "#16a34a"));
    }
    draw("chart-vortex", traces, baseLayout("Vortex density vs null model", {
      yaxis: { title: { text: "per plaquette" }, automargin: true },
    }));
  }

  function renderParams() {
    const names = keys((k) => k.startsWith("params/"));
    const columns = 6;
    const rows = Math.max(1, Math.ceil(names.length / columns));
    const traces = [];
    const annotations = [];
    names.forEach((key, i) => {
      const axis = i === 0 ? "" : String(i + 1);
      traces.push(line(key, {
        xaxis: "x" + axis, yaxis: "y" + axis, showlegend: false,
        line: { color: COLORS[i % COLORS.length], width: 1.5 },
      }));
      annotations.push({ text: esc(key.slice("params/".length)), showarrow: false,
        xref: "x" + axis + " domain", yref: "y" + axis + " domain", x: 0.5, y: 1.0,
        xanchor: "center", yanchor: "bottom", font: { size: 11 } });
    });
    const layout = baseLayout("The " + names.length + " control parameters", {
      grid: { rows: rows, columns: columns, pattern: "independent", ygap: 0.45, xgap: 0.25 },
      annotations: annotations, hovermode: "closest", margin: { l: 45, r: 15, t: 60, b: 30 },
    });
    delete layout.xaxis;
    delete layout.yaxis;
    for (let i = 0; i < names.length; i++) {
      const axis = i === 0 ? "" : String(i + 1);
      layout["xaxis" + axis] = { tickfont: { size: 9 }, nticks: 4 };
      layout["yaxis" + axis] = { tickfont: { size: 9 }, nticks: 4 };
    }
    draw("chart-params", traces, layout);
  }

  function render() {
    state.renderTimer = null;
    if (typeof Plotly === "undefined") { scheduleRender(); return; }
    renderReward();
    renderKeys("chart-terms", "Reward terms", (k) => k.startsWith("reward/") && k !== "reward/total",
      "reward");
    renderVortex();
    renderKeys("chart-losses", "Losses", (k) => k.startsWith("agent/") && k.includes("loss"), "loss");
    renderKeys("chart-speed", "Throughput", (k) => k === "time/steps_per_sec", "env steps / s");
    renderParams();
  }

  function scheduleRender() {
    if (state.renderTimer == null) state.renderTimer = setTimeout(render, RENDER_DELAY_MS);
  }

  // ---- status, snapshot, config ---------------------------------------------------------

  function renderInfo(info) {
    state.info = info;
    state.clockOffset = Date.now() / 1000 - (info.server_time || Date.now() / 1000);
    setText("run-name", info.name);
    setText("run-path", info.path);
    document.title = "HHmL monitor – " + info.name;
    const badge = el("run-status");
    badge.textContent = info.status;
    badge.className = "badge " + (/^[a-z]+$/.test(info.status) ? info.status : "");
    const total = typeof info.total_steps === "number" ? info.total_steps : null;
    setText("run-step", "step " + fmt(info.step) + (total ? " of " + fmt(total) : ""));
    const progress = el("run-progress");
    progress.max = total || 1;
    progress.value = total && typeof info.step === "number" ? Math.min(info.step, total) : 0;
    const last = (k) => {
      const s = state.series.get(k);
      return s && s.y.length ? s.y[s.y.length - 1] : null;
    };
    fillList(el("run-facts"), [
      ["algorithm", info.algorithm],
      ["environment", info.env_id],
      ["steps / s", last("time/steps_per_sec")],
      ["last eval return", last("eval/return_mean")],
      ["baseline return", last("baseline/return_mean")],
      ["best constant return", last("baselines/constant/return_mean")],
      ["vortex density", last("vortex/density")],
    ]);
    fillList(el("summary"), info.summary || []);
    updateAge();
    if (info.snapshot_step !== state.snapshotStep) {
      state.snapshotStep = info.snapshot_step;
      const img = el("snapshot-image");
      if (info.snapshot_step == null) {
        img.hidden = true;
        el("snapshot-empty").hidden = false;
        setText("snapshot-caption", "");
      } else {
        img.src = "/api/runs/" + state.run + "/snapshot.png?step=" + info.snapshot_step;
        setText("snapshot-caption", "step " + info.snapshot_step + ", env 0 — ▲ +1 vortex, ▼ −1");
      }
    }
  }

  function updateAge() {
    const info = state.info;
    if (!info || !info.updated) { setText("run-updated", ""); return; }
    const age = Math.max(0, Date.now() / 1000 - state.clockOffset - info.updated);
    setText("run-updated", "last metrics line " + (age < 90 ? Math.round(age) + " s" :
      Math.round(age / 60) + " min") + " ago");
  }

  // ---- runs and the event stream --------------------------------------------------------

  function setConnection(online) {
    const c = el("connection");
    c.textContent = online ? "live" : "reconnecting…";
    c.className = "connection " + (online ? "online" : "offline");
  }

  function selectRun(id) {
    if (state.source) state.source.close();
    state.run = id;
    state.snapshotStep = undefined;
    clearSeries();
    for (const b of el("runs").children) b.classList.toggle("active", Number(b.dataset.run) === id);
    const src = new EventSource("/api/runs/" + id + "/events");
    state.source = src;
    src.onopen = () => setConnection(true);
    src.onerror = () => setConnection(false);
    src.addEventListener("reset", (e) => { clearSeries(); addRecords(JSON.parse(e.data).records); });
    src.addEventListener("metrics", (e) => addRecords(JSON.parse(e.data).records));
    src.addEventListener("info", (e) => renderInfo(JSON.parse(e.data)));
    src.addEventListener("config", (e) => {
      const cfg = JSON.parse(e.data);
      setText("config", cfg.text + (cfg.truncated ? "\n… (cut)" : ""));
    });
    if (location.hash !== "#run=" + id) history.replaceState(null, "", "#run=" + id);
  }

  async function start() {
    el("snapshot-image").addEventListener("load", () => {
      el("snapshot-image").hidden = false;
      el("snapshot-empty").hidden = true;
    });
    el("snapshot-image").addEventListener("error", () => {
      el("snapshot-image").hidden = true;
      el("snapshot-empty").hidden = false;
      setText("snapshot-empty", "The snapshot could not be rendered.");
    });
    const response = await fetch("/api/runs");
    const data = await response.json();
    state.runs = data.runs;
    const nav = el("runs");
    for (const run of state.runs) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = run.name;
      b.title = run.path;
      b.dataset.run = String(run.id);
      b.addEventListener("click", () => selectRun(run.id));
      nav.append(b);
    }
    const match = /^#run=(\d+)$/.exec(location.hash);
    const wanted = match ? Number(match[1]) : 0;
    selectRun(wanted < state.runs.length ? wanted : 0);
    setInterval(updateAge, 1000);
  }

  window.hhmlMonitor = state; // for debugging and the browser test
  document.addEventListener("DOMContentLoaded", start);
})();
