"""Separable convolution at the layer level (SPEC §3.4): separable_conv and its gradients
(the three gradient functions and the fused separable_conv_backward) against the
plain-numpy oracle of tests/_layer_reference.py with the dense outer-product kernel, finite
differences, the adjoint identity, hypothesis and the SPEC §4 errors."""

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

import convlab
from _layer_reference import IN, K, conv_grad_input_ref, conv_grad_weight_ref, conv_ref
from _layouts import LAYOUTS
from _reference import assert_matches, central_difference_vjp, random_array

FLOATS = (np.float32, np.float64)
DTYPE_ID = lambda t: np.dtype(t).name  # noqa: E731

KEYWORDS = {
    "plain": {},
    "stride_pad": dict(stride=2, padding=1),
    "same_dilated": dict(padding="same", dilation=2),
    "full_flip": dict(padding="full", flip=True),
    "pairs_mixed": {1: dict(padding=((2, 0),), stride=(3,)), 2: dict(padding=((0, 1), (2, 1)), stride=(2, 1)),
                    3: dict(padding=((1, 0), (0, 2), (1, 1)), stride=(1, 2, 1))},
}


def keywords(name, d):
    kw = KEYWORDS[name]
    return kw[d] if d in kw else kw


def dense_kernel(ws):
    """w[f, c, m] = prod_i ws[i][f, c, m_i]."""
    w = np.asarray(ws[0], dtype=np.float64)
    for factor in ws[1:]:
        factor = np.asarray(factor, dtype=np.float64)
        w = w[..., None] * factor.reshape(factor.shape[:2] + (1,) * (w.ndim - 2) + factor.shape[2:])
    return w


def make(rng, d, dtype, N=3, C=2, F=4, ins=None, ks=None):
    ins = IN[d] if ins is None else ins
    ks = K[d] if ks is None else ks
    x = random_array(rng, (N, C) + tuple(ins), dtype)
    ws = [random_array(rng, (F, C, k), dtype) for k in ks]
    b = random_array(rng, (F,), dtype)
    return x, ws, b


def bound(scale, dtype, terms):
    return 4 * terms * np.finfo(dtype).eps * scale + np.finfo(dtype).tiny


@pytest.mark.parametrize("name", list(KEYWORDS))
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("d", [1, 2, 3])
def test_matches_dense_conv(d, dtype, name, rng):
    x, ws, b = make(rng, d, dtype)
    check_against_dense(x, ws, b, keywords(name, d), dtype, rng)


def check_against_dense(x, ws, b, kw, dtype, rng):
    """The forward pass and all gradients against the oracle with the dense kernel."""
    d = x.ndim - 2
    W = dense_kernel(ws)
    absW = dense_kernel([np.abs(w) for w in ws])
    y = convlab.separable_conv(x, ws, b, **kw)
    assert y.dtype == np.dtype(dtype)
    terms = x.shape[1] * int(np.prod(W.shape[2:])) + 2
    assert_matches(y, conv_ref(x, W, b, **kw), bound(conv_ref(np.abs(x), absW, np.abs(b), **kw), dtype, terms))
    G = random_array(rng, y.shape, dtype)
    gx = convlab.separable_conv_grad_input(G, ws, x.shape, **kw)
    scale = conv_grad_input_ref(np.abs(G), absW, x.shape, **kw)
    assert_matches(gx, conv_grad_input_ref(G, W, x.shape, **kw), bound(scale, dtype, W.shape[0] * W[0, 0].size + 2))
    # each factor's gradient: the dense kernel gradient contracted with the other factors
    gW = conv_grad_weight_ref(G, x, W.shape, **kw)
    agW = conv_grad_weight_ref(np.abs(G), np.abs(x), W.shape, **kw)
    grads = convlab.separable_conv_grad_weights(G, x, ws, **kw)
    assert len(grads) == d
    # the fused backward: the same gradients, from the same oracle
    fused_gx, fused_grads = convlab.separable_conv_backward(G, x, ws, **kw)
    assert fused_gx.shape == x.shape and fused_gx.dtype == np.dtype(dtype)
    assert_matches(fused_gx, conv_grad_input_ref(G, W, x.shape, **kw),
                   bound(scale, dtype, W.shape[0] * W[0, 0].size + 2))
    assert isinstance(fused_grads, tuple) and len(fused_grads) == d
    for i, w in enumerate(ws):
        others = [np.ones_like(f) if j == i else f for j, f in enumerate(ws)]
        aothers = [np.ones_like(f) if j == i else np.abs(f) for j, f in enumerate(ws)]
        axes = tuple(2 + j for j in range(d) if j != i)
        want = (gW * dense_kernel(others)).sum(axis=axes)
        scale = (agW * dense_kernel(aothers)).sum(axis=axes)
        for g in (grads[i], fused_grads[i]):
            assert g.shape == w.shape and g.dtype == np.dtype(dtype)
            assert_matches(g, want, bound(scale, dtype, G.size + W[0, 0].size + 2))
    gb = convlab.separable_conv_grad_bias(G)
    assert_matches(gb, G.astype(np.float64).sum(axis=(0,) + tuple(range(2, G.ndim))),
                   bound(np.abs(G).astype(np.float64).sum(axis=(0,) + tuple(range(2, G.ndim))), dtype, G.size))


