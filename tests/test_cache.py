"""vizcore.cache.per_model: built once, bounded per kind, freed with the model, one build under threads."""

from __future__ import annotations

import gc
import threading
import time

import pytest

from vizcore.cache import cached_count, per_model


class Owner:
    """Any weak-referenceable object stands in for a model."""


def test_builds_once_and_returns_the_same_value():
    owner, calls = Owner(), []
    first = per_model(owner, ("k", 1), lambda: calls.append(1) or object())
    assert per_model(owner, ("k", 1), lambda: calls.append(1) or object()) is first
    assert calls == [1]


def test_bounded_per_kind_least_recently_used_out():
    owner = Owner()
    for i in range(3):
        per_model(owner, ("a", i), lambda i=i: i, limit=2)
    per_model(owner, ("b", 0), lambda: "other kind", limit=2)
    assert cached_count(owner, "a") == 2 and cached_count(owner, "b") == 1
    rebuilt = []
    per_model(owner, ("a", 0), lambda: rebuilt.append(0) or 0, limit=2)  # evicted: built again
    assert rebuilt == [0]


def test_entries_are_freed_with_the_owner():
    import weakref

    class Value:
        pass

    owner = Owner()
    value_ref = weakref.ref(per_model(owner, "x", Value))
    assert cached_count(owner) == 1 and value_ref() is not None
    del owner
    gc.collect()
    assert value_ref() is None


def test_concurrent_misses_build_once():
    owner, calls = Owner(), []

    def slow():
        calls.append(1)
        time.sleep(0.05)
        return object()

    results = []
    threads = [threading.Thread(target=lambda: results.append(per_model(owner, "slow", slow))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len({id(r) for r in results}) == 1


def test_limit_must_be_positive():
    with pytest.raises(ValueError):
        per_model(Owner(), "k", lambda: 1, limit=0)


def test_a_failed_build_caches_nothing_and_can_be_retried():
    owner = Owner()

    def boom():
        raise RuntimeError("build failed")

    with pytest.raises(RuntimeError):
        per_model(owner, "k", boom)
    assert cached_count(owner) == 0
    assert per_model(owner, "k", lambda: 7) == 7
