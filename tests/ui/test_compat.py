"""pages/_compat.py: the one module that touches Streamlit's internals, checked against the pinned Streamlit.

The first test fails loudly when the installed Streamlit is not the one the shims were written for
(requirements.txt's pin, ``_compat.WRITTEN_FOR``): re-read ``pages/_compat.py`` against the new version,
then move both. The others exercise every shim on the real Streamlit, so a shim that silently stopped
working (returned its neutral value) fails here.
"""

from __future__ import annotations

import asyncio
import re

import streamlit as st
from helpers import ROOT
from streamlit.testing.v1 import AppTest

from pages import _compat


def test_the_installed_streamlit_is_the_one_the_shims_were_written_for():
    pin = re.search(r"^streamlit==(\S+)", (ROOT / "requirements.txt").read_text(), re.M)
    assert pin is not None, "requirements.txt no longer pins streamlit: pin it, and check pages/_compat.py against it"
    assert pin.group(1) == _compat.WRITTEN_FOR, (
        f"requirements.txt pins Streamlit {pin.group(1)} but pages/_compat.py was written for {_compat.WRITTEN_FOR}: "
        "re-read every shim in pages/_compat.py against the new version, then update WRITTEN_FOR"
    )
    assert st.__version__ == _compat.WRITTEN_FOR, (
        f"Streamlit {st.__version__} is installed; pages/_compat.py was written for {_compat.WRITTEN_FOR}"
    )
    assert _compat.supported()


def _session_script():
    import threading

    import streamlit as st

    from pages import _compat

    st.session_state["sid"] = _compat.session_id()
    box = []
    worker = threading.Thread(target=lambda: box.append(_compat.session_id()))  # a thread of its own: no session
    worker.start()
    worker.join()
    st.session_state["thread_sid"] = box[0]


def test_session_id_names_the_running_session_and_bare_outside_one():
    at = AppTest.from_function(_session_script, default_timeout=30)
    at.run()
    first = at.session_state["sid"]
    assert first != "bare" and len(first) >= 8
    at.run()
    assert at.session_state["sid"] == first  # the same session on the next run
    assert at.session_state["thread_sid"] == "bare"  # a thread the script started runs outside the session
    assert _compat.session_id() == "bare"  # this test's own thread runs no script


def _widget_script():
    import streamlit as st

    from pages import _compat

    st.session_state["forgot"] = _compat.forget_stale_widgets()
    if st.session_state.get("show", True):
        st.selectbox("Pick", [1, 2], key="pick")
        st.slider("Size", 0, 9, key="size")


def test_forget_stale_widgets_drops_the_metadata_of_widgets_gone_from_the_page():
    at = AppTest.from_function(_widget_script, default_timeout=30)
    at.run()
    assert at.session_state["forgot"] == 0  # the first run: no widget yet
    at.run()
    assert at.session_state["forgot"] == 0  # both widgets are on the page
    at.session_state["show"] = False
    at.run()  # the widgets go: Streamlit drops their values at the end of this run, keeps their metadata
    at.run()
    assert at.session_state["forgot"] == 2
    at.run()
    assert at.session_state["forgot"] == 0  # gone for good


def test_leave_legacy_pages_mode_turns_the_pages_folder_mode_off_once():
    from streamlit.runtime.pages_manager import PagesManager

    before = PagesManager.uses_pages_directory
    try:
        PagesManager.uses_pages_directory = True
        assert _compat.leave_legacy_pages_mode()
        assert PagesManager.uses_pages_directory is False
        assert not _compat.leave_legacy_pages_mode()
    finally:
        PagesManager.uses_pages_directory = before


def _cleanup_script():
    import streamlit as st

    st.write("a run")


def test_the_after_run_cleanup_is_replaced_and_called_after_every_run():
    original = _compat.after_run_cleanup()
    assert callable(original)
    calls = []
    try:
        assert _compat.replace_after_run_cleanup(lambda: calls.append(1))
        at = AppTest.from_function(_cleanup_script, default_timeout=30)
        at.run()
        at.run()
        assert len(calls) == 2  # Streamlit's script runner looks it up by name after each run
    finally:
        _compat.replace_after_run_cleanup(original)
    assert _compat.after_run_cleanup() is original


def test_session_manager_of_a_running_server_lists_and_closes_sessions(tmp_path):
    from streamlit.runtime import Runtime, RuntimeConfig
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager

    assert _compat.session_manager() is None  # no server in this process yet
    script = tmp_path / "app.py"
    script.write_text("import streamlit as st\nst.write('hello')\n")

    async def serve() -> tuple[list, bool, list]:
        runtime = Runtime(
            RuntimeConfig(
                script_path=str(script),
                media_file_storage=MemoryMediaFileStorage("/media"),
                uploaded_file_manager=MemoryUploadedFileManager("/upload"),
            )
        )
        await runtime.start()
        try:
            found = _compat.session_manager()
            assert found is not None
            manager, loop = found
            assert loop is asyncio.get_running_loop()

            class Client:
                def write_forward_msg(self, msg) -> None:
                    pass

            sid = runtime.connect_session(Client(), user_info={})
            listed = [info.session.id for info in manager.list_sessions()]
            active = manager.is_active_session(sid)
            manager.close_session(sid)
            after = [info.session.id for info in manager.list_sessions()]
            return [sid, *listed], active, after
        finally:
            runtime.stop()
            await runtime.stopped
            Runtime._instance = None  # noqa: SLF001 (a test's own runtime: the next test starts bare)

    (sid, *listed), active, after = asyncio.run(serve())
    assert listed == [sid] and active and after == []
    assert _compat.session_manager() is None
