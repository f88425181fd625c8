"""Class cards to a dataset: the photos people collect per class, fitted to the base, checked first.

Photos arrive at every size (uploads, webcam captures, a ZIP of class folders); ``shrink`` bounds what
a page keeps (a 12-megapixel phone photo becomes 320 pixels on its short side), and
``dataset_from_classes`` fits each to the base the way the base expects (Teachable Machine's centre
crop, a stretch or a pad; grey made colour for a colour base) into one uint8 ImageDataset.

Example:
    >>> ds, notes = dataset_from_classes([("cat", cats), ("dog", dogs)], base)
    >>> ds.class_names, ds.x_nhwc.shape, notes
    (('cat', 'dog'), (40, 224, 224, 3), ('2 grey images were converted to colour ...',))
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from vizcore.data.datasets import ImageDataset
from vizcore.transfer.features import fit_images
from vizcore.transfer.phases import check_classes

KEEP_SIDE = 320  # pixels on the short side a collected photo is kept at (a 224 input crops from it)


def shrink(image: np.ndarray, side: int = KEEP_SIDE) -> np.ndarray:
    """uint8 HxWxC with the shorter side at most ``side`` (aspect kept, antialiased); smaller images unchanged."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    h, w = image.shape[:2]
    if min(h, w) <= side:
        return image
    scale = side / min(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    out = np.asarray(pil.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0))
    return out[..., None] if out.ndim == 2 else out


def dataset_from_classes(
    classes: Sequence[tuple[str, Sequence[np.ndarray]]], base, *, name: str = "my images"
) -> tuple[ImageDataset, tuple[str, ...]]:
    """One uint8 ImageDataset at ``base``'s input size from (class name, photos) pairs, in that order.

    Args:
        classes: each class's name and its photos (uint8 HxW, HxWx1 or HxWx3, any size).
        base: the ``models.LoadedModel`` the dataset is for: its size, channels and fit.

    Returns:
        (dataset, notes): notes say what was done to the photos, one sentence each.

    Raises:
        TransferError: fewer than 2 classes, an unnamed class, duplicate names, a class with no photos.
    """
    names = tuple(str(n).strip() for n, _ in classes)
    y = np.asarray([i for i, (_, photos) in enumerate(classes) for _ in photos], np.int64)
    check_classes(names, y)
    photos = [np.asarray(p) for _, group in classes for p in group]
    pixels, notes = fit_images(base, _Sized(photos))
    return ImageDataset(pixels, y, names, name), notes


class _Sized:
    """Photos of different sizes with the little of ImageDataset that ``fit_images`` reads."""

    def __init__(self, photos: list[np.ndarray]) -> None:
        self.photos = photos
        first = photos[0]
        self.image_shape = (first.shape[0], first.shape[1], first.shape[2] if first.ndim == 3 else 1)

    def __len__(self) -> int:
        return len(self.photos)

    def pixels(self, i: int) -> np.ndarray:
        return self.photos[i]
