"""A labelled image dataset from an uploaded ZIP with one folder per class, read safely in memory.

Layout: ``cats/001.png``, ``dogs/abc.jpg``, ... (or the same inside one top folder, as zipping a
folder gives). Class names are the folder names, sorted. Nothing is extracted to disk: each entry
is read from memory, and the archive is checked from its directory first (paths escaping the
folder, too many files, too many uncompressed bytes) before any image is decoded.

Example:
    >>> ds = load_image_zip(uploaded.getvalue(), size=(28, 28), channels=1)
    >>> ds.class_names, ds.x_nhwc.shape, ds.notes
    (('cats', 'dogs'), (120, 28, 28, 1), ('resized 120 images to 28x28',))
"""

from __future__ import annotations

import io
import posixpath
import re
import stat
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vizcore.data.datasets import ImageDataset
from vizcore.data.images import load_image, preprocess
from vizcore.errors import ArchiveError, ImageLoadError

MAX_FILES = 20_000
MAX_TOTAL_PIXELS = 200_000_000  # decoded pixels over all images (about 600 MB as RGB uint8)
MAX_UNCOMPRESSED_BYTES = 1_000_000_000
MAX_DATASET_BYTES = 2_000_000_000  # the float32 array that comes back
MAX_RATIO = 200  # uncompressed / compressed size of one entry above which it is a likely bomb
IGNORED = re.compile(r"(^|/)(__MACOSX|\.[^/]*|Thumbs\.db|desktop\.ini)(/|$)", re.IGNORECASE)


@dataclass(frozen=True, eq=False)
class ZipImageDataset(ImageDataset):
    """An ImageDataset read from a ZIP, with what was skipped or changed on the way (``notes``)."""

    notes: tuple[str, ...] = ()
    files: tuple[str, ...] = ()  # the archive path of each image, aligned with ``y``


class UnsafeEntry(ValueError):
    """A ZIP entry whose path leaves the archive; ``str(err)`` says how, as a clause ("has an absolute path")."""


def entry_path(name: str) -> str:
    """The entry's path with '/' separators, normalized; UnsafeEntry when it is absolute or climbs out with '..'."""
    path = name.replace("\\", "/")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path) or "\x00" in path:
        raise UnsafeEntry("has an absolute path")
    if ".." in path.split("/"):
        raise UnsafeEntry("points outside the archive ('..')")
    return posixpath.normpath(path) if path.strip("/") else path


def _safe_name(name: str) -> str:
    """entry_path, with ArchiveError naming the entry (and what to zip instead) for a path that leaves the folder."""
    try:
        return entry_path(name)
    except UnsafeEntry as err:
        hint = " Zip the class folders themselves." if "absolute" in str(err) else ""
        raise ArchiveError(f"The ZIP was refused: the entry '{name[:80]}' {err}.{hint}") from None


def _open(data: bytes) -> zipfile.ZipFile:
    if not data:
        raise ArchiveError("The uploaded file is empty (0 bytes).")
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        head = data[:4]
        what = (
            "an image, not a ZIP of images" if head[:3] in (b"\xff\xd8\xff", b"\x89PN", b"GIF") else "not a ZIP archive"
        )
        raise ArchiveError(f"The uploaded file is {what}. Upload a .zip with one folder of images per class.") from None
    except (OSError, ValueError, EOFError) as err:
        raise ArchiveError(f"The ZIP archive is damaged and cannot be read ({err}).") from None


def _entries(
    zf: zipfile.ZipFile, max_files: int, max_bytes: int
) -> tuple[list[tuple[zipfile.ZipInfo, str]], list[str], list[str]]:
    """(info, safe path) of each file to read, after the directory checks; folder paths; notes."""
    infos = zf.infolist()
    if len(infos) > 4 * max_files:
        raise ArchiveError(f"The ZIP has {len(infos):,} entries; at most {max_files:,} images are read.")
    files, folders, notes, skipped = [], [], [], Counter()
    total = 0
    for info in infos:
        path = _safe_name(info.filename)
        if IGNORED.search(path):
            continue
        if info.is_dir():
            folders.append(path.strip("/"))
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            skipped["symbolic links"] += 1
            continue
        if info.flag_bits & 0x1:
            skipped["encrypted files"] += 1
            continue
        total += info.file_size
        if info.file_size > 50 * 2**20 or (
            info.file_size > 2**20 and info.file_size > MAX_RATIO * max(info.compress_size, 1)
        ):
            raise ArchiveError(
                f"The ZIP was refused: '{path[:80]}' would expand to {info.file_size / 1e6:.0f} MB "
                f"from {info.compress_size / 1e3:.0f} kB (a possible decompression bomb)."
            )
        files.append((info, path))
    if len(files) > max_files:
        raise ArchiveError(
            f"The ZIP holds {len(files):,} files; at most {max_files:,} can be read. Use fewer images per class."
        )
    if total > max_bytes:
        raise ArchiveError(
            f"The ZIP would expand to {total / 1e6:,.0f} MB; at most {max_bytes / 1e6:,.0f} MB is read "
            "(a possible decompression bomb, or simply too many large images)."
        )
    notes += [f"skipped {n} {what}" for what, n in sorted(skipped.items())]
    return files, folders, notes


