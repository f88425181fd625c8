"""Embedding view: a layer's activations over a dataset (feature maps pooled) projected to 2-D.

PCA is plain NumPy (an SVD of the centred features); t-SNE comes from openTSNE (see
docs/embedding_choice.md for why that library).

Example:
    >>> feats = layer_features(model, "fc", x_nhwc)          # (N, D)
    >>> pca(feats).shape, tsne(feats, seed=0).shape
    ((5000, 2), (5000, 2))
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
from keras import ops

from vizcore.cache import per_model
from vizcore.errors import InputShapeError
from vizcore.models import batches, graph

PROJECTIONS = ("PCA", "t-SNE")
IDENTITY_AT_INFERENCE = frozenset(
    {
        "Dropout",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "GaussianNoise",
        "GaussianDropout",
        "AlphaDropout",
        "ActivityRegularization",
    }
)
Progress = Callable[[int, int], None]  # (images done, images in all)


def _pooled(model: keras.Model, path: str) -> keras.Model:
    """A sub-model: image batch -> (N, D) the layer's output, spatial maps averaged over positions."""

    def build() -> keras.Model:
        traced = graph.trace(model)
        out = traced[path].output
        if len(out.shape) == 4:
            out = ops.mean(out, axis=(1, 2))
        elif len(out.shape) != 2:
            raise InputShapeError(
                f"Layer '{path}' outputs shape {tuple(out.shape)}; the embedding needs a feature map or a vector."
            )
        return keras.Model(traced.input, out, name=f"{model.name}_embedding")

    return per_model(model, ("embedding.pooled", path), build, limit=8)


def embedding_layers(model: keras.Model) -> tuple[str, ...]:
    """Layers whose output is a feature map or a vector (the model's own last layer excluded), in order."""
    rows = [r for r in graph.layer_table(model) if len(r.output_shape) in (2, 4) and r.type not in ("InputLayer",)]
    rows = [
        r for r in rows if not any(o.path.startswith(r.path + graph.SEP) for o in rows)
    ]  # a nested model: its inner layers
    return tuple(r.path for r in rows[:-1])


def default_layer(model: keras.Model) -> str:
    """The last vector layer narrower or wider than the scores (a pooled or dense layer, not a dropout),
    else the last choice."""
    choices = embedding_layers(model)
    traced = graph.trace(model)
    units = traced.output.shape[-1]
    kinds = {r.path: r.type for r in graph.layer_table(model)}
    vectors = [
        p
        for p in choices
        if len(traced[p].output.shape) == 2
        and traced[p].output.shape[-1] != units
        and kinds.get(p) not in IDENTITY_AT_INFERENCE
    ]  # a Dropout repeats the layer before it
    return (vectors or list(choices))[-1]


def layer_features(
    model: keras.Model, layer: str, x_nhwc: np.ndarray, *, batch_size: int = 500, on_progress: Progress | None = None
) -> np.ndarray:
    """float32 (N, D): the layer's output for each image, a feature map averaged over its positions.

    Raises:
        InputShapeError: the images do not fit the model, or the layer is neither a map nor a vector.
    """
    path = graph.resolve_layer(model, layer)
    x = batches.as_batch(model, x_nhwc)
    sub = _pooled(model, path)
    parts = []
    for lo in range(0, len(x), batch_size):
        parts.append(np.asarray(sub.predict_on_batch(x[lo : lo + batch_size]), np.float32))
        if on_progress is not None:
            on_progress(min(lo + batch_size, len(x)), len(x))
    return np.concatenate(parts)


def pca(features: np.ndarray, dims: int = 2) -> np.ndarray:
    """float32 (N, dims): the centred features on their first principal axes (NumPy SVD).

    Each axis's sign is fixed so that its largest loading is positive, so the picture does not flip
    between runs. Fewer features than ``dims`` are padded with zero columns.
    """
    x = np.asarray(features, np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    vt = vt[:dims]
    signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(axis=1)])
    out = x @ (vt * np.where(signs == 0, 1.0, signs)[:, None]).T
    if out.shape[1] < dims:
        out = np.pad(out, ((0, 0), (0, dims - out.shape[1])))
    return out.astype(np.float32)


def explained_variance(features: np.ndarray, dims: int = 2) -> np.ndarray:
    """Share of the variance on each of the first ``dims`` principal axes."""
    x = np.asarray(features, np.float64)
    s = np.linalg.svd(x - x.mean(axis=0, keepdims=True), compute_uv=False)
    total = float((s**2).sum())
    return (s[:dims] ** 2 / total) if total > 0 else np.zeros(min(dims, len(s)))


def tsne(features: np.ndarray, *, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """float32 (N, 2) t-SNE of the features (openTSNE: FFT-accelerated, PCA start); a perplexity too big
    for N is lowered."""
    from openTSNE import TSNE  # imported on use: a page that shows PCA only never pays for it

    x = np.asarray(features, np.float64)
    if len(x) < 4:
        return pca(x)
    perplexity = float(min(perplexity, (len(x) - 1) / 3))
    return np.asarray(
        TSNE(n_components=2, perplexity=perplexity, initialization="pca", random_state=seed, n_jobs=2).fit(x),
        np.float32,
    )


def project(features: np.ndarray, method: str, *, seed: int = 0) -> np.ndarray:
    """float32 (N, 2) by one of ``PROJECTIONS``."""
    if method == "PCA":
        return pca(features)
    if method == "t-SNE":
        return tsne(features, seed=seed)
    raise ValueError(f"method must be one of {PROJECTIONS}, got {method!r}")
