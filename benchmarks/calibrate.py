"""Fit the constants of convlab's method='auto' cost model on this machine.

    python benchmarks/calibrate.py

times the direct and FFT engines on one core over a grid of shapes and prints the per-unit
seconds to copy into ``convlab/_methods.py`` (``_DIRECT_SECONDS`` and ``_FFT_SECONDS``),
followed by how often the fitted model picks the faster method on the grid.
"""

import time

import numpy as np

from convlab import _methods
from convlab._shapes import signal_axis_geometry

CASES = [
    ((1_000_000,), (3,)), ((1_000_000,), (31,)), ((200_000,), (255,)), ((100_000,), (1001,)),
    ((2048, 2048), (3, 3)), ((1024, 1024), (7, 7)), ((1024, 1024), (15, 15)),
    ((512, 512), (31, 31)), ((256, 256), (63, 63)), ((128, 128), (9, 9)),
    ((64, 64, 64), (3, 3, 3)), ((64, 64, 64), (7, 7, 7)), ((48, 48, 48), (13, 13, 13)),
    ((4096,), (4096,)), ((64, 64), (64, 64)),
]


def median_seconds(fn, repeat=5):
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _nonnegative_lstsq(design, target):
    from scipy.optimize import nnls

    return nnls(design, target)[0]


def geometry(shape_a, shape_k):
    offsets, lengths = zip(*(signal_axis_geometry(n, k, "same") for n, k in zip(shape_a, shape_k)))
    ones = (1,) * len(shape_a)
    return list(offsets), list(lengths), ones, ones


def main():
    rng = np.random.default_rng(1234)
    for dtype in (np.float32, np.float64):
        rows = []
        for shape_a, shape_k in CASES:
            a = rng.standard_normal(shape_a).astype(dtype)
            k = rng.standard_normal(shape_k).astype(dtype)
            offsets, lengths, strides, dilations = geometry(shape_a, shape_k)
            args = (offsets, lengths, strides, dilations, np.dtype(dtype), 1)
            t_direct = median_seconds(lambda: _methods.direct_correlate(a, k, *args))
            t_fft = median_seconds(lambda: _methods.fft_correlate(a, k, *args))
            work = _methods.direct_work(a.shape, k.shape, offsets, lengths, strides, dilations)
            units = _methods.fft_work(a.shape, k.shape, offsets, lengths, strides, dilations, True)
            rows.append((shape_a, shape_k, work, units, t_direct, t_fft))
        work = np.array([r[2] for r in rows], float)
        units = np.array([r[3] for r in rows], float)
        t_direct = np.array([r[4] for r in rows])
        t_fft = np.array([r[5] for r in rows])
        # Relative least squares (every case counts alike, whatever its size), non-negative.
        design = work / t_direct[:, None]
        coefficients = _nonnegative_lstsq(design, np.ones(len(rows)))
        per_unit = float(np.median(t_fft / units))
        name = np.dtype(dtype).char
        fitted = ", ".join(f"{c:.3g}" for c in coefficients)
        print(f"dtype {np.dtype(dtype).name}: direct ({fitted}) fft {per_unit:.3g}"
              f"   [_DIRECT_SECONDS[{name!r}], _FFT_SECONDS[{name!r}]]")
        for (shape_a, shape_k, *_), td, tf in zip(rows, t_direct, t_fft):
            choice = _methods.choose(shape_a, shape_k, *geometry(shape_a, shape_k), dtype)
            best = "direct" if td <= tf else "fft"
            chosen_time = td if choice == "direct" else tf
            print(f"  {str(shape_a):>18} {str(shape_k):>14} direct {td * 1e3:9.2f} ms "
                  f"fft {tf * 1e3:9.2f} ms  auto->{choice:6} (best {best}, "
                  f"{chosen_time / min(td, tf):.2f}x the best)")


if __name__ == "__main__":
    main()
