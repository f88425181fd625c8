"""Timing helpers shared by the benchmark modules."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# `CONVLENS_BENCH_FIRST_ROWS=1 python -m bench ...`: only the rows the first version measured, to set
# a refactor's figures beside the same rows of an older checkout in one sitting (the newer rows are slow)
FIRST_ROWS_ONLY = os.environ.get("CONVLENS_BENCH_FIRST_ROWS") == "1"


@dataclass(frozen=True)
class Row:
    """One figure: what was measured (ms) beside its baseline (ms), from the same run."""

    area: str  # "attribution", "activations", ...
    name: str  # "Grad-CAM, MNIST CNN 28x28"
    ms: float
    baseline: str = ""  # "eager GradientTape, same inputs"
    baseline_ms: float | None = None
    note: str = ""

    @property
    def speedup(self) -> float | None:
        return None if not self.baseline_ms else self.baseline_ms / self.ms


def timeit(fn: Callable[[], object], *, repeat: int = 20, warmup: int = 2, min_seconds: float = 0.0) -> float:
    """Median wall time of ``fn()`` in milliseconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < repeat or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    times.sort()
    return times[len(times) // 2]


def format_table(rows: list[Row]) -> str:
    """A Markdown table of the rows."""
    lines = ["| area | measured | ms | baseline | baseline ms | speed-up |", "|---|---|---:|---|---:|---:|"]
    for r in rows:
        base = f"{r.baseline_ms:.1f}" if r.baseline_ms is not None else ""
        speed = f"{r.speedup:.1f}x" if r.speedup else ""
        name = r.name + (f" ({r.note})" if r.note else "")
        lines.append(f"| {r.area} | {name} | {r.ms:.1f} | {r.baseline} | {base} | {speed} |")
    return "\n".join(lines)


def serve(env: dict, args: tuple[str, ...] = (), log_path: Path | None = None, *, wait_s: float = 120):
    """The app on a free loopback port (``env`` on top of this process's), once it answers /_stcore/health.

    Returns (process, url). Its output goes to ``log_path`` (None: discarded); its run folders to a temporary folder.
    """
    import socket
    import subprocess
    import tempfile
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = open(log_path, "w") if log_path is not None else subprocess.DEVNULL
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(port),
            "--browser.gatherUsageStats",
            "false",
            *args,
        ],
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
        env={
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "CONVLENS_RUNS_DIR": tempfile.mkdtemp(prefix="convlens_bench_"),
            **env,
        },
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + wait_s
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("the app did not start" + (f"; see {log_path}" if log_path else ""))
