"""Image models whose input has no channel axis: ``(H, W)``, made ``(H, W, 1)`` by their first layer.

Many MNIST tutorials feed the digits as they come, ``(28, 28)``, and add the channel inside the
model: ``Reshape((28, 28, 1))`` as its first layer, or ``expand_dims`` on the input.
``as_image_model`` returns the same network on a ``(H, W, 1)`` input, the greyscale image every page
gives a one-channel model: that first layer is left out (on ``(H, W, 1)`` it changes nothing) and
every other layer is the model's own (shared weights, nothing copied), so its outputs are the
model's outputs on ``x[..., 0]``.

Example:
    >>> image_model = as_image_model(lenet_2d)      # Input (None, 28, 28) -> Reshape -> Conv2D ...
    >>> image_model.input_shape
    (None, 28, 28, 1)
"""

from __future__ import annotations

from typing import Any

import keras

from vizcore.errors import NotAnImageModelError
from vizcore.models import graph

ADDS_CHANNEL = ("Reshape", "ExpandDims")  # a Keras 3 layer, and the op of keras.ops.expand_dims


def _adds_channel(op: Any, height: int, width: int) -> bool:
    """Whether ``op`` turns a ``(None, H, W)`` batch into ``(None, H, W, 1)``."""
    try:
        if isinstance(op, keras.layers.Reshape):
            out = op.compute_output_shape((None, height, width))
        elif type(op).__name__ == "ExpandDims":
            out = op.compute_output_spec(keras.KerasTensor((None, height, width))).shape
        else:
            return False
    except (ValueError, TypeError, AttributeError):
        return False
    return tuple(out) == (None, height, width, 1)


def as_image_model(model: keras.Model) -> keras.Model | None:
    """The model on a ``(H, W, 1)`` image input when it takes ``(H, W)`` and first adds the channel; else None
    (also for a model never built or with several inputs: ``loading.check_image_model`` says what it is)."""
    try:
        shape = graph.input_shape(model)
    except NotAnImageModelError:
        return None
    if len(shape) != 3 or shape[1] is None or shape[2] is None:
        return None
    _, height, width = shape
    image = keras.Input((height, width, 1), name=f"{model.name}_image")
    if isinstance(model, keras.Sequential):
        layers = list(model.layers)
        if len(layers) < 2 or not _adds_channel(layers[0], height, width):
            return None
        x = image
        for layer in layers[1:]:
            x = layer(x)
        return keras.Model(image, x, name=model.name)
    raw = model.inputs[0]
    readers = [
        node
        for nodes in model._nodes_by_depth.values()  # noqa: SLF001 (the graph Keras runs)
        for node in nodes
        if node.operation is not None and not node.is_input and any(t is raw for t in node.input_tensors)
    ]
    if len(readers) != 1 or not _adds_channel(readers[0].operation, height, width):
        return None
    first = readers[0].operation

    def operation_fn(op):
        def call(*args, **kwargs):
            return image if op is first else op(*args, **kwargs)

        return call

    outputs = model._run_through_graph(image, operation_fn=operation_fn)  # noqa: SLF001
    return keras.Model(image, outputs, name=model.name)


def note(label: str, height: int, width: int, first: str) -> str:
    """The one sentence a page shows about such a model."""
    return (
        f"'{label}' takes {height}×{width} images without a channel axis and adds it in its first layer ({first}): "
        f"ConvLens opens it as a greyscale {height}×{width}×1 image model, so every page feeds it one-channel images."
    )
