"""ConvLens against Xplique 2.0.2, the most complete TensorFlow explanation library, when its venv is present.

``python -m bench peers`` runs ``bench/peers_run.py`` with the Python named by
``CONVLENS_XPLIQUE_PYTHON`` (default ``/work/xplique-venv/bin/python``; how to build that venv:
``docs/peers.md``). Xplique pins tensorflow<=2.20 and older scipy, scikit-image and scikit-learn,
so it cannot join our requirements; its venv holds ours plus Xplique installed without its
dependency pins, and imports ``vizcore`` from the repository root, so both libraries run in one
process on the same model, image, target and settings, in turns.

Prints one table per model: ConvLens ms, Xplique ms, their ratio (< 1: ConvLens is faster), the
bare network floor (``peers_run``) and ConvLens's ratio to it, and the agreement of the two maps.
Without the venv it says so and adds no rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import ROOT, Row

XPLIQUE_ENV = "CONVLENS_XPLIQUE_PYTHON"
DEFAULT_PYTHON = "/work/xplique-venv/bin/python"
HERE = Path(__file__).resolve().parent


def xplique_python() -> str | None:
    """The Python of the Xplique venv when it exists and imports xplique, else None."""
    python = os.environ.get(XPLIQUE_ENV, DEFAULT_PYTHON)
    if not Path(python).exists():
        return None
    check = subprocess.run([python, "-c", "import xplique"], capture_output=True, cwd=ROOT)
    return python if check.returncode == 0 else None


def _fmt(v: float | None, spec: str) -> str:
    return "" if v is None else format(v, spec)


def table(results: list[dict]) -> str:
    """The ratio table, one block per model."""
    lines = []
    for model in dict.fromkeys(r["model"] for r in results):
        lines += [
            f"\n{model}\n",
            "| method | ConvLens ms | Xplique ms | ConvLens / Xplique (x) | floor ms (bare net) | ConvLens / floor "
            "| Pearson | Spearman |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in (r for r in results if r["model"] == model):
            ratio = r["convlens_ms"] / r["xplique_ms"] if r["xplique_ms"] else None
            lines.append(
                f"| {r['method']} | {r['convlens_ms']:.1f} | {_fmt(r['xplique_ms'], '.1f')} | {_fmt(ratio, '.2f')} "
                f"| {r['floor_ms']:.1f} ({r['floor']}) | {r['convlens_ms'] / r['floor_ms']:.2f}x "
                f"| {_fmt(r['pearson'], '.3f')} | {_fmt(r['spearman'], '.3f')} |"
                + (f" {r['note']}" if r["note"] else "")
            )
    return "\n".join(lines)


def run(models: tuple[str, ...] = ()) -> list[Row]:
    """The peers' rows; ``models`` (or ``CONVLENS_BENCH_PEERS_MODELS``, comma-separated): 'mnist', 'mobilenet'."""
    models = models or tuple(m for m in os.environ.get("CONVLENS_BENCH_PEERS_MODELS", "").split(",") if m)
    python = xplique_python()
    if python is None:
        print(
            f"# peers: skipped: no Xplique venv at {os.environ.get(XPLIQUE_ENV, DEFAULT_PYTHON)} "
            f"(set {XPLIQUE_ENV}; recipe in docs/peers.md)",
            file=sys.stderr,
        )
        return []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "peers.json"
        subprocess.run(
            [python, str(HERE / "peers_run.py"), str(out), *models],
            cwd=ROOT,
            check=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
            stdout=sys.stderr,  # one JSON line per method as it finishes
        )
        results = json.loads(out.read_text())
    print(table(results))
    return [
        Row(
            "peers",
            f"{r['method']}, {r['model']}",
            r["convlens_ms"],
            "Xplique 2.0.2, same settings, in turns",
            r["xplique_ms"],
            f"bare network {r['floor_ms']:.0f} ms ({r['floor']}); maps Pearson {_fmt(r['pearson'], '.3f')}",
        )
        for r in results
    ]
