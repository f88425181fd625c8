"""The report's summary: the model's identity (name, file and weights SHA-256, parameters, input, classes, version,
date) and one plain-language paragraph that quotes what the other sections found (so it is written last).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import keras
import numpy as np
import tensorflow as tf

import vizcore
from vizcore import models
from vizcore.report.content import Section, Table, Text
from vizcore.report.sections import dataset_words, number, percent, untrained


def weights_sha256(model: keras.Model) -> str:
    """SHA-256 of the model's weights in order (float bytes), whatever file format it came from."""
    digest = hashlib.sha256()
    for w in model.weights:
        digest.update(np.ascontiguousarray(np.asarray(w.numpy())).tobytes())
    return digest.hexdigest()


def file_sha256(ctx) -> str | None:
    """The model file's SHA-256: given by the caller, or the bundled model's file."""
    if ctx.results.get("file_sha256"):
        return ctx.results["file_sha256"]
    if ctx.loaded.key.startswith("bundled:"):
        path = models.BUNDLED_DIR / f"{ctx.loaded.key.split(':', 1)[1]}.keras"
        return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    return None


def _identity(ctx) -> dict[str, Any]:
    loaded, info, im = ctx.loaded, ctx.summary, ctx.images
    return dict(
        model=loaded.label,
        key=loaded.key,
        file_sha256=file_sha256(ctx),
        weights_sha256=weights_sha256(loaded.model),
        parameters=info.params,
        trainable_parameters=info.trainable_params,
        layers=info.layers,
        conv_layers=len(info.conv_layers),
        input=dict(
            height=info.input.height, width=info.input.width, channels=info.input.channels, range=loaded.preprocess
        ),
        head=info.head,
        classes=len(loaded.class_names),
        class_names=list(loaded.class_names),
        dataset=dict(name=im.name, key=im.key, images=len(im), total=im.total, description=dataset_words(ctx)),
        convlens_version=vizcore.__version__,
        versions=dict(keras=keras.__version__, tensorflow=tf.__version__, numpy=np.__version__),
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def _paragraph(ctx, ident: dict[str, Any]) -> str:
    """One plain-language paragraph from the numbers the other sections found."""
    info, loaded = ctx.summary, ctx.loaded
    names = loaded.class_names
    listed = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    colour = "grey" if info.input.channels == 1 else "colour"
    text = [
        f"{loaded.label} is a convolutional network with {info.params:,} parameters in {info.layers} layers, "
        f"{len(info.conv_layers)} of them convolutions. It takes {info.input.height or 'any'}×"
        f"{info.input.width or 'any'} {colour} images and sorts them into {len(names)} classes ({listed})."
    ]
    if untrained(loaded):
        text.append("Its weights are untrained (random), so what follows shows an untrained network.")
    rep = ctx.results.get("evaluation")
    if rep is not None:
        conf = rep.confusion.copy()
        np.fill_diagonal(conf, 0)
        t, p = np.unravel_index(int(np.argmax(conf)), conf.shape)
        text.append(f"On {dataset_words(ctx)} it is right {percent(rep.accuracy)} of the time")
        times = "once" if conf[t, p] == 1 else f"{conf[t, p]} times"
        mistake = f"; its most frequent mistake is taking a {names[t]} for a {names[p]} ({times})"
        text[-1] += (mistake if conf[t, p] else "") + "."
    else:
        text.append(f"The images used ({dataset_words(ctx)}) are not labelled with its classes, so it is not scored.")
    robust = ctx.numbers.get("robustness")
    if robust and len(robust["epsilons"]) > 1:
        eps, acc = robust["epsilons"], robust["accuracy"]
        i = int(np.argmin(np.abs(np.asarray(eps) - 0.1)))
        what = "accuracy" if robust["labels"] == "true" else "agreement with its own answers"
        text.append(
            f"Changing each pixel by at most {eps[i] * 255:.0f} of 255 levels (FGSM, ε = {eps[i]:g}) takes its {what} "
            f"from {percent(acc[0])} to {percent(acc[i])}."
        )
    faith = ctx.numbers.get("faithfulness")
    if faith and not faith["near_chance"] and "Grad-CAM" in faith["methods"] and "Random" in faith["methods"]:
        cam, rnd = faith["methods"]["Grad-CAM"], faith["methods"]["Random"]
        better = cam["mean_deletion_auc"] < rnd["mean_deletion_auc"]
        text.append(
            f"Its Grad-CAM maps {'pass' if better else 'fail'} the deletion test against random maps "
            f"(area {number(cam['mean_deletion_auc'], 2)} against {number(rnd['mean_deletion_auc'], 2)}; lower is "
            "better)."
        )
    return " ".join(text)


def summary(ctx) -> Section:
    """Identity, headline figures and one plain-language paragraph (written last: it quotes the others)."""
    ident = ctx.numbers["identity"] = _identity(ctx)
    inp = ident["input"]
    facts = (
        ("model", f"{ident['model']} ({ident['key']})"),
        ("file SHA-256", ident["file_sha256"] or "no file (built in memory)"),
        ("weights SHA-256", ident["weights_sha256"]),
        ("parameters", f"{ident['parameters']:,}"),
        ("input", f"{inp['height'] or 'any'}×{inp['width'] or 'any'}×{inp['channels']}, range '{inp['range']}'"),
        (
            "classes",
            f"{ident['classes']}: " + ", ".join(ident["class_names"][:12]) + (" …" if ident["classes"] > 12 else ""),
        ),
        ("data", ident["dataset"]["description"]),
        (
            "ConvLens",
            f"{ident['convlens_version']} (Keras {ident['versions']['keras']}, "
            f"TensorFlow {ident['versions']['tensorflow']})",
        ),
        ("date", ident["date"]),
    )
    return Section("summary", "Summary", (Text(_paragraph(ctx, ident), "lead"), Table(("", ""), facts), *_notes(ctx)))


def _notes(ctx) -> tuple[Text, ...]:
    return tuple(Text(note, "note") for note in ctx.loaded.notes)