def _split_classes(
    files: list[tuple[zipfile.ZipInfo, str]], folders: list[str]
) -> tuple[dict[str, list[tuple[zipfile.ZipInfo, str]]], list[str]]:
    """Files grouped by class folder (one shared top folder is looked through); empty class folders too."""
    parts = [path.split("/") for _, path in files]
    strip = 0
    while parts and all(len(p) > strip + 2 for p in parts) and len({p[strip] for p in parts}) == 1:
        strip += 1  # "dataset/cats/1.png" -> class "cats"
    classes: dict[str, list] = {}
    loose = 0
    for (info, _), p in zip(files, parts):
        if len(p) < strip + 2:
            loose += 1
            continue
        classes.setdefault(p[strip], []).append((info, "/".join(p)))
    top = parts[0][:strip] if parts else []
    for folder in folders:
        f = folder.split("/")
        if len(f) == strip + 1 and f[:strip] == top:
            classes.setdefault(f[strip], [])
    notes = [f"skipped {loose} file{'s' if loose > 1 else ''} outside the class folders"] if loose else []
    return classes, notes


def _common_size(shapes: list[tuple[int, int]]) -> tuple[int, int]:
    return Counter(shapes).most_common(1)[0][0]


@dataclass(frozen=True, eq=False)
class ClassImages:
    """The images of a ZIP of class folders as they are: each its own size, uint8 HxWxC (C = 1 or 3).

    Attributes:
        class_names: folder names, sorted.
        images: one uint8 array per readable image (after ``transform``), in class then file order.
        y: int64 class index of each image.
        files: the archive path of each image.
        notes: what was skipped (unreadable or non-image files, links, files outside the folders).
    """

    class_names: tuple[str, ...]
    images: tuple[np.ndarray, ...]
    y: np.ndarray
    files: tuple[str, ...]
    notes: tuple[str, ...] = ()


def read_class_images(
    data: bytes,
    *,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    max_files: int = MAX_FILES,
    max_total_pixels: int = MAX_TOTAL_PIXELS,
    max_uncompressed_bytes: int = MAX_UNCOMPRESSED_BYTES,
) -> ClassImages:
    """Read a ZIP of class folders into its images, each kept at its own size (``load_image_zip`` resizes them).

    Args:
        data: the ZIP file's bytes.
        transform: applied to each image as soon as it is decoded (e.g. a downscale), so that at most
            one full-size image is in memory at a time.
        max_files, max_total_pixels, max_uncompressed_bytes: as ``load_image_zip``.

    Raises:
        ArchiveError: as ``load_image_zip``.
    """
    with _open(data) as zf:
        files, folders, notes = _entries(zf, max_files, max_uncompressed_bytes)
        classes, more = _split_classes(files, folders)
        notes += more
        if len(classes) < 2:
            found = f"only the folder '{next(iter(classes))}'" if classes else "no class folders"
            raise ArchiveError(
                f"The ZIP has {found}: training needs at least 2 classes, one folder of images per class "
                "(for example cats/001.png and dogs/001.png)."
            )
        class_names = tuple(sorted(classes))
        images, labels, paths, unreadable = [], [], [], []
        pixels = 0
        for label, cls in enumerate(class_names):
            readable = 0
            for info, path in sorted(classes[cls], key=lambda e: e[1]):
                try:
                    with zf.open(info) as f:
                        raw = f.read(info.file_size + 1)
                    image = load_image(raw, name=path)
                except (
                    ImageLoadError,
                    zipfile.BadZipFile,
                    OSError,
                    ValueError,
                    EOFError,
                    RuntimeError,
                    NotImplementedError,
                ):
                    unreadable.append(path)
                    continue
                pixels += image.shape[0] * image.shape[1]
                if pixels > max_total_pixels:
                    raise ArchiveError(
                        f"The images hold more than {max_total_pixels / 1e6:,.0f} megapixels in all; "
                        "use fewer or smaller images."
                    )
                images.append(image if transform is None else transform(image))
                labels.append(label)
                paths.append(path)
                readable += 1
            if readable == 0:
                tried = len(classes[cls])
                raise ArchiveError(
                    f"The class folder '{cls}' has no readable image "
                    + (
                        f"({tried} file{'s' if tried != 1 else ''} could not be read as images). "
                        if tried
                        else "(it is empty). "
                    )
                    + "Remove the folder or add PNG/JPEG images to it."
                )
    if unreadable:
        listed = ", ".join(unreadable[:3]) + (" ..." if len(unreadable) > 3 else "")
        notes.append(f"skipped {len(unreadable)} unreadable file{'s' if len(unreadable) > 1 else ''} ({listed})")
    return ClassImages(class_names, tuple(images), np.asarray(labels, dtype=np.int64), tuple(paths), tuple(notes))


