"""Separable benchmarks: convlab.correlate_separable next to its anchors (issue 5).

P1: a 2048 x 2048 image and a 31 x 31 Gaussian (sigma 5), 'same', as two 31-tap passes:

- "scipy.ndimage.correlate1d x2": the fastest direct anchor, one pass per axis with zero
  extension (``mode='constant'``), the same result as convlab's;
- "scipy.signal.fftconvolve (dense)": the fastest anchor overall, with the dense 31 x 31
  kernel (symmetric, so convolution and correlation agree);
- "scipy.signal.sepfir2d": SciPy's own separable filter. It extends the image by mirror
  symmetry rather than by zeros, so it is compared on the interior only (15 samples from
  every edge), next to convlab's result cropped the same way (a view: no extra work).

float32 and float64, ``workers`` 1 and 2; the scipy anchors are single-threaded and timed at
``workers=1`` only, as in ``bench_signal.py``.
"""

import numpy as np
import scipy.ndimage
import scipy.signal

import convlab

from .bench_layers import torch_anchor
from .bench_signal import DTYPES, WORKERS, anchor, convlab_variant

SIZE = 2048
TAPS = 31
SIGMA = 5.0
EDGE = TAPS // 2


def _gaussian(dtype):
    t = np.arange(TAPS) - EDGE
    g = np.exp(-t**2 / (2 * SIGMA**2))
    return (g / g.sum()).astype(dtype)


class P1SeparableGaussian:
    """P1: 2048 x 2048 image, 31 x 31 Gaussian, 'same'."""

    params = [DTYPES, WORKERS]
    param_names = ["dtype", "workers"]
    timeout = 300
    case = "P1"
    description = "2048 x 2048, 31 x 31 Gaussian as 31 + 31 taps, 'same'"

    def setup(self, dtype, workers):
        rng = np.random.default_rng(1234)
        self.x = rng.standard_normal((SIZE, SIZE)).astype(dtype)
        self.g = _gaussian(dtype)
        self.dense = np.outer(self.g, self.g)
        self.workers = workers

    @convlab_variant("separable")
    def time_convlab_separable(self, dtype, workers):
        return convlab.correlate_separable(self.x, [self.g, self.g], "same", workers=workers)

    @anchor("scipy.ndimage.correlate1d x2")
    def time_ndimage_correlate1d(self, dtype, workers):
        once = scipy.ndimage.correlate1d(self.x, self.g, axis=0, mode="constant")
        return scipy.ndimage.correlate1d(once, self.g, axis=1, mode="constant")

    @anchor("scipy.signal.fftconvolve (dense)")
    def time_fftconvolve_dense(self, dtype, workers):
        return scipy.signal.fftconvolve(self.x, self.dense, mode="same")

    @convlab_variant("separable, interior", group="interior")
    def time_convlab_separable_interior(self, dtype, workers):
        y = convlab.correlate_separable(self.x, [self.g, self.g], "same", workers=workers)
        return y[EDGE:-EDGE, EDGE:-EDGE]

    @anchor("scipy.signal.sepfir2d", group="interior")
    def time_sepfir2d(self, dtype, workers):
        return scipy.signal.sepfir2d(self.x, self.g, self.g)[EDGE:-EDGE, EDGE:-EDGE]


class P2AutoDetects:
    """P2: P1 through ``correlate(x, dense_kernel, 'same')`` with method='auto', which must
    find the separable kernel; next to P1's explicit passes."""

    params = [DTYPES, WORKERS]
    param_names = ["dtype", "workers"]
    timeout = 300
    case = "P2"
    description = "P1 through correlate(method='auto') with the dense 31 x 31 kernel"

    def setup(self, dtype, workers):
        P1SeparableGaussian.setup(self, dtype, workers)

    @convlab_variant("auto, dense kernel")
    def time_convlab_auto(self, dtype, workers):
        return convlab.correlate(self.x, self.dense, "same", workers=workers)

    @convlab_variant("separable")
    def time_convlab_separable(self, dtype, workers):
        return convlab.correlate_separable(self.x, [self.g, self.g], "same", workers=workers)


LAYER_N, LAYER_C, LAYER_SIZE, LAYER_F, LAYER_K = 32, 32, 64, 32, 7