LANES = {np.float32: 8, np.float64: 4}   # filters per vector of the lane kernels (32 bytes)
LANE_KEYWORDS = [{}, dict(stride=(2, 3)), dict(dilation=(2, 1), padding=1), dict(padding="same", flip=True)]


@pytest.mark.parametrize("kw", LANE_KEYWORDS, ids=["plain", "strided", "dilated", "same_flip"])
@pytest.mark.parametrize("ks", [(7, 7), (1, 5), (3, 9), (5, 2), (9, 3)], ids=str)
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
def test_lane_kernels_every_remainder(dtype, ks, kw, rng):
    """1-D and 2-D problems run with a block of filters (of channels, for the input gradient)
    in the vector lanes, output rows in strips of 4 and columns in blocks of 8, and unrolled
    taps for k = 1, 3, 5, 7 at stride and dilation 1 (k = 9 also splits the factor
    gradients' sums in groups of 8): F and C one past or one short of a block, and output
    sizes that leave a remainder of every kind."""
    lanes = LANES[dtype]
    for F, C in [(lanes + 1, 2 * lanes - 1), (lanes - 1, lanes + 2)]:
        dil = kw.get("dilation", (1, 1))
        ins = tuple((k - 1) * dl + extra for k, dl, extra in zip(ks, dil, (11, 13)))
        x, ws, b = make(rng, 2, dtype, N=2, C=C, F=F, ins=ins, ks=ks)
        check_against_dense(x, ws, b, kw, dtype, rng)
    x, ws, b = make(rng, 1, dtype, N=2, C=lanes + 1, F=lanes + 3, ins=(ks[1] + 12,), ks=ks[1:])
    check_against_dense(x, ws, b, {k: v[1:] if isinstance(v, tuple) else v for k, v in kw.items()}, dtype, rng)


