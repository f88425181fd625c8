"""Sub-models for the optimizer, and the fast path: only each image's own channel of a conv layer.

Visualizing a whole layer, image i needs channel i of the target layer and nothing else. When the
target is a ``Conv2D`` (optionally followed by BatchNormalization and an activation), the
optimizer computes the layer's input for the batch, then one output channel per image: a
depthwise convolution of the batch laid side by side in the channel axis with each image's own
kernel. For the MNIST CNN's conv2 that is 1/64 of the work of the full layer.

One gradient rule on every route: the ReLU that produces the target layer's output (a ReLU
layer, or a conv's fused relu) is a ``redirected_relu`` while ``redirect`` is on (the engine turns
it on for the first ``Settings.redirect_steps`` steps, as Lucid does): for an image whose channel
is silent everywhere, it passes the gradients that would raise its input, otherwise a filter that
is off on the grey starting image never moves. The values are unchanged. ``own_relu`` splits that
ReLU off a layer for the plain path (the whole layer), ``sliced_model`` applies it itself.

When the network starts with a convolution on the image (1 to 4 channels, stride 1), that
convolution's input gradient is computed as one matrix product and a sum of shifted copies
(col2im): TensorFlow's CPU kernel for it is slow with so few channels (on the MNIST CNN it took
half of every step; this takes half of that).

The fast path checks itself against the full layer on random images when it is built and is not
used when they disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from vizcore.models import features, graph

_CHANNELWISE_ACTIVATIONS = (keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU)


def layers_model(
    model: keras.Model, paths: tuple[str, ...], with_scores: bool
) -> Callable[[Any], tuple[dict[str, Any], Any]]:
    """A function batch -> ({path: activations}, scores or None) that computes no more than it needs.

    Unlike ``feature_model`` it stops at the deepest requested layer unless the scores are needed.
    Without scores it also runs on images of another size when every layer up to there allows it.
    """
    if with_scores:
        fm = features.feature_model(model, paths)
        return lambda x: fm(x)
    traced = graph.trace(model)
    sub = keras.Model(traced.input, [traced[p].output for p in paths], name=f"{model.name}_featurevis")

    def run(x: Any) -> tuple[dict[str, Any], Any]:
        outs = sub.call(x, training=False)  # .call: no input-shape check, so a smaller image runs too
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        return dict(zip(paths, outs)), None

    return run


def _source(traced: graph.Trace, path: str) -> str | None:
    sources = traced[path].inbound
    return sources[0] if len(sources) == 1 else None


def _is_channelwise(layer: Any) -> bool:
    if isinstance(layer, keras.layers.BatchNormalization):
        return layer.axis in (-1, 3) or layer.axis == [3] or layer.axis == [-1]
    if isinstance(layer, _CHANNELWISE_ACTIVATIONS):
        return True
    if isinstance(layer, keras.layers.Activation):
        return getattr(layer.activation, "__name__", "") not in ("softmax", "log_softmax")
    return False


def _plain_conv(layer: Any) -> bool:
    return (
        type(layer) is keras.layers.Conv2D
        and layer.groups == 1
        and layer.data_format == "channels_last"
        and layer.padding in ("valid", "same")
        and getattr(layer.activation, "__name__", "") not in ("softmax", "log_softmax")
    )


def sliced_model(model: keras.Model, path: str) -> Callable[[Any, Any], Any] | None:
    """A function (batch, index (N,), redirect=False) -> (N, h, w, 1) computing channel index[i] of
    layer ``path`` for image i, or None when the layer is not a Conv2D [+ BatchNormalization] [+ activation].

    The batch may be smaller than the model's input when everything up to the layer is convolutional.
    """
    traced = graph.trace(model)
    chain = []
    cur: str | None = path
    while cur is not None and cur in traced and _is_channelwise(traced[cur].layer):
        chain.append(traced[cur].layer)
        cur = _source(traced, cur)
    if cur is None or cur not in traced or not _plain_conv(traced[cur].layer):
        return None
    conv = traced[cur].layer
    feed = _feed(model, traced, cur)
    chain.reverse()

    def run(x: Any, index: Any, redirect: Any = False) -> Any:
        a = x if feed is None else feed(x)
        y = _conv_per_image(a, conv, index, redirect if not chain else False)
        for i, layer in enumerate(chain):
            y = _channelwise(layer, y, index, redirect if i == len(chain) - 1 else False)
        return y

    return run if _agrees(model, path, run) else None


def _feed(model: keras.Model, traced: graph.Trace, conv_path: str) -> Callable[[Any], Any] | None:
    """batch -> the input of layer ``conv_path`` (None when that is the image itself)."""
    x_in, conv_input = traced.input, traced[conv_path].input
    if conv_input is x_in:
        return None
    firsts = [b for a, b in traced.edges if a == "input"]
    fast = image_conv(traced[firsts[0]].layer) if len(firsts) == 1 else None
    if fast is not None:
        first_out = traced[firsts[0]].output
        if first_out is conv_input:
            return fast
        try:
            rest = keras.Model(first_out, conv_input, name=f"{model.name}_after_first_conv")
        except ValueError:  # something between also reads the image: no split
            rest = None
        if rest is not None:
            return lambda x: rest.call(fast(x), training=False)
    whole = keras.Model(x_in, conv_input, name=f"{model.name}_conv_input")
    return lambda x: whole.call(x, training=False)


def image_conv(layer: Any) -> Callable[[Any], Any] | None:
    """A Conv2D on few channels (<= 4), stride 1, as a function with a fast input gradient, else None.

    Same values as the layer; the gradient with respect to its input is a matrix product of the
    output gradient with the kernel, summed back over the kernel's offsets (col2im).
    """
    if not (_plain_conv(layer) and tuple(layer.strides) == (1, 1) and tuple(layer.dilation_rate) == (1, 1)):
        return None
    kh, kw, cin, cout = (int(d) for d in layer.kernel.shape)
    if cin > 4:
        return None
    padding = layer.padding.upper()

    def run(x: Any) -> Any:
        kernel = tf.cast(layer.kernel, tf.float32)

        @tf.custom_gradient
        def conv(x: Any) -> Any:
            def grad(dy: Any) -> Any:
                cols = tf.einsum("nhwo,ko->nhwk", dy, tf.reshape(kernel, [kh * kw * cin, cout]))
                cols = tf.reshape(cols, tf.concat([tf.shape(dy)[:3], [kh, kw, cin]], axis=0))
                full = tf.add_n(
                    [
                        tf.pad(cols[:, :, :, i, j, :], [[0, 0], [i, kh - 1 - i], [j, kw - 1 - j], [0, 0]])
                        for i in range(kh)
                        for j in range(kw)
                    ]
                )  # (N, h_out + kh - 1, w_out + kw - 1, cin)
                if padding == "VALID":
                    return full
                top, left = (kh - 1) // 2, (kw - 1) // 2
                return full[:, top : top + tf.shape(x)[1], left : left + tf.shape(x)[2]]

            return tf.nn.conv2d(x, kernel, 1, padding), grad

        y = conv(x)
        if layer.use_bias:
            y = y + tf.cast(layer.bias, tf.float32)
        return layer.activation(y)

    return run


def _conv_per_image(a_nhwc: Any, conv: Any, index: Any, redirect: Any) -> Any:
    """conv's output channel index[i] of image i: (N, h', w', 1)."""
    kh, kw, cin, _ = conv.kernel.shape
    kernel = tf.gather(tf.cast(conv.kernel, tf.float32), index, axis=3)  # (kh, kw, cin, N)
    n = tf.shape(a_nhwc)[0]
    h, w = tf.shape(a_nhwc)[1], tf.shape(a_nhwc)[2]
    side_by_side = tf.reshape(tf.transpose(a_nhwc, [1, 2, 0, 3]), [1, h, w, n * cin])
    dw_kernel = tf.reshape(tf.transpose(kernel, [0, 1, 3, 2]), [kh, kw, n * cin, 1])
    y = tf.nn.depthwise_conv2d(
        side_by_side, dw_kernel, [1, *conv.strides, 1], conv.padding.upper(), dilations=conv.dilation_rate
    )  # (1, h', w', N * cin)
    y = tf.reduce_sum(tf.reshape(y, [tf.shape(y)[1], tf.shape(y)[2], n, cin]), axis=-1)
    y = tf.transpose(y, [2, 0, 1])[..., None]  # (N, h', w', 1)
    if conv.use_bias:
        y = y + tf.gather(tf.cast(conv.bias, tf.float32), index)[:, None, None, None]
    cap = _fused_cap(conv)
    return conv.activation(y) if cap is False else redirected_relu(y, cap, redirect)


