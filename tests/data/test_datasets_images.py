"""Tests of vizcore.data: bundled sample, splits, keras.datasets offline, shapes, image loading, preprocessing.

No network: the keras.datasets tests replace Keras's urlretrieve with one that fails.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import struct
import time
import urllib.error
import zlib

import numpy as np
import pytest
from PIL import Image

from vizcore.data.datasets import (
    KERAS_DATASETS,
    SHAPE_CLASSES,
    ImageDataset,
    load_keras_dataset,
    load_mnist_sample,
    make_shapes,
    stratified_split,
)
from vizcore.data.images import MAX_IMAGE_PIXELS, PREPROCESS_MODES, deprocess, load_image, looks_inverted, preprocess
from vizcore.errors import DatasetUnavailableError, ImageLoadError

# sha256(x.tobytes() + y.tobytes()) of mnist_5k.npz, as recorded in vizcore/assets/README.md
MNIST_SAMPLE_SHA256 = "809ec085d551285cf9efad12c42a6aead98c62f96eb9936cc5b778870773e50d"


def encode(image: Image.Image, fmt: str = "PNG", **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height (8-bit grey) but holds no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


# ---------------------------------------------------------------------------------------------
# Bundled MNIST sample and splits
# ---------------------------------------------------------------------------------------------


def test_mnist_sample_has_500_real_digits_per_class():
    data = load_mnist_sample()
    assert len(data) == 5000 and data.name == "mnist_sample"
    assert data.x_nhwc.shape == (5000, 28, 28, 1) and data.x_nhwc.dtype == np.float32
    assert data.y.dtype == np.int64
    assert np.bincount(data.y).tolist() == [500] * 10
    assert data.class_names == tuple("0123456789") and data.num_classes == 10
    assert data.image_shape == (28, 28, 1)
    assert data.x_nhwc.min() == 0.0 and data.x_nhwc.max() == 1.0
    ink = (data.x_nhwc > 0.5).sum(axis=(1, 2, 3))
    assert ink.min() >= 20  # every image holds a real stroke, none is blank
    # white digit on black: the border is dark, the centre holds the ink
    assert data.x_nhwc[:, :3].mean() < 0.01 < data.x_nhwc[:, 10:18, 10:18].mean()


def test_mnist_sample_matches_recorded_content_and_is_read_only():
    data = load_mnist_sample()
    x = np.rint(data.x_nhwc[..., 0] * 255).astype(np.uint8)
    assert hashlib.sha256(x.tobytes() + data.y.astype(np.uint8).tobytes()).hexdigest() == MNIST_SAMPLE_SHA256
    assert load_mnist_sample().x_nhwc is data.x_nhwc  # cached
    with pytest.raises(ValueError):
        data.x_nhwc[0, 0, 0, 0] = 1.0
    with pytest.raises(ValueError):
        data.y[0] = 3


def test_subset_and_dataset_validation():
    data = load_mnist_sample()
    part = data.subset(np.array([0, 4999, 500]))
    assert part.y.tolist() == [0, 9, 1] and part.x_nhwc.shape == (3, 28, 28, 1)
    np.testing.assert_array_equal(part.x_nhwc[1], data.x_nhwc[4999])
    assert len(data.subset(data.y == 3)) == 500
    with pytest.raises(ValueError, match="y must have shape"):
        ImageDataset(np.zeros((3, 4, 4, 1), np.float32), np.zeros(2, np.int64), ("a",), "bad")


def test_stratified_split_is_proportional_disjoint_and_seeded():
    y = load_mnist_sample().y
    train, val = stratified_split(y, validation_fraction=0.2, seed=0)
    assert len(train) == 4000 and len(val) == 1000
    assert np.bincount(y[val]).tolist() == [100] * 10
    assert np.bincount(y[train]).tolist() == [400] * 10
    assert np.intersect1d(train, val).size == 0
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(5000))
    assert len(set(y[val[:50]].tolist())) > 5  # shuffled: the first few mix classes
    again = stratified_split(y, validation_fraction=0.2, seed=0)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], val)
    other = stratified_split(y, validation_fraction=0.2, seed=1)
    assert not np.array_equal(np.sort(other[1]), np.sort(val))


def test_stratified_split_small_classes():
    y = np.array([0] * 7 + [1] * 3 + [2])
    train, val = stratified_split(y, validation_fraction=0.4, seed=3)
    assert np.bincount(y[val], minlength=3).tolist() == [3, 1, 0]  # 2.8 -> 3, 1.2 -> 1, a single sample trains
    assert np.bincount(y[train], minlength=3).tolist() == [4, 2, 1]
    train, val = stratified_split(np.array([5, 5]), validation_fraction=0.9)
    assert len(train) == 1 and len(val) == 1  # each part keeps at least one
    with pytest.raises(ValueError):
        stratified_split(y, validation_fraction=1.0)


# ---------------------------------------------------------------------------------------------
# keras.datasets, offline
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def offline_keras_home(tmp_path, monkeypatch):
    """Keras's cache points at an empty tmp folder and every download fails like a dead network."""
    import keras.src.backend.config as keras_config
    import keras.src.utils.file_utils as file_utils

    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path))  # Keras read KERAS_HOME at import
    monkeypatch.setattr(file_utils, "urlretrieve", no_network)
    return tmp_path


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_keras_dataset_without_network_names_the_cache_folder(offline_keras_home, name):
    with pytest.raises(DatasetUnavailableError) as info:
        load_keras_dataset(name)
    message = str(info.value)
    assert "could not be downloaded" in message and "no network" in message
    assert os.path.join(str(offline_keras_home), "datasets") in message
    assert "bundled MNIST sample works offline" in message
    assert KERAS_DATASETS[name].cache_files[0][1] in message  # the URL to fetch by hand


