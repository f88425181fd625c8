"""Datasets: the bundled MNIST sample, keras.datasets, synthetic shapes, and a stratified split.

Datasets hold NHWC images (``ImageDataset``): float32 in [0, 1], or uint8 for the large
keras.datasets (CIFAR-10's training split is 150 MB as uint8, 614 MB as float32), cast per batch by
``floats``; Keras is imported only inside
``load_keras_dataset``. Images one by one (uploads, preprocessing) are in ``vizcore.data.images``.

Example:
    >>> data = load_mnist_sample()
    >>> train_idx, val_idx = stratified_split(data.y, validation_fraction=0.2)
    >>> data.subset(val_idx).image_shape
    (28, 28, 1)
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from vizcore.errors import DatasetUnavailableError

MNIST_SAMPLE_PATH = Path(__file__).resolve().parent.parent / "assets" / "mnist_5k.npz"
DIGIT_CLASSES = tuple(str(d) for d in range(10))

# ----------------------------------------------------------------------------------------------
# Datasets
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)  # eq=False: the generated __eq__ cannot compare arrays
class ImageDataset:
    """Labelled images, NHWC: float32 in [0, 1] or uint8 in 0..255 (read them as ``floats`` or ``pixels``).

    Attributes:
        x_nhwc: float32 (N, H, W, C) in [0, 1], or uint8 (N, H, W, C).
        y: int64 (N,) class indices into ``class_names``.
        class_names: one name per class.
        name: short identifier, e.g. 'mnist_sample', 'shapes', 'cifar10_test'.
        boxes: optional int64 (N, 4) object boxes (x0, y0, x1, y1), x1/y1 exclusive.
    """

    x_nhwc: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    name: str
    boxes: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.x_nhwc.ndim != 4:
            raise ValueError(f"x_nhwc must be 4-D (N, H, W, C), got shape {self.x_nhwc.shape}")
        if self.x_nhwc.dtype not in (np.float32, np.uint8):
            raise ValueError(f"x_nhwc must be float32 in [0, 1] or uint8, got {self.x_nhwc.dtype}")
        if self.y.shape != (len(self.x_nhwc),):
            raise ValueError(f"y must have shape ({len(self.x_nhwc)},), got {self.y.shape}")
        if self.boxes is not None and self.boxes.shape != (len(self.x_nhwc), 4):
            raise ValueError(f"boxes must have shape ({len(self.x_nhwc)}, 4), got {self.boxes.shape}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of one image."""
        return tuple(int(d) for d in self.x_nhwc.shape[1:])  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self.x_nhwc)

    def floats(self, indices=None) -> np.ndarray:
        """float32 (n, H, W, C) in [0, 1] of the images at ``indices`` (all: None); uint8 images are cast
        here, per call.

        Example:
            >>> load_keras_dataset("cifar10").floats(np.arange(64)).dtype   # one batch, not the whole set
            dtype('float32')
        """
        x = self.x_nhwc if indices is None else self.x_nhwc[indices]
        return x.astype(np.float32) / np.float32(255.0) if x.dtype == np.uint8 else x

    def pixels(self, i: int) -> np.ndarray:
        """uint8 (H, W, C) of image ``i``."""
        x = self.x_nhwc[i]
        return x if x.dtype == np.uint8 else np.rint(x * 255.0).astype(np.uint8)

    def subset(self, indices: np.ndarray) -> ImageDataset:
        """A new dataset with the images at ``indices`` (integer indices or a boolean mask).

        Example:
            >>> load_mnist_sample().subset(np.arange(10)).y.tolist()
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        """
        idx = np.asarray(indices)
        return ImageDataset(
            x_nhwc=self.x_nhwc[idx],
            y=self.y[idx],
            class_names=self.class_names,
            name=self.name,
            boxes=None if self.boxes is None else self.boxes[idx],
        )


@functools.lru_cache(maxsize=1)
def _mnist_sample_arrays() -> tuple[np.ndarray, np.ndarray]:
    with np.load(MNIST_SAMPLE_PATH, allow_pickle=False) as npz:
        x_nhw, y = npz["x"], npz["y"]
    x_nhwc = (x_nhw.astype(np.float32) / 255.0)[..., np.newaxis]
    y = y.astype(np.int64)
    x_nhwc.setflags(write=False)  # shared by every caller through the cache
    y.setflags(write=False)
    return x_nhwc, y


def load_mnist_sample() -> ImageDataset:
    """The 5,000 real MNIST digits bundled with ConvLens (500 per class, sorted by label; offline).

    Returns:
        ImageDataset 'mnist_sample', x_nhwc float32 (5000, 28, 28, 1) in [0, 1] (read-only),
        white digit on black, classes '0'..'9'.
    """
    x_nhwc, y = _mnist_sample_arrays()
    return ImageDataset(x_nhwc=x_nhwc, y=y, class_names=DIGIT_CLASSES, name="mnist_sample")


