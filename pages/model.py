"""Model page: pick the working model and see what it is made of."""

import functools

import streamlit as st

from pages import _cache, _choice, _links, _model_options, _report_view, _state, _working
from vizcore import models
from vizcore.errors import ModelLoadError, WeightsUnavailableError

_working.init_state()
st.title("🧠 Model")
st.caption(
    "Pick the network to look inside. It stays selected on every page. Start with a bundled trained "
    "model, build a preset, upload your own `.keras` / `.h5` file, or take a `keras.applications` network."
)

SOURCES = {
    "bundled": "Bundled (trained)",
    "preset": "Preset (untrained)",
    "upload": "Upload a file",
    "app": "keras.applications",
    "session": "Built or trained here",
}
current = st.session_state[_working.WORKING]
source = st.radio(
    "Source",
    list(SOURCES),
    index=list(SOURCES).index("session" if current.kind in ("built", "trained") else current.kind),
    format_func=SOURCES.get,
    horizontal=True,
    key="model.source",
)

if source == "bundled":
    names = models.list_bundled()
    if not names:
        st.error("No bundled models found in models/. Rebuild them with `python models/build_models.py`.")
    else:
        cards = {n: models.bundled_card(n) for n in names}
        name = st.selectbox(
            "Bundled model",
            names,
            index=names.index(current.name) if current.kind == "bundled" and current.name in names else 0,
            format_func=lambda n: (
                f"{cards[n]['label']} — {cards[n]['test_accuracy']:.1%} held-out accuracy "
                f"on {cards[n]['dataset_id'].replace('_', ' ')}"
            ),
            key="model.bundled",
        )
        _working.set_working(_choice.Choice("bundled", name))

elif source == "preset":
    names = list(models.presets.PRESETS)
    name = st.selectbox(
        "Preset",
        names,
        index=names.index(current.name) if current.kind == "preset" and current.name in names else 0,
        format_func=lambda n: f"{models.presets.PRESETS[n].label} — {models.presets.PRESETS[n].description}",
        key="model.preset",
    )
    st.info("Presets start with random weights: their filters and explanations show noise until trained.")
    _working.set_working(_choice.Choice("preset", name))

elif source == "upload":
    upload = st.file_uploader(
        "A model: .keras, .h5 (Keras 2, tf.keras 1.x/2.x, Teachable Machine's keras_model.h5), or a ZIP "
        "(Teachable Machine's converted_keras.zip or TF.js download: model.json + weights.bin + metadata.json). "
        "Class names and the input range come with it where the export says them. "
        "Lambda layers and custom code are refused for safety.",
        type=["keras", "h5", "hdf5", "zip", "json"],
        key="model.upload",
        max_upload_size=_working.LIMITS.upload_mb,
    )
    if upload is not None:
        try:
            with st.spinner(f"Loading {upload.name}…"):
                _working.set_working(_working.add_upload(upload.getvalue(), upload.name))
            st.success(f"Loaded {upload.name}.")
        except ModelLoadError as err:
            st.error(str(err), icon="🚫")
    elif current.kind != "upload":
        st.caption("Until a file is loaded, the working model stays as it was.")

elif source == "app":
    names = _choice.applications()
    col_net, col_weights = st.columns([2, 1])
    name = col_net.selectbox(
        "Network",
        names,
        index=names.index(current.name) if current.kind == "app" and current.name in names else 0,
        key="model.app",
    )
    weights = col_weights.radio("Weights", ["imagenet", "untrained"], horizontal=True, key="model.app_weights")
    if st.button("Load network", key="model.app_load", type="primary"):
        choice = _choice.Choice("app", name, None if weights == "untrained" else "imagenet")
        try:
            _working.open_choice(choice)
            _working.set_working(choice)
        except WeightsUnavailableError as err:
            st.error(str(err), icon="📡")
            st.session_state["model.offer_untrained"] = name
    offered = st.session_state.get("model.offer_untrained")
    if offered and st.button(f"Build {offered} untrained instead", key="model.app_untrained"):
        _working.set_working(_choice.Choice("app", offered, None))
        del st.session_state["model.offer_untrained"]

