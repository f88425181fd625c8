"""The bundled shapes CNN and shapes with their object boxes, shared by the concept tests."""

from __future__ import annotations

import numpy as np
import pytest

from vizcore import models
from vizcore.data import datasets

TRIANGLE = datasets.SHAPE_CLASSES.index("triangle")


@pytest.fixture(scope="session")
def shapes_cnn():
    return models.open_bundled("shapes_cnn").model


@pytest.fixture(scope="session")
def shapes():
    """600 held-out shapes (seed 2, not the training seed 1), with boxes."""
    return datasets.make_shapes(600, seed=2)


@pytest.fixture(scope="session")
def triangles(shapes):
    idx = np.flatnonzero(shapes.y == TRIANGLE)
    return shapes.x_nhwc[idx], shapes.boxes[idx]
