"""Guided Backpropagation (Springenberg et al., 2015): only positive gradients through positive ReLUs.

At every ReLU the backward pass keeps a gradient where the ReLU's input was positive (its own
derivative) and the gradient itself is positive: ``R_l = (f_l > 0) * (R_l+1 > 0) * R_l+1``.
``guided`` applies the rule to a copy of the feature sub-model that reuses the same layers (so the
same weights): a ``GuidedGate`` after each ReLU is the identity forward and ``max(g, 0)`` backward,
and the ReLU's own derivative does the rest. The user's model and its layers are not changed.

ReLUs gated: a fused ``activation="relu"`` or ``"relu6"`` (Conv2D, Dense, ...), an
``Activation("relu")`` layer, a ``ReLU`` layer that is not leaky (``max_value=6`` in MobileNetV2)
and ``keras.ops.relu`` / ``relu6`` nodes. The map is the max over channels of |guided gradient|,
as in Saliency.

Example:
    >>> heatmap_hw = guided_backprop(model, image_hwc, target=3)
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from vizcore.attribution.cost import one_gradient
from vizcore.attribution.engines import input_gradients, max_abs_over_channels
from vizcore.attribution.factory import method

RELU_NAMES = ("relu", "relu6")


@tf.custom_gradient
def _positive_gradient(x):
    return tf.identity(x), tf.nn.relu


class GuidedGate(keras.layers.Layer):
    """Identity forward; passes back only the positive part of the gradient."""

    def call(self, x):
        return _positive_gradient(x)

    def compute_output_shape(self, input_shape):
        return input_shape


def is_relu(op) -> bool:
    """Whether a layer or graph operation ends in a (non-leaky) ReLU."""
    if isinstance(op, keras.layers.ReLU):
        return not op.negative_slope
    if isinstance(op, keras.layers.Layer):
        return getattr(getattr(op, "activation", None), "__name__", "") in RELU_NAMES
    return type(op).__name__.lower() in RELU_NAMES  # keras.ops.relu(x) in a Functional graph


def guided(sub: keras.Model) -> keras.Model:
    """A copy of a Functional sub-model sharing its layers, with a ``GuidedGate`` after every ReLU."""

    def call(op, *args, **kwargs):
        y = op(*args, **kwargs)
        return GuidedGate()(y) if is_relu(op) else y

    return keras.models.clone_model(sub, clone_function=lambda layer: layer, call_function=call)


def guided_gradients(model: keras.Model, batch_nhwc: np.ndarray, target: int | None) -> np.ndarray:
    """Guided d(target score)/d(input) of a batch, float32 (N, H, W, C); target None: each top class."""
    return input_gradients(model, batch_nhwc, target, rewrite=guided)


def guided_backprop_maps(
    model: keras.Model, batch_nhwc: np.ndarray, target: int | None, layer: str | None
) -> np.ndarray:
    """Raw maps of a batch, float32 (N, H, W): max over channels of |guided gradient|."""
    return input_gradients(model, batch_nhwc, target, rewrite=guided, reduce=max_abs_over_channels)


GUIDED_BACKPROP = method(
    "guided_backprop",
    guided_backprop_maps,
    display="absolute",
    uses_layer=False,
    cost=one_gradient,
    about="gradient with only positive signals through ReLUs; 1 forward + guided backward",
)
guided_backprop = GUIDED_BACKPROP.fn
