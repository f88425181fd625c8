"""What to maximize: small named objectives that score every image of a batch at once.

An objective is a frozen dataclass called on the network's ``Outputs`` for a batch; it returns one
value per image, shape (N,). ``index=None`` means "the image's own target": image i is scored on
filter (or class) ``outputs.targets[i]``, which is how one batch shows a whole layer.

Objectives combine with arithmetic into a weighted ``Sum`` whose terms keep their names, so each
term can be plotted by name:

    >>> objective = Channel("conv2") + 0.5 * Neuron("conv2", index=3)
    >>> [name for name, _, _ in objective.terms()]
    ['channel', 'neuron']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import tensorflow as tf


@dataclass(frozen=True)
class Outputs:
    """What one forward pass of a batch exposes to the objectives.

    Attributes:
        layers: layer name (as the objective names it) -> activations (N, h, w, C).
        scores: pre-softmax scores (N, K), or None when no objective needs them.
        targets: int32 (N,), the filter or class each image is optimized for.
        groups: int32 (N,), images with the same group share a target (several images per filter).
        sliced: layer name -> (N, h, w, 1), the target channel only, computed without the other
            channels (the fast path for one conv layer); only set when every reader wants
            ``targets``.
        binary: ``scores`` is one binary logit z (``heads.is_binary``): class 1 is +z, class 0 is -z.
    """

    layers: dict[str, Any]
    scores: Any
    targets: Any
    groups: Any
    sliced: dict[str, Any] = field(default_factory=dict)
    binary: bool = False

    def channel(self, layer: str, index: Any) -> Any:
        """Activations (N, h, w) of channel ``index[i]`` for image i."""
        if layer in self.sliced:
            return self.sliced[layer][..., 0]
        return tf.gather(self.layers[layer], index, axis=3, batch_dims=1)


def crop_border(maps_nhw: Any, border: int | None) -> Any:
    """Drop ``border`` pixels on each side of (N, h, w[, C]) maps; None: ``auto_border``.

    Units at the border see the padding more than the image, so their mean rewards edge artefacts.
    """
    h, w = int(maps_nhw.shape[1]), int(maps_nhw.shape[2])
    b = auto_border(h, w) if border is None else int(border)
    b = min(b, (min(h, w) - 1) // 2)
    return maps_nhw[:, b : h - b, b : w - b] if b > 0 else maps_nhw


def auto_border(h: int, w: int) -> int:
    """The border excluded by default: 1/16 of the shorter side of the map, at least 1 from 8x8 up.

    More leaves the image's margin without gradient (a grey frame); none rewards edge artefacts.
    """
    side = min(h, w)
    return max(1, side // 16) if side >= 8 else 0


class Objective:
    """Base of the objectives: arithmetic that builds a weighted ``Sum``."""

    name = "objective"

    def terms(self) -> tuple[tuple[str, float, Objective], ...]:
        """The leaves as (name, weight, objective)."""
        return ((self.name, 1.0, self),)

    @property
    def layers(self) -> tuple[str, ...]:
        """Layers whose activations this objective reads."""
        return ()

    @property
    def needs_scores(self) -> bool:
        return False

    @property
    def sliced_layer(self) -> str | None:
        """The layer when only each image's target channel of it is read (fast path), else None."""
        return None

    def _index(self, outputs: Outputs, index: int | None) -> Any:
        if index is None:
            return outputs.targets
        return tf.fill(tf.shape(outputs.targets), tf.constant(index, tf.int32))

    def __add__(self, other: Objective) -> Sum:
        return Sum(_pairs(self) + _pairs(other))

    def __sub__(self, other: Objective) -> Sum:
        return self + (-1.0) * other

    def __mul__(self, weight: float) -> Sum:
        return Sum(tuple((w * float(weight), o) for w, o in _pairs(self)))

    __rmul__ = __mul__

    def __neg__(self) -> Sum:
        return (-1.0) * self


def _pairs(objective: Objective) -> tuple[tuple[float, Objective], ...]:
    return objective.weighted if isinstance(objective, Sum) else ((1.0, objective),)


class _OneChannel(Objective):
    """Shared by objectives on one channel of one layer (``layer``, ``index`` fields)."""

    @property
    def layers(self) -> tuple[str, ...]:
        return (self.layer,)

    @property
    def sliced_layer(self) -> str | None:
        return self.layer if self.index is None else None


@dataclass(frozen=True)
class Channel(_OneChannel):
    """Mean activation of one channel over the map, border excluded (the filter's "feature").

    Args:
        layer: layer path or unique name.
        index: the channel; None: each image's target.
        border: pixels dropped on each side of the map; None: ``auto_border`` (1/16 of the side).
    """

    layer: str
    index: int | None = None
    border: int | None = None
    name = "channel"

    def __call__(self, outputs: Outputs) -> Any:
        maps = crop_border(outputs.channel(self.layer, self._index(outputs, self.index)), self.border)
        return tf.reduce_mean(maps, axis=[1, 2])


