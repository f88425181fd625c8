"""Shapes, parameters and problems of a spec list by plain arithmetic, before anything is built (no Keras).

Example:
    >>> rows = infer(specs_from_preset("lenet5"), (28, 28, 1), 10)
    >>> rows[-1].output_shape, total_params(rows), problems(rows)
    ((10,), 61706, [])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vizcore.errors import ModelBuildError
from vizcore.training.builder.specs import (
    ACTIVATIONS,
    KERAS_TYPES,
    MAX_LAYERS,
    MAX_PARAMS,
    NAME_RE,
    PADDINGS,
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


@dataclass(frozen=True)
class Row:
    """One line of the builder's table, computed before anything is built.

    ``output_shape`` has no batch axis, e.g. ``(26, 26, 32)`` or ``(128,)``; None once an earlier
    problem makes it unknown. ``problem`` blocks building; ``note`` is advice only.
    """

    index: int  # position in the spec list; -1 for the input, len(specs) and +1 for the head
    name: str
    type: str  # the Keras class name
    output_shape: tuple[int, ...] | None
    params: int
    problem: str | None = None
    note: str | None = None


def _window_out(size: int, window: int, stride: int, padding: str) -> int:
    return math.ceil(size / stride) if padding == "same" else (size - window) // stride + 1


def _check_settings(spec: LayerSpec) -> str | None:
    """A problem with the spec's own numbers, whatever comes before it."""
    if isinstance(spec, Conv):
        if spec.filters < 1 or spec.kernel < 1 or spec.stride < 1:
            return "Filters, kernel size and stride must each be at least 1."
        if spec.filters > 4096 or spec.kernel > 64:
            return "At most 4096 filters and a kernel of 64 pixels."
    if isinstance(spec, (MaxPool, AvgPool)):
        if spec.pool < 1 or (spec.stride is not None and spec.stride < 1):
            return "Pool size and stride must each be at least 1."
    if isinstance(spec, (Conv, MaxPool, AvgPool)) and spec.padding not in PADDINGS:
        return f"Padding must be 'valid' or 'same', not {spec.padding!r}."
    if isinstance(spec, (Conv, Dense)) and spec.activation not in ACTIVATIONS:
        return f"Unknown activation {spec.activation!r}; choose one of {', '.join(ACTIVATIONS)}."
    if isinstance(spec, Dense) and not 1 <= spec.units <= 65536:
        return "A Dense layer needs between 1 and 65,536 units."
    if isinstance(spec, Dropout) and not 0.0 <= spec.rate < 1.0:
        return f"The dropout rate must be in [0, 1), got {spec.rate:g}: 1 would drop every value."
    if spec.name is not None and (not NAME_RE.match(spec.name) or spec.name in ("logits", "probs", "image")):
        return (
            f"Layer names start with a letter and use letters, digits, '_', '-' or '.'; {spec.name!r} is not allowed."
        )
    return None


def _step(spec: LayerSpec, shape: tuple[int, ...]) -> tuple[tuple[int, ...] | None, int, str | None, str | None]:
    """(output shape, params, problem, note) of one layer on an input of ``shape`` (no batch axis)."""
    spatial = len(shape) == 3
    if isinstance(spec, (Conv, MaxPool, AvgPool)):
        what = "Conv2D" if isinstance(spec, Conv) else "Pooling"
        if not spatial:
            return (
                None,
                0,
                (
                    f"{what} needs an image-shaped feature map (height, width, channels), but the input here "
                    f"is already a vector of {shape[0]} values: move this layer before Flatten / GlobalAveragePooling."
                ),
                None,
            )
        h, w, c = shape
        window = spec.kernel if isinstance(spec, Conv) else spec.pool
        stride = spec.stride if isinstance(spec, Conv) else (spec.stride or spec.pool)
        oh, ow = (_window_out(h, window, stride, spec.padding), _window_out(w, window, stride, spec.padding))
        if oh < 1 or ow < 1:
            return (
                None,
                0,
                (
                    f"A {window}x{window} window does not fit the {h}x{w} input (output would be {oh}x{ow}): "
                    "use a smaller window, 'same' padding, or fewer pooling layers before it."
                ),
                None,
            )
        if isinstance(spec, Conv):
            return (oh, ow, spec.filters), window * window * c * spec.filters + spec.filters, None, None
        return (oh, ow, c), 0, None, None
    if isinstance(spec, BatchNorm):
        return shape, 4 * shape[-1], None, None
    if isinstance(spec, Dropout):
        return shape, 0, None, ("A rate of 0 does nothing." if spec.rate == 0 else None)
    if isinstance(spec, Flatten):
        return (
            (math.prod(shape),),
            0,
            None,
            (None if spatial else "The input is already a vector; Flatten does nothing."),
        )
    if isinstance(spec, GlobalAvgPool):
        if not spatial:
            return (
                None,
                0,
                "GlobalAveragePooling needs an image-shaped feature map, but the input here is already a vector.",
                None,
            )
        return (shape[-1],), 0, None, None
    if isinstance(spec, Dense):
        if spatial:
            h, w, c = shape
            return (
                None,
                0,
                (
                    f"Dense after a {h}x{w}x{c} feature map would act on each pixel's {c} channels separately, "
                    "not on the whole image: add a Flatten (or GlobalAveragePooling) layer before it."
                ),
                None,
            )
        return (spec.units,), shape[0] * spec.units + spec.units, None, None
    raise ModelBuildError(f"Not a layer spec: {spec!r:.80}")


