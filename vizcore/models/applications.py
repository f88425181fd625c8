"""``keras.applications`` networks: how each is preprocessed, ImageNet weights and class names (downloaded once)."""

from __future__ import annotations

import functools
import json
import re
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras

from vizcore.data.datasets import keras_cache_dir
from vizcore.errors import WeightsUnavailableError

# --------------------------------------------------------------------------- keras.applications

TEACHABLE_BASE = "MobileNetV2_0.35"


@dataclass(frozen=True)
class Application:
    """A ``keras.applications`` network and how its inputs are preprocessed."""

    build: Callable[..., keras.Model]
    size: int
    preprocess: str  # a vizcore.data.images.PREPROCESS_MODES key


APPLICATIONS: dict[str, Application] = {
    "MobileNetV2": Application(keras.applications.MobileNetV2, 224, "symmetric"),
    # Teachable Machine's base: the width multiplier alpha 0.35 (1.7 M parameters, 1,280 features at out_relu)
    TEACHABLE_BASE: Application(functools.partial(keras.applications.MobileNetV2, alpha=0.35), 224, "symmetric"),
    "ResNet50": Application(keras.applications.ResNet50, 224, "caffe"),
    "VGG16": Application(keras.applications.VGG16, 224, "caffe"),
    "EfficientNetB0": Application(keras.applications.EfficientNetB0, 224, "raw"),
}


def load_application(name: str, *, weights: str | None = "imagenet") -> keras.Model:
    """Build a keras.applications network, with ImageNet weights (downloaded once) or untrained.

    Raises:
        WeightsUnavailableError: the weights could not be downloaded; the message names the file
            and the folder where it can be placed by hand.
    """
    if name not in APPLICATIONS:
        raise ValueError(f"Unknown network '{name}'; choose one of {sorted(APPLICATIONS)}.")
    app = APPLICATIONS[name]
    try:
        return app.build(weights=weights, input_shape=(app.size, app.size, 3))
    except Exception as err:
        if weights is None:
            raise
        urls = re.findall(r"https?://\S+?\.h5", str(err))
        filename = urls[0].rsplit("/", 1)[-1] if urls else f"the {name} weights file"
        raise WeightsUnavailableError(
            f"The ImageNet weights of {name} could not be downloaded ({type(err).__name__}); this machine "
            f"seems to be offline. Place {filename} in {keras_cache_dir('models')} and try again, "
            "or build the network untrained."
        ) from err


IMAGENET_CLASS_INDEX = "imagenet_class_index.json"
# as keras.applications.imagenet_utils
IMAGENET_CLASS_INDEX_URL = "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"
IMAGENET_CLASS_INDEX_MD5 = "c2c37ea517e94d9795004a39431a14cb"


def _read_class_index(path: Path) -> tuple[str, ...]:
    index = json.loads(Path(path).read_text())
    return tuple(index[str(i)][1] for i in range(len(index)))


def imagenet_class_names() -> tuple[str, ...] | None:
    """The 1,000 ImageNet class names from the Keras cache, or None when it is not there."""
    path = Path(keras_cache_dir("models")) / IMAGENET_CLASS_INDEX
    return _read_class_index(path) if path.exists() else None


def fetch_imagenet_class_names() -> tuple[str, ...]:
    """The 1,000 ImageNet class names, downloaded once into the Keras cache (``models/``).

    Raises:
        WeightsUnavailableError: offline; the message names the file and the folder to put it in.
    """
    cached = imagenet_class_names()
    if cached is not None:
        return cached
    try:
        path = keras.utils.get_file(
            IMAGENET_CLASS_INDEX, IMAGENET_CLASS_INDEX_URL, cache_subdir="models", file_hash=IMAGENET_CLASS_INDEX_MD5
        )
    except Exception as err:  # urllib errors, hash mismatch, unwritable cache
        raise WeightsUnavailableError(
            f"The ImageNet class names could not be downloaded ({type(err).__name__}); this machine seems to be "
            f"offline. Place {IMAGENET_CLASS_INDEX} (from {IMAGENET_CLASS_INDEX_URL}) in {keras_cache_dir('models')}."
        ) from err
    return _read_class_index(path)


# --------------------------------------------------------------------------- the networks one server keeps


class NetworkStore:
    """The ``keras.applications`` networks one server keeps, shared read-only by its sessions.

    At most ``limit`` at once: opening one more drops the least recently opened first, and calls
    ``release`` before the next is built, so two never coexist, and again after it is built (a
    build's temporaries: about 40 MB of ResNet50's stayed in the heap otherwise). With ``drop_unused`` (the hosted
    profile), a network also goes, followed by ``release_soon``, as soon as no session works on it
    (a session says which network it works on with ``use`` and is forgotten with ``leave``); the
    next session to open it builds it again.

    Example:
        >>> store = NetworkStore(1, drop_unused=True, release=gc.collect)
        >>> net = store.get(("ResNet50", None), lambda: open_application("ResNet50", weights=None))
        >>> store.use("session-a", ("ResNet50", None)); store.use("session-a", None)  # dropped
        True
    """

    def __init__(
        self,
        limit: int,
        *,
        drop_unused: bool = False,
        release: Callable[[], object] = lambda: None,
        release_soon: Callable[[], object] = lambda: None,
    ) -> None:
        self.limit, self.drop_unused = limit, drop_unused
        self._release, self._release_soon = release, release_soon
        self._nets: dict = {}  # key -> network, oldest first
        self._dropped: dict = {}  # key -> weak reference to a network dropped here that a page run may still hold
        self._users: dict[object, set[str]] = {}
        self._lock = threading.RLock()

    def __contains__(self, key) -> bool:
        return key in self._nets

    def keys(self) -> list:
        return list(self._nets)

    def get(self, key, build: Callable[[], object]):
        """The network under ``key``, built by ``build()`` once (one build at a time for the whole server)."""
        with self._lock:
            if key in self._nets:
                self._nets[key] = self._nets.pop(key)  # most recent last
                return self._nets[key]
            alive = self._dropped.pop(key, lambda: None)()
            dropped = False
            while len(self._nets) >= self.limit:
                self._drop(next(iter(self._nets)))
                dropped = True
            if alive is not None:  # still held by a page run: take it back, never build a second copy
                self._nets[key] = alive
                return alive
            if dropped:
                self._release()
            self._nets[key] = net = build()
            self._release()  # building leaves its temporaries (initial weights, the traced graph) in the heap
            if dropped:  # a page run may still hold the old one: release again once it has ended
                self._release_soon()
            return net

    def _drop(self, key) -> None:
        net = self._nets.pop(key)
        try:
            self._dropped[key] = weakref.ref(net)
        except TypeError:  # not weakly referable: forgotten
            pass
        for gone in [k for k, ref in self._dropped.items() if ref() is None]:
            del self._dropped[gone]

    def use(self, session: str, key) -> bool:
        """Record that ``session`` now works on ``key`` (None: on no network here); whether a network was dropped."""
        with self._lock:
            for users in self._users.values():
                users.discard(session)
            if key is not None:
                self._users.setdefault(key, set()).add(session)
            return self._drop_unused()

    def leave(self, session: str) -> bool:
        """Forget ``session`` (it ended); whether a network was dropped."""
        return self.use(session, None)

    def _drop_unused(self) -> bool:
        for key in [k for k, users in self._users.items() if not users]:
            del self._users[key]
        if not self.drop_unused:
            return False
        unused = [k for k in self._nets if k not in self._users]
        for key in unused:
            self._drop(key)
        if unused:
            self._release_soon()
        return bool(unused)
