"""Streamlit's clean-up after every script run, without ``keras.backend.clear_session()`` (once per process).

After each run Streamlit calls ``keras.backend.clear_session()`` (``_compat.replace_after_run_cleanup`` swaps it).
With TensorFlow that empties the kernel cache, so the next run rebuilds every kernel it touches: a
MobileNetV2 forward pass at 224 then costs ~0.27 s of CPU instead of ~0.025 s, and Grad-CAM plus
Saliency ~0.65 s instead of ~0.07 s. It also runs a full garbage collection (~0.25 s with TensorFlow
loaded) and resets Keras state under other sessions' threads. ``lighten()`` keeps the rest of that
clean-up (closing matplotlib figures) and skips ``clear_session``. Streamlit's second full collection
after each run is off in ``.streamlit/config.toml`` (``runner.postScriptGC``); Python's own collector
still runs, and ``profile.release_memory`` collects when a network or a session goes.

``CONVLENS_STREAMLIT_CLEANUP=1`` keeps Streamlit's clean-up (the baseline of ``python -m bench rerun``).

Example:
    >>> lighten()  # in ``_router.startup()``
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from types import ModuleType

KEEP_ENV = "CONVLENS_STREAMLIT_CLEANUP"


def _close_figures() -> None:
    """Streamlit's clean-up after a run, without ``keras.backend.clear_session()``."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")


def lighten() -> bool:
    """Skip Streamlit's ``clear_session`` after every run; returns whether Streamlit's clean-up was replaced."""
    from pages import _compat

    if os.environ.get(KEEP_ENV) == "1":  # asked
        return False
    return _compat.replace_after_run_cleanup(_close_figures)  # False on another Streamlit


def import_detached(name: str) -> ModuleType:
    """``importlib.import_module(name)`` in a short-lived thread of its own, so the import cannot hold a session.

    A library that keeps the ImportError of an optional backend to raise later keeps its traceback,
    and with it every frame of the importing thread (optuna keeps redis's). Imported during a
    session's script run, those frames hold the run's context and the whole session state: the
    session then never ends, so its models stay in memory and a closed tab's training never stops.
    """
    if name in sys.modules:
        return sys.modules[name]
    box: dict = {}

    def work() -> None:
        try:
            box["module"] = importlib.import_module(name)
        except BaseException as err:  # re-raised in the caller's thread
            box["error"] = err

    thread = threading.Thread(target=work, name=f"convlens-import-{name}", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["module"]
