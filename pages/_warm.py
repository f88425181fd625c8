"""Warm what a page's next run will need while the user reads this one: a compiled pass traced in the background.

A deep network's single-image passes run eagerly until one is found slow; from then on they are
compiled, and the first compiled call traces (about a second for MobileNetV2 at 224). Without
warming that trace lands on the user's first rerun (a new example on Activations: 1.3-1.8 s of server
time instead of 0.15-0.25 s). ``after_draw`` runs a vizcore warm function (``ActivationStore.warm``,
``robustness.warm_activation_change``) once per model and purpose, in a daemon thread started as the
page's last call, outside any script-run context, so it holds no session.

Bounded: vizcore's warm functions trace nothing where the profile compiles no single pass (hosted:
eager passes only, nothing kept), the pass they run is thrown away, at most one warm thread runs
at a time (a second request is dropped), and what was warmed lives in vizcore's per-model cache,
which Streamlit's after-run ``clear_session`` no longer empties (``_rerun.lighten``).
``CONVLENS_WARM=0`` turns warming off (the baseline of ``python -m bench rerun``).

Example:
    >>> _warm.after_draw(loaded, "activations", store.warm)
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from vizcore import models

OFF_ENV = "CONVLENS_WARM"
KEPT = 256  # (model, purpose) pairs remembered as warmed; the oldest are forgotten (and may warm again)

_LOCK = threading.Lock()
_DONE: OrderedDict[Hashable, None] = OrderedDict()
_BUSY = threading.Event()
log = logging.getLogger(__name__)


def enabled() -> bool:
    return os.environ.get(OFF_ENV, "1") != "0"


def _run(warm: Callable[[], object], what: str) -> None:
    try:
        warm()
    except Exception:  # a warm-up is an optimisation: the run that needs the function traces it itself
        log.debug("warming %s failed", what, exc_info=True)
    finally:
        _BUSY.clear()


def after_draw(loaded: models.LoadedModel, what: str, warm: Callable[[], object]) -> bool:
    """Call ``warm()`` in a background thread, once per model and ``what``; returns whether it started.

    Call it last on the page, after everything is drawn. Skipped when warming is off, when this
    model and ``what`` were warmed already, or while another warm-up runs (one at a time).
    """
    if not enabled():
        return False
    key = (loaded.key, what)
    with _LOCK:
        if key in _DONE or _BUSY.is_set():
            return False
        _DONE[key] = None
        while len(_DONE) > KEPT:
            _DONE.popitem(last=False)
        _BUSY.set()
    threading.Thread(target=_run, args=(warm, what), name=f"convlens-warm-{what}", daemon=True).start()
    return True
