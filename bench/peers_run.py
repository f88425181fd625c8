"""ConvLens against Xplique 2.0.2 on the same model, image, target and settings, in one process.

    $CONVLENS_XPLIQUE_PYTHON bench/peers_run.py out.json [mnist|mobilenet ...]

Run by ``bench/bench_peers.py`` with the Python of the Xplique venv (``docs/peers.md``): its
requirements are ours plus Xplique, so it imports ``vizcore`` from the repository root and
``xplique`` side by side. For every method the two libraries' calls and the bare floor run in
turns (ConvLens, Xplique, floor), after one warm call each; each figure is the median of
``CONVLENS_BENCH_PEERS_REPEAT`` (5) timed calls.

The floor is what the network itself costs: a bare compiled forward (or forward + backward to the
input) of the plain Keras model (pre-softmax, BatchNormalization not folded) on one chunk of
min(n, ConvLens's chunk size) copies of the image, scaled to the method's n samples. Xplique runs
with its default ``batch_size`` 32 (``CONVLENS_BENCH_PEERS_XPLIQUE_BATCH`` to change it).

Agreement: Pearson and Spearman correlation of the two maps after the same
display (absolute value, or positive part, and max over channels) and min-max normalization.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from scipy import stats  # noqa: E402

REPEAT = int(os.environ.get("CONVLENS_BENCH_PEERS_REPEAT", "5"))
XPLIQUE_BATCH = int(os.environ.get("CONVLENS_BENCH_PEERS_XPLIQUE_BATCH", "32"))  # Xplique's default batch_size


@dataclass(frozen=True)
class Case:
    """One method: ConvLens's label and options, Xplique's class and arguments, the floor's kind and count."""

    label: str
    options: dict
    xplique: str  # a class of xplique.attributions
    xplique_args: dict
    xplique_model: str  # 'logits' or 'probabilities'
    floor: str  # 'gradient' or 'forward'
    samples: int  # images through the network per explanation
    display: str  # how both maps are shown before the comparison: 'abs', 'relu' or 'signed'


@dataclass(frozen=True)
class Result:
    model: str
    method: str
    convlens_ms: float
    xplique_ms: float | None
    floor_ms: float
    floor: str
    pearson: float | None
    spearman: float | None
    note: str = ""


def _median_ms(times: list[float]) -> float:
    return float(np.median(times) * 1000.0)


def _shown(map_: np.ndarray, display: str) -> np.ndarray:
    m = np.asarray(map_, np.float64)
    m = np.abs(m) if display == "abs" else np.maximum(m, 0.0) if display == "relu" else m
    m = m.max(axis=-1) if m.ndim == 3 else m
    span = np.ptp(m)
    return (m - m.min()) / span if span > 0 else np.zeros_like(m)


def _lime_kernel(inputs, interpret_samples, perturbed_samples) -> tf.Tensor:
    """LIME's own kernel, as ConvLens uses it: sqrt(exp(-d^2 / 0.25^2)), d the cosine distance of the
    on/off vector to the all-on one (Xplique's default measures the distance in pixel space)."""
    on = tf.cast(interpret_samples, tf.float32)
    norms = tf.norm(on, axis=1) * tf.sqrt(tf.cast(tf.shape(on)[1], tf.float32))
    d = tf.clip_by_value(1.0 - tf.math.divide_no_nan(tf.reduce_sum(on, axis=1), norms), 0.0, 2.0)
    return tf.sqrt(tf.exp(-(d**2) / 0.25**2))