def _relu_cap(layer: Any) -> float | None | bool:
    """The ReLU's max_value (None: no cap) when it is a plain (or capped) ReLU, else False."""
    if isinstance(layer, keras.layers.ReLU):
        plain = not layer.negative_slope and not layer.threshold
        return (None if layer.max_value is None else float(layer.max_value)) if plain else False
    if isinstance(layer, keras.layers.Activation):
        name = getattr(layer.activation, "__name__", "")
        return None if name == "relu" else 6.0 if name == "relu6" else False
    return False


def _fused_cap(layer: Any) -> float | None | bool:
    """The cap of a layer's fused relu/relu6 activation (None: no cap), else False."""
    name = getattr(getattr(layer, "activation", None), "__name__", "")
    return None if name == "relu" else 6.0 if name == "relu6" else False


def redirected_relu(x: Any, max_value: float | None = None, redirect: Any = True) -> Any:
    """ReLU (capped at max_value) whose gradient, while ``redirect`` is on, for a channel that is zero
    everywhere in an image, lets through the parts that push its input back into the active range.

    ``x`` is (N, ..., C); "a channel in an image" is x[i, ..., c]. With ``redirect`` off (a bool or a
    bool tensor) the gradient is the ordinary one.
    """

    @tf.custom_gradient
    def relu(x: Any) -> Any:
        y = tf.nn.relu(x) if max_value is None else tf.clip_by_value(x, 0.0, max_value)

        def grad(dy: Any) -> Any:
            below = x < 0.0
            above = x > max_value if max_value is not None else tf.zeros_like(below)
            plain = tf.where(below | above, tf.zeros_like(dy), dy)
            # dy > 0: a descent step would lower x further (below), dy < 0: raise it further (above)
            redirected = tf.where((below & (dy > 0.0)) | (above & (dy < 0.0)), tf.zeros_like(dy), dy)
            n, c = tf.shape(dy)[0], tf.shape(dy)[-1]
            alive = tf.reduce_max(tf.abs(tf.reshape(plain, [n, -1, c])), axis=1) > 0.0  # (N, C)
            alive = tf.reshape(alive, tf.concat([[n], tf.ones([tf.rank(dy) - 2], tf.int32), [c]], axis=0))
            return tf.where(alive | tf.logical_not(redirect), plain, redirected)

        return y, grad

    return relu(x)


