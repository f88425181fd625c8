"""The Robustness page as a user drives it, checked against computations made here.

A digit with the bundled MNIST CNN (FGSM by hand with a GradientTape, targeted PGD checked by Keras),
a colour photo with an uploaded Teachable Machine model (its own preprocessing, done here with PIL),
and the dataset tab's accuracy curve against a loop of attacks.
"""

from __future__ import annotations

import base64
import json

import keras
import numpy as np
import tensorflow as tf
from helpers import FIXTURES, ROOT
from helpers import kept as kept_by_runner
from PIL import Image, ImageOps
from streamlit.testing.v1 import AppTest

from vizcore import attribution, models, robustness
from vizcore.data import datasets, images
from vizcore.models import blocks, graph, loading
from vizcore.precompute import store as precomputed

TIMEOUT = 300


def _arr(value) -> np.ndarray:
    """A Plotly JSON array: a plain list, or a typed array {'dtype', 'bdata', 'shape'}."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    return np.asarray(value)


def _figure(at: AppTest, title_part: str) -> dict:
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        if title_part in json.dumps(spec.get("layout", {}).get("title", {}), ensure_ascii=False):
            return spec
    raise AssertionError(f"no figure titled like {title_part!r}")


def _bars(at: AppTest, title: str) -> dict[str, float]:
    """{label: value} of a bar figure, horizontal or not."""
    trace = _figure(at, title)["data"][0]
    labels, values = ("y", "x") if trace.get("orientation") == "h" else ("x", "y")
    return dict(zip(_arr(trace[labels]).tolist(), _arr(trace[values]).astype(float).tolist()))


def _captions(at: AppTest) -> list[str]:
    return [c for image in at.get("image") for c in image.captions]


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value + "".join(e.stack_trace) for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _robustness(at: AppTest | None = None) -> AppTest:
    if at is None:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
        at.run()
    at.switch_page("pages/robustness.py").run()
    _ok(at)
    return at


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def test_fgsm_on_a_digit_against_a_hand_made_attack():
    at = _robustness()
    at.slider(key="rob.eps").set_value(0.2).run()
    _ok(at)
    ds = datasets.load_mnist_sample()
    x = np.asarray(ds.x_nhwc[np.flatnonzero(ds.y == 0)[0]], np.float32)  # the picker's first image: class 0, example 0
    model = models.open_bundled("mnist_cnn").model  # a separate copy
    logits = keras.Model(model.input, model.get_layer("logits").output)
    xt = tf.constant(x[None])
    with tf.GradientTape() as tape:
        tape.watch(xt)
        z = logits(xt)
        loss = tf.reduce_logsumexp(z) - z[0, int(np.argmax(z[0]))]  # cross-entropy of the model's own prediction
    expected = np.clip(x + 0.2 * np.sign(tape.gradient(loss, xt).numpy()[0]), 0, 1)
    x_adv = kept_by_runner(at, "rob.one").value
    np.testing.assert_allclose(x_adv, expected, atol=1e-6)
    after = _softmax(logits.predict(expected[None], verbose=0)[0])
    shown = _bars(at, "After")  # the top 5 classes
    np.testing.assert_allclose(list(shown.values()), [after[int(c)] for c in shown], atol=1e-5)
    top, adv_top = 0, int(np.argmax(after))
    assert f"Adversarial: {adv_top} ({after[adv_top]:.1%})" in _captions(at)
    assert any("black / white = ±51.0 levels" in c for c in _captions(at))  # ε 0.2 of 255 levels
    message = (at.success or at.info)[0].value
    assert (f"{top} → {adv_top}" in message) if adv_top != top else message.startswith(f"The prediction stayed {top}")

    # Grad-CAM of the original class before and after, and the share of top-10% pixels they keep
    layer = blocks.default_target_layer(model)  # the page's CAM layer
    before = attribution.gradcam(model, x, target=top, layer=layer)
    after_map = attribution.gradcam(model, expected, target=top, layer=layer)
    k = int(np.ceil(0.1 * before.size))
    kept = len(
        set(np.argsort(-before.ravel(), kind="stable")[:k]) & set(np.argsort(-after_map.ravel(), kind="stable")[:k])
    )
    assert at.metric[0].value == f"{kept / k:.0%}"

    # the activations: relative L2 change of conv1 and conv2 by Keras sub-models
    changes = _bars(at, "Relative change")
    for name in ("conv1", "conv2"):
        sub = keras.Model(model.input, model.get_layer(name).output)
        a, b = sub.predict(x[None], verbose=0), sub.predict(expected[None], verbose=0)
        assert abs(changes.get(name, np.nan) - np.linalg.norm(b - a) / np.linalg.norm(a)) < 1e-4
    labels = [link.label for link in at.get("page_link")]
    assert any("(Activations)" in s for s in labels) and any("(Filters)" in s for s in labels), labels


def test_targeted_pgd_on_a_digit_reaches_the_target():
    at = _robustness()
    at.radio(key="rob.attack").set_value("pgd_target").run()
    at.slider(key="rob.eps").set_value(0.3).run()
    at.number_input(key="rob.steps").set_value(40).run()
    _ok(at)
    target = at.selectbox(key="rob.target").value
    assert target != 0  # the digit is a 0; the options leave out the prediction
    x_adv = kept_by_runner(at, "rob.one").value
    model = models.open_bundled("mnist_cnn").model
    assert int(np.argmax(model.predict(x_adv[None], verbose=0)[0])) == target
    assert f"0 → {target}" in at.success[0].value
    ds = datasets.load_mnist_sample()
    x = ds.x_nhwc[np.flatnonzero(ds.y == 0)[0]]
    assert np.abs(x_adv - x).max() <= 0.3 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1


def _teachable(photo: str) -> np.ndarray:
    """Teachable Machine's own sample code: ImageOps.fit to 224x224 with Lanczos, then x / 127.5 - 1."""
    fitted = ImageOps.fit(Image.fromarray(images.load_sample_photos()[photo]), (224, 224), Image.Resampling.LANCZOS)
    return np.asarray(fitted, np.float32) / 127.5 - 1.0


