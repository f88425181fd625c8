"""Sub-models that expose chosen layers' outputs and the pre-softmax scores, without touching the model.

``feature_model(model, layers)`` reads the one trace (``graph.trace``): the scores are the model's
output for a linear head, the input of a separate softmax/sigmoid layer, the affine part of a Dense
layer with a fused activation (``PreActivation``, sharing its weights), or the exact inverse of an
activation fused into another layer (``LogProbabilities``, ``Logit``).

Example:
    >>> fm = feature_model(model, ["conv2"])
    >>> acts, logits = fm.predict(batch_nhwc)      # {"conv2": (N, h, w, c)}, (N, K)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import ops

from vizcore.models.graph import resolve_layer, trace


class PreActivation(keras.layers.Layer):
    """The affine part of a Dense layer, sharing its weights: the scores before softmax/sigmoid."""

    def __init__(self, dense: keras.layers.Dense, **kwargs):
        super().__init__(name=f"{dense.name}_preactivation", **kwargs)
        self.dense = dense

    def call(self, x):
        y = ops.matmul(x, self.dense.kernel)
        if self.dense.bias is not None:
            y = ops.add(y, self.dense.bias)
        return y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.dense.units,)


class LogProbabilities(keras.layers.Layer):
    """log(p): the scores used when a softmax is fused into a layer other than Dense."""

    def call(self, x):
        return ops.log(ops.maximum(x, 1e-12))


class Logit(keras.layers.Layer):
    """log(p / (1 - p)): exact inverse of a sigmoid fused into a layer other than Dense."""

    def call(self, x):
        p = ops.clip(x, 1e-7, 1.0 - 1e-7)
        return ops.log(p / (1.0 - p))


@dataclass(frozen=True)
class FeatureModel:
    """A sub-model exposing chosen layers' outputs and the pre-softmax scores.

    ``model(batch)`` returns a list: one tensor per entry of ``layers``, then the scores.
    ``scores_are_logits`` is False only when a softmax is fused into a layer whose affine part
    cannot be separated; the scores are then log-probabilities.
    """

    model: keras.Model
    layers: tuple[str, ...]
    head: str
    scores_are_logits: bool = True

    def __call__(self, batch_nhwc: Any) -> tuple[dict[str, Any], Any]:
        """Run the sub-model; return ``({layer_path: output}, scores)``."""
        outs = self.model(batch_nhwc, training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        return dict(zip(self.layers, outs[:-1])), outs[-1]

    def predict(self, batch_nhwc: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """NumPy in, NumPy out."""
        acts, scores = self(np.asarray(batch_nhwc, dtype="float32"))
        return {k: np.asarray(v) for k, v in acts.items()}, np.asarray(scores)

    def predict_lean(self, batch_nhwc: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """``predict`` with a bounded peak: each layer's output is freed once the last layer that reads it ran
        (``lean_call``), instead of every output living until the pass ends. The same numbers."""
        outs = [np.asarray(v) for v in lean_call(self.model, np.asarray(batch_nhwc, dtype="float32"))]
        return dict(zip(self.layers, outs[:-1])), outs[-1]


def lean_call(model: keras.Model, batch: Any) -> list[Any]:
    """``model(batch, training=False)`` run eagerly node by node, keeping a tensor only while a later node reads it.

    A Keras Functional call keeps every layer's output until the pass ends (ResNet50 at 224x224: about
    140 MB for one image); here the live tensors are those of the skip connections in flight. For a
    single-input functional model (``feature_model``'s sub-models); returns the outputs as a list.
    """
    nodes = [
        node
        for depth in sorted(model._nodes_by_depth, reverse=True)  # noqa: SLF001 (Keras's own execution order)
        for node in model._nodes_by_depth[depth]  # noqa: SLF001
        if node.operation is not None and not node.is_input
    ]
    readers: dict[int, int] = {}
    for node in nodes:
        for t in node.input_tensors:
            readers[id(t)] = readers.get(id(t), 0) + 1
    wanted = {id(t) for t in model.outputs}
    values = {id(model.inputs[0]): ops.convert_to_tensor(batch)}
    for node in nodes:
        args, kwargs = node.arguments.fill_in(values)
        op = node.operation
        if "training" in getattr(op, "_call_context_args", ()):
            kwargs["training"] = False
        for symbolic, value in zip(node.outputs, keras.tree.flatten(op(*args, **kwargs))):
            values[id(symbolic)] = value
        del args, kwargs
        for t in node.input_tensors:
            readers[id(t)] -= 1
            if not readers[id(t)] and id(t) not in wanted:
                values.pop(id(t), None)
    return [values[id(t)] for t in model.outputs]


def feature_model(model: keras.Model, layers: Sequence[str] = ()) -> FeatureModel:
    """Build a sub-model that outputs the given layers and the pre-softmax scores.

    Works on Functional models, Sequential models (also those loaded from ``.keras``), models
    nested inside models and softmax or sigmoid heads. The given model is not changed.

    Args:
        model: any single-input image model.
        layers: layer paths or unique plain names, e.g. ``("conv1", "mobilenetv2/Conv_1")``.

    Returns:
        FeatureModel whose ``model`` maps an image batch to ``[*layer_outputs, scores]``.

    Example:
        >>> fm = feature_model(model, ["conv2d_1"])
        >>> acts, logits = fm(batch_nhwc)
    """
    paths = tuple(resolve_layer(model, name) for name in layers)
    traced = trace(model)
    head, leaf = traced.head, traced[traced.head.layer]
    exact = True
    if head.kind == "linear":
        scores = traced.output
    elif not head.fused:
        scores = leaf.input
    elif isinstance(leaf.layer, keras.layers.Dense):
        scores = PreActivation(leaf.layer)(leaf.input)
    elif head.kind == "softmax":
        scores, exact = LogProbabilities(name="log_probabilities")(traced.output), False
    else:  # sigmoid fused into a non-Dense layer: invert it exactly
        scores = Logit(name="logit")(traced.output)
    outputs = [traced[p].output for p in paths] + [scores]
    sub = keras.Model(inputs=traced.input, outputs=outputs, name=f"{model.name}_features")
    return FeatureModel(model=sub, layers=paths, head=head.kind, scores_are_logits=exact)