@dataclass(frozen=True)
class OwnRelu:
    """A layer's output split as ``relu(pre(a), cap)``, ``a`` the output of layer ``source``
    ("input": the image): the ReLU that the gradient rule redirects, for the plain path."""

    source: str
    pre: Callable[[Any], Any]
    cap: float | None

    def __call__(self, a: Any, redirect: Any = False) -> Any:
        return redirected_relu(self.pre(a), self.cap, redirect)


def _linear_part(layer: Any) -> Callable[[Any], Any] | None:
    """x -> the layer's output before its fused activation, for Conv2D, DepthwiseConv2D and Dense."""

    def bias(y: Any) -> Any:
        return y + tf.cast(layer.bias, tf.float32) if layer.use_bias else y

    if type(layer) is keras.layers.Conv2D and layer.data_format == "channels_last":
        return lambda x: bias(layer.convolution_op(x, layer.kernel))
    if type(layer) is keras.layers.DepthwiseConv2D and layer.data_format == "channels_last":
        return lambda x: bias(
            keras.ops.depthwise_conv(
                x, layer.kernel, layer.strides, layer.padding, layer.data_format, layer.dilation_rate
            )
        )
    if type(layer) is keras.layers.Dense:
        return lambda x: bias(tf.matmul(x, tf.cast(layer.kernel, tf.float32)))
    return None


