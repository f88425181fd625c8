"""Image input: loading uploads safely, and mapping images into (and back from) a model's value range.

Images travel as uint8 HxWxC (C = 1 or 3) until ``preprocess`` maps them into the value range a
model expects (``PREPROCESS_MODES``); ``deprocess`` maps them back for display.
"""

from __future__ import annotations

import functools
import io
import struct
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from vizcore.data.sources import Source, read_source
from vizcore.errors import ImageLoadError

# ----------------------------------------------------------------------------------------------
# Loading user images
# ----------------------------------------------------------------------------------------------

MAX_IMAGE_PIXELS = 40_000_000
"""Largest image (width x height) load_image decodes: 40 MP, e.g. 7300x5480, ~120 MB as RGB.

Checked from the file header before any pixel is decoded, so a small file that declares a
huge size (a decompression bomb) is refused cheaply. Phone photos (12-50 MP) fit or come close;
larger ones should be downscaled before upload.
"""

ImageSource = Source

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def _read_bytes(source: ImageSource, name: str | None) -> tuple[bytes, str]:
    """The bytes of a path, bytes-like or binary file-like, and a name for messages."""
    data, path = read_source(source)
    if path is not None:
        try:
            return path.read_bytes(), name or path.name
        except OSError as err:
            raise ImageLoadError(f"{name or path} could not be read: {err.strerror or err}.") from err
    return data, str(name or getattr(source, "name", None) or "the image")


def _too_large(name: str, width: int, height: int, max_pixels: int) -> ImageLoadError:
    return ImageLoadError(
        f"{name} is {width}x{height} pixels ({width * height / 1e6:.3g} megapixels); the limit is "
        f"{max_pixels / 1e6:.3g} megapixels. Downscale it (for example to 4000x3000) and upload it again."
    )


def _composite_on_white(colour_alpha_hwc: np.ndarray) -> np.ndarray:
    """Blend (H, W, C+1) uint8 colour+alpha onto a white background; returns (H, W, C) uint8."""
    colour = colour_alpha_hwc[..., :-1].astype(np.float32)
    alpha = colour_alpha_hwc[..., -1:].astype(np.float32) / 255.0
    return np.rint(colour * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)


def _stretch_to_uint8(values_hw: np.ndarray, full_scale: float) -> np.ndarray:
    """Map the image's own min..max to 0..255 (constant image: value / full_scale)."""
    values = values_hw.astype(np.float64)
    finite = np.isfinite(values)
    values = np.where(finite, values, 0.0)
    lo, hi = (values[finite].min(), values[finite].max()) if finite.any() else (0.0, 0.0)
    if hi > lo:
        scaled = (values - lo) / (hi - lo) * 255.0
    else:
        scaled = values / full_scale * 255.0
    return np.rint(np.clip(scaled, 0.0, 255.0)).astype(np.uint8)


def _to_uint8_array(image: Image.Image) -> np.ndarray:
    """Decoded Pillow image of any mode -> uint8 (H, W, 3) RGB or (H, W, 1) grayscale."""
    mode = image.mode
    if mode in ("1", "L"):
        return np.asarray(image.convert("L"))[..., None]
    if mode in ("LA", "La"):
        return _composite_on_white(np.asarray(image.convert("LA")))
    if mode in _SIXTEEN_BIT_MODES:
        full_scale = 1.0 if mode == "F" else 65535.0
        return _stretch_to_uint8(np.asarray(image), full_scale)[..., None]
    if mode in ("P", "PA"):
        if mode == "PA" or "transparency" in image.info:
            rgb_hwc = _composite_on_white(np.asarray(image.convert("RGBA")))
        else:
            rgb_hwc = np.asarray(image.convert("RGB"))
        if (rgb_hwc[..., 0] == rgb_hwc[..., 1]).all() and (rgb_hwc[..., 1] == rgb_hwc[..., 2]).all():
            return np.ascontiguousarray(rgb_hwc[..., :1])  # all-grey palette: a grayscale image
        return rgb_hwc
    if mode in ("RGBA", "RGBa"):
        return _composite_on_white(np.asarray(image.convert("RGBA")))
    return np.asarray(image.convert("RGB"))  # RGB, RGBX, CMYK, YCbCr, HSV, ...


