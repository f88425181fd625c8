"""Layer pickers grouped by block: one searchable selectbox whose labels read 'block_3 · block_3_project_BN'.

Typing 'block_3' in any layer picker narrows it to that block. The grouping comes from
``vizcore.blocks`` through the cached wrappers in ``pages/_cache.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import streamlit as st

from pages import _cache, _shared

EVERY_LAYER_UP_TO = 16  # the Activations overview shows every layer by default up to this many columns


def fresh_per_model(key: str, loaded) -> None:
    """Forget a widget's value when the working model changes, so it starts at this model's default."""
    if st.session_state.get(f"{key}_for") != loaded.key:
        st.session_state.pop(key, None)
    st.session_state[f"{key}_for"] = loaded.key


def label_of(loaded) -> Callable[[str], str]:
    """A ``format_func`` that shows a layer path with its block."""
    names = _cache.layer_labels(loaded)
    return lambda path: names.get(path, path)


def select(loaded, where, label: str, options: Sequence[str], *, key: str, default: str, legacy: str | None = None,
           suffix: Callable[[str], str] | None = None, **kwargs) -> str:
    """A layer selectbox on ``where`` (st or a column), labelled by block and bound to the page's URL as ``?<key>=``.

    Extra keyword arguments go to ``selectbox``; ``legacy`` is the URL name that links made before the
    binding used (``?layer=conv2``).
    """
    name = label_of(loaded)
    shown = name if suffix is None else (lambda p: f"{name(p)}{suffix(p)}")
    options = list(options)
    return where.selectbox(label, options, options.index(default) if default in options else 0, format_func=shown,
                           placeholder="Type a block or layer name…",
                           **_shared.linked(key, default, options, format_func=shown, legacy=legacy), **kwargs)
