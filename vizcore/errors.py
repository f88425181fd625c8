"""Typed exceptions of the engine.

Every error a person can cause (a bad file, a model that is not an image CNN, an image that
cannot be read) is raised as one of these, with a message written for that person. Pages show
``str(err)`` as it is; notebooks can catch the base class.
"""

from __future__ import annotations


class ConvLensError(Exception):
    """Base class of every error ConvLens raises on purpose."""


class ModelLoadError(ConvLensError):
    """A model file could not be loaded (empty, corrupt, wrong format, refused for safety)."""


class NotAnImageModelError(ModelLoadError):
    """The model loaded, but it is not a single-input image CNN that ConvLens can explain.

    A subclass of ModelLoadError, so one ``except ModelLoadError`` covers every refused file.
    """


class LayerNotFoundError(ConvLensError, KeyError):
    """A layer name that the model does not have."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class WeightsUnavailableError(ConvLensError):
    """Pretrained weights could not be downloaded (usually: no network)."""


class DatasetUnavailableError(ConvLensError):
    """A dataset could not be downloaded (usually: no network)."""


class ImageLoadError(ConvLensError):
    """An uploaded image could not be read, or is too large to read safely."""


class ModelBuildError(ConvLensError, ValueError):
    """A layer list that cannot be built into a model, or a spec that cannot be read back."""


class ArchiveError(ConvLensError):
    """An uploaded ZIP of images could not be used as a dataset (not a ZIP, unsafe, too big, too few classes)."""


class TrainingError(ConvLensError):
    """Training cannot start or cannot go on: data that does not fit the model, settings that cannot work."""


class InputShapeError(ConvLensError, ValueError):
    """An image or a batch whose shape does not fit the model's input."""


class AtlasError(ConvLensError, ValueError):
    """An activation atlas that cannot be laid out: too few points for any cell, or inputs of different lengths."""


class TransferError(ConvLensError, ValueError):
    """Images or a base that transfer learning cannot use.

    Too few classes, a class without images, a base without features.
    """


class AttributionError(ConvLensError, ValueError):
    """A request an attribution method cannot honour (bad target, non-spatial layer, bad option)."""


class AttributionCancelled(ConvLensError):
    """The ``on_progress`` callback asked a running attribution method to stop."""


class RobustnessError(ConvLensError, ValueError):
    """An attack that cannot run: ε outside 0..1, no steps, a target already predicted, no gradient to the input."""


class ConceptError(ConvLensError, ValueError):
    """A concept request that cannot be honoured: a layer CRAFT cannot factorize, too few images, a bad target."""


class ReportError(ConvLensError, ValueError):
    """A report cannot be built or written (vizcore.report); the message is one sentence for the user."""


class SpecError(ConvLensError, ValueError):
    """A model or dataset named in a form ConvLens does not read (``--model``, ``--dataset``, a link's ``?model=``)."""


class ShardError(ConvLensError):
    """A shard of a distributed precompute failed after the engine's retries; the message names the shard."""
