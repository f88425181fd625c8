"""``python -m vizcore.report --model bundled:mnist_cnn --dataset mnist_sample --out DIR [--limit N]``.

The model and dataset are named as for ``python -m vizcore.precompute`` (``vizcore.models.specs`` reads
them): a model file, ``bundled:NAME``, ``preset:NAME`` or ``app:NAME:imagenet``; the
dataset ``mnist_sample``, ``shapes``, ``photos``, ``keras:NAME`` or a ZIP of class folders. Writes
``report.html`` and ``report.json`` into ``--out``, with progress on the terminal. Bad input ends with one
sentence and exit status 1.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from vizcore.errors import ConvLensError
from vizcore.models.specs import DATASETS, MODEL_FORMS, open_dataset, open_spec
from vizcore.report.build import BUDGETS, build, writable, write


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m vizcore.report", description=__doc__.split("\n\n")[0].strip("`"))
    p.add_argument("--model", required=True, help=MODEL_FORMS)
    p.add_argument("--dataset", required=True, help=f"{', '.join(DATASETS)}, or a .zip of class folders")
    p.add_argument("--out", required=True, type=Path, help="the folder for report.html and report.json")
    p.add_argument("--limit", type=int, default=5000, help="images at most, as the Dataset view's (default 5000)")
    p.add_argument("--budget", choices=list(BUDGETS), default="full", help="how much extra work (default full)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> tuple[Path, Path]:
    """Build and write the report; its two paths. Raises SystemExit with one sentence on bad input."""
    args = parse(argv)
    start = time.perf_counter()
    log = lambda text: print(text, flush=True)  # noqa: E731
    try:
        writable(args.out)  # before a minute of work, not after
        loaded = open_spec(args.model)
        dataset, name = open_dataset(args.dataset, args.limit)
        path = Path(args.model)
        sha = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None

        said = set()

        def progress(done: int, total: int, what: str) -> None:
            if done not in said:  # each step once (the build also calls between images, to offer a cancel)
                said.add(done)
                log(f"[{done}/{total}] {what}… ({time.perf_counter() - start:.1f} s)")

        rep = build(
            loaded,
            dataset,
            limit=args.limit,
            on_progress=progress,
            name=name,
            budget=BUDGETS[args.budget],
            file_sha256=sha,
        )
        html_path, json_path = write(rep, args.out)
    except ConvLensError as err:
        raise SystemExit(str(err)) from None
    log(f"Wrote {html_path} ({html_path.stat().st_size / 1e6:.1f} MB) and {json_path} in {rep.seconds:.1f} s.")
    return html_path, json_path


if __name__ == "__main__":
    main(sys.argv[1:])
