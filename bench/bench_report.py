"""`python -m bench report`: a report end to end, as a person runs it: `python -m vizcore.report` in a fresh process.

Rows, each with the command's wall time, its CPU time (all threads, from the child's rusage: a shared machine
inflates the wall time, not the CPU time), the build's own seconds and its slowest sections, and the size
of report.html:

* the MNIST CNN over the 5,000 bundled digits (goal: at most 60 s on 2 cores);
* MobileNetV2 (untrained: ImageNet weights cannot be fetched offline) over the bundled sample photos;
* the MNIST report again once `python -m vizcore.precompute` has saved the Dataset view's results (evaluation,
  top examples and filter images are then read, not computed), beside the first run as its baseline.

Each run writes into a fresh temporary folder, with ``$CONVLENS_PRECOMPUTED`` pointing at a fresh one too.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, Row

AREA = "report"
GOAL_S = 60.0


def _command(module: str, args: list[str], env: dict) -> tuple[float, float]:
    """Run ``python -m module args``; (wall s, CPU s of the child and its threads)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"python -m {module} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _report(model: str, dataset: str, root: Path, out: Path) -> tuple[float, float, dict, int]:
    env = {**os.environ, "CONVLENS_PRECOMPUTED": str(root), "TF_CPP_MIN_LOG_LEVEL": "2"}
    wall, cpu = _command("vizcore.report", ["--model", model, "--dataset", dataset, "--out", str(out)], env)
    numbers = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return wall, cpu, numbers, (out / "report.html").stat().st_size


def _note(cpu: float, numbers: dict, size: int) -> str:
    import plotly.offline

    slow = sorted(numbers["sections"], key=lambda s: -s["seconds"])[:3]
    extra = size - len(plotly.offline.get_plotlyjs().encode("utf-8"))
    return (
        f"{cpu:.1f} CPU s; build {numbers['seconds']:.1f} s, slowest "
        + ", ".join(f"{s['id']} {s['seconds']:.1f} s" for s in slow)
        + f"; report.html {size / 1e6:.2f} MB, {extra / 1e3:.0f} KB beyond plotly.js"
    )


def run() -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="convlens_bench_report_") as tmp:
        tmp = Path(tmp)
        wall, cpu, numbers, size = _report("bundled:mnist_cnn", "mnist_sample", tmp / "empty", tmp / "mnist")
        goal = "within" if wall <= GOAL_S else "over"
        rows.append(
            Row(
                AREA,
                f"python -m vizcore.report, MNIST CNN, {numbers['identity']['dataset']['images']:,} bundled digits "
                f"(whole command; goal {GOAL_S:.0f} s: {goal})",
                wall * 1000,
                note=_note(cpu, numbers, size),
            )
        )
        mnist_wall = wall
        wall, cpu, numbers, size = _report("app:MobileNetV2:none", "photos", tmp / "empty", tmp / "mobilenet")
        rows.append(
            Row(
                AREA,
                f"python -m vizcore.report, MobileNetV2 224 untrained, {numbers['identity']['dataset']['images']} "
                "sample photos (whole command)",
                wall * 1000,
                note=_note(cpu, numbers, size),
            )
        )
        root = tmp / "precomputed"
        env = {**os.environ, "CONVLENS_PRECOMPUTED": str(root), "TF_CPP_MIN_LOG_LEVEL": "2"}
        args = ["--model", "bundled:mnist_cnn", "--dataset", "mnist_sample", "--steps", "cards", "evaluation"]
        pre_wall, _ = _command("vizcore.precompute", [*args, "--layers", "conv1", "conv2", "--out", str(root)], env)
        wall, cpu, numbers, size = _report("bundled:mnist_cnn", "mnist_sample", root, tmp / "mnist_stored")
        rows.append(
            Row(
                AREA,
                "the same MNIST report after python -m vizcore.precompute saved its evaluation, top examples and "
                f"filter images ({pre_wall:.0f} s, once)",
                wall * 1000,
                "the MNIST report with nothing precomputed (row 1)",
                mnist_wall * 1000,
                _note(cpu, numbers, size),
            )
        )
    return rows