def load_image(source: ImageSource, *, max_pixels: int = MAX_IMAGE_PIXELS, name: str | None = None) -> np.ndarray:
    """Read an uploaded or local image into a uint8 array, safely.

    Any format Pillow reads. Applies the EXIF orientation; takes the first frame of an animated
    or multi-page file. Transparent pixels (RGBA, LA, palette transparency) are composited on
    WHITE, as a photo or drawing would be shown. 16-bit and float images are stretched from their
    own min..max to 0..255. Palette images whose colours are all grey come back as grayscale.

    Args:
        source: a path, bytes, or a binary file-like object (e.g. Streamlit's UploadedFile).
        max_pixels: largest width x height accepted, checked from the header before decoding.
        name: the file's name, used in error messages (default: taken from the source).

    Returns:
        uint8 (H, W, 3) RGB, or (H, W, 1) for grayscale images.

    Raises:
        ImageLoadError: empty, not an image, truncated or damaged, or too large.

    Example:
        >>> load_image(uploaded_file, name=uploaded_file.name).shape
        (480, 640, 3)
    """
    data, name = _read_bytes(source, name)
    if not data:
        raise ImageLoadError(f"{name} is empty (0 bytes). Choose the file again or pick another image.")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))  # reads the header only
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            # Pillow's own guard fired in the header read, before our check could see the size
            pillow_limit = (Image.MAX_IMAGE_PIXELS or 0) * (2 if isinstance(err, Image.DecompressionBombError) else 1)
            raise ImageLoadError(
                f"{name} is larger than {pillow_limit / 1e6:.3g} megapixels, refused as a possible "
                f"decompression bomb; the limit is {min(max_pixels, pillow_limit) / 1e6:.3g} megapixels. "
                f"Downscale it (for example to 4000x3000) and upload it again."
            ) from err
        except UnidentifiedImageError as err:
            head = data[:512]
            looks_text = all(b in b"\t\n\r" or 32 <= b < 127 or b >= 128 for b in head)
            what = "it looks like a text file" if looks_text else "its contents are not a known image format"
            raise ImageLoadError(
                f"{name} is not an image ConvLens can read: {what}. Upload a PNG, JPEG, GIF, BMP, TIFF or WebP file."
            ) from err
        width, height = image.size
        if width * height > max_pixels:
            raise _too_large(name, width, height, max_pixels)
        try:
            image.seek(0)  # first frame of an animation or multi-page TIFF
            image.load()
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as err:
            raise ImageLoadError(
                f"{name} could not be decoded: the file looks truncated or damaged ({err}). "
                f"Save or download it again and retry."
            ) from err
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - malformed EXIF must not reject a readable image; keep it unrotated
        pass
    try:
        return _to_uint8_array(image)
    except ValueError as err:  # a colour mode Pillow cannot convert to RGB
        raise ImageLoadError(f"{name} uses colour mode {image.mode}, which ConvLens cannot convert ({err}).") from err


# ----------------------------------------------------------------------------------------------
# Preprocessing
# ----------------------------------------------------------------------------------------------

PREPROCESS_MODES: Mapping[str, str] = MappingProxyType(
    {
        "unit": "x / 255 -> [0, 1] (ConvLens's bundled models)",
        "symmetric": "x / 127.5 - 1 -> [-1, 1] (MobileNetV2, Keras 'tf' mode)",
        "caffe": "RGB -> BGR minus the ImageNet mean, no scaling (VGG16, ResNet50)",
        "torch": "(x / 255 - ImageNet mean) / ImageNet std (Keras 'torch' mode, e.g. DenseNet)",
        "raw": "0..255 as float (EfficientNet, ConvNeXt: they rescale inside the model)",
    }
)
"""Value ranges a model may expect, name -> one-line description (for a selectbox's help)."""

_CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)
_TORCH_MEAN_RGB = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_TORCH_STD_RGB = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def is_bgr(mode: str) -> bool:
    """Whether a mode feeds the model B, G, R (its input channel 0 is blue): 'caffe'."""
    return mode == "caffe"


def _check_mode(mode: str, channels: int) -> None:
    if mode not in PREPROCESS_MODES:
        raise ValueError(f"unknown preprocessing mode {mode!r}; choose one of {', '.join(PREPROCESS_MODES)}")
    if mode in ("caffe", "torch") and channels != 3:
        raise ValueError(f"mode {mode!r} uses ImageNet RGB statistics and needs 3 channels, got {channels}")


def _to_model_range(image_hwc: np.ndarray, mode: str) -> np.ndarray:
    """uint8-valued HxWxC -> float32 in the model's range."""
    x = image_hwc.astype(np.float32)
    if mode == "unit":
        return x / 255.0
    if mode == "symmetric":
        return x / 127.5 - 1.0
    if is_bgr(mode):
        return x[..., ::-1] - _CAFFE_MEAN_BGR
    if mode == "torch":
        return (x / 255.0 - _TORCH_MEAN_RGB) / _TORCH_STD_RGB
    return x  # raw


