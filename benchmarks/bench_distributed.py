"""Training throughput with 1 and N ranks: ``hhml-train --nproc N`` on the quickstart config.

Runs the quickstart experiment (TD3, 8 Möbius envs per rank, 4000 env steps in all) once
per rank count, one after the other on this machine, and reports from each run's
``metrics.json`` and ``metrics.jsonl``:

* env-steps/s over the whole run (all ranks' env steps / wall time, evaluations included);
* the mean env-steps/s of the training records after learning starts (the update-bound
  phase), and the speed-up of each rank count over the first as a ratio;
* the number of gradient updates and the final evaluation return, because N ranks train
  differently for the same env steps: N times the envs and the effective minibatch,
  1/N of the updates (as with DistributedDataParallel).

Usage::

    python benchmarks/bench_distributed.py [--nproc 1 2] [--steps 4000] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]


def run(nproc: int, steps: int, workdir: Path) -> dict[str, Any]:
    """Train the quickstart with ``nproc`` ranks; throughput and outcome of the run."""
    run_dir = workdir / f"nproc{nproc}"
    cmd = [
        sys.executable,
        "-m",
        "hhml.cli.train",
        "--config",
        str(ROOT / "configs/experiment/quickstart.yaml"),
        "--nproc",
        str(nproc),
        "--run-dir",
        str(run_dir),
        f"training.total_steps={steps}",
        "training.progress_bar=false",
    ]
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    summary = json.loads((run_dir / "metrics.json").read_text())
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    learning = [
        r["time/steps_per_sec"] for r in records if r["kind"] == "train" and r.get("updates", 0)
    ]
    return {
        "nproc": nproc,
        "steps": summary["step"],
        "wall_time_s": summary["wall_time_s"],
        "steps_per_sec": summary["steps_per_sec"],
        "learning_steps_per_sec": sum(learning) / len(learning) if learning else None,
        "updates": summary["updates"],
        "final_eval_return": summary["final_eval"]["return_mean"],
        "baseline_return": summary["baseline_return"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nproc", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = [run(n, args.steps, Path(tmp)) for n in args.nproc]
    first = results[0]
    print(
        f"quickstart, {args.steps} env steps, {os.cpu_count()} CPU cores, torch {torch.__version__}"
    )
    print("nproc  wall s  steps/s  learning steps/s  ratio  updates  final eval  baseline")
    for r in results:
        ratio = r["learning_steps_per_sec"] / first["learning_steps_per_sec"]
        r["learning_speedup"] = ratio
        print(
            f"{r['nproc']:5d}  {r['wall_time_s']:6.1f}  {r['steps_per_sec']:7.1f}  "
            f"{r['learning_steps_per_sec']:16.1f}  {ratio:5.2f}  {r['updates']:7d}  "
            f"{r['final_eval_return']:10.2f}  {r['baseline_return']:8.2f}"
        )
    if args.json is not None:
        machine = {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        }
        args.json.write_text(json.dumps({"machine": machine, "runs": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
