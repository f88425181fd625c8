"""The Teach page's classes as cards: a name, photos by upload, webcam or ZIP, thumbnails, remove.

Everything collected lives in ``st.session_state[CLASSES]`` (a list of cards), so reruns and page
switches never lose it. A photo is kept shrunk (``transfer.shrink``: 320 pixels on its short side).
"""

from __future__ import annotations

import itertools

import numpy as np
import streamlit as st

from vizcore import transfer
from vizcore.data import archive, images
from vizcore.errors import ArchiveError, ImageLoadError
from vizcore.present import render

CLASSES = "teach.classes"  # list of cards: {"id", "name", "images": [uint8 HxWxC], "seen": {upload file ids}}
TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp"]
SHOWN = 24  # thumbnails per card (the newest); the count says how many there are


def _new_card(name: str | None = None) -> dict:
    ids = st.session_state.setdefault("teach.next_id", itertools.count(1))
    card_id = next(ids)
    return {"id": card_id, "name": name or f"Class {card_id}", "images": [], "seen": set()}


def cards_state() -> list[dict]:
    """This session's cards; two empty ones to start, as Teachable Machine has."""
    if CLASSES not in st.session_state:
        st.session_state[CLASSES] = [_new_card(), _new_card()]
    return st.session_state[CLASSES]


def _add(card: dict, files) -> list[str]:
    """Read new uploads (each file once) into the card; one sentence per file that could not be read."""
    problems = []
    for f in files:
        if f is None or f.file_id in card["seen"]:
            continue
        card["seen"].add(f.file_id)
        try:
            card["images"].append(transfer.shrink(images.load_image(f, name=f.name)))
        except ImageLoadError as err:
            problems.append(str(err))
    return problems


def _remove_image(card_id: int, index: int) -> None:
    for card in cards_state():
        if card["id"] == card_id and index < len(card["images"]):
            del card["images"][index]


def _remove_card(card_id: int) -> None:
    st.session_state[CLASSES] = [c for c in cards_state() if c["id"] != card_id]


def _rename(card: dict, key: str) -> None:
    card["name"] = st.session_state[key]


def _from_zip(upload) -> None:
    """Class folders of a ZIP become cards (a folder whose name a card has joins that card)."""
    if upload is None or upload.file_id in st.session_state.setdefault("teach.zips", set()):
        return
    st.session_state["teach.zips"].add(upload.file_id)
    try:
        read = archive.read_class_images(upload.getvalue(), transform=transfer.shrink)
    except ArchiveError as err:
        st.error(str(err), icon="🚫")
        return
    cards = cards_state()
    for label, name in enumerate(read.class_names):
        card = next((c for c in cards if c["name"].strip().casefold() == name.casefold()), None)
        if card is None:
            empty = next((c for c in cards if not c["images"] and c["name"].startswith("Class ")), None)
            card = empty or _new_card(name)
            card["name"] = name
            st.session_state[f"teach.name.{card['id']}"] = name
            if empty is None:
                cards.append(card)
        card["images"].extend(im for im, y in zip(read.images, read.y) if y == label)
    st.session_state["teach.zip_notes"] = [f"From {upload.name}: {note}." for note in read.notes]


def _card(card: dict, disabled: bool) -> None:
    key = f"teach.name.{card['id']}"
    if key not in st.session_state:
        st.session_state[key] = card["name"]
    top = st.columns([3, 1])
    top[0].text_input("Class name", key=key, disabled=disabled, on_change=_rename, args=(card, key))
    card["name"] = st.session_state[key]
    top[1].button(
        "Remove class", key=f"teach.drop.{card['id']}", disabled=disabled, on_click=_remove_card, args=(card["id"],)
    )
    left, right = st.columns(2)
    files = left.file_uploader(
        "Upload images", type=TYPES, accept_multiple_files=True, key=f"teach.up.{card['id']}", disabled=disabled
    )
    problems = _add(card, files or [])
    if right.toggle("Webcam", key=f"teach.webcam.{card['id']}", disabled=disabled, help="One photo per click"):
        problems += _add(card, [right.camera_input("Take a photo", key=f"teach.cam.{card['id']}", disabled=disabled)])
    for problem in problems:
        st.warning(problem, icon="🖼️")
    n = len(card["images"])
    st.caption(f"**{n} image{'s' if n != 1 else ''}**" + (f" · the newest {SHOWN} shown" if n > SHOWN else ""))
    start = max(0, n - SHOWN)
    for row in range(start, n, 8):
        cols = st.columns(8)
        for col, i in zip(cols, range(row, min(row + 8, n))):
            col.image(render.resize(render.to_rgb(_square(card["images"][i])), (64, 64)))
            col.button(
                "✕",
                key=f"teach.rm.{card['id']}.{i}",
                help="Remove this image",
                disabled=disabled,
                on_click=_remove_image,
                args=(card["id"], i),
            )


def _square(image: np.ndarray) -> np.ndarray:
    """The centre square of a photo, for its thumbnail."""
    h, w = image.shape[:2]
    side = min(h, w)
    return image[(h - side) // 2 : (h - side) // 2 + side, (w - side) // 2 : (w - side) // 2 + side]


def cards(*, disabled: bool = False) -> list[tuple[str, list[np.ndarray]]]:
    """Draw the cards; returns (name, photos) per class, in card order."""
    st.subheader("1 · Classes")
    _from_zip(
        st.file_uploader(
            "Or add a ZIP with one folder of images per class", type=["zip"], key="teach.zip", disabled=disabled
        )
    )
    for note in st.session_state.get("teach.zip_notes", []):
        st.caption(f"ℹ️ {note}")
    for card in cards_state():
        with st.container(border=True):
            _card(card, disabled)
    if st.button("➕ Add a class", key="teach.add", disabled=disabled):
        cards_state().append(_new_card())
        st.rerun()
    return [(c["name"], c["images"]) for c in cards_state()]
