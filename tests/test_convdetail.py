"""One output recomputed by hand equals the real feature map: conv, pooling, activation."""

from __future__ import annotations

import gc
import weakref

import keras
import numpy as np
import pytest

from vizcore import cache
from vizcore.inspect import convdetail
from vizcore.inspect.convdetail import window

GEOMETRIES = [  # (input side, kernel, stride, padding, dilation)
    (8, 3, 1, "valid", 1),
    (9, 3, 2, "valid", 1),
    (8, 3, 1, "same", 1),
    (8, 3, 2, "same", 1),  # pad_total 1: 0 before, 1 after
    (9, 4, 2, "same", 1),  # pad_total 3: 1 before, 2 after
    (8, 3, 1, "same", 2),  # dilated
]


def _conv_model(side: int, k: int, stride: int, padding: str, dilation: int) -> keras.Model:
    keras.utils.set_random_seed(7)
    inputs = keras.Input((side, side, 2))
    x = keras.layers.Conv2D(3, 1, activation="relu", name="stem", bias_initializer="random_normal")(inputs)
    x = keras.layers.Conv2D(
        4,
        k,
        strides=stride,
        padding=padding,
        dilation_rate=dilation,
        activation="tanh",
        bias_initializer="random_normal",
        name="conv",
    )(x)  # its input is the stem's output, side x side x 3
    return keras.Model(inputs, keras.layers.Dense(2, name="dense")(keras.layers.Flatten()(x)))


def _image(side: int, channels: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((side, side, channels)).astype(np.float32)


def _output(model: keras.Model, name: str, image: np.ndarray) -> np.ndarray:
    return np.asarray(window.layer_io(model, name, image)[3])


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: "{}px k{} s{} {} d{}".format(*g))
def test_conv_detail_equals_feature_map_everywhere(geometry):
    model = _conv_model(*geometry)
    image = _image(geometry[0])
    out = _output(model, "conv", image)
    for channel in (0, 3):
        for y in range(out.shape[0]):
            for x in range(out.shape[1]):
                d = convdetail.conv_detail(model, "conv", image, channel, y, x)
                assert d.post_activation == pytest.approx(out[y, x, channel], rel=1e-5, abs=1e-6)
                assert d.feature_map_value == out[y, x, channel]
    assert np.abs(out).max() > 0.1  # not a trivially zero map


