"""The server's shared keras.applications networks: the cap, the order they go in, and (hosted) dropping unused ones."""

from __future__ import annotations

import gc

from vizcore.models.applications import NetworkStore


class Calls:
    def __init__(self) -> None:
        self.built: list[str] = []
        self.released = 0
        self.released_soon = 0

    def store(self, limit: int, drop_unused: bool) -> NetworkStore:
        return NetworkStore(limit, drop_unused=drop_unused, release=self.release, release_soon=self.release_soon)

    def release(self) -> None:
        self.released += 1

    def release_soon(self) -> None:
        self.released_soon += 1

    def builder(self, key: str):
        def build():
            self.built.append(key)
            return object()

        return build


def test_the_cap_drops_the_least_recently_opened_and_releases_before_building():
    calls = Calls()
    store = calls.store(2, drop_unused=False)
    a = store.get("a", calls.builder("a"))
    store.get("b", calls.builder("b"))
    assert store.get("a", calls.builder("a")) is a and calls.built == ["a", "b"]  # built once, now the most recent
    store.get("c", calls.builder("c"))
    assert (
        store.keys() == ["a", "c"] and calls.released == 4 and calls.released_soon == 1
    )  # b went, not a; a release after each build and before c


def test_default_keeps_a_network_nobody_uses():
    calls = Calls()
    store = calls.store(2, drop_unused=False)
    store.use("s1", "a")
    store.get("a", calls.builder("a"))
    assert store.use("s1", None) is False and "a" in store


def test_hosted_drops_a_network_when_its_last_session_moves_on_or_ends():
    calls = Calls()
    store = calls.store(1, drop_unused=True)
    for s in ("s1", "s2"):
        store.use(s, "a")
        store.get("a", calls.builder("a"))
    assert calls.built == ["a"]  # shared
    assert store.use("s1", None) is False and "a" in store  # s2 still works on it
    assert store.leave("s2") is True and "a" not in store and calls.released_soon == 1
    store.use("s3", "a")
    store.get("a", calls.builder("a"))
    assert calls.built == ["a", "a"]  # the next session builds it again


def test_a_session_registered_first_keeps_its_network_through_another_sessions_switch():
    calls = Calls()
    store = calls.store(1, drop_unused=True)
    store.use("s1", "a")  # registered before the build, as the pages do
    store.use("s2", None)  # another session's page run meanwhile
    store.get("a", calls.builder("a"))
    assert "a" in store and store.use("s2", None) is False


class Net:
    """Stands for a network (weakly referable, as a LoadedModel is)."""


def test_a_network_dropped_while_a_page_still_holds_it_is_taken_back_not_built_twice():
    built = []

    def builder(key):
        return lambda: built.append(key) or Net()

    calls = Calls()
    calls.builder = builder
    store = calls.store(1, drop_unused=True)
    store.use("s1", "a")
    held = store.get("a", calls.builder("a"))  # session 1's page run keeps it
    store.use("s2", "b")
    store.get("b", calls.builder("b"))  # the cap of one drops a from the store
    assert store.keys() == ["b"]
    store.use("s1", "a")
    assert store.get("a", calls.builder("a")) is held and built == ["a", "b"]  # one copy of a, shared
    del held
    gc.collect()
    store.use("s2", "b")
    store.use("s3", "c")
    store.get("c", calls.builder("c"))
    store.use("s1", "a")
    store.get("a", calls.builder("a"))  # nobody held a any more: built again
    assert built == ["a", "b", "c", "a"]
