"""Where a user's file comes from: a path, bytes, or a binary file-like (an upload). One reader for all."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

Source = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO


def read_source(source: Source) -> tuple[bytes | None, Path | None]:
    """``(bytes, None)`` for bytes-like or file-like sources (read once), ``(None, path)`` for a path.

    A path is not read here, so a caller can open it in place (an ``.h5`` file, a model folder).

    Raises:
        TypeError: ``source`` is none of these.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), None
    if hasattr(source, "getvalue"):  # io.BytesIO, Streamlit's UploadedFile
        return bytes(source.getvalue()), None
    if hasattr(source, "read"):
        return bytes(source.read()), None
    if isinstance(source, (str, os.PathLike)):
        return None, Path(source)
    raise TypeError(f"source must be a path, bytes or a binary file-like object, got {type(source).__name__}")
