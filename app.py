"""ConvLens: see inside a convolutional network. Run with `streamlit run app.py`."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pages import _router  # noqa: E402

_router.startup()  # once per server process: the profile's thread bounds, old run folders deleted
_router.navigation().run()
