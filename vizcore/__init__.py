"""ConvLens engine: load, inspect and explain Keras CNNs. Plain Python and Keras, no Streamlit."""

from vizcore.errors import (
    ConvLensError,
    DatasetUnavailableError,
    ImageLoadError,
    LayerNotFoundError,
    ModelLoadError,
    NotAnImageModelError,
    WeightsUnavailableError,
)

__all__ = [
    "ConvLensError",
    "DatasetUnavailableError",
    "ImageLoadError",
    "LayerNotFoundError",
    "ModelLoadError",
    "NotAnImageModelError",
    "WeightsUnavailableError",
]
