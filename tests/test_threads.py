"""Thread safety and the workers settings.

Several Python threads call convlab at once (the kernels release the GIL and run OpenMP
loops inside); every result must be bit-identical to the serial call with the same inputs
and the same workers value, and workers=None / 1 / -1 / -2 must all give the correct result.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import convlab
from _reference import (
    assert_matches,
    direct_tolerance,
    fft_tolerance,
    output_shape,
    random_array,
    reference,
)

CORES = len(os.sched_getaffinity(0))


def _jobs(rng):
    """A mix of calls: both ops, grads, all methods, 1-3 d, float32/64, complex, strides."""
    jobs = []
    specs = [
        ((300,), (17,), "same", 1, None),
        ((64, 48), (5, 7), "full", 1, None),
        ((64, 48), (5, 7), "valid", (2, 1), None),
        ((20, 18, 16), (3, 3, 3), "same", 1, None),
        ((6, 200), (1, 31), "same", 3, 1),
        ((100, 100), (20, 20), "same", 1, None),
    ]
    k = 0
    for s1, s2, mode, stride, axes in specs:
        for dtype in (np.float32, np.float64, np.complex128):
            for method in ("direct", "fft", "auto"):
                for op in ("correlate", "convolve"):
                    workers = (None, 1, 2, -1)[k % 4]
                    k += 1
                    in1 = random_array(rng, s1, dtype)
                    in2 = random_array(rng, s2, dtype)
                    jobs.append((op, (in1, in2, mode, method), dict(stride=stride, axes=axes, workers=workers)))
            if dtype != np.complex128:
                for op in ("correlate_grad", "convolve_grad"):
                    workers = (None, 1, 2, -1)[k % 4]
                    k += 1
                    in1 = random_array(rng, s1, dtype)
                    in2 = random_array(rng, s2, dtype)
                    g = random_array(rng, output_shape(s1, s2, mode, stride, axes), dtype)
                    jobs.append((op, (g, in1, in2, mode), dict(stride=stride, axes=axes, workers=workers)))
    return jobs


def _run(job):
    name, args, kwargs = job
    return getattr(convlab, name)(*args, **kwargs)


def _as_tuple(r):
    return r if isinstance(r, tuple) else (r,)


def test_thread_pool_matches_serial(rng):
    jobs = _jobs(rng)
    serial = [_run(job) for job in jobs]
    order = list(range(len(jobs))) * 3
    np.random.default_rng(0).shuffle(order)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda i: (i, _run(jobs[i])), order))
    assert len(results) == len(order)
    for i, got in results:
        for g, w in zip(_as_tuple(got), _as_tuple(serial[i])):
            assert g.dtype == w.dtype and g.shape == w.shape
            assert np.array_equal(g, w), f"job {i} ({jobs[i][0]}) differs under threads"


def test_thread_pool_results_are_correct(rng):
    """Not only self-consistent: the threaded forward results match the numpy oracle."""
    jobs = [j for j in _jobs(rng) if j[0] in ("correlate", "convolve")]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(_run, jobs))
    for (name, (in1, in2, mode, method), kw), got in zip(jobs, results):
        expected = reference(name, in1, in2, mode, stride=kw["stride"], axes=kw["axes"])
        tol = direct_tolerance(name, in1, in2, mode, stride=kw["stride"], axes=kw["axes"], dtype=got.dtype)
        if method != "direct":
            tol = tol + fft_tolerance(in1, in2, axes=kw["axes"], dtype=got.dtype)
        assert_matches(got, expected, tol)


def test_threads_sharing_the_same_input_arrays(rng):
    """Many threads reading the same (read-only) inputs at once, each with its own kernel."""
    x = random_array(rng, (80, 70), np.float64)
    x.flags.writeable = False
    kernels = [random_array(rng, (3 + i % 4, 2 + i % 3), np.float64) for i in range(16)]
    serial = [convlab.correlate(x, k, "same", "direct", workers=1) for k in kernels]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(lambda k: convlab.correlate(x, k, "same", "direct", workers=2), kernels))
    for s, t in zip(serial, threaded):
        assert np.array_equal(s, t)


@pytest.mark.parametrize("name,method", [(op, m) for op in ("correlate", "convolve") for m in ("direct", "fft", "auto")]
                         + [("correlate_grad", "auto"), ("convolve_grad", "auto")])
def test_workers_values_agree(name, method, rng):
    in1 = random_array(rng, (90, 70), np.float64)
    in2 = random_array(rng, (7, 6), np.float64)
    if name.endswith("_grad"):  # the gradients choose their own engine
        g = random_array(rng, output_shape(in1.shape, in2.shape, "same", 2), np.float64)
        call = lambda w: getattr(convlab, name)(g, in1, in2, "same", stride=2, workers=w)  # noqa: E731
        fft_tol = max(fft_tolerance(g, in2, dtype=np.float64), fft_tolerance(g, in1, dtype=np.float64))
    else:
        call = lambda w: getattr(convlab, name)(in1, in2, "same", method, stride=2, workers=w)  # noqa: E731
        fft_tol = fft_tolerance(in1, in2, dtype=np.float64)
    base = _as_tuple(call(1))
    values = [None, 1, 2, -1, -2, CORES, -CORES, 8]
    for w in values:
        for b, r in zip(base, _as_tuple(call(w))):
            assert r.dtype == b.dtype and r.shape == b.shape
            if method == "direct":
                # each output is one sum in a fixed order, whichever thread computes it
                assert np.array_equal(r, b), w
            else:
                assert_matches(r, b, 2 * fft_tol)
    if not name.endswith("_grad"):
        expected = reference(name, in1, in2, "same", stride=2)
        tol = direct_tolerance(name, in1, in2, "same", stride=2, dtype=np.float64)
        if method != "direct":
            tol = tol + fft_tolerance(in1, in2, dtype=np.float64)
        assert_matches(base[0], expected, tol)


def _resolved_threads():
    """The value the lead's resolver gives for workers=None (private, used to observe the
    default that set_workers installs)."""
    from convlab import _workers

    return _workers.resolve_workers(None)


def test_set_workers_context_manager():
    outer = _resolved_threads()
    assert outer == CORES  # default: every usable core
    x = np.arange(50.0)
    k = np.array([1.0, -2.0, 1.0])
    expected = convlab.correlate(x, k, "valid", "direct", workers=1)
    with convlab.set_workers(1) as n1:
        assert n1 == 1
        assert _resolved_threads() == 1
        assert np.array_equal(convlab.correlate(x, k, "valid", "direct"), expected)
        with convlab.set_workers(-1) as n2:
            assert n2 == CORES
            assert _resolved_threads() == CORES
            assert np.array_equal(convlab.correlate(x, k, "valid", "direct"), expected)
            with convlab.set_workers(2):
                assert _resolved_threads() == 2
            assert _resolved_threads() == CORES  # the middle value is restored
        assert _resolved_threads() == 1  # restored on exit
        # an explicit workers argument wins over the block's default
        assert np.array_equal(convlab.correlate(x, k, "valid", "direct", workers=2), expected)
    assert _resolved_threads() == outer


def test_set_workers_restored_after_exception():
    before = _resolved_threads()
    with pytest.raises(KeyError):
        with convlab.set_workers(1):
            assert _resolved_threads() == 1
            raise KeyError("boom")
    assert _resolved_threads() == before


def test_set_workers_negative_counts_back():
    with convlab.set_workers(-1):
        assert _resolved_threads() == CORES
    if CORES >= 2:
        with convlab.set_workers(-2):
            assert _resolved_threads() == CORES - 1


def test_set_workers_in_threads():
    """Each thread inside its own block sees its own value; results are correct throughout."""
    barrier = threading.Barrier(4, timeout=120)
    x = np.arange(200.0)
    k = np.ones(5)
    expected = reference("correlate", x, k, "same")
    seen = {}

    def work(n):
        with convlab.set_workers(n):
            barrier.wait()
            seen[n] = _resolved_threads()
            out = convlab.correlate(x, k, "same", "direct")
            barrier.wait()
        return out

    with ThreadPoolExecutor(max_workers=4) as pool:
        outs = list(pool.map(work, [1, 2, 3, 4]))
    for out in outs:
        assert_matches(out, expected, direct_tolerance("correlate", x, k, "same", dtype=np.float64))
    # per-thread semantics (the documented choice: a context variable; counts above the
    # usable cores are capped at them) ...
    assert seen == {n: min(n, CORES) for n in (1, 2, 3, 4)}
    # ... and the main thread's default is untouched
    assert _resolved_threads() == CORES


def test_counts_above_the_cores_are_capped():
    """SPEC §5: threads must not oversubscribe the cores; a larger count means all of them."""
    with convlab.set_workers(CORES + 3) as n:
        assert n == CORES
        assert _resolved_threads() == CORES
    with convlab.set_workers(None) as n:
        assert n == CORES


def test_small_problems_run_on_fewer_threads(monkeypatch):
    """Calls give each thread at least _WORK_PER_THREAD multiply-adds (down to one thread),
    whatever `workers` asks; with the threshold at its real value (the autouse fixture of
    conftest lifts it for the other tests) a tiny problem runs serially and a large one on
    every core asked for."""
    from convlab import _workers

    monkeypatch.setattr(_workers, "_WORK_PER_THREAD", _workers._WORK_PER_THREAD_DEFAULT)
    per_thread = _workers._WORK_PER_THREAD
    assert per_thread > 1
    assert _workers.threads_for(None, 0) == 1
    assert _workers.threads_for(None, per_thread - 1) == 1
    assert _workers.threads_for(None, 10**12) == CORES
    assert _workers.threads_for(1, 10**12) == 1
    if CORES >= 2:
        assert _workers.threads_for(None, 2 * per_thread) == 2
    with convlab.set_workers(1):
        assert _workers.threads_for(None, 10**12) == 1
    with pytest.raises(ValueError, match="workers"):
        _workers.threads_for(0, 10**12)


def _run_in_forked_child(work, timeout=60.0):
    """Exit code of ``work()`` run in a forked child (2 for an exception), or None if the
    child has not finished within `timeout` seconds (it is then killed)."""
    import time

    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 2
        try:
            code = 0 if work() else 1
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_does_not_hang():
    """After this process ran threads, a forked child (multiprocessing's default start method
    on Linux) still computes correctly instead of hanging in the OpenMP runtime; large
    results come from the child's copy of the result pool."""
    x = np.arange(2_000_000, dtype=np.float64) % 7
    k = np.array([1.0, -2.0, 1.0])
    expected = convlab.correlate(x, k, "same", "direct", workers=2)   # threads have run
    conv_x = np.ones((4, 3, 16, 16))
    conv_w = np.ones((2, 3, 3, 3))
    conv_expected = convlab.conv(conv_x, conv_w, workers=2)

    def work():
        got = convlab.correlate(x, k, "same", "direct", workers=2)
        grads = convlab.correlate_grad(np.ones_like(got), x, k, "same", workers=-1)
        layer = convlab.conv(conv_x, conv_w, workers=2)
        return (np.array_equal(got, expected) and grads[0].shape == x.shape
                and np.array_equal(layer, conv_expected))

    assert _run_in_forked_child(work) == 0
