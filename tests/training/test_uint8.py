"""A uint8 dataset (the keras.datasets as downloaded) trains and evaluates as its float32 twin, cast per batch."""

from __future__ import annotations

import numpy as np
from helpers import tiny_sequential

from vizcore import training
from vizcore.data.datasets import ImageDataset
from vizcore.inspect import evaluation


def _twins(n: int = 40):
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (n, 12, 12, 1), dtype=np.uint8)
    y = rng.integers(0, 3, n).astype(np.int64)
    as_uint8 = ImageDataset(pixels, y, ("a", "b", "c"), "u8")
    as_float = ImageDataset(pixels.astype(np.float32) / 255.0, y, ("a", "b", "c"), "f32")
    return as_uint8, as_float, pixels


def test_floats_and_pixels_read_both_storages():
    as_uint8, as_float, pixels = _twins()
    np.testing.assert_array_equal(as_uint8.floats(np.array([5, 2])), as_float.x_nhwc[[5, 2]])
    assert as_uint8.floats(slice(0, 7)).dtype == np.float32 and as_uint8.floats(slice(0, 7)).shape == (7, 12, 12, 1)
    assert as_float.floats() is as_float.x_nhwc  # float32 storage: no copy
    np.testing.assert_array_equal(as_uint8.pixels(9), pixels[9])
    np.testing.assert_array_equal(as_float.pixels(9), pixels[9])  # rounding back is exact for k/255


def test_training_batches_and_evaluation_match_the_float_twin():
    as_uint8, as_float, _ = _twins()
    config = training.TrainConfig(batch_size=16, flip=False, shift=0.0, rotation=0.0)
    got = [(x.numpy(), y.numpy()) for x, y in training.make_dataset(as_uint8, config, training=False)]
    want = [(x.numpy(), y.numpy()) for x, y in training.make_dataset(as_float, config, training=False)]
    assert [x.dtype for x, _ in got] == [np.float32] * 3
    for (xg, yg), (xw, yw) in zip(got, want, strict=True):
        np.testing.assert_allclose(xg, xw, atol=1e-7)
        np.testing.assert_array_equal(yg, yw)
    model = tiny_sequential()
    ev_u8 = evaluation.evaluate(model, as_uint8, batch_size=4)  # 16*4 = 64-image chunks: one chunk
    ev_f = evaluation.evaluate(model, as_float, batch_size=1)  # 16-image chunks: three chunks
    np.testing.assert_allclose(ev_u8.probabilities, ev_f.probabilities, atol=1e-6)
    assert ev_u8.accuracy == ev_f.accuracy
