"""What Streamlit does after every script run, made cheap for a TensorFlow app (once per process).

After each run Streamlit calls ``keras.backend.clear_session()`` (``script_runner._clean_problem_modules``),
and by default a full ``gc.collect``. With TensorFlow loaded both cost a lot on every rerun:

- ``clear_session`` empties TensorFlow's kernel cache, so the next run rebuilds every oneDNN kernel it
  touches: a MobileNetV2 forward pass at 224 then takes ~0.27 s of CPU instead of ~0.025 s. It also runs
  a full garbage collection, and resets Keras state that other sessions' threads are using.
- A full garbage collection walks every object TensorFlow and Keras created on import (~440,000):
  ~0.25 s of CPU, twice per rerun with the one above.

``lighten()`` keeps Streamlit's other clean-up (closing matplotlib figures) and skips ``clear_session``;
it then moves the objects alive at start-up (the imported modules) out of the collector's sight with
``gc.freeze()``, so a full collection only walks what was made since. A dropped network is still
collected: it was made after the freeze (``profile.release_memory``).

Example:
    >>> lighten()  # in ``_router.startup()``, after TensorFlow is imported
"""

from __future__ import annotations

import gc
import sys


def _close_figures() -> None:
    """Streamlit's clean-up after a run, without ``keras.backend.clear_session()``."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")


def lighten() -> bool:
    """Skip Streamlit's per-run ``clear_session`` and freeze the start-up objects; returns whether the hook was found."""
    from streamlit.runtime.scriptrunner import script_runner

    gc.freeze()
    if not hasattr(script_runner, "_clean_problem_modules"):  # another Streamlit: nothing to replace
        return False
    script_runner._clean_problem_modules = _close_figures  # looked up by name after every run
    return True
