"""Robustness page: adversarial examples on the working model; how far its answer, explanations and activations move."""

import functools

import numpy as np
import streamlit as st

from pages import _cache, _layers, _picker, _state, _warm, _working
from pages import _robustness_parts as parts
from vizcore import attribution
from vizcore import robustness as rb
from vizcore.errors import ConvLensError
from vizcore.present import figures, render

loaded = _working.working_model()
_working.sidebar(loaded)
st.title("🛡️ Robustness")
st.caption(
    "A change too small to see can change what a network says. FGSM takes one step along the sign of the loss "
    "gradient; PGD takes many, staying within ε of the image. ε is a share of the input range: the same visible "
    "change on every model."
)

tabs = ("One image", "Over a dataset")
if "rob.tab" not in st.session_state and "_rob.tab_kept" in st.session_state:  # back from another page: the same tab
    st.session_state["rob.tab"] = st.session_state["_rob.tab_kept"]
tab_one, tab_data = st.tabs(tabs, key="rob.tab", on_change="rerun")  # only the open tab computes
st.session_state["_rob.tab_kept"] = tabs[0] if tab_one.open else tabs[1]
names, model = loaded.class_names, loaded.model
bounds = rb.bounds(loaded.spec.channels, loaded.preprocess)


def _download(where, label: str, data, name: str, mime: str, key: str) -> None:
    """A download whose bytes are made when clicked, not on every rerun."""
    where.download_button(label, data, name, mime, key=key, on_click="ignore")


