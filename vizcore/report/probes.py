"""The report's sections that probe the model: explanations, kernels, features and robustness.

Each function takes the build's ``Context`` and returns a ``Section``; the numbers go into ``ctx.numbers``.
They call the engine the pages call: ``attribution`` (Grad-CAM, a gradient method, ``metrics``),
``inspect.kernels``, ``featurevis`` and ``inspect.examples``, and ``vizcore.robustness`` (through
``vizcore.report.data``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vizcore import attribution
from vizcore import featurevis as fv
from vizcore.attribution import metrics
from vizcore.data import images as image_ops
from vizcore.featurevis.settings import LARGE_INPUT
from vizcore.inspect import examples, kernels
from vizcore.models import blocks, fields, predict
from vizcore.present import figures, render
from vizcore.report import data
from vizcore.report.content import Columns, Gallery, Picture, Plot, Section, Table, Text
from vizcore.report.sections import number, percent, share, show_width, untrained

CAM, GRADIENT = "Grad-CAM", "Saliency"  # the two methods explained, by their registry labels
BASELINE = "Random"  # the bar a faithful map should clear (metrics.BASELINE_MAPS)
SHOWN = 112  # px: explained images are drawn at least this wide


def _large(ctx) -> bool:
    spec = ctx.summary.input
    return max(spec.height or 0, spec.width or 0) > LARGE_INPUT


def _shown(ctx, row: int) -> np.ndarray:
    """The image at ``row`` as people see it, scaled up crisply to about ``SHOWN`` px when small."""
    image = render.to_rgb(ctx.images.display_nhwc[row])
    return render.upscale(image, max(1, SHOWN // image.shape[1]))


# --------------------------------------------------------------------------- explanations


def _pick(ctx) -> tuple[list[int], list[int], np.ndarray, np.ndarray | None, np.ndarray]:
    """Rows to explain (correct ones, wrong ones), each image's predicted class, true class and confidence."""
    rep, n = ctx.results.get("evaluation"), ctx.budget.explained
    if rep is None:
        probs = predict.probabilities(ctx.loaded.model, ctx.images.x_nhwc[: 8 * n])
        predicted = probs.argmax(axis=1)
        return list(range(min(2 * n, len(probs)))), [], predicted, None, probs.max(axis=1)
    ev = rep.evaluation
    confidence = ev.probabilities[np.arange(len(ev.predicted)), ev.predicted]

    def distinct(rows, key) -> list[int]:
        seen, out = set(), []
        for r in rows:
            if key(r) not in seen:
                seen.add(key(r))
                out.append(int(r))
            if len(out) == n:
                break
        return out

    right = np.flatnonzero(ev.predicted == ev.true)
    right = right[np.argsort(-confidence[right], kind="stable")]
    correct = distinct(right, lambda r: ev.true[r])
    wrong = distinct(rep.mistakes(), lambda r: (ev.true[r], ev.predicted[r]))
    return correct, wrong, ev.predicted, ev.true, confidence