def stratified_split(
    y: np.ndarray, *, validation_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices so that every class is in both parts in proportion.

    Each class with at least 2 samples puts round(n_c * validation_fraction) of them, but at
    least 1 and at most n_c - 1, in validation; a class with a single sample goes to train.

    Args:
        y: int labels (N,).
        validation_fraction: share of each class for validation, in (0, 1).
        seed: seeds the shuffling; the same seed gives the same split.

    Returns:
        (train_indices, validation_indices), int64, disjoint, together 0..N-1; each is in a
        seeded shuffled order, so taking the first k gives a mix of classes.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    y = np.asarray(y).reshape(-1)
    rng = np.random.default_rng(seed)
    train_parts, val_parts = [], []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        n_val = 0 if len(members) < 2 else int(np.clip(round(len(members) * validation_fraction), 1, len(members) - 1))
        val_parts.append(members[:n_val])
        train_parts.append(members[n_val:])
    train = rng.permutation(np.concatenate(train_parts)).astype(np.int64)
    val = rng.permutation(np.concatenate(val_parts)).astype(np.int64)
    return train, val


@dataclass(frozen=True)
class KerasDatasetInfo:
    """One dataset that keras.datasets can download.

    Attributes:
        name: module name in keras.datasets ('mnist', 'fashion_mnist', 'cifar10').
        title: human name.
        class_names: one name per class.
        image_shape: (H, W, C).
        cache_files: (path relative to the Keras cache folder, URL) for each downloaded file;
            placing these files there by hand makes the dataset work offline.
    """

    name: str
    title: str
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int]
    cache_files: tuple[tuple[str, str], ...]


_TF_DATASETS = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
KERAS_DATASETS: Mapping[str, KerasDatasetInfo] = MappingProxyType(
    {
        "mnist": KerasDatasetInfo(
            "mnist",
            "MNIST handwritten digits",
            DIGIT_CLASSES,
            (28, 28, 1),
            (("mnist.npz", _TF_DATASETS + "mnist.npz"),),
        ),
        "fashion_mnist": KerasDatasetInfo(
            "fashion_mnist",
            "Fashion-MNIST clothing",
            ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
            (28, 28, 1),
            tuple(
                (f"fashion-mnist/{f}", _TF_DATASETS + f)
                for f in (
                    "train-labels-idx1-ubyte.gz",
                    "train-images-idx3-ubyte.gz",
                    "t10k-labels-idx1-ubyte.gz",
                    "t10k-images-idx3-ubyte.gz",
                )
            ),
        ),
        "cifar10": KerasDatasetInfo(
            "cifar10",
            "CIFAR-10 small photos",
            ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
            (32, 32, 3),
            # keras.datasets.cifar10 stores the .tar.gz under this odd name, then extracts it
            (("cifar-10-batches-py-target_archive", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),),
        ),
    }
)


