"""CRAFT on the bundled shapes CNN against the shapes' boxes, and against an independent computation."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import nested_mobilenet

from vizcore import concepts
from vizcore.data import datasets
from vizcore.errors import ConceptError, InputShapeError
from vizcore.models import graph

FIT = 120  # triangles CRAFT sees; the others are held out for the heatmaps
TRIANGLE = datasets.SHAPE_CLASSES.index("triangle")


def covered(object_box, crop_box) -> float:
    """Share of the crop's area inside the object's box."""
    x0, y0, x1, y1 = crop_box
    bx0, by0, bx1, by1 = object_box
    return max(0, min(x1, bx1) - max(x0, bx0)) * max(0, min(y1, by1) - max(y0, by0)) / ((x1 - x0) * (y1 - y0))


@pytest.fixture(scope="module")
def found(shapes_cnn, triangles):
    x, _ = triangles
    return concepts.craft(shapes_cnn, "pool2", x[:FIT], TRIANGLE, n_concepts=10, seed=0)


def test_the_most_important_triangle_concept_has_its_crops_on_the_triangle(found, triangles):
    _, boxes = triangles
    best = int(found.order[0])
    top = np.mean([covered(boxes[i], box) >= 0.5 for i, box in found.crops[best][:10]])
    base = np.mean([covered(boxes[i], box) >= 0.5 for i, box in zip(found.crop_image, found.crop_box)])
    assert found.patch == 16  # pool2's receptive field
    assert top >= 0.9, (top, base)  # measured: 1.0 of the top 10 crops at least half on the triangle
    assert top > base + 0.5  # of all crops, about 0.2 are
    assert found.importances[best] >= 2 * np.sort(found.importances)[-2]  # clearly first: measured 0.47 vs 0.12
    assert len(found.crops[best]) == 16
    assert found.crops[best][0][0] == found.crop_image[np.argmax(found.crops_u[:, best])]


def test_its_heatmaps_point_inside_the_object_on_held_out_images(found, triangles):
    x, boxes = triangles
    held, held_boxes = x[FIT:], boxes[FIT:]
    heat = found.heatmaps(held)
    assert heat.shape == (len(held), 10, 64, 64) and heat.min() >= 0
    best = heat[:, int(found.order[0])]
    inside = np.zeros(best.shape, bool)
    for i, (x0, y0, x1, y1) in enumerate(held_boxes):
        inside[i, y0:y1, x0:x1] = True
    peaks = [inside[i].ravel()[np.argmax(best[i])] for i in range(len(held))]
    mass = float((best * inside).sum() / best.sum())
    assert np.mean(peaks) >= 0.8, np.mean(peaks)  # measured 0.90; a box covers 0.19 of an image on average
    assert mass >= 0.6 and mass > 3 * inside.mean(), (mass, inside.mean())  # measured 0.80


def test_crop_activations_and_heatmaps_match_an_independent_computation(found, shapes_cnn, triangles):
    x, _ = triangles
    t = graph.trace(shapes_cnn)
    upto = keras.Model(t.input, t["pool2"].output)
    idx = np.arange(0, len(found.crop_image), 97)[:12]
    crops = np.stack([x[found.crop_image[i]][y0:y1, x0:x1] for i, (x0, y0, x1, y1) in zip(idx, found.crop_box[idx])])
    acts = upto.predict(tf.image.resize(crops, (64, 64), method="bicubic").numpy(), verbose=0).mean(axis=(1, 2))
    rebuilt = found.crops_u[idx] @ found.bank_w
    assert np.linalg.norm(rebuilt - acts) / np.linalg.norm(acts) < 2 * found.error + 0.02
    assert 0 < found.error < 0.15  # 10 concepts of 10 channels, with the NMF penalty
    presence = found.presence(x[:3])
    layer = upto.predict(x[:3], verbose=0)
    np.testing.assert_allclose(
        presence, found.factorization.transform(layer.reshape(-1, 10)).reshape(3, 13, 13, 10), rtol=1e-4, atol=1e-5
    )
    heat = found.heatmaps(x[:3])
    resized = tf.image.resize(presence[1:2, ..., 4:5], (64, 64)).numpy()[0, ..., 0]
    np.testing.assert_allclose(heat[1, 4], resized, atol=1e-5)


def test_craft_layers_and_the_fitted_crop_side(shapes_cnn):
    assert concepts.craft_layers(shapes_cnn) == ("conv1_1", "conv1_2", "pool1", "conv2_1", "conv2_2", "pool2")
    assert concepts.fitted_patch(shapes_cnn, "pool2", (64, 64)) == 16
    assert concepts.fitted_patch(shapes_cnn, "conv1_1", (64, 64)) == 8  # a 3-pixel field: at least an eighth
    assert concepts.fitted_patch(shapes_cnn, "flatten", (64, 64)) == 19  # the whole image: at most 0.3 of it


def _residual() -> keras.Model:
    keras.utils.set_random_seed(5)
    x_in = keras.Input((16, 16, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="a")(x_in)
    b = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="b")(a)
    r = keras.layers.ReLU(name="r")(keras.layers.Add(name="add")([a, b]))
    lin = keras.layers.Conv2D(4, 3, padding="same", name="lin")(r)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(lin)
    return keras.Model(x_in, keras.layers.Dense(3, name="logits")(x))


def test_typed_errors_for_what_craft_cannot_use(shapes_cnn, triangles):
    x, _ = triangles
    model = _residual()
    images = np.random.default_rng(0).uniform(0, 1, (6, 16, 16, 3)).astype(np.float32)
    assert concepts.craft_layers(model) == ("a", "add", "r")  # b: the add also reads a; lin: negative
    with pytest.raises(ConceptError, match="residual"):
        concepts.craft(model, "b", images, 0, n_concepts=2)
    with pytest.raises(ConceptError, match="negative"):
        concepts.craft(model, "lin", images, 0, n_concepts=2)
    with pytest.raises(ConceptError, match="feature maps"):
        concepts.craft(shapes_cnn, "flatten", x[:4], 0)
    with pytest.raises(ConceptError, match="target"):
        concepts.craft(shapes_cnn, "pool2", x[:4], 3)
    with pytest.raises(ConceptError, match="patch"):
        concepts.craft(shapes_cnn, "pool2", x[:4], 0, patch=65)
    with pytest.raises(ConceptError, match="crops"):
        concepts.craft(shapes_cnn, "pool2", x[:1], 0, n_concepts=30)
    with pytest.raises(InputShapeError):
        concepts.craft(shapes_cnn, "pool2", x[:4, :32], 0)


def test_progress_counts_every_step_and_a_callback_cancels(shapes_cnn, triangles):
    x, _ = triangles
    seen = []
    concepts.craft(shapes_cnn, "pool2", x[:8], TRIANGLE, n_concepts=3, on_progress=lambda d, t: seen.append((d, t)))
    total = 8 * 25 + 8 + 8 * 32 * 4  # crops, images, masked copies (32 designs x (3 + 1))
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    with pytest.raises(concepts.Cancelled):
        concepts.craft(shapes_cnn, "pool2", x[:8], TRIANGLE, n_concepts=3, on_progress=lambda d, t: d > 0)


def test_a_nested_base_with_a_sigmoid_head_works():
    model = nested_mobilenet("sigmoid")  # a transfer-learning model: MobileNetV2 inside a Sequential, one logit
    layer = concepts.craft_layers(model)[-1]
    assert layer.endswith("out_relu")
    images = np.random.default_rng(0).uniform(-1, 1, (4, 64, 64, 3)).astype(np.float32)
    c = concepts.craft(model, layer, images, 1, n_concepts=3)
    assert c.importances.shape == (3,) and np.all(c.importances >= 0)
    assert c.patch == 19 and c.heatmaps(images[:2]).shape == (2, 3, 64, 64)
