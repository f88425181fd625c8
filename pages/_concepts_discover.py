"""Discover (CRAFT): the concepts a layer uses for a class, as an atlas of crops, importances, heatmaps and channels."""

from __future__ import annotations

import numpy as np
import streamlit as st

from pages import _cache, _concepts_parts, _layers, _links, _state
from pages._concepts_parts import Images, crop_tile
from vizcore import concepts
from vizcore.inspect import examples
from vizcore.present import figures, render

ATLAS_CROPS = 8  # crops per concept in the atlas
HEATMAPS = 6  # concepts drawn over the chosen image


def _atlas(found: concepts.Craft, display: np.ndarray) -> np.ndarray:
    tiles = [crop_tile(display[i], box) for c in found.order for i, box in found.crops[c][:ATLAS_CROPS]]
    return render.montage(np.stack(tiles), columns=ATLAS_CROPS, pad=2)


def _concept_name(found: concepts.Craft, c: int) -> str:
    return f"concept {c} ({found.importances[c]:.2f})"


def _heat_strip(found: concepts.Craft, x_hwc: np.ndarray, display_hwc: np.ndarray) -> tuple[np.ndarray, list[int]]:
    shown = [int(c) for c in found.order[:HEATMAPS]]
    heat = found.heatmaps(x_hwc[None])[0][shown]  # (k, H, W)
    heat = heat / max(float(heat.max()), 1e-12)  # one scale for the image: how much of each concept is where
    side = max(128, display_hwc.shape[0])
    tiles = [render.resize(render.to_rgb(display_hwc), (side, side), smooth=False)]
    tiles += [render.resize(render.overlay(display_hwc, h, cmap="inferno", alpha=0.6), (side, side)) for h in heat]
    return render.montage(np.stack(tiles), columns=len(tiles), pad=4), shown


def _picked_concept(found: concepts.Craft, atlas_shape) -> int:
    """The concept clicked in the atlas or the importance bars (a new click wins), else the selectbox's; a new
    result starts at its most important concept."""
    if _state.changed("concepts.concept_for", id(found)):
        st.session_state["concepts.concept"] = int(found.order[0])
    for key in ("concepts.atlas", "concepts.bars"):
        event = st.session_state.get(key)
        if not _state.changed(key, repr(event)) or not event:
            continue
        if key == "concepts.atlas":
            tile = figures.selected_tile(event, atlas_shape, found.n_concepts * ATLAS_CROPS, columns=ATLAS_CROPS, pad=2)
            rank = None if tile is None else tile // ATLAS_CROPS
        else:
            points = event.get("selection", {}).get("points", [])
            rank = points[-1].get("point_index") if points else None
        if rank is not None and 0 <= int(rank) < found.n_concepts:
            st.session_state["concepts.concept"] = int(found.order[int(rank)])
    return int(st.session_state["concepts.concept"])


def _details(loaded, found: concepts.Craft, data: Images, idx: np.ndarray, c: int) -> None:
    st.subheader(
        f"Concept {c}: importance {found.importances[c]:.3f} (rank {int(np.flatnonzero(found.order == c)[0]) + 1})"
    )
    crops = found.crops[c]
    tiles = [crop_tile(data.display[idx[i]], box, 96) for i, box in crops]
    st.image(
        render.montage(np.stack(tiles), columns=8, pad=2),
        caption="Its most typical crops, best first: " + ", ".join(f"#{data.index[idx[i]]}" for i, _ in crops),
    )
    side = max(96, data.display.shape[1])
    where = [
        render.resize(examples.draw_box(render.to_rgb(data.display[idx[i]]), np.array(box)), (side, side), smooth=False)
        for i, box in crops[:8]
    ]
    st.image(render.montage(np.stack(where), columns=8, pad=2), caption="Where those crops are in their images")
    channels = found.channels(c, 8)
    left, right = st.columns([2, 1])
    left.plotly_chart(
        figures.bar_figure(
            [f"ch {k}" for k in channels],
            found.bank_w[c][channels],
            f"Channels of {found.layer} that weigh most in concept {c}",
            y_title="weight in W",
        ),
        key="concepts.channels",
    )
    conv = concepts.channel_source(loaded.model, found.layer)
    name = _layers.label_of(loaded)
    with right:
        if conv is not None and conv in _cache.summary(loaded).conv_layers:
            _links.link(st, "pages/filters.py", f"{conv}: what its filters look for", {"fv.layer": name(conv)})
        choices = _cache.cam_choices(loaded)[0]
        target = found.layer if found.layer in choices else conv if conv in choices else None
        if target is None:
            st.caption(f"The Dataset view does not rank the channels of {found.layer}.")
        for k in channels[:3] if target is not None else ():
            _links.link(st, "pages/dataset.py", f"Channel {k}: its top dataset images", {"layer": target, "ch": int(k)})


