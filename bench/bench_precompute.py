"""`python -m bench precompute`: `python -m vizcore.precompute` in one process against two local Dask workers.

Both run as a person runs them, in a fresh process each (the workers are its child processes), in turns
(one process, two workers, one process, two workers; the faster of each pair is kept), on the MNIST CNN over
the 5,000 bundled digits: the filter cards of conv1 and conv2 (top examples and gradient-ascent images), the
evaluation, and the embedding of the default layer with its atlas. Rows:

* the whole command with ``--workers 2`` beside one process (wall; CPU of the command and its workers);
* the time inside the steps only (the command's own per-artifact seconds, added), beside one process's;
* the overhead: the whole command less its steps (Python, TensorFlow, the model, and with workers the
  cluster's start and stop), for each. Each worker's own model load falls inside its first step.

The note says whether both wrote the same artifacts: top-k indices and scores, confusion and filter images
equal, the projection within float tolerance.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import ROOT, Row

AREA = "precompute"
ARGS = ["--model", "bundled:mnist_cnn", "--dataset", "mnist_sample", "--limit", "5000", "--layers", "conv1", "conv2"]
STEP = re.compile(r"^  \w+ .*· ([0-9.]+) s$", re.M)  # "  examples layer=conv2 · 1.2 s"


def _command(args: list[str]) -> tuple[float, float, float]:
    """Run ``python -m vizcore.precompute args``; (wall s, CPU s of it and its children, seconds inside steps)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "vizcore.precompute", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"python -m vizcore.precompute failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, sum(float(s) for s in STEP.findall(done.stdout))


def same_artifacts(root_a: Path, root_b: Path) -> str:
    """Which artifacts of two runs agree: 'same' or what differs."""
    from vizcore.precompute.view import DataView

    a, b = (DataView.open("bundled:mnist_cnn", "mnist_sample", 5000, base=r) for r in (root_a, root_b))
    wrong = []
    for layer in ("conv1", "conv2"):
        ea, eb = a.stored("examples", layer=layer), b.stored("examples", layer=layer)
        if not (np.array_equal(ea.indices, eb.indices) and np.array_equal(ea.scores, eb.scores)):
            wrong.append(f"top-k of {layer}")
        if not np.array_equal(a.stored("featurevis", layer=layer), b.stored("featurevis", layer=layer)):
            wrong.append(f"filter images of {layer}")
    if not np.array_equal(a.stored("report").confusion, b.stored("report").confusion):
        wrong.append("confusion")
    pa, pb = (v.stored("embedding", layer="fc", method="PCA").xy for v in (a, b))
    if not np.allclose(pa, pb, rtol=1e-5, atol=1e-5):
        wrong.append("projection")
    return (
        "same top-k indices and scores, confusion, filter images and projection"
        if not wrong
        else ("differ: " + ", ".join(wrong))
    )


def run() -> list[Row]:
    runs: dict[str, list[tuple[float, float, float]]] = {"one": [], "two": []}
    with tempfile.TemporaryDirectory(prefix="convlens_bench_precompute_") as tmp:
        roots = {}
        for turn in range(2):
            for name, extra in (("one", []), ("two", ["--workers", "2"])):
                roots[name] = Path(tmp) / f"{name}{turn}"
                runs[name].append(_command([*ARGS, "--out", str(roots[name]), *extra]))
        agree = same_artifacts(roots["one"], roots["two"])
    (w1, c1, s1), (w2, c2, s2) = (min(runs[n]) for n in ("one", "two"))
    what = "MNIST CNN, 5,000 digits: conv1+conv2 cards, evaluation, embedding + atlas"
    return [
        Row(
            AREA,
            f"python -m vizcore.precompute --workers 2, {what} (whole command, faster of 2 in turns)",
            w2 * 1000,
            "one process, same run",
            w1 * 1000,
            f"CPU {c2:.0f} s vs {c1:.0f} s; {agree}",
        ),
        Row(AREA, "the same, inside the steps only (two workers)", s2 * 1000, "one process", s1 * 1000),
        Row(
            AREA,
            "the same, outside the steps (two workers: Python, TF, the model, cluster start and stop)",
            (w2 - s2) * 1000,
            "one process: Python, TF, the model",
            (w1 - s1) * 1000,
        ),
    ]
