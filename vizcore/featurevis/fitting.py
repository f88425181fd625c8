"""An early layer optimized as a texture: images at twice the layer's receptive field instead of the full size.

A unit of an early layer sees a small window of the image, so optimizing a 224x224 image for it
repeats the same pattern many times over. When the network up to the objective's layers is
convolutional, ``optimize`` works on images of twice their receptive field
(``vizcore.models.fields``), a multiple of 16 and at least ``MIN_FITTED_SIDE`` px, with
``settings.texture_settings`` (jitter in whole strides). ``texture_size`` tells a page when that
happens.

Example:
    >>> texture_size(mobilenet_v2_224, Channel("block_1_project"))
    (64, 64, 4)
"""

from __future__ import annotations

from typing import Any

import keras

from vizcore.cache import per_model
from vizcore.featurevis import slicing
from vizcore.featurevis.objectives import Neuron, Objective
from vizcore.featurevis.ranges import model_and_mode
from vizcore.models import fields, graph

MIN_FITTED_SIDE = 64
RUNS_AT_KEPT = 512


def fitted_size(model: keras.Model, objective: Objective, h: int, w: int) -> tuple[int, int, int] | None:
    """(h, w, stride) of the images to optimize as a texture: twice the receptive field of the
    objective's layers (a multiple of 16, at least MIN_FITTED_SIDE), and their largest stride;
    None when that is not smaller than ``h`` x ``w`` or the network does not run at that size."""
    if objective.needs_scores or not objective.layers:
        return None
    if any(isinstance(o, Neuron) and (o.y, o.x) != (None, None) for _, _, o in objective.terms()):
        return None  # a position in the model's own map
    paths = tuple(graph.resolve_layer(model, name) for name in objective.layers)
    found = [fields.receptive_field(model, p, (h, w)) for p in paths]
    if any(rf.whole for rf in found):
        return None  # a unit that sees the whole image
    field, stride = max(max(rf.size) for rf in found), max(rf.stride for rf in found)
    side = max(MIN_FITTED_SIDE, -(-2 * field // 16) * 16)
    if side >= min(h, w):
        return None
    # one bool per layer: a limit above any network's conv count, or ``gallery_default`` (which asks for every
    # conv layer on every run of the Filters page) evicts and rebuilds them all: 1.2-1.4 s a run on MobileNetV2
    runs = per_model(
        model, ("featurevis.runs_at", paths, side), lambda: slicing.runs_at(model, paths, side), limit=RUNS_AT_KEPT
    )
    return (side, side, stride) if runs else None


def texture_size(model: Any, objective: Objective, *, image_size: int = 224) -> tuple[int, int, int] | None:
    """(h, w, stride) when ``optimize`` (with ``fit_receptive_field`` on) treats ``objective`` as a
    texture of an early layer (``texture_settings``), else None; for a page to say so.

    Args:
        model: a keras.Model or a LoadedModel.
        image_size: the side optimized for a model that takes any size.
    """
    keras_model, _ = model_and_mode(model, None)
    spec = graph.input_spec(keras_model)
    return fitted_size(keras_model, objective, spec.height or image_size, spec.width or image_size)