def cases(side: int, channels: int, layer: str, image: np.ndarray, segments: np.ndarray) -> list[Case]:
    """The eight shared methods with the issue's settings; Occlusion's patch is 1/8 of the side, stride half."""
    patch = max(2, round(side / 8))  # ConvLens's default patch: 4 at 28 px, 28 at 224 px
    sigma = 0.15 * float(np.ptp(image))
    windows = len(range(0, side - patch + 1, patch // 2))  # the last window touches the edge at 28 and 224
    seg = tf.constant(segments, tf.int32)
    from sklearn.linear_model import Ridge

    return [
        Case("Saliency", {}, "Saliency", {}, "logits", "gradient", 1, "abs"),
        Case("Grad-CAM", {"layer": layer}, "GradCAM", {"conv_layer": layer}, "logits", "gradient", 1, "relu"),
        Case(
            "Integrated Gradients",
            {"steps": 32, "baseline": "zeros"},
            "IntegratedGradients",
            {"steps": 32, "baseline_value": 0.0},
            "logits",
            "gradient",
            32,
            "abs",
        ),
        Case(
            "Occlusion",
            {"patch": patch, "stride": patch // 2, "fill": "zero"},
            "Occlusion",
            {"patch_size": patch, "patch_stride": patch // 2, "occlusion_value": 0.0},
            "logits",
            "forward",
            windows * windows + 1,
            "relu",
        ),
        Case("Guided Backprop", {}, "GuidedBackprop", {"reducer": None}, "logits", "gradient", 1, "abs"),
        Case(
            "SmoothGrad (Saliency)",
            {"samples": 16, "noise": 0.15},
            "SmoothGrad",
            {"nb_samples": 16, "noise": sigma, "reducer": None},
            "logits",
            "gradient",
            16,
            "abs",
        ),
        Case(
            "RISE",
            {"n_masks": 1000, "grid": 7, "p": 0.5},
            "Rise",
            {"nb_samples": 1000, "grid_size": 7, "preservation_probability": 0.5},
            "probabilities",
            "forward",
            1000,
            "relu",
        ),
        Case(
            "LIME",
            {"samples": 300},
            "Lime",
            {
                "nb_samples": 300,
                "map_to_interpret_space": lambda inputs: seg,  # the same superpixels as ConvLens
                "ref_value": np.zeros(channels, np.float32),
                "interpretable_model": Ridge(alpha=1.0),
                "similarity_kernel": _lime_kernel,
            },
            "probabilities",
            "forward",
            300,
            "signed",  # the superpixel weights themselves
        ),
    ]


def _floor_fn(sub: keras.Model, kind: str, target: int):
    if kind == "forward":
        return tf.function(lambda x: sub(x, training=False))

    def grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            score = tf.reduce_sum(sub(x, training=False)[:, target])
        return tape.gradient(score, x)

    return tf.function(grad)


def plain_logits(model: keras.Model) -> keras.Model:
    """A copy of the model with the same weights whose last layer is linear: the pre-softmax scores.

    Built from Keras layers only (Xplique's Guided Backprop clones the model it is given, and
    ConvLens's own score layer is not serializable).
    """
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    last = clone.layers[-1]
    if isinstance(last, (keras.layers.Softmax, keras.layers.Activation)):
        return keras.Model(clone.inputs, clone.layers[-2].output)
    last.activation = keras.activations.linear
    return clone


def compare(name: str, model: keras.Model, image: np.ndarray, only: set[str] | None = None) -> list[Result]:
    """Every case on one model and image; prints a line per method as it finishes."""
    import xplique.attributions as xa

    from vizcore.attribution import METHODS, resolve_target
    from vizcore.attribution.engines import batch_for
    from vizcore.attribution.lime import segment
    from vizcore.models import blocks

    logits = plain_logits(model)
    target = resolve_target(model, image)
    layer = blocks.default_target_layer(model)
    h, w, c = image.shape
    onehot = np.eye(logits.outputs[0].shape[-1], dtype=np.float32)[[target]]
    segments = segment(image, "slic", superpixels=50, seed=0)
    floors = {
        kind: _floor_fn(logits, kind, target) for kind in ("forward", "gradient")
    }  # one traced function per kind: the chunk shape is fixed
    results = []
    for case in cases(h, c, layer, image, segments):
        if only and case.label not in only:
            continue
        chunk = min(case.samples, batch_for(model))  # the floor runs in ConvLens's chunks, on the plain model
        floor_x = tf.constant(np.repeat(image[None], chunk, axis=0))  # the image itself, as Saliency's pass sees it
        floor = floors[case.floor]
        mine = METHODS[case.label]
        net = logits if case.xplique_model == "logits" else model
        note = ""
        try:
            explainer = getattr(xa, case.xplique)(net, batch_size=XPLIQUE_BATCH, **case.xplique_args)
        except Exception as e:  # noqa: BLE001  (a peer that cannot run this case is reported, not fatal)
            explainer, note = None, f"Xplique failed: {type(e).__name__}: {' '.join(str(e).split())}"[:160]

        def ours():
            return mine(model, image, target=target, **case.options)

        def theirs():
            return np.asarray(explainer(image[None], onehot))[0]

        ours_map = ours()  # warm: traces
        theirs_map = None
        if explainer is not None:
            try:
                theirs_map = theirs()
            except Exception as e:  # noqa: BLE001
                explainer, note = None, f"Xplique failed: {type(e).__name__}: {' '.join(str(e).split())}"[:160]
        floor(floor_x).numpy()
        t_ours, t_theirs, t_floor = [], [], []
        for _ in range(REPEAT):  # in turns, so that a change of load hits all three alike
            t0 = time.perf_counter()
            ours()
            t_ours.append(time.perf_counter() - t0)
            if explainer is not None:
                t0 = time.perf_counter()
                theirs()
                t_theirs.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            np.asarray(floor(floor_x))
            t_floor.append(time.perf_counter() - t0)
        pearson = spearman = None
        if theirs_map is not None:
            a, b = _shown(ours_map, case.display).ravel(), _shown(theirs_map, case.display).ravel()
            pearson = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else None
            spearman = float(stats.spearmanr(a, b).statistic) if pearson is not None else None
        r = Result(
            name,
            case.label,
            _median_ms(t_ours),
            _median_ms(t_theirs) if t_theirs else None,
            _median_ms(t_floor) * case.samples / chunk,
            f"{case.samples} {'gradients' if case.floor == 'gradient' else 'forward passes'}",
            pearson,
            spearman,
            note,
        )
        print(json.dumps(asdict(r)), flush=True)
        results.append(r)
    return results


def mnist() -> tuple[keras.Model, np.ndarray]:
    from vizcore import models
    from vizcore.data import datasets

    return models.open_bundled("mnist_cnn").model, np.array(datasets.load_mnist_sample().x_nhwc[4321])


def mobilenet() -> tuple[keras.Model, np.ndarray]:
    """MobileNetV2 at 224 with seeded random weights (no network here for ImageNet's) and a bundled photo in [-1, 1]."""
    from PIL import Image

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None)
    photo = Image.open(ROOT / "vizcore" / "assets" / "photos" / "chelsea.jpg").convert("RGB").resize((224, 224))
    return model, (np.asarray(photo, np.float32) / 127.5 - 1.0)


MODELS = {"mnist": ("MNIST CNN 28x28", mnist), "mobilenet": ("MobileNetV2 224x224 (random weights)", mobilenet)}


def main(out: str, which: list[str]) -> None:
    only = (
        set(os.environ["CONVLENS_BENCH_PEERS_METHODS"].split(","))
        if os.environ.get("CONVLENS_BENCH_PEERS_METHODS")
        else None
    )
    results = []
    for key in which or list(MODELS):
        label, build = MODELS[key]
        model, image = build()
        results += compare(label, model, image, only)
    Path(out).write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
