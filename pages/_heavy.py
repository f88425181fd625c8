"""The server's heavy slots as the page shows them: a note while other sessions' costly work runs first.

``vizcore.profile.heavy_work`` bounds how many costly computations run at once on this server
(``heavy_slots`` of the profile); ``slot()`` holds one around a block and says so while it waits.
The runner (``pages/_runner.py``) is its one caller: a page asks the runner for costly work.
"""

from __future__ import annotations

from contextlib import contextmanager

import streamlit as st

from vizcore import profile


@contextmanager
def slot():
    """Hold one of the server's heavy slots around the block, saying so while other sessions' work runs first."""
    note = st.empty()

    def waiting() -> None:
        note.info(profile.WAIT.format(slots=profile.current().heavy_slots), icon="⏳")

    with profile.heavy_work(on_wait=waiting):
        note.empty()
        yield