def own_relu(model: keras.Model, path: str) -> OwnRelu | None:
    """The ReLU producing layer ``path``'s output, split off (checked on random images), else None."""
    traced = graph.trace(model)
    node = traced[path]
    if len(node.inbound) != 1:
        return None
    cap = _relu_cap(node.layer)
    split = OwnRelu(node.inbound[0], lambda a: a, cap) if cap is not False else None
    if split is None and _fused_cap(node.layer) is not False and _linear_part(node.layer) is not None:
        split = OwnRelu(node.inbound[0], _linear_part(node.layer), _fused_cap(node.layer))
    if split is None:
        return None
    return split if _split_agrees(model, path, split) else None


def _split_agrees(model: keras.Model, path: str, split: OwnRelu) -> bool:
    spec = graph.input_spec(model)
    h, w = spec.height or 64, spec.width or 64
    x = tf.constant(np.random.default_rng(0).random((2, h, w, spec.channels), dtype=np.float32) * 2 - 0.5)
    try:
        want = layers_model(model, (path,), False)(x)[0][path]
        a = x if split.source == "input" else layers_model(model, (split.source,), False)(x)[0][split.source]
        got = split(a)
    except Exception:  # an op the split cannot express: the whole layer, ordinary gradient
        return False
    scale = float(tf.reduce_max(tf.abs(want))) + 1e-6
    return tuple(got.shape) == tuple(want.shape) and bool(float(tf.reduce_max(tf.abs(got - want))) <= 1e-4 * scale)


def _channelwise(layer: Any, y: Any, index: Any, redirect: Any) -> Any:
    if not isinstance(layer, keras.layers.BatchNormalization):
        cap = _relu_cap(layer)
        return layer(y) if cap is False else redirected_relu(y, cap, redirect)

    def pick(v: Any) -> Any:
        return tf.gather(tf.cast(v, tf.float32), index)[:, None, None, None]

    inv = tf.math.rsqrt(pick(layer.moving_variance) + layer.epsilon)
    if layer.scale:
        inv = inv * pick(layer.gamma)
    y = (y - pick(layer.moving_mean)) * inv
    return y + pick(layer.beta) if layer.center else y


def _agrees(model: keras.Model, path: str, run: Callable[[Any, Any], Any]) -> bool:
    """The fast path gives the full layer's values on two random images."""
    spec = graph.input_spec(model)
    h, w = spec.height or 64, spec.width or 64
    x = tf.constant(np.random.default_rng(0).random((2, h, w, spec.channels), dtype=np.float32))
    try:
        full = layers_model(model, (path,), False)(x)[0][path]
        index = tf.constant([0, int(full.shape[-1]) - 1], tf.int32)
        fast = run(x, index)
    except Exception:  # an op this path cannot express: use the full layer
        return False
    want = tf.gather(full, index, axis=3, batch_dims=1)
    scale = float(tf.reduce_max(tf.abs(want))) + 1e-6
    return bool(float(tf.reduce_max(tf.abs(fast[..., 0] - want))) <= 1e-4 * scale)


def runs_at(model: keras.Model, paths: tuple[str, ...], side: int) -> bool:
    """Whether the network up to ``paths`` computes them on a side x side image (fully convolutional)."""
    channels = graph.input_spec(model).channels
    try:
        outs = layers_model(model, paths, False)(tf.zeros((1, side, side, channels)))[0]
    except Exception:  # a Flatten, Dense or Reshape on the way needs the model's own size
        return False
    return all(min(int(outs[p].shape[1]), int(outs[p].shape[2])) >= 1 for p in paths if len(outs[p].shape) == 4)
