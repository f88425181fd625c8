"""The Teach page's base picker: Teachable Machine's MobileNetV2 (alpha 0.35, 224, ImageNet) or a model at hand.

Offline, the ImageNet weights cannot come: the page names the file and the folder to fill (the
message of ``WeightsUnavailableError``) and offers the bases at hand: an uploaded model (a Teachable
Machine export is a good one), a bundled model, or the working model.
"""

from __future__ import annotations

import streamlit as st

from pages import _cache, _choice, _working
from vizcore import models, transfer
from vizcore.errors import ConvLensError, ModelLoadError, WeightsUnavailableError

TM = models.applications.TEACHABLE_BASE
SOURCES = {
    "tm": "MobileNetV2 (alpha 0.35, 224×224, ImageNet): Teachable Machine's base",
    "upload": "An uploaded model (for example Teachable Machine's converted_keras.zip)",
    "bundled": "A bundled model",
    "working": "The working model",
}
FAILED = "teach.base_failed"  # the message of the last failed download, so a rerun does not try again


def _teachable_machine() -> models.LoadedModel | None:
    if st.session_state.get(FAILED):
        st.error(st.session_state[FAILED], icon="📡")
        st.info(
            "Pick another base meanwhile: an uploaded model (a Teachable Machine export works well), a bundled "
            "model or the working model.",
            icon="💡",
        )
        if st.button("Try the download again", key="teach.base_retry"):
            del st.session_state[FAILED]
            st.rerun()
        return None
    try:
        return _working.open_choice(_choice.Choice("app", TM, "imagenet"))
    except WeightsUnavailableError as err:
        st.session_state[FAILED] = str(err)
        st.rerun()


def _uploaded(disabled: bool) -> models.LoadedModel | None:
    upload = st.file_uploader(
        "A model to teach on: .keras, .h5, or a ZIP (Teachable Machine's converted_keras.zip)",
        type=["keras", "h5", "hdf5", "zip", "json"],
        key="teach.base_upload",
        disabled=disabled,
        max_upload_size=_working.LIMITS.upload_mb,
    )
    if upload is None:
        return None
    try:
        return _working.open_choice(_working.add_upload(upload.getvalue(), upload.name))  # kept in this session only
    except ModelLoadError as err:
        st.error(str(err), icon="🚫")
        return None


def pick(working: models.LoadedModel, *, disabled: bool = False) -> tuple[models.LoadedModel | None, str | None]:
    """The base and its automatic feature layer; (None, None) while there is none, with one sentence why."""
    st.subheader("2 · Base")
    source = st.radio("Teach on", list(SOURCES), format_func=SOURCES.get, key="teach.base_source", disabled=disabled)
    base = None
    if source == "tm":
        base = _teachable_machine()
    elif source == "upload":
        base = _uploaded(disabled)
    elif source == "bundled":
        name = st.selectbox("Bundled model", models.list_bundled(), key="teach.base_bundled", disabled=disabled)
        base = _working.open_choice(_choice.Choice("bundled", name)) if name else None
    else:
        base = working
    if base is None:
        return None, None
    try:
        layer = transfer.feature_layer(base.model)
    except ConvLensError as err:
        st.error(str(err), icon="🚫")
        return None, None
    spec = base.spec
    st.caption(
        f"**{base.label}** · input {spec.height or 'any'}×{spec.width or 'any'}×{spec.channels} · range "
        f"`{base.preprocess}` · fit `{base.fit}` · features from `{layer}`, averaged over positions"
    )
    return base, layer


def layer_choices(base: models.LoadedModel) -> tuple[tuple[str, ...], str]:
    """The layers whose output can feed the head (block outputs and plain convolutions) and the automatic one."""
    choices, _ = _cache.cam_choices(base)
    return choices, transfer.feature_layer(base.model)
