"""Teach: transfer learning from a pretrained base, the way Teachable Machine does it.

The base runs once over the photos, a small head trains on the cached features in seconds, and an
optional second phase fine-tunes the base's last blocks (keras.io's recipe). No Streamlit here::

    from vizcore import models, transfer
    base = models.open_application(models.applications.TEACHABLE_BASE)      # MobileNetV2 alpha 0.35, ImageNet
    dataset, notes = transfer.dataset_from_classes([("cat", cat_photos), ("dog", dog_photos)])
    result = transfer.teach(base, dataset, transfer.TeachSettings(epochs=50))
    result.history["val_accuracy"][-1], result.feature_layer          # (0.97, 'out_relu')
    transfer.export(result.loaded, "out/")        # model.keras, labels.txt, metadata.json, model.tflite
    run = transfer.start_teach(base, dataset, settings, session=training.new_session_id())  # in a job: Stop, slots

Layout: ``settings`` (TeachSettings), ``features`` (the feature layer, the images fitted to the base,
the one pass), ``phases`` (teach: the two phases, TeachResult), ``collect`` (class cards to a dataset),
``export`` (.keras + labels.txt + metadata.json, .tflite), ``run`` (a teach run as a training job).
"""

from vizcore.transfer.collect import KEEP_SIDE, dataset_from_classes, shrink
from vizcore.transfer.export import FORMATS, bundle_zip, export, tflite_bytes
from vizcore.transfer.features import (
    Augmenter,
    extract,
    feature_layer,
    feature_part,
    fit_images,
)
from vizcore.transfer.phases import (
    FeatureRecord,
    TeachResult,
    check_classes,
    fine_tune_layers,
    head_layers,
    split,
    teach,
)
from vizcore.transfer.run import TeachRun, start_teach
from vizcore.transfer.settings import TeachSettings

__all__ = [
    "FORMATS",
    "KEEP_SIDE",
    "Augmenter",
    "FeatureRecord",
    "TeachResult",
    "TeachRun",
    "TeachSettings",
    "bundle_zip",
    "check_classes",
    "dataset_from_classes",
    "export",
    "extract",
    "feature_layer",
    "feature_part",
    "fine_tune_layers",
    "fit_images",
    "head_layers",
    "shrink",
    "split",
    "start_teach",
    "teach",
    "tflite_bytes",
]
