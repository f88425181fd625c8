"""How an image is parameterized: plain pixels, or a 1/f-scaled Fourier spectrum, with colour decorrelation.

Both produce a batch of images (N, H, W, C) in [0, 1] through a sigmoid. In Fourier space every
frequency is scaled by 1/f^decay, so gradient steps move low frequencies as much as high ones and
the result is smooth instead of high-frequency noise (Olah et al., "Feature Visualization", 2017).
With 3 channels the optimized values are decorrelated colours: multiplied by the square root of the
ImageNet colour correlation matrix (Lucid's numbers), so a step changes luminance and colour
independently. One channel needs no decorrelation.

Example:
    >>> p = FourierParam()
    >>> var = p.init(np.random.default_rng(0), 28, 28, 1)  # one image's variables
    >>> p(tf.constant(var[None]), 28, 28, 1).shape
    TensorShape([1, 28, 28, 1])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

# Lucid's square root of the ImageNet colour correlation (its SVD factor), columns normalized.
_COLOR_SVD_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float32)
COLOR_CORRELATION = _COLOR_SVD_SQRT / np.max(np.linalg.norm(_COLOR_SVD_SQRT, axis=0))


def decorrelate_colors(x_nhwc: Any) -> Any:
    """Map decorrelated colour values to RGB (3 channels); 1 or other channel counts unchanged."""
    if int(x_nhwc.shape[-1]) != 3:
        return x_nhwc
    return tf.tensordot(x_nhwc, tf.constant(COLOR_CORRELATION.T), axes=1)


def rfft2d_freqs(h: int, w: int) -> np.ndarray:
    """Spatial frequency magnitude (h, w // 2 + 1) of each bin of an rfft2d, in cycles per pixel."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    return np.sqrt(fx * fx + fy * fy).astype(np.float32)


def spectrum_scale(h: int, w: int, decay_power: float) -> np.ndarray:
    """Per-bin factor 1/f^decay (f floored at one cycle per image), times sqrt(h*w) as in Lucid."""
    freqs = np.maximum(rfft2d_freqs(h, w), 1.0 / max(h, w))
    return (np.sqrt(h * w) / freqs**decay_power).astype(np.float32)


def fourier_to_image(spectrum: Any, h: int, w: int, decay_power: float) -> Any:
    """Real/imag spectrum (N, C, h, w//2+1, 2) -> image (N, h, w, C), before colour and sigmoid."""
    scale = tf.constant(spectrum_scale(h, w, decay_power), tf.complex64)
    spec = tf.complex(spectrum[..., 0], spectrum[..., 1]) * scale
    image_nchw = tf.signal.irfft2d(spec, fft_length=[h, w]) / 4.0
    return tf.transpose(image_nchw, [0, 2, 3, 1])


def image_to_fourier(image_nhwc: Any, decay_power: float) -> Any:
    """The inverse of ``fourier_to_image``: the spectrum (N, C, h, w//2+1, 2) of an image."""
    image = tf.convert_to_tensor(image_nhwc, tf.float32)
    h, w = int(image.shape[1]), int(image.shape[2])
    spec = tf.signal.rfft2d(tf.transpose(image, [0, 3, 1, 2]) * 4.0) / tf.constant(
        spectrum_scale(h, w, decay_power), tf.complex64
    )
    return tf.stack([tf.math.real(spec), tf.math.imag(spec)], axis=-1)


@dataclass(frozen=True)
class FourierParam:
    """Image = sigmoid(colour(irfft(spectrum / f^decay_power))); variables (C, H, W//2+1, 2) per image.

    Args:
        decay_power: 1 gives Lucid's 1/f scaling; larger is smoother.
        init_std: standard deviation of the random initial spectrum.
        decorrelate: decorrelated colours for 3-channel images.
    """

    decay_power: float = 1.0
    init_std: float = 0.01
    decorrelate: bool = True
    name = "fourier"

    def init(self, rng: np.random.Generator, h: int, w: int, c: int) -> np.ndarray:
        """Initial variables of one image."""
        return (rng.standard_normal((c, h, w // 2 + 1, 2)) * self.init_std).astype(np.float32)

    def __call__(self, variables: Any, h: int, w: int, c: int) -> Any:
        image = fourier_to_image(variables, h, w, self.decay_power)
        return tf.sigmoid(decorrelate_colors(image) if self.decorrelate else image)


@dataclass(frozen=True)
class PixelParam:
    """Image = sigmoid(colour(pixels)); variables (H, W, C) per image.

    Args:
        init_std: standard deviation of the random initial pixels.
        decorrelate: decorrelated colours for 3-channel images.
    """

    init_std: float = 0.01
    decorrelate: bool = True
    name = "pixel"

    def init(self, rng: np.random.Generator, h: int, w: int, c: int) -> np.ndarray:
        """Initial variables of one image."""
        return (rng.standard_normal((h, w, c)) * self.init_std).astype(np.float32)

    def __call__(self, variables: Any, h: int, w: int, c: int) -> Any:
        return tf.sigmoid(decorrelate_colors(variables) if self.decorrelate else variables)


@dataclass(frozen=True)
class TiledParam:
    """A periodic image: one ``period`` x ``period`` tile of ``inner``, repeated to fill H x W.

    An early layer's filter is a texture; optimized as a tile, the image stays seamless however
    far it is tiled (to the model's input, say), and every copy of a pixel adds its gradient.
    With a FourierParam inside, the spectrum is the tile's own: the Fourier basis is periodic.

    Args:
        inner: the parameterization of the tile (FourierParam or PixelParam).
        period: the tile's side in pixels (a multiple of the layer's stride keeps units in phase).
    """

    inner: FourierParam | PixelParam = PixelParam()
    period: int = 32
    name = "tiled"

    @property
    def decorrelate(self) -> bool:
        return self.inner.decorrelate

    def init(self, rng: np.random.Generator, h: int, w: int, c: int) -> np.ndarray:
        """Initial variables of one image: those of its tile."""
        return self.inner.init(rng, self.period, self.period, c)

    def __call__(self, variables: Any, h: int, w: int, c: int) -> Any:
        p = self.period
        tile = self.inner(variables, p, p, c)
        return tf.tile(tile, [1, -(-h // p), -(-w // p), 1])[:, :h, :w]


Param = FourierParam | PixelParam | TiledParam
