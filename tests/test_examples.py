"""Dataset examples per filter: top-k against a brute-force search, receptive fields against the model itself."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import tiny_functional

from vizcore.errors import InputShapeError
from vizcore.inspect import examples
from vizcore.models import fields, graph

L = keras.layers


def _linear_chain() -> keras.Model:
    """Strides, 'same' padding, dilation, pooling and a depthwise conv; no ReLU, so maxima rarely tie."""
    keras.utils.set_random_seed(7)
    x_in = keras.Input((21, 19, 2))
    x = L.Conv2D(4, 3, strides=2, padding="same", name="c1")(x_in)
    x = L.MaxPooling2D(2, strides=1, name="p1")(x)
    x = L.Conv2D(5, 3, dilation_rate=2, padding="same", name="c2")(x)
    x = L.DepthwiseConv2D(3, padding="valid", name="dw")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(x_in, L.Dense(3, name="out")(x))


def _residual() -> keras.Model:
    """A residual add of a 5x5-field path and a 1x1 shortcut, zero padding, a separable conv, a nested model."""
    keras.utils.set_random_seed(8)
    inner = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            L.SeparableConv2D(3, 3, padding="same", name="sep"),
            L.BatchNormalization(name="bn"),
            L.AveragePooling2D(2, name="avg"),
        ],
        name="inner",
    )
    x_in = keras.Input((14, 14, 1))
    a = L.Conv2D(3, 3, padding="same", name="a1")(x_in)
    a = L.Conv2D(3, 3, padding="same", name="a2")(a)
    b = L.Conv2D(3, 1, name="short")(x_in)
    x = L.Add(name="add")([a, b])
    x = L.ZeroPadding2D(((1, 0), (0, 1)), name="zpad")(x)
    x = L.Conv2D(3, 3, strides=2, name="c3")(x)
    x = inner(L.Resizing(8, 8, name="fit")(x))
    return keras.Model(x_in, L.Dense(2, name="out")(L.Flatten(name="flat")(x)))


_SUBS: dict = {}


def _acts(model: keras.Model, layer: str, x_nhwc: np.ndarray) -> np.ndarray:
    """The layer's output, from a plain sub-model (not the code under test)."""
    key = (id(model), layer)
    if key not in _SUBS:
        _SUBS[key] = (model, keras.Model(graph.trace(model).input, graph.trace(model)[layer].output))
    return np.asarray(_SUBS[key][1](np.asarray(x_nhwc, np.float32), training=False))