def test_keras_dataset_reads_cached_files(offline_keras_home):
    folder = offline_keras_home / "datasets" / "fashion-mnist"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = {
        "train": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "t10k": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
    }
    labels = {"train": np.array([0, 1, 2, 3, 4, 9], np.uint8), "t10k": np.array([9, 8, 7, 6], np.uint8)}
    for part in ("train", "t10k"):
        (folder / f"{part}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\0" * 8 + labels[part].tobytes()))
        (folder / f"{part}-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\0" * 16 + images[part].tobytes()))
    test = load_keras_dataset("fashion_mnist", split="test")
    assert test.name == "fashion_mnist_test" and test.x_nhwc.shape == (4, 28, 28, 1)
    assert test.y.tolist() == [9, 8, 7, 6] and test.class_names[9] == "Ankle boot"
    assert test.x_nhwc.dtype == np.uint8  # kept as stored: 4x smaller than float32
    np.testing.assert_array_equal(test.x_nhwc[..., 0], images["t10k"])
    np.testing.assert_allclose(test.floats()[..., 0], images["t10k"] / 255.0, atol=1e-7)
    np.testing.assert_allclose(test.floats(np.array([2]))[0, ..., 0], images["t10k"][2] / 255.0, atol=1e-7)
    np.testing.assert_array_equal(test.pixels(3)[..., 0], images["t10k"][3])
    assert load_keras_dataset("fashion_mnist", split="train").y.tolist() == [0, 1, 2, 3, 4, 9]


def test_keras_dataset_rejects_unknown_names():
    with pytest.raises(ValueError, match="mnist, fashion_mnist, cifar10"):
        load_keras_dataset("imagenet")
    with pytest.raises(ValueError, match="split"):
        load_keras_dataset("mnist", split="validation")


# ---------------------------------------------------------------------------------------------
# Synthetic shapes
# ---------------------------------------------------------------------------------------------