@pytest.mark.parametrize("d", [1, 2])
def test_lane_and_plane_kernels_agree(d, rng, monkeypatch):
    """Past a padded width of _LANES_MAX_WIDTH (long 1-D signals) the plane kernels serve 1-D
    and 2-D problems too: forced here on small problems, both paths match the oracle."""
    from convlab import _separable_layers

    x, ws, b = make(rng, d, np.float64, N=2, C=5, F=6, ins=(9, 17)[-d:], ks=(3, 7)[-d:])
    for kw in ({}, dict(stride=2, padding=2)):
        check_against_dense(x, ws, b, kw, np.float64, rng)
        with monkeypatch.context() as m:
            m.setattr(_separable_layers, "_LANES_MAX_WIDTH", 0)
            check_against_dense(x, ws, b, kw, np.float64, rng)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_nan_reaches_exactly_the_outputs_it_touches(d, rng):
    """A NaN in the input poisons the outputs whose windows (zero padding included) hold it,
    a NaN tap poisons its filter's outputs (and its channel's input gradient), and nothing
    else, although the filters of a block share vectors."""
    x, ws, b = make(rng, d, np.float64, N=2, C=3, F=6, ins=(9, 8, 7)[-d:], ks=(3, 2, 3)[-d:])
    kw = dict(padding=1)
    x[1, 2, (4, 3, 2)[-d:]] = np.nan   # (indexing the first spatial entries)
    x[(1, 2) + (4, 3, 2)[-d:]] = np.nan
    ws[-1][4, 1, 0] = np.nan
    y = convlab.separable_conv(x, ws, b, **kw)
    want = conv_ref(x, dense_kernel(ws), b, **kw)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
    assert np.isnan(y).any() and not np.isnan(y).all()
    G = random_array(rng, y.shape, np.float64)
    gx = convlab.separable_conv_grad_input(G, ws, x.shape, **kw)
    np.testing.assert_array_equal(np.isnan(gx), np.isnan(conv_grad_input_ref(G, dense_kernel(ws), x.shape, **kw)))
    assert np.isnan(gx[:, 1]).any() and not np.isnan(gx[:, [0, 2]]).any()
    np.testing.assert_array_equal(np.isnan(convlab.separable_conv_backward(G, x, ws, **kw)[0]), np.isnan(gx))
    # the factors' gradients: only the terms the definition has (no product of a NaN input
    # with an output-gradient row that does not exist)
    x = np.nan_to_num(x)
    ws[-1][4, 1, 0] = 1.0
    for spot in [(0, 1) + (0,) * d, (1, 2) + (8, 7, 6)[-d:]]:
        xs = x.copy()
        xs[spot] = np.nan
        W = dense_kernel(ws)
        gW = conv_grad_weight_ref(G, xs, W.shape, **kw)
        fused = convlab.separable_conv_backward(G, xs, ws, **kw)[1]
        for i, g in enumerate(convlab.separable_conv_grad_weights(G, xs, ws, **kw)):
            others = [np.ones_like(f) if j == i else f for j, f in enumerate(ws)]
            want = (gW * dense_kernel(others)).sum(axis=tuple(2 + j for j in range(d) if j != i))
            np.testing.assert_array_equal(np.isnan(g), np.isnan(want))
            np.testing.assert_array_equal(np.isnan(fused[i]), np.isnan(want))


FD_CASES = {
    # a stride: the plane kernels' scattered input gradient
    "strided": (lambda d: dict(stride=(2,) + (1,) * (d - 1), padding="same"), None),
    # stride 1 with 7- and 5-tap factors: the lane kernels' unrolled passes, the input
    # gradient as a forward pass over the padded output gradient
    "stride1": (lambda d: dict(padding="same"), {1: (7,), 2: (7, 5), 3: (3, 2, 3)}),
}


@pytest.mark.parametrize("case", list(FD_CASES))
@pytest.mark.parametrize("d", [1, 2, 3])
def test_finite_differences_and_adjoint(d, case, rng):
    keywords_for, ks = FD_CASES[case]
    kw = keywords_for(d)
    x, ws, _ = make(rng, d, np.float64, N=2, C=2, F=2, ks=None if ks is None else ks[d],
                    ins=None if ks is None else (9, 8, 7)[-d:])
    y = convlab.separable_conv(x, ws, **kw)
    G = random_array(rng, y.shape, np.float64)
    h = 2.0 ** -3
    fd_x = central_difference_vjp(lambda a: conv_ref(a, dense_kernel(ws), **kw), x, G, h)
    assert_matches(convlab.separable_conv_grad_input(G, ws, x.shape, **kw), fd_x, 1e-9 * (1 + np.abs(fd_x).max()))
    grads = convlab.separable_conv_grad_weights(G, x, ws, **kw)
    fused_gx, fused_grads = convlab.separable_conv_backward(G, x, ws, **kw)
    assert_matches(fused_gx, fd_x, 1e-9 * (1 + np.abs(fd_x).max()))
    lhs = float(np.sum(y * G))
    for i, w in enumerate(ws):
        def f(v, i=i):
            factors = list(ws)
            factors[i] = v
            return conv_ref(x, dense_kernel(factors), **kw)

        fd = central_difference_vjp(f, w, G, h)
        for g in (grads[i], fused_grads[i]):
            assert_matches(g, fd, 1e-9 * (1 + np.abs(fd).max()))
            # y is linear in each factor: <y, G> = <w_i, dL/dw_i>
            assert abs(lhs - float(np.sum(w * g))) <= 1e-10 * (1 + abs(lhs))
    for gx in (convlab.separable_conv_grad_input(G, ws, x.shape, **kw), fused_gx):
        assert abs(lhs - float(np.sum(x * gx))) <= 1e-10 * (1 + abs(lhs))


