"""Xplique 2.0.2's CraftTf and Cav + Tcav on the inputs `bench_concepts` saved: run by the Python of a separate venv.

    $CONVLENS_XPLIQUE_PYTHON bench/xplique_concepts.py inputs.npz spec.json out.json

It does not import vizcore, so that the venv needs only Xplique and its own dependencies. The model
is cut at the layer as ConvLens cuts it: g = image -> layer / scale, h = (layer * scale) -> the rest
with the last Dense linear (pre-softmax scores), ``scale`` being the unit ConvLens factorized in.
CRAFT gets ConvLens's crops (boxes) through ``_extract_patches``, resized and run as Xplique does,
so both factorize the same activations; everything else (NMF, HALTON masks, Jansen, the per-image
loops) is Xplique's. TCAV gets the same concept and random sets per run.
"""

from __future__ import annotations

import json
import sys
import time
import types

import keras
import numpy as np
import tensorflow as tf
from scipy import stats
from xplique.concepts import Cav, CraftTf, Tcav


def _rest(model: keras.Model, tail: list[str], shape, scale: float) -> keras.Model:
    """(activations * scale) -> the layers of ``tail`` -> pre-softmax scores."""
    inp = keras.Input(shape)
    y = keras.layers.Rescaling(scale)(inp)
    for name in tail:
        layer = model.get_layer(name)
        if name == tail[-1] and isinstance(layer, keras.layers.Dense):
            linear = keras.layers.Dense(layer.units)
            linear.build(y.shape)
            linear.set_weights(layer.get_weights())
            layer = linear
        y = layer(y)
    return keras.Model(inp, y)


def main(inputs: str, spec_path: str, out_path: str) -> None:
    spec = json.loads(open(spec_path).read())
    data = np.load(inputs)
    model = keras.saving.load_model(spec["model"], compile=False)
    layer_out = model.get_layer(spec["layer"]).output
    scale = float(spec["scale"])
    g = keras.Model(model.input, keras.layers.Rescaling(1.0 / scale)(layer_out))
    h = _rest(model, spec["tail"], layer_out.shape[1:], scale)
    out: dict = {}

    # CRAFT on the same crops
    x, boxes, target = data["craft_x"], data["boxes"], int(spec["target"])

    def extract(self, inputs):
        # Xplique resizes every crop at once and predicts them in one call (4,800 crops of MobileNetV2 at 224:
        # 2.9 GB before its copies); the same resize and prediction in chunks keeps the host alive.
        crops = np.stack([im[y0:y1, x0:x1] for im in inputs for x0, y0, x1, y1 in boxes])
        acts = [
            tf.reduce_mean(
                self._latent_predict(tf.image.resize(crops[i : i + 256], inputs.shape[1:3], method="bicubic")),
                axis=(1, 2),
            )
            for i in range(0, len(crops), 256)
        ]
        return crops, tf.concat(acts, axis=0)

    craft = CraftTf(g, h, number_of_concepts=int(spec["n_concepts"]), batch_size=64, patch_size=int(spec["patch"]))
    craft._extract_patches = types.MethodType(extract, craft)
    start = time.perf_counter()
    _, crops_u, w = craft.fit(x, class_id=target)
    importances = craft.estimate_importance(nb_design=32)
    out["craft_seconds"] = time.perf_counter() - start
    out["craft_w"] = np.asarray(w).tolist()
    out["craft_importances"] = np.asarray(importances).tolist()

    # TCAV: one Cav and one Tcav per run, on the same sets
    layered_out = keras.layers.Rescaling(1.0 / scale, name="concept_layer")(layer_out)
    logits_model = keras.Model(model.input, _rest(model, spec["tail"], layer_out.shape[1:], scale)(layered_out))
    concept, random, cls = data["tcav_concept"], data["tcav_random"], data["tcav_class"]
    start = time.perf_counter()
    scores, random_scores = [], []
    cav, tcav = Cav(logits_model, "concept_layer", classifier="SGD"), Tcav(logits_model, "concept_layer")
    label = int(spec["tcav_target"])
    for run in range(int(spec["runs"])):
        pick, a, b = data[f"pick_{run}"], data[f"a_{run}"], data[f"b_{run}"]
        scores.append(float(tcav.score(cls, label, cav.fit(concept[pick], random[a]))))
        random_scores.append(float(tcav.score(cls, label, cav.fit(random[b], random[a]))))
    out["tcav_seconds"] = time.perf_counter() - start
    out["tcav_scores"], out["tcav_random_scores"] = scores, random_scores
    out["tcav_p"] = float(stats.ttest_ind(scores, random_scores).pvalue)
    open(out_path, "w").write(json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:4])
