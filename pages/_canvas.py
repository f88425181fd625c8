"""A small drawing canvas (an inline Streamlit v2 component): white ink on black, like MNIST.

Written here instead of depending on streamlit-drawable-canvas, whose 0.13 release does not import
on Streamlit 1.67 outside its own packaging. The strokes come back as a PNG data URL; the
conversion to a model input lives in ``vizcore.data.canvas`` (unit-tested).
"""

from __future__ import annotations

import base64
import io

import numpy as np
import streamlit as st
from PIL import Image

_HTML = '<div class="wrap"><canvas width="280" height="280"></canvas><button type="button">Clear</button></div>'
_CSS = """
.wrap { display: flex; flex-direction: column; gap: 6px; width: 280px; }
canvas { background: #000; border-radius: 6px; touch-action: none; cursor: crosshair; }
button { width: 80px; padding: 4px; border-radius: 6px; border: 1px solid #bbb; background: #fff; cursor: pointer; }
"""
_JS = """
export default function(component) {
  const { setStateValue, parentElement } = component;
  const canvas = parentElement.querySelector('canvas');
  const button = parentElement.querySelector('button');
  if (canvas.dataset.ready) return;
  canvas.dataset.ready = '1';
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#000'; ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.strokeStyle = '#fff'; ctx.lineWidth = 20; ctx.lineCap = 'round'; ctx.lineJoin = 'round';
  let drawing = false;
  const pos = (e) => { const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height]; };
  canvas.addEventListener('pointerdown', (e) => { drawing = true; canvas.setPointerCapture(e.pointerId);
    const [x, y] = pos(e); ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x + 0.1, y + 0.1); ctx.stroke(); });
  canvas.addEventListener('pointermove', (e) => { if (!drawing) return;
    const [x, y] = pos(e); ctx.lineTo(x, y); ctx.stroke(); });
  const finish = () => { if (!drawing) return; drawing = false;
    setStateValue('image', canvas.toDataURL('image/png')); };
  canvas.addEventListener('pointerup', finish);
  canvas.addEventListener('pointerleave', finish);
  button.addEventListener('click', () => { ctx.fillStyle = '#000'; ctx.fillRect(0, 0, canvas.width, canvas.height);
    setStateValue('image', null); });
}
"""

_component = st.components.v2.component("convlens_canvas", html=_HTML, css=_CSS, js=_JS)


def draw(key: str) -> np.ndarray | None:
    """Show the canvas; return the drawing as uint8 RGBA (280, 280, 4), or None before any stroke."""
    result = _component(key=key, on_image_change=lambda: None, height=320)
    url = getattr(result, "image", None)
    if not url or "," not in url:
        return None
    png = base64.b64decode(url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
