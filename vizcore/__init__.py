"""ConvLens engine: load, inspect and explain Keras CNNs. Plain Python and Keras, no Streamlit.

Importing it sets the TensorFlow environment variables of ``$CONVLENS_PROFILE`` (``profile.prepare_environment``)
before anything in it imports TensorFlow.
"""

__version__ = "0.3.0"  # the third wave of ConvLens (the report names it)

from vizcore import profile  # noqa: E402

profile.prepare_environment()

from vizcore.errors import (  # noqa: E402
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
