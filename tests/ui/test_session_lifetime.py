"""A session that visited every page ends when it is dropped: nothing the pages import or cache holds it.

Run in a fresh interpreter (a subprocess), so every library is imported for the first time from inside
the session's script runs, as on a new server; a library that keeps a traceback of its import (optuna
keeps its optional backends' ImportErrors) would otherwise hold the session's frames for good.
"""

from __future__ import annotations

import subprocess
import sys

from helpers import ROOT

SCRIPT = r"""
import gc, sys, weakref
sys.path[:0] = [{root!r}, {root!r} + "/tests"]
from streamlit.testing.v1 import AppTest
from pages._router import PAGES

at = AppTest.from_file({root!r} + "/app.py", default_timeout=240)
at.query_params["model"] = "bundled:mnist_cnn"
at.run()
for path, _, _ in PAGES:
    at.switch_page(path).run()
    assert not at.exception, (path, [e.value for e in at.exception])
at.number_input(key="dataset.limit").set_value(300).run()  # the Dataset view is the last page
at.radio(key="dataset.view").set_value("embedding").run()
at.radio(key="dataset.projection").set_value("t-SNE").run()  # openTSNE, imported here for the first time
assert not at.exception, [e.value for e in at.exception]
assert "openTSNE" in sys.modules
ended = []
at.session_state["_session_end"].callbacks.append(lambda: ended.append(True))
del at
for _ in range(3):
    gc.collect()
print("ENDED" if ended else "ALIVE")
"""


def test_a_session_over_every_page_ends_when_dropped():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(root=str(ROOT))], capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "ENDED"
