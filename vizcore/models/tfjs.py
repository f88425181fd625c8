"""TF.js Layers models (``model.json`` + weight shards) read with NumPy; no tensorflowjs needed.

The ``modelTopology`` is a tf.keras JSON config (repaired like an old .h5 by vizcore.models.legacy);
the ``weightsManifest`` lists shard paths and, in order, each weight's name, shape and dtype
over the concatenated shards. float32, int32, float16 and the affine uint8/uint16 quantization
(``{"dtype": "uint8", "scale": s, "min": m}``) are read.

Example:
    >>> model = load_tfjs(Path("model.json").read_bytes(), lambda p: (folder / p).read_bytes(), "model.json")
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from vizcore.errors import ModelLoadError
from vizcore.models import legacy

DTYPES = {
    "float32": np.float32,
    "int32": np.int32,
    "bool": np.bool_,
    "float16": np.float16,
    "uint8": np.uint8,
    "uint16": np.uint16,
}


def parse_model_json(text: bytes | str, label: str) -> dict[str, Any]:
    """The model.json as a dict; ModelLoadError for a graph model or a file that is not TF.js Layers."""
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError) as err:
        raise ModelLoadError(f"'{label}' is not valid JSON ({err}).") from None
    if not isinstance(doc, dict):
        raise ModelLoadError(f"'{label}' is JSON but not a TF.js model (it holds no object at the top).")
    if (
        doc.get("format") == "graph-model"
        or "graph-model" in str(doc.get("format"))
        or (isinstance(doc.get("modelTopology"), dict) and "node" in doc["modelTopology"])
    ):
        raise ModelLoadError(
            f"'{label}' is a TF.js graph model (a frozen TensorFlow graph), which has no Keras layers to explain; "
            'only TF.js Layers models (format "layers-model") can be opened.'
        )
    if not isinstance(doc.get("modelTopology"), dict) or "weightsManifest" not in doc:
        raise ModelLoadError(
            f"'{label}' is JSON but not a TF.js Layers model: it has no modelTopology and weightsManifest."
        )
    return doc


def _topology_config(topology: dict) -> dict:
    """The model config inside a modelTopology (tfjs writes it bare or under "model_config")."""
    return topology.get("model_config", topology)


def read_weights(doc: dict, read: Callable[[str], bytes | None], label: str) -> dict[tuple[str, ...], np.ndarray]:
    """Every weight of the manifest, keyed by its name split on '/'.

    Args:
        doc: the parsed model.json.
        read: shard path (as written in the manifest) -> its bytes, or None when it is not there
            (it may raise ModelLoadError itself, to say more).
        label: the name to show in messages.
    """
    stored: dict[tuple[str, ...], np.ndarray] = {}
    for group in doc["weightsManifest"]:
        blobs = []
        for path in group.get("paths", ()):
            blob = read(path)
            if blob is None:
                raise ModelLoadError(f"'{label}' needs its weight file '{path}' beside it, and it is missing.")
            blobs.append(blob)
        data, offset = b"".join(blobs), 0
        for spec in group.get("weights", ()):
            quant = spec.get("quantization") or {}
            stored_dtype = quant.get("dtype", spec.get("dtype", "float32"))
            if stored_dtype not in DTYPES:
                raise ModelLoadError(
                    f"'{label}' stores the weight '{spec['name']}' as {stored_dtype}, which ConvLens cannot read."
                )
            count = int(np.prod(spec["shape"], dtype=np.int64))
            size = count * np.dtype(DTYPES[stored_dtype]).itemsize
            if offset + size > len(data):
                shards = group["paths"]
                held = f"the shard {shards[0]} holds" if len(shards) == 1 else f"the shards {', '.join(shards)} hold"
                raise ModelLoadError(
                    f"'{label}' has weight files that are too short (a download cut off?): "
                    f"'{spec['name']}' needs bytes "
                    f"up to {offset + size:,} but {held} {len(data):,}."
                )
            value = np.frombuffer(data, DTYPES[stored_dtype], count, offset).reshape(spec["shape"])
            offset += size
            if stored_dtype in ("uint8", "uint16") and "scale" in quant:
                value = value.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant.get("min", 0.0))
            stored[tuple(spec["name"].split(":")[0].split("/"))] = value.astype(np.float32)
    return stored


def load_tfjs(model_json: bytes | str, read: Callable[[str], bytes | None], label: str) -> keras.Model:
    """Build a TF.js Layers model in Keras 3: parse, refuse unsafe, repair, build, set weights by name."""
    doc = parse_model_json(model_json, label)
    config = _topology_config(doc["modelTopology"])
    legacy.refuse_unsafe(config, label)
    config, _ = legacy.repair_config(config)
    try:
        model = legacy.build_model(config, label)
    except ModelLoadError:
        raise
    except Exception as err:  # Keras raises ValueError, TypeError, KeyError, ...
        raise ModelLoadError(
            f"'{label}' could not be built as a Keras model: {type(err).__name__}: {str(err).strip()[:300]}"
        ) from err
    legacy.assign_weights(model, read_weights(doc, read, label), label)
    return model
