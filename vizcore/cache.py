"""One bounded, thread-safe cache of things computed from a model.

Every compiled function, sub-model and trace that vizcore keeps for a model lives here, keyed by
the model (weakly: a model nobody else holds is freed with everything cached for it) and then by
a hashable key. Each model keeps at most ``limit`` entries per kind (least recently used first out),
so a long session cannot grow it without bound.

    from vizcore.cache import per_model
    engine = per_model(model, ("gradcam", layer), lambda: build_engine(model, layer), limit=8)
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_LIMIT = 16

# model -> {kind: OrderedDict(key -> value)}; kind is key[0] when the key is a tuple, else the key
_STORE: weakref.WeakKeyDictionary[Any, dict[Hashable, OrderedDict]] = weakref.WeakKeyDictionary()
_LOCK = threading.RLock()
_BUILDING: dict[tuple[int, Hashable], threading.Lock] = {}


def _kind(key: Hashable) -> Hashable:
    return key[0] if isinstance(key, tuple) and key else key


def per_model(model: Any, key: Hashable, build: Callable[[], T], *, limit: int = DEFAULT_LIMIT) -> T:
    """The value cached for ``(model, key)``, built once by ``build()`` when missing.

    Args:
        model: the owner (weakly referenced; a ``keras.Model`` or any weak-referenceable object).
            Values must not hold a strong reference to it, or it is never freed.
        key: hashable; its first element (for a tuple) names the kind, and ``limit`` bounds each kind.
        build: called without arguments, outside the cache lock, at most once at a time per key.
        limit: the most entries of this kind kept for this model (least recently used dropped).
    Returns:
        the cached or newly built value.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    kind = _kind(key)
    with _LOCK:
        entries = _STORE.setdefault(model, {}).setdefault(kind, OrderedDict())
        if key in entries:
            entries.move_to_end(key)
            return entries[key]
        building = _BUILDING.setdefault((id(model), key), threading.Lock())
    with building:  # two threads asking for the same missing key build it once
        with _LOCK:
            entries = _STORE.setdefault(model, {}).setdefault(kind, OrderedDict())
            if key in entries:
                entries.move_to_end(key)
                return entries[key]
        try:
            value = build()
        except BaseException:  # nothing is cached; the next call builds again
            with _LOCK:
                _BUILDING.pop((id(model), key), None)
            raise
        with _LOCK:
            entries = _STORE.setdefault(model, {}).setdefault(kind, OrderedDict())
            entries[key] = value
            entries.move_to_end(key)
            while len(entries) > limit:
                entries.popitem(last=False)
            _BUILDING.pop((id(model), key), None)
    return value


def cached_count(model: Any, kind: Hashable | None = None) -> int:
    """How many entries are cached for ``model`` (of one ``kind``, or all)."""
    with _LOCK:
        kinds = _STORE.get(model, {})
        if kind is not None:
            return len(kinds.get(kind, ()))
        return sum(len(v) for v in kinds.values())
