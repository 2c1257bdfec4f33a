"""Signal-level benchmarks: convlab.correlate and correlate_grad next to their anchors.

Every class times convlab and its anchors (scipy.signal, scipy.ndimage, numpy) on the same
inputs, drawn in ``setup`` from ``numpy.random.default_rng(1234)``. The cases are those of
issue 2:

- S1: 1-D, 1,000,000 samples, 31 taps, 'same';
- S2: 2-D, 2048 x 2048, 3 x 3 kernel, 'same';
- S3: 2-D, 1024 x 1024, 15 x 15 kernel, 'same';
- S4: S2 with stride 2 (anchors: their stride-1 result sliced ``[::2, ::2]``);
- S2 gradients: correlate_grad / convolve_grad next to the forward functions.

Each case runs in float32 and float64 with ``workers`` 1 and 2 (convlab's ``workers=``).
The anchors have no ``workers`` argument (scipy.signal.correlate / oaconvolve / fftconvolve,
scipy.ndimage and numpy.convolve run on one thread), so they are timed once, at
``workers=1``; at ``workers=2`` their setup raises NotImplementedError, which asv reports as
skipped.

The methods carry metadata (see :func:`convlab_variant` and :func:`anchor`) that
``benchmarks/compare.py`` reads to build its ratio table: the label printed for each method
and the ``group`` of methods that compute the same result (compare.py checks that they agree
before timing them). Every ``time_*`` method returns its result for that check; asv ignores
it.
"""

import numpy as np
import scipy.ndimage
import scipy.signal

import convlab

DTYPES = ["float32", "float64"]
WORKERS = [1, 2]


def _single_threaded_anchor(*params):
    # asv calls every ``setup`` it finds (the class's, then the method's) with the
    # parameters; ``workers`` is always the last one.
    if params[-1] != 1:
        raise NotImplementedError("the anchor is single-threaded: timed at workers=1 only")


def convlab_variant(label, group="result"):
    """Mark a ``time_*`` method as a convlab timing called ``label`` in compare.py's table."""

    def mark(method):
        method._bench_role = "convlab"
        method._bench_label = label
        method._bench_group = group
        return method

    return mark


def anchor(label, group="result"):
    """Mark a ``time_*`` method as an anchor (timed at workers=1 only, see module docstring)."""

    def mark(method):
        method._bench_role = "anchor"
        method._bench_label = label
        method._bench_group = group
        method.setup = _single_threaded_anchor
        return method

    return mark