def load_image_zip(
    data: bytes,
    *,
    size: tuple[int, int] | None = None,
    channels: int | None = None,
    max_files: int = MAX_FILES,
    max_total_pixels: int = MAX_TOTAL_PIXELS,
    max_uncompressed_bytes: int = MAX_UNCOMPRESSED_BYTES,
    name: str = "upload",
) -> ZipImageDataset:
    """Read a ZIP of class folders into a dataset, float32 NHWC in [0, 1].

    Args:
        data: the ZIP file's bytes (e.g. ``uploaded_file.getvalue()``).
        size: (height, width) every image is resized to; None: the most common size in the archive.
        channels: 1 or 3; None: 1 when every image is grayscale, else 3.
        max_files: most files read (checked from the ZIP directory, before reading).
        max_total_pixels: most decoded pixels over all images.
        max_uncompressed_bytes: most bytes the declared entries may expand to.
        name: the dataset's name.

    Returns:
        ZipImageDataset with class names = folder names (sorted), ``notes`` saying what was
        skipped or converted, and ``files`` naming each image's entry.

    Raises:
        ArchiveError: not a ZIP; an absolute or '..' path (zip-slip); too many files or bytes
            (a likely decompression bomb); fewer than 2 class folders; a class without one
            readable image; a result too large for memory.
    """
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1, 3 or None, got {channels}")
    read = read_class_images(
        data, max_files=max_files, max_total_pixels=max_total_pixels, max_uncompressed_bytes=max_uncompressed_bytes
    )
    images, notes = read.images, list(read.notes)
    target = tuple(size) if size else _common_size([im.shape[:2] for im in images])
    ch = channels or (1 if all(im.shape[-1] == 1 for im in images) else 3)
    array_bytes = len(images) * target[0] * target[1] * ch * 4
    if array_bytes > MAX_DATASET_BYTES:
        raise ArchiveError(
            f"{len(images):,} images of {target[1]}x{target[0]}x{ch} would take {array_bytes / 1e9:.1f} GB; "
            "choose a smaller image size (for example the model's input size)."
        )
    x_nhwc = np.empty((len(images), target[0], target[1], ch), dtype=np.float32)
    resized = converted = 0
    for i, image in enumerate(images):
        out = preprocess(image, size=target, channels=ch, mode="unit")
        x_nhwc[i] = out.image_hwc
        resized += any(n.startswith("resized") for n in out.notes)
        converted += image.shape[-1] != ch
    if resized:
        notes.append(f"resized {resized} image{'s' if resized > 1 else ''} to {target[1]}x{target[0]}")
    if converted:
        what = "grayscale" if ch == 1 else "RGB"
        notes.append(f"converted {converted} image{'s' if converted > 1 else ''} to {what}")
    return ZipImageDataset(
        x_nhwc=x_nhwc,
        y=read.y,
        class_names=read.class_names,
        name=name,
        notes=tuple(notes),
        files=read.files,
    )


