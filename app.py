"""ConvLens: see inside a convolutional network. Run with `streamlit run app.py`."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import streamlit as st  # noqa: E402

st.set_page_config(page_title="ConvLens", page_icon="🔬", layout="wide")
st.navigation(
    [
        st.Page("pages/model.py", title="Model", icon="🧠", default=True),
        st.Page("pages/builder.py", title="Builder", icon="🏗️"),
        st.Page("pages/training.py", title="Training", icon="📈"),
        st.Page("pages/kernels.py", title="Kernels", icon="🧩"),
        st.Page("pages/activations.py", title="Activations", icon="🔥"),
        st.Page("pages/convolution.py", title="Convolution", icon="🔍"),
        st.Page("pages/attribution.py", title="Attribution", icon="🎯"),
    ]
).run()