if tab_one.open:
    with tab_one:
        left, right = st.columns([1, 2])
        with left:
            picked = _picker.input_picker(loaded)
        if picked is None:
            st.stop()
        probs = _cache.probabilities(loaded, picked.key, picked.image_hwc)
        top = int(np.argmax(probs))
        size_hw = picked.image_hwc.shape[:2]
        with right:
            c1, c2, c3 = st.columns(3)
            kinds = list(parts.ATTACKS)
            attack = c1.radio(
                "Attack",
                kinds,
                0,
                format_func=parts.ATTACKS.get,
                **_state.linked("rob.attack", "fgsm", kinds, format_func=parts.ATTACKS.get),
            )
            eps = c2.slider(
                "ε (share of the input range)",
                0.0,
                0.5,
                0.05,
                step=0.001,
                format="%.3f",
                **_state.linked("rob.eps", 0.05, lambda e: 0.0 <= e <= 0.5),
            )
            c2.caption(
                f"{parts.levels(eps)}; on this model's '{loaded.preprocess}' range "
                f"±{eps * float(bounds.width.max()):.4g}"
            )
            steps = int(
                c3.number_input(
                    "PGD steps", 1, 200, 20, disabled=attack == "fgsm", **_state.linked("rob.steps", 20, range(1, 201))
                )
            )
            target = None
            if attack == "pgd_target":
                others = [int(c) for c in np.argsort(-probs, kind="stable") if c != top]  # the runner-up first
                target = c3.selectbox("Target class", others, format_func=names.__getitem__, key="rob.target")
        inputs = (loaded.key, picked.key, attack, eps, steps if attack != "fgsm" else 0, target)
        try:
            x_adv = parts.costly(
                "rob.one",
                inputs,
                parts.ATTACKS[attack],
                attribution.Cost(1 if attack == "fgsm" else steps, "gradient"),
                loaded,
                size_hw,
                lambda sink: parts.attack_one(loaded, picked.image_hwc, attack, eps, steps, target, sink),
                attack=True,
            )
        except ConvLensError as err:
            st.error(str(err))
            st.stop()
        if x_adv is None:
            st.stop()
        adv_key = f"{picked.key}|adv:{abs(hash(inputs))}"
        probs_adv = _cache.probabilities(loaded, adv_key, x_adv)
        adv_top = int(np.argmax(probs_adv))
        shown_adv = parts.display(loaded, x_adv)
        pert, scale = rb.perturbation_image(picked.image_hwc, x_adv, bounds)
        moved = bool(np.any(pert != 128))
        panels = (
            (picked.display_hwc, f"Original: {names[top]} ({probs[top]:.1%})"),
            (
                pert,
                f"Perturbation ×{scale:.1f}: grey = unchanged, black / white = ±{127.5 / scale:.1f} levels"
                if moved
                else "Perturbation: none",
            ),
            (shown_adv, f"Adversarial: {names[adv_top]} ({probs_adv[adv_top]:.1%})"),
        )
        for col, (image, caption) in zip(st.columns(3), panels):
            col.image(parts.big(image), width=parts.SIDE, caption=caption)
        if adv_top != top:
            st.success(f"The prediction changed: {names[top]} → {names[adv_top]}.", icon="⚠️")
        else:
            st.info(f"The prediction stayed {names[top]}: {probs[top]:.1%} → {probs_adv[top]:.1%}.")
        p1, p2 = st.columns(2)
        for where, p, title in ((p1, probs, "Before"), (p2, probs_adv, "After")):
            where.plotly_chart(
                figures.probabilities_figure(names, p, highlight=top).update_layout(title_text=title),
                key=f"rob.{title.lower()}",
            )
        d = st.columns(3)
        _download(
            d[0],
            "Adversarial PNG (rounded to 0..255)",
            lambda: render.to_png(shown_adv),
            "adversarial.png",
            "image/png",
            "rob.png.adv",
        )
        _download(
            d[1],
            "Adversarial .npy (exact, model range)",
            lambda: parts.npy_bytes(x_adv),
            "adversarial.npy",
            "application/octet-stream",
            "rob.npy.adv",
        )
        _download(
            d[2],
            f"Perturbation PNG (×{scale:.1f})",
            lambda: render.to_png(pert),
            "perturbation.png",
            "image/png",
            "rob.png.pert",
        )

        st.subheader("The explanation before and after")
        a1, a2 = st.columns(2)
        methods = list(attribution.METHODS)
        method = a1.selectbox("Attribution method", methods, 0, **_state.linked("rob.method", "Grad-CAM", methods))
        explained = top
        if adv_top != top:
            explained = a2.radio(
                "Class explained in both",
                (top, adv_top),
                format_func=names.__getitem__,
                horizontal=True,
                key="rob.explain",
            )
        layer = _cache.cam_choices(loaded)[1]
        cost = attribution.METHOD_INFO[method].cost_of(model, size_hw, layer=layer)

        def both_maps(_sink) -> tuple[np.ndarray, np.ndarray]:
            return tuple(
                _cache.attribution_map(loaded, key, x, method, explained, layer, ())
                for key, x in ((picked.key, picked.image_hwc), (adv_key, x_adv))
            )

        heats = parts.costly(
            "rob.maps",
            (inputs, method, explained),
            f"{method} before and after",
            attribution.Cost(2 * cost.count, cost.unit),
            loaded,
            size_hw,
            both_maps,
        )
        if heats is not None:
            m = st.columns(3)
            side = max(160, 4 * size_hw[0]) if size_hw[0] < 100 else size_hw[0]
            for col, heat, shown, what in (
                (m[0], heats[0], picked.display_hwc, "original"),
                (m[1], heats[1], shown_adv, "adversarial"),
            ):
                col.image(
                    render.resize(render.overlay(shown, heat), (side, side), smooth=False),
                    caption=f"{method} of {names[explained]} · {what}",
                )
            m[2].metric(
                f"Top {parts.TOP_FRACTION:.0%} pixels in both maps",
                f"{rb.topk_overlap(heats[0], heats[1], fraction=parts.TOP_FRACTION):.0%}",
                help="The share of the original map's top pixels that stay among the adversarial map's",
            )

        st.subheader("Activations: how far each layer moved")
        order = _cache.activation_order(loaded)
        layers = order if len(order) <= _layers.EVERY_LAYER_UP_TO else _cache.block_columns(loaded)
        changes = parts.costly(
            "rob.acts",
            inputs,
            "the activation change",
            attribution.Cost(2, "forward pass"),
            loaded,
            size_hw,
            lambda sink: rb.activation_change(model, picked.image_hwc, x_adv, layers, k=8),
        )
        warm = functools.partial(rb.warm_activation_change, model, picked.image_hwc, x_adv, layers)
        _warm.after_draw(loaded, "robustness.acts", warm)  # the next input's compiled pass
        if changes:
            per = "layer" if layers is order else "block"
            st.plotly_chart(
                figures.bar_figure(
                    [c.layer for c in changes],
                    [c.relative for c in changes],
                    f"Relative change ‖a′ − a‖ / ‖a‖ per {per}",
                    y_title="relative L2",
                ),
                key="rob.change",
            )
            i = st.selectbox(
                "Channels that moved most in",
                range(len(changes)),
                parts.busiest(loaded, changes),
                format_func=lambda j: changes[j].layer,
                key="rob.layer",
            )
            chosen = changes[i]
            st.dataframe(
                {
                    "channel": chosen.channels,
                    "change ‖Δ‖ / ‖a‖": chosen.moved,
                    "mean before": chosen.before,
                    "mean after": chosen.after,
                },
                hide_index=True,
            )
            for ch in chosen.channels[:3]:
                parts.layer_links(loaded, chosen.layer, int(ch), st)
            rows = [(c.layer, float(c.relative)) for c in changes]
            _download(
                st,
                "Activation change CSV",
                lambda: parts.csv_bytes(("layer", "relative_l2"), rows),
                "activation_change.csv",
                "text/csv",
                "rob.csv.acts",
            )

