"""Pooling benchmarks: convlab's max and average pooling next to PyTorch.

Q1 (issue 6): 2 x 2 windows, stride 2, no padding, on x of shape (32, 64, 56, 56) (N, C,
H, W; PyTorch's default NCHW layout), the output gradient ``grad_out`` (32, 64, 28, 28);
both drawn in ``setup`` from ``numpy.random.default_rng(1234)`` and handed to PyTorch once,
in ``setup``, by ``torch.from_numpy`` (no copy).

| timed method | convlab | PyTorch anchor |
|---|---|---|
| max forward | ``max_pool(x, 2)`` | ``F.max_pool2d(x, 2)`` under ``torch.no_grad()`` |
| max forward + backward | ``max_pool`` and ``max_pool_grad(grad_out, x, 2)`` | autograd: ``F.max_pool2d(x, 2).backward(grad_out)``, ``x`` requiring grad (fresh ``.grad`` each call) |
| avg forward | ``avg_pool(x, 2)`` | ``F.avg_pool2d(x, 2)`` under ``torch.no_grad()`` |
| avg forward + backward | ``avg_pool`` and ``avg_pool_grad(grad_out, x.shape, 2)`` | autograd: ``F.avg_pool2d(x, 2).backward(grad_out)`` |

float32 and float64, ``workers`` 1 and 2; PyTorch runs at ``torch.set_num_threads(workers)``
and its anchors are timed at both worker counts, each next to convlab at the same count
(metadata ``_bench_threads = "workers"``, see ``bench_layers.py``). PyTorch is optional and
imported in ``setup``, as in ``bench_layers.py``. Every method returns numpy arrays, in the
same order on both sides, for compare.py's check that the methods of a group agree.
"""

import numpy as np

import convlab

from .bench_layers import DTYPES, WORKERS, _import_torch, convlab_variant, torch_anchor

MAX_FORWARD = ("max_pool",)
MAX_STEP = ("max_pool", "max_pool_grad")
AVG_FORWARD = ("avg_pool",)
AVG_STEP = ("avg_pool", "avg_pool_grad")


class Q1Pool2x2:
    """Q1: max and average pooling, 2 x 2, stride 2, on (32, 64, 56, 56)."""

    case = "Q1"
    description = "max / avg pool 2 x 2, stride 2, on 32 x 64 x 56 x 56 (NCHW)"
    params = [DTYPES, WORKERS]
    param_names = ["dtype", "workers"]
    timeout = 600

    x_shape = (32, 64, 56, 56)
    size = 2

    def setup(self, dtype, workers):
        rng = np.random.default_rng(1234)
        self.x = rng.standard_normal(self.x_shape, dtype=dtype)
        n, c, h, w = self.x_shape
        self.grad_out = rng.standard_normal((n, c, h // self.size, w // self.size), dtype=dtype)
        self.workers = workers
        torch = self.torch = _import_torch()
        if torch is None:
            return
        torch.set_num_threads(workers)
        self.tx = torch.from_numpy(self.x)
        self.tgrad_out = torch.from_numpy(self.grad_out)
        # the leaf of the autograd graph (sharing memory with x; autograd never writes to it)
        self.tx_leaf = torch.from_numpy(self.x).requires_grad_()

    def _torch_step(self, pool):
        x = self.tx_leaf
        x.grad = None      # a fresh gradient, as convlab returns a fresh array
        y = pool(x, self.size)
        y.backward(self.tgrad_out)
        return y.detach().numpy(), x.grad.numpy()

    # max pooling

    @convlab_variant("max forward", group="max forward", needs=MAX_FORWARD)
    def time_convlab_max_forward(self, dtype, workers):
        return convlab.max_pool(self.x, self.size, workers=workers)

    @torch_anchor("torch F.max_pool2d", group="max forward")
    def time_torch_max_forward(self, dtype, workers):
        with self.torch.no_grad():
            return self.torch.nn.functional.max_pool2d(self.tx, self.size).numpy()

    @convlab_variant("max forward + backward", group="max forward + backward", needs=MAX_STEP)
    def time_convlab_max_forward_and_backward(self, dtype, workers):
        y = convlab.max_pool(self.x, self.size, workers=workers)
        grad_x = convlab.max_pool_grad(self.grad_out, self.x, self.size, workers=workers)
        return y, grad_x

    @torch_anchor("torch max_pool2d autograd", group="max forward + backward")
    def time_torch_max_forward_and_backward(self, dtype, workers):
        return self._torch_step(self.torch.nn.functional.max_pool2d)

    # average pooling

    @convlab_variant("avg forward", group="avg forward", needs=AVG_FORWARD)
    def time_convlab_avg_forward(self, dtype, workers):
        return convlab.avg_pool(self.x, self.size, workers=workers)

    @torch_anchor("torch F.avg_pool2d", group="avg forward")
    def time_torch_avg_forward(self, dtype, workers):
        with self.torch.no_grad():
            return self.torch.nn.functional.avg_pool2d(self.tx, self.size).numpy()

    @convlab_variant("avg forward + backward", group="avg forward + backward", needs=AVG_STEP)
    def time_convlab_avg_forward_and_backward(self, dtype, workers):
        y = convlab.avg_pool(self.x, self.size, workers=workers)
        grad_x = convlab.avg_pool_grad(self.grad_out, self.x.shape, self.size, workers=workers)
        return y, grad_x

    @torch_anchor("torch avg_pool2d autograd", group="avg forward + backward")
    def time_torch_avg_forward_and_backward(self, dtype, workers):
        return self._torch_step(self.torch.nn.functional.avg_pool2d)