def explanations(ctx) -> Section:
    """Grad-CAM and a gradient method on correct and wrong images, each scored by deletion and insertion."""
    loaded, model = ctx.loaded, ctx.loaded.model
    names = loaded.class_names
    layer = ctx.summary.default_layer
    if layer is None:
        ctx.numbers["faithfulness"] = None
        return Section("explanations", "Explanations", (Text("The model has no convolution layer to explain."),))
    correct, wrong, predicted, true, confidence = _pick(ctx)
    steps = ctx.budget.curve_steps
    methods = {CAM: attribution.METHODS[CAM], GRADIENT: attribution.METHODS[GRADIENT]}
    methods[BASELINE] = metrics.BASELINE_MAPS[BASELINE]  # one interface: (model, image, *, target, layer)
    scores: dict[str, dict[str, list[float]]] = {m: {"deletion_auc": [], "insertion_auc": []} for m in methods}
    curves: dict[str, dict[str, list[np.ndarray]]] = {m: {"deletion": [], "insertion": []} for m in methods}
    blocks: list[Any] = [
        Text(
            f"Which pixels made the model say what it said: {CAM} at layer '{layer}' and {GRADIENT} (the gradient "
            "of the score with respect to each pixel), both for the predicted class. Each map is scored by "
            f"deletion (remove its most important pixels first, in {steps} steps: the probability should fall "
            "fast, a low area is good) and insertion (put them back into a blurred copy: a high area is good), "
            "beside a random map."
        )
    ]
    chance = 2.0 / len(names)  # twice a uniform guess
    mean_top = float(np.mean(confidence[correct + wrong]))
    if mean_top < chance:
        blocks.append(
            Text(
                f"The model's answers are near chance (a mean top probability of {share(mean_top)} over {len(names)} "
                "classes), so removing or restoring pixels barely moves them: the areas below cannot tell a faithful "
                "map from a random one.",
                "note",
            )
        )
    for title, rows in (("Correct", correct), ("Wrong", wrong)):
        if not rows:
            continue
        blocks.append(Text(f"{title} images" if true is not None else "The model's answers", "h3"))
        for r in rows:
            ctx.tick()
            x, target = ctx.images.x_nhwc[r], int(predicted[r])
            image = _shown(ctx, r)
            pictures = [
                Picture(
                    image,
                    (f"#{ctx.images.pick[r]}: {names[true[r]]}" if true is not None else f"#{ctx.images.pick[r]}")
                    + f" → {names[target]} ({share(confidence[r])})",
                    "the image",
                )
            ]
            for label, fn in methods.items():
                heat = fn(model, x, target=target, layer=layer)
                dele = metrics.deletion_curve(model, x, heat, target=target, steps=steps)
                ins = metrics.insertion_curve(model, x, heat, target=target, steps=steps)
                scores[label]["deletion_auc"].append(dele.auc)
                scores[label]["insertion_auc"].append(ins.auc)
                curves[label]["deletion"].append(dele.probabilities)
                curves[label]["insertion"].append(ins.probabilities)
                if label != BASELINE:
                    pictures.append(
                        Picture(
                            render.overlay(image, heat),
                            f"{label} · deletion {dele.auc:.2f} · insertion {ins.auc:.2f}",
                            f"{label} map of the image",
                        )
                    )
            blocks.append(Gallery(tuple(pictures)))
    rows_explained = [int(ctx.images.pick[r]) for r in correct + wrong]
    ctx.numbers["faithfulness"] = dict(
        near_chance=bool(mean_top < chance),  # the areas cannot tell maps apart
        target="predicted class",
        layer=layer,
        steps=steps,
        deletion_baseline="zeros",
        insertion_baseline="blur",
        images=rows_explained,
        methods={
            m: dict(
                **s,
                mean_deletion_auc=float(np.mean(s["deletion_auc"])),
                mean_insertion_auc=float(np.mean(s["insertion_auc"])),
            )
            for m, s in scores.items()
        },
    )
    blocks.insert(
        1,
        Table(
            ("map", "deletion area (lower is better)", "insertion area (higher is better)"),
            tuple(
                (m, number(np.mean(s["deletion_auc"])), number(np.mean(s["insertion_auc"]))) for m, s in scores.items()
            ),
            f"Means over the {len(rows_explained)} images below.",
            (False, True, True),
        ),
    )
    start = float(np.mean([c[0] for m in curves.values() for c in m["insertion"]]))
    if start > 0.5:
        blocks.insert(
            2,
            Text(
                f"The blurred copy alone keeps the class (a mean probability of {share(start)} before any pixel is put "
                "back), so insertion cannot separate the maps on these images; deletion can.",
                "note",
            ),
        )
    fractions = np.linspace(0.0, 1.0, steps + 1)
    fig = figures.curves_figure(
        {f"{m} {kind}": (fractions, np.mean(c[kind], axis=0)) for m, c in curves.items() for kind in c},
        "Mean deletion and insertion curves",
        x_title="share of pixels removed (deletion) or put back (insertion)",
        y_title="probability of the class",
        height=340,
        y_range=(0, 1),
    )
    colours = dict(zip(methods, ("#3b5bdb", "#e8590c", "#868e96")))
    for trace in fig.data:  # one colour per map; deletion dotted, insertion solid
        method, kind = trace.name.rsplit(" ", 1)
        trace.update(line_color=colours[method], line_dash="dot" if kind == "deletion" else "solid")
    fig.update_layout(width=640)
    blocks.insert(2, Plot(fig))
    return Section("explanations", "Explanations", tuple(blocks))


