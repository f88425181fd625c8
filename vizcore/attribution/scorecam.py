"""Score-CAM (Wang et al., 2020): weight each channel by the class probability it alone keeps.

Each channel's activation, upsampled and scaled to [0, 1], masks the input; the masked images go
through the model in batches and the target's probability of each becomes the channel's weight:
``cam = ReLU(sum_k p_k * A_k)``. No gradients. ``max_channels`` keeps only the k channels with the
largest activation variance (or mean): Faster Score-CAM. A constant channel gets no weight.
``scorecam_cost`` says how many images that will run.
"""

from __future__ import annotations

import keras
import numpy as np

from vizcore.attribution.cost import Cost
from vizcore.attribution.engines import DEFAULT_BATCH, cam_layer, engine, forward, resolve_target, upsample
from vizcore.attribution.factory import Option, method, normalize_map
from vizcore.attribution.progress import advance
from vizcore.errors import AttributionError
from vizcore.models import predict

RANKINGS = ("variance", "mean")


def _channels(model: keras.Model, layer: str | None) -> tuple[str, int]:
    path = cam_layer(model, layer, kind="forward")
    return path, int(engine(model, "forward", path).layer_shape[-1])


def scorecam_cost(model: keras.Model, layer: str | None = None, max_channels: int | None = None) -> int:
    """Images Score-CAM runs through the model: one per kept channel, plus the first pass."""
    _, k = _channels(model, layer)
    return min(k, max_channels or k) + 1


def _one(
    model: keras.Model,
    x: np.ndarray,
    target: int | None,
    layer: str | None,
    max_channels,
    rank_by: str,
    batch_size: int,
) -> np.ndarray:
    """Raw Score-CAM map of one image, float32 (H, W)."""
    path, k = _channels(model, layer)
    t = resolve_target(model, x, target)
    acts_hwk = forward(model, x[None], path)[0][0].astype(np.float64)
    keep = np.arange(k)
    if max_channels and max_channels < k:
        rank = acts_hwk.var(axis=(0, 1)) if rank_by == "variance" else acts_hwk.mean(axis=(0, 1))
        keep = np.sort(np.argsort(-rank, kind="stable")[:max_channels])
    masks_mhw = np.stack([normalize_map(upsample(acts_hwk[..., c], x.shape[:2])) for c in keep])
    masked_mhwc = x[None] * masks_mhw[..., None]
    probs_m = predict.probabilities(model, masked_mhwc, batch_size=batch_size, on_chunk=advance)[:, t]
    probs_m = np.where(masks_mhw.max(axis=(1, 2)) > 0, probs_m, 0.0)  # a constant channel masks nothing: no weight
    cam_hw = np.maximum(np.tensordot(acts_hwk[..., keep], probs_m, axes=([-1], [0])), 0.0)
    return upsample(cam_hw, x.shape[:2])


def scorecam_maps(
    model: keras.Model,
    batch_nhwc: np.ndarray,
    target: int | None,
    layer: str | None,
    *,
    max_channels: int | None = None,
    rank_by: str = "variance",
    batch_size: int = DEFAULT_BATCH,
) -> np.ndarray:
    """Raw (>= 0) Score-CAM maps of a batch, float32 (N, H, W)."""
    if rank_by not in RANKINGS:
        raise AttributionError(f"rank_by must be one of {RANKINGS}, got '{rank_by}'.")
    return np.stack([_one(model, x, target, layer, max_channels, rank_by, batch_size) for x in batch_nhwc])


SCORECAM = method(
    "scorecam",
    scorecam_maps,
    display="relu",
    uses_layer=True,
    cost=lambda model, size_hw, layer, *, max_channels, **options: Cost(scorecam_cost(model, layer, max_channels)),
    options=(
        Option("max_channels", "int", None, "keep the k most varied channels (Faster Score-CAM); None: all", min=1),
        Option("rank_by", "choice", "variance", "how channels are ranked for max_channels", choices=RANKINGS),
    ),
    about="one forward pass per channel; no gradients",
)
scorecam = SCORECAM.fn
