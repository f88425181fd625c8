"""Builder page: assemble a CNN layer by layer, see every shape before building it."""

import dataclasses
import hashlib
import uuid

import pandas as pd
import streamlit as st

from pages import _working
from vizcore import models
from vizcore.errors import ModelBuildError
from vizcore.training import builder

SPECS, VERSION = "builder.specs", "builder.version"
LABELS = {
    "conv": "Conv2D",
    "maxpool": "MaxPool",
    "avgpool": "AvgPool",
    "batchnorm": "BatchNorm",
    "dropout": "Dropout",
    "flatten": "Flatten",
    "gap": "GlobalAvgPool",
    "dense": "Dense",
}

_working.init_state()
st.title("🏗️ Builder")
st.caption(
    "Start from a preset or from scratch, then add, remove, reorder and edit layers. "
    "Shapes and parameter counts update as you type; a choice that cannot work is explained on its row. "
    "The built model becomes the working model."
)
st.session_state.setdefault(SPECS, builder.specs_to_json(builder.specs_from_preset("lenet5")))
st.session_state.setdefault(VERSION, 0)


def _set(specs) -> None:
    st.session_state[SPECS] = builder.specs_to_json(specs)
    st.session_state[VERSION] += 1  # new widget keys: no stale values after a structural change


specs = list(builder.specs_from_json(st.session_state[SPECS]))
start_cols = st.columns([3, 1])
start = start_cols[0].selectbox(
    "Start from",
    ["lenet5", "mnist_cnn", "cifar_cnn", "tiny_vgg", "scratch"],
    key="builder.start",
    format_func=lambda n: "An empty model" if n == "scratch" else models.presets.PRESETS[n].label,
)
if start_cols[1].button("Load", key="builder.load", width="stretch"):
    _set(() if start == "scratch" else builder.specs_from_preset(start))
    if start != "scratch":
        h, w, c = models.presets.PRESETS[start].input_shape
        st.session_state.update({"builder.h": h, "builder.w": w, "builder.c": c})
    st.rerun()

io = st.columns(4)
height = io[0].number_input("Input height", 1, 512, 28, key="builder.h")
width = io[1].number_input("Input width", 1, 512, 28, key="builder.w")
channels = io[2].selectbox("Channels", [1, 3], key="builder.c", format_func={1: "1 (grayscale)", 3: "3 (RGB)"}.get)
classes = io[3].number_input("Classes", 1, 1000, 10, key="builder.classes", help="1 makes a sigmoid (binary) head")

v = st.session_state[VERSION]
for i, spec in enumerate(specs):
    with st.container(border=True):
        cols = st.columns([1.3, 1, 1, 1, 1.2, 0.45, 0.45, 0.45])
        cols[0].markdown(f"**{i + 1}. {LABELS[spec.type]}**")
        k = f"builder.{v}.{i}"
        changes = {}
        if isinstance(spec, builder.Conv):
            changes["filters"] = cols[1].number_input("filters", 1, 4096, spec.filters, key=f"{k}.filters")
            changes["kernel"] = cols[2].number_input("kernel", 1, 64, spec.kernel, key=f"{k}.kernel")
            changes["stride"] = cols[3].number_input("stride", 1, 16, spec.stride, key=f"{k}.stride")
            changes["activation"] = cols[4].selectbox(
                "activation", builder.ACTIVATIONS, builder.ACTIVATIONS.index(spec.activation), key=f"{k}.act"
            )
            changes["padding"] = cols[0].selectbox(
                "padding",
                builder.PADDINGS,
                builder.PADDINGS.index(spec.padding),
                key=f"{k}.pad",
                label_visibility="collapsed",
            )
        elif isinstance(spec, (builder.MaxPool, builder.AvgPool)):
            changes["pool"] = cols[1].number_input("pool", 1, 16, spec.pool, key=f"{k}.pool")
            stride = cols[2].number_input("stride (0 = pool)", 0, 16, spec.stride or 0, key=f"{k}.stride")
            changes["stride"] = stride or None
            changes["padding"] = cols[3].selectbox(
                "padding", builder.PADDINGS, builder.PADDINGS.index(spec.padding), key=f"{k}.pad"
            )
        elif isinstance(spec, builder.Dropout):
            changes["rate"] = cols[1].number_input("rate", 0.0, 0.99, float(spec.rate), 0.05, key=f"{k}.rate")
        elif isinstance(spec, builder.Dense):
            changes["units"] = cols[1].number_input("units", 1, 65536, spec.units, key=f"{k}.units")
            changes["activation"] = cols[4].selectbox(
                "activation", builder.ACTIVATIONS, builder.ACTIVATIONS.index(spec.activation), key=f"{k}.act"
            )
        specs[i] = dataclasses.replace(spec, **changes) if changes else spec
        if cols[5].button("↑", key=f"{k}.up", disabled=i == 0, help="Move up"):
            specs[i - 1], specs[i] = specs[i], specs[i - 1]
            _set(specs)
            st.rerun()
        if cols[6].button("↓", key=f"{k}.down", disabled=i == len(specs) - 1, help="Move down"):
            specs[i + 1], specs[i] = specs[i], specs[i + 1]
            _set(specs)
            st.rerun()
        if cols[7].button("✕", key=f"{k}.del", help="Remove"):
            del specs[i]
            _set(specs)
            st.rerun()
st.session_state[SPECS] = builder.specs_to_json(specs)

add = st.columns([3, 1])
kind = add[0].selectbox("Add a layer", list(LABELS), format_func=LABELS.get, key="builder.add_type")
if add[1].button("Add", key="builder.add", width="stretch"):
    _set([*specs, builder.SPEC_TYPES[kind]()])
    st.rerun()

rows = builder.infer(specs, (int(height), int(width), int(channels)), int(classes))
table = pd.DataFrame(
    {
        "layer": [r.name for r in rows],
        "type": [r.type for r in rows],
        "output shape": ["—" if r.output_shape is None else "×".join(map(str, r.output_shape)) for r in rows],
        "parameters": [r.params for r in rows],
        "problem or note": [r.problem or r.note or "" for r in rows],
    }
)
st.subheader(f"Before building: {builder.total_params(rows):,} parameters")
st.dataframe(table, hide_index=True, width="stretch", key="builder.table")
found = builder.problems(rows)
for problem in found:
    st.error(problem, icon="⚠️")

name_col, build_col = st.columns([3, 1])
name = name_col.text_input("Model name", "my_cnn", key="builder.name", max_chars=40)
if build_col.button("Build", key="builder.build", type="primary", disabled=bool(found), width="stretch"):
    try:
        model = builder.build(specs, (int(height), int(width), int(channels)), int(classes), name=name)
    except ModelBuildError as err:
        st.error(str(err))
    else:
        # Each build draws fresh weights, so each gets its own key: two sessions building the same network must
        # not share the server store's results (the key names the weights, not only the architecture).
        digest = hashlib.sha1(
            f"{name}{st.session_state[SPECS]}{height}{width}{channels}{classes}{uuid.uuid4().hex}".encode()
        ).hexdigest()[:12]
        names = tuple(str(c) for c in range(max(2, int(classes))))
        loaded = models.LoadedModel(model, f"built:{digest}", f"{model.name} (built, untrained)", names, "unit")
        _working.set_working(_working.add_session_model("built", loaded))
        st.success(
            f"Built {model.name}: {model.count_params():,} parameters. It is now the working model; train it on the "
            "Training page."
        )