def test_pgd_on_a_colour_photo_with_an_uploaded_teachable_machine_model():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.switch_page("pages/model.py")
    at.run()
    at.radio(key="model.source").set_value("upload").run()
    content = (FIXTURES / "tm_converted_keras.zip").read_bytes()
    at.file_uploader(key="model.upload").set_value(("converted_keras.zip", content, "application/zip")).run()
    _ok(at)
    at = _robustness(at)
    at.radio(key="input.source").set_value("photos").run()
    at.selectbox(key="input.photo").set_value("chelsea").run()
    at.radio(key="rob.attack").set_value("pgd").run()
    at.slider(key="rob.eps").set_value(0.01).run()
    _ok(at)
    assert any("±2.6 of 255 levels" in c.value and "'symmetric' range ±0.02" in c.value for c in at.caption)
    # 20 gradients of a 224 px network are estimated at about 0.5 s: on a quiet machine they may run live
    if kept_by_runner(at, "rob.one") is None:
        assert any(c.value.startswith("PGD: 20 gradients, about") for c in at.caption)
        at.button(key="rob.one.run").click().run()
        _ok(at)
    x_adv = kept_by_runner(at, "rob.one").value
    x = _teachable("chelsea")
    assert abs(np.abs(x_adv - x).max() - 0.02) < 1e-5  # ε 0.01 moves a value by 0.02 on [-1, 1]
    assert x_adv.min() >= -1 and x_adv.max() <= 1
    copy = loading.load_model(content, name="converted_keras.zip")  # a separate copy
    before, after = copy.predict(x[None], verbose=0)[0], copy.predict(x_adv[None], verbose=0)[0]
    classes = ("cat", "dog", "teapot")
    shown = _bars(at, "After")
    np.testing.assert_allclose([shown[c] for c in classes], after, rtol=1e-4, atol=1e-5)
    if np.argmax(after) != np.argmax(before):
        assert f"{classes[np.argmax(before)]} → {classes[np.argmax(after)]}" in at.success[0].value
    assert any(c.startswith("Grad-CAM of cat · adversarial") for c in _captions(at)), _captions(at)


def test_the_dataset_tab_against_a_loop_of_attacks():
    at = _robustness()
    at.session_state["rob.tab"] = "Over a dataset"
    at.run()
    at.number_input(key="rob.ds.count").set_value(60).run()
    _ok(at)
    assert any("the attacks on the dataset:" in c.value and "gradients, about" in c.value for c in at.caption)
    at.button(key="rob.ds.run").click().run()
    _ok(at)
    ds = datasets.load_mnist_sample()
    model = models.open_bundled("mnist_cnn").model
    pick = precomputed.pick(len(ds), ds.image_shape, graph.input_spec(model), 60)
    x, y = np.asarray(ds.x_nhwc[pick]), ds.y[pick]
    epsilons = np.round(np.linspace(0, 0.3, 7), 4)
    loop = [
        np.mean(np.argmax(model.predict(robustness.fgsm(model, x, y, eps=e), verbose=0), axis=1) == y) for e in epsilons
    ]
    curve = _figure(at, "Accuracy against ε")["data"][0]
    np.testing.assert_allclose(_arr(curve["x"]).astype(float), epsilons)
    np.testing.assert_allclose(_arr(curve["y"]).astype(float), loop)
    assert loop[0] == np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y)  # ε 0 is the clean accuracy
    run = kept_by_runner(at, "rob.ds").value
    hist = _figure(at, "Minimal ε per image")["data"][0]
    assert _arr(hist["y"]).sum() == np.isfinite(run.minimal).sum()
    for i, twin in zip(run.fragile, run.twins):  # each twin is adversarial at its minimal ε
        assert np.argmax(model.predict(twin[None], verbose=0)[0]) != y[i]
        assert np.abs(twin - x[i]).max() <= run.minimal[i] + 1e-6
    assert len(run.fragile) and any("most fragile" in c for c in _captions(at))