# --------------------------------------------------------------------------- kernels


def kernels_section(ctx) -> Section:
    """The first conv layer's kernels as one gallery, with the weights' histogram and the dead filters."""
    convs = ctx.summary.conv_layers
    if not convs:
        return Section("kernels", "Kernels", (Text("The model has no convolution layer."),))
    lk = kernels.layer_kernel(ctx.loaded.model, convs[0])
    mode = kernels.default_mode(lk)
    gallery = kernels.kernel_gallery(
        lk,
        scale="layer",
        bgr=image_ops.is_bgr(ctx.loaded.preprocess),
        tile_px=40,
        pad=3,
        columns=min(16, int(np.ceil(np.sqrt(lk.filters * 2))))
        if mode != "per_channel" or lk.in_channels == 1
        else None,
    )
    stats = kernels.filter_stats(lk)
    counts, edges = kernels.weight_histogram(lk)
    how = {
        "rgb": "as colour: each filter's red, green and blue weights (grey is zero)",
        "per_channel": "one tile per filter and input channel (blue negative, white zero, red positive)",
        "mean": "the mean over its input channels (blue negative, white zero, red positive)",
    }[mode]
    kh, kw = lk.size
    dead, near = int(stats.dead.sum()), int(stats.near_dead.sum())
    hist = figures.histogram_figure(counts, edges, f"Weights of {lk.path}")
    hist.update_layout(width=440)
    return Section(
        "kernels",
        "Kernels",
        (
            Text(
                f"The first convolution, '{lk.path}' ({lk.layer_type}), has {lk.filters} filters of {kh}×{kw} over "
                f"{lk.in_channels} input channel(s), drawn {how}, on one colour scale for the layer. "
                f"{dead} filter(s) are dead (every weight near zero) and {near} nearly dead."
                + ("" if lk.layer_type == "Conv2D" else f" {lk.note}")
            ),
            Columns(
                (
                    Picture(
                        gallery,
                        f"The {lk.filters} filters of {lk.path}, in index order.",
                        "kernel gallery",
                        width=max(gallery.shape[1], min(420, 2 * gallery.shape[1])),
                    ),
                    Plot(hist),
                )
            ),
        ),
    )


# --------------------------------------------------------------------------- features


