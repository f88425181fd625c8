"""Layer pickers grouped by block: one searchable selectbox whose labels read 'block_3 · block_3_project_BN'.

Typing 'block_3' in any layer picker narrows it to that block. The grouping comes from
``vizcore.blocks``; the cached wrappers below take the model as ``_model`` plus its key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import streamlit as st

from vizcore import activations, blocks, models

EVERY_LAYER_UP_TO = 16  # the Activations overview shows every layer by default up to this many columns


@st.cache_data(show_spinner=False, max_entries=32)
def labels(_model, key: str) -> dict[str, str]:
    """{layer path: 'block · path'} for every layer of the model."""
    return blocks.layer_labels(_model)


@st.cache_data(show_spinner=False, max_entries=32)
def cam_choices(_model, key: str) -> tuple[tuple[str, ...], str]:
    """The layers a CAM method can explain (block outputs, convs not followed by BN) and the default."""
    return blocks.cam_layers(_model), blocks.default_target_layer(_model)


@st.cache_data(show_spinner=False, max_entries=32)
def block_columns(_model, key: str) -> tuple[str, ...]:
    """The Activations overview's columns by block: block outputs, then the head's vectors."""
    return activations.block_columns(_model)


@st.cache_data(show_spinner=False, max_entries=32)
def diagram(_model, key: str, by_block: bool) -> str:
    """The Model page's Graphviz diagram, one node per layer or per block."""
    return models.architecture_dot(_model, by_block=by_block)


def fresh_per_model(key: str, loaded) -> None:
    """Forget a widget's value when the working model changes, so it starts at this model's default."""
    if st.session_state.get(f"{key}_for") != loaded.key:
        st.session_state.pop(key, None)
    st.session_state[f"{key}_for"] = loaded.key


def label_of(loaded) -> Callable[[str], str]:
    """A ``format_func`` that shows a layer path with its block."""
    names = labels(loaded.model, loaded.key)
    return lambda path: names.get(path, path)


def select(loaded, where, label: str, options: Sequence[str], *, key: str, suffix: Callable[[str], str] | None = None, **kwargs) -> str:
    """A layer selectbox on ``where`` (st or a column) labelled by block; extra kwargs go to ``selectbox``.

    Call ``_shared.keep(key, ...)`` before it, as for any kept widget.
    """
    name = label_of(loaded)
    shown = name if suffix is None else (lambda p: f"{name(p)}{suffix(p)}")
    return where.selectbox(label, list(options), key=key, format_func=shown,
                           placeholder="Type a block or layer name…", **kwargs)
