"""Shared fixtures: seeded tiny models, written to disk the way users save them."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# trainings started by the tests (AppTest and the browser tests' servers) write outside the repo
os.environ.setdefault("CONVLENS_RUNS_DIR", tempfile.mkdtemp(prefix="convlens_runs_"))
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # vizcore and pages import from the repository root
sys.path.insert(0, str(ROOT / "tests"))  # helpers.py, from any test folder

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from helpers import nested_mobilenet, tiny_functional, tiny_sequential  # noqa: E402


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def saved_dir(tmp_path_factory) -> Path:
    """Tiny models saved as .keras and .h5, loaded back by the tests."""
    d = tmp_path_factory.mktemp("saved")
    tiny_sequential().save(d / "seq.keras")
    tiny_functional().save(d / "func.keras")
    tiny_functional().save(d / "func.h5")
    nested_mobilenet().save(d / "nested.keras")
    return d


@pytest.fixture(scope="module")
def uncapped_steps():
    """For tests that choose their own small step counts: a CI-wide CONVLENS_MAX_STEPS must not cut them."""
    from vizcore.featurevis import MAX_STEPS_ENV

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(MAX_STEPS_ENV, raising=False)
        yield