def to_model_range(pixels: np.ndarray, mode: str) -> np.ndarray:
    """uint8-valued images (HxWxC or a batch NxHxWxC) mapped into a model's value range, float32.

    The value mapping of ``preprocess`` alone, for images already at the model's size and channels.

    Example:
        >>> to_model_range(np.full((2, 4, 4, 3), 255, np.uint8), "symmetric").max()
        1.0
    """
    x = np.asarray(pixels)
    _check_mode(mode, x.shape[-1])
    return _to_model_range(x, mode)


def deprocess(image_hwc: np.ndarray, mode: str) -> np.ndarray:
    """Map an image from a model's value range back to uint8 for display (inverse of preprocess).

    Args:
        image_hwc: float HxWxC in the range of ``mode``.
        mode: a key of ``PREPROCESS_MODES``.

    Returns:
        uint8 HxWxC in RGB order (a 'caffe' image's B, G, R channels are put back), rounded and
        clipped to 0..255.
    """
    x = np.asarray(image_hwc, dtype=np.float32)
    _check_mode(mode, x.shape[-1])
    if mode == "unit":
        x = x * 255.0
    elif mode == "symmetric":
        x = (x + 1.0) * 127.5
    elif is_bgr(mode):
        x = (x + _CAFFE_MEAN_BGR)[..., ::-1]
    elif mode == "torch":
        x = (x * _TORCH_STD_RGB + _TORCH_MEAN_RGB) * 255.0
    return np.rint(np.clip(x, 0.0, 255.0)).astype(np.uint8)


@dataclass(frozen=True, eq=False)
class Preprocessed:
    """An image ready for a model, with what was done to it.

    Attributes:
        image_hwc: float32 HxWxC in the model's value range.
        display_hwc: uint8 HxWxC, the same pixels before the value mapping (for overlays).
        notes: human-readable notices of each change made, in order.
    """

    image_hwc: np.ndarray
    display_hwc: np.ndarray
    notes: tuple[str, ...] = ()


def _border_colour(image_hwc: np.ndarray) -> np.ndarray:
    """Median colour (C,) of the outermost ring of pixels."""
    ring = np.concatenate([image_hwc[0], image_hwc[-1], image_hwc[:, 0], image_hwc[:, -1]])
    return np.median(ring, axis=0).astype(np.uint8)


def _pad_to_aspect(image_hwc: np.ndarray, target_h: int, target_w: int) -> np.ndarray:
    """Pad equally on both sides with the border colour to the aspect ratio target_w / target_h."""
    h, w, c = image_hwc.shape
    if w * target_h < h * target_w:  # too narrow
        new_h, new_w = h, max(w, round(h * target_w / target_h))
    else:
        new_h, new_w = max(h, round(w * target_h / target_w)), w
    if (new_h, new_w) == (h, w):
        return image_hwc
    canvas = np.empty((new_h, new_w, c), dtype=np.uint8)
    canvas[:] = _border_colour(image_hwc)
    top, left = (new_h - h) // 2, (new_w - w) // 2
    canvas[top : top + h, left : left + w] = image_hwc
    return canvas


