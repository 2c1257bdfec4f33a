"""convlab: convolution and cross-correlation with exact gradients, in SciPy style.

Signal level (N-d arrays, :mod:`scipy.signal` conventions): :func:`correlate`,
:func:`convolve`, their gradients :func:`correlate_grad` and :func:`convolve_grad`, and
:func:`choose_method`. Layer level (``(N, C, *spatial)`` batches, PyTorch conventions):
:func:`conv`, its gradients :func:`conv_grad_input`, :func:`conv_grad_weight` and
:func:`conv_grad_bias`, and :func:`conv_transpose`; the unshared layers :func:`local_conv`
(locally connected) and :func:`tiled_conv` (tiled), each with its three gradients; pooling
:func:`max_pool`, :func:`avg_pool` and :func:`lp_pool` with their gradients
:func:`max_pool_grad`, :func:`avg_pool_grad` and :func:`lp_pool_grad`. Utilities: :func:`set_workers`.
"""

from convlab._layers import conv, conv_grad_bias, conv_grad_input, conv_grad_weight, conv_transpose
from convlab._unshared import (
    local_conv,
    local_conv_grad_bias,
    local_conv_grad_input,
    local_conv_grad_weight,
    tiled_conv,
    tiled_conv_grad_bias,
    tiled_conv_grad_input,
    tiled_conv_grad_weight,
)
from convlab._separable import (
    convolve_separable,
    convolve_separable_grad,
    correlate_separable,
    correlate_separable_grad,
    separable_factors,
)
from convlab._separable_layers import (
    separable_conv,
    separable_conv_backward,
    separable_conv_grad_bias,
    separable_conv_grad_input,
    separable_conv_grad_weights,
)
from convlab._pooling import (
    avg_pool,
    avg_pool_grad,
    lp_pool,
    lp_pool_grad,
    max_pool,
    max_pool_grad,
)
from convlab._signal import choose_method, convolve, convolve_grad, correlate, correlate_grad
from convlab._workers import set_workers

__version__ = "0.1.0.dev0"

__all__ = [
    "correlate",
    "convolve",
    "correlate_grad",
    "convolve_grad",
    "choose_method",
    "correlate_separable",
    "convolve_separable",
    "correlate_separable_grad",
    "convolve_separable_grad",
    "separable_factors",
    "conv",
    "conv_grad_input",
    "conv_grad_weight",
    "conv_grad_bias",
    "conv_transpose",
    "local_conv",
    "local_conv_grad_input",
    "local_conv_grad_weight",
    "local_conv_grad_bias",
    "tiled_conv",
    "tiled_conv_grad_input",
    "tiled_conv_grad_weight",
    "tiled_conv_grad_bias",
    "separable_conv",
    "separable_conv_grad_input",
    "separable_conv_grad_weights",
    "separable_conv_backward",
    "separable_conv_grad_bias",
    "max_pool",
    "avg_pool",
    "lp_pool",
    "max_pool_grad",
    "avg_pool_grad",
    "lp_pool_grad",
    "set_workers",
]
