"""One report of the bundled MNIST CNN on 200 bundled digits, written by the command, shared by the report tests."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from vizcore import featurevis as fv
from vizcore import models
from vizcore.data import datasets

N = 200  # images: evenly spaced over the 5,000 bundled digits, as the Dataset view picks them


@pytest.fixture(scope="session")
def n_images() -> int:
    """How many digits the shared report covers (a fixture: conftest is not importable by name)."""
    return N


@pytest.fixture(scope="session")
def written(tmp_path_factory):
    """``python -m vizcore.report`` run in-process: (html path, json path, the JSON, what it printed)."""
    from vizcore.report.__main__ import main

    out = tmp_path_factory.mktemp("report") / "out"  # made by the command
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(printed):
        mp.setenv(fv.MAX_STEPS_ENV, "4")  # a few gradient-ascent steps: the images are not what is tested here
        html_path, json_path = main(
            ["--model", "bundled:mnist_cnn", "--dataset", "mnist_sample", "--out", str(out), "--limit", str(N)]
        )
    return html_path, json_path, json.loads(json_path.read_text(encoding="utf-8")), printed.getvalue()


@pytest.fixture(scope="session")
def mnist():
    """The model and the report's images in its 'unit' range, chosen and prepared here independently."""
    loaded = models.open_bundled("mnist_cnn")
    ds = datasets.load_mnist_sample()
    pick = np.linspace(0, len(ds) - 1, N).astype(int)
    x = np.rint(np.asarray(ds.x_nhwc[pick]) * 255).astype(np.float32) / 255.0
    return loaded, x, ds.y[pick], pick