def _resize(image_hwc: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pillow resize; bilinear (antialiased when shrinking, with a fast box pre-reduction)."""
    c = image_hwc.shape[-1]
    pil = Image.fromarray(image_hwc[..., 0] if c == 1 else image_hwc)
    out = np.asarray(pil.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=3.0))
    return out[..., None] if c == 1 else out


def _fit_crop(image_hwc: np.ndarray, height: int, width: int) -> np.ndarray:
    """Centre-crop to width/height's aspect ratio and resize with Lanczos (Pillow's ImageOps.fit)."""
    c = image_hwc.shape[-1]
    pil = Image.fromarray(image_hwc[..., 0] if c == 1 else image_hwc)
    out = np.asarray(ImageOps.fit(pil, (width, height), Image.Resampling.LANCZOS))
    return out[..., None] if c == 1 else out


def preprocess(
    image_hwc_uint8: np.ndarray,
    *,
    size: tuple[int | None, int | None],
    channels: int,
    mode: str = "unit",
    invert: bool = False,
    keep_aspect: bool = False,
    crop: bool = False,
) -> Preprocessed:
    """Resize, convert channels, optionally invert, and map an image into a model's value range.

    Args:
        image_hwc_uint8: uint8 (H, W, 1 or 3) or (H, W), e.g. from ``load_image``.
        size: target (height, width), as in a Keras input shape; None keeps the image's own.
        channels: the model's channels, 1 (luminance, Pillow's 'L') or 3 (grey replicated).
        mode: a key of ``PREPROCESS_MODES``.
        invert: 255 - value, e.g. for a dark-on-light digit photo fed to an MNIST model.
        keep_aspect: pad with the border colour to the target's aspect ratio (square for a
            square input) before resizing, instead of stretching.
        crop: centre-crop to the target's aspect ratio and resize with Lanczos, as Teachable
            Machine's sample code does (``ImageOps.fit``); not together with ``keep_aspect``.

    Returns:
        Preprocessed with image_hwc float32 (height, width, channels) and display_hwc uint8.

    Example:
        >>> p = preprocess(load_image("seven.jpg"), size=(28, 28), channels=1, invert=True)
        >>> p.image_hwc.shape, p.notes[0]
        ((28, 28, 1), 'converted colour image to grayscale for a 1-channel model')
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if crop and keep_aspect:
        raise ValueError("choose one of crop and keep_aspect")
    _check_mode(mode, channels)
    image_hwc = np.asarray(image_hwc_uint8)
    if image_hwc.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (use load_image), got {image_hwc.dtype}")
    if image_hwc.ndim == 2:
        image_hwc = image_hwc[..., None]
    if image_hwc.ndim != 3 or image_hwc.shape[-1] not in (1, 3):
        raise ValueError(f"image must be HxW, HxWx1 or HxWx3, got shape {image_hwc.shape}")
    notes: list[str] = []

    if channels == 1 and image_hwc.shape[-1] == 3:
        image_hwc = np.asarray(Image.fromarray(image_hwc).convert("L"))[..., None]
        notes.append("converted colour image to grayscale for a 1-channel model")

    h, w = image_hwc.shape[:2]
    target_h, target_w = size[0] or h, size[1] or w
    if crop and (h, w) != (target_h, target_w):
        image_hwc = _fit_crop(image_hwc, target_h, target_w)
        notes.append(f"centre-cropped and resized {w}x{h} to {target_w}x{target_h} (Teachable Machine's fit)")
    if keep_aspect and size[0] and size[1]:
        padded = _pad_to_aspect(image_hwc, target_h, target_w)
        if padded.shape != image_hwc.shape:
            notes.append(
                f"padded {w}x{h} to {padded.shape[1]}x{padded.shape[0]} with the border colour to keep the aspect ratio"
            )
            image_hwc = padded
    ph, pw = image_hwc.shape[:2]
    if (ph, pw) != (target_h, target_w):
        image_hwc = _resize(image_hwc, target_h, target_w)
        notes.append(f"resized {pw}x{ph} to {target_w}x{target_h}")

    if channels == 3 and image_hwc.shape[-1] == 1:
        image_hwc = np.repeat(image_hwc, 3, axis=-1)
        notes.append("repeated the grayscale channel to make RGB for a 3-channel model")

    if invert:
        image_hwc = 255 - image_hwc
        notes.append("inverted: dark digit on light background made light on dark, like MNIST")

    display_hwc = np.ascontiguousarray(image_hwc, dtype=np.uint8)
    return Preprocessed(image_hwc=_to_model_range(display_hwc, mode), display_hwc=display_hwc, notes=tuple(notes))


def looks_inverted(image_uint8: np.ndarray) -> bool:
    """Whether an image looks like a dark object on a light background (a digit photo, not MNIST).

    True when the mean of the outer border (1/8 of the shorter side wide) is brighter than the
    mean of the central half by more than one grey level. Pages use it to suggest ``invert=True``.

    Args:
        image_uint8: uint8 (H, W), (H, W, 1) or (H, W, 3).

    Returns:
        True for a dark-on-light image.
    """
    gray_hw = np.asarray(image_uint8, dtype=np.float32)
    if gray_hw.ndim == 3:
        gray_hw = gray_hw.mean(axis=-1)
    h, w = gray_hw.shape
    b = max(1, min(h, w) // 8)
    border = np.concatenate(
        [gray_hw[:b].ravel(), gray_hw[-b:].ravel(), gray_hw[b:-b, :b].ravel(), gray_hw[b:-b, -b:].ravel()]
    )
    centre = gray_hw[h // 4 : h - h // 4, w // 4 : w - w // 4]
    return bool(border.mean() > centre.mean() + 1.0)


SAMPLE_PHOTOS_DIR = Path(__file__).resolve().parent.parent / "assets" / "photos"


@functools.lru_cache(maxsize=1)
def load_sample_photos() -> Mapping[str, np.ndarray]:
    """The bundled colour photos (CC0 / public domain; see assets/README.md), offline.

    Returns:
        name -> uint8 (H, W, 3) RGB, read-only, 224 pixels on the short side; sorted by name
        ('astronaut', 'chelsea', 'coffee', 'rocket').

    Example:
        >>> load_sample_photos()["chelsea"].shape
        (224, 337, 3)
    """
    photos = {}
    for path in sorted(SAMPLE_PHOTOS_DIR.glob("*.jpg")):
        image = load_image(path)
        image.setflags(write=False)  # shared by every caller through the cache
        photos[path.stem] = image
    return MappingProxyType(photos)