def show(loaded, data: Images) -> None:
    """The Discover view for the working model over ``data``."""
    layers = concepts.craft_layers(loaded.model)
    if not layers:
        st.error(
            "CRAFT needs a layer with non-negative feature maps (after a ReLU) where the network can be cut; "
            "this model has none."
        )
        return
    names = loaded.class_names
    c1, c2 = st.columns(2)
    cls = c1.selectbox("Class", range(len(names)), format_func=lambda i: names[i], key="concepts.class")
    _state.reset_when("concepts.layer", loaded.key)  # another model: its own default
    layer = _layers.select(
        loaded, c2, "Layer (non-negative feature maps)", layers, key="concepts.layer", default=layers[-1]
    )
    c3, c4, c5 = st.columns(3)
    n = int(c3.slider("Concepts", 2, 16, 10, key="concepts.n"))
    most = int(c4.number_input("Images of the class (at most)", 2, 1000, 100, key="concepts.images"))
    patch = int(
        c5.number_input(
            "Crop side (px; 0: fitted to the layer's receptive field)",
            0,
            min(data.x.shape[1:3]),
            0,
            key="concepts.patch",
        )
    )
    idx = np.flatnonzero(data.labels == cls)[:most]
    how = "the model predicts as" if data.by_prediction else "labelled"
    if len(idx) < 2:
        st.warning(f"Only {len(idx)} image(s) {how} {names[cls]} here; pick another class or dataset.")
        return
    x, hw = data.x[idx], data.x.shape[1:3]
    st.caption(
        f"{len(idx)} images {how} {names[cls]}; crops of "
        f"{patch or concepts.fitted_patch(loaded.model, layer, hw)} px, overlapping by at least a fifth."
    )
    cost = concepts.craft_cost(loaded.model, layer, len(x), hw, n_concepts=n, patch=patch or None)
    found = _concepts_parts.run(
        "concepts.craft",
        (loaded.key, data.key, cls, layer, n, patch, len(x)),
        "CRAFT",
        str(cost),
        concepts.craft_seconds(loaded.model, cost, hw),
        lambda progress: concepts.craft(
            loaded.model, layer, x, cls, n_concepts=n, patch=patch or None, on_progress=progress
        ),
    )
    if found is None:
        return
    st.caption(
        f"Reconstruction error of the crops' activations: {found.error:.1%} · importance: Sobol total index of "
        f"each concept for the {names[cls]} score, masking it in {layer}."
    )
    atlas = _atlas(found, data.display[idx])
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(
            figures.image_figure(
                atlas,
                "Concept atlas: one row per concept, most important first",
                height=min(900, 60 + 26 * found.n_concepts * ATLAS_CROPS // 4),
                points=figures.tile_points(atlas.shape[:2], found.n_concepts * ATLAS_CROPS, columns=ATLAS_CROPS, pad=2),
            ),
            key="concepts.atlas",
            on_select="rerun",
            selection_mode="points",
        )
    c = _picked_concept(found, atlas.shape[:2])
    with right:
        labels = [_concept_name(found, int(k)) for k in found.order]
        st.plotly_chart(
            figures.bar_figure(
                labels,
                found.importances[found.order],
                "Importance for " + names[cls],
                flagged=[int(k) == c for k in found.order],
                horizontal=True,
                height=60 + 26 * found.n_concepts,
            ),
            key="concepts.bars",
            on_select="rerun",
            selection_mode="points",
        )
        st.selectbox(
            "Open a concept (or click its row or bar)",
            [int(k) for k in found.order],
            format_func=lambda k: _concept_name(found, k),
            key="concepts.concept",
        )
    image_at = int(
        st.number_input(f"Image of {names[cls]} (0–{len(idx) - 1})", 0, len(idx) - 1, 0, key="concepts.image")
    )
    strip, shown = _heat_strip(found, x[image_at], data.display[idx[image_at]])
    st.image(
        strip,
        caption=f"#{data.index[idx[image_at]]}, then where each concept is: "
        + ", ".join(_concept_name(found, k) for k in shown),
    )
    _details(loaded, found, data, idx, c)
    rows = [
        [
            int(k),
            r + 1,
            float(found.importances[k]),
            " ".join(map(str, found.channels(int(k), 8))),
            " ".join(f"{data.index[idx[i]]}:{x0}-{y0}-{x1}-{y1}" for i, (x0, y0, x1, y1) in found.crops[k]),
        ]
        for r, k in enumerate(found.order)
    ]
    stem = f"craft_{loaded.model.name}_{layer.replace('/', '_')}_{names[cls]}"
    d1, d2, d3 = st.columns(3)
    d1.download_button(
        "Concepts (CSV)",
        _concepts_parts.csv_bytes(["concept", "rank", "importance", "top channels", "crops (image:x0-y0-x1-y1)"], rows),
        f"{stem}.csv",
        "text/csv",
        key="concepts.csv",
    )
    d2.download_button("Atlas (PNG)", render.to_png(atlas), f"{stem}_atlas.png", "image/png", key="concepts.atlas_png")
    d3.download_button(
        "Heatmaps (PNG)", render.to_png(strip), f"{stem}_heatmaps.png", "image/png", key="concepts.heat_png"
    )
