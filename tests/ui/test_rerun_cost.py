"""What a rerun costs, by counts: no Keras session clearing, no emptied kernel cache, no costly recomputation.

Streamlit calls ``keras.backend.clear_session()`` after every script run; that empties TensorFlow's
kernel cache, and the next run rebuilds every kernel (about 10x the forward pass at 224 px).
``pages/_rerun.lighten`` turns it off once per process. These tests count calls, not seconds.
"""

from __future__ import annotations

import tomllib

import keras
import matplotlib
import pytest
from helpers import ROOT
from streamlit.testing.v1 import AppTest
from tensorflow.python.eager import context

from vizcore.attribution import metrics
from vizcore.inspect import activations

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TIMEOUT = 120


@pytest.fixture
def counts(monkeypatch):
    """Counts calls of keras.backend.clear_session, TensorFlow's kernel-cache clearing and the costly computations."""
    calls = {"clear_session": 0, "clear_kernel_cache": 0, "all_layers": 0, "deletion": 0}

    def counting(name, inner):
        def wrapped(*args, **kwargs):
            calls[name] += 1
            return inner(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(keras.backend, "clear_session", counting("clear_session", keras.backend.clear_session))
    monkeypatch.setattr(
        context.Context, "clear_kernel_cache", counting("clear_kernel_cache", context.Context.clear_kernel_cache)
    )
    monkeypatch.setattr(activations, "get_activations", counting("all_layers", activations.get_activations))
    monkeypatch.setattr(metrics, "deletion_curve", counting("deletion", metrics.deletion_curve))
    return calls


def _page(path: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    at.switch_page(path).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _next_example(at: AppTest) -> None:
    box = at.number_input(key="input.index")
    box.set_value(box.value + 1).run()
    assert not at.exception, [e.value for e in at.exception]


def test_attribution_reruns_keep_the_kernels_and_skip_hidden_work(counts):
    at = _page("pages/attribution.py")
    assert at.tabs[0].label == "Maps"
    before = dict(counts)
    _next_example(at)
    _next_example(at)
    at.selectbox(key="attr.cmap").set_value("gray").run()
    at.slider(key="attr.alpha").set_value(0.8).run()
    assert not at.exception, [e.value for e in at.exception]
    assert counts["clear_session"] == before["clear_session"] == 0, "Streamlit's clear_session ran after a rerun"
    assert counts["clear_kernel_cache"] == 0, "TensorFlow's kernel cache was emptied between reruns"
    assert counts["deletion"] == 0, "the hidden Faithfulness tab computed its curves"
    assert any(c.startswith("Grad-CAM ·") for img in at.get("image") for c in img.captions)  # the live maps still show


def test_activations_display_changes_reuse_the_forward_pass(counts):
    from pages import _cache

    _cache.activations.clear()  # other tests may have cached this input
    at = _page("pages/activations.py")
    assert counts["all_layers"] == 1  # the first view: one forward pass for every layer
    at.radio(key="act.scale").set_value("layer").run()
    at.selectbox(key="act.cmap").set_value("gray").run()
    assert not at.exception, [e.value for e in at.exception]
    assert counts["all_layers"] == 1, "a display change ran the all-layer forward pass again"
    _next_example(at)
    assert counts["all_layers"] == 2  # a new input: one more, and only one
    assert counts["clear_session"] == 0 and counts["clear_kernel_cache"] == 0


def test_no_full_collection_after_every_run():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False  # ~0.25 s of CPU per rerun with TensorFlow loaded


def test_the_replacement_still_closes_matplotlib_figures(counts):
    from streamlit.runtime.scriptrunner import script_runner

    from pages import _rerun

    assert _rerun.lighten()
    plt.figure()
    assert plt.get_fignums()
    script_runner._clean_problem_modules()
    assert not plt.get_fignums() and counts["clear_session"] == 0


KEEPS_ITS_IMPORT_ERROR = """
try:
    import convlens_no_such_backend  # an optional backend that is not installed
except ImportError as err:
    KEPT = err  # kept to raise later, as optuna keeps redis's
"""


def _import_from_a_run(importer, name: str):
    """Import ``name`` from inside a function whose frame holds a session-like object; a weak reference to it."""
    import weakref

    class Session:
        pass

    session = Session()
    importer(name)
    return weakref.ref(session)


@pytest.mark.parametrize("detached", [False, True])
def test_an_import_that_keeps_its_traceback_does_not_pin_the_importing_run(tmp_path, monkeypatch, detached):
    import gc
    import importlib

    from pages import _rerun

    name = f"convlens_keeps_error_{int(detached)}"
    (tmp_path / f"{name}.py").write_text(KEEPS_ITS_IMPORT_ERROR)
    monkeypatch.syspath_prepend(str(tmp_path))
    ref = _import_from_a_run(_rerun.import_detached if detached else importlib.import_module, name)
    gc.collect()
    assert (ref() is None) == detached  # a plain import keeps the run's frames alive through the kept traceback
