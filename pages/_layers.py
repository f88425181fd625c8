"""Layer pickers grouped by block: one searchable selectbox in block order; a
layer whose name does not say its block reads 'stage_3 · conv_17'.

Typing 'block_3' in any layer picker narrows it to that block. The grouping comes from
``vizcore.models.blocks`` through the cached wrappers in ``pages/_cache.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pages import _cache, _state

EVERY_LAYER_UP_TO = 16  # the Activations overview shows every layer by default up to this many columns
PLAIN_NAMES_UP_TO = 40  # pickers of models with at most this many layers show plain layer names


def label_of(loaded) -> Callable[[str], str]:
    """A picker's ``format_func``: the layer path, with its block in front where the name does not say it.

    Keras applications name layers by block (``block_3_project_BN``, ``conv4_block2_out``), so typing
    the block already finds them; a deep model with other names reads ``stage_3 · conv_17``. The label is
    also the page's URL value, so a layer of a small model stays its plain name (``?kernels.layer=conv2``).
    """
    names = _cache.layer_labels(loaded)
    if len(names) <= PLAIN_NAMES_UP_TO:
        return lambda path: path

    def shown(path: str) -> str:
        block = names.get(path, path).split(" · ", 1)[0]
        return path if block in path else names.get(path, path)

    return shown


def select(
    loaded,
    where,
    label: str,
    options: Sequence[str],
    *,
    key: str,
    default: str,
    legacy: str | None = None,
    suffix: Callable[[str], str] | None = None,
    **kwargs,
) -> str:
    """A layer selectbox on ``where`` (st or a column), labelled by block and bound to the page's URL as ``?<key>=``.

    Extra keyword arguments go to ``selectbox``; ``legacy`` is the URL name that links made before the
    binding used (``?layer=conv2``).
    """
    name = label_of(loaded)
    shown = name if suffix is None else (lambda p: f"{name(p)}{suffix(p)}")
    options = list(options)
    return where.selectbox(
        label,
        options,
        options.index(default) if default in options else 0,
        format_func=shown,
        placeholder="Type a block or layer name…",
        **_state.linked(key, default, options, format_func=shown, legacy=legacy),
        **kwargs,
    )
