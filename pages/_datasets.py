"""The datasets a page can run the working model over (the Dataset view's and the Concepts page's), prepared for it."""

from __future__ import annotations

import hashlib

import streamlit as st

from pages import _cache
from vizcore.data import datasets

SOURCES = {
    "mnist_sample": "Bundled MNIST digits",
    "shapes": "Generated shapes",
    "photos": "Bundled colour photos",
    "zip": "Uploaded ZIP of class folders",
    **{f"keras:{n}": f"keras.datasets: {i.title}" for n, i in datasets.KERAS_DATASETS.items()},
}


def prepared(loaded, ds_key: str, x_nhwc):
    """A dataset's images in the model's size, channels and range (``_cache.prepared``)."""
    return _cache.prepared(loaded, ds_key, x_nhwc)


def load(source: str, limit: int, *, key: str) -> tuple[datasets.ImageDataset, str]:
    """The dataset of a ``SOURCES`` key and its name for cache keys; a ZIP comes from an uploader keyed ``key``
    (the page stops until one is given). Raises ConvLensError for a bad ZIP or an unavailable download."""
    if source == "photos":
        return _cache.sample_photos(), "photos"
    if source == "zip":
        upload = st.file_uploader("ZIP with one folder of images per class", type=["zip"], key=key)
        if upload is None:
            st.info("Upload a ZIP of class folders (cats/1.jpg, dogs/2.png, …).")
            st.stop()
        data = upload.getvalue()
        digest = hashlib.sha1(data).hexdigest()[:12]
        return _cache.zip_dataset(digest, data), f"zip:{digest}"
    if source.startswith("keras:"):
        return _cache.dataset(source.split(":", 1)[1], limit), source
    return _cache.dataset(source), source
