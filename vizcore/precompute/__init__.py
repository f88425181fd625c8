"""Precompute once, serve many: the Dataset view's results saved to a folder (``store``) by
``python -m vizcore.precompute`` (``cli``), read back by the page."""
