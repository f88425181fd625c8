"""The report's sections about the model and the data: architecture, training, evaluation, limitations.

Each function takes the build's ``Context`` and returns a ``Section``; what report.json needs goes into
``ctx.numbers``, what a later section quotes into ``ctx.results``. The sections that run the model on
single images (explanations, kernels, features, robustness) are in ``vizcore.report.probes``; the summary,
which quotes them all, in ``vizcore.report.overview``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vizcore.models import graph
from vizcore.models.summary import architecture_diagram
from vizcore.present import figures, render
from vizcore.report import diagram
from vizcore.report.content import Columns, Gallery, Items, Picture, Plot, Section, Svg, Table, Text
from vizcore.training.records import EpochRecord
from vizcore.training.run import CHECKPOINT
from vizcore.training.storage import read_history

DATASETS = {
    "mnist_sample": "the bundled MNIST sample (real handwritten digits)",
    "shapes": "generated shapes (circles, squares, triangles)",
    "photos": "the bundled sample photos",
}
MAX_MATRIX = 30  # classes in the confusion figure at most (those with the most mistakes)
BY_BLOCK_FROM = 40  # layers: from here the diagram has one box per block, as on the Model page


def percent(value: float) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.1%}"


def share(value: float) -> str:
    """A probability as a percentage, with a decimal below 1% (an untrained ImageNet network says 0.1%)."""
    return f"{value:.0%}" if value >= 0.01 else f"{value:.1%}"


def number(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def dataset_words(ctx) -> str:
    """'200 of the 5,000 images of the bundled MNIST sample (...)' or '... of keras.datasets cifar10'."""
    im = ctx.images
    name = DATASETS.get(im.name) or (
        f"keras.datasets {im.name.split(':', 1)[1]}" if im.name.startswith("keras:") else f"the dataset '{im.name}'"
    )
    if len(im) < im.total:
        return f"{len(im):,} of the {im.total:,} images of {name}"
    return f"the {im.total:,} images of {name}"


def show_width(image: np.ndarray, target: int = 112) -> int:
    """A display width: small images scaled up by a whole factor towards ``target`` px, larger ones kept."""
    w = image.shape[1]
    return w * max(1, target // w) if w < target else min(w, 2 * target)


# --------------------------------------------------------------------------- evaluation


def _f1(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), np.nan)


def evaluation(ctx) -> Section:
    """Accuracy, per-class precision, recall and F1, the confusion matrix and its most frequent cells."""
    loaded, im = ctx.loaded, ctx.images
    if im.y is None:
        ctx.results["evaluation"] = ctx.numbers["evaluation"] = None
        names = im.dataset.class_names
        return Section(
            "evaluation",
            "Evaluation",
            (
                Text(
                    f"The dataset's classes ({', '.join(names[:6])}{', …' if len(names) > 6 else ''}) are not the "
                    f"model's {len(loaded.class_names)} classes, so there is nothing to score: the other sections "
                    "explain and attack the model's own answers instead."
                ),
            ),
        )
    rep = ctx.results["evaluation"] = ctx.dataset("report")
    ev, names = rep.evaluation, list(loaded.class_names)
    f1 = _f1(rep.precision, rep.recall)
    present = np.flatnonzero((rep.support > 0) | (ev.confusion.sum(axis=0) > 0))
    per_class = [
        dict(
            name=names[c],
            precision=rep.precision[c],
            recall=rep.recall[c],
            f1=f1[c],
            support=int(rep.support[c]),
        )
        for c in range(len(names))
    ]
    ctx.numbers["evaluation"] = dict(
        images=len(im),
        accuracy=rep.accuracy,
        correct=int(np.trace(ev.confusion)),
        top_k={str(k): v for k, v in rep.top_k.items()},
        class_names=names,
        per_class=per_class,
        confusion=ev.confusion,
    )
    blocks: list[Any] = [
        Text(
            f"On {dataset_words(ctx)}, the model is right {percent(rep.accuracy)} of the time "
            f"({int(np.trace(ev.confusion)):,} of {len(im):,})"
            + "".join(f"; its top-{k} accuracy is {percent(v)}" for k, v in rep.top_k.items() if 1 < k < len(names))
            + "."
        )
    ]
    card = loaded.card or {}
    if card.get("dataset_id") == im.name and card.get("test_accuracy") is not None:
        blocks.append(
            Text(
                f"The model was trained on part of this dataset ({card.get('dataset', '')}), so these images include "
                f"training images and the accuracy above overstates it; its card gives {percent(card['test_accuracy'])}"
                f" on {card.get('test_images', 0):,} held-out images.",
                "note",
            )
        )
    rows = tuple(
        (
            names[c],
            number(rep.precision[c]),
            number(rep.recall[c]),
            number(f1[c]),
            f"{int(rep.support[c]):,}",
        )
        for c in present
    )
    scores = Table(
        ("class", "precision", "recall", "F1", "images"),
        rows,
        "Precision: of the images predicted as the class, the share that are. Recall: of the class's images, "
        "the share found. F1: their harmonic mean. n/a: never predicted, or no image.",
        (False, True, True, True, True),
    )
    shown = present
    if len(present) > MAX_MATRIX:
        off = ev.confusion - np.diag(np.diag(ev.confusion))
        mistakes = off.sum(axis=0) + off.sum(axis=1)
        shown = np.sort(present[np.argsort(-mistakes[present], kind="stable")[:MAX_MATRIX]])
    fig = figures.confusion_figure(ev.confusion[np.ix_(shown, shown)], [names[c] for c in shown])
    fig.update_layout(width=min(680, 260 + 30 * len(shown)), height=min(680, 200 + 30 * len(shown)))
    caption = "Rows: the true class; columns: the predicted class; the diagonal is right."
    if len(shown) < len(present):
        caption += f" The {len(shown)} classes with the most mistakes of {len(present)}."
    blocks.append(Columns((scores, Plot(fig, caption))) if len(rows) <= 12 else scores)
    if len(rows) > 12:
        blocks.append(Plot(fig, caption))
    blocks += _confusions(ctx, rep, names)
    return Section("evaluation", "Evaluation", tuple(blocks))


def _confusions(ctx, rep, names: list[str]) -> list[Any]:
    """The most frequent off-diagonal cells, each with its most confident images."""
    conf = rep.confusion.copy()
    np.fill_diagonal(conf, 0)
    order = np.argsort(-conf, axis=None, kind="stable")[: ctx.budget.confusions]
    cells = [(int(t), int(p)) for t, p in zip(*np.unravel_index(order, conf.shape)) if conf[t, p] > 0]
    if not cells:
        return [Text("No image is misclassified, so there is no confusion to show.", "note")]
    out: list[Any] = [Text("Most frequent confusions", "h3")]
    for t, p in cells:
        pictures = []
        for i in rep.cell(t, p)[: ctx.budget.thumbnails]:
            image = render.to_rgb(ctx.images.display_nhwc[i])
            pictures.append(
                Picture(
                    image,
                    f"#{ctx.images.pick[i]} · p={rep.evaluation.probabilities[i, p]:.2f}",
                    f"a {names[t]} taken for a {names[p]}",
                    show_width(image, 64),
                )
            )
        out.append(
            Gallery(
                tuple(pictures),
                f"True {names[t]}, predicted {names[p]}: {conf[t, p]:,} image(s), the most confident first "
                "(# is the image's index in the dataset).",
            )
        )
    return out


# --------------------------------------------------------------------------- architecture


def architecture(ctx) -> Section:
    """Headline figures, the layer table and the block diagram."""
    info, model = ctx.summary, ctx.loaded.model
    rows = graph.layer_table(model)
    by_block = info.layers > BY_BLOCK_FROM
    drawing = architecture_diagram(model, by_block=by_block)
    facts = Table(
        ("", ""),
        (
            ("parameters", f"{info.params:,} ({info.trainable_params:,} trainable)"),
            ("layers", f"{info.layers} ({len(info.conv_layers)} convolutions)"),
            ("input", f"{info.input.height or 'any'}×{info.input.width or 'any'}×{info.input.channels}"),
            ("head", f"{info.head}, {info.outputs} output(s)"),
            ("layer explained", str(info.default_layer)),
        ),
    )
    table = Table(
        ("layer", "type", "output shape", "parameters"),
        tuple(
            (r.path, r.type, "×".join("?" if d is None else str(d) for d in r.output_shape[1:]), f"{r.params:,}")
            for r in rows
        ),
        "Every layer in call order (nested models' layers by path).",
        (False, False, False, True),
    )
    what = "one box per block or stage" if by_block else "one box per layer"
    return Section(
        "architecture",
        "Architecture",
        (
            facts,
            Columns(
                (
                    Svg(
                        diagram.svg(drawing, title=f"{ctx.loaded.label}: {what}"),
                        f"Block diagram, {what}: name, then type (or layer count) and output shape. Blue boxes "
                        "convolve, green ones pool, yellow ones are dense.",
                    ),
                    table,
                )
            ),
        ),
    )


# --------------------------------------------------------------------------- training


def training(ctx) -> Section:
    """Training curves and settings when a history exists; the card's account of training otherwise."""
    loaded = ctx.loaded
    card = loaded.card or {}
    records, config = (), None
    if card.get("snapshots"):
        records, config = read_history(Path(card["snapshots"]).parent / CHECKPOINT)
    epochs = [r for r in records if isinstance(r, EpochRecord)]
    history = card.get("history") or {}  # a model taught here carries its curves (vizcore.transfer)
    blocks: list[Any] = []
    if epochs:
        x = [r.epoch + 1 for r in epochs]
        series = {"loss": [r.loss for r in epochs], "val_loss": [r.val_loss for r in epochs]}
        accuracy = {"accuracy": [r.accuracy for r in epochs], "val_accuracy": [r.val_accuracy for r in epochs]}
        blocks += _curves(ctx, x, series, accuracy, config.to_dict() if config else None)
    elif history.get("loss"):
        x = list(range(1, len(history["loss"]) + 1))
        series = {k: list(history.get(k) or ()) for k in ("loss", "val_loss")}
        accuracy = {k: list(history.get(k) or ()) for k in ("accuracy", "val_accuracy")}
        blocks += _curves(ctx, x, series, accuracy, card.get("settings"))
    elif card.get("training"):
        settings = {k: card.get(k) for k in ("training", "epochs", "dataset")}
        ctx.numbers["training"] = dict(source="card", settings=settings)
        blocks += [
            Text("No per-epoch history ships with this model; its card says how it was trained."),
            Table(
                ("", ""),
                tuple(
                    (label, str(value))
                    for label, value in (
                        ("data", card.get("dataset")),
                        ("training", card.get("training")),
                        ("epochs", card.get("epochs")),
                        ("training time", f"{card['train_seconds']:.0f} s" if card.get("train_seconds") else None),
                        ("held-out accuracy", percent(card["test_accuracy"]) if "test_accuracy" in card else None),
                        ("versions", ", ".join(f"{k} {v}" for k, v in card.get("versions", {}).items()) or None),
                    )
                    if value is not None
                ),
            ),
        ]
    else:
        ctx.numbers["training"] = None
        how = "untrained: its weights are random" if untrained(loaded) else "loaded without a training history"
        blocks.append(Text(f"No training history is known for this model ({how})."))
    return Section("training", "Training", tuple(blocks))