@dataclass(frozen=True)
class Neuron(_OneChannel):
    """One unit: the activation of a channel at one position (default: the map's centre).

    Args:
        layer: layer path or unique name.
        index: the channel; None: each image's target.
        y, x: the position in the activation map; None: its centre.
    """

    layer: str
    index: int | None = None
    y: int | None = None
    x: int | None = None
    name = "neuron"

    def __call__(self, outputs: Outputs) -> Any:
        maps = outputs.channel(self.layer, self._index(outputs, self.index))
        h, w = int(maps.shape[1]), int(maps.shape[2])
        return maps[:, h // 2 if self.y is None else self.y, w // 2 if self.x is None else self.x]


@dataclass(frozen=True)
class ClassLogit(Objective):
    """A class's pre-softmax score (class model visualization, Simonyan et al. 2014).

    A binary head (one logit z) has two classes, as in attribution: class 1 scores +z, class 0 -z.

    Args:
        index: the class; None: each image's target.
    """

    index: int | None = None
    name = "class_logit"

    def __call__(self, outputs: Outputs) -> Any:
        index = self._index(outputs, self.index)
        if outputs.binary:
            sign = 2.0 * tf.cast(index, outputs.scores.dtype) - 1.0  # class 1: +1, class 0: -1
            return sign * outputs.scores[:, 0]
        return tf.gather(outputs.scores, index, axis=1, batch_dims=1)

    @property
    def needs_scores(self) -> bool:
        return True


@dataclass(frozen=True)
class Direction(Objective):
    """A layer's activation along a direction (Lucid's ``direction_neuron_cossim``; Carter et al. 2019).

    The activation is the layer's output averaged over positions (a vector layer as it is), the
    pooled vector that ``embedding.layer_features`` returns, so an atlas cell's mean vector is a
    direction in the same space. The value is ``dot(a, d) * max(cos(a, d), 0.1) ** cossim_power``:
    the plain dot product (power 0) is raised most by whatever makes the activation large, so
    neighbouring directions give the same image; the cosine factor keeps each image on its own
    direction (the floor keeps a gradient where the start image points away).

    Args:
        layer: layer path or unique name; its output is (h, w, C) or (C,).
        directions: one vector (C,) per target; image i is scored on ``directions[targets[i]]``.
        index: a fixed row of ``directions`` for every image; None: each image's target.
        cossim_power: 0: the plain dot product.

    Example:
        >>> fv.optimize(model, Direction("fc", tuple(map(tuple, centres))), range(len(centres)))
    """

    layer: str
    directions: tuple[tuple[float, ...], ...]
    index: int | None = None
    cossim_power: float = 1.0
    name = "direction"

    def __call__(self, outputs: Outputs) -> Any:
        acts = outputs.layers[self.layer]
        pooled = (
            tf.reduce_mean(acts, axis=list(range(1, len(acts.shape) - 1))) if len(acts.shape) > 2 else acts
        )  # (N, C)
        table = tf.constant(self.directions, tf.float32)  # (targets, C)
        if int(table.shape[-1]) != int(pooled.shape[-1]):
            raise ValueError(
                f"The directions have {table.shape[-1]} values; layer '{self.layer}' has {pooled.shape[-1]} channels."
            )
        d = tf.gather(table, self._index(outputs, self.index))  # (N, C)
        dot = tf.reduce_sum(pooled * d, axis=1)
        if not self.cossim_power:
            return dot
        cos = dot / (tf.norm(pooled, axis=1) * tf.norm(d, axis=1) + 1e-4)
        return dot * tf.maximum(cos, 0.1) ** self.cossim_power

    @property
    def layers(self) -> tuple[str, ...]:
        return (self.layer,)


@dataclass(frozen=True)
class Diversity(Objective):
    """Similarity of an image's style to the other images of its group (Lucid's diversity).

    Style is the normalized Gram matrix of the layer's channels. The value is the mean cosine
    similarity to the group's other images (0 for an image alone), so subtract it, weighted, to push
    several images of one filter apart: ``Channel("conv2") - 0.5 * Diversity("conv2")``.
    """

    layer: str
    name = "diversity"

    def __call__(self, outputs: Outputs) -> Any:
        acts = outputs.layers[self.layer]
        n, c = tf.shape(acts)[0], int(acts.shape[-1])
        flat = tf.reshape(acts, [n, -1, c])
        grams = tf.reshape(tf.matmul(flat, flat, transpose_a=True), [n, c * c])
        grams = tf.math.l2_normalize(grams, axis=1, epsilon=1e-10)
        similarity = tf.matmul(grams, grams, transpose_b=True)  # (N, N)
        same = tf.equal(outputs.groups[:, None], outputs.groups[None, :])
        others = tf.cast(tf.logical_and(same, tf.logical_not(tf.eye(n, dtype=tf.bool))), tf.float32)
        count = tf.maximum(tf.reduce_sum(others, axis=1), 1.0)
        return tf.reduce_sum(similarity * others, axis=1) / count

    @property
    def layers(self) -> tuple[str, ...]:
        return (self.layer,)


@dataclass(frozen=True)
class Sum(Objective):
    """A weighted combination of objectives: sum of weight * term."""

    weighted: tuple[tuple[float, Objective], ...]
    name = "sum"

    def __call__(self, outputs: Outputs) -> Any:
        return tf.add_n([w * term(outputs) for w, term in self.weighted])

    def terms(self) -> tuple[tuple[str, float, Objective], ...]:
        names = unique_names([o.name for _, o in self.weighted])
        return tuple((n, w, o) for n, (w, o) in zip(names, self.weighted))

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(layer for _, o in self.weighted for layer in o.layers))

    @property
    def needs_scores(self) -> bool:
        return any(o.needs_scores for _, o in self.weighted)


def unique_names(names: list[str]) -> list[str]:
    """Names made unique by a suffix: ['channel', 'channel'] -> ['channel', 'channel_2']."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out
