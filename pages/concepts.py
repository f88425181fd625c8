"""Concepts page: what the model saw, not only where. CRAFT finds a layer's concepts for a class; TCAV tests one
the user brings."""

import numpy as np
import streamlit as st

from pages import _cache, _concepts_discover, _concepts_parts, _concepts_test, _datasets, _state, _working
from vizcore.errors import ConvLensError
from vizcore.inspect import evaluation
from vizcore.precompute import store as precomputed

VIEWS = {"discover": "Discover concepts (CRAFT)", "test": "Test a concept (TCAV)"}

loaded = _working.working_model()
_working.sidebar(loaded)
st.title("💡 Concepts")
st.caption(
    "Attribution maps say where the evidence is; concepts say what it is. **Discover** factorizes a layer's "
    "activations on crops of a class's images into a few concepts (CRAFT, Fel et al. 2023), ranks them by their "
    "importance for the class and shows each as its most typical crops and as a heatmap. **Test** measures how "
    "often a class's score rises along the direction of a concept you bring, against random directions "
    "(TCAV, Kim et al. 2018)."
)

view = st.radio(
    "View",
    list(VIEWS),
    0,
    format_func=VIEWS.get,
    horizontal=True,
    **_state.linked("concepts.view", "discover", list(VIEWS), format_func=VIEWS.get),
)
spec = loaded.spec
sources = list(_datasets.SOURCES)
default_source = "mnist_sample" if spec.channels == 1 else "shapes"
c1, c2 = st.columns([2, 1])
source = c1.selectbox(
    "Dataset",
    sources,
    sources.index(default_source),
    format_func=_datasets.SOURCES.get,
    **_state.linked("concepts.source", default_source, sources, format_func=_datasets.SOURCES.get),
)
limit = int(c2.number_input("Images (at most)", 10, 20_000, 1000, step=500, key="concepts.limit"))
try:
    full, ds_name = _datasets.load(source, limit, key="concepts.zip")
except ConvLensError as err:
    st.error(str(err))
    st.stop()
pick = precomputed.pick(len(full), full.image_shape, spec, limit)  # evenly spaced: every class, sorted or not
ds = full.subset(pick) if len(pick) < len(full) else full
ds_key = f"{ds_name}:{len(pick)}"
prepared = _datasets.prepared(loaded, ds_key, ds.x_nhwc)
labels = None if ds.name == "photos" else evaluation.labels_for(ds.class_names, loaded.class_names, ds.y)
by_prediction = labels is None
if by_prediction:
    labels = _cache.predicted(loaded, ds_key, prepared.x_nhwc)
    st.caption("The dataset's classes are not the model's: an image's class is the model's prediction.")
data = _concepts_parts.Images(prepared.x_nhwc, prepared.display_nhwc, np.asarray(labels), by_prediction, pick, ds_key)
if view == "discover":
    _concepts_discover.show(loaded, data)
else:
    _concepts_test.show(loaded, data)
