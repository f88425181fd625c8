"""Precomputed galleries: what the Dataset view computes, saved once per (model, dataset) and found again by the app.

One folder per model key and dataset key (the keys the Dataset page uses, e.g. ``bundled:mnist_cnn`` and
``mnist_sample:5000``) under the root ``$CONVLENS_PRECOMPUTED`` (default ``precomputed/`` beside
``vizcore``). Each artifact is one ``.npz`` written atomically; ``manifest.json`` says what is there, by
kind and parameters, with the versions that made it. ``KINDS`` maps an artifact kind to how it is
saved and read; ``STEPS`` (in ``vizcore.precompute.cli``) compute them. A new view adds one of each, as
the atlas did: ``register(Kind("atlas", *flat_dataclass(Atlas)))`` and a step that puts ``atlas(...)``.

Example:
    >>> store = Store.create(loaded.key, "mnist_sample:5000")
    >>> store.put("examples", top_examples(loaded.model, "conv2", x), layer="conv2")
    >>> Store.find(loaded.key, "mnist_sample:5000").get("examples", layer="conv2").indices.shape
    (64, 9)
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np

from vizcore.featurevis.atlas import Atlas
from vizcore.inspect.evaluation import Evaluation, Report
from vizcore.inspect.examples import TopExamples
from vizcore.models import specs

ROOT_ENV = "CONVLENS_PRECOMPUTED"
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "precomputed"
FORMAT = 1  # bumped when a saved layout changes; other formats are not read
K = 9  # examples per filter on a filter card
MEMORY_BUDGET = 600e6  # bytes of prepared images one dataset may take (float32 for the model + uint8 for display)
SHAPES = specs.SHAPES  # the generated shapes of the Dataset view: one definition, in vizcore.models.specs
sample_photos = specs.sample_photos  # the bundled photos as a dataset (defined beside the dataset specs)


def root() -> Path:
    """The cache root: ``$CONVLENS_PRECOMPUTED`` or ``precomputed/`` in the repository."""
    return Path(os.environ.get(ROOT_ENV) or DEFAULT_ROOT)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text).strip("_") or "_"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``: readers see the old file
    or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # readable by every replica's user, as a shared folder needs
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- which images


def pick(n_images: int, image_shape: tuple[int, ...], spec, limit: int) -> np.ndarray:
    """Indices of the images the Dataset view uses: at most ``limit``, as many as fit ``MEMORY_BUDGET``
    at the model's input size (``spec``, a graph.InputSpec), evenly spaced so that every class is in."""
    pixels = (spec.height or image_shape[0]) * (spec.width or image_shape[1]) * spec.channels
    most = max(10, int(MEMORY_BUDGET // (pixels * 5)))
    n = min(int(limit), n_images, most)
    return np.linspace(0, n_images - 1, n).astype(int) if n < n_images else np.arange(n_images)


# --------------------------------------------------------------------------- kinds of artifact


@dataclass(frozen=True)
class Kind:
    """How one kind of artifact becomes named arrays (one .npz) and back."""

    name: str
    encode: Callable[[Any], dict[str, np.ndarray]]
    decode: Callable[[dict[str, np.ndarray]], Any]


def flat_dataclass(cls) -> tuple[Callable, Callable]:
    """Codec of a dataclass whose fields are arrays, numbers, strings or tuples of them (TopExamples, Atlas, ...)."""

    def encode(value) -> dict[str, np.ndarray]:
        return {f.name: np.asarray(getattr(value, f.name)) for f in dataclasses.fields(cls)}

    def value(f, a: np.ndarray):
        if str(f.type).startswith("tuple"):
            return tuple(a.tolist())
        return a.item() if a.ndim == 0 else a

    def decode(arrays: dict[str, np.ndarray]):
        return cls(**{f.name: value(f, arrays[f.name]) for f in dataclasses.fields(cls)})

    return encode, decode


def _encode_report(rep: Report) -> dict[str, np.ndarray]:
    ev = rep.evaluation
    out = {f"evaluation.{f.name}": np.asarray(getattr(ev, f.name)) for f in dataclasses.fields(Evaluation)}
    out.update(
        top_k_k=np.array(list(rep.top_k), np.int64),
        top_k_value=np.array(list(rep.top_k.values()), np.float64),
        precision=rep.precision,
        recall=rep.recall,
        support=rep.support,
    )
    return out


def _decode_report(a: dict[str, np.ndarray]) -> Report:
    fields = {f.name: a[f"evaluation.{f.name}"] for f in dataclasses.fields(Evaluation)}
    fields["accuracy"] = float(fields["accuracy"])
    fields["class_names"] = tuple(str(c) for c in fields["class_names"])
    top_k = {int(k): float(v) for k, v in zip(a["top_k_k"], a["top_k_value"])}
    return Report(Evaluation(**fields), top_k, a["precision"], a["recall"], a["support"])


@dataclass(frozen=True)
class Projection:
    """A layer's 2-D embedding: ``xy`` (N, 2), the layer's feature count, and the share of variance
    PCA keeps (NaN otherwise)."""

    xy: np.ndarray
    features: int
    variance: float


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> None:
    """Make a kind of artifact storable (a new view adds its own)."""
    KINDS[kind.name] = kind


register(Kind("examples", *flat_dataclass(TopExamples)))  # params: layer
register(
    Kind("featurevis", lambda images: {"images": np.asarray(images, np.uint8)}, lambda a: a["images"])
)  # layer; uint8 (channels, H, W, C)
register(Kind("report", _encode_report, _decode_report))  # no params
register(Kind("embedding", *flat_dataclass(Projection)))  # layer, method
register(Kind("atlas", *flat_dataclass(Atlas)))  # layer, method, grid, min_points, steps


# --------------------------------------------------------------------------- the store


class Store:
    """The precomputed artifacts of one model on one dataset: a folder and its manifest."""

    def __init__(self, path: Path, manifest: dict) -> None:
        self.path = path
        self.manifest = manifest

    @staticmethod
    def folder(model_key: str, dataset_key: str, base: Path | None = None) -> Path:
        return (base or root()) / _slug(model_key) / _slug(dataset_key)

    @classmethod
    def create(cls, model_key: str, dataset_key: str, base: Path | None = None, **about) -> Store:
        """Open the folder for writing (what it already holds stays), recording ``about`` in the manifest."""
        path = cls.folder(model_key, dataset_key, base)
        found = cls.find(model_key, dataset_key, base)
        manifest = (
            found.manifest if found else {"format": FORMAT, "model": model_key, "dataset": dataset_key, "artifacts": []}
        )
        manifest.update(
            about,
            created=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            versions={"numpy": np.__version__, "keras": keras.__version__},
        )
        store = cls(path, manifest)
        store._save_manifest()
        return store

    @classmethod
    def find(cls, model_key: str, dataset_key: str, base: Path | None = None) -> Store | None:
        """The store of this model and dataset, or None when nothing was precomputed for them."""
        path = cls.folder(model_key, dataset_key, base)
        try:
            manifest = json.loads((path / "manifest.json").read_text())
        except (OSError, ValueError):
            return None
        if (
            manifest.get("format") != FORMAT
            or manifest.get("model") != model_key
            or manifest.get("dataset") != dataset_key
        ):
            return None
        return cls(path, manifest)

    @property
    def created(self) -> str:
        return str(self.manifest.get("created", "?"))

    def _entry(self, kind: str, params: dict) -> dict | None:
        return next((e for e in self.manifest["artifacts"] if e["kind"] == kind and e["params"] == params), None)

    def _save_manifest(self) -> None:
        write_atomic(self.path / "manifest.json", json.dumps(self.manifest, indent=2).encode())

    def has(self, kind: str, **params) -> bool:
        return self._entry(kind, params) is not None

    def get(self, kind: str, **params):
        """The artifact of ``kind`` with these parameters (e.g. ``layer="conv2"``), or None."""
        entry = self._entry(kind, params)
        if entry is None:
            return None
        try:
            with np.load(self.path / entry["file"], allow_pickle=False) as npz:
                return KINDS[kind].decode({name: npz[name] for name in npz.files})
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):  # unreadable: computed again instead
            return None

    def put(self, kind: str, value, *, seconds: float | None = None, **params) -> Path:
        """Save one artifact (atomically), then list it in the manifest."""
        arrays = KINDS[kind].encode(value)
        name = "__".join([kind, *(f"{k}={_slug(str(v))}" for k, v in sorted(params.items()))]) + ".npz"
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        write_atomic(self.path / name, buf.getvalue())
        self.manifest["artifacts"] = [
            e for e in self.manifest["artifacts"] if not (e["kind"] == kind and e["params"] == params)
        ]
        entry = {"kind": kind, "params": params, "file": name}
        if seconds is not None:
            entry["seconds"] = round(seconds, 2)
        self.manifest["artifacts"].append(entry)
        self._save_manifest()
        return self.path / name
