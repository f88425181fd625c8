"""Tests of vizcore.data.archive.load_images_zip: every image of a ZIP as one class (a concept's examples)."""

from __future__ import annotations

import numpy as np
import pytest
from test_archive import make_zip, png

from vizcore.data.archive import load_images_zip
from vizcore.errors import ArchiveError


def test_every_image_in_any_folder_is_read_as_one_class():
    data = make_zip(
        {
            "striped/a.png": png(8, 8, (255, 0, 0)),
            "striped/more/b.png": png(16, 16, (0, 0, 255)),
            "striped/notes.txt": b"not an image",
            "__MACOSX/striped/._a.png": b"junk",
        }
    )
    ds = load_images_zip(data, size=(8, 8), channels=3)
    assert ds.class_names == ("striped",) and ds.y.tolist() == [0, 0]
    assert ds.files == ("striped/a.png", "striped/more/b.png")
    np.testing.assert_allclose(ds.x_nhwc[0, 0, 0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(ds.x_nhwc[1, 4, 4], [0.0, 0.0, 1.0])
    assert any("unreadable" in n for n in ds.notes) and any("resized 1 image" in n for n in ds.notes)
    loose = load_images_zip(make_zip({"a.png": png(8, 8), "b.png": png(8, 8)}), name="concept")
    assert loose.class_names == ("concept",) and len(loose) == 2


def test_unsafe_or_empty_zips_are_refused():
    with pytest.raises(ArchiveError, match="no readable image"):
        load_images_zip(make_zip({"a.txt": b"hello"}))
    with pytest.raises(ArchiveError, match="outside"):
        load_images_zip(make_zip({"../evil.png": png(8, 8)}))
    with pytest.raises(ArchiveError, match="megapixels"):
        load_images_zip(make_zip({"a.png": png(64, 64), "b.png": png(64, 64)}), max_total_pixels=5000)
