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
