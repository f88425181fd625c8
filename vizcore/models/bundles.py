"""What travels with a model: a ZIP of model + labels, Teachable Machine's labels.txt and metadata.json.

A ZIP is read in memory (nothing is extracted), after checks on its directory: no absolute or
'..' paths, at most ``MAX_ENTRIES`` entries and ``MAX_BYTES`` uncompressed, no entry that
expands like a decompression bomb. It must hold exactly one model: a ``.keras``, an ``.h5`` or a
TF.js ``model.json`` (whose weight shards are read from beside it).

Example:
    >>> b = read_zip(Path("converted_keras.zip").read_bytes(), "converted_keras.zip")
    >>> b.model_path, b.kind, b.labels
    ('keras_model.h5', 'h5', ('cat', 'dog'))
"""

from __future__ import annotations

import io
import json
import posixpath
import re
import zipfile
from dataclasses import dataclass, field

from vizcore.data.archive import IGNORED, MAX_RATIO, UnsafeEntry, entry_path
from vizcore.data.images import PREPROCESS_MODES
from vizcore.errors import ModelLoadError

MAX_ENTRIES = 2_000
MAX_BYTES = 2_000_000_000  # uncompressed, all entries together
MODEL_SUFFIXES = {".keras": "keras", ".h5": "h5", ".hdf5": "h5"}
TM_LINE = re.compile(r"^\s*(\d+)\s+(.*\S)\s*$")
FITS = ("stretch", "pad", "crop")  # as models.FIT_MODES


@dataclass(frozen=True, eq=False)
class Bundle:
    """A model file and what came with it.

    Attributes:
        model_path: the model's path inside the ZIP.
        kind: "keras", "h5" or "tfjs".
        files: every readable entry, path -> bytes (shards are looked up here).
        labels: class names from labels.txt or metadata.json, or None.
        image_size: ``imageSize`` from metadata.json, or None.
        teachable: made by Teachable Machine (its metadata, or keras_model.h5 with labels.txt).
        notes: warnings a page can show, one sentence each.
        preprocess, fit: the input range and fit a metadata.json states (``parse_input``), or None.
    """

    model_path: str
    kind: str
    files: dict[str, bytes] = field(repr=False)
    labels: tuple[str, ...] | None = None
    image_size: int | None = None
    teachable: bool = False
    notes: tuple[str, ...] = ()
    preprocess: str | None = None
    fit: str | None = None

    def read(self, relative: str) -> bytes | None:
        """An entry beside the model (a TF.js shard path as the manifest writes it), or None."""
        folder = posixpath.dirname(self.model_path)
        return self.files.get(posixpath.normpath(posixpath.join(folder, relative)))


