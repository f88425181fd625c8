"""Concepts: CRAFT on 300 images and TCAV with 10 runs, on the shapes CNN and on MobileNetV2 at 224.

MobileNetV2 is built with ``weights=None`` (ImageNet weights cannot be downloaded here): its rows
are timings only; its concepts and scores mean nothing. The shapes rows also give the ground truth
(the triangle concept's crops against the shapes' boxes, held-out heatmaps, TCAV scores and
p-values) in their notes.

The baseline is Xplique 2.0.2 (``CraftTf``; ``Cav`` + ``Tcav``, one per run) when the environment
variable ``CONVLENS_XPLIQUE_PYTHON`` names a Python that has it (a venv of its own: Xplique pins
older TensorFlow, SciPy and scikit-learn, so it is installed with ``--no-deps``; see
``bench/xplique_concepts.py``). It runs on the same crops, the same images and the same random
sets per run, and the notes say how far its concept bank and importances are from ours. Without it
the rows have no baseline. Xplique floors Var(f(A)) at 1e-12 in absolute terms, ours at 1e-12
of mean(f(A)^2): on the untrained MobileNetV2, whose scores vary by about 1e-11, its importances
all come out near 0 while ours do not (the rank correlation in the note says whether the order
agrees).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import stats

from bench.common import Row

AREA = "concepts"
HERE = Path(__file__).resolve().parent
XPLIQUE_ENV = "CONVLENS_XPLIQUE_PYTHON"
IMAGES, CONCEPTS, RUNS = 300, 10, 10


def _covered(object_box, crop_box) -> float:
    x0, y0, x1, y1 = crop_box
    bx0, by0, bx1, by1 = object_box
    return max(0, min(x1, bx1) - max(x0, bx0)) * max(0, min(y1, by1) - max(y0, by0)) / ((x1 - x0) * (y1 - y0))


def _ground_truth(found, boxes, held_x, held_boxes) -> str:
    best = int(found.order[0])
    top = np.mean([_covered(boxes[i], b) >= 0.5 for i, b in found.crops[best][:10]])
    base = np.mean([_covered(boxes[i], b) >= 0.5 for i, b in zip(found.crop_image, found.crop_box)])
    heat = found.heatmaps(held_x)[:, best]
    inside = np.zeros(heat.shape, bool)
    for i, (x0, y0, x1, y1) in enumerate(held_boxes):
        inside[i, y0:y1, x0:x1] = True
    peaks = np.mean([inside[i].ravel()[np.argmax(heat[i])] for i in range(len(heat))])
    mass = float((heat * inside).sum() / heat.sum())
    return (
        f"top concept ({found.importances[best]:.2f}): {top:.0%} of its 10 best crops at least half on the triangle "
        f"(all crops: {base:.0%}); on {len(held_x)} held-out triangles its heatmap peaks inside the box in "
        f"{peaks:.0%}, {mass:.0%} of its mass inside (boxes cover {inside.mean():.0%})"
    )


def _xplique(
    model_path: str, layer: str, tail: list[str], found, x, target: int, sets, concept, random, cls, tcav_target: int
) -> dict | None:
    python = os.environ.get(XPLIQUE_ENV)
    if not python:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        arrays = {
            "craft_x": x,
            "boxes": found.crop_box[found.crop_image == 0],
            "tcav_concept": concept,
            "tcav_random": random,
            "tcav_class": cls,
        }
        for run, (pick, a, b) in enumerate(sets):
            arrays |= {f"pick_{run}": pick, f"a_{run}": a, f"b_{run}": b}
        np.savez(Path(tmp) / "in.npz", **arrays)
        spec = {
            "model": model_path,
            "layer": layer,
            "tail": tail,
            "scale": found.factorization.scale,
            "target": target,
            "n_concepts": found.n_concepts,
            "patch": found.patch,
            "runs": len(sets),
            "tcav_target": tcav_target,
        }
        (Path(tmp) / "spec.json").write_text(json.dumps(spec))
        done = subprocess.run(
            [python, str(HERE / "xplique_concepts.py"), f"{tmp}/in.npz", f"{tmp}/spec.json", f"{tmp}/out.json"],
            capture_output=True,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        if done.returncode:  # the row keeps ours, and says why there is no baseline
            return {"failed": f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:] or 'killed'}"}
        return json.loads((Path(tmp) / "out.json").read_text())


def _rows(
    name: str,
    model,
    model_path: str,
    layer: str,
    tail: list[str],
    x,
    target: int,
    concept,
    random,
    cls,
    tcav_target: int,
    truth=None,
) -> list[Row]:
    from vizcore import concepts

    concepts.craft(model, layer, x[:8], target, n_concepts=3)  # traces and cached sub-models, outside the timing
    start = time.perf_counter()
    found = concepts.craft(model, layer, x, target, n_concepts=CONCEPTS)
    craft_ms = (time.perf_counter() - start) * 1000
    load = os.getloadavg()[0]  # a shared machine: how busy it was
    concepts.tcav(model, layer, concept[:10], random[:20], cls[:4], tcav_target, runs=2)
    start = time.perf_counter()
    t = concepts.tcav(model, layer, concept, random, cls, tcav_target, runs=RUNS)
    tcav_ms = (time.perf_counter() - start) * 1000
    sets = concepts.run_sets(len(concept), len(random), RUNS)
    xpl = _xplique(model_path, layer, tail, found, x, target, sets, concept, random, cls, tcav_target)
    cost = concepts.craft_cost(model, layer, len(x), x.shape[1:3], n_concepts=CONCEPTS)
    craft_note = (
        f"{cost.crops:,} crops of {found.patch} px, {cost.masked:,} masked copies; "
        f"reconstruction error {found.error:.1%}; load average {load:.1f} on {os.cpu_count()} cores"
    )
    tcav_note = f"score {t.score:.2f} (random {np.mean(t.random_scores):.2f}), p={t.p_value:.2g}"
    base = {"craft": ("", None), "tcav": ("", None)}
    if xpl is not None and "failed" in xpl:
        craft_note += f"; Xplique's run failed ({xpl['failed']})"
    elif xpl is not None:
        w_gap = np.abs(np.asarray(xpl["craft_w"]) - found.bank_w).max() / max(float(found.bank_w.max()), 1e-12)
        imp = np.asarray(xpl["craft_importances"])
        ranks = stats.spearmanr(imp, found.importances).statistic
        craft_note += (
            f"; Xplique on the same crops: concept bank within {w_gap:.1e} of ours (relative), importances "
            f"within {np.abs(imp - found.importances).max():.3f} (its largest {imp.max():.2g}; rank correlation "
            f"{ranks:.2f}), same top concept: {int(np.argmax(imp)) == int(found.order[0])}"
        )
        tcav_note += (
            f"; Xplique, same sets: score {np.mean(xpl['tcav_scores']):.2f} "
            f"(random {np.mean(xpl['tcav_random_scores']):.2f}), p={xpl['tcav_p']:.2g}"
        )
        base = {
            "craft": ("Xplique 2.0.2 CraftTf fit + estimate_importance, same crops", xpl["craft_seconds"] * 1000),
            "tcav": ("Xplique 2.0.2 Cav + Tcav per run, same sets", xpl["tcav_seconds"] * 1000),
        }
    if truth is not None:
        craft_note += "; " + _ground_truth(found, *truth)
    return [
        Row(AREA, f"CRAFT, {name} {layer}, {len(x)} images, {CONCEPTS} concepts", craft_ms, *base["craft"], craft_note),
        Row(
            AREA,
            f"TCAV, {name} {layer}, {RUNS} runs, {len(concept)} concept / {len(random)} random / {len(cls)} "
            f"class images",
            tcav_ms,
            *base["tcav"],
            tcav_note,
        ),
    ]


def _shapes_tcav_figures(model, concept, random, by_class) -> str:
    from vizcore import concepts
    from vizcore.data import datasets

    tri = concepts.tcav(model, "pool2", concept, random, by_class[2], 2, runs=RUNS)
    circle = concepts.tcav(model, "pool2", concept, random, by_class[0], 0, runs=RUNS)
    fake = datasets.make_shapes(50, seed=11).x_nhwc
    rr = [concepts.tcav(model, "pool2", fake, random, by_class[c], c, runs=RUNS).p_value for c in range(3)]
    return (
        f"triangles as the concept: triangle {tri.score:.2f} (p={tri.p_value:.2g}), circle {circle.score:.2f} "
        f"(p={circle.p_value:.2g}); random shapes as the concept: p = " + ", ".join(f"{p:.2f}" for p in rr)
    )


def run() -> list[Row]:
    import keras

    from vizcore import models
    from vizcore.data import datasets

    rows = []
    shapes = models.open_bundled("shapes_cnn").model
    ds = datasets.make_shapes(1000, seed=2)
    tri = np.flatnonzero(ds.y == 2)
    x, boxes = ds.x_nhwc[tri[:IMAGES]], ds.boxes[tri[:IMAGES]]
    held = datasets.make_shapes(300, seed=5)
    held_tri = np.flatnonzero(held.y == 2)
    random = datasets.make_shapes(200, seed=7).x_nhwc
    by_class = {c: ds.x_nhwc[np.flatnonzero(ds.y == c)[-100:]] for c in range(3)}
    model_path = str(Path(__file__).resolve().parent.parent / "models" / "shapes_cnn.keras")
    rows += _rows(
        "shapes CNN",
        shapes,
        model_path,
        "pool2",
        ["flatten", "logits"],
        x,
        2,
        x[:50],
        random,
        by_class[2],
        2,
        truth=(boxes, held.x_nhwc[held_tri], held.boxes[held_tri]),
    )
    rows[-1] = dataclasses.replace(
        rows[-1], note=rows[-1].note + "; " + _shapes_tcav_figures(shapes, x[:50], random, by_class)
    )
    keras.utils.set_random_seed(0)
    mobilenet = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
    big = datasets.make_shapes(IMAGES + 200, size=224, seed=3)
    xb = big.x_nhwc * 2 - 1  # MobileNetV2's [-1, 1]
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "mobilenet_v2.keras")
        mobilenet.save(path)
        rows += _rows(
            "MobileNetV2 224 (untrained)",
            mobilenet,
            path,
            "out_relu",
            ["global_average_pooling2d", "predictions"],
            xb[:IMAGES],
            0,
            xb[:50],
            xb[IMAGES : IMAGES + 100],
            xb[IMAGES + 100 :],
            0,
        )
    return rows