def feature_layers(ctx) -> tuple[str, ...]:
    """A middle block output and the last one (the layer the explanations use), without repeats."""
    cams = blocks.cam_layers(ctx.loaded.model)
    if not cams:
        return ()
    last = ctx.summary.default_layer if ctx.summary.default_layer in cams else cams[-1]
    earlier = cams[: cams.index(last)]
    return (earlier[len(earlier) // 2], last) if earlier else (last,)


def features(ctx) -> Section:
    """Filter images of a middle and the last layer, and the top dataset images of a few of their filters."""
    layers = feature_layers(ctx)
    if not layers:
        return Section("features", "Features", (Text("The model has no convolution layer to visualize."),))
    large, b = _large(ctx), ctx.budget
    n = b.filters_large if large else b.filters
    steps = b.steps_large if large else None
    blocks: list[Any] = [
        *(
            [Text("The weights are random: these images show how little an untrained network responds to.", "note")]
            if untrained(ctx.loaded)
            else []
        ),
        Text(
            "For each layer, the images that excite its most active filters most (gradient ascent on the input, "
            "vizcore.featurevis), then a few of those filters' top images in the dataset, with a box where the "
            "filter peaks."
        ),
    ]
    for layer in layers:
        ctx.tick()
        ex = ctx.dataset("examples", layer=layer)
        chosen = np.argsort(-ex.scores.mean(axis=1), kind="stable")[: min(n, ex.channels)]
        stored = ctx.images.stored("featurevis", layer=layer)
        if stored is not None and len(stored) >= ex.channels:
            pictures_u8, how = stored[chosen], "precomputed"
        else:
            found = fv.optimize(
                ctx.loaded,
                fv.Channel(layer),
                chosen.tolist(),
                steps=steps,
                seed=0,
                on_progress=lambda *_: ctx.tick(),
                preview=False,
            )
            pictures_u8, how = fv.to_uint8(found.images_nhwc, found.input_range), f"{found.steps} steps"
        field = fields.receptive_field(ctx.loaded.model, layer, ctx.images.x_nhwc.shape[1:3]).size
        blocks.append(Text(f"Layer '{layer}' ({ex.channels} filters, each sees {field[0]}×{field[1]} pixels)", "h3"))
        if layer == ctx.summary.conv_layers[0]:
            blocks.append(
                Text(
                    "A first-layer filter sees only its own window, so its image is that window's best pattern "
                    "repeated; the Kernels section shows its weights.",
                    "note",
                )
            )
        blocks.append(
            Gallery(
                tuple(
                    Picture(
                        render.to_rgb(img), f"filter {c}", f"gradient-ascent image of filter {c}", show_width(img, 96)
                    )
                    for c, img in zip(chosen, pictures_u8)
                ),
                f"The {len(chosen)} filters with the highest top activations over the images ({how}).",
            )
        )
        per_layer = max(1, b.example_filters // len(layers))
        for c, img in list(zip(chosen, pictures_u8))[:per_layer]:
            whole, _ = examples.card_tiles(ctx.images.display_nhwc, ex, int(c), tile_px=72)
            k = min(b.example_k, len(whole))
            strip = render.montage(whole[:k], columns=k, pad=2)
            blocks.append(
                Gallery(
                    (
                        Picture(render.resize(render.to_rgb(img), (72, 72)), f"filter {c}", "its image"),
                        Picture(
                            strip,
                            "its top images, best first: "
                            + ", ".join(f"#{ctx.images.pick[i]}" for i in ex.indices[c][:k]),
                            "top dataset images",
                        ),
                    ),
                )
            )
    return Section("features", "Features", tuple(blocks))


# --------------------------------------------------------------------------- robustness


def robustness(ctx) -> Section:
    """Accuracy against ε (FGSM) over the images, and one adversarial image with its CAM before and after."""
    loaded, im, b = ctx.loaded, ctx.images, ctx.budget
    rows = np.linspace(0, len(im) - 1, min(b.robust_images, len(im))).astype(int)
    x, y = im.x_nhwc[rows], (im.y[rows] if im.y is not None else None)
    accuracy = data.robust_accuracy(loaded, x, y, b.epsilons, on_progress=lambda *_: ctx.tick())
    labels = "true" if y is not None else "own predictions"
    what = "accuracy" if y is not None else "agreement with the clean answers"
    ctx.numbers["robustness"] = dict(
        attack="fgsm",
        labels=labels,
        images=len(rows),
        epsilons=list(b.epsilons),
        levels=[round(e * 255, 1) for e in b.epsilons],
        accuracy=[float(a) for a in accuracy],
    )
    fig = figures.curves_figure(
        {"FGSM": (b.epsilons, accuracy)},
        f"{what.capitalize()} against ε",
        x_title="ε (share of the input range)",
        y_title=what,
        height=320,
        y_range=(0, 1),
    )
    fig.update_traces(mode="lines+markers")
    fig.update_layout(width=480, showlegend=False)
    blocks: list[Any] = [
        Text(
            f"Each of {len(rows):,} images is changed by at most ε of its range in every pixel, in the direction that "
            f"hurts the model most (FGSM, one gradient step); ε 0.1 is {0.1 * 255:.0f} of 255 grey levels. "
            + (
                "The images keep their true labels."
                if y is not None
                else "The dataset has no labels of the model's classes, so the attack is on the model's own answers."
            )
        ),
        Columns(
            (
                Plot(fig),
                Table(
                    ("ε", "levels of 255", what),
                    tuple((f"{e:g}", f"{e * 255:.0f}", percent(a)) for e, a in zip(b.epsilons, accuracy)),
                    "",
                    (True, True, True),
                ),
            )
        ),
    ]
    blocks += _adversarial(ctx, rows, x, y)
    return Section("robustness", "Robustness", tuple(blocks))


def _adversarial(ctx, rows: np.ndarray, x: np.ndarray, y: np.ndarray | None) -> list[Any]:
    """One image at its smallest changing ε (the median over up to 32 candidates), its CAM before and after."""
    loaded, model, names = ctx.loaded, ctx.loaded.model, ctx.loaded.class_names
    sample = np.linspace(0, len(x) - 1, min(256, len(x))).astype(int)  # spread over the images (and classes)
    predicted = predict.probabilities(model, x[sample]).argmax(axis=1)
    ok = sample[predicted == y[sample]] if y is not None else sample
    candidates = ok[np.linspace(0, len(ok) - 1, min(32, len(ok))).astype(int)] if len(ok) else ok
    if not len(candidates):
        return [Text("No image is classified correctly, so none is attacked.", "note")]
    found = data.adversarial_example(
        loaded, x[candidates], None if y is None else y[candidates], max_eps=max(ctx.budget.epsilons)
    )
    if found is None:
        return [
            Text(f"None of {len(candidates)} images changes its answer up to ε {max(ctx.budget.epsilons):g}.", "note")
        ]
    r = int(candidates[found.row])
    before = predict.probabilities(model, x[r : r + 1])[0]
    after = predict.probabilities(model, found.x_adv_hwc[None])[0]
    c0, c1 = int(before.argmax()), int(after.argmax())
    layer = ctx.summary.default_layer
    cam0 = attribution.METHODS[CAM](model, x[r], target=c0, layer=layer)
    cam1 = attribution.METHODS[CAM](model, found.x_adv_hwc, target=c1, layer=layer)
    overlap = data.top_overlap(cam0, cam1)
    original = render.to_rgb(ctx.images.display_nhwc[rows[r]])
    adversarial = render.to_rgb(image_ops.deprocess(found.x_adv_hwc, loaded.preprocess))
    factor = max(1, SHOWN // original.shape[1])
    big = lambda im: render.upscale(im, factor)  # noqa: E731
    index = int(ctx.images.pick[rows[r]])
    ctx.numbers["robustness"]["example"] = dict(
        image=index,
        epsilon=found.eps,
        levels=found.eps * 255,
        before=dict(class_name=names[c0], probability=float(before[c0])),
        after=dict(class_name=names[c1], probability=float(after[c1])),
        cam_top10_overlap=overlap,
    )
    return [
        Text("One adversarial image", "h3"),
        Text(
            f"Image #{index}, attacked at the smallest ε that changes its answer (the median of {len(candidates)} "
            f"images tried): ε {found.eps:.3f}, {found.eps * 255:.1f} of 255 levels. The model's answer moves from "
            f"{names[c0]} ({share(before[c0])}) to {names[c1]} ({share(after[c1])}); {overlap:.0%} of Grad-CAM's top "
            "10% pixels stay in its top 10%."
        ),
        Gallery(
            tuple(
                Picture(image, caption, alt, min(image.shape[1], 168))  # five in a row, whatever the input size
                for image, caption, alt in (
                    (big(original), f"original: {names[c0]} ({share(before[c0])})", "original image"),
                    (
                        big(render.to_rgb(found.perturbation)),
                        f"the change ×{found.scale:.0f} (grey: none)",
                        "the perturbation, amplified",
                    ),
                    (big(adversarial), f"adversarial: {names[c1]} ({share(after[c1])})", "adversarial image"),
                    (render.overlay(big(original), cam0), f"Grad-CAM before ({names[c0]})", "CAM before"),
                    (render.overlay(big(adversarial), cam1), f"Grad-CAM after ({names[c1]})", "CAM after"),
                )
            ),
        ),
    ]
