"""The pool that recycles large result buffers (convlab._kernels._memory).

Results are allocated through a numpy memory handler of convlab's; these tests check that
such arrays behave as any numpy array (resize, pickle, views that outlive the result,
threads) and that the pool's limits hold.
"""

import pickle
import sys
import threading

import numpy as np
import pytest

import convlab
from convlab._kernels import _memory

BIG = _memory.MIN_POOLED_BYTES // 8 + 1024  # float64 elements of a block the pool keeps


@pytest.fixture
def fresh_pool():
    previous = _memory.set_limit(0)          # empty the pool ...
    _memory.set_limit(previous)              # ... and restore its limit
    yield previous
    _memory.set_limit(0)
    _memory.set_limit(previous)


def _owner(array):
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def _address(array):
    return array.__array_interface__["data"][0]


def test_results_use_the_handler_and_freed_blocks_are_reused(fresh_pool):
    x = np.ones(BIG)
    y = convlab.correlate(x, np.ones(1), "same", "direct")
    assert np._core.multiarray.get_handler_name(_owner(y)) == "convlab_result_pool"
    where = _address(y)
    del y
    assert _memory.pooled_bytes() >= BIG * 8
    z = convlab.correlate(x, np.full(1, 2.0), "same", "direct")
    assert _address(z) == where            # the same block, taken from the pool
    assert _memory.pooled_bytes() == 0
    np.testing.assert_array_equal(z, 2.0)   # and fully overwritten


def test_reused_block_holds_the_new_result_only(fresh_pool, rng):
    x = rng.standard_normal(BIG)
    first = convlab.correlate(x, np.array([1.0, -1.0]), "valid", "direct")
    expected_first = x[1:] - x[:-1]
    np.testing.assert_allclose(first, -expected_first, rtol=1e-15, atol=0)
    del first
    second = convlab.correlate(x, np.array([0.5, 0.5]), "valid", "direct")
    np.testing.assert_allclose(second, 0.5 * (x[1:] + x[:-1]), rtol=1e-15, atol=0)


def test_small_results_bypass_the_pool(fresh_pool):
    y = convlab.correlate(np.ones(100), np.ones(3), "same", "direct")
    del y
    assert _memory.pooled_bytes() == 0


def test_resize_pickle_and_views_outliving_the_result(fresh_pool):
    y = _memory.empty((BIG,), np.float64)
    y[:] = np.arange(BIG)
    y.resize((2 * BIG,), refcheck=False)     # realloc through the handler
    assert y.shape == (2 * BIG,)
    np.testing.assert_array_equal(y[:BIG], np.arange(BIG))
    y[BIG:] = -1
    restored = pickle.loads(pickle.dumps(y))
    np.testing.assert_array_equal(restored, y)
    view = y[10:20]
    del y
    np.testing.assert_array_equal(view, np.arange(10, 20))
    del view
    assert _memory.pooled_bytes() > 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mappings of their own on Linux")
def test_large_blocks_are_aligned_mappings_and_shrink_or_grow(fresh_pool):
    """On Linux a large block is a mapping of its own, aligned to 2 MiB (transparent huge
    pages), the data starting one 64-byte header in; resizing a large array to a small one
    and back moves the data between a mapping and malloc's heap."""
    huge = 2 << 20
    y = _memory.empty((BIG,), np.float64)
    assert _address(y) % huge == 64
    y[:] = np.arange(BIG)
    y.resize((10,), refcheck=False)
    np.testing.assert_array_equal(y, np.arange(10))
    y.resize((3 * BIG,), refcheck=False)
    assert _address(y) % huge == 64
    np.testing.assert_array_equal(y[:10], np.arange(10))
    del y


def test_limit_is_respected_and_zero_disables(fresh_pool):
    _memory.set_limit(0)
    y = _memory.empty((BIG,), np.float64)
    del y
    assert _memory.pooled_bytes() == 0
    _memory.set_limit(BIG * 8 + 64)
    blocks = [_memory.empty((BIG,), np.float64) for _ in range(3)]
    del blocks
    assert 0 < _memory.pooled_bytes() <= BIG * 8 + 64


def test_a_pool_full_of_other_sizes_makes_room(fresh_pool):
    """Blocks of sizes no longer asked for do not keep new sizes out: the one given back
    longest ago is released, the new block is kept and reused."""
    old_size = 2 * BIG
    stale = [_memory.empty((old_size,), np.float64) for _ in range(_memory.POOL_SLOTS)]
    del stale                                   # the pool is full of blocks of old_size
    assert _memory.pooled_bytes() >= _memory.POOL_SLOTS * old_size * 8
    y = _memory.empty((BIG,), np.float64)       # too small to take an old block
    where = _address(y)
    del y                                       # kept, in place of the oldest block
    z = _memory.empty((BIG,), np.float64)
    assert _address(z) == where
    assert _memory.pooled_bytes() <= _memory.POOL_SLOTS * old_size * 8


def test_threads_allocating_and_freeing_together(fresh_pool):
    errors = []

    def work(seed):
        local = np.random.default_rng(seed)
        try:
            for _ in range(30):
                n = int(local.integers(BIG // 2, 2 * BIG))
                a = _memory.empty((n,), np.float64)
                a.fill(seed)
                b = _memory.empty((n // 3,), np.float64)
                b.fill(-seed)
                if not (np.all(a == seed) and np.all(b == -seed)):
                    errors.append(seed)
                del a, b
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
