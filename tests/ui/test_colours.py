"""Colours of 'caffe' models (VGG16, ResNet50 take B, G, R): red stays red wherever it is shown.

Each test builds the BGR values by hand (channel 0 = blue, minus the ImageNet mean) and checks
what a person would see against the colour named in the test.
"""

from __future__ import annotations

import io
import zipfile

import keras
import numpy as np
from PIL import Image

from vizcore import featurevis as fv
from vizcore import models
from vizcore.data import datasets, images
from vizcore.inspect import kernels
from vizcore.present import render

MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)  # Keras's caffe mode, typed in by hand
RED = np.array([255, 0, 0], np.uint8)


def _red_image(h: int = 4, w: int = 5) -> np.ndarray:
    image = np.zeros((h, w, 3), np.uint8)
    image[...] = RED
    return image


def _caffe_red_by_hand(h: int = 4, w: int = 5) -> np.ndarray:
    """A pure-red picture as a caffe model receives it: B = 0, G = 0, R = 255, minus the means."""
    x = np.zeros((h, w, 3), np.float32)
    x[..., 0] = 0 - MEAN_BGR[0]  # blue
    x[..., 1] = 0 - MEAN_BGR[1]  # green
    x[..., 2] = 255 - MEAN_BGR[2]  # red
    return x


def test_caffe_preprocessing_is_bgr_minus_the_mean():
    prepared = images.preprocess(_red_image(), size=(4, 5), channels=3, mode="caffe")
    np.testing.assert_allclose(prepared.image_hwc, _caffe_red_by_hand(), atol=1e-4)
    assert (prepared.display_hwc == RED).all()  # what overlays are drawn on: RGB
    assert images.is_bgr("caffe") and not any(images.is_bgr(m) for m in images.PREPROCESS_MODES if m != "caffe")


def test_a_caffe_preprocessed_red_image_displays_as_red():
    shown = images.deprocess(_caffe_red_by_hand(), "caffe")
    assert shown.dtype == np.uint8 and (shown == RED).all(), shown[0, 0]
    round_trip = images.deprocess(
        images.preprocess(_red_image(), size=(4, 5), channels=3, mode="caffe").image_hwc, "caffe"
    )
    assert (round_trip == RED).all()


def test_featurevis_images_of_a_caffe_model_display_as_red():
    batch = _caffe_red_by_hand()[None]
    tiles = fv.to_uint8(batch, fv.input_range(3, "caffe"))
    assert (tiles == RED).all(), tiles[0, 0, 0]
    archive = fv.export_zip(batch, fv.Settings(), preprocess="caffe", names=["red"])
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        png = np.asarray(Image.open(io.BytesIO(zf.read("red.png"))).convert("RGB"))
    assert (png == RED).all()


def test_an_overlay_on_a_caffe_input_keeps_its_colours():
    prepared = images.preprocess(_red_image(), size=(4, 5), channels=3, mode="caffe")
    heat = np.zeros((4, 5), np.float32)
    heat[0, 0] = 1.0
    out = render.overlay(prepared.display_hwc, heat, cmap="gray", alpha=0.5)
    # gray colormap: 0 -> black, 1 -> white; half of each over red
    np.testing.assert_array_equal(out[1, 1], [128, 0, 0])
    np.testing.assert_array_equal(out[0, 0], [255, 128, 128])


def _one_by_one_conv(reads: dict[int, float], filters: int = 1, size: int = 8) -> keras.Model:
    """A model whose first conv (1x1, linear) weights input channel c by reads[c], per filter."""
    inputs = keras.Input((size, size, 3))
    conv = keras.layers.Conv2D(filters, 1, name="first", use_bias=False)
    x = conv(inputs)
    outputs = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, outputs)
    kernel = np.zeros((1, 1, 3, filters), np.float32)
    for c, w in reads.items():
        kernel[0, 0, c, :] = w
    conv.set_weights([kernel])
    return model


def test_kernel_composite_of_a_filter_reading_the_models_blue_channel_shows_blue():
    inputs = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(2, 3, name="first", use_bias=False)
    model = keras.Model(inputs, conv(inputs))
    kernel = np.zeros((3, 3, 3, 2), np.float32)
    kernel[:, :, 0, 0] = 1.0  # filter 0 reads the model's channel 0: blue for a caffe model
    kernel[:, :, 2, 1] = 1.0  # filter 1 reads channel 2: red for a caffe model
    conv.set_weights([kernel])
    lk = kernels.layer_kernel(model, "first")
    # by hand: unit = 0.5 + 0.5 * w / max|w| -> 1.0 where read (255), 0.5 elsewhere (rint(127.5) = 128)
    blue, red = np.array([128, 128, 255]), np.array([255, 128, 128])
    tiles = kernels.kernel_tiles(lk, mode="rgb", scale="layer", bgr=True)
    assert (tiles[0] == blue).all() and (tiles[1] == red).all(), (tiles[0, 0, 0], tiles[1, 0, 0])
    plain = kernels.kernel_tiles(lk, mode="rgb", scale="layer")  # an RGB model: channel 0 is red
    assert (plain[0] == red).all() and (plain[1] == blue).all()
    gallery = kernels.kernel_gallery(lk, mode="rgb", scale="layer", bgr=True, tile_px=3, pad=1, columns=2)
    np.testing.assert_array_equal(gallery[1, 1], blue)  # first tile
    np.testing.assert_array_equal(gallery[1, 5], red)  # second tile, after 3 pixels and 1 of padding


def test_gradient_ascent_on_a_caffe_models_red_channel_displays_red():
    model = _one_by_one_conv({2: 1.0})  # the model's channel 2: red when fed BGR, blue when fed RGB
    settings = fv.Settings(steps=32, learning_rate=0.2, param=fv.PixelParam(decorrelate=False), image_size=8)
    shown = {}
    for mode in ("caffe", "unit"):
        result = fv.optimize(model, fv.Channel("first"), [0], settings=settings, preprocess=mode)
        centre = fv.to_uint8(result.images_nhwc, result.input_range)[0, 2:6, 2:6]  # the objective skips the border
        shown[mode] = centre.reshape(-1, 3).mean(axis=0)
    red, green, blue = shown["caffe"]
    assert red > 200 and red > green + 60 and red > blue + 60, shown["caffe"]
    red, green, blue = shown["unit"]
    assert blue > 200 and blue > red + 60 and blue > green + 60, shown["unit"]


def test_filters_page_mean_on_real_data_uses_the_models_range():
    from pages import _cache

    model = _one_by_one_conv({2: 1.0}, size=64)
    shapes = datasets.make_shapes(200, seed=5)  # what the page uses for colour models, already 64x64
    pixels = np.rint(shapes.x_nhwc * 255).astype(np.float32)
    batch_bgr = pixels[..., ::-1] - MEAN_BGR
    expected = fv.real_activation(model, "first", batch_bgr)
    as_loaded = lambda mode: models.LoadedModel(model, f"test:{mode}", "one-by-one", ("a",), mode)  # noqa: E731
    got = _cache.real_activation(as_loaded("caffe"), "first")
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    unit = _cache.real_activation(as_loaded("unit"), "first")
    np.testing.assert_allclose(unit, fv.real_activation(model, "first", pixels / 255.0), rtol=1e-5)
    assert abs(float(got[0]) - float(unit[0])) > 1.0
