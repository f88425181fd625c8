"""One output number explained: the convolution, pooling or activation step by step.

``conv_detail`` takes the layer's real input (the previous layer's output for this image), cuts
out the window that one output position sees, and recomputes that output by hand: element-wise
products, their sum, the bias, the activation. Its ``feature_map_value`` is read from the real
feature map, so the two can be compared (they agree to float rounding). Padding follows
TensorFlow: 'valid' uses no padding; 'same' pads ``pad_total = max((out - 1) * stride +
(k - 1) * dilation + 1 - in, 0)`` zeros, ``pad_total // 2`` before and the rest after.

Modules: ``window`` (the layer's input and output for one image, cached; the window geometry),
``conv``, ``pool``, ``activation`` (one detail each, and ``detail_layers``).

Example:
    >>> d = conv_detail(mnist_cnn, "conv2", image_hwc, channel=5, y=3, x=7)
    >>> d.input_patch.shape, d.activation, d.error < 1e-5
    ((3, 3, 32), 'relu', True)
"""

from vizcore.inspect.convdetail.activation import ActivationDetail, activation_detail, detail_layers
from vizcore.inspect.convdetail.conv import ConvDetail, conv_detail
from vizcore.inspect.convdetail.pool import PoolDetail, pool_detail

__all__ = [
    "ActivationDetail",
    "ConvDetail",
    "PoolDetail",
    "activation_detail",
    "conv_detail",
    "detail_layers",
    "pool_detail",
]
