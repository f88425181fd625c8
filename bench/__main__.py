"""`python -m bench [area ...]`: run the benchmark modules and print one table."""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

from bench.common import ROOT, format_table

HERE = Path(__file__).resolve().parent


def main(areas: list[str]) -> None:
    modules = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if areas:
        modules = [m for m in modules if m.removeprefix("bench_") in areas]
    rows = []
    for name in modules:
        start = time.perf_counter()
        rows += importlib.import_module(f"bench.{name}").run()
        print(f"# {name}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    if not rows:  # e.g. `memory`: its own table, in MB
        return
    import os

    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    table = format_table(rows)
    print(f"Machine: {machine}\n\n{table}")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.md").write_text(f"Machine: {machine}\n\n{table}\n")
    (out / "latest.json").write_text(json.dumps([asdict(r) for r in rows], indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main(sys.argv[1:])