@st.composite
def problems(draw):
    d = draw(st.integers(1, 3))
    # up to 9 taps in 1-D and 2-D (the lane kernels unroll 1, 3, 5, 7 and group sums by 8)
    ks = tuple(draw(st.integers(1, 3 if d == 3 else 9)) for _ in range(d))
    dil = tuple(draw(st.integers(1, 2)) for _ in range(d))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(d))
    padding = draw(st.sampled_from(["valid", "same", "full", 1, 0]))
    ins = tuple(draw(st.integers((k - 1) * dl + 1, (k - 1) * dl + 6)) for k, dl in zip(ks, dil))
    # F and C across a block of lanes (8 float32, 4 float64) in 1-D and 2-D
    most = 3 if d == 3 else 10
    return dict(d=d, ks=ks, ins=ins, N=draw(st.integers(0, 3)), C=draw(st.integers(1, most)),
                F=draw(st.integers(1, most)), dtype=draw(st.sampled_from(FLOATS)),
                kw=dict(stride=stride, padding=padding, dilation=dil, flip=draw(st.booleans())))


@given(problem=problems(), seed=st.integers(0, 2**32 - 1))
def test_hypothesis_against_dense(problem, seed):
    note(repr(problem))
    rng = np.random.default_rng(seed)
    d, kw, dtype = problem["d"], problem["kw"], problem["dtype"]
    x, ws, b = make(rng, d, dtype, N=problem["N"], C=problem["C"], F=problem["F"], ins=problem["ins"],
                    ks=problem["ks"])
    W = dense_kernel(ws)
    y = convlab.separable_conv(x, ws, b, **kw)
    scale = conv_ref(np.abs(x), dense_kernel([np.abs(w) for w in ws]), np.abs(b), **kw)
    assert_matches(y, conv_ref(x, W, b, **kw), bound(scale, dtype, W[0].size + 2))
    G = random_array(rng, y.shape, dtype)
    gx = convlab.separable_conv_grad_input(G, ws, x.shape, **kw)
    assert gx.shape == x.shape
    scale = conv_grad_input_ref(np.abs(G), dense_kernel([np.abs(w) for w in ws]), x.shape, **kw)
    assert_matches(gx, conv_grad_input_ref(G, W, x.shape, **kw), bound(scale, dtype, W.shape[0] * W[0, 0].size + 2))
    grads = convlab.separable_conv_grad_weights(G, x, ws, **kw)
    assert [g.shape for g in grads] == [w.shape for w in ws]
    if problem["N"] == 0:
        assert all(not np.any(g) for g in grads)
    fused_gx, fused_grads = convlab.separable_conv_backward(G, x, ws, **kw)
    assert_matches(fused_gx, conv_grad_input_ref(G, W, x.shape, **kw),
                   bound(scale, dtype, W.shape[0] * W[0, 0].size + 2))
    gW = conv_grad_weight_ref(G, x, W.shape, **kw)
    agW = conv_grad_weight_ref(np.abs(G), np.abs(x), W.shape, **kw)
    for i, (g, w) in enumerate(zip(fused_grads, ws)):
        others = [np.ones_like(f) if j == i else f for j, f in enumerate(ws)]
        aothers = [np.ones_like(f) if j == i else np.abs(f) for j, f in enumerate(ws)]
        axes = tuple(2 + j for j in range(d) if j != i)
        assert g.shape == w.shape and g.dtype == np.dtype(dtype)
        assert_matches(g, (gW * dense_kernel(others)).sum(axis=axes),
                       bound((agW * dense_kernel(aothers)).sum(axis=axes), dtype, G.size + W[0, 0].size + 2))


def test_workers_and_layouts(rng):
    x, ws, b = make(rng, 2, np.float64, N=5, C=3, F=4)
    want = convlab.separable_conv(x, ws, b, padding=1, workers=1)
    for workers in (2, -1):
        assert np.array_equal(convlab.separable_conv(x, ws, b, padding=1, workers=workers), want)
    views = [np.asfortranarray(x), x.astype(">f8"), np.flip(np.ascontiguousarray(np.flip(x)))]
    for view in views:
        assert np.array_equal(convlab.separable_conv(view, [np.asfortranarray(w) for w in ws], b, padding=1), want)
    assert convlab.separable_conv(x.astype(np.int32), [w.astype(np.float32) for w in ws]).dtype == np.float64
    assert convlab.separable_conv(x.astype(np.float16), [w.astype(np.float16) for w in ws]).dtype == np.float32


