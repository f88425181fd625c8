"""Models: the working model (``LoadedModel``) and the ``open_*`` functions that make one from every source.

The pieces live in submodules, each with one import path: ``presets`` (untrained classic CNNs),
``loading`` (the files people bring), ``applications`` (keras.applications), ``summary`` (figures
and diagram), and the readers behind loading (``legacy``, ``tfjs``, ``bundles``). What any model
is made of: ``graph`` (the one trace: layer table, head), ``features`` (sub-models exposing layers
and the pre-softmax scores), ``fields`` (receptive fields), ``predict`` (scores and probabilities),
``heads``, ``blocks``, ``batches``, ``hints``::

    from vizcore import models
    from vizcore.models import features, predict
    loaded = models.open_bundled("mnist_cnn")
    fm = features.feature_model(loaded.model, ["conv2"])
    predict.top_k(loaded.model, image_hwc, 3)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras

from vizcore.data import images
from vizcore.errors import WeightsUnavailableError
from vizcore.models import applications, bundles, hints, legacy, loading, presets, summary, tfjs  # noqa: F401  (each reachable as models.<name>)
from vizcore.models.graph import SEP, InputSpec, head_type, input_spec, iter_layers, layer_table

BUNDLED_DIR = Path(__file__).resolve().parent.parent.parent / "models"

# --------------------------------------------------------------------------- bundled models


def list_bundled() -> list[str]:
    """Names of the trained models that ship in ``models/`` (those with a card)."""
    return sorted(p.stem for p in BUNDLED_DIR.glob("*.keras") if p.with_suffix(".json").exists())


def bundled_card(name: str) -> dict[str, Any]:
    """The model card of a bundled model: data, epochs, held-out accuracy, classes, input range."""
    return json.loads((BUNDLED_DIR / f"{name}.json").read_text())


# --------------------------------------------------------------------------- the working model


@dataclass(frozen=True)
class LoadedModel:
    """A model with what the pages need to know about it.

    ``fit`` says how an image of another shape reaches the input size: "stretch" (resize),
    "pad" (``images.preprocess(..., keep_aspect=True)``) or "crop" (``crop=True``, Teachable
    Machine's centre crop). ``notes`` are warnings to show, one sentence each. ``card`` is a
    bundled model's card; ``origin`` says where an upload came from.
    """

    model: keras.Model
    key: str  # stable cache key: "bundled:mnist_cnn", "preset:lenet5", "upload:<sha1>", ...
    label: str
    class_names: tuple[str, ...]
    preprocess: str = "unit"  # a vizcore.data.images.PREPROCESS_MODES key
    card: dict[str, Any] = field(default_factory=dict)
    fit: str = "stretch"  # a FIT_MODES key
    notes: tuple[str, ...] = ()
    origin: dict[str, Any] = field(default_factory=dict)  # an upload's format, teachable_machine, image_size

    @property
    def spec(self) -> InputSpec:
        return input_spec(self.model)

    def prepare(self, image_uint8, *, invert: bool = False) -> images.Preprocessed:
        """An image as this model takes it: its size (by ``fit``), channels and input range."""
        spec = self.spec
        size = (spec.height or image_uint8.shape[0], spec.width or image_uint8.shape[1])
        return images.preprocess(
            image_uint8,
            size=size,
            channels=spec.channels,
            mode=self.preprocess,
            invert=invert,
            keep_aspect=self.fit == "pad",
            crop=self.fit == "crop",
        )


FIT_MODES = ("stretch", "pad", "crop")
TEACHABLE_HEAD = ("dense_Dense1", "dense_Dense2")  # the head layers Teachable Machine names


def looks_teachable(model: keras.Model) -> bool:
    """Whether a model has Teachable Machine's shape: a 224x224x3 MobileNet base and its head.

    tfjs-layers names every Dense ``dense_DenseN``, so the head names alone are not enough: the
    input size and a depthwise convolution (the MobileNet base) must be there too.
    """
    layers = [(path.rsplit(SEP, 1)[-1], layer) for path, layer, _ in iter_layers(model)]
    spec = input_spec(model)
    return (
        set(TEACHABLE_HEAD) <= {name for name, _ in layers}
        and (spec.height, spec.width, spec.channels) == (224, 224, 3)
        and any(isinstance(layer, keras.layers.DepthwiseConv2D) for _, layer in layers)
    )


def _class_names(model: keras.Model, names: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """Names for the model's classes; a single sigmoid unit is binary: two classes."""
    units = int(layer_table(model)[-1].output_shape[-1] or 1)
    if units == 1 and head_type(model) == "sigmoid":
        units = 2
    if names and len(names) == units:
        return tuple(names)
    return tuple(f"class {i}" for i in range(units))


def open_bundled(name: str) -> LoadedModel:
    """Load a bundled trained model with its card."""
    card = bundled_card(name)
    model = loading.load_model(BUNDLED_DIR / f"{name}.keras")
    return LoadedModel(
        model,
        f"bundled:{name}",
        card.get("label", name),
        _class_names(model, tuple(card["class_names"])),
        card.get("preprocess", "unit"),
        card,
    )


def open_preset(name: str, *, num_classes: int = 10) -> LoadedModel:
    """Build a preset, untrained, as a working model."""
    model = presets.build_preset(name, num_classes=num_classes)
    names = tuple(str(i) for i in range(num_classes)) if presets.PRESETS[name].input_shape[-1] == 1 else None
    return LoadedModel(
        model, f"preset:{name}", f"{presets.PRESETS[name].label} (untrained)", _class_names(model, names), "unit"
    )


def open_application(name: str, *, weights: str | None = "imagenet") -> LoadedModel:
    """A keras.applications network as a working model; with ImageNet weights, the class names too.

    The class index is downloaded once beside the weights; offline, the names are numbered and
    ``notes`` says which file to put in which folder.
    """
    model = applications.load_application(name, weights=weights)
    suffix = "ImageNet" if weights else "untrained"
    names, notes = applications.imagenet_class_names(), ()
    if weights == "imagenet" and names is None:
        try:
            names = applications.fetch_imagenet_class_names()
        except WeightsUnavailableError as err:
            notes = (str(err),)
    return LoadedModel(
        model,
        f"app:{name}:{weights}",
        f"{name} ({suffix})",
        _class_names(model, names),
        applications.APPLICATIONS[name].preprocess,
        notes=notes,
    )


def open_upload(
    data: bytes, filename: str, key: str, *, labels: Sequence[str] | bytes | str | None = None
) -> LoadedModel:
    """A user's uploaded model file (or ZIP) as a working model, with the class names and preprocessing
    that came with it.

    Args:
        data: the file's bytes: .keras, .h5, a TF.js model.json, or a .zip holding one of them.
        filename: shown in messages and as the label.
        key: the cache key.
        labels: class names uploaded alongside: a list, or the text of a labels.txt / metadata.json /
            JSON list. They override those in the file.

    Returns:
        LoadedModel; a Teachable Machine model gets preprocess "symmetric" and fit "crop", unless a
        metadata.json says its own ``preprocess`` and ``fit`` (as ConvLens's Teach export does). A class
        list whose count does not match the outputs is not used: ``notes`` says so and the classes
        are numbered.
    """
    found = loading.read_model(data, name=filename)
    names, notes = found.labels, list(found.notes)
    if isinstance(labels, (bytes, str)):
        parsed, note = bundles.parse_class_list(labels, "the class list")
        names, notes = parsed or names, notes + ([note] if note else [])
    elif labels is not None:
        names = tuple(str(x) for x in labels) or names
    class_names = _class_names(found.model, names)
    if names and class_names != tuple(names):
        notes.append(
            f"The class list of '{filename}' has {len(names)} names but the model has {len(class_names)} outputs, "
            "so the classes are numbered instead of named."
        )
    teachable = found.teachable or looks_teachable(found.model)
    origin = {"format": found.format, "teachable_machine": teachable}
    if found.image_size:
        origin["image_size"] = found.image_size
    preprocess = found.preprocess or ("symmetric" if teachable else hints.input_hint(found.model) or "unit")
    return LoadedModel(
        found.model,
        key,
        filename,
        class_names,
        preprocess,
        fit=found.fit or ("crop" if teachable else "stretch"),
        notes=tuple(notes),
        origin=origin,
    )