def object_colour(image_hwc: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The most frequent exact colour inside the box (the flat-filled object)."""
    x0, y0, x1, y1 = box
    colours, counts = np.unique(image_hwc[y0:y1, x0:x1].reshape(-1, 3), axis=0, return_counts=True)
    return colours[counts.argmax()]


def test_shapes_are_balanced_sized_and_in_range():
    data = make_shapes(300, size=64, seed=0)
    assert data.name == "shapes" and data.class_names == SHAPE_CLASSES == ("circle", "square", "triangle")
    assert data.x_nhwc.shape == (300, 64, 64, 3) and data.x_nhwc.dtype == np.float32
    assert np.bincount(data.y).tolist() == [100, 100, 100]
    assert max(np.bincount(make_shapes(10, seed=1).y)) - min(np.bincount(make_shapes(10, seed=1).y)) <= 1
    assert 0.0 <= data.x_nhwc.min() and data.x_nhwc.max() <= 1.0
    x0, y0, x1, y1 = data.boxes.T
    assert (x0 >= 0).all() and (y0 >= 0).all() and (x1 <= 64).all() and (y1 <= 64).all()
    widths = x1 - x0
    assert widths.min() >= 0.25 * 64 - 2 and widths.max() <= 0.6 * 64 + 1


def test_shapes_boxes_are_tight_and_match_the_class():
    data = make_shapes(150, size=64, seed=2)
    fill = {0: [], 1: [], 2: []}
    for image_hwc, box, label in zip(data.x_nhwc, data.boxes, data.y):
        x0, y0, x1, y1 = box
        is_object = (image_hwc == object_colour(image_hwc, box)).all(axis=-1)
        inside = is_object[y0:y1, x0:x1]
        assert is_object.sum() == inside.sum()  # no object pixel outside the box
        assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()  # tight
        fill[int(label)].append(inside.mean())
        # the background, one pixel away from the box and beyond, is clearly another colour
        outside = np.ones(is_object.shape, bool)
        outside[max(0, y0 - 1) : y1 + 1, max(0, x0 - 1) : x1 + 1] = False
        if outside.any():
            distance = np.abs(image_hwc[outside] - object_colour(image_hwc, box)).max(axis=-1)
            assert distance.min() > 0.1
    # fill of the box: square ~1, circle ~pi/4, triangle ~1/2: the labels name the drawn shape
    assert min(fill[1]) > 0.95
    assert 0.7 < np.mean(fill[0]) < 0.85 and max(fill[0]) < 0.9
    assert 0.4 < np.mean(fill[2]) < 0.6 and max(fill[2]) < 0.65


def test_shapes_are_deterministic_per_seed_and_fast():
    a, b, c = make_shapes(30, seed=5), make_shapes(30, seed=5), make_shapes(30, seed=6)
    assert np.array_equal(a.x_nhwc, b.x_nhwc) and np.array_equal(a.boxes, b.boxes) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.x_nhwc, c.x_nhwc) and not np.array_equal(a.boxes, c.boxes)
    start = time.perf_counter()
    make_shapes(1000, size=64, seed=0)
    assert time.perf_counter() - start < 3.0  # ~0.25 s on a laptop core


# ---------------------------------------------------------------------------------------------
# load_image
# ---------------------------------------------------------------------------------------------


def test_load_rgb_png_from_path_bytes_and_file_like(tmp_path):
    rgb_hwc = np.random.default_rng(0).integers(0, 256, (12, 20, 3), dtype=np.uint8)
    data = encode(Image.fromarray(rgb_hwc))
    path = tmp_path / "photo.png"
    path.write_bytes(data)

    class Upload:  # what Streamlit's UploadedFile offers
        name = "upload.png"

        def getvalue(self):
            return data

    for source in (path, str(path), data, io.BytesIO(data), Upload()):
        out = load_image(source)
        assert out.dtype == np.uint8 and out.shape == (12, 20, 3)
        np.testing.assert_array_equal(out, rgb_hwc)


def test_load_grayscale_and_one_bit():
    gray_hw = np.arange(60, dtype=np.uint8).reshape(6, 10) * 4
    out = load_image(encode(Image.fromarray(gray_hw)))
    assert out.shape == (6, 10, 1)
    np.testing.assert_array_equal(out[..., 0], gray_hw)
    bits = Image.fromarray(gray_hw > 100).convert("1")
    out = load_image(encode(bits))
    assert out.shape == (6, 10, 1) and set(np.unique(out).tolist()) == {0, 255}


def test_load_rgba_and_la_composite_on_white():
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., 0] = 200  # red-ish colour everywhere
    rgba[0, :, 3] = [0, 255, 128]
    rgba[1, :, 3] = 255
    out = load_image(encode(Image.fromarray(rgba, "RGBA")))
    assert out.shape == (2, 3, 3)
    assert out[0, 0].tolist() == [255, 255, 255]  # fully transparent -> white
    assert out[0, 1].tolist() == [200, 0, 0]  # opaque -> colour
    assert out[0, 2].tolist() == [227, 127, 127]  # a = 128/255: 200a + 255(1-a) = 227.4, 255(1-a) = 127
    la = Image.merge(
        "LA", (Image.fromarray(np.full((1, 3), 100, np.uint8)), Image.fromarray(np.array([[0, 255, 128]], np.uint8)))
    )
    out = load_image(encode(la))
    assert out.shape == (1, 3, 1) and out[0, :, 0].tolist() == [255, 100, 177]


def test_load_palette_images():
    indices = np.array([[0, 1], [2, 1]], np.uint8)
    image = Image.fromarray(indices, "P")
    image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    out = load_image(encode(image))
    assert out.shape == (2, 2, 3)
    assert out[0, 0].tolist() == [255, 0, 0] and out[1, 0].tolist() == [0, 0, 255]
    out = load_image(encode(image, transparency=1))  # palette entry 1 transparent -> white
    assert out[0, 1].tolist() == [255, 255, 255] and out[0, 0].tolist() == [255, 0, 0]
    grey = Image.fromarray(indices, "P")
    grey.putpalette([0, 0, 0, 90, 90, 90, 255, 255, 255] + [0] * 759)
    out = load_image(encode(grey))
    assert out.shape == (2, 2, 1) and out[..., 0].tolist() == [[0, 90], [255, 90]]


def test_load_cmyk_jpeg_becomes_rgb():
    cyan = Image.new("CMYK", (16, 16), (255, 0, 0, 0))
    out = load_image(encode(cyan, "JPEG", quality=95))
    assert out.shape == (16, 16, 3)
    np.testing.assert_allclose(out.reshape(-1, 3).mean(axis=0), [0, 255, 255], atol=4)


def test_load_16_bit_png_is_scaled_not_clipped():
    values_hw = np.array([[0, 65535], [32768, 16384]], np.uint16)
    image = Image.fromarray(values_hw)
    assert image.mode == "I;16"
    out = load_image(encode(image))
    assert out.shape == (2, 2, 1) and out.dtype == np.uint8
    assert out[..., 0].tolist() == [[0, 255], [128, 64]]
    narrow = Image.fromarray(np.array([[1000, 3000, 2000]], np.uint16))  # 12-bit-like data
    assert load_image(encode(narrow))[0, :, 0].tolist() == [0, 255, 128]  # its own range -> 0..255


def test_load_float_tiff_is_scaled():
    values = np.array([[-1.0, 0.0, 1.0]], np.float32)
    out = load_image(encode(Image.fromarray(values, "F"), "TIFF"))
    assert out[0, :, 0].tolist() == [0, 128, 255]


def test_exif_orientation_is_applied():
    rgb_hwc = np.zeros((20, 40, 3), np.uint8)  # 40 wide, 20 high
    rgb_hwc[:5, :5] = [255, 0, 0]  # marked top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    out = load_image(encode(Image.fromarray(rgb_hwc), "JPEG", exif=exif.tobytes(), quality=95))
    assert out.shape == (40, 20, 3)
    assert out[1, -2, 0] > 200 and out[1, -2, 1:].max() < 60  # top-left moved to top-right
    assert out[1, 1, 0] < 60 and out[-2, -2, 0] < 60


def test_animated_gif_gives_first_frame():
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    out = load_image(data)
    assert out.shape == (8, 8, 3) and out[0, 0].tolist() == [255, 0, 0]


def test_bad_files_raise_image_load_error(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageLoadError, match=r"empty.png is empty \(0 bytes\)"):
        load_image(empty)

    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    data = encode(noise)
    with pytest.raises(ImageLoadError, match="truncated or damaged"):
        load_image(data[: len(data) // 2], name="cut.png")

    text = tmp_path / "notes.png"
    text.write_text("these are my notes, not a picture\n")
    with pytest.raises(ImageLoadError, match="notes.png is not an image.*text file.*PNG, JPEG"):
        load_image(text)

    with pytest.raises(ImageLoadError, match="could not be read"):
        load_image(tmp_path / "missing.png")


def test_huge_images_are_refused_from_the_header():
    declared = png_declaring(8000, 8000)
    assert len(declared) < 100  # a tiny file ...
    with pytest.raises(
        ImageLoadError, match=r"big.png is 8000x8000 pixels \(64 megapixels\); the limit is 40 megapixels"
    ):
        load_image(declared, name="big.png")  # ... refused before decoding 64 MP
    assert MAX_IMAGE_PIXELS == 40_000_000
    with pytest.raises(ImageLoadError, match=r"100x100 pixels \(0.01 megapixels\); the limit is 0.001"):
        load_image(encode(Image.new("RGB", (100, 100))), max_pixels=1000)
    # Pillow's guard fires while reading a header above 179 MP: the same kind of message
    with pytest.raises(ImageLoadError, match=r"bomb.png is larger than 179 megapixels.*the limit is 40 megapixels"):
        load_image(png_declaring(20000, 20000), name="bomb.png")
    # with our limit lifted, Pillow's warning (above 89 MP) is turned into the same refusal
    with pytest.raises(ImageLoadError, match=r"larger than 89.5 megapixels.*the limit is 89.5 megapixels"):
        load_image(png_declaring(10000, 10000), max_pixels=10**12)


# ---------------------------------------------------------------------------------------------
# preprocess / deprocess
# ---------------------------------------------------------------------------------------------

RNG_IMAGE = np.random.default_rng(7).integers(0, 256, (30, 40, 3), dtype=np.uint8)


def test_preprocess_resizes_and_converts_to_grayscale():
    result = preprocess(RNG_IMAGE, size=(28, 28), channels=1)
    assert result.image_hwc.shape == (28, 28, 1) and result.image_hwc.dtype == np.float32
    assert result.display_hwc.shape == (28, 28, 1) and result.display_hwc.dtype == np.uint8
    assert result.notes == ("converted colour image to grayscale for a 1-channel model", "resized 40x30 to 28x28")
    np.testing.assert_allclose(result.image_hwc, result.display_hwc / 255.0, atol=1e-6)
    same_size = preprocess(RNG_IMAGE, size=(None, None), channels=1)
    expected = np.asarray(Image.fromarray(RNG_IMAGE).convert("L"))
    np.testing.assert_array_equal(same_size.display_hwc[..., 0], expected)  # luminance, Pillow's 'L'
    assert preprocess(RNG_IMAGE, size=(None, 20), channels=3).display_hwc.shape == (30, 20, 3)


def test_preprocess_replicates_gray_and_inverts():
    gray_hwc = RNG_IMAGE[..., :1]
    result = preprocess(gray_hwc, size=(None, None), channels=3, invert=True)
    assert result.display_hwc.shape == (30, 40, 3)
    for c in range(3):
        np.testing.assert_array_equal(result.display_hwc[..., c], 255 - gray_hwc[..., 0])
    assert any(note.startswith("inverted") for note in result.notes)
    assert preprocess(gray_hwc[..., 0], size=(30, 40), channels=1).notes == ()  # 2-D input accepted, nothing to do


def test_keep_aspect_pads_with_the_border_colour():
    image_hwc = np.zeros((10, 40, 3), np.uint8)
    image_hwc[:] = [0, 0, 255]  # blue ring
    image_hwc[1:-1, 1:-1] = [255, 0, 0]  # red inside
    padded = preprocess(image_hwc, size=(40, 40), channels=3, keep_aspect=True)
    stretched = preprocess(image_hwc, size=(40, 40), channels=3)
    assert padded.display_hwc[10, 20].tolist() == [0, 0, 255]  # padding above the image (rows 15-24)
    assert padded.display_hwc[20, 20].tolist() == [255, 0, 0]
    assert stretched.display_hwc[10, 20].tolist() == [255, 0, 0]
    assert "padded 40x10 to 40x40" in padded.notes[0]


@pytest.mark.parametrize("mode", ["symmetric", "caffe", "torch"])
def test_modes_match_keras_reference(mode):
    from keras.applications import imagenet_utils, mobilenet_v2, vgg16

    reference = {
        "symmetric": mobilenet_v2.preprocess_input,
        "caffe": vgg16.preprocess_input,
        "torch": lambda x: imagenet_utils.preprocess_input(x, mode="torch"),
    }[mode]
    result = preprocess(RNG_IMAGE, size=(16, 16), channels=3, mode=mode)
    expected = reference(result.display_hwc.astype(np.float32).copy())
    np.testing.assert_allclose(result.image_hwc, expected, rtol=1e-5, atol=1e-4)


def test_unit_and_raw_modes():
    unit = preprocess(RNG_IMAGE, size=(None, None), channels=3, mode="unit")
    raw = preprocess(RNG_IMAGE, size=(None, None), channels=3, mode="raw")
    np.testing.assert_allclose(unit.image_hwc, RNG_IMAGE / 255.0, atol=1e-6)
    np.testing.assert_array_equal(raw.image_hwc, RNG_IMAGE.astype(np.float32))


@pytest.mark.parametrize("mode", sorted(PREPROCESS_MODES))
def test_deprocess_round_trips(mode):
    result = preprocess(RNG_IMAGE, size=(20, 24), channels=3, mode=mode)
    back = deprocess(result.image_hwc, mode)
    assert back.dtype == np.uint8
    assert np.abs(back.astype(int) - result.display_hwc.astype(int)).max() <= 1


def test_preprocess_rejects_bad_arguments():
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        preprocess(RNG_IMAGE, size=(8, 8), channels=4)
    with pytest.raises(ValueError, match="unknown preprocessing mode"):
        preprocess(RNG_IMAGE, size=(8, 8), channels=3, mode="imagenet")
    with pytest.raises(ValueError, match="needs 3 channels"):
        preprocess(RNG_IMAGE, size=(8, 8), channels=1, mode="caffe")
    with pytest.raises(ValueError, match="uint8"):
        preprocess(RNG_IMAGE.astype(np.float32), size=(8, 8), channels=3)


def test_looks_inverted():
    digit_hwc = np.rint(load_mnist_sample().x_nhwc[7] * 255).astype(np.uint8)
    assert not looks_inverted(digit_hwc)
    assert looks_inverted(255 - digit_hwc)
    assert looks_inverted(np.repeat(255 - digit_hwc, 3, axis=-1))
    assert not looks_inverted(np.full((20, 20), 128, np.uint8))
