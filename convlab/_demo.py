"""The demo behind ``python -m convlab``: what the library computes, checked as it goes.

Every number printed next to a convlab result comes from an independent computation
(:mod:`scipy.signal`, slicing, finite differences, sums written out by hand), so the demo doubles as a smoke test of
the installed build.
"""

import time

import numpy as np
import scipy.signal

import convlab
from convlab._kernels import _direct
from convlab._workers import resolve_workers


def _row(cells, widths):
    return "  ".join(str(cell).rjust(width) for cell, width in zip(cells, widths))


def _table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = [_row(header, widths), _row(["-" * w for w in widths], widths)]
    lines += [_row(r, widths) for r in rows]
    return "\n".join(lines)


def _fmt(values):
    return np.array2string(np.asarray(values), precision=3, suppress_small=True, separator=", ")


def _section(title):
    print()
    print(title)
    print("=" * len(title))


def _median_seconds(function, repeats):
    function()  # warm up: page in the output, start the thread pool
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def correlate_vs_convolve():
    _section("1. Correlation vs convolution")
    x = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    k = np.array([1.0, 0.0, -1.0])
    print(f"in1 = {_fmt(x)}")
    print(f"in2 = {_fmt(k)}   (a difference kernel)")
    rows = []
    for name in ("correlate", "convolve"):
        ours = getattr(convlab, name)(x, k, mode="full")
        theirs = getattr(scipy.signal, name)(x, k, mode="full", method="direct")
        rows.append([name, _fmt(ours), "yes" if np.allclose(ours, theirs) else "NO"])
    print(_table(["function", "convlab, mode='full'", "== scipy.signal"], rows))
    print("convolve flips the kernel: convolve(x, k) == correlate(x, k[::-1]).")


def modes_and_sizes():
    _section("2. The three modes (N = 8 samples, K = 3 taps)")
    x = np.arange(8.0)
    k = np.array([1.0, 2.0, 1.0]) / 4
    rows = []
    rule = {"full": "N + K - 1", "same": "N", "valid": "N - K + 1"}
    for mode in ("full", "same", "valid"):
        out = convlab.correlate(x, k, mode=mode)
        same_as_scipy = np.allclose(out, scipy.signal.correlate(x, k, mode=mode))
        rows.append([repr(mode), rule[mode], out.shape[0], _fmt(out),
                     "yes" if same_as_scipy else "NO"])
    print(_table(["mode", "size rule", "size", "result", "== scipy.signal"], rows))


def strided():
    _section("3. A strided result (stride=2 computes only the kept outputs)")
    x = np.arange(10.0) ** 2
    k = np.array([1.0, -2.0, 1.0])
    full = convlab.correlate(x, k, mode="valid")
    every_other = convlab.correlate(x, k, mode="valid", stride=2)
    print(f"correlate(x, k, 'valid')           = {_fmt(full)}")
    print(f"correlate(x, k, 'valid', stride=2) = {_fmt(every_other)}")
    print(f"equal to the stride-1 result[::2]: {np.array_equal(every_other, full[::2])}")


def gradient_check():
    _section("4. Gradients: correlate_grad vs central finite differences")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, 7))
    k = rng.standard_normal((3, 2))
    stride = (2, 1)
    g = rng.standard_normal(convlab.correlate(x, k, "same", stride=stride).shape)

    def loss(a, b):
        # <correlate(a, b), g>: its gradient is exactly what correlate_grad returns
        return float(np.sum(convlab.correlate(a, b, "same", stride=stride) * g))

    grad_x, grad_k = convlab.correlate_grad(g, x, k, "same", stride=stride)
    step = 1e-6
    rows = []
    for name, array, analytic in (("in1", x, grad_x), ("in2", k, grad_k)):
        numeric = np.empty_like(array)
        for index in np.ndindex(array.shape):
            plus, minus = array.copy(), array.copy()
            plus[index] += step
            minus[index] -= step
            args_plus = (plus, k) if name == "in1" else (x, plus)
            args_minus = (minus, k) if name == "in1" else (x, minus)
            numeric[index] = (loss(*args_plus) - loss(*args_minus)) / (2 * step)
        error = np.max(np.abs(numeric - analytic)) / np.max(np.abs(analytic))
        rows.append([f"d loss / d {name}", str(array.shape), f"{error:.1e}",
                     "yes" if error < 1e-6 else "NO"])
    print("loss = sum(correlate(in1, in2, 'same', stride=(2, 1)) * G), G random")
    print(_table(["gradient", "shape", "max relative error", "agrees"], rows))


