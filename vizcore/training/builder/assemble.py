"""Specs to a Keras model (``build``) and back (``architecture_of``, for a plain chain of layers).

Keras is imported inside the functions: the specs and their shapes need none of it.

Example:
    >>> model = build(specs_from_preset("lenet5"), (28, 28, 1), 10, name="my_lenet")
    >>> architecture_of(model) == specs_from_preset("lenet5")
    True
"""

from __future__ import annotations

import re

from vizcore.errors import ModelBuildError
from vizcore.training.builder.shapes import infer, problems
from vizcore.training.builder.specs import (
    ACTIVATIONS,
    AvgPool,
    BatchNorm,
    Conv,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool,
    LayerSpec,
    MaxPool,
    layer_names,
)


def keras_layer(spec: LayerSpec, name: str):
    """The Keras layer of one spec, named ``name``."""
    import keras

    if isinstance(spec, Conv):
        return keras.layers.Conv2D(
            spec.filters, spec.kernel, strides=spec.stride, padding=spec.padding, activation=spec.activation, name=name
        )
    if isinstance(spec, MaxPool):
        return keras.layers.MaxPooling2D(spec.pool, strides=spec.stride, padding=spec.padding, name=name)
    if isinstance(spec, AvgPool):
        return keras.layers.AveragePooling2D(spec.pool, strides=spec.stride, padding=spec.padding, name=name)
    if isinstance(spec, BatchNorm):
        return keras.layers.BatchNormalization(name=name)
    if isinstance(spec, Dropout):
        return keras.layers.Dropout(spec.rate, name=name)
    if isinstance(spec, Flatten):
        return keras.layers.Flatten(name=name)
    if isinstance(spec, GlobalAvgPool):
        return keras.layers.GlobalAveragePooling2D(name=name)
    return keras.layers.Dense(spec.units, activation=spec.activation, name=name)


def build(
    specs: tuple[LayerSpec, ...] | list[LayerSpec],
    input_shape: tuple[int, int, int],
    num_classes: int,
    name: str = "custom_cnn",
):
    """A Functional ``keras.Model``: ``image`` input, the specs' layers, ``logits`` Dense, ``probs`` softmax.

    Raises:
        ModelBuildError: ``infer`` found a problem (the message lists every one).
    """
    import keras

    rows = infer(specs, input_shape, num_classes)
    found = problems(rows)
    if found:
        raise ModelBuildError("The model cannot be built: " + " ".join(found))
    safe_name = re.sub(r"[^A-Za-z0-9_]", "_", name.strip()) or "custom_cnn"
    inputs = keras.Input(tuple(input_shape), name="image")
    x = inputs
    for spec, layer_name in zip(specs, layer_names(specs)):
        x = keras_layer(spec, layer_name)(x)
    x = keras.layers.Dense(num_classes, name="logits")(x)
    outputs = keras.layers.Activation("sigmoid" if num_classes == 1 else "softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name=safe_name)


def architecture_of(model) -> tuple[LayerSpec, ...] | None:
    """The builder specs of a plain chain model (its head left out), or None when it is not one.

    The inverse of ``build``: ``architecture_of(build(specs, shape, classes)) == specs`` with every
    layer named, and the presets give back ``specs_from_preset``.
    """
    import keras

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if layers and isinstance(layers[-1], keras.layers.Activation):
        layers = layers[:-1]
    if not layers or not isinstance(layers[-1], keras.layers.Dense):
        return None
    specs: list[LayerSpec] = []
    for layer in layers[:-1]:
        c = layer.get_config()
        act = c.get("activation")
        if (
            type(layer) is keras.layers.Conv2D
            and act in ACTIVATIONS
            and len(set(c["kernel_size"])) == 1
            and len(set(c["strides"])) == 1
            and set(c["dilation_rate"]) == {1}
            and c.get("groups", 1) == 1
        ):
            specs.append(Conv(c["filters"], c["kernel_size"][0], c["strides"][0], c["padding"], act, layer.name))
        elif (
            type(layer) in (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D) and len(set(c["pool_size"])) == 1
        ):
            kind = MaxPool if type(layer) is keras.layers.MaxPooling2D else AvgPool
            stride = None if tuple(c["strides"] or c["pool_size"]) == tuple(c["pool_size"]) else c["strides"][0]
            specs.append(kind(c["pool_size"][0], stride, c["padding"], layer.name))
        elif type(layer) is keras.layers.Dropout:
            specs.append(Dropout(float(c["rate"]), layer.name))
        elif type(layer) is keras.layers.Flatten:
            specs.append(Flatten(layer.name))
        elif type(layer) is keras.layers.GlobalAveragePooling2D:
            specs.append(GlobalAvgPool(layer.name))
        elif type(layer) is keras.layers.BatchNormalization:
            specs.append(BatchNorm(layer.name))
        elif type(layer) is keras.layers.Dense and act in ACTIVATIONS:
            specs.append(Dense(c["units"], act, layer.name))
        else:
            return None
    return tuple(specs)
