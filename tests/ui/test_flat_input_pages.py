"""A tf.keras MNIST LeNet with a 2-D input (28, 28), uploaded as a new user would, through every explorer page."""

from __future__ import annotations

import numpy as np
from helpers import FIXTURES
from test_byom import _ok, _top_predictions, upload

PAGES = ("kernels", "activations", "convolution", "attribution", "filters", "dataset")


def test_a_2d_input_lenet_opens_on_every_page_as_a_greyscale_model():
    expected = np.load(FIXTURES / "tfk2_lenet_2d_expected.npz")
    at = upload("tfk2_lenet_2d.h5", (FIXTURES / "tfk2_lenet_2d.h5").read_bytes())
    _ok_but_the_note(at)
    assert next(m.value for m in at.metric if m.label == "Input") == "28×28×1"
    at.session_state["dataset.limit"] = 300  # the Dataset view over 300 digits, not 5,000
    for page in PAGES:
        at.switch_page(f"pages/{page}.py").run()
        if page == "filters":
            at.session_state["fv.steps"] = 16  # a short gradient ascent
            at.button(key="fv.run").click().run()
        _ok(at)
        assert at.get("image") or at.get("plotly_chart"), page
        if page == "activations":  # the picker's first digit of class 0 with its channel: tf.keras's own numbers
            assert at.radio(key="input.source").value == "data"
            shown = _top_predictions(at)
            want = {f"class {c}": float(p) for c, p in enumerate(expected["probs"][0])}
            np.testing.assert_allclose([shown[c] for c in shown], [want[c] for c in shown], rtol=1e-4, atol=1e-5)
            assert max(shown, key=shown.get) == "class 0"


def _ok_but_the_note(at) -> None:
    """No exception or error on the Model page, and the one-sentence note about the 2-D input as a warning."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    notes = [w.value for w in at.warning]
    assert len(notes) == 1 and "greyscale 28×28×1 image model" in notes[0], notes
