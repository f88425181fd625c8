"""Attribution: which pixels made the model say what it said. One interface for every method.

Every method is ``fn(model, image_hwc, *, target=None, layer=None, **options) -> heatmap_hw``:
``image_hwc`` is one preprocessed float32 image in the model's value range; the result is float32
(H, W) at the input's size, finite, in [0, 1]. ``target=None`` explains the top class; ``layer=None``
is the last conv layer (CAM methods; the others ignore it). Scores are pre-softmax; a binary head
(one sigmoid or linear unit) has targets 1 (+logit) and 0 (-logit).

Each method is defined once, in its own file, by ``method`` (``factory``), from its raw batched
computation (the compiled steps of ``engines``), its display rule and its cost (``cost``); every
method reports progress and can be cancelled (``progress``). ``METHOD_INFO`` (label -> MethodInfo,
in display order) is the registry: ``info.fn`` the public function, ``info.batch`` the raw maps of
a batch, ``info.cost_of`` what a run costs, ``info.options`` the options a page offers. ``METHODS``
is label -> function, for a selectbox. What the model predicts is ``vizcore.models.predict``.

Example:
    >>> from vizcore.attribution import METHODS, METHOD_INFO
    >>> from vizcore.models import predict
    >>> [(c, round(p, 2)) for c, p in predict.top_k(model, x_hwc, 3)]
    [(7, 0.98), (2, 0.01), (3, 0.0)]
    >>> heatmap_hw = METHODS["Grad-CAM"](model, x_hwc, target=7, layer="conv2")
    >>> str(METHOD_INFO["Score-CAM"].cost_of(model, x_hwc.shape[:2], layer="conv2"))
    '65 forward passes'
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from vizcore.attribution.cost import Cost, one_gradient, pass_seconds
from vizcore.attribution.eigencam import EIGENCAM, eigencam
from vizcore.attribution.engines import resolve_target
from vizcore.attribution.factory import DISPLAYS, Method, MethodInfo, Option, method, normalize_map
from vizcore.attribution.gradcam import GRADCAM, gradcam
from vizcore.attribution.gradcam_plus_plus import GRADCAM_PLUS_PLUS, gradcam_plus_plus
from vizcore.attribution.gradient_x_input import GRADIENT_X_INPUT, gradient_x_input
from vizcore.attribution.guided_backprop import GUIDED_BACKPROP, guided_backprop
from vizcore.attribution.guided_gradcam import GUIDED_GRADCAM, guided_gradcam
from vizcore.attribution.integrated_gradients import INTEGRATED_GRADIENTS, integrated_gradients
from vizcore.attribution.layercam import LAYERCAM, layercam
from vizcore.attribution.lime import (
    LIME,
)  # the module stays `attribution.lime` (explain, view); its function is METHODS["LIME"]
from vizcore.attribution.occlusion import OCCLUSION, occlusion, occlusion_cost
from vizcore.attribution.progress import Progress
from vizcore.attribution.rise import RISE, rise, rise_masks
from vizcore.attribution.saliency import SALIENCY, saliency
from vizcore.attribution.scorecam import SCORECAM, scorecam, scorecam_cost
from vizcore.attribution.smoothgrad import noisy_copies, smoothgrad
from vizcore.errors import AttributionCancelled, AttributionError

smoothgrad_saliency = smoothgrad(saliency)

METHOD_INFO: Mapping[str, MethodInfo] = MappingProxyType(
    {
        "Grad-CAM": GRADCAM,
        "Grad-CAM++": GRADCAM_PLUS_PLUS,
        "Score-CAM": SCORECAM,
        "LayerCAM": LAYERCAM,
        "EigenCAM": EIGENCAM,
        "Saliency": SALIENCY,
        "Gradient × Input": GRADIENT_X_INPUT,
        "Guided Backprop": GUIDED_BACKPROP,
        "Guided Grad-CAM": GUIDED_GRADCAM,
        "Integrated Gradients": INTEGRATED_GRADIENTS,
        "Occlusion": OCCLUSION,
        "RISE": RISE,
        "SmoothGrad (Saliency)": smoothgrad_saliency.info,
        "LIME": LIME,
    }
)
METHODS: Mapping[str, Method] = MappingProxyType({label: info.fn for label, info in METHOD_INFO.items()})

__all__ = [
    "DISPLAYS",
    "METHODS",
    "METHOD_INFO",
    "AttributionCancelled",
    "AttributionError",
    "Cost",
    "Method",
    "MethodInfo",
    "Option",
    "Progress",
    "eigencam",
    "gradcam",
    "gradcam_plus_plus",
    "gradient_x_input",
    "guided_backprop",
    "guided_gradcam",
    "integrated_gradients",
    "layercam",
    "method",
    "noisy_copies",
    "normalize_map",
    "occlusion",
    "occlusion_cost",
    "one_gradient",
    "pass_seconds",
    "resolve_target",
    "rise",
    "rise_masks",
    "saliency",
    "scorecam",
    "scorecam_cost",
    "smoothgrad",
    "smoothgrad_saliency",
]
