"""Presentation: uint8 images (colormaps, overlays, montages: ``render``) and every Plotly figure
(``figures``). The lowest layer above the foundations: it knows arrays, not models."""