@pytest.mark.parametrize("N", [1, 16, 17, 35])
def test_fused_backward_chunks_and_threads(N, rng):
    """The fused backward sums the column factor's gradient over chunks of images (at most
    16, of equal length but the last): batches below, at and past 16 images, a last chunk
    shorter than the others, against the oracle; the result is the same bits for any
    number of threads, and for any memory layout of the inputs."""
    x, ws, b = make(rng, 2, np.float32, N=N, C=9, F=10, ins=(10, 12), ks=(3, 5))
    check_against_dense(x, ws, b, dict(padding=1), np.float32, rng)
    G = random_array(rng, (N, 10, 10, 10), np.float32)
    want_gx, want = convlab.separable_conv_backward(G, x, ws, padding=1, workers=1)
    for workers in (2, 3, -1):
        gx, grads = convlab.separable_conv_backward(G, x, ws, padding=1, workers=workers)
        assert np.array_equal(gx, want_gx) and all(np.array_equal(g, w) for g, w in zip(grads, want))
    gx, grads = convlab.separable_conv_backward(np.asfortranarray(G), x.astype(">f4")[:, ::-1][:, ::-1],
                                                [np.asfortranarray(w) for w in ws], padding=1)
    assert np.array_equal(gx, want_gx) and all(np.array_equal(g, w) for g, w in zip(grads, want))


@pytest.mark.parametrize("budget", [1, 3000])
def test_partial_sums_within_their_memory_budget(budget, rng, monkeypatch):
    """The factors' gradients are summed per chunk of images within a byte budget for the
    partial sums: a budget below one chunk's partial sums gives one chunk, a small one a few
    chunks; the gradients still match the oracle and do not depend on the threads."""
    from convlab import _separable_layers

    monkeypatch.setattr(_separable_layers, "_PARTIAL_BYTES", budget)
    assert _separable_layers._image_chunks(20, 1000) == (1 if budget == 1 else 3)
    x, ws, b = make(rng, 2, np.float64, N=20, C=5, F=6, ins=(9, 11), ks=(3, 4))
    check_against_dense(x, ws, b, dict(padding="same"), np.float64, rng)
    G = random_array(rng, (20, 6, 9, 11), np.float64)
    for workers in (1, 2):
        grads = convlab.separable_conv_grad_weights(G, x, ws, padding="same", workers=workers)
        fused = convlab.separable_conv_backward(G, x, ws, padding="same", workers=workers)[1]
        if workers == 1:
            want, want_fused = grads, fused
        assert all(np.array_equal(g, w) for g, w in zip(grads + fused, want + want_fused))


def test_fused_backward_takes_the_separate_path_when_it_must(rng):
    """Strides, 3-D problems and factors holding NaN or infinity are not fused: the result
    is then exactly the two gradient functions'."""
    cases = [(2, dict(stride=2)), (3, {}), (2, {"nan": True}), (1, dict(stride=3, padding=2))]
    for d, kw in cases:
        x, ws, _ = make(rng, d, np.float64, N=3, C=3, F=5)
        kw = dict(kw)
        if kw.pop("nan", False):
            ws[0][1, 2, 0] = np.inf
        G = random_array(rng, convlab.separable_conv(x, ws, **kw).shape, np.float64)
        gx, grads = convlab.separable_conv_backward(G, x, ws, **kw)
        np.testing.assert_array_equal(gx, convlab.separable_conv_grad_input(G, ws, x.shape, **kw))
        for g, want in zip(grads, convlab.separable_conv_grad_weights(G, x, ws, **kw)):
            np.testing.assert_array_equal(g, want)