def parse_labels_txt(text: bytes | str) -> tuple[str, ...]:
    """Class names of a labels.txt: Teachable Machine's "0 cat" lines, or one plain name a line."""
    if isinstance(text, bytes):
        text = text.decode("utf-8-sig", errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    matches = [TM_LINE.match(line) for line in lines]
    if lines and all(matches) and [int(m.group(1)) for m in matches] == list(range(len(lines))):
        return tuple(m.group(2) for m in matches)
    return tuple(line.strip() for line in lines)


def parse_metadata(
    text: bytes | str, label: str = "metadata.json"
) -> tuple[tuple[str, ...] | None, int | None, bool, str | None]:
    """(labels, imageSize, made by Teachable Machine, note) of a metadata.json; the note says what is missing."""
    try:
        meta = json.loads(text)
    except (ValueError, UnicodeDecodeError) as err:
        return None, None, False, f"'{label}' is not valid JSON ({err}), so its class names were not used."
    if not isinstance(meta, dict):
        return None, None, False, f"'{label}' holds no JSON object, so it gives no class names."
    teachable = "tmVersion" in meta or "teachablemachine" in str(meta.get("packageName", "")).lower()
    size = meta.get("imageSize")
    size = int(size) if isinstance(size, (int, float)) and size > 0 else None
    labels = meta.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        return None, size, teachable, f"'{label}' has no \"labels\" list, so the classes are numbered instead of named."
    return tuple(labels), size, teachable, None


def parse_input(text: bytes | str) -> tuple[str | None, str | None]:
    """(preprocess, fit) a metadata.json states, each None when absent or unknown.

    Teachable Machine's metadata says neither (its models take [-1, 1] and a centre crop); ConvLens's
    Teach export writes ``"preprocess"`` (a ``vizcore.data.images.PREPROCESS_MODES`` key) and ``"fit"``
    ("stretch", "pad" or "crop") so the model reopens with the preprocessing it was taught with.
    """
    try:
        meta = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(meta, dict):
        return None, None
    preprocess, fit = meta.get("preprocess"), meta.get("fit")
    return (preprocess if preprocess in PREPROCESS_MODES else None), (fit if fit in FITS else None)


def parse_class_list(data: bytes | str, label: str = "class list") -> tuple[tuple[str, ...] | None, str | None]:
    """Class names from an uploaded labels.txt, metadata.json or JSON list; (names or None, note or None)."""
    text = data.decode("utf-8-sig", errors="replace") if isinstance(data, bytes) else data
    if text.lstrip().startswith(("{", "[")):
        try:
            doc = json.loads(text)
        except ValueError as err:
            return None, f"'{label}' is not valid JSON ({err}), so its class names were not used."
        if isinstance(doc, list) and all(isinstance(x, str) for x in doc):
            return tuple(doc), None
        labels, _, _, note = parse_metadata(text, label)
        return labels, note
    names = parse_labels_txt(text)
    return (names, None) if names else (None, f"'{label}' is empty, so the classes are numbered instead of named.")


def _safe_path(name: str, label: str) -> str:
    try:
        return entry_path(name)
    except UnsafeEntry as err:
        raise ModelLoadError(f"'{label}' was refused: the entry '{name[:80]}' {err}.") from None


def _read_entries(data: bytes, label: str) -> dict[str, bytes]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise ModelLoadError(f"'{label}' is a damaged ZIP archive and cannot be read ({err}).") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > MAX_ENTRIES:
            raise ModelLoadError(f"'{label}' holds {len(infos):,} files; a model ZIP may hold at most {MAX_ENTRIES:,}.")
        total = sum(i.file_size for i in infos)
        if total > MAX_BYTES:
            raise ModelLoadError(
                f"'{label}' would expand to {total / 1e6:,.0f} MB; at most {MAX_BYTES / 1e6:,.0f} MB is read."
            )
        files = {}
        for info in infos:
            path = _safe_path(info.filename, label)
            if IGNORED.search(path) or info.flag_bits & 0x1:
                continue
            if info.file_size > 2**20 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise ModelLoadError(
                    f"'{label}' was refused: '{path[:80]}' would expand "
                    f"{info.file_size // max(info.compress_size, 1)}-fold (a possible decompression bomb)."
                )
            try:
                files[path] = zf.read(info)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
                raise ModelLoadError(f"'{label}' is damaged: the entry '{path[:80]}' cannot be read ({err}).") from None
    return files


def _is_tfjs_json(blob: bytes) -> bool:
    return blob.lstrip()[:1] == b"{" and (b'"modelTopology"' in blob or b'"weightsManifest"' in blob)


def read_zip(data: bytes, label: str) -> Bundle:
    """The one model in a ZIP, with its labels.txt / metadata.json (from its folder, or the ZIP's top).

    Raises:
        ModelLoadError: unsafe or damaged ZIP, no model in it, or more than one.
    """
    files = _read_entries(data, label)
    models = [
        (p, MODEL_SUFFIXES[posixpath.splitext(p)[1].lower()])
        for p in files
        if posixpath.splitext(p)[1].lower() in MODEL_SUFFIXES
    ]
    models += [(p, "tfjs") for p in files if p.lower().endswith(".json") and _is_tfjs_json(files[p])]
    if not models:
        shown = ", ".join(sorted(files)[:4]) or "nothing"
        raise ModelLoadError(f"'{label}' holds no model (.keras, .h5 or TF.js model.json); it contains {shown}.")
    if len(models) > 1:
        raise ModelLoadError(
            f"'{label}' holds {len(models)} models ({', '.join(sorted(p for p, _ in models)[:4])}); "
            "put one model in the ZIP."
        )
    path, kind = models[0]
    folder = posixpath.dirname(path)

    def beside(name: str) -> bytes | None:
        return files.get(posixpath.join(folder, name) if folder else name, files.get(name))

    labels, size, teachable, notes, preprocess, fit = None, None, False, [], None, None
    if (meta := beside("metadata.json")) is not None:
        labels, size, teachable, note = parse_metadata(meta, "metadata.json")
        notes += [note] if note else []
        preprocess, fit = parse_input(meta)
    if (text := beside("labels.txt")) is not None and parse_labels_txt(text):
        labels, notes = parse_labels_txt(text), []
        teachable = teachable or posixpath.basename(path) == "keras_model.h5"
    return Bundle(path, kind, files, labels, size, teachable, tuple(notes), preprocess, fit)
