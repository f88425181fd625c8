"""The faithfulness and sanity panel of the Attribution page.

Every check scores the map the page shows: the method's options (Occlusion's patch, IG's steps, ...)
go through. A finished check stays on screen until one of its inputs changes.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from pages import _attribution_parts, _cache, _runner
from vizcore import attribution
from vizcore.attribution import metrics
from vizcore.attribution.progress import progress_to
from vizcore.data import datasets
from vizcore.present import figures, render


def _curves(
    loaded, input_key: str, _image_hwc, label: str, target: int, layer: str, options: tuple, steps: int
) -> dict:
    maps = {label: _cache.attribution_map(loaded, input_key, _image_hwc, label, target, layer, options)}
    for name, fn in metrics.BASELINE_MAPS.items():
        maps[f"{name} (baseline)"] = fn(loaded.model, _image_hwc, target=target)
    return {
        name: (
            metrics.deletion_curve(loaded.model, _image_hwc, heat, target=target, steps=steps),
            metrics.insertion_curve(loaded.model, _image_hwc, heat, target=target, steps=steps),
        )
        for name, heat in maps.items()
    }


def _run_curves(sink, total: int, loaded, picked, label, target, layer, options: tuple, steps: int) -> dict:
    """``_curves`` with progress, kept per session by ``on_demand`` (a cached function must not report progress)."""
    _cache.attribution_map(
        loaded, picked.key, picked.image_hwc, label, target, layer, options
    )  # warm, outside the progress
    with progress_to(sink, total):
        return _curves(loaded, picked.key, picked.image_hwc, label, target, layer, options, steps)


def _deletion_insertion(loaded, picked, label, target, layer, options: tuple) -> None:
    st.markdown(f"#### Deletion and insertion: {label}")
    st.caption(
        "Deletion removes the pixels the map ranks highest first: a faithful map makes the class probability fall fast "
        "(low area under the curve). Insertion adds them to a blurred image: it should rise fast (high area)."
    )
    steps = st.slider("Steps", 10, 50, metrics.CURVE_STEPS, 5, key="faith.steps")
    passes = attribution.Cost(
        (1 + len(metrics.BASELINE_MAPS)) * 2 * (steps + 2)
    )  # per map: two curves of steps + 1 images, and the class
    # ~130 forward passes: from a button on a large model, kept until an input changes
    curves = _attribution_parts.on_demand(
        "faith.curves",
        (loaded.key, picked.key, label, target, layer, options, steps),
        "deletion and insertion",
        str(passes),
        _attribution_parts.estimate(loaded, passes, picked.image_hwc.shape[:2]),
        lambda sink: _run_curves(sink, passes.count, loaded, picked, label, target, layer, options, steps),
    )
    if curves is None:
        return
    c1, c2 = st.columns(2)
    c1.plotly_chart(
        figures.curves_figure(
            {k: (d.fractions, d.probabilities) for k, (d, _) in curves.items()},
            "Deletion",
            x_title="share of pixels removed",
            y_title="probability",
            y_range=(0, 1),
        ),
        key="faith.del",
    )
    c2.plotly_chart(
        figures.curves_figure(
            {k: (i.fractions, i.probabilities) for k, (_, i) in curves.items()},
            "Insertion",
            x_title="share of pixels inserted",
            y_title="probability",
            y_range=(0, 1),
        ),
        key="faith.ins",
    )
    st.dataframe(
        {
            "map": list(curves),
            "deletion AUC (lower is better)": [round(d.auc, 3) for d, _ in curves.values()],
            "insertion AUC (higher is better)": [round(i.auc, 3) for _, i in curves.values()],
        },
        hide_index=True,
    )


def _randomization(loaded, picked, label, target, layer, options: tuple, cmap: str) -> None:
    st.markdown("#### Model randomization")
    st.caption(
        "Re-initialise the top layers' weights in a copy of the model, each from its layer's own initializer, and "
        "explain again. A map that stays the same does not depend on what the model learned (Adebayo et al., 2018): "
        "low rank correlation is the healthy answer."
    )
    weighted = sum(1 for w in loaded.model.layers if w.weights)
    top = st.slider("Top layers to re-initialise", 1, max(1, min(weighted, 8)), 1, key="faith.top")
    inputs = (loaded.key, picked.key, label, target, layer, options, top)
    cost = attribution.METHOD_INFO[label].cost_of(
        loaded.model, picked.image_hwc.shape[:2], layer=layer, **dict(options)
    )
    result = _runner.run(
        "faith.random",
        inputs,
        lambda _sink: metrics.randomization_check(
            loaded.model,
            picked.image_hwc,
            attribution.METHODS[label],
            target=target,
            layer=layer,
            top_layers=top,
            options=dict(options),
        ),
        ask=_runner.Ask(
            "the randomization check",
            label="Run the check",
            key="faith.random",
            help=f"Runs {label} twice: {cost} each",
            cancel=False,
        ),
    )
    if result is None:
        return
    rho = "n/a (a map is constant)" if np.isnan(result.spearman) else f"{result.spearman:+.2f}"
    st.metric("Spearman rank correlation", rho, help=f"Re-initialised: {', '.join(result.layers)}")
    size = max(160, picked.display_hwc.shape[0])
    c1, c2 = st.columns(2)
    for col, heat, title in (
        (c1, result.original_hw, "trained model"),
        (c2, result.randomized_hw, "re-initialised copy"),
    ):
        col.image(
            render.resize(render.overlay(picked.display_hwc, heat, cmap=cmap), (size, size), smooth=False),
            caption=f"{label}, {title}",
        )


def _pointing_game(loaded, label, layer, options: tuple) -> None:
    st.markdown("#### Pointing game on the shapes dataset")
    if tuple(loaded.class_names) != datasets.SHAPE_CLASSES:
        st.caption(
            "Needs a model trained on the shapes dataset (the bundled Shapes CNN): each image's box says where the "
            "object is, and a hit is a map whose peak falls inside it."
        )
        return
    n = st.slider("Images", 20, 300, 100, 20, key="faith.n")
    size = loaded.spec.height or 64
    st.caption(
        "A hit: a peak of the map (any of them, when several pixels tie) "
        f"within {metrics.pointing_tolerance(size, size):.1f} px "
        "of the object's box (Zhang et al., 2018: 15 px at 224 px, scaled). A flat map counts as a miss."
    )
    inputs = (loaded.key, label, layer, options, n)

    def play(sink) -> tuple[float, float]:
        shapes = datasets.make_shapes(n, size=size, seed=11)
        fn = attribution.METHODS[label]
        hits, chunk = 0.0, 20
        for start in range(0, n, chunk):
            part = shapes.subset(np.arange(start, min(n, start + chunk)))
            hits += metrics.pointing_game(loaded.model, part, fn, layer=layer, options=dict(options)) * len(part)
            sink(min(n, start + chunk), n)
        chance = metrics.pointing_game(loaded.model, shapes.subset(np.arange(min(n, 60))), metrics.random_map)
        return hits / n, chance

    scores = _runner.run(
        "faith.pointing",
        inputs,
        play,
        ask=_runner.Ask("the pointing game", label="Play", key="faith.play", help=None, cancel=False),
        unit="images",
    )
    if scores is None:
        return
    c1, c2 = st.columns(2)
    c1.metric(f"{label}: hits", f"{scores[0]:.0%}", help="Share of images whose map peaks on the object's box")
    c2.metric("Random map (baseline)", f"{scores[1]:.0%}")


def panel(
    loaded, picked, label: str, target: int, layer: str, heat, options: dict | None = None, *, cmap: str = "inferno"
) -> None:
    """Deletion/insertion with baselines, the randomization check and the pointing game for one method.

    ``options`` are the method's keyword options as the page set them, so every check scores the map shown.
    """
    if heat is None:
        st.info("Pick a method on the left to check its faithfulness.")
        return
    opts = tuple(sorted((options or {}).items()))
    _deletion_insertion(loaded, picked, label, target, layer, opts)
    used = (
        layer if attribution.METHOD_INFO[label].uses_layer else None
    )  # another layer does not change this method's map
    _randomization(loaded, picked, label, target, used, opts, cmap)
    _pointing_game(loaded, label, used, opts)
