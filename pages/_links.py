"""Links between pages: a layer or a channel opened on another page, as a real link (``?page.key=value``).

A link's values are the widgets' URL values (``_state.linked``): a layer by its picker label, a
channel by its number. The pages are the files of ``_router.PAGES``.
"""

from __future__ import annotations

import streamlit as st

from pages import _cache, _layers


def _page(path: str) -> tuple[str, str]:
    from pages._router import PAGES

    title, icon = next((t, i) for p, t, i in PAGES if p == path)
    return title, icon


def link(where, path: str, text: str, params: dict) -> None:
    """A page link on ``where`` that opens ``path`` with ``params`` in its URL."""
    title, icon = _page(path)
    where.page_link(path, label=f"{text} ({title})", icon=icon, query_params={k: str(v) for k, v in params.items()})


def layer_links(loaded, layer: str, where=st) -> None:
    """Open ``layer`` on Kernels and Filters (a convolution) and on Activations (any layer with feature maps)."""
    name = _layers.label_of(loaded)(layer)
    convs = _cache.summary(loaded).conv_layers
    cols = where.columns(3)
    if layer in convs:
        link(cols[0], "pages/kernels.py", f"{layer}: its kernels", {"kernels.layer": name})
        link(cols[2], "pages/filters.py", f"{layer}: what its filters look for", {"fv.layer": name})
    link(cols[1], "pages/activations.py", f"{layer}: its feature maps", {"act.layer": name})


def channel_links(loaded, layer: str, channel: int, *, dead: bool = False, where=st) -> None:
    """Open a feature map's channel on Convolution (how one value is computed); a dead one also on Kernels."""
    name = _layers.label_of(loaded)(layer)
    kinds = dict(_cache.detail_layers(loaded))
    if layer in kinds:  # the Convolution page's picker says the kind after the name
        link(
            where,
            "pages/convolution.py",
            f"Channel {channel} step by step",
            {"conv.layer": f"{name} ({kinds[layer]})", "conv.channel": channel},
        )
    if dead and layer in _cache.summary(loaded).conv_layers:
        link(
            where,
            "pages/kernels.py",
            f"Dead channel {channel}: its filter",
            {"kernels.layer": name, "kernels.filter": channel},
        )
