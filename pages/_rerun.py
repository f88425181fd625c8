"""Streamlit's clean-up after every script run, without ``keras.backend.clear_session()`` (once per process).

After each run Streamlit calls ``keras.backend.clear_session()`` (``script_runner._clean_problem_modules``).
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

import os
import sys

KEEP_ENV = "CONVLENS_STREAMLIT_CLEANUP"


def _close_figures() -> None:
    """Streamlit's clean-up after a run, without ``keras.backend.clear_session()``."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")


def lighten() -> bool:
    """Skip Streamlit's ``clear_session`` after every run; returns whether Streamlit's clean-up was replaced."""
    from streamlit.runtime.scriptrunner import script_runner

    if os.environ.get(KEEP_ENV) == "1" or not hasattr(script_runner, "_clean_problem_modules"):  # asked, or another Streamlit
        return False
    script_runner._clean_problem_modules = _close_figures  # looked up by name after every run
    return True
