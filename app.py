"""ConvLens: see inside a convolutional network. Run with `streamlit run app.py`."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pages import _router  # noqa: E402

_router.navigation().run()