elif source == "session":
    own = {k: m for k, m in st.session_state[_working.SESSION_MODELS].items() if not k.startswith("upload:")}
    if not own:
        st.caption("Models you build on the Builder page or train on the Training page appear here.")
    else:
        keys = list(own)
        key = st.selectbox(
            "Model",
            keys,
            index=keys.index(current.name) if current.name in keys else len(keys) - 1,
            format_func=lambda k: own[k].label,
            key="model.session",
        )
        _working.set_working(_choice.Choice("trained" if key.startswith("trained:") else "built", key))

loaded = _working.working_model()
base = _working.open_choice(st.session_state[_working.WORKING])  # without this session's range and names
_working.sidebar(loaded)
info = _cache.summary(loaded)

st.subheader(loaded.label)
cols = st.columns(6)
cols[0].metric("Parameters", f"{info.params:,}", help=f"{info.trainable_params:,} trainable")
cols[1].metric("Layers", info.layers, help="Nested models' layers included")
cols[2].metric("Conv layers", len(info.conv_layers))
cols[3].metric("Input", f"{info.input.height or 'any'}×{info.input.width or 'any'}×{info.input.channels}")
cols[4].metric("Outputs", info.outputs)
cols[5].metric("Head", info.head, help="How scores become outputs; explanations use the scores before it")
st.caption(
    f"Default layer to explain: `{info.default_layer}` (the last convolution, after its BatchNorm, activation and add)"
    f" · input range: `{loaded.preprocess}`"
    + (f" · fit: `{loaded.fit}`" if loaded.fit != "stretch" else "")
    + (
        f" · from: {loaded.origin.get('format')}"
        + (" (Teachable Machine)" if loaded.origin.get("teachable_machine") else "")
        if loaded.origin
        else ""
    )
)
for note in loaded.notes:
    st.warning(note, icon="🏷️")

if loaded.card.get("trained_here"):
    st.caption(f"Trained in this session ({loaded.card.get('status', 'finished')}).")
elif loaded.card and "dataset" in loaded.card:  # a bundled model's card
    with st.expander("Model card", expanded=False):
        card = loaded.card
        st.markdown(
            f"**Data**: {card['dataset']}  \n**Training**: {card['training']}  \n"
            f"**Held-out accuracy**: {card['test_accuracy']:.1%} "
            f"on {card['test_images']:,} images never seen in training  \n"
            f"**Classes**: {', '.join(card['class_names'])}"
        )

_report_view.model_page(loaded)

with st.expander("Input range and class names", expanded=_model_options.needs_asking(base)):
    _model_options.choices(base, loaded)
    _model_options.preview(loaded)

tab_table, tab_diagram = st.tabs(["Layers", "Architecture"])
with tab_table:
    frame = _cache.layer_frame(loaded)
    picked_rows = st.dataframe(
        frame, hide_index=True, width="stretch", key="model.table", on_select="rerun", selection_mode="single-row"
    )
    rows = picked_rows.selection.rows if picked_rows else []
    if rows:
        _links.layer_links(loaded, frame["layer"].iloc[rows[0]])
    else:
        st.caption("Select a row to open its layer on the Kernels, Activations or Filters page.")
    st.download_button(
        "Download layer table (CSV)",
        functools.partial(frame.to_csv, index=False),
        f"{loaded.model.name}_layers.csv",
        "text/csv",
        key="model.table_csv",
    )  # written on click only
with tab_diagram:
    _state.reset_when("model.by_block", loaded.key)  # another model: its own default
    by_block = st.toggle(
        "One box per block",
        value=info.layers > 40,
        key="model.by_block",
        help="Collapse each block or stage (block_3, conv4_block2, stage_1, ...) into one box; off: every layer",
    )
    dot = _cache.diagram(loaded, by_block)
    st.graphviz_chart(dot, width="content")
    st.download_button(
        "Download diagram (Graphviz .dot)", dot, f"{loaded.model.name}.dot", "text/vnd.graphviz", key="model.dot"
    )