if tab_data.open:
    with tab_data:
        sources = list(parts.SOURCES)
        c1, c2, c3, c4 = st.columns(4)
        first = sources.index("mnist_sample" if loaded.spec.channels == 1 else "photos")
        source = c1.selectbox("Dataset", sources, first, format_func=parts.SOURCES.get, key="rob.ds.source")
        small = np.prod([loaded.spec.height or 32, loaded.spec.width or 32, loaded.spec.channels]) <= 32 * 32 * 3
        count = int(
            c2.number_input(
                "Images (at most)", 4, 5000, 1000 if small else 16, step=100 if small else 4, key="rob.ds.count"
            )
        )
        ds_attack = c3.radio(
            "Attack", ("fgsm", "pgd"), format_func=parts.ATTACKS.get, horizontal=True, key="rob.ds.attack"
        )
        ds_steps = int(c3.number_input("PGD steps", 1, 100, 10, key="rob.ds.steps", disabled=ds_attack == "fgsm"))
        max_eps = c4.select_slider(
            "Largest ε",
            parts.MAX_EPS,
            0.3 if loaded.spec.channels == 1 else 0.03,
            key="rob.ds.max",
            help="Photos: 8/255 ≈ 0.03 is the usual budget; digits: 0.3",
        )
        epsilons = np.round(np.linspace(0.0, max_eps, 7), 4)
        try:
            x, shown, y = parts.dataset_images(loaded, source, count)
        except ConvLensError as err:
            st.error(str(err))
            st.stop()
        against = (
            "their labels"
            if y is not None
            else ("the model's own predictions (the dataset's classes are not the model's), so ε 0 scores 100%")
        )
        st.caption(
            f"{len(x):,} images, attacked on {against}; ε {', '.join(map(str, epsilons))} "
            f"({parts.levels(max_eps)} at most); each image's minimal ε from the same grid, halved 4 times."
        )
        per = (1 + len(epsilons) + 3) if ds_attack == "fgsm" else ds_steps * (2 * len(epsilons) + 3)
        run = parts.costly(
            "rob.ds",
            (loaded.key, source, len(x), ds_attack, max_eps, ds_steps),
            "the attacks on the dataset",
            attribution.Cost(len(x) * per, "gradient"),
            loaded,
            x.shape[1:3],
            lambda sink: parts.run_dataset(loaded, x, y, ds_attack, epsilons, ds_steps, sink),
            attack=True,
        )
        if run is not None:
            g1, g2 = st.columns(2)
            curve = {parts.ATTACKS[ds_attack]: (run.epsilons, run.accuracy)}
            g1.plotly_chart(
                figures.curves_figure(
                    curve,
                    "Accuracy against ε",
                    x_title="ε (share of the input range)",
                    y_title="accuracy",
                    y_range=(0, 1),
                ),
                key="rob.ds.curve",
            )
            counts, edges = np.histogram(run.minimal[np.isfinite(run.minimal)], bins=np.linspace(0.0, max_eps, 13))
            g2.plotly_chart(
                figures.histogram_figure(counts, edges, "Minimal ε per image", x_title="ε"), key="rob.ds.hist"
            )
            g2.caption(
                f"{int(np.sum(run.minimal == 0))} already not their label at ε 0; "
                f"{int(np.sum(~np.isfinite(run.minimal)))} unchanged up to ε {max_eps}."
            )
            if len(run.fragile):
                pairs = [t for i, twin in zip(run.fragile, run.twins) for t in (shown[i], parts.display(loaded, twin))]
                strip = render.montage([parts.big(t, 112) for t in pairs], columns=2, pad=4)
                st.image(
                    strip,
                    width=min(480, strip.shape[1]),
                    caption="The most fragile images (left) beside their "
                    "twins at their minimal ε: " + "; ".join(f"#{i}: ε {run.minimal[i]:.3f}" for i in run.fragile),
                )
                _download(
                    st,
                    "Fragile pairs PNG",
                    lambda: render.to_png(strip),
                    "fragile_pairs.png",
                    "image/png",
                    "rob.ds.png",
                )
            d1, d2 = st.columns(2)
            accuracy_rows = list(zip(map(float, run.epsilons), map(float, run.accuracy)))
            _download(
                d1,
                "Accuracy CSV",
                lambda: parts.csv_bytes(("epsilon", "accuracy"), accuracy_rows),
                "accuracy_vs_eps.csv",
                "text/csv",
                "rob.ds.csv",
            )
            minimal_rows = list(enumerate(map(float, run.minimal)))
            _download(
                d2,
                "Minimal ε CSV",
                lambda: parts.csv_bytes(("image", "minimal_eps"), minimal_rows),
                "minimal_eps.csv",
                "text/csv",
                "rob.ds.csv_min",
            )
