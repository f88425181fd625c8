"""Presentation: uint8 images (colormaps, overlays, montages: ``render``), feature maps as grids and the
overview's columns (``grids``) and every Plotly figure (``figures``). The lowest layer above the
foundations: it knows arrays, not models."""
