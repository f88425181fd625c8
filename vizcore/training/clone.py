"""``trainable_copy``: a private, uncompiled copy of a model to train (the lowest piece of training).

Example:
    >>> copy = trainable_copy(shared_model)   # same architecture and weights, no optimizer state
    >>> copy is shared_model
    False
"""

from __future__ import annotations

import json

import keras


def trainable_copy(model: keras.Model) -> keras.Model:
    """A new model with the same architecture and weights, uncompiled; the original is never touched.

    Use it on a model shared by ``st.cache_resource`` before training: ``fit`` changes its model.
    (Built from the model's config without its compile state, which Keras 3.15's
    ``clone_model`` and ``to_json`` would carry over.)
    """
    try:
        config = json.loads(model.to_json())
        config.pop("compile_config", None)
        copy = keras.models.model_from_json(json.dumps(config))
    except Exception:  # noqa: BLE001 - a model whose config cannot round-trip: clone it instead
        copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy
