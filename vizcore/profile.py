"""The server's resource profile: memory and CPU limits read once from ``$CONVLENS_PROFILE``.

``default`` suits one person on their own machine; ``hosted`` keeps a shared server (about 1 GB,
a few cores, e.g. Streamlit Community Cloud) under its budget: one ``keras.applications`` network
at a time and no VGG16, small caches, smaller uploads, one heavy computation and one training at a
time, and TensorFlow on few threads. Heavy work (Score-CAM, occlusion, layer sweep, gradient
ascent) runs inside ``heavy_work()``, which takes one of the server's heavy slots.

``import vizcore`` sets the profile's TensorFlow environment variables (``prepare_environment``).

Example:
    >>> limits = current()                      # CONVLENS_PROFILE=hosted -> Limits(name='hosted', ...)
    >>> configure_threads(limits)               # once, before the first TensorFlow op
    >>> with heavy_work(on_wait=lambda: print("waiting for another user's computation")):
    ...     heatmap = score_cam(model, x)
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import gc
import math
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

ENV = "CONVLENS_PROFILE"
WAIT = "Waiting for another user's computation to finish (this server runs {slots} heavy computation(s) at a time)…"


@dataclass(frozen=True)
class Limits:
    """What one server may hold and run at once.

    Attributes:
        name: 'default' or 'hosted'.
        max_applications: keras.applications networks kept loaded at once.
        excluded_applications: networks not offered at all (VGG16's 138 M parameters are 528 MB).
        activation_entries: cached all-layer activations (one 224x224 input: up to ~100 MB).
        attribution_entries: cached attribution maps.
        session_models: uploaded, built or trained models one session keeps.
        upload_mb: the largest upload accepted, in MB.
        heavy_slots: heavy computations the server runs at once.
        training_slots: trainings the server runs at once.
        intra_op_threads, inter_op_threads: TensorFlow's thread pools (0: TensorFlow's choice).
        run_max_age_s: run folders older than this are deleted at start-up.
        onednn: TensorFlow's oneDNN kernels. Their allocator keeps every buffer it ever took, so the
            server's memory never comes down after a network is dropped; without them it does.
        mmap_threshold_kb: glibc serves blocks from this size up with their own ``mmap`` and returns them
            to the system on ``free`` (0: glibc's sliding threshold, which rises to 32 MB and then keeps
            a forward pass's freed tensors in the heap).
        malloc_arenas: glibc heaps at most (0: glibc's choice, 8 per core); as ``MALLOC_ARENA_MAX``.
        drop_unused_applications: a keras.applications network goes as soon as no session works on it
            (``models.applications.NetworkStore``); otherwise it stays until ``max_applications`` pushes it out.
        closed_session_s: a closed tab's session is released this many seconds after the tab went, and at once
            when a ``keras.applications`` network is built (``pages/_sessions.py``); 0: Streamlit's own
            ``server.disconnectedSessionTTL`` (60 s in .streamlit/config.toml).
        compile_single_passes: one image's forward pass (activations, probabilities) is compiled once it is slow;
            otherwise it always runs eagerly with a bounded peak (``features.lean_call``) and no compiled function
            is kept per network (ResNet50: about 25-40 MB each).
        activations_at_once_mb: a model whose all-layer outputs for one image fit in this many MB gets
            every layer in one forward pass; a larger one only the layers a page shows
            (``activations.ActivationStore``).
        report_images: images a report built in the app uses at most (``vizcore.report.build``'s ``limit``).
        report_budget: the report's extra work, a key of ``vizcore.report.BUDGETS`` ('light': fewer images
            attacked and explained, fewer and shorter filter syntheses).
    """

    name: str
    max_applications: int
    excluded_applications: tuple[str, ...]
    activation_entries: int
    attribution_entries: int
    session_models: int
    upload_mb: int
    heavy_slots: int
    training_slots: int
    intra_op_threads: int
    inter_op_threads: int
    run_max_age_s: float
    onednn: bool = True
    mmap_threshold_kb: int = 0
    malloc_arenas: int = 0
    activations_at_once_mb: float = math.inf
    drop_unused_applications: bool = False
    closed_session_s: float = 0.0
    compile_single_passes: bool = True
    report_images: int = 5000
    report_budget: str = "full"

    def offers(self, application: str) -> bool:
        """Whether this profile offers the keras.applications network ``application``."""
        return application not in self.excluded_applications


DAY = 24 * 3600.0
PROFILES = {
    "default": Limits(
        "default",
        max_applications=4,
        excluded_applications=(),
        activation_entries=8,
        attribution_entries=512,
        session_models=4,
        upload_mb=200,
        heavy_slots=2,
        training_slots=2,
        intra_op_threads=0,
        inter_op_threads=0,
        run_max_age_s=7 * DAY,
    ),
    "hosted": Limits(
        "hosted",
        max_applications=1,
        excluded_applications=("VGG16",),
        activation_entries=1,
        attribution_entries=64,
        session_models=2,
        upload_mb=100,
        heavy_slots=1,
        training_slots=1,
        intra_op_threads=1,
        inter_op_threads=1,
        run_max_age_s=1 * DAY,
        onednn=False,
        mmap_threshold_kb=256,
        malloc_arenas=2,
        activations_at_once_mb=32.0,
        drop_unused_applications=True,
        closed_session_s=10.0,
        compile_single_passes=False,
        report_images=1000,
        report_budget="light",
    ),
}
OVERRIDES = {  # environment variable -> field, for a host that needs other numbers
    "CONVLENS_TF_THREADS": "intra_op_threads",
    "CONVLENS_HEAVY_SLOTS": "heavy_slots",
    "CONVLENS_RUN_MAX_AGE_S": "run_max_age_s",
    "CONVLENS_UPLOAD_MB": "upload_mb",
    "CONVLENS_CLOSED_SESSION_S": "closed_session_s",
}


def from_env(environ: Mapping[str, str] | None = None) -> Limits:
    """The limits that ``environ`` (default ``os.environ``) asks for.

    Raises:
        ValueError: an unknown profile name or an override that is not a non-negative number.
    """
    env = os.environ if environ is None else environ
    name = (env.get(ENV) or "default").strip().lower()
    if name not in PROFILES:
        raise ValueError(f"{ENV}={name!r} is not a profile; choose one of {', '.join(PROFILES)}.")
    limits = PROFILES[name]
    changes = {}
    for var, field in OVERRIDES.items():
        if env.get(var):
            kind = type(getattr(limits, field))
            try:
                value = kind(env[var])
            except ValueError:
                raise ValueError(f"{var}={env[var]!r} is not a number.") from None
            if value < 0 or (field == "heavy_slots" and value < 1):
                raise ValueError(f"{var}={env[var]!r} is out of range.")
            changes[field] = value
    return dataclasses.replace(limits, **changes)


_CURRENT: Limits | None = None
_LOCK = threading.RLock()


def current() -> Limits:
    """This process's limits, read from the environment on first use."""
    global _CURRENT
    with _LOCK:
        if _CURRENT is None:
            _CURRENT = from_env()
        return _CURRENT


def prepare_environment(limits: Limits | None = None) -> None:
    """Set the TensorFlow environment variables of the profile (threads, oneDNN) unless already set, and tune malloc.

    They count only when TensorFlow is imported afterwards; ``import vizcore`` calls this first.
    """
    limits = limits or current()
    for var, n in (
        ("TF_NUM_INTRAOP_THREADS", limits.intra_op_threads),
        ("TF_NUM_INTEROP_THREADS", limits.inter_op_threads),
    ):
        if n:
            os.environ.setdefault(var, str(n))
    if not limits.onednn:
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    tune_malloc(limits)


M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8  # mallopt parameters, from glibc's malloc.h


def tune_malloc(limits: Limits | None = None) -> bool:
    """Apply the profile's glibc settings (``mmap_threshold_kb``, ``malloc_arenas``) now; True when glibc took them.

    ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_ARENA_MAX`` set by the host before start win over the profile.
    """
    limits = limits or current()
    wanted = [
        (M_MMAP_THRESHOLD, limits.mmap_threshold_kb * 1024, "MALLOC_MMAP_THRESHOLD_"),
        (M_ARENA_MAX, limits.malloc_arenas, "MALLOC_ARENA_MAX"),
    ]
    wanted = [(param, value) for param, value, var in wanted if value and var not in os.environ]
    if not wanted:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return all(libc.mallopt(param, value) == 1 for param, value in wanted)
    except (OSError, AttributeError):  # not glibc
        return False


def configure_threads(limits: Limits | None = None) -> bool:
    """Bound TensorFlow's thread pools to the profile's numbers; True when they were applied.

    TensorFlow accepts this only before its runtime starts: later calls (an app rerun, a test
    process that already ran TensorFlow) change nothing and return False.
    """
    limits = limits or current()
    if not (limits.intra_op_threads or limits.inter_op_threads):
        return False
    prepare_environment(limits)
    import tensorflow as tf

    threading_cfg = tf.config.threading
    if (
        threading_cfg.get_intra_op_parallelism_threads() == limits.intra_op_threads
        and threading_cfg.get_inter_op_parallelism_threads() == limits.inter_op_threads
    ):
        return True
    try:
        threading_cfg.set_intra_op_parallelism_threads(limits.intra_op_threads)
        threading_cfg.set_inter_op_parallelism_threads(limits.inter_op_threads)
    except RuntimeError:  # the runtime is already initialised
        return False
    return True


GC_ROUNDS = 4


def release_memory() -> None:
    """Collect garbage until none is left (a dropped Keras model and its traced functions sit in reference cycles
    that free each other round by round) and hand freed heap pages back to the system.

    Dropping references is enough for Keras 3 to free a network; ``keras.backend.clear_session``
    would also reset the graphs of networks other sessions still use, so it is never called here.
    """
    for _ in range(GC_ROUNDS):  # a traced tf.function's graph is freed only by a later round than its model
        if not gc.collect():
            break
    trim_heap()  # glibc keeps freed arenas otherwise, and RSS never comes down


def trim_heap() -> None:
    """Hand the heap's free pages back to the system (glibc's ``malloc_trim``; a few ms, no garbage collection)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


_PENDING = threading.Event()


def _release_pending() -> None:
    _PENDING.clear()
    release_memory()


def release_memory_soon(delay_s: float = 2.0) -> None:
    """``release_memory`` on a timer thread, once for all the calls within ``delay_s`` (a finalizer, a cache eviction:
    the object is not gone yet when they run)."""
    if _PENDING.is_set():
        return
    _PENDING.set()
    timer = threading.Timer(delay_s, _release_pending)
    timer.daemon = True
    timer.start()


class Slots:
    """A counting semaphore that says whether it is busy, re-entrant per thread (nested heavy work takes one slot)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        self.size = size
        self._sem = threading.BoundedSemaphore(size)
        self._held = threading.local()
        self._lock = threading.Lock()
        self._in_use = 0

    @property
    def in_use(self) -> int:
        return self._in_use

    def busy(self) -> bool:
        """Whether a new computation would wait now."""
        return self._in_use >= self.size

    @contextlib.contextmanager
    def hold(self, on_wait: Callable[[], object] | None = None) -> Iterator[None]:
        depth = getattr(self._held, "depth", 0)
        if depth:  # this thread holds a slot already
            self._held.depth = depth + 1
            try:
                yield
            finally:
                self._held.depth = depth
            return
        if not self._sem.acquire(blocking=False):
            if on_wait is not None:
                on_wait()
            self._sem.acquire()
        with self._lock:
            self._in_use += 1
        self._held.depth = 1
        try:
            yield
        finally:
            self._held.depth = 0
            with self._lock:
                self._in_use -= 1
            self._sem.release()


_HEAVY: Slots | None = None


def heavy_slots() -> Slots:
    """The server's heavy-work slots (``current().heavy_slots`` of them, one set per process)."""
    global _HEAVY
    with _LOCK:
        if _HEAVY is None:
            _HEAVY = Slots(current().heavy_slots)
        return _HEAVY


def heavy_work(on_wait: Callable[[], object] | None = None) -> contextlib.AbstractContextManager[None]:
    """Hold one of the server's heavy slots for the ``with`` block; calls ``on_wait()`` once first if all are taken.

    Example:
        >>> with heavy_work(on_wait=lambda: note.info(WAIT)):
        ...     result = featurevis.optimize(loaded, objective, targets)
    """
    return heavy_slots().hold(on_wait)


def heavy_busy() -> bool:
    """Whether heavy work started now would wait for another computation."""
    return heavy_slots().busy()
