"""Optimisation settings as one frozen dataclass, defaults per input size, their JSON form, and the
Filters page's default gallery (``gallery_default``).

Lucid's defaults (pad 12 + jitter 8, scales up to 1.2, rotations of 10 degrees, 512 steps) were
tuned on 224x224 ImageNet networks; on a 28x28 digit model a jitter of 8 pixels is a third of the
image, and the result is noise. ``default_settings`` picks the amounts by image size.

Example:
    >>> s = default_settings(InputSpec(28, 28, 1))
    >>> settings_from_json(settings_json(s)) == s
    True
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vizcore.featurevis.fitting import MIN_FITTED_SIDE, texture_size
from vizcore.featurevis.objectives import Channel
from vizcore.featurevis.params import FourierParam, Param, PixelParam, TiledParam
from vizcore.featurevis.ranges import model_and_mode
from vizcore.featurevis.regularizers import L2, Blur, Regularizer, TotalVariation
from vizcore.featurevis.transforms import Jitter, Pad, Rotate, Scale, Transform
from vizcore.models import graph
from vizcore.models.graph import InputSpec

MAX_STEPS_ENV = "CONVLENS_MAX_STEPS"
SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class Settings:
    """Everything that decides the images besides the model, the objective and the seed.

    Attributes:
        steps: optimisation steps (capped by $CONVLENS_MAX_STEPS).
        learning_rate: Adam's step size on the parameterization's variables.
        param: FourierParam or PixelParam.
        transforms: applied in order before every step (random per image and step).
        regularizers: penalties added to the loss, each plotted by name.
        progress_every: steps per compiled chunk; the progress callback runs between chunks.
        fit_receptive_field: for a layer objective on a network that is convolutional up to the
            layer, optimize a smaller image: twice the layer's receptive field, at least 64 px (an
            early layer of a 224 network sees a window of ~11 px; a 64 px image shows its pattern
            at a twelfth of the cost), as a texture (``texture_settings``). Off: these settings
            as given, at the model's input size.
        redirect_steps: the first steps whose gradient passes the target's own ReLU redirected
            (Lucid's rule, so a filter silent on the start image still moves); the same on every route.
        image_size: side of the images for a model that accepts any size (else ignored).
        schedule: the learning rate over the steps: 'constant', or 'cosine' (from
            ``learning_rate`` down to a tenth of it at the last step: large moves first, fine ones last).
    """

    steps: int = 128
    learning_rate: float = 0.05
    param: Param = FourierParam()
    transforms: tuple[Transform, ...] = ()
    regularizers: tuple[Regularizer, ...] = ()
    progress_every: int = 16
    image_size: int = 224
    redirect_steps: int = 16
    fit_receptive_field: bool = True
    schedule: str = "constant"

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"Unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}.")


def default_settings(spec: InputSpec) -> Settings:
    """Defaults for a model's input: its size and channels decide the transforms and regularizers.

    Three regimes by the shorter side (a model that takes any size counts as 224):

    * <= 32 (28x28 digits, 32x32 CIFAR): 48 steps at 0.15, 1/f spectrum, jitter of 1 pixel only,
      light L2 and total variation. Checked on the bundled MNIST CNN (conv2: stroke textures).
    * <= 96 (64x64): 96 steps at 0.1, smoother 1/f^1.5 spectrum (1/f leaves speckle at this size),
      jitter 2 + scale 0.95-1.05 + rotation 5 degrees + jitter 1. Checked on the Shapes CNN.
    * larger (224x224 ImageNet networks): Lucid's recipe, 256 steps at 0.05, 1/f, grey pad 12,
      jitter 8, scale 0.9-1.1, rotation 10 degrees, jitter 4.

    Colours are decorrelated whenever there are 3 channels.
    """
    side = min(spec.height or 224, spec.width or 224)
    decorrelate = spec.channels == 3
    light = (L2(0.005), TotalVariation(0.02))
    if side <= 32:
        return Settings(
            steps=48,
            learning_rate=0.15,
            param=FourierParam(decay_power=1.0, decorrelate=decorrelate),
            transforms=(Jitter(1),),
            regularizers=light,
            progress_every=16,
        )
    if side <= 96:
        return Settings(
            steps=96,
            learning_rate=0.1,
            param=FourierParam(decay_power=1.5, decorrelate=decorrelate),
            transforms=(Jitter(2), Scale(0.95, 1.05), Rotate(5.0), Jitter(1)),
            regularizers=light,
            progress_every=16,
        )
    return Settings(
        steps=256,
        learning_rate=0.05,
        param=FourierParam(decay_power=1.0, decorrelate=decorrelate),
        transforms=(Pad(12), Jitter(8), Scale(0.9, 1.1), Rotate(10.0), Jitter(4)),
        regularizers=(L2(0.001),),
        progress_every=32,
    )


TEXTURE_LEARNING_RATE = 1.0
TEXTURE_STEPS = 48  # a texture's default: past the keras.io loop's 30 steps at 224 px, at ~0.13x its time


def texture_period(side: int, stride: int) -> int:
    """The tile of a texture ``side`` px wide: the largest divisor of ``side`` that is at most half of
    it and a multiple of ``stride`` (two tiles or more per side), else ``side`` itself."""
    for period in range(side // 2, 0, -1):
        if side % period == 0 and period % max(1, stride) == 0:
            return period
    return side


def texture_settings(settings: Settings, stride: int, side: int) -> Settings:
    """The settings for an early layer optimized at its fitted size (``side`` px): its pattern as a texture.

    Such a layer's units sit ``stride`` pixels apart and its best image repeats a pattern finer
    than the image. The image is a periodic tile (``TiledParam`` of pixels, ``texture_period``):
    seamless when tiled to the model's input, where a plain 64 px image loses a seventh of its
    activation at the seams. Pixels replace the Fourier basis (its 1/f prior slows the fine
    pattern 4-16x; inside a tile it also stays behind pixels), the transforms go (shifting a
    periodic image only moves its phase; scale and rotation average a stride-fine pattern out),
    and the learning rate is TEXTURE_LEARNING_RATE (a cosine decay was tried: it stops early).
    Steps and regularizers stay; ``TEXTURE_STEPS`` is their default (``layer_settings``).
    Measured on MobileNetV2 224 (untrained, seeded), block_1_project (stride 4), 24 filters,
    tiled to 224 px: 48 steps reach 1.2x the mean activation of the keras.io loop's 30 steps
    (its images clipped to the input range) in about 0.13x its time (``python -m bench featurevis``).
    """
    return dataclasses.replace(
        settings,
        param=TiledParam(PixelParam(decorrelate=settings.param.decorrelate), texture_period(side, stride)),
        learning_rate=TEXTURE_LEARNING_RATE,
        transforms=(),
    )


def layer_settings(model: Any, objective: Any) -> Settings:
    """The defaults ``optimize`` uses for ``objective`` on ``model`` when given no settings:
    ``default_settings`` of its input, with ``TEXTURE_STEPS`` steps when an early layer is
    optimized as a texture (``texture_size``; ``optimize`` then applies ``texture_settings``)."""
    keras_model, _ = model_and_mode(model, None)
    settings = default_settings(graph.input_spec(keras_model))
    if settings.fit_receptive_field and texture_size(keras_model, objective, image_size=settings.image_size):
        return dataclasses.replace(settings, steps=TEXTURE_STEPS)
    return settings


def capped_steps(steps: int) -> int:
    """``steps`` capped by the environment variable CONVLENS_MAX_STEPS (for tests and CI).

    Raises:
        ValueError: the variable is set but not a positive whole number.
    """
    raw = os.environ.get(MAX_STEPS_ENV, "").strip()
    if not raw:
        return int(steps)
    try:
        cap = int(raw)
    except ValueError:
        cap = 0
    if cap < 1:
        raise ValueError(f"{MAX_STEPS_ENV} must be a positive whole number of steps, got {raw!r}.")
    return min(int(steps), cap)


_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (FourierParam, PixelParam, TiledParam, Pad, Jitter, Scale, Rotate, L2, TotalVariation, Blur)
}


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return fields if isinstance(value, Settings) else {"type": type(value).__name__, **fields}
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    return value


def settings_json(settings: Settings) -> str:
    """The exact settings as JSON, every transform and regularizer with its type and fields."""
    return json.dumps(_encode(settings), indent=2)


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "type" in value:
        kind = value["type"]
        if kind not in _TYPES:
            raise ValueError(f"Unknown settings object '{kind}'; known: {', '.join(_TYPES)}.")
        return _TYPES[kind](**{k: _decode(v) for k, v in value.items() if k != "type"})
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    return value


def settings_from_json(text: str) -> Settings:
    """Settings back from ``settings_json`` (or from the settings.json of an export)."""
    data = json.loads(text)
    data = data.get("settings", data)
    return Settings(**{k: _decode(v) for k, v in data.items()})


# --------------------------------------------------------------------------- the Filters page's defaults

GALLERY_FILTERS = 16  # a large network's default gallery: 16 textures at MIN_FITTED_SIDE in well under 30 s on 2 cores
LARGE_INPUT = 96  # inputs wider than this make a network "large" for the Filters page's defaults


def gallery_default(model: Any, conv_layers: Iterable[str]) -> tuple[str, int]:
    """The Filters page's default (layer, number of filters).

    A small input: the last conv layer and up to 64 filters (a few seconds). A large input (over
    ``LARGE_INPUT`` px, e.g. an ImageNet network at 224): the deepest conv layer still optimized as
    a texture at ``MIN_FITTED_SIDE`` px, and ``GALLERY_FILTERS`` filters, so the default gallery is
    seconds instead of minutes (the last conv of MobileNetV2 at 224 px costs about 0.9 s a step).
    """
    keras_model, _ = model_and_mode(model, None)
    convs = list(conv_layers)
    spec = graph.input_spec(keras_model)
    if max(spec.height or 0, spec.width or 0) <= LARGE_INPUT:
        return convs[-1], 64
    small = [
        c for c in convs if (size := texture_size(keras_model, Channel(c))) is not None and size[0] <= MIN_FITTED_SIDE
    ]
    return (small[-1] if small else convs[-1]), GALLERY_FILTERS
