"""Tests of vizcore.data.archive: class folders in a ZIP become a dataset; unsafe or unusable ZIPs are refused."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from vizcore.data.archive import ZipImageDataset, load_image_zip
from vizcore.data.datasets import ImageDataset
from vizcore.errors import ArchiveError


def png(width: int, height: int, colour=(255, 0, 0), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), colour if mode == "RGB" else colour[0]).save(buffer, format="PNG")
    return buffer.getvalue()


def make_zip(entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, payload in entries.items():
            zf.writestr(name, payload)
    return buffer.getvalue()


def test_class_folders_become_a_sorted_labelled_dataset():
    data = make_zip(
        {
            "dogs/b.png": png(8, 8, (0, 0, 255)),
            "cats/a.png": png(8, 8, (255, 0, 0)),
            "cats/b.png": png(8, 8, (255, 0, 0)),
            "dogs/a.png": png(8, 8, (0, 0, 255)),
        }
    )
    ds = load_image_zip(data)
    assert isinstance(ds, ImageDataset) and isinstance(ds, ZipImageDataset)
    assert ds.class_names == ("cats", "dogs")
    assert ds.y.tolist() == [0, 0, 1, 1]
    assert ds.files == ("cats/a.png", "cats/b.png", "dogs/a.png", "dogs/b.png")
    assert ds.x_nhwc.shape == (4, 8, 8, 3) and ds.x_nhwc.dtype == np.float32
    np.testing.assert_allclose(ds.x_nhwc[0, 0, 0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(ds.x_nhwc[3, 0, 0], [0.0, 0.0, 1.0])
    assert ds.notes == ()


def test_one_shared_top_folder_is_looked_through_and_junk_is_ignored():
    data = make_zip(
        {
            "pets/cats/1.png": png(6, 6),
            "pets/dogs/1.png": png(6, 6),
            "__MACOSX/pets/cats/._1.png": b"junk",
            "pets/.DS_Store": b"junk",
        }
    )
    ds = load_image_zip(data)
    assert ds.class_names == ("cats", "dogs")
    assert len(ds) == 2 and ds.notes == ()


def test_mixed_sizes_are_resized_to_the_most_common_or_the_given_size():
    data = make_zip(
        {
            "a/1.png": png(10, 8),
            "a/2.png": png(10, 8),
            "b/1.png": png(20, 30),
            "b/2.png": png(10, 8),
        }
    )
    ds = load_image_zip(data)
    assert ds.image_shape == (8, 10, 3)  # (height, width): the most common size
    assert "resized 1 image to 10x8" in ds.notes
    ds = load_image_zip(data, size=(28, 28), channels=1)
    assert ds.image_shape == (28, 28, 1)
    assert "resized 4 images to 28x28" in ds.notes and "converted 4 images to grayscale" in ds.notes


def test_channels_follow_the_images_unless_given():
    grey = make_zip({"a/1.png": png(8, 8, (90,), "L"), "b/1.png": png(8, 8, (200,), "L")})
    assert load_image_zip(grey).image_shape == (8, 8, 1)
    mixed = make_zip({"a/1.png": png(8, 8, (90,), "L"), "b/1.png": png(8, 8)})
    ds = load_image_zip(mixed)
    assert ds.image_shape == (8, 8, 3) and "converted 1 image to RGB" in ds.notes


def test_unreadable_files_are_skipped_with_a_note():
    data = make_zip(
        {
            "a/1.png": png(8, 8),
            "a/readme.txt": b"hello",
            "b/1.png": png(8, 8),
            "b/2.png": b"\x89PNG broken",
            "top.png": png(8, 8),
        }
    )
    ds = load_image_zip(data)
    assert len(ds) == 2
    assert any(n.startswith("skipped 2 unreadable files (a/readme.txt, b/2.png") for n in ds.notes)
    assert "skipped 1 file outside the class folders" in ds.notes


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"just some text, not a zip", "not a ZIP"),
        (png(8, 8), "an image, not a ZIP"),
        (make_zip({"cats/1.png": png(8, 8), "cats/2.png": png(8, 8)}), "only the folder 'cats'"),
        (make_zip({"1.png": png(8, 8)}), "no class folders"),
        (make_zip({"cats/1.png": png(8, 8), "dogs/1.txt": b"not an image"}), "'dogs' has no readable image"),
        (make_zip({"cats/1.png": png(8, 8), "dogs/": b""}), "'dogs' has no readable image (it is empty)"),
        (make_zip({"pets/cats/1.png": png(8, 8), "pets/dogs/": b""}), "'dogs' has no readable image (it is empty)"),
        (make_zip({"cats/1.png": png(8, 8), "dogs/../../evil.png": png(8, 8)}), "outside the archive"),
        (make_zip({"cats/1.png": png(8, 8), "/etc/dogs/1.png": png(8, 8)}), "absolute path"),
        (make_zip({"cats/1.png": png(8, 8), "C:\\dogs\\1.png": png(8, 8)}), "absolute path"),
        (make_zip({"cats/1.png": png(8, 8), "dogs\\..\\..\\1.png": png(8, 8)}), "outside the archive"),
    ],
)
def test_refusals_are_typed_with_a_clear_message(data, words):
    with pytest.raises(ArchiveError) as info:
        load_image_zip(data)
    assert words in str(info.value)


def test_a_decompression_bomb_is_refused_from_the_directory_before_reading(monkeypatch):
    bomb = make_zip({"cats/1.png": png(8, 8), "dogs/1.png": b"\0" * (3 * 2**20)})  # 3 MB -> a few kB
    read_calls = []
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: read_calls.append(a) or pytest.fail("read"))
    with pytest.raises(ArchiveError, match="decompression bomb"):
        load_image_zip(bomb)
    assert read_calls == []


def test_total_uncompressed_bytes_and_file_count_limits():
    data = make_zip({f"{c}/{i}.png": png(8, 8) for c in "ab" for i in range(3)})
    with pytest.raises(ArchiveError, match="at most 5 can be read"):
        load_image_zip(data, max_files=5)
    with pytest.raises(ArchiveError, match="expand to"):
        load_image_zip(data, max_uncompressed_bytes=100)
    with pytest.raises(ArchiveError, match="megapixels"):
        load_image_zip(data, max_total_pixels=200)
    assert len(load_image_zip(data, max_files=6)) == 6


def test_size_of_the_result_is_bounded():
    data = make_zip({"a/1.png": png(8, 8), "b/1.png": png(8, 8)})
    with pytest.raises(ArchiveError, match="smaller image size"):
        load_image_zip(data, size=(20000, 20000))
