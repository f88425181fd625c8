"""Teach page: your photos, a pretrained base, a classifier in seconds (Teachable Machine's recipe), then explore it."""

import streamlit as st

from pages import _teach_base, _teach_classes, _teach_results, _teach_train, _working
from vizcore import transfer

loaded = _working.working_model()
_working.sidebar(loaded)
st.title("🎓 Teach")
st.caption(
    "Collect a few photos per class, and a pretrained network learns them the way Teachable Machine does: the "
    "base reads each photo once, and a small head learns from what it saw, in seconds. Then open the model "
    "on every page to see what it learned."
)
run: transfer.TeachRun | None = st.session_state.get(_teach_train.RUN)
running = run is not None and not run.finished

classes = _teach_classes.cards(disabled=running)
base, _layer = _teach_base.pick(loaded, disabled=running)
st.subheader("3 · Train")
settings = _teach_train.under_the_hood(base, disabled=running)
_teach_train.start(base, classes, settings, disabled=running)
if run is not None:
    _teach_train.live(run)
    if run.finished:
        _teach_results.panel(run)