def _read_images(
    zf: zipfile.ZipFile, entries: list[tuple[zipfile.ZipInfo, str]], max_pixels: int, pixels: int = 0
) -> tuple[list[np.ndarray], list[str], list[str], int]:
    """The readable images of ``entries`` (by path), their paths, the paths that could not be read, and the
    decoded pixels so far (``pixels`` before); ArchiveError past ``max_pixels``."""
    images, paths, unreadable = [], [], []
    for info, path in sorted(entries, key=lambda e: e[1]):
        try:
            with zf.open(info) as f:
                raw = f.read(info.file_size + 1)
            image = load_image(raw, name=path)
        except (ImageLoadError, zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError, NotImplementedError):
            unreadable.append(path)
            continue
        pixels += image.shape[0] * image.shape[1]
        if pixels > max_pixels:
            raise ArchiveError(
                f"The images hold more than {max_pixels / 1e6:,.0f} megapixels in all; use fewer or smaller images."
            )
        images.append(image)
        paths.append(path)
    return images, paths, unreadable, pixels


def _to_array(
    images: list[np.ndarray],
    size: tuple[int, int] | None,
    channels: int | None,
    unreadable: list[str],
    notes: list[str],
) -> np.ndarray:
    """The images as one float32 NHWC array in [0, 1] at ``size`` (None: the most common) and ``channels``;
    what was skipped or changed is appended to ``notes``."""
    if unreadable:
        listed = ", ".join(unreadable[:3]) + (" ..." if len(unreadable) > 3 else "")
        notes.append(f"skipped {len(unreadable)} unreadable file{'s' if len(unreadable) > 1 else ''} ({listed})")
    target = tuple(size) if size else _common_size([im.shape[:2] for im in images])
    ch = channels or (1 if all(im.shape[-1] == 1 for im in images) else 3)
    array_bytes = len(images) * target[0] * target[1] * ch * 4
    if array_bytes > MAX_DATASET_BYTES:
        raise ArchiveError(
            f"{len(images):,} images of {target[1]}x{target[0]}x{ch} would take {array_bytes / 1e9:.1f} GB; "
            "choose a smaller image size (for example the model's input size)."
        )
    x_nhwc = np.empty((len(images), target[0], target[1], ch), dtype=np.float32)
    resized = converted = 0
    for i, image in enumerate(images):
        out = preprocess(image, size=target, channels=ch, mode="unit")
        x_nhwc[i] = out.image_hwc
        resized += any(n.startswith("resized") for n in out.notes)
        converted += image.shape[-1] != ch
    if resized:
        notes.append(f"resized {resized} image{'s' if resized > 1 else ''} to {target[1]}x{target[0]}")
    if converted:
        what = "grayscale" if ch == 1 else "RGB"
        notes.append(f"converted {converted} image{'s' if converted > 1 else ''} to {what}")
    return x_nhwc


def load_images_zip(
    data: bytes,
    *,
    size: tuple[int, int] | None = None,
    channels: int | None = None,
    max_files: int = MAX_FILES,
    max_total_pixels: int = MAX_TOTAL_PIXELS,
    max_uncompressed_bytes: int = MAX_UNCOMPRESSED_BYTES,
    name: str = "upload",
) -> ZipImageDataset:
    """Read every image of a ZIP, in any folders, as ONE class (a concept's examples), float32 NHWC in [0, 1].

    The same checks and limits as ``load_image_zip``; the class is named after the one top folder,
    or ``name`` when the images are not all in one. ``y`` is all zeros.

    Raises:
        ArchiveError: not a ZIP, unsafe, too large, or without one readable image.

    Example:
        >>> load_images_zip(striped_zip, size=(64, 64), channels=3).x_nhwc.shape
        (40, 64, 64, 3)
    """
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1, 3 or None, got {channels}")
    with _open(data) as zf:
        files, _, notes = _entries(zf, max_files, max_uncompressed_bytes)
        images, paths, unreadable, _ = _read_images(zf, files, max_total_pixels)
    if not images:
        bad = f" ({len(unreadable)} files could not be read)." if unreadable else "."
        raise ArchiveError(f"The ZIP has no readable image{bad} Add PNG or JPEG images.")
    tops = {p.split("/")[0] for p in paths}
    label = next(iter(tops)) if len(tops) == 1 and all("/" in p for p in paths) else name
    x_nhwc = _to_array(images, size, channels, unreadable, notes)
    return ZipImageDataset(
        x_nhwc=x_nhwc,
        y=np.zeros(len(images), np.int64),
        class_names=(label,),
        name=name,
        notes=tuple(notes),
        files=tuple(paths),
    )