def test_conv_detail_parts_and_padding_window():
    model = _conv_model(9, 4, 2, "same", 1)
    image = _image(9)
    d = convdetail.conv_detail(model, "conv", image, 1, 0, 0)
    layer = model.get_layer("conv")
    kernel, bias = [np.asarray(w, np.float64) for w in layer.get_weights()]
    inp = d.layer_input_hwc
    in_side, out_side = inp.shape[0], _output(model, "conv", image).shape[0]
    pad_total = max((out_side - 1) * 2 + 4 - in_side, 0)
    assert d.pad_before == (pad_total // 2, pad_total // 2) == (1, 1)
    assert d.rows.tolist() == [-1, 0, 1, 2] and d.padded[0].all() and not d.padded[1:, 1:].any()
    np.testing.assert_array_equal(d.input_patch[0], 0.0)
    np.testing.assert_allclose(d.input_patch[1:, 1:], inp[0:3, 0:3])
    np.testing.assert_allclose(d.kernel, kernel[..., 1])
    np.testing.assert_allclose(d.products, d.input_patch * kernel[..., 1])
    assert d.total == pytest.approx(d.products.sum()) and d.bias == pytest.approx(bias[1])
    assert d.pre_activation == pytest.approx(d.total + d.bias) and d.activation == "tanh"
    assert d.post_activation == pytest.approx(np.tanh(d.pre_activation), abs=1e-6)
    assert d.input_patch.shape == (4, 4, 3) and d.input_channels == (0, 1, 2)
    with pytest.raises(IndexError):
        convdetail.conv_detail(model, "conv", image, 1, 99, 0)
    with pytest.raises(ValueError, match="Dense"):
        convdetail.conv_detail(model, "dense", image, 0, 0, 0)


def test_depthwise_separable_and_grouped_details(rng):
    inputs = keras.Input((9, 9, 4))
    dw = keras.layers.DepthwiseConv2D(
        3, strides=2, padding="same", depth_multiplier=2, name="dw", bias_initializer="ones"
    )(inputs)
    sep = keras.layers.SeparableConv2D(3, 3, padding="same", activation="relu", name="sep")(inputs)
    grp = keras.layers.Conv2D(4, 3, groups=2, name="grp")(inputs)
    model = keras.Model(inputs, keras.layers.Concatenate()([keras.layers.Flatten()(t) for t in (dw, sep, grp)]))
    image = rng.standard_normal((9, 9, 4)).astype(np.float32)
    for name, positions in (
        ("dw", [(5, 0, 0), (3, 4, 4), (7, 2, 3)]),
        ("sep", [(2, 0, 8), (1, 4, 4)]),
        ("grp", [(3, 6, 0), (0, 1, 1)]),
    ):
        out = _output(model, name, image)
        for channel, y, x in positions:
            d = convdetail.conv_detail(model, name, image, channel, y, x)
            assert d.post_activation == pytest.approx(out[y, x, channel], rel=1e-5, abs=1e-5), (name, channel, y, x)
    d = convdetail.conv_detail(model, "dw", image, 5, 1, 1)
    assert d.input_channels == (2,) and d.input_patch.shape == (3, 3, 1)
    assert convdetail.conv_detail(model, "grp", image, 3, 0, 0).input_channels == (2, 3)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_pool_detail_equals_pooled_map(padding, rng):
    inputs = keras.Input((7, 7, 2))
    mx = keras.layers.MaxPooling2D(3, strides=2, padding=padding, name="max")(inputs)
    av = keras.layers.AveragePooling2D(2, padding=padding, name="avg")(inputs)
    gap = keras.layers.GlobalAveragePooling2D(name="gap")(inputs)
    model = keras.Model(
        inputs, keras.layers.Concatenate()([keras.layers.Flatten()(mx), keras.layers.Flatten()(av), gap])
    )
    image = rng.standard_normal((7, 7, 2)).astype(np.float32)
    for name in ("max", "avg"):
        out = _output(model, name, image)
        for y in range(out.shape[0]):
            for x in range(out.shape[1]):
                d = convdetail.pool_detail(model, name, image, 1, y, x)
                assert d.value == pytest.approx(out[y, x, 1], rel=1e-6, abs=1e-6)
                if name == "max":
                    assert d.window[d.argmax] == pytest.approx(d.value) and not d.padded[d.argmax]
    if padding == "same":  # the last average window hangs over the edge: padding is not counted
        d = convdetail.pool_detail(model, "avg", image, 0, 3, 3)
        assert d.padded.sum() == 3 and d.value == pytest.approx(image[6, 6, 0])
    g = convdetail.pool_detail(model, "gap", image, 1)
    assert g.window.shape == (7, 7) and g.value == pytest.approx(image[..., 1].mean(), abs=1e-6)
    assert g.error < 1e-5


def test_activation_detail_fused_and_separate(rng):
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(2, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.Conv2D(2, 1, name="lin")(x)
    x = keras.layers.ReLU(max_value=6.0, name="relu6")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(3, activation="sigmoid", name="dense")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="head")(x))
    image = 4 * rng.standard_normal((6, 6, 1)).astype(np.float32)
    fused = convdetail.activation_detail(model, "conv", image, 1, 2, 3)
    assert fused.fused and fused.function == "relu"
    assert fused.input_value == pytest.approx(convdetail.conv_detail(model, "conv", image, 1, 2, 3).pre_activation)
    assert fused.output_value == pytest.approx(max(fused.input_value, 0.0)) and fused.error < 1e-5
    np.testing.assert_allclose(fused.curve_y, np.maximum(fused.curve_x, 0), atol=1e-6)
    assert fused.curve_x[0] <= -abs(fused.input_value) and fused.curve_x[-1] >= abs(fused.input_value)
    lin_out = _output(model, "lin", image)
    for y, x in ((0, 0), (3, 1)):
        sep = convdetail.activation_detail(model, "relu6", image, 0, y, x)
        assert not sep.fused and sep.function == "relu(max_value=6)"
        assert sep.input_value == pytest.approx(lin_out[y, x, 0])
        assert sep.output_value == pytest.approx(np.clip(lin_out[y, x, 0], 0, 6)) and sep.error < 1e-6
    np.testing.assert_allclose(sep.curve_y, np.clip(sep.curve_x, 0, 6), atol=1e-6)
    assert sep.curve_x[-1] > 6
    dense = convdetail.activation_detail(model, "dense", image, 2)
    assert dense.function == "sigmoid" and dense.error < 1e-6
    assert dense.output_value == pytest.approx(1 / (1 + np.exp(-dense.input_value)), abs=1e-6)
    with pytest.raises(ValueError, match="softmax"):
        convdetail.activation_detail(model, "head", image, 0)


def test_reloaded_sequential_and_nested_model(saved_dir, rng):
    seq = keras.models.load_model(saved_dir / "seq.keras", safe_mode=True)
    image = rng.random((12, 12, 1), dtype=np.float32)
    out = _output(seq, "conv_b", image)
    for y, x in ((0, 0), (2, 1)):  # its input is the pooling layer's output
        assert convdetail.conv_detail(seq, "conv_b", image, 5, y, x).error < 1e-5
        assert convdetail.conv_detail(seq, "conv_b", image, 5, y, x).feature_map_value == out[y, x, 5]
    assert convdetail.pool_detail(seq, "pool", image, 3, 4, 4).error < 1e-6
    nested = keras.models.load_model(saved_dir / "nested.keras", safe_mode=True)
    photo = rng.random((64, 64, 3), dtype=np.float32)
    stem = convdetail.conv_detail(nested, "Conv1", photo, 7, 0, 31)  # stride 2, 'same': 64 -> 32
    assert stem.layer.endswith("/Conv1") and stem.strides == (2, 2) and stem.error < 1e-5
    assert stem.pad_before == (0, 0) and stem.padded[:, -1].all() and not stem.padded[:, :2].any()  # pad 1 after
    dw = convdetail.conv_detail(nested, "expanded_conv_depthwise", photo, 3, 5, 6)
    assert dw.input_patch.shape == (3, 3, 1) and dw.error < 1e-5
    relu6 = convdetail.activation_detail(nested, "Conv1_relu", photo, 2, 4, 4)
    assert relu6.function == "relu(max_value=6)" and relu6.error < 1e-6


def test_layer_values_are_cached_bounded_and_free_the_model():
    model = _conv_model(8, 3, 1, "valid", 1)
    first = window.layer_io(model, "conv", _image(8))
    assert window.layer_io(model, "conv", _image(8))[3] is first[3]  # same image: no new pass
    for seed in range(1, 20):
        window.layer_io(model, "stem", _image(8, seed=seed))
    assert cache.cached_count(model, "convdetail.io_values") == window.KEEP_VALUES
    assert cache.cached_count(model, "convdetail.io_model") == 2  # one sub-model per layer
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None
