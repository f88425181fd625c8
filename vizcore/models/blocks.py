"""Blocks: a deep network's layers grouped by block or stage, and the layers worth explaining.

A 155-layer MobileNetV2 is read block by block. Keras applications name their layers by block
(``block_3_expand``, ``conv4_block2_out``, ``block2a_se_excite``, ``stem_conv``, ``top_bn``);
``block_of`` reads those names. Layers of a named model that match no pattern join the group
before them, or form the ``stem`` (before the first block) and the ``top`` (after the last).
A model with no block names (most user models) is cut into stages where the resolution drops:
a pooling layer ends a stage, a layer that shrinks the maps by 1.5x or more starts one; the
vectors after the last map (flatten, dense, scores) are the ``head``.

A block's output is its last map layer (the tensor that leaves it: after BatchNorm, activation
and residual add). The default layer to explain is the last convolution followed through its
BatchNorm, activation and add, so MobileNetV2 gives ``out_relu`` and not the pre-BatchNorm
``Conv_1``, while a small CNN with fused ReLUs keeps its last convolution.

Example:
    >>> [g.name for g in layer_groups(mobilenet_v2)][:3]
    ['stem', 'expanded_conv', 'block_1']
    >>> default_target_layer(mobilenet_v2), default_target_layer(mnist_cnn)
    ('out_relu', 'conv2')
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import keras

from vizcore.cache import per_model
from vizcore.errors import NotAnImageModelError
from vizcore.models import graph

# (pattern on a layer's own name, group name from its first group); the first match wins
PATTERNS = (
    (re.compile(r"^(conv\d+_block\d+)_"), r"\1"),  # ResNet, DenseNet: conv4_block2_out
    (re.compile(r"^(block\d+[a-z])_"), r"\1"),  # EfficientNet: block2a_expand_conv
    (re.compile(r"^(block_\d+)_"), r"\1"),  # MobileNetV2: block_3_project_BN
    (re.compile(r"^(expanded_conv)_"), r"\1"),  # MobileNetV2's first block
    (re.compile(r"^(block\d+)_"), r"\1"),  # VGG, Xception: block4_conv1
    (re.compile(r"^conv_(?:dw|pw|pad)_(\d+)"), r"block_\1"),  # MobileNet: conv_dw_3_relu
    (re.compile(r"^(stem|top)_"), r"\1"),  # EfficientNet: stem_conv, top_activation
    (re.compile(r"^(pool\d+)_"), r"\1"),  # DenseNet transitions, ResNet's pool1
)
# identity at inference: never a block's output, never the default
PASS_THROUGH = frozenset(
    {
        "Dropout",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "AlphaDropout",
        "GaussianDropout",
        "GaussianNoise",
        "ActivityRegularization",
        "Identity",
    }
)
POOLING = frozenset({"MaxPooling2D", "AveragePooling2D"})
NORMALIZATION = frozenset({"BatchNormalization", "LayerNormalization", "GroupNormalization"})
# what may follow a convolution and still be "its output": normalization, activation, merges
AFTER_CONV = NORMALIZATION | frozenset(
    {
        "Activation",
        "ReLU",
        "LeakyReLU",
        "PReLU",
        "ELU",
        "Softmax",
        "Add",
        "Concatenate",
        "Multiply",
        "Maximum",
        "Average",
    }
)
STAGE_DROP = 1.5  # a layer whose maps are this much smaller than the previous ones starts a stage
BN_WINDOW = 4  # a BatchNormalization this close after a convolution normalizes it


@dataclass(frozen=True)
class Group:
    """One block or stage: its layers in order and its output (the last map layer, or None)."""

    name: str
    layers: tuple[str, ...]
    output: str | None


def block_of(path: str) -> str:
    """The block a layer's name places it in ('block_3', 'conv4_block2', 'top'), or '' if none.

    Example:
        >>> block_of("mobilenetv2/block_3_project_BN"), block_of("conv2d_1")
        ('block_3', '')
    """
    name = path.rsplit(graph.SEP, 1)[-1]
    for pattern, repl in PATTERNS:
        match = pattern.match(name)
        if match:
            return match.expand(repl)
    return ""


def _leaf_rows(model: keras.Model) -> list[graph.LayerInfo]:
    rows = graph.layer_table(model)
    containers = {p.rsplit(graph.SEP, 1)[0] for p in (r.path for r in rows) if graph.SEP in p}
    return [r for r in rows if r.path not in containers]


def _is_map(row: graph.LayerInfo) -> bool:
    return len(row.output_shape) == 4


def _output(rows: Sequence[graph.LayerInfo]) -> str | None:
    maps = [r.path for r in rows if _is_map(r) and r.type not in PASS_THROUGH]
    return maps[-1] if maps else None


def _named_runs(rows: Sequence[graph.LayerInfo]) -> list[tuple[str, list[graph.LayerInfo]]]:
    """Group by block names: unnamed layers join the block before, or form 'stem' / 'top'."""
    names = [block_of(r.path) for r in rows]
    last = max(i for i, n in enumerate(names) if n)
    runs: list[tuple[str, list[graph.LayerInfo]]] = []
    for i, (row, name) in enumerate(zip(rows, names)):
        if not name:
            name = "top" if i > last else (runs[-1][0] if runs else "stem")
        if runs and runs[-1][0] == name:
            runs[-1][1].append(row)
        else:
            runs.append((name, [row]))
    return runs


def _height(row: graph.LayerInfo) -> int | None:
    return row.output_shape[1] if _is_map(row) else None


def _stages(rows: Sequence[graph.LayerInfo]) -> list[tuple[str, list[graph.LayerInfo]]]:
    """Cut a model with no block names into stages where the resolution drops, then the head."""
    last_map = max((i for i, r in enumerate(rows) if _is_map(r)), default=-1)
    stages: list[list[graph.LayerInfo]] = []
    closed, previous = True, None
    for row in rows[: last_map + 1]:
        h = _height(row)
        if row.type in PASS_THROUGH and stages:
            stages[-1].append(row)
            continue
        drops = h is not None and previous is not None and h * STAGE_DROP <= previous
        if closed or (drops and row.type not in POOLING):
            stages.append([])
        stages[-1].append(row)
        closed = row.type in POOLING
        previous = h if h is not None else previous
    runs = [(f"stage_{i + 1}", s) for i, s in enumerate(stages)]
    if last_map + 1 < len(rows):
        runs.append(("head", list(rows[last_map + 1 :])))
    return runs


def _unique(runs: list[tuple[str, list[graph.LayerInfo]]]) -> tuple[Group, ...]:
    seen: dict[str, int] = {}
    groups = []
    for name, rows in runs:
        seen[name] = seen.get(name, 0) + 1
        shown = name if seen[name] == 1 else f"{name} #{seen[name]}"
        groups.append(Group(shown, tuple(r.path for r in rows), _output(rows)))
    return tuple(groups)


def group_rows(rows: Sequence[graph.LayerInfo]) -> tuple[Group, ...]:
    """Group layer-table rows (in model order) by block name, or by stage when none has one."""
    rows = list(rows)
    if not rows:
        return ()
    runs = _named_runs(rows) if any(block_of(r.path) for r in rows) else _stages(rows)
    return _unique(runs)


def layer_groups(model: keras.Model) -> tuple[Group, ...]:
    """Every layer (nested ones too, containers left out) grouped by block or stage, in order.

    Example:
        >>> g = layer_groups(resnet50)[2]; g.name, g.output
        ('conv2_block1', 'conv2_block1_out')
    """
    return per_model(model, "blocks.groups", lambda: group_rows(_leaf_rows(model)), limit=1)


def block_outputs(model: keras.Model) -> tuple[str, ...]:
    """The map layer that ends each block or stage, in order (its Add, activation or pooling)."""
    return tuple(g.output for g in layer_groups(model) if g.output is not None)


def _facts(model: keras.Model) -> tuple[tuple[str, ...], str]:
    rows = _leaf_rows(model)
    convs = [i for i, r in enumerate(rows) if r.is_conv]
    if not convs:
        raise NotAnImageModelError(graph.no_conv_message(model))
    default = _followed(rows, convs[-1])
    normalized = _normalized(rows, convs)
    plain = [
        rows[i].path for i in convs if i not in normalized and _is_map(rows[i]) and rows[i].output_shape[1:3] != (1, 1)
    ]
    wanted = set(plain) | set(block_outputs(model)) | {default}
    return tuple(r.path for r in rows if r.path in wanted), default


def _followed(rows: Sequence[graph.LayerInfo], start: int) -> str:
    """The conv at ``start`` followed through the normalization, activations and merges after it."""
    size = rows[start].output_shape[1:3]
    best = rows[start].path
    for row in rows[start + 1 :]:
        if not _is_map(row) or row.output_shape[1:3] != size:
            break
        if row.type in PASS_THROUGH:
            continue
        if row.type not in AFTER_CONV:
            break
        best = row.path
    return best


def _normalized(rows: Sequence[graph.LayerInfo], convs: Sequence[int]) -> set[int]:
    """Convs whose output a BatchNormalization (or another normalization) takes soon after."""
    claimed: set[int] = set()
    out = set()
    for i in convs:
        for j in range(i + 1, min(len(rows), i + 1 + BN_WINDOW)):
            row = rows[j]
            if j not in claimed and row.type in NORMALIZATION and row.output_shape == rows[i].output_shape:
                claimed.add(j)
                out.add(i)
                break
    return out


def cam_layers(model: keras.Model) -> tuple[str, ...]:
    """Layers a CAM method can explain, in order: block outputs and the convs not followed by BN.

    Raises:
        NotAnImageModelError: the model has no convolution layer.
    """
    return per_model(model, "blocks.facts", lambda: _facts(model), limit=1)[0]


def default_target_layer(model: keras.Model) -> str:
    """The default layer to explain: the last conv followed through its BatchNorm, activation and add.

    MobileNetV2 gives ``out_relu``, ResNet50 ``conv5_block3_out``, EfficientNetB0
    ``top_activation``; a CNN with fused activations keeps its last conv (``conv2``).

    Raises:
        NotAnImageModelError: the model has no convolution layer.
    """
    return per_model(model, "blocks.facts", lambda: _facts(model), limit=1)[1]


def sweep_layers(model: keras.Model, limit: int = 12) -> tuple[str, ...]:
    """At most ``limit`` of ``cam_layers``, evenly spaced from the first to the last."""
    layers = cam_layers(model)
    if len(layers) <= limit:
        return layers
    picks = sorted({round(i * (len(layers) - 1) / (limit - 1)) for i in range(limit)})
    return tuple(layers[i] for i in picks)


def layer_labels(model: keras.Model) -> dict[str, str]:
    """A label per layer path for pickers: ``'block_3 · block_3_project_BN'`` (type to search)."""
    return {path: f"{g.name} · {path}" for g in layer_groups(model) for path in g.layers}
