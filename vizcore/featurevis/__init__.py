"""Feature visualization: the images that most excite each filter, optimized as one batch.

Gradient ascent on the input (Erhan et al. 2009; Olah et al., "Feature Visualization", 2017),
with a whole layer's filters in one compiled batch, a Fourier parameterization with colour
decorrelation, transformation robustness and regularizers as small named objects, and defaults
per input size (28x28 grey digits to 224x224 colour photos).

Example:
    >>> from vizcore import featurevis as fv, models
    >>> from vizcore.data import datasets
    >>> loaded = models.open_bundled("mnist_cnn")
    >>> result = fv.optimize(loaded, fv.Channel("conv2"), range(64), on_progress=print_step)
    >>> result.images_nhwc.shape, sorted(result.loss_terms)
    ((64, 28, 28, 1), ['channel', 'l2', 'loss', 'tv'])
    >>> real = fv.real_activation(loaded, "conv2", datasets.load_mnist_sample().x_nhwc[:500])
"""

from vizcore.featurevis.engine import (
    ProgressFn,
    optimize,
    real_activation,
    visualize_classes,
    visualize_filters,
)
from vizcore.featurevis.export import export_zip, to_uint8
from vizcore.featurevis.fitting import texture_size
from vizcore.featurevis.objectives import Channel, ClassLogit, Direction, Diversity, Neuron, Objective, Outputs, Sum
from vizcore.featurevis.params import FourierParam, PixelParam, TiledParam, fourier_to_image, image_to_fourier
from vizcore.featurevis.ranges import InputRange, input_range
from vizcore.featurevis.regularizers import L2, Blur, TotalVariation
from vizcore.featurevis.result import FeatureVis
from vizcore.featurevis.settings import (
    MAX_STEPS_ENV,
    TEXTURE_LEARNING_RATE,
    TEXTURE_STEPS,
    Settings,
    capped_steps,
    default_settings,
    gallery_default,
    layer_settings,
    settings_from_json,
    settings_json,
    texture_period,
    texture_settings,
)
from vizcore.featurevis.transforms import Jitter, Pad, Rotate, Scale

__all__ = [
    "MAX_STEPS_ENV",
    "L2",
    "Blur",
    "Channel",
    "ClassLogit",
    "Direction",
    "Diversity",
    "FeatureVis",
    "FourierParam",
    "InputRange",
    "Jitter",
    "Neuron",
    "Objective",
    "Outputs",
    "Pad",
    "PixelParam",
    "TiledParam",
    "ProgressFn",
    "Rotate",
    "Scale",
    "Settings",
    "Sum",
    "TotalVariation",
    "capped_steps",
    "default_settings",
    "export_zip",
    "fourier_to_image",
    "image_to_fourier",
    "input_range",
    "optimize",
    "real_activation",
    "settings_from_json",
    "settings_json",
    "texture_settings",
    "TEXTURE_LEARNING_RATE",
    "TEXTURE_STEPS",
    "texture_period",
    "layer_settings",
    "texture_size",
    "gallery_default",
    "to_uint8",
    "visualize_classes",
    "visualize_filters",
]
