"""The dashboard in a real browser: headless Chromium renders the charts and updates them.

Starts the dashboard (uvicorn in a thread, as ``hhml-train --dashboard`` does) on a run
directory whose name, config and metric keys carry HTML/script payloads, opens it with
Playwright driving the system Chromium (Debian package ``chromium``), and checks that

* every plotly chart renders with data (reward, terms, vortex, losses, speed, 23 params),
* a metrics line appended to ``metrics.jsonl`` appears as a new point,
* the snapshot image loads, the config is shown as text,
* no payload became markup and no script error occurred.

Skipped where Playwright or a Chromium executable is missing. ``HHML_CHROMIUM`` names the
executable explicitly; ``HHML_DASHBOARD_SCREENSHOT=path.png`` saves a screenshot.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from hhml.ml.env.controls import CONTROLS
from hhml.monitoring.server import DashboardServer, DashboardSettings

pytestmark = pytest.mark.integration

RUN_NAME = "run<img src=x onerror=window.__pwned=1>"
CONFIG_PAYLOAD = "<script>window.__pwned=2</script>"
KEY_PAYLOAD = "reward/<img src=x onerror=window.__pwned=3>"
CONFIG = f"""\
env:
  id: hhml/MobiusVortex-v0
  task: target_density
  target_density: 0.03
agent:
  algorithm: td3
training:
  total_steps: 4000
  run_name: "{CONFIG_PAYLOAD}"
"""
CHARTS = {
    "chart-reward": 3,  # episode return, baseline, reward/total
    "chart-terms": 2,  # reward/density, the payload key
    "chart-vortex": 3,  # density, null density, target
    "chart-losses": 2,
    "chart-speed": 1,
    "chart-params": 23,
}


def chromium_executable() -> str | None:
    candidates = [
        os.environ.get("HHML_CHROMIUM"),
        "/usr/lib/chromium/chromium",  # the Debian binary behind the /usr/bin/chromium script
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        shutil.which("google-chrome"),
    ]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def train_line(step: int) -> str:
    record: dict[str, Any] = {
        "kind": "train",
        "step": step,
        "reward/total": 0.2 + step / 10000,
        "reward/density": 0.1 + step / 20000,
        KEY_PAYLOAD: 0.3,
        "vortex/density": 0.05,
        "vortex/null_density": 0.1,
        "agent/critic_loss": 1.0 / (1 + step),
        "agent/actor_loss": -step / 1000,
        "episode/return_mean": 10 + step / 100,
        "time/steps_per_sec": 50.0,
    }
    record.update({f"params/{c.name}": i + step / 1000 for i, c in enumerate(CONTROLS)})
    return json.dumps(record) + "\n"


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[tuple[DashboardServer, Path]]:
    root = tmp_path / RUN_NAME
    root.mkdir()
    (root / "config.yaml").write_text(CONFIG, encoding="utf-8")
    baseline = {"kind": "baseline", "step": 0, "baseline/return_mean": 9.5}
    lines = json.dumps(baseline) + "\n" + "".join(train_line(s) for s in (200, 400, 600))
    (root / "metrics.jsonl").write_text(lines, encoding="utf-8")
    (root / "snapshots").mkdir()
    psi = torch.polar(torch.ones(2, 2, 24, 8), torch.rand(2, 2, 24, 8) * 6.28)
    torch.save(
        {
            "step": 600,
            "psi": psi,
            "vortex_index": torch.tensor([[0, 0, 3, 2], [0, 1, 5, 1]]),
            "vortex_position": torch.tensor([[1.2, 0.1], [2.0, -0.5]]),
            "vortex_charge": torch.tensor([1, -1]),
            "chart": {"length": 6.28, "half_width": 1.0},
        },
        root / "snapshots" / "step_0000000600.pt",
    )
    server = DashboardServer([root], "127.0.0.1", 0, settings=DashboardSettings(poll_interval=0.2))
    server.start()
    yield server, root
    server.stop()


def wait_for(page: Any, expression: str, timeout: float = 20.0) -> Any:
    """Poll a JS expression (page.wait_for_function would need 'unsafe-eval' under our CSP)."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(expression)
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_charts_render_and_update_in_chromium(dashboard: tuple[DashboardServer, Path]) -> None:
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    executable = chromium_executable()
    if executable is None:
        pytest.skip("no Chromium executable (apt-get install chromium, or set HHML_CHROMIUM)")
    server, root = dashboard

    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on(
                "console",
                lambda msg: errors.append(msg.text) if msg.type == "error" else None,
            )
            page.goto(server.url)

            counts_js = (
                "Object.fromEntries(Array.from(document.querySelectorAll('.js-plotly-plot'))"
                ".map(e => [e.id, e.data.length]))"
            )
            rendered = wait_for(
                page,
                f"(() => {{ const c = {counts_js}; return Object.keys(c).length >= 6 "
                "&& Object.values(c).every(n => n > 0) ? c : null; })()",
            )
            assert rendered == CHARTS

            episode_x = (
                "document.getElementById('chart-reward').data"
                ".find(t => t.name.startsWith('episode return')).x"
            )
            assert page.evaluate(episode_x) == [200, 400, 600]
            with open(root / "metrics.jsonl", "a", encoding="utf-8") as handle:
                handle.write(train_line(800))
            assert wait_for(page, f"{episode_x}.includes(800)")
            assert page.evaluate(episode_x) == [200, 400, 600, 800]
            params_x = "document.getElementById('chart-params').data.map(t => t.x.length)"
            assert page.evaluate(params_x) == [4] * 23

            assert wait_for(page, "document.getElementById('snapshot-image').naturalWidth > 0")
            assert page.text_content("#run-name") == RUN_NAME
            assert page.text_content("#run-status") == "running"
            assert "step 800 of 4000" in (page.text_content("#run-step") or "")
            assert CONFIG_PAYLOAD in (page.text_content("#config") or "")
            legend = page.evaluate(
                "Array.from(document.querySelectorAll('#chart-terms .legendtext'))"
                ".map(e => e.textContent)"
            )
            assert KEY_PAYLOAD in legend
            # Nothing of the payloads became markup or ran.
            assert page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
            assert page.evaluate("document.scripts.length") == 2
            assert page.evaluate("window.__pwned === undefined")
            assert errors == []

            screenshot = os.environ.get("HHML_DASHBOARD_SCREENSHOT")
            if screenshot:
                page.screenshot(path=screenshot, full_page=True)
        finally:
            browser.close()