def _same_padding(kernel_shape):
    # scipy.signal.correlate's 'same' centring: K // 2 zeros before, (K - 1) // 2 after.
    return [(k // 2, (k - 1) // 2) for k in kernel_shape]


class _Case:
    params = [DTYPES, WORKERS]
    param_names = ["dtype", "workers"]
    timeout = 300
    case = ""
    description = ""


class _CorrelateSame(_Case):
    """convlab.correlate(x, k, 'same') by each method, on random inputs of the subclass's
    ``x_shape`` and ``k_shape`` (``k_reversed`` serves the convolution anchors)."""

    x_shape = k_shape = ()

    def setup(self, dtype, workers):
        rng = np.random.default_rng(1234)
        self.x = rng.standard_normal(self.x_shape, dtype=dtype)
        self.k = rng.standard_normal(self.k_shape, dtype=dtype)
        self.k_reversed = np.flip(self.k).copy()
        self.workers = workers

    @convlab_variant("auto")
    def time_convlab_auto(self, dtype, workers):
        return convlab.correlate(self.x, self.k, "same", workers=self.workers)

    @convlab_variant("direct")
    def time_convlab_direct(self, dtype, workers):
        return convlab.correlate(self.x, self.k, "same", method="direct", workers=self.workers)

    @convlab_variant("fft")
    def time_convlab_fft(self, dtype, workers):
        return convlab.correlate(self.x, self.k, "same", method="fft", workers=self.workers)

    # The anchors every such case has.

    @anchor("scipy.signal.correlate(fft)")
    def time_scipy_correlate_fft(self, dtype, workers):
        return scipy.signal.correlate(self.x, self.k, "same", method="fft")

    @anchor("scipy.signal.oaconvolve")
    def time_scipy_oaconvolve(self, dtype, workers):
        return scipy.signal.oaconvolve(self.x, self.k_reversed, "same")


class S1Correlate1D(_CorrelateSame):
    """S1: 1-D, 1,000,000 samples, 31 taps, 'same'."""

    case = "S1"
    description = "1-D, 1,000,000 samples, 31 taps, 'same'"

    x_shape = (1_000_000,)
    k_shape = (31,)

    @anchor("scipy.signal.correlate(direct)")
    def time_scipy_correlate_direct(self, dtype, workers):
        return scipy.signal.correlate(self.x, self.k, "same", method="direct")

    @anchor("scipy.ndimage.correlate1d")
    def time_ndimage_correlate1d(self, dtype, workers):
        return scipy.ndimage.correlate1d(self.x, self.k, mode="constant")

    @anchor("numpy.convolve")
    def time_numpy_convolve(self, dtype, workers):
        return np.convolve(self.x, self.k_reversed, "same")


class S2Correlate2D(_CorrelateSame):
    """S2: 2-D, 2048 x 2048 image, 3 x 3 kernel, 'same'."""

    case = "S2"
    description = "2-D, 2048 x 2048, 3 x 3 kernel, 'same'"

    x_shape = (2048, 2048)
    k_shape = (3, 3)

    @anchor("scipy.ndimage.correlate")
    def time_ndimage_correlate(self, dtype, workers):
        return scipy.ndimage.correlate(self.x, self.k, mode="constant")

    @anchor("scipy.signal.correlate2d")
    def time_scipy_correlate2d(self, dtype, workers):
        # correlate2d centres an even kernel differently from correlate; a 3 x 3 kernel
        # gives the same result.
        return scipy.signal.correlate2d(self.x, self.k, "same")

    @anchor("scipy.signal.correlate(direct)")
    def time_scipy_correlate_direct(self, dtype, workers):
        return scipy.signal.correlate(self.x, self.k, "same", method="direct")

    @convlab_variant("direct")
    def peakmem_convlab_direct(self, dtype, workers):
        convlab.correlate(self.x, self.k, "same", method="direct", workers=self.workers)

    @anchor("scipy.ndimage.correlate")
    def peakmem_ndimage_correlate(self, dtype, workers):
        scipy.ndimage.correlate(self.x, self.k, mode="constant")


class S3Correlate2DLarge(_CorrelateSame):
    """S3: 2-D, 1024 x 1024 image, 15 x 15 kernel, 'same'."""

    case = "S3"
    description = "2-D, 1024 x 1024, 15 x 15 kernel, 'same'"

    x_shape = (1024, 1024)
    k_shape = (15, 15)

    @anchor("scipy.signal.fftconvolve")
    def time_scipy_fftconvolve(self, dtype, workers):
        return scipy.signal.fftconvolve(self.x, self.k_reversed, "same")

    @anchor("scipy.ndimage.correlate")
    def time_ndimage_correlate(self, dtype, workers):
        return scipy.ndimage.correlate(self.x, self.k, mode="constant")


class S4Strided(_Case):
    """S4: S2 (2048 x 2048, 3 x 3, 'same') with stride 2.

    The anchors compute the stride-1 result and slice it ``[::2, ::2]``; convlab's own
    stride-1 time on the same inputs is here too, for the "stride 2 skips the skipped
    outputs" comparison.
    """

    case = "S4"
    description = "S2 with stride 2: 2048 x 2048, 3 x 3, 'same', stride=2"

    def setup(self, dtype, workers):
        rng = np.random.default_rng(1234)
        self.x = rng.standard_normal((2048, 2048), dtype=dtype)
        self.k = rng.standard_normal((3, 3), dtype=dtype)
        self.workers = workers

    @convlab_variant("direct")
    def time_convlab_direct(self, dtype, workers):
        return convlab.correlate(
            self.x, self.k, "same", method="direct", stride=2, workers=self.workers
        )

    @convlab_variant("auto")
    def time_convlab_auto(self, dtype, workers):
        return convlab.correlate(self.x, self.k, "same", stride=2, workers=self.workers)

    @convlab_variant("direct, stride 1", group="stride 1")
    def time_convlab_direct_stride1(self, dtype, workers):
        return convlab.correlate(self.x, self.k, "same", method="direct", workers=self.workers)

    @convlab_variant("auto, stride 1", group="stride 1")
    def time_convlab_auto_stride1(self, dtype, workers):
        return convlab.correlate(self.x, self.k, "same", workers=self.workers)

    @anchor("scipy.ndimage.correlate[::2,::2]")
    def time_ndimage_correlate_sliced(self, dtype, workers):
        return scipy.ndimage.correlate(self.x, self.k, mode="constant")[::2, ::2]

    @anchor("scipy.signal.correlate2d[::2,::2]")
    def time_scipy_correlate2d_sliced(self, dtype, workers):
        return scipy.signal.correlate2d(self.x, self.k, "same")[::2, ::2]


class S2Gradients(_Case):
    """Gradients on S2 (2048 x 2048, 3 x 3, 'same'), next to the forward functions.

    ``correlate_grad`` returns both gradients (input and kernel) in one call. Its anchor
    computes the same pair with SciPy: the input gradient is the adjoint of 'same'
    correlation, ``scipy.ndimage.convolve(grad_out, kernel, mode='constant')`` (odd kernel),
    and the kernel gradient is ``scipy.signal.correlate(padded input, grad_out, 'valid')``
    with the input zero-padded as 'same' pads it. ``convolve_grad``'s anchor is the mirror
    image (``ndimage.correlate`` for the input, the kernel gradient reversed).
    """

    case = "S2-grad"
    description = "gradients on S2: 2048 x 2048, 3 x 3 kernel, 'same'"

    def setup(self, dtype, workers):
        rng = np.random.default_rng(1234)
        self.x = rng.standard_normal((2048, 2048), dtype=dtype)
        self.k = rng.standard_normal((3, 3), dtype=dtype)
        self.grad_out = rng.standard_normal((2048, 2048), dtype=dtype)
        self.workers = workers

    @convlab_variant("correlate", group="correlate")
    def time_convlab_correlate(self, dtype, workers):
        return convlab.correlate(self.x, self.k, "same", workers=self.workers)

    @convlab_variant("correlate_grad", group="correlate_grad")
    def time_convlab_correlate_grad(self, dtype, workers):
        return convlab.correlate_grad(self.grad_out, self.x, self.k, "same", workers=self.workers)

    @convlab_variant("convolve", group="convolve")
    def time_convlab_convolve(self, dtype, workers):
        return convlab.convolve(self.x, self.k, "same", workers=self.workers)

    @convlab_variant("convolve_grad", group="convolve_grad")
    def time_convlab_convolve_grad(self, dtype, workers):
        return convlab.convolve_grad(self.grad_out, self.x, self.k, "same", workers=self.workers)

    @anchor("ndimage.convolve+signal.correlate", group="correlate_grad")
    def time_scipy_correlate_grad(self, dtype, workers):
        grad_x = scipy.ndimage.convolve(self.grad_out, self.k, mode="constant")
        padded = np.pad(self.x, _same_padding(self.k.shape))
        grad_k = scipy.signal.correlate(padded, self.grad_out, "valid")
        return grad_x, grad_k

    @anchor("ndimage.correlate+signal.correlate", group="convolve_grad")
    def time_scipy_convolve_grad(self, dtype, workers):
        grad_x = scipy.ndimage.correlate(self.grad_out, self.k, mode="constant")
        padded = np.pad(self.x, _same_padding(self.k.shape))
        grad_k = scipy.signal.correlate(padded, self.grad_out, "valid")[::-1, ::-1]
        return grad_x, grad_k
