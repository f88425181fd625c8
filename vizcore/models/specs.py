"""Model and dataset specs: the one grammar that names a model or a dataset in text.

A model is a file path, ``bundled:NAME`` (or a bare bundled ``NAME``), ``preset:NAME`` or
``app:NAME:imagenet`` (``app:NAME:none`` untrained; ``app:NAME`` means ImageNet weights). The app's
``?model=`` links, ``python -m vizcore.precompute`` and ``python -m vizcore.report`` all read it here, and a
distributed precompute sends the text to its workers, which open the model themselves.
A dataset is ``mnist_sample``, ``shapes``, ``photos``, ``keras:NAME`` or a path to a ZIP of class folders.

Example:
    >>> spec = parse_spec("app:MobileNetV2")
    >>> spec, spec.text
    (Spec(kind='app', name='MobileNetV2', weights='imagenet'), 'app:MobileNetV2:imagenet')
    >>> open_spec(parse_spec("bundled:mnist_cnn")).key
    'bundled:mnist_cnn'
    >>> open_dataset(parse_dataset("shapes"), limit=5000)[1]
    'shapes'
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from vizcore import models
from vizcore.data import archive, datasets, images
from vizcore.errors import SpecError
from vizcore.present import render

MODEL_FORMS = "a model file, bundled:NAME, preset:NAME or app:NAME:imagenet"
DATASETS = ("mnist_sample", "shapes", "photos", *(f"keras:{n}" for n in datasets.KERAS_DATASETS))
SHAPES = MappingProxyType({"n": 3000, "seed": 1})  # the generated shapes of the Dataset view and the command line
PHOTO_SIZE = (224, 224)  # the bundled photos as a dataset


@dataclass(frozen=True)
class Spec:
    """A model named in text. ``kind`` is file, bundled, preset or app; ``name`` the path or the name;
    ``weights`` an app's 'imagenet' or None (untrained)."""

    kind: str
    name: str
    weights: str | None = None

    @property
    def text(self) -> str:
        """The spec written out again, as a link or a command line takes it."""
        if self.kind == "file":
            return self.name
        if self.kind == "app":
            return f"app:{self.name}:{self.weights or 'none'}"
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset named in text: ``kind`` is mnist_sample, shapes, photos, keras or zip; ``name`` the keras
    dataset or the ZIP's path ('' otherwise)."""

    kind: str
    name: str = ""

    @property
    def text(self) -> str:
        return {"keras": f"keras:{self.name}", "zip": self.name}.get(self.kind, self.kind)


def parse_spec(text: str, *, files: bool = True) -> Spec:
    """The model ``text`` names. Raises SpecError with one sentence for anything else.

    Args:
        files: whether an existing file path is a spec (False for a link, which must not read the server's disk).
    """
    text = str(text).strip()
    if files and text and Path(text).is_file():
        return Spec("file", text)
    kind, _, rest = text.partition(":")
    name, _, weights = rest.partition(":")
    bundled = models.list_bundled()
    if kind == "bundled" and name in bundled and not weights or not rest and text in bundled:
        return Spec("bundled", name or text)
    if kind == "preset" and name in models.presets.PRESETS and not weights:
        return Spec("preset", name)
    if kind == "app" and name in models.applications.APPLICATIONS and weights in ("imagenet", "none", ""):
        return Spec("app", name, None if weights == "none" else "imagenet")
    raise SpecError(f"Unknown model {text!r}: give {MODEL_FORMS} (bundled: {', '.join(bundled)}).")


def open_spec(spec: Spec | str) -> models.LoadedModel:
    """The ``models.LoadedModel`` of a spec; a file is keyed as the app keys an upload of the same bytes."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    if spec.kind == "file":
        data = Path(spec.name).read_bytes()
        return models.open_upload(data, Path(spec.name).name, "upload:" + hashlib.sha1(data).hexdigest()[:12])
    if spec.kind == "bundled":
        return models.open_bundled(spec.name)
    if spec.kind == "preset":
        return models.open_preset(spec.name)
    return models.open_application(spec.name, weights=spec.weights)


def parse_dataset(text: str) -> DatasetSpec:
    """The dataset ``text`` names. Raises SpecError with one sentence for anything else."""
    text = str(text).strip()
    if text in ("mnist_sample", "shapes", "photos"):
        return DatasetSpec(text)
    if text.startswith("keras:") and text.split(":", 1)[1] in datasets.KERAS_DATASETS:
        return DatasetSpec("keras", text.split(":", 1)[1])
    if text.lower().endswith(".zip") and Path(text).is_file():
        return DatasetSpec("zip", text)
    raise SpecError(f"Unknown dataset {text!r}: give one of {', '.join(DATASETS)} or a .zip of class folders.")


def sample_photos() -> datasets.ImageDataset:
    """The bundled colour photos as a dataset, one class per photo, 224x224."""
    photos = images.load_sample_photos()
    x = np.stack([render.resize(render.to_rgb(p), PHOTO_SIZE) for p in photos.values()]).astype(np.float32) / 255.0
    return datasets.ImageDataset(x, np.arange(len(photos), dtype=np.int64), tuple(photos), "photos")


def open_dataset(spec: DatasetSpec | str, limit: int) -> tuple[datasets.ImageDataset, str]:
    """A dataset as the Dataset view loads it, and the name the view keys it by ('zip:<sha1>' for a ZIP).

    Args:
        limit: images at most of a keras.datasets download (the view picks from the others itself).
    """
    spec = parse_dataset(spec) if isinstance(spec, str) else spec
    if spec.kind == "mnist_sample":
        return datasets.load_mnist_sample(), spec.kind
    if spec.kind == "shapes":
        return datasets.make_shapes(SHAPES["n"], seed=SHAPES["seed"]), spec.kind
    if spec.kind == "photos":
        return sample_photos(), spec.kind
    if spec.kind == "keras":
        full = datasets.load_keras_dataset(spec.name, split="train")
        return full.subset(np.arange(min(int(limit), len(full)))), spec.text
    data = Path(spec.name).read_bytes()
    return archive.load_image_zip(data, name="upload"), f"zip:{hashlib.sha1(data).hexdigest()[:12]}"
