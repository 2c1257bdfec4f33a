"""convlab: convolution and cross-correlation with exact gradients, in SciPy style.

Signal level (N-d arrays, :mod:`scipy.signal` conventions): :func:`correlate`,
:func:`convolve`, their gradients :func:`correlate_grad` and :func:`convolve_grad`, and
:func:`choose_method`. Utilities: :func:`set_workers`.
"""

from convlab._signal import choose_method, convolve, convolve_grad, correlate, correlate_grad
from convlab._workers import set_workers

__version__ = "0.1.0.dev0"

__all__ = [
    "correlate",
    "convolve",
    "correlate_grad",
    "convolve_grad",
    "choose_method",
    "set_workers",
]
