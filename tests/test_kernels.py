"""Kernel tensors, tiles, galleries and filter statistics, checked on hand-set weights."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import nested_mobilenet, tiny_sequential

from vizcore.inspect import kernels
from vizcore.present import render


def _first_layer_model(channels: int, kernel_hwio: np.ndarray) -> keras.Model:
    """A conv layer with a hand-set kernel (zero bias) on a (6, 6, channels) input."""
    inputs = keras.Input((6, 6, channels))
    conv = keras.layers.Conv2D(kernel_hwio.shape[-1], kernel_hwio.shape[:2], name="conv")
    x = conv(inputs)
    x = keras.layers.Conv2D(2, 2, name="conv_next")(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    conv.set_weights([kernel_hwio.astype(np.float32), np.zeros(kernel_hwio.shape[-1], np.float32)])
    return model


def _rgb_kernel() -> np.ndarray:
    k = np.zeros((3, 3, 3, 3), np.float32)
    k[..., 0, 0] = 2.0  # filter 0: red input channel positive, green negative, blue zero
    k[..., 1, 0] = -2.0
    k[1, 1, 2, 1] = 0.5  # filter 1: one positive blue weight in the centre
    k[0, 0, 1, 2] = -1.0  # filter 2: one negative green weight top-left
    return k


def test_rgb_composite_maps_input_channels_to_red_green_blue():
    lk = kernels.layer_kernel(_first_layer_model(3, _rgb_kernel()), "conv")
    assert lk.is_first and lk.kernel_hwio.shape == (3, 3, 3, 3) and kernels.default_mode(lk) == "rgb"
    tiles = kernels.kernel_tiles(lk, scale="filter")
    assert tiles.shape == (3, 3, 3, 3) and tiles.dtype == np.uint8
    np.testing.assert_array_equal(tiles[0, 1, 1], [255, 0, 128])  # +max -> 255, -max -> 0, zero -> grey
    np.testing.assert_array_equal(tiles[1, 1, 1], [128, 128, 255])
    np.testing.assert_array_equal(tiles[1, 0, 0], [128, 128, 128])
    np.testing.assert_array_equal(tiles[2, 0, 0], [128, 0, 128])
    layer = kernels.kernel_tiles(lk, scale="layer")  # one bound, 2.0, for all filters
    np.testing.assert_array_equal(layer[1, 1, 1], [128, 128, round(255 * (0.5 + 0.5 * 0.5 / 2.0))])
    np.testing.assert_array_equal(layer[0, 1, 1], tiles[0, 1, 1])


def test_grayscale_first_layer_diverging_tiles_and_scales():
    k = np.zeros((3, 3, 1, 4), np.float32)
    k[0, 0, 0, 0], k[2, 2, 0, 0] = 1.0, -1.0
    k[1, 1, 0, 1] = 0.25
    k[:, :, 0, 3] = 0.5
    lk = kernels.layer_kernel(_first_layer_model(1, k), "conv")
    lut = render.lut(render.DIVERGING)
    tiles = kernels.kernel_tiles(lk)  # default mode for one channel: per channel
    assert tiles.shape == (4, 3, 3, 3)
    np.testing.assert_array_equal(tiles[0, 0, 0], lut[255])  # red end: the filter's +max
    np.testing.assert_array_equal(tiles[0, 2, 2], lut[0])  # blue end: its -max
    np.testing.assert_array_equal(tiles[0, 1, 1], lut[128])  # zero: the centre (white)
    np.testing.assert_array_equal(tiles[1, 1, 1], lut[255])  # per filter: 0.25 is this filter's max
    np.testing.assert_array_equal(tiles[2], np.broadcast_to(lut[128], (3, 3, 3)))  # all-zero filter
    layer = kernels.kernel_tiles(lk, scale="layer")
    np.testing.assert_array_equal(layer[1, 1, 1], lut[round(255 * 0.625)])  # 0.5 + 0.5 * 0.25 / 1.0
    glob = kernels.kernel_tiles(lk, scale="global", bound=4.0)
    np.testing.assert_array_equal(glob[0, 0, 0], lut[round(255 * 0.625)])  # 0.5 + 0.5 * 1 / 4
    gallery = kernels.kernel_gallery(lk, tile_px=6)  # one input channel: a square grid, not one column
    assert gallery.shape == (2 * 6 + 1, 2 * 6 + 1, 3)
    with pytest.raises(ValueError, match="bound"):
        kernels.kernel_tiles(lk, scale="global")
    with pytest.raises(ValueError, match="3 input channels"):
        kernels.kernel_tiles(lk, mode="rgb")


def test_second_layer_per_channel_and_mean_tiles():
    model = tiny_sequential(channels=1)
    lk = kernels.layer_kernel(model, "conv_b")
    assert not lk.is_first and lk.kernel_hwio.shape == (3, 3, 4, 6)
    per = kernels.kernel_tiles(lk, mode="per_channel", scale="layer")
    assert per.shape == (6 * 4, 3, 3, 3)
    mean = lk.kernel_hwio.mean(axis=2)  # (3, 3, 6)
    bound = np.abs(mean).max()
    expected = render.colorize(np.clip(0.5 + 0.5 * mean.transpose(2, 0, 1) / bound, 0, 1), render.DIVERGING)
    np.testing.assert_array_equal(kernels.kernel_tiles(lk, mode="mean", scale="layer"), expected)
    # filter-major order: tile f * cin + c is filter f, channel c
    f, c = 4, 2
    one = lk.kernel_hwio[:, :, c, f]
    expected_tile = render.colorize(np.clip(0.5 + 0.5 * one / np.abs(lk.kernel_hwio).max(), 0, 1), render.DIVERGING)
    np.testing.assert_array_equal(per[f * 4 + c], expected_tile)


def test_gallery_is_one_crisp_row_major_montage():
    k = np.random.default_rng(0).standard_normal((3, 3, 3, 5)).astype(np.float32)
    lk = kernels.layer_kernel(_first_layer_model(3, k), "conv")
    tiles = kernels.kernel_tiles(lk)
    image = kernels.kernel_gallery(lk, tile_px=32)  # factor 10 -> 30 px tiles, 3 columns, 2 rows
    assert image.shape == (2 * 30 + 1, 3 * 30 + 2, 3) and image.dtype == np.uint8
    for i in range(5):
        r, c = divmod(i, 3)
        block = image[r * 31 : r * 31 + 30, c * 31 : c * 31 + 30]
        np.testing.assert_array_equal(block, render.upscale(tiles[i], 10))
    assert (image[30, :] == kernels.PAD_VALUE).all()  # the gap row
    assert (image[31 + 5, 2 * 31 + 5] == kernels.PAD_VALUE).all()  # the missing 6th tile
    subset = kernels.kernel_gallery(lk, filters=[4, 1], columns=2, tile_px=3)
    np.testing.assert_array_equal(subset[:, :3], tiles[4])
    np.testing.assert_array_equal(subset[:, 4:], tiles[1])
    per = kernels.kernel_gallery(lk, mode="per_channel", tile_px=6)  # one row per filter, one column per channel
    assert per.shape == (5 * 6 + 4, 3 * 6 + 2, 3)
    with pytest.raises(ValueError, match="tiles"):
        kernels.kernel_gallery(lk, mode="per_channel", max_tiles=10)


def test_filter_stats_flag_a_hand_zeroed_filter():
    model = tiny_sequential(channels=1)
    conv = model.get_layer("conv_b")
    kernel, bias = [np.array(w) for w in conv.get_weights()]
    kernel[..., 2] = 0.0  # dead: passes nothing of its input
    kernel[..., 5] = 0.0
    kernel[0, 0, 0, 5] = np.abs(kernel).max() * 0.5  # near dead: one weight of 36
    conv.set_weights([kernel, bias])
    stats = kernels.filter_stats(kernels.layer_kernel(model, "conv_b"))
    assert stats.dead.tolist() == [False, False, True, False, False, False]
    assert stats.near_dead.tolist() == [False, False, False, False, False, True]
    w = kernel.reshape(-1, 6)
    np.testing.assert_allclose(stats.l2, np.linalg.norm(w, axis=0), rtol=1e-6)
    np.testing.assert_allclose(stats.mean, w.mean(axis=0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(stats.std, w.std(axis=0), rtol=1e-5)
    threshold = 0.01 * np.abs(kernel).max()
    np.testing.assert_allclose(stats.near_zero_share, (np.abs(w) < threshold).mean(axis=0))
    assert stats.near_zero_share[2] == 1.0 and stats.threshold == pytest.approx(threshold)
    tiles = kernels.kernel_tiles(kernels.layer_kernel(model, "conv_b"), mode="mean")
    np.testing.assert_array_equal(tiles[2], np.broadcast_to(render.lut(render.DIVERGING)[128], (3, 3, 3)))


def test_weight_histogram_symmetric_and_complete():
    lk = kernels.layer_kernel(tiny_sequential(), "conv_b")
    counts, edges = kernels.weight_histogram(lk, bins=21)
    peak = np.abs(lk.kernel_hwio).max()
    assert counts.shape == (21,) and edges.shape == (22,) and counts.sum() == lk.kernel_hwio.size
    np.testing.assert_allclose([edges[0], edges[-1], edges[10] + edges[11]], [-peak, peak, 0.0], atol=1e-6)
    wide, wide_edges = kernels.weight_histogram(lk, bins=21, bound=10 * peak)
    assert wide.sum() == lk.kernel_hwio.size and wide[:9].sum() == 0 and wide_edges[-1] == pytest.approx(10 * peak)


def test_depthwise_and_separable_kernels_are_what_the_layer_computes(rng):
    inputs = keras.Input((7, 7, 3))
    dw = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, use_bias=False, name="dw")(inputs)
    sep = keras.layers.SeparableConv2D(4, 3, depth_multiplier=2, use_bias=False, name="sep")(inputs)
    model = keras.Model(inputs, keras.layers.Concatenate()([dw, keras.layers.Conv2D(6, 1)(sep)]))
    x = rng.standard_normal((1, 7, 7, 3)).astype(np.float32)
    outs = keras.Model(inputs, [dw, sep])(x)
    for name, out, shape in (("dw", outs[0], (3, 3, 1, 6)), ("sep", outs[1], (3, 3, 3, 4))):
        lk = kernels.layer_kernel(model, name)
        assert lk.kernel_hwio.shape == shape and lk.note.startswith(lk.layer_type)
        if name == "dw":  # output channel c*2+j = input channel c convolved with filter c*2+j
            full = np.zeros((3, 3, 3, 6), np.float32)
            for o in range(6):
                full[:, :, o // 2, o] = lk.kernel_hwio[:, :, 0, o]
        else:
            full = lk.kernel_hwio
        direct = np.asarray(keras.ops.conv(x, full, padding="valid"))
        np.testing.assert_allclose(direct, np.asarray(out), rtol=1e-4, atol=1e-5)
    assert kernels.kernel_gallery(kernels.layer_kernel(model, "dw")).ndim == 3


@pytest.fixture(scope="module")
def nested():
    return nested_mobilenet()


def test_nested_model_kernels_by_plain_name(nested):
    lk = kernels.layer_kernel(nested, "Conv1")
    assert lk.path.endswith("/Conv1") and lk.is_first and kernels.default_mode(lk) == "rgb"
    bound = kernels.global_kernel_bound(nested)
    maxima = [np.abs(k.kernel_hwio).max() for k in kernels.conv_kernels(nested)]
    assert bound == pytest.approx(max(maxima)) and len(maxima) > 30
    image = kernels.kernel_gallery(lk, scale="global", bound=bound)
    assert image.dtype == np.uint8 and image.shape[-1] == 3
    last = kernels.layer_kernel(nested, "Conv_1")
    assert kernels.default_mode(last) == "mean"  # 112 x 1280 per-channel tiles would be too many
    assert kernels.kernel_gallery(last, mode="mean").shape[0] > 0
    with pytest.raises(ValueError, match="not a convolution"):
        kernels.layer_kernel(nested, "Conv1_relu")
