"""Pooling against PyTorch (skipped when torch is not installed).

- ``max_pool`` / ``max_pool_grad``: ``F.max_pool1d/2d/3d`` and autograd (PyTorch's rule for
  ties is convlab's: the first maximum in row-major window order). On data without NaN only:
  PyTorch's gradient goes to a window's *last* NaN, SPEC's to its first.
- ``avg_pool`` / ``avg_pool_grad``: ``F.avg_pool1d/2d/3d`` with ``count_include_pad`` both
  ways, and autograd.
- ``lp_pool`` / ``lp_pool_grad``: ``F.lp_pool1d/2d/3d`` and autograd where the definitions
  agree: PyTorch raises the samples themselves to the power p (not their absolute values)
  and has no padding, so positive samples, no padding, finite p.

The forward maximum is a sample: compared exactly. Sums are compared with twice the bound
``c * n * eps * sum |terms|`` (both sides round).
"""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
TF = pytest.importorskip("torch.nn.functional")

import convlab  # noqa: E402
from _pooling_reference import avg_pool_ref, geometry, output_shape  # noqa: E402

MAX = {1: TF.max_pool1d, 2: TF.max_pool2d, 3: TF.max_pool3d}
AVG = {1: TF.avg_pool1d, 2: TF.avg_pool2d, 3: TF.avg_pool3d}
LP = {1: TF.lp_pool1d, 2: TF.lp_pool2d, 3: TF.lp_pool3d}
FLOATS = (np.float32, np.float64)
DTYPE_ID = lambda t: np.dtype(t).name  # noqa: E731

IN = {1: (17,), 2: (10, 13), 3: (6, 7, 9)}
CONFIGS = {
    1: [(2, None, 0), (3, 1, 1), (3, 2, 1), (2, 3, 0), (5, 2, 2)],
    2: [(2, None, 0), ((3, 2), (1, 2), (1, 1)), (3, 2, 1), ((2, 3), (3, 4), (1, 0))],
    3: [(2, None, 0), ((1, 2, 2), (2, 2, 2), 0), ((3, 2, 2), (1, 2, 1), (1, 1, 0)), (2, 3, 1)],
}
CASES = [(d, i) for d in (1, 2, 3) for i in range(len(CONFIGS[d]))]
CASE_ID = lambda case: f"d{case[0]}-{CONFIGS[case[0]][case[1]]}"  # noqa: E731


# torch on one thread while this module runs (conftest.py)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _torch_kw(d, size, stride, padding):
    sizes, strides, pads, _ = geometry((1, 1) + (1,) * d, size, stride, padding)
    return dict(kernel_size=sizes, stride=strides, padding=pads)


def _autograd(function, x, G, **kw):
    """(output, input gradient) of a PyTorch function, by autograd."""
    leaf = torch.from_numpy(x.copy()).requires_grad_()
    y = function(leaf, **kw)
    y.backward(torch.from_numpy(G))
    return y.detach().numpy(), leaf.grad.numpy()


def _overlaps(x_shape, size, stride):
    sizes, strides, _, _ = geometry(x_shape, size, stride)
    return math.prod(-(-k // s) for k, s in zip(sizes, strides))


def _assert_within(got, want, tol):
    assert got.shape == want.shape
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    assert np.all(err <= tol), float(np.max(err - tol))


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("case", CASES, ids=CASE_ID)
def test_max_pool_matches_torch(case, dtype, rng):
    d, i = case
    size, stride, padding = CONFIGS[d][i]
    for x in (rng.standard_normal((2, 3) + IN[d]).astype(dtype),
              rng.integers(-2, 3, (2, 3) + IN[d]).astype(dtype)):     # ties
        G = rng.standard_normal(output_shape(x.shape, size, stride, padding)).astype(dtype)
        want, want_dx = _autograd(MAX[d], x, G, **_torch_kw(d, size, stride, padding))
        y = convlab.max_pool(x, size, stride=stride, padding=padding)
        assert y.dtype == want.dtype and np.array_equal(y, want)
        dx = convlab.max_pool_grad(G, x, size, stride=stride, padding=padding)
        n = _overlaps(x.shape, size, stride)
        _, bound = _autograd(MAX[d], x, np.abs(G), **_torch_kw(d, size, stride, padding))
        _assert_within(dx, want_dx, 2 * n * np.finfo(dtype).eps * bound)
        if n == 1:   # every sample is in one window at most: nothing is summed
            assert np.array_equal(dx, want_dx)


@pytest.mark.parametrize("include", [True, False], ids=["count_pad", "no_count_pad"])
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("case", CASES, ids=CASE_ID)
def test_avg_pool_matches_torch(case, dtype, include, rng):
    d, i = case
    size, stride, padding = CONFIGS[d][i]
    x = rng.standard_normal((2, 3) + IN[d]).astype(dtype)
    G = rng.standard_normal(output_shape(x.shape, size, stride, padding)).astype(dtype)
    kw = dict(stride=stride, padding=padding, count_include_pad=include)
    tkw = dict(_torch_kw(d, size, stride, padding), count_include_pad=include)
    want, want_dx = _autograd(AVG[d], x, G, **tkw)
    eps = np.finfo(dtype).eps
    terms = math.prod(geometry(x.shape, size)[0]) + 2
    y = convlab.avg_pool(x, size, **kw)
    assert y.dtype == want.dtype
    _assert_within(y, want, 4 * terms * eps * avg_pool_ref(np.abs(x), size, **kw))
    dx = convlab.avg_pool_grad(G, x.shape, size, **kw)
    _, bound = _autograd(AVG[d], x, np.abs(G), **tkw)
    _assert_within(dx, want_dx, 4 * (_overlaps(x.shape, size, stride) + 2) * eps * bound)


@pytest.mark.parametrize("p", [1, 1.5, 2, 3, 7])
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("case", [c for c in CASES if not np.any(CONFIGS[c[0]][c[1]][2])],
                         ids=CASE_ID)
def test_lp_pool_matches_torch(case, dtype, p, rng):
    d, i = case
    size, stride, _ = CONFIGS[d][i]
    x = rng.uniform(0.5, 2.0, (2, 3) + IN[d]).astype(dtype)
    G = rng.standard_normal(output_shape(x.shape, size, stride)).astype(dtype)
    tkw = _torch_kw(d, size, stride, 0)
    del tkw["padding"]
    if d == 1:   # lp_pool1d multiplies by kernel_size: an int, not a 1-tuple
        tkw = {key: value[0] for key, value in tkw.items()}
    want, want_dx = _autograd(LP[d], x, G, norm_type=p, **tkw)
    y = convlab.lp_pool(x, size, p, stride=stride)
    assert y.dtype == want.dtype
    eps = np.finfo(dtype).eps
    terms = math.prod(geometry(x.shape, size)[0]) + 6
    # PyTorch computes (mean(x^p) * K)^(1/p): a few more roundings than the terms
    _assert_within(y, want, 8 * terms * eps * np.abs(want))
    dx = convlab.lp_pool_grad(G, x, size, p, stride=stride)
    _, bound = _autograd(LP[d], x, np.abs(G), norm_type=p, **tkw)
    n = _overlaps(x.shape, size, stride) + 2
    _assert_within(dx, want_dx, 8 * n * (p * terms + 6) * eps * bound)