@pytest.mark.parametrize("layer", ["c1", "p1", "c2", "dw"])
def test_top_k_equals_brute_force(layer):
    model = _linear_chain()
    x = np.random.default_rng(0).normal(size=(37, 21, 19, 2)).astype(np.float32)
    ex = examples.top_examples(model, layer, x, k=5, batch_size=8)  # 37 = 4 full batches + 5
    acts = _acts(model, layer, x)  # (N, h, w, C)
    n, h, w, c = acts.shape
    per_image = acts.reshape(n, h * w, c).max(axis=1).T  # (C, N)
    want = np.argsort(-per_image, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(ex.indices, want)
    np.testing.assert_allclose(ex.scores, np.take_along_axis(per_image, want, 1), rtol=1e-5, atol=1e-6)
    for ch in range(c):
        for r, i in enumerate(want[ch]):
            assert tuple(ex.positions[ch, r]) == np.unravel_index(np.argmax(acts[i, :, :, ch]), (h, w))


def test_progress_reports_every_batch():
    model = _linear_chain()
    x = np.zeros((10, 21, 19, 2), np.float32)
    seen = []
    examples.top_examples(
        model, "c1", x, k=20, batch_size=4, on_progress=lambda done, total: seen.append((done, total))
    )
    assert seen == [(4, 10), (8, 10), (10, 10)]


def test_hand_computed_fields():
    # conv 3x3 valid -> pool 2x2 stride 2 -> conv 3x3 valid: field 8, jump 2
    rf = fields.receptive_field(tiny_functional(), "conv_b")
    assert rf.size == (8, 8) and rf.stride == 2
    np.testing.assert_array_equal(rf.boxes(0, 0), [0, 0, 8, 8])
    np.testing.assert_array_equal(rf.boxes(1, 2), [4, 2, 12, 10])  # x from 2*2, y from 1*2
    # stride 2, 'same' on 21 rows: pad_total = (11-1)*2 + 3 - 21 = 2, one pixel before
    chain = fields.receptive_field(_linear_chain(), "c1")
    np.testing.assert_array_equal(chain.boxes(0, 0), [0, 0, 2, 2])  # [-1, 2) clipped to [0, 2)
    np.testing.assert_array_equal(
        chain.boxes(10, 9), [17, 19, 19, 21]
    )  # rows [19, 22) clipped to 21, cols [17, 20) to 19
    # the residual add takes the union: 5x5 from the two convs, 1x1 shortcut inside it
    res = fields.receptive_field(_residual(), "add")
    np.testing.assert_array_equal(res.boxes(5, 5), [3, 3, 8, 8])


def _check_zeroing(model: keras.Model, layer: str, x: np.ndarray, *, tight: bool) -> int:
    """Zeroing everything outside the box keeps the activation at the argmax; with ``tight``, each box edge matters."""
    ex = examples.top_examples(model, layer, x, k=3, batch_size=5)
    acts = _acts(model, layer, x)
    cases, masked, nudged = [], [], []
    for ch in range(ex.channels):
        for r in range(ex.k):
            i, (y, xx), (x0, y0, x1, y1) = ex.indices[ch, r], ex.positions[ch, r], ex.boxes[ch, r]
            cases.append((i, y, xx, ch))
            m = np.zeros_like(x[i])
            m[y0:y1, x0:x1] = x[i, y0:y1, x0:x1]
            masked.append(m)
            for edge in (
                (slice(y0, y0 + 1), slice(x0, x1)),
                (slice(y1 - 1, y1), slice(x0, x1)),
                (slice(y0, y1), slice(x0, x0 + 1)),
                (slice(y0, y1), slice(x1 - 1, x1)),
            ):
                n = x[i].copy()
                n[edge] += 1.0
                nudged.append(n)
    got = _acts(model, layer, np.stack(masked))
    moved = _acts(model, layer, np.stack(nudged)) if tight else None
    for j, (i, y, xx, ch) in enumerate(cases):
        np.testing.assert_allclose(got[j, y, xx, ch], acts[i, y, xx, ch], rtol=1e-4, atol=1e-5)
        if tight:
            for e in range(4):
                assert abs(moved[4 * j + e, y, xx, ch] - acts[i, y, xx, ch]) > 1e-4, (layer, ch, e)
    return len(cases)


def test_zeroing_outside_the_box_keeps_the_activation():
    model = _linear_chain()
    x = np.random.default_rng(1).normal(size=(12, 21, 19, 2)).astype(np.float32)
    for layer in ("c1", "p1", "c2", "dw"):
        assert _check_zeroing(model, layer, x, tight=False) == 3 * {"c1": 4, "p1": 4, "c2": 5, "dw": 5}[layer]


def test_boxes_are_tight_without_pooling():
    keras.utils.set_random_seed(9)
    x_in = keras.Input((17, 17, 1))
    x = L.Conv2D(3, 3, strides=2, padding="same", name="s1")(x_in)
    x = L.Conv2D(3, 3, dilation_rate=2, padding="valid", name="s2")(x)
    model = keras.Model(x_in, L.Conv2D(2, 2, strides=2, name="s3")(x))
    x = np.random.default_rng(2).normal(size=(6, 17, 17, 1)).astype(np.float32)
    for layer in ("s1", "s2", "s3"):
        _check_zeroing(model, layer, x, tight=True)


def test_residual_zero_padding_and_nested_model():
    model = _residual()
    x = np.random.default_rng(3).normal(size=(8, 14, 14, 1)).astype(np.float32)
    for layer in ("add", "zpad", "c3"):
        _check_zeroing(model, layer, x, tight=False)
    # Resizing mixes positions in a way we do not follow: the nested model's layers see the whole image
    rf = fields.receptive_field(model, "inner")
    assert rf.whole and rf.out_hw == (4, 4)
    np.testing.assert_array_equal(rf.boxes(1, 1), [0, 0, 14, 14])


def test_nested_model_follows_its_inner_layers():
    keras.utils.set_random_seed(4)
    base = keras.Sequential(
        [keras.Input((16, 16, 1)), L.Conv2D(2, 3, name="i1"), L.MaxPooling2D(name="ip")], name="base"
    )
    model = keras.Sequential([keras.Input((16, 16, 1)), base, L.Conv2D(2, 3, name="top")])
    top = fields.receptive_field(model, "top")
    assert top.size == (8, 8)  # 3 -> pool: 4, jump 2 -> conv 3: 4 + 2*2
    assert fields.receptive_field(model, "base").size == (4, 4)
    x = np.random.default_rng(5).normal(size=(6, 16, 16, 1)).astype(np.float32)
    _check_zeroing(model, "top", x, tight=False)


def test_vector_layer_scores_are_the_values_and_boxes_the_image():
    model = tiny_functional()
    x = np.random.default_rng(6).uniform(size=(9, 12, 12, 1)).astype(np.float32)
    ex = examples.top_examples(model, "logits", x, k=2)
    logits = _acts(model, "logits", x)
    np.testing.assert_array_equal(ex.indices, np.argsort(-logits.T, axis=1, kind="stable")[:, :2])
    assert (ex.boxes == [0, 0, 12, 12]).all()


def test_patches_are_the_box_crops():
    model = tiny_functional()
    x = np.random.default_rng(7).uniform(size=(9, 12, 12, 1)).astype(np.float32)
    ex = examples.top_examples(model, "conv_b", x, k=4)
    crops = examples.patches(x, ex, 1)
    for crop, i, (x0, y0, x1, y1) in zip(crops, ex.indices[1], ex.boxes[1]):
        np.testing.assert_array_equal(crop, x[i, y0:y1, x0:x1])
        assert crop.shape == (8, 8, 1)


def test_wrong_images_raise_a_typed_error():
    with pytest.raises(InputShapeError):
        examples.top_examples(tiny_functional(), "conv_b", np.zeros((3, 28, 28, 1), np.float32))


def test_card_tiles_draw_the_box_and_crop_the_patch():
    model = tiny_functional()
    x = np.random.default_rng(8).uniform(size=(5, 12, 12, 1)).astype(np.float32)
    ex = examples.top_examples(model, "conv_b", x, k=2)
    display = np.rint(x * 255).astype(np.uint8)
    whole, crops = examples.card_tiles(display, ex, 0, tile_px=24)  # 12 px images, 2x nearest
    assert whole.shape == crops.shape == (2, 24, 24, 3)
    x0, y0, x1, y1 = ex.boxes[0, 0]
    assert (whole[0, 2 * y0, 2 * x0 : 2 * x1] == (255, 64, 0)).all()  # the box's top edge
    inside = display[ex.indices[0, 0], y0 + 1 : y1 - 1, x0 + 1 : x1 - 1, 0]
    np.testing.assert_array_equal(whole[0, 2 * (y0 + 1) : 2 * (y1 - 1) : 2, 2 * (x0 + 1) : 2 * (x1 - 1) : 2, 0], inside)
    patch = display[ex.indices[0, 0], y0:y1, x0:x1, 0]  # 8x8 -> 24x24: each pixel three times
    np.testing.assert_array_equal(crops[0, ::3, ::3, 0], patch)


def test_resnet50_field_is_the_published_483():
    # Araujo et al., "Computing Receptive Fields of Convolutional Neural Networks" (Distill, 2019):
    # ResNet-50, 483 pixels
    model = keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3))
    rf = fields.receptive_field(model, "conv5_block3_out")
    assert rf.size == (483, 483) and rf.out_hw == (7, 7)
    assert len(rf.rows) == 1  # the residual unions collapse to one form per jump
