"""Feature visualizations for people: uint8 images and a ZIP of PNGs with the exact settings.

Example:
    >>> result = optimize(loaded, Channel("conv2"), range(64))
    >>> data = export_zip(result.images_nhwc, result.settings, input_range=result.input_range,
    ...                   names=[f"conv2_filter_{t:03d}" for t in result.targets])
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vizcore.featurevis import ranges
from vizcore.featurevis.ranges import InputRange
from vizcore.featurevis.settings import Settings, settings_json
from vizcore.present import render


def to_uint8(images_nhwc: np.ndarray, input_range: InputRange) -> np.ndarray:
    """Images in the model's range -> uint8 (N, H, W, C), RGB or grey, for display."""
    return np.rint(input_range.to_unit(images_nhwc) * 255.0).astype(np.uint8)


def export_zip(
    images_nhwc: np.ndarray,
    settings: Settings,
    *,
    input_range: InputRange | None = None,
    preprocess: str = "unit",
    names: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    upscale: int = 1,
) -> bytes:
    """A ZIP with one PNG per image and ``settings.json`` (settings, input range, metadata).

    Args:
        images_nhwc: images in the model's input range, e.g. ``FeatureVis.images_nhwc``.
        settings: the settings that made them.
        input_range: the model's range (``FeatureVis.input_range``); else from ``preprocess``.
        names: file stems, one per image; default 'image_000', 'image_001', ...
        metadata: anything else to record (model, layer, seed, targets, steps): JSON-serializable.
        upscale: integer nearest-neighbour enlargement of each PNG (28x28 is tiny).
    """
    images = np.asarray(images_nhwc)
    in_range = input_range or ranges.input_range(images.shape[-1], preprocess)
    names = list(names) if names is not None else [f"image_{i:03d}" for i in range(len(images))]
    if len(names) != len(images):
        raise ValueError(f"{len(names)} names for {len(images)} images.")
    tiles = to_uint8(images, in_range)
    info = {
        "settings": json.loads(settings_json(settings)),
        "input_range": {"low": in_range.low, "high": in_range.high, "bgr": in_range.bgr},
        "metadata": dict(metadata or {}),
        "files": [f"{name}.png" for name in names],
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, tile in zip(names, tiles):
            zf.writestr(f"{name}.png", render.to_png(render.upscale(tile, upscale)))
        zf.writestr("settings.json", json.dumps(info, indent=2))
    return buf.getvalue()
