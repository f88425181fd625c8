"""``keras.applications`` networks: how each is preprocessed, ImageNet weights and class names (downloaded once)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras

from vizcore.datasets import keras_cache_dir
from vizcore.errors import WeightsUnavailableError



# --------------------------------------------------------------------------- keras.applications


@dataclass(frozen=True)
class Application:
    """A ``keras.applications`` network and how its inputs are preprocessed."""

    build: Callable[..., keras.Model]
    size: int
    preprocess: str  # a vizcore.images.PREPROCESS_MODES key


APPLICATIONS: dict[str, Application] = {
    "MobileNetV2": Application(keras.applications.MobileNetV2, 224, "symmetric"),
    "ResNet50": Application(keras.applications.ResNet50, 224, "caffe"),
    "VGG16": Application(keras.applications.VGG16, 224, "caffe"),
    "EfficientNetB0": Application(keras.applications.EfficientNetB0, 224, "raw"),
}


def load_application(name: str, *, weights: str | None = "imagenet") -> keras.Model:
    """Build a keras.applications network, with ImageNet weights (downloaded once) or untrained.

    Raises:
        WeightsUnavailableError: the weights could not be downloaded; the message names the file
            and the folder where it can be placed by hand.
    """
    if name not in APPLICATIONS:
        raise ValueError(f"Unknown network '{name}'; choose one of {sorted(APPLICATIONS)}.")
    app = APPLICATIONS[name]
    try:
        return app.build(weights=weights, input_shape=(app.size, app.size, 3))
    except Exception as err:
        if weights is None:
            raise
        urls = re.findall(r"https?://\S+?\.h5", str(err))
        filename = urls[0].rsplit("/", 1)[-1] if urls else f"the {name} weights file"
        raise WeightsUnavailableError(
            f"The ImageNet weights of {name} could not be downloaded ({type(err).__name__}); this machine "
            f"seems to be offline. Place {filename} in {keras_cache_dir('models')} and try again, "
            "or build the network untrained."
        ) from err


IMAGENET_CLASS_INDEX = "imagenet_class_index.json"
IMAGENET_CLASS_INDEX_URL = "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"  # as keras.applications.imagenet_utils
IMAGENET_CLASS_INDEX_MD5 = "c2c37ea517e94d9795004a39431a14cb"


def _read_class_index(path: Path) -> tuple[str, ...]:
    index = json.loads(Path(path).read_text())
    return tuple(index[str(i)][1] for i in range(len(index)))


def imagenet_class_names() -> tuple[str, ...] | None:
    """The 1,000 ImageNet class names from the Keras cache, or None when it is not there."""
    path = Path(keras_cache_dir("models")) / IMAGENET_CLASS_INDEX
    return _read_class_index(path) if path.exists() else None


def fetch_imagenet_class_names() -> tuple[str, ...]:
    """The 1,000 ImageNet class names, downloaded once into the Keras cache (``models/``).

    Raises:
        WeightsUnavailableError: offline; the message names the file and the folder to put it in.
    """
    cached = imagenet_class_names()
    if cached is not None:
        return cached
    try:
        path = keras.utils.get_file(IMAGENET_CLASS_INDEX, IMAGENET_CLASS_INDEX_URL, cache_subdir="models",
                                    file_hash=IMAGENET_CLASS_INDEX_MD5)
    except Exception as err:  # urllib errors, hash mismatch, unwritable cache
        raise WeightsUnavailableError(
            f"The ImageNet class names could not be downloaded ({type(err).__name__}); this machine seems to be "
            f"offline. Place {IMAGENET_CLASS_INDEX} (from {IMAGENET_CLASS_INDEX_URL}) in {keras_cache_dir('models')}."
        ) from err
    return _read_class_index(path)