def _curves(ctx, x: list[int], series: dict, accuracy: dict, settings: dict | None) -> list[Any]:
    """The loss and accuracy curves of a history made in this ConvLens, and its settings."""
    ctx.numbers["training"] = dict(source="history", epoch=x, **series, **accuracy, settings=settings)
    blocks: list[Any] = [Text(f"Trained in this ConvLens for {len(x)} epoch(s); the curves are its own records.")]
    for name, values in (("Loss", series), ("Accuracy", accuracy)):
        shown = {k: (x, v) for k, v in values.items() if len(v) == len(x) and all(e is not None for e in v)}
        fig = figures.curves_figure(shown, name, x_title="epoch", y_title=name.lower(), height=280)
        fig.update_layout(width=560)
        blocks.append(Plot(fig))
    if settings:
        blocks.append(Table(("setting", "value"), tuple((k, str(v)) for k, v in settings.items())))
    return blocks


def untrained(loaded) -> bool:
    return loaded.key.startswith(("preset:", "built:")) or loaded.key.endswith(":None")


# --------------------------------------------------------------------------- limitations


def limitations(ctx) -> Section:
    """Intended use, the data behind the figures, and what these checks cannot tell."""
    loaded, im, info = ctx.loaded, ctx.images, ctx.summary
    card = loaded.card or {}
    size = f"{info.input.height or 'any'}×{info.input.width or 'any'}"
    colour = "grey" if info.input.channels == 1 else "colour"
    use = [f"Built for {size} {colour} images of {len(loaded.class_names)} classes."]
    if card.get("dataset"):
        use.append(f"It was trained on {card['dataset']}; images unlike those are outside what it has seen.")
    if untrained(loaded):
        use.append("Its weights are random, so it is a subject for study, not a classifier.")
    use.append("This report describes the model as it is; it does not say the model is fit for a given use.")
    matched = (
        "The dataset's classes are not the model's, so nothing is scored against labels."
        if im.y is None
        else "The dataset's labels were matched to the model's classes "
        + ("by name." if set(im.dataset.class_names) <= set(loaded.class_names) else "by position (the counts agree).")
    )
    stored = f" Dataset results precomputed on {im.store.created} were used." if im.store is not None else ""
    data_text = (
        f"Every figure comes from {dataset_words(ctx)} (evenly spaced, so every class is in), shown to the model at "
        f"{size}×{info.input.channels} in its '{loaded.preprocess}' input range. {matched}{stored}"
    )
    margin = 1.96 * np.sqrt(0.25 / max(1, len(im)))  # the widest 95% interval of a share, at p = 0.5
    cannot = (
        "Accuracy on these images is not accuracy elsewhere: other cameras, writers, lighting or classes change it, "
        f"and a sample this size leaves a margin of up to ±{margin:.1%} (95%).",
        "Attribution maps are approximations of what the model used; the deletion and insertion scores test one "
        "notion of faithfulness on a few images, against a random map.",
        "FGSM is a single-step attack: stronger attacks (PGD, C&W) bring accuracy lower, so the curve is an upper "
        "bound on robustness, and it says nothing about natural corruptions (blur, noise, rotation).",
        "Filter images show what excites a unit on its own, not what it does on real images; a network with random "
        "weights gives noise.",
        "Nothing here checks calibration, fairness across groups of people or images, privacy, or behaviour on "
        "inputs that are not images of these classes.",
    )
    return Section(
        "limitations",
        "Limitations",
        (
            Text("Intended use", "h3"),
            Text(" ".join(use)),
            Text("The data behind the figures", "h3"),
            Text(data_text),
            Text("What these checks cannot tell", "h3"),
            Items(cannot),
        ),
    )