def infer(
    specs: tuple[LayerSpec, ...] | list[LayerSpec], input_shape: tuple[int, int, int], num_classes: int
) -> list[Row]:
    """Each layer's output shape, parameter count and problem, without building anything.

    Args:
        specs: the layers between the input and the head.
        input_shape: (height, width, channels) of the images.
        num_classes: outputs of the head (1 gives a sigmoid head, as in the presets).

    Returns:
        Rows: the input, one per spec, then the head's ``logits`` Dense and ``probs`` activation.
        A row whose choice cannot work carries a ``problem`` instead of raising; the rows after it
        have ``output_shape`` None. ``problems(rows)`` lists them all.
    """
    specs = tuple(specs)
    rows = []
    shape: tuple[int, ...] | None = tuple(int(d) for d in input_shape)
    input_problem = None
    if len(shape) != 3 or min(shape) < 1:
        input_problem, shape = f"The input must be (height, width, channels), each at least 1; got {input_shape}.", None
    elif len(specs) > MAX_LAYERS:
        input_problem = f"{len(specs)} layers; the builder allows {MAX_LAYERS}."
    elif not any(isinstance(s, Conv) for s in specs):
        input_problem = "The model has no Conv2D layer: add at least one, ConvLens explains convolutional networks."
    rows.append(Row(-1, "image", "InputLayer", shape, 0, input_problem))
    names = layer_names(specs)
    duplicates = {n for n in names if names.count(n) > 1}
    for i, (spec, name) in enumerate(zip(specs, names)):
        problem = _check_settings(spec) or (
            f"The name '{name}' is used by another layer." if name in duplicates else None
        )
        out, params, note = None, 0, None
        if shape is not None and problem is None:
            out, params, problem, note = _step(spec, shape)
        rows.append(Row(i, name, KERAS_TYPES[spec.type], out, params, problem, note))
        shape = out
    head_problem, logits_shape, logits_params = None, None, 0
    if not isinstance(num_classes, int) or num_classes < 1:
        head_problem = f"The number of classes must be at least 1, got {num_classes}."
    elif shape is not None and len(shape) == 3:
        head_problem = (
            f"The last layer outputs a {'x'.join(map(str, shape))} feature map: add a Flatten or "
            "GlobalAveragePooling layer before the classifier."
        )
    elif shape is not None:
        logits_shape, logits_params = (num_classes,), shape[0] * num_classes + num_classes
        total = sum(r.params for r in rows) + logits_params
        if total > MAX_PARAMS:
            head_problem = (
                f"The model would have {total:,} parameters; the builder allows {MAX_PARAMS:,}. "
                "Use fewer units or more pooling."
            )
    rows.append(Row(len(specs), "logits", "Dense", logits_shape, logits_params, head_problem))
    rows.append(Row(len(specs) + 1, "probs", "Activation", logits_shape, 0))
    return rows


def problems(rows: list[Row]) -> list[str]:
    """Every problem as ``"name: message"``, in layer order; empty when the model can be built."""
    return [f"{r.name}: {r.problem}" for r in rows if r.problem]


def total_params(rows: list[Row]) -> int:
    """Sum of the rows' parameter counts."""
    return sum(r.params for r in rows)
