"""Attribution: which pixels made the model say what it said. One interface for every method.

Every method is ``fn(model, image_hwc, *, target=None, layer=None, **options) -> heatmap_hw``:
``image_hwc`` is one preprocessed float32 image in the model's value range; the result is float32
(H, W) at the input's size, finite, in [0, 1]. ``target=None`` explains the top class; ``layer=None``
is the last conv layer (CAM methods; the others ignore it). Scores are pre-softmax; a single
sigmoid unit is binary (target 1 -> +logit, target 0 -> -logit). Each method also has a
``*_raw`` function returning its un-normalized map (same shape and dtype).

``METHODS`` (label -> function, in display order) feeds a selectbox; ``METHOD_INFO`` (label ->
MethodInfo) tells a page whether a method takes a layer and which options it accepts.

Example:
    >>> from vizcore.attribution import METHODS, METHOD_INFO, top_k
    >>> [(c, round(p, 2)) for c, p in top_k(model, x_hwc, 3)]
    [(7, 0.98), (2, 0.01), (3, 0.0)]
    >>> heatmap_hw = METHODS["Grad-CAM"](model, x_hwc, target=7, layer="conv2")
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from vizcore.attribution.base import (
    CACHE,
    AttributionError,
    Method,
    MethodInfo,
    Option,
    normalize_map,
    predict_scores,
    resolve_target,
    top_k,
)
from vizcore.attribution.gradcam import gradcam, gradcam_batch, gradcam_raw
from vizcore.attribution.gradcam_plus_plus import gradcam_plus_plus, gradcam_plus_plus_batch, gradcam_plus_plus_raw
from vizcore.attribution.gradient_x_input import gradient_x_input, gradient_x_input_batch, gradient_x_input_raw
from vizcore.attribution.integrated_gradients import integrated_gradients, integrated_gradients_raw
from vizcore.attribution.layercam import layercam, layercam_batch, layercam_raw
from vizcore.attribution.occlusion import occlusion, occlusion_cost, occlusion_raw
from vizcore.attribution.saliency import saliency, saliency_batch, saliency_raw
from vizcore.attribution.scorecam import scorecam, scorecam_cost, scorecam_raw
from vizcore.attribution.smoothgrad import noisy_copies, smoothgrad

smoothgrad_saliency = smoothgrad(saliency)

_SMOOTH_OPTIONS = (
    Option("samples", "int", 16, "noisy copies, run as one batch", min=1, max=64),
    Option("noise", "float", 0.15, "noise sigma as a fraction of the image's value range", min=0.0, max=0.5),
    Option("seed", "int", 0, "seed of the noise: the same seed gives the same map", min=0),
)

METHOD_INFO: Mapping[str, MethodInfo] = MappingProxyType(
    {
        "Grad-CAM": MethodInfo(gradcam, True, about="channel weights = mean gradient; 1 forward + backward"),
        "Grad-CAM++": MethodInfo(gradcam_plus_plus, True, about="pixel-weighted positive gradients; 1 forward + backward"),
        "Score-CAM": MethodInfo(
            scorecam,
            True,
            (
                Option("max_channels", "int", None, "keep the k most varied channels (Faster Score-CAM); None: all", min=1),
                Option("rank_by", "choice", "variance", "how channels are ranked for max_channels", choices=("variance", "mean")),
            ),
            about="one forward pass per channel (see scorecam_cost); no gradients",
        ),
        "LayerCAM": MethodInfo(layercam, True, about="element-wise positive gradients; good on early layers"),
        "Saliency": MethodInfo(saliency, False, about="max |gradient| over channels"),
        "Gradient × Input": MethodInfo(gradient_x_input, False, about="|gradient x pixel|, summed over channels"),
        "Integrated Gradients": MethodInfo(
            integrated_gradients,
            False,
            (
                Option("baseline", "choice", "black", "the path's start: the image's darkest value per channel, or 0", choices=("black", "zeros")),
                Option("steps", "int", 32, "points on the path (gradients, run in batches)", min=2, max=256),
            ),
            about="gradients along the path from a baseline; raw map sums to S(x) - S(baseline)",
        ),
        "Occlusion": MethodInfo(
            occlusion,
            False,
            (
                Option("patch", "int", None, "square side in pixels; None: 1/8 of the image", min=1),
                Option("stride", "int", None, "step between windows; None: half the patch", min=1),
                Option("fill", "float", 0.0, "value of the covered pixels (or 'mean')"),
            ),
            about="score drop when a patch is covered; one forward pass per window (see occlusion_cost)",
        ),
        "SmoothGrad (Saliency)": MethodInfo(smoothgrad_saliency, False, _SMOOTH_OPTIONS, about="saliency averaged over noisy copies"),
    }
)
METHODS: Mapping[str, Method] = MappingProxyType({label: info.fn for label, info in METHOD_INFO.items()})

__all__ = [
    "CACHE",
    "METHODS",
    "METHOD_INFO",
    "AttributionError",
    "Method",
    "MethodInfo",
    "Option",
    "gradcam",
    "gradcam_batch",
    "gradcam_plus_plus",
    "gradcam_plus_plus_batch",
    "gradcam_plus_plus_raw",
    "gradcam_raw",
    "gradient_x_input",
    "gradient_x_input_batch",
    "gradient_x_input_raw",
    "integrated_gradients",
    "integrated_gradients_raw",
    "layercam",
    "layercam_batch",
    "layercam_raw",
    "noisy_copies",
    "normalize_map",
    "occlusion",
    "occlusion_cost",
    "occlusion_raw",
    "predict_scores",
    "resolve_target",
    "saliency",
    "saliency_batch",
    "saliency_raw",
    "scorecam",
    "scorecam_cost",
    "scorecam_raw",
    "smoothgrad",
    "smoothgrad_saliency",
    "top_k",
]
