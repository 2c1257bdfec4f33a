"""Unshared layers against PyTorch formulations (skipped when torch is not installed).

PyTorch has neither layer, so each is written here with its own operations, as users do:

- locally connected: ``F.pad`` for the padding, ``Tensor.unfold`` along each spatial axis
  for the windows of every location, contracted with the weights by ``torch.einsum``;
- tiled: one strided ``conv`` per tile position t (stride ``stride * tiles``, the input
  cropped to start ``t * stride`` later), the results written into the output's locations
  ``t::tiles``.

Gradients come from autograd. Both sides round; they are compared with twice the bound
``c * n * eps * sum |terms|`` of each (``sum |terms|`` from torch in float64 on absolute
values).
"""

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
TF = pytest.importorskip("torch.nn.functional")

import convlab  # noqa: E402
from _reference import assert_matches, random_array  # noqa: E402
from _unshared_reference import local_conv_ref, local_output_sizes  # noqa: E402

CONV = {1: TF.conv1d, 2: TF.conv2d, 3: TF.conv3d}
TORCH_DTYPE = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}
FLOATS = (np.float32, np.float64)
DTYPE_ID = lambda t: np.dtype(t).name  # noqa: E731


# torch on one thread while this module runs (conftest.py)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _padding_pairs(ins, ks, padding, stride):
    """(before, after) per axis, written out independently: TensorFlow 'SAME' for 'same'."""
    d = len(ins)
    s = (stride,) * d if np.ndim(stride) == 0 else tuple(stride)
    if padding == "valid":
        return [(0, 0)] * d
    if padding == "full":
        return [(k - 1, k - 1) for k in ks]
    if padding == "same":
        out = []
        for n, k, si in zip(ins, ks, s):
            total = max((-(-n // si) - 1) * si + k - n, 0)
            out.append((total // 2, total - total // 2))
        return out
    if np.ndim(padding) == 0:
        return [(padding, padding)] * d
    return [tuple(p) if np.ndim(p) else (p, p) for p in padding]


def _torch_pad(x, pairs):
    flat = [v for before, after in reversed(pairs) for v in (before, after)]
    return TF.pad(x, flat)


def torch_local(x, w, bias, stride, padding, flip):
    d = x.dim() - 2
    ks = tuple(w.shape[d + 2:])
    s = (stride,) * d if np.ndim(stride) == 0 else tuple(stride)
    if flip:
        w = torch.flip(w, dims=tuple(range(w.dim() - d, w.dim())))
    xp = _torch_pad(x, _padding_pairs(tuple(x.shape[2:]), ks, padding, stride))
    for axis in range(d):
        xp = xp.unfold(2 + axis, ks[axis], s[axis])   # (N, C, *out, *k)
    o = "xyz"[:d]
    t = "XYZ"[:d]
    y = torch.einsum(f"nc{o}{t},f{o}c{t}->nf{o}", xp, w)
    return y if bias is None else y + bias


def torch_tiled(x, w, bias, stride, padding, flip):
    d = x.dim() - 2
    tiles = tuple(w.shape[1:1 + d])
    ks = tuple(w.shape[d + 2:])
    s = (stride,) * d if np.ndim(stride) == 0 else tuple(stride)
    outs = local_output_sizes(tuple(x.shape), ks, stride, padding)
    if flip:
        w = torch.flip(w, dims=tuple(range(w.dim() - d, w.dim())))
    xp = _torch_pad(x, _padding_pairs(tuple(x.shape[2:]), ks, padding, stride))
    pieces = {}
    for t in itertools.product(*(range(min(ti, o)) for ti, o in zip(tiles, outs))):
        crop = xp[(slice(None), slice(None)) + tuple(slice(ti * si, None) for ti, si in zip(t, s))]
        wt = w[(slice(None),) + t]
        bt = None if bias is None else bias[(slice(None),) + t]
        y = CONV[d](crop, wt, bt, stride=tuple(si * ti for si, ti in zip(s, tiles)))
        counts = tuple(-(-(o - ti) // tl) for o, ti, tl in zip(outs, t, tiles))
        pieces[t] = y[(slice(None), slice(None)) + tuple(slice(0, c) for c in counts)]
    out = torch.zeros((x.shape[0], w.shape[0]) + outs, dtype=x.dtype)
    for t, y in pieces.items():
        # slice assignment is differentiable (autograd records it as CopySlices)
        out[(slice(None), slice(None)) + tuple(slice(ti, None, tl) for ti, tl in zip(t, tiles))] = y
    return out

CASES = [
    (1, (12,), (3,), 1, 0, False),
    (1, (11,), (2,), 2, "same", True),
    (2, (7, 8), (3, 2), (2, 1), ((1, 0), (0, 2)), False),
    (2, (6, 6), (3, 3), 1, "full", True),
    (3, (4, 5, 4), (2, 2, 2), (1, 2, 1), 1, False),
]


def _bound(scale, dtype, terms):
    return 4 * terms * np.finfo(dtype).eps * scale + np.finfo(dtype).tiny


@pytest.mark.parametrize("tiles_kind", ["local", "tiles2", "tiles_mixed"])
@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
def test_against_torch(dtype, case, tiles_kind, rng):
    d, ins, ks, stride, padding, flip = case
    N, C, F = 9, 3, 5
    x = random_array(rng, (N, C) + ins, dtype)
    outs = local_output_sizes(x.shape, ks, stride, padding)
    if tiles_kind == "local":
        middle = outs
    elif tiles_kind == "tiles2":
        middle = (2,) * d
    else:
        middle = tuple(1 + (i % 3) for i in range(d))
    w = random_array(rng, (F,) + middle + (C,) + ks, dtype)
    b = random_array(rng, (F,) + middle, dtype)
    G = random_array(rng, (N, F) + outs, dtype)
    kw = dict(stride=stride, padding=padding, flip=flip)
    if tiles_kind == "local":
        ours = (convlab.local_conv(x, w, b, **kw), convlab.local_conv_grad_input(G, w, x.shape, **kw),
                convlab.local_conv_grad_weight(G, x, w.shape, **kw), convlab.local_conv_grad_bias(G))
        formulation = torch_local
    else:
        ours = (convlab.tiled_conv(x, w, b, **kw), convlab.tiled_conv_grad_input(G, w, x.shape, **kw),
                convlab.tiled_conv_grad_weight(G, x, w.shape, **kw), convlab.tiled_conv_grad_bias(G, middle))
        formulation = torch_tiled
    tdt = TORCH_DTYPE[np.dtype(dtype)]
    tx = torch.tensor(x, dtype=tdt, requires_grad=True)
    tw = torch.tensor(w, dtype=tdt, requires_grad=True)
    tb = torch.tensor(b, dtype=tdt, requires_grad=True)
    y = formulation(tx, tw, tb, stride, padding, flip)
    y.backward(torch.tensor(G, dtype=tdt))
    theirs = (y.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy())
    # bounds from float64 torch on absolute values
    ax = torch.tensor(np.abs(x), dtype=torch.float64, requires_grad=True)
    aw = torch.tensor(np.abs(w), dtype=torch.float64, requires_grad=True)
    ab = torch.tensor(np.abs(b), dtype=torch.float64, requires_grad=True)
    ay = formulation(ax, aw, ab, stride, padding, flip)
    ay.backward(torch.tensor(np.abs(G), dtype=torch.float64))
    scales = (ay.detach().numpy(), ax.grad.numpy(), aw.grad.numpy(), ab.grad.numpy())
    terms = (C * int(np.prod(ks)) + 2, F * int(np.prod(ks)) * int(np.prod(outs)) + 2,
             N * int(np.prod(outs)) + 2, N * int(np.prod(outs)) + 2)
    for name, got, want, scale, n in zip(("forward", "grad input", "grad weight", "grad bias"),
                                         ours, theirs, scales, terms):
        assert got.shape == want.shape, name
        assert_matches(got, want, 2 * _bound(scale, dtype, n))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_numpy_oracle_against_torch(case, rng):
    """The plain-numpy oracle of the other tests agrees with the PyTorch formulation."""
    d, ins, ks, stride, padding, flip = case
    x = random_array(rng, (4, 2) + ins, np.float64)
    outs = local_output_sizes(x.shape, ks, stride, padding)
    w = random_array(rng, (3,) + outs + (2,) + ks, np.float64)
    want = torch_local(torch.tensor(x), torch.tensor(w), None, stride, padding, flip).numpy()
    assert_matches(local_conv_ref(x, w, stride=stride, padding=padding, flip=flip), want,
                   1e-12 * (1 + np.abs(want)))