LAYOUT_CALLS = {
    "separable_conv": (("x", "w0", "w1", "b"),
                       lambda a: convlab.separable_conv(a["x"], [a["w0"], a["w1"]], a["b"], padding=1)),
    "separable_conv_grad_input": (("g", "w0", "w1"),
                                  lambda a: convlab.separable_conv_grad_input(a["g"], [a["w0"], a["w1"]],
                                                                              (5, 9, 7, 8), padding=1)),
    "separable_conv_grad_weights": (("g", "x", "w0", "w1"),
                                    lambda a: convlab.separable_conv_grad_weights(a["g"], a["x"], [a["w0"], a["w1"]],
                                                                                  padding=1)),
    "separable_conv_backward": (("g", "x", "w0", "w1"),
                                lambda a: convlab.separable_conv_backward(a["g"], a["x"], [a["w0"], a["w1"]],
                                                                          padding=1)),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("name", list(LAYOUT_CALLS))
def test_every_layout_gives_the_contiguous_result(name, layout, rng):
    """SPEC §4 layouts, one array at a time (the lane kernels, 9 channels and 10 filters
    across a block of lanes): the same bits as the C-contiguous copies; inputs untouched."""
    keys, call = LAYOUT_CALLS[name]
    x, ws, b = make(rng, 2, np.float32, N=5, C=9, F=10, ins=(7, 8), ks=(3, 2))
    base = dict(x=x, w0=ws[0], w1=ws[1], b=b, g=random_array(rng, (5, 10, 7, 9), np.float32))
    for key in keys:
        args = dict(base)
        args[key] = LAYOUTS[layout](base[key])
        before = args[key].tobytes(order="A")
        got = call(args)
        want = call({k: np.ascontiguousarray(v) for k, v in args.items()})
        assert args[key].tobytes(order="A") == before
        pairs = list(zip(_flat(got), _flat(want)))
        assert len(pairs) == len(_flat(want))
        assert all(np.array_equal(a, w) and a.dtype == w.dtype for a, w in pairs), f"{key} as {layout}"


def _flat(result):
    """The arrays of a result: an array, a tuple of arrays, or (array, tuple of arrays)."""
    if isinstance(result, np.ndarray):
        return [result]
    return [a for part in result for a in _flat(part)]


X = np.ones((2, 3, 6, 5))
WS = [np.ones((4, 3, 3)), np.ones((4, 3, 2))]
ERRORS = {
    "not_a_sequence": (lambda: convlab.separable_conv(X, np.ones((2, 4, 3, 3))), TypeError, ["ws"]),
    "factor_count": (lambda: convlab.separable_conv(X, WS[:1]), ValueError, ["3 dimensions", "(2, 3, 6, 5)", "1 in ws"]),
    "factor_ndim": (lambda: convlab.separable_conv(X, [np.ones((4, 3)), WS[1]]), ValueError, ["ws[0]", "(4, 3)"]),
    "factor_fc": (lambda: convlab.separable_conv(X, [WS[0], np.ones((4, 2, 2))]), ValueError, ["(4, 3)", "(4, 2)"]),
    "channels": (lambda: convlab.separable_conv(np.ones((2, 2, 6, 5)), WS), ValueError, ["C=2", "C=3"]),
    "bias": (lambda: convlab.separable_conv(X, WS, np.ones(3)), ValueError, ["bias", "(4,)", "(3,)"]),
    "stride0": (lambda: convlab.separable_conv(X, WS, stride=0), ValueError, ["stride"]),
    "too_small": (lambda: convlab.separable_conv(np.ones((2, 3, 2, 1)), WS), ValueError, ["kernel"]),
    "complex": (lambda: convlab.separable_conv(X + 0j, WS), TypeError, ["complex"]),
    "grad_shape": (lambda: convlab.separable_conv_grad_input(np.ones((2, 4, 3, 3)), WS, X.shape), ValueError,
                   ["grad_out", "(2, 4, 4, 4)"]),
    "grad_bias_ndim": (lambda: convlab.separable_conv_grad_bias(np.ones((2, 3))), ValueError,
                       ["separable_conv_grad_bias", "3, 4 or 5"]),
    "backward_grad_shape": (lambda: convlab.separable_conv_backward(np.ones((2, 4, 3, 3)), X, WS), ValueError,
                            ["separable_conv_backward", "grad_out", "(2, 4, 4, 4)"]),
    "backward_factor_count": (lambda: convlab.separable_conv_backward(np.ones((2, 4, 4, 4)), X, WS[:1]),
                              ValueError, ["separable_conv_backward", "1 in ws"]),
    "backward_complex": (lambda: convlab.separable_conv_backward(np.ones((2, 4, 4, 4)), X + 0j, WS), TypeError,
                         ["separable_conv_backward", "complex"]),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors(case):
    fn, kind, fragments = ERRORS[case]
    with pytest.raises(kind) as info:
        fn()
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))
