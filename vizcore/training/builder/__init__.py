"""Build a CNN from a list of layer specs: shapes and parameters first, problems inline, then Keras.

The Builder page keeps a tuple of small frozen specs in session state. ``infer`` walks them with
plain arithmetic (no Keras), so every widget change shows each layer's output shape, parameter
count and, where a choice cannot work, a one-line problem on that row. ``build`` turns valid specs
into a Functional model with every layer named and the split head of the presets (a ``logits``
Dense and a separate ``probs`` softmax); ``architecture_of`` reads the specs back from a plain chain
model (what a hyperparameter search varies).

Modules: ``specs`` (the layer specs, their JSON form, the presets' layers), ``shapes`` (``infer``:
shapes, parameters, problems), ``assemble`` (``build`` and ``architecture_of``).

Example:
    >>> specs = specs_from_preset("lenet5")
    >>> rows = infer(specs, (28, 28, 1), 10)
    >>> rows[-1].output_shape, sum(r.params for r in rows)
    ((10,), 61706)
    >>> model = build(specs, (28, 28, 1), 10, name="my_lenet")
    >>> specs_from_json(specs_to_json(specs)) == specs
    True
"""

from vizcore.training.builder.assemble import (
    architecture_of,
    build,
    keras_layer,
)
from vizcore.training.builder.shapes import (
    Row,
    infer,
    problems,
    total_params,
)
from vizcore.training.builder.specs import (
    ACTIVATIONS,
    KERAS_TYPES,
    MAX_LAYERS,
    MAX_PARAMS,
    NAME_RE,
    PADDINGS,
    SPEC_TYPES,
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
    spec_from_dict,
    spec_to_dict,
    specs_from_json,
    specs_from_preset,
    specs_to_json,
)

__all__ = [
    "ACTIVATIONS",
    "AvgPool",
    "BatchNorm",
    "Conv",
    "Dense",
    "Dropout",
    "Flatten",
    "GlobalAvgPool",
    "KERAS_TYPES",
    "LayerSpec",
    "MAX_LAYERS",
    "MAX_PARAMS",
    "MaxPool",
    "NAME_RE",
    "PADDINGS",
    "Row",
    "SPEC_TYPES",
    "architecture_of",
    "build",
    "infer",
    "keras_layer",
    "layer_names",
    "problems",
    "spec_from_dict",
    "spec_to_dict",
    "specs_from_json",
    "specs_from_preset",
    "specs_to_json",
    "total_params",
]