def keras_cache_dir(subdir: str = "datasets") -> str:
    """The folder where Keras looks for (and downloads) files: ``datasets`` or ``models`` (weights).

    That is ``$KERAS_HOME/<subdir>`` (default ``~/.keras/<subdir>``) as Keras read it at import,
    or ``/tmp/.keras/<subdir>`` when that home is not writable (Keras's own fallback).
    """
    try:
        from keras.src.backend.config import keras_home  # what Keras really uses

        home = keras_home()
    except ImportError:  # private path moved: same rule as Keras documents
        home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    home = os.path.expanduser(home)
    if not os.access(home, os.W_OK):
        home = os.path.join("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(), ".keras")
    return os.path.join(home, subdir)


def load_keras_dataset(name: str, *, split: str = "test") -> ImageDataset:
    """Load one split of a keras.datasets dataset (downloaded once, then read from the cache).

    Args:
        name: a key of ``KERAS_DATASETS``: 'mnist', 'fashion_mnist' or 'cifar10'.
        split: 'test' (10,000 images) or 'train' (60,000 or 50,000).

    Returns:
        ImageDataset named f'{name}_{split}', x_nhwc uint8 as stored (``floats()`` casts per batch).

    Raises:
        ValueError: unknown name or split.
        DatasetUnavailableError: the download failed (usually: no network).
    """
    if name not in KERAS_DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(KERAS_DATASETS)}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    info = KERAS_DATASETS[name]
    import keras  # lazy: importing Keras takes seconds

    try:
        (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    except Exception as err:  # get_file turns URLError into a bare Exception; hash/tar errors too
        cache = keras_cache_dir()
        files = "; ".join(f"{url} -> {os.path.join(cache, rel)}" for rel, url in info.cache_files)
        raise DatasetUnavailableError(
            f"The {info.title} dataset ('{name}') could not be downloaded. This looks like no "
            f"network connection. To use it offline, place the file(s) in the Keras cache folder "
            f"{cache} ({files}). The bundled MNIST sample works offline. (Cause: {err})"
        ) from err
    x_nhw_c, y = (x_train, y_train) if split == "train" else (x_test, y_test)
    x_nhwc = np.ascontiguousarray(x_nhw_c.reshape((len(x_nhw_c),) + info.image_shape), dtype=np.uint8)
    return ImageDataset(
        x_nhwc=x_nhwc,
        y=np.asarray(y).reshape(-1).astype(np.int64),
        class_names=info.class_names,
        name=f"{name}_{split}",
    )


# ----------------------------------------------------------------------------------------------
# Synthetic shapes
# ----------------------------------------------------------------------------------------------

SHAPE_CLASSES = ("circle", "square", "triangle")


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB; all inputs (N,) in [0, 1]; returns (N, 3)."""
    i = np.floor(h * 6.0).astype(np.int64) % 6
    f = h * 6.0 - np.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    table = np.stack(
        [np.stack(c, axis=-1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))]
    )  # (6, N, 3)
    return table[i, np.arange(len(h))]


def make_shapes(n: int, *, size: int = 64, seed: int = 0) -> ImageDataset:
    """A synthetic dataset: one coloured circle, square or triangle per image on a noisy background.

    Classes are balanced (counts differ by at most 1). Each shape's bounding square has a side of
    25-60% of the image, lies fully inside it, and is filled with one saturated colour
    (saturation and value >= 0.75) whose hue is opposite the background's; the background is a
    dull colour (saturation <= 0.45) plus gaussian noise (sigma 0.02-0.06), clipped to [0, 1].
    Triangles point up. Deterministic for a given seed.

    Args:
        n: number of images (>= 1).
        size: image side in pixels (>= 16).
        seed: random seed.

    Returns:
        ImageDataset 'shapes', x_nhwc float32 (n, size, size, 3), boxes (n, 4) tight around the
        object's pixels as (x0, y0, x1, y1), x1/y1 exclusive.

    Example:
        >>> make_shapes(6, size=32).y.tolist()
        [0, 2, 2, 1, 0, 1]
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if size < 16:
        raise ValueError(f"size must be >= 16 pixels, got {size}")
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % len(SHAPE_CLASSES)).astype(np.int64)
    side = rng.uniform(0.25, 0.6, n) * size
    x0 = rng.uniform(0.0, size - side)
    y0 = rng.uniform(0.0, size - side)
    hue = rng.uniform(0.0, 1.0, n)
    colour = _hsv_to_rgb(hue, rng.uniform(0.75, 1.0, n), rng.uniform(0.75, 1.0, n))
    background = _hsv_to_rgb(
        (hue + rng.uniform(0.35, 0.65, n)) % 1.0, rng.uniform(0.0, 0.45, n), rng.uniform(0.1, 0.6, n)
    )
    sigma = rng.uniform(0.02, 0.06, n).astype(np.float32)
    noise_nhwc = rng.standard_normal((n, size, size, 3), dtype=np.float32)

    # Pixel centres, broadcast against per-image parameters of shape (n, 1, 1).
    py = np.arange(size, dtype=np.float32)[None, :, None] + 0.5
    px = np.arange(size, dtype=np.float32)[None, None, :] + 0.5
    s, left, top = (v.astype(np.float32)[:, None, None] for v in (side, x0, y0))
    cx, cy = left + s / 2, top + s / 2
    circle = (px - cx) ** 2 + (py - cy) ** 2 <= (s / 2) ** 2
    square = (px >= left) & (px < left + s) & (py >= top) & (py < top + s)
    triangle = (py >= top) & (py < top + s) & (np.abs(px - cx) <= (py - top) / 2)  # apex up
    kind = y[:, None, None]
    mask_nhw = np.where(kind == 0, circle, np.where(kind == 1, square, triangle))

    x_nhwc = noise_nhwc  # built in place: background + sigma * noise, then the shape on top
    x_nhwc *= sigma[:, None, None, None]
    x_nhwc += background[:, None, None, :].astype(np.float32)
    np.clip(x_nhwc, 0.0, 1.0, out=x_nhwc)
    np.copyto(x_nhwc, colour[:, None, None, :].astype(np.float32), where=mask_nhw[..., None])

    cols, rows = mask_nhw.any(axis=1), mask_nhw.any(axis=2)  # (n, W), (n, H)
    boxes = np.stack(
        [cols.argmax(1), rows.argmax(1), size - cols[:, ::-1].argmax(1), size - rows[:, ::-1].argmax(1)], axis=1
    ).astype(np.int64)
    return ImageDataset(x_nhwc=x_nhwc, y=y, class_names=SHAPE_CLASSES, name="shapes", boxes=boxes)