def unshared_layers():
    _section("5. Unshared layers: a filter bank per location, or per tile position")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 1, 5))               # (N, C, in): two signals of 5 samples
    w_local = rng.standard_normal((1, 4, 1, 2))      # (F, *out, C, *k): 4 locations, 2 taps
    y = convlab.local_conv(x, w_local)
    # independently: each location's window dotted with that location's own kernel
    windows = np.stack([x[:, 0, o:o + 2] for o in range(4)], axis=1)   # (N, out, k)
    by_hand = np.einsum("nok,ok->no", windows, w_local[0, :, 0])[:, None]
    w_tiled = rng.standard_normal((1, 2, 1, 2))      # (F, *tiles, C, *k): 2 alternating kernels
    rows = [
        ["local_conv(x, w), w (1, 4, 1, 2)", _fmt(y[0, 0]),
         "yes" if np.allclose(y, by_hand) else "NO"],
        ["tiled_conv, tiles = 2", _fmt(convlab.tiled_conv(x, w_tiled)[0, 0]),
         "yes" if np.allclose(convlab.tiled_conv(x, w_tiled),
                              convlab.local_conv(x, w_tiled[:, [0, 1, 0, 1]])) else "NO"],
        ["tiled_conv, tiles = 1", _fmt(convlab.tiled_conv(x, w_tiled[:, :1])[0, 0]),
         "yes" if np.allclose(convlab.tiled_conv(x, w_tiled[:, :1]),
                              convlab.conv(x, w_tiled[:, 0])) else "NO"],
    ]
    print(_table(["call", "first signal", "== by hand / local_conv / conv"], rows))
    print("tiled_conv with tiles = 2 uses kernels 0, 1, 0, 1 along the output; tiles = 1 is conv.")


def timing():
    _section("6. Speed against scipy.signal (2-D image, 'same')")
    rng = np.random.default_rng(1234)
    threads = resolve_workers(None)
    rows = []
    for dtype, image_shape, kernel_shape in ((np.float32, (1024, 1024), (3, 3)),
                                             (np.float64, (1024, 1024), (3, 3))):
        image = rng.standard_normal(image_shape).astype(dtype)
        kernel = rng.standard_normal(kernel_shape).astype(dtype)
        ours = _median_seconds(lambda: convlab.correlate(image, kernel, "same"), 7)
        theirs = _median_seconds(lambda: scipy.signal.correlate(image, kernel, "same"), 7)
        agree = np.allclose(convlab.correlate(image, kernel, "same"),
                            scipy.signal.correlate(image, kernel, "same"),
                            rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-4 if dtype == np.float32 else 1e-10)
        rows.append([np.dtype(dtype).name, "x".join(map(str, image_shape)),
                     "x".join(map(str, kernel_shape)), f"{ours * 1e3:.2f}", f"{theirs * 1e3:.2f}",
                     f"{theirs / ours:.1f}x", "yes" if agree else "NO"])
    print(_table(["dtype", "image", "kernel", "convlab ms", "scipy.signal ms", "speed-up",
                  "same result"], rows))
    openmp = "OpenMP" if _direct.openmp_enabled() else "serial build"
    print(f"Medians of 7 runs, {threads} thread(s) ({openmp}); scipy.signal.correlate with its "
          "default method='auto'.")
    print("For the full comparison: python benchmarks/compare.py")


def main():
    print(f"convlab {convlab.__version__}: convolution and correlation with exact gradients")
    correlate_vs_convolve()
    modes_and_sizes()
    strided()
    gradient_check()
    unshared_layers()
    timing()
