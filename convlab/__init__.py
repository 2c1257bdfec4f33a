"""convlab: convolution and cross-correlation with exact gradients, in SciPy style.

Signal level (N-d arrays, :mod:`scipy.signal` conventions): :func:`correlate`,
:func:`convolve`, their gradients :func:`correlate_grad` and :func:`convolve_grad`, and
:func:`choose_method`. Layer level (``(N, C, *spatial)`` batches, PyTorch conventions):
:func:`conv`, its gradients :func:`conv_grad_input`, :func:`conv_grad_weight` and
:func:`conv_grad_bias`, and :func:`conv_transpose`. Utilities: :func:`set_workers`.
"""

from convlab._layers import conv, conv_grad_bias, conv_grad_input, conv_grad_weight, conv_transpose
from convlab._signal import choose_method, convolve, convolve_grad, correlate, correlate_grad
from convlab._workers import set_workers

__version__ = "0.1.0.dev0"

__all__ = [
    "correlate",
    "convolve",
    "correlate_grad",
    "convolve_grad",
    "choose_method",
    "conv",
    "conv_grad_input",
    "conv_grad_weight",
    "conv_grad_bias",
    "conv_transpose",
    "set_workers",
]