class P3SeparableLayer:
    """P3: separable_conv, N=32, C=32, 64 x 64, F=32, 7 x 7 (factors 7 + 7), forward and
    forward + gradients (three gradient calls, or the fused ``separable_conv_backward``),
    next to convlab's own dense ``conv`` and PyTorch's dense ``conv2d`` with the
    outer-product kernel. The methods return the output and the input
    gradient (the weight gradients differ in shape between the separable and the dense
    layers; they are computed and timed, not compared)."""

    params = [DTYPES, WORKERS]
    param_names = ["dtype", "workers"]
    timeout = 600
    case = "P3"
    description = "separable_conv N=32, C=32, 64 x 64, F=32, 7 x 7 vs dense conv / torch conv2d"

    def setup(self, dtype, workers):
        from .bench_layers import _import_torch

        rng = np.random.default_rng(1234)
        shape = (LAYER_N, LAYER_C, LAYER_SIZE, LAYER_SIZE)
        self.x = rng.standard_normal(shape).astype(dtype)
        self.ws = [rng.standard_normal((LAYER_F, LAYER_C, LAYER_K)).astype(dtype)
                   for _ in range(2)]
        self.dense = np.ascontiguousarray(self.ws[0][..., None] * self.ws[1][:, :, None, :])
        out = LAYER_SIZE - LAYER_K + 1
        self.grad_out = rng.standard_normal((LAYER_N, LAYER_F, out, out)).astype(dtype)
        self.workers = workers
        torch = self.torch = _import_torch()
        if torch is not None:
            torch.set_num_threads(workers)
            self.tx_leaf = torch.from_numpy(self.x).requires_grad_()
            self.tw_leaf = torch.from_numpy(self.dense).requires_grad_()
            self.tgrad_out = torch.from_numpy(self.grad_out)

    @convlab_variant("separable, forward", group="forward")
    def time_convlab_separable_forward(self, dtype, workers):
        return convlab.separable_conv(self.x, self.ws, workers=workers)

    @convlab_variant("dense conv, forward", group="forward")
    def time_convlab_dense_forward(self, dtype, workers):
        return convlab.conv(self.x, self.dense, workers=workers)

    @convlab_variant("separable, forward + grads", group="forward + grads")
    def time_convlab_separable_step(self, dtype, workers):
        y = convlab.separable_conv(self.x, self.ws, workers=workers)
        gx = convlab.separable_conv_grad_input(self.grad_out, self.ws, self.x.shape,
                                               workers=workers)
        convlab.separable_conv_grad_weights(self.grad_out, self.x, self.ws, workers=workers)
        return y, gx

    @convlab_variant("separable, forward + backward", group="forward + grads")
    def time_convlab_separable_backward(self, dtype, workers):
        # what a training step calls: the input and factor gradients in one call, which
        # shares the output gradient's pass along H between them
        y = convlab.separable_conv(self.x, self.ws, workers=workers)
        gx, _ = convlab.separable_conv_backward(self.grad_out, self.x, self.ws, workers=workers)
        return y, gx

    @convlab_variant("dense conv, forward + grads", group="forward + grads")
    def time_convlab_dense_step(self, dtype, workers):
        y = convlab.conv(self.x, self.dense, workers=workers)
        gx = convlab.conv_grad_input(self.grad_out, self.dense, self.x.shape, workers=workers)
        convlab.conv_grad_weight(self.grad_out, self.x, self.dense.shape, workers=workers)
        return y, gx

    @torch_anchor("torch conv2d (dense), forward", group="forward")
    def time_torch_dense_forward(self, dtype, workers):
        torch = self.torch
        with torch.no_grad():
            return torch.nn.functional.conv2d(torch.from_numpy(self.x),
                                              torch.from_numpy(self.dense)).numpy()

    @torch_anchor("torch conv2d (dense), autograd", group="forward + grads")
    def time_torch_dense_step(self, dtype, workers):
        x, w = self.tx_leaf, self.tw_leaf
        x.grad = w.grad = None
        y = self.torch.nn.functional.conv2d(x, w)
        y.backward(self.tgrad_out)
        return y.detach().numpy(), x.grad.numpy()
