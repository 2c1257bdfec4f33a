"""Unshared-layer benchmarks: convlab.local_conv / tiled_conv next to PyTorch formulations.

PyTorch has neither layer, so each anchor is a way of writing one with PyTorch's own
operations, named after what it does:

U1, locally connected, N=32, C=16, 32 x 32, F=16, 3 x 3, stride 1, 'valid' (30 x 30 out):

- "torch F.unfold + einsum": what users write, ``F.unfold`` (the whole unfolded input)
  contracted with the weights by ``torch.einsum``;
- "torch shifted copies + bmm": the fastest formulation we know: the 9 shifted views of the
  input copied into one (locations, N, C * 9) tensor and multiplied by the weights, stored
  in the (locations, C * 9, F) layout ``torch.bmm`` wants, in one batched GEMM.

U2, tiled with tiles = 2 x 2, same shapes:

- "torch 4 strided conv2d": one ``conv2d`` with stride 2 per phase (the locations with the
  same position in the tile), interleaved into the output;
- "torch grouped conv2d": the four phases' input crops stacked along the channels and run
  as one grouped ``conv2d`` (groups = 4), weights stored in the (4 F, C, 3, 3) layout that
  needs, interleaved into the output.

Each side is timed for the forward pass (with a bias) and for a training step: the
forward pass and the input, weight and bias gradients (convlab's four functions / PyTorch
autograd, ``y.backward(grad_out)``). The PyTorch weights live in the layout their
formulation needs (made once, in ``setup``, as a user would store the parameter); every
method returns numpy arrays in convlab's layouts (a view of PyTorch's where the layouts
differ) so that compare.py can check that all methods agree. U1 also has ``peakmem_``
methods for the training step.

float32 and float64, ``workers`` 1 and 2, PyTorch at ``torch.set_num_threads(workers)``;
PyTorch is optional, as in ``bench_layers.py``.
"""

import numpy as np

import convlab

from .bench_layers import DTYPES, WORKERS, _import_torch, convlab_variant, torch_anchor

LOCAL_FORWARD = ("local_conv",)
LOCAL_STEP = ("local_conv", "local_conv_grad_input", "local_conv_grad_weight",
              "local_conv_grad_bias")
TILED_FORWARD = ("tiled_conv",)
TILED_STEP = ("tiled_conv", "tiled_conv_grad_input", "tiled_conv_grad_weight",
              "tiled_conv_grad_bias")

N, C, SIZE, F, K = 32, 16, 32, 16, 3
OUT = SIZE - K + 1


class _UnsharedCase:
    params = [DTYPES, WORKERS]
    param_names = ["dtype", "workers"]
    timeout = 600
    middle = ()      # the weight axes between F and C: the output size or the tiles

    def setup(self, dtype, workers):
        rng = np.random.default_rng(1234)
        self.x = rng.standard_normal((N, C, SIZE, SIZE), dtype=dtype)
        self.w = rng.standard_normal((F,) + self.middle + (C, K, K), dtype=dtype)
        self.b = rng.standard_normal((F,) + self.middle, dtype=dtype)
        self.grad_out = rng.standard_normal((N, F, OUT, OUT), dtype=dtype)
        self.workers = workers
        torch = self.torch = _import_torch()
        if torch is None:
            return
        torch.set_num_threads(workers)
        self.tx = torch.from_numpy(self.x)
        self.tgrad_out = torch.from_numpy(self.grad_out)
        self.tx_leaf = torch.from_numpy(self.x).requires_grad_()
        self.torch_setup(torch)

    def torch_setup(self, torch):
        raise NotImplementedError


class U1LocallyConnected(_UnsharedCase):
    """U1: locally connected, N=32, C=16, 32 x 32, F=16, 3 x 3, stride 1, 'valid'."""

    case = "U1"
    description = "local_conv N=32, C=16, 32 x 32, F=16, 3 x 3, stride 1, valid"
    middle = (OUT, OUT)

    def torch_setup(self, torch):
        P, R = OUT * OUT, C * K * K
        # einsum: the weights as given, (F, P, R)
        self.tw_flat = torch.from_numpy(self.w).reshape(F, P, R)
        self.tb = torch.from_numpy(self.b)
        self.tw_flat_leaf = torch.from_numpy(self.w).reshape(F, P, R).detach().requires_grad_()
        self.tb_leaf = torch.from_numpy(self.b).requires_grad_()
        # bmm: the weights stored as (P, R, F)
        w_bmm = np.ascontiguousarray(self.w.reshape(F, P, R).transpose(1, 2, 0))
        self.tw_bmm = torch.from_numpy(w_bmm)
        self.tw_bmm_leaf = torch.from_numpy(w_bmm.copy()).requires_grad_()

    # the two PyTorch formulations, differentiable

    def _unfold_einsum(self, x, w_flat, b):
        torch = self.torch
        cols = torch.nn.functional.unfold(x, K)                      # (N, R, P)
        y = torch.einsum("nrp,fpr->nfp", cols, w_flat)
        return y.reshape(N, F, OUT, OUT) + b

    def _shifted_bmm(self, x, w_bmm, b):
        torch = self.torch
        shifted = torch.stack([x[:, :, i:i + OUT, j:j + OUT]
                               for i in range(K) for j in range(K)], dim=2)  # (N, C, 9, O, O)
        cols = shifted.reshape(N, C * K * K, OUT * OUT).permute(2, 0, 1)    # (P, N, R)
        y = torch.bmm(cols, w_bmm)                                          # (P, N, F)
        return y.permute(1, 2, 0).reshape(N, F, OUT, OUT) + b

    def _w_grad_from_bmm(self, grad):
        # (P, R, F) -> convlab's (F, *out, C, *k), a view
        return grad.numpy().transpose(2, 0, 1).reshape(self.w.shape)

    # forward

    @convlab_variant("forward", group="forward", needs=LOCAL_FORWARD)
    def time_convlab_forward(self, dtype, workers):
        return convlab.local_conv(self.x, self.w, self.b, workers=workers)

    @torch_anchor("torch F.unfold + einsum", group="forward")
    def time_torch_unfold_forward(self, dtype, workers):
        with self.torch.no_grad():
            return self._unfold_einsum(self.tx, self.tw_flat, self.tb).numpy()

    @torch_anchor("torch shifted copies + bmm", group="forward")
    def time_torch_bmm_forward(self, dtype, workers):
        with self.torch.no_grad():
            return self._shifted_bmm(self.tx, self.tw_bmm, self.tb).numpy()

    # forward + every gradient

    def _convlab_step(self):
        y = convlab.local_conv(self.x, self.w, self.b, workers=self.workers)
        grad_x = convlab.local_conv_grad_input(self.grad_out, self.w, self.x.shape,
                                               workers=self.workers)
        grad_w = convlab.local_conv_grad_weight(self.grad_out, self.x, self.w.shape,
                                                workers=self.workers)
        grad_b = convlab.local_conv_grad_bias(self.grad_out)
        return y, grad_x, grad_w, grad_b

    def _unfold_step(self):
        x, w, b = self.tx_leaf, self.tw_flat_leaf, self.tb_leaf
        x.grad = w.grad = b.grad = None
        y = self._unfold_einsum(x, w, b)
        y.backward(self.tgrad_out)
        return (y.detach().numpy(), x.grad.numpy(), w.grad.numpy().reshape(self.w.shape),
                b.grad.numpy())

    def _bmm_step(self):
        x, w, b = self.tx_leaf, self.tw_bmm_leaf, self.tb_leaf
        x.grad = w.grad = b.grad = None
        y = self._shifted_bmm(x, w, b)
        y.backward(self.tgrad_out)
        return y.detach().numpy(), x.grad.numpy(), self._w_grad_from_bmm(w.grad), \
            b.grad.numpy()

    @convlab_variant("forward + grads", group="forward + grads", needs=LOCAL_STEP)
    def time_convlab_forward_and_grads(self, dtype, workers):
        return self._convlab_step()

    @torch_anchor("torch F.unfold + einsum", group="forward + grads")
    def time_torch_unfold_forward_and_grads(self, dtype, workers):
        return self._unfold_step()

    @torch_anchor("torch shifted copies + bmm", group="forward + grads")
    def time_torch_bmm_forward_and_grads(self, dtype, workers):
        return self._bmm_step()

    # peak memory of the training step (compare.py measures each in a fresh process)

    @convlab_variant("forward + grads", group="forward + grads", needs=LOCAL_STEP)
    def peakmem_convlab_forward_and_grads(self, dtype, workers):
        self._convlab_step()

    @torch_anchor("torch F.unfold + einsum", group="forward + grads")
    def peakmem_torch_unfold_forward_and_grads(self, dtype, workers):
        self._unfold_step()

    @torch_anchor("torch shifted copies + bmm", group="forward + grads")
    def peakmem_torch_bmm_forward_and_grads(self, dtype, workers):
        self._bmm_step()


TILES = 2
PHASE_OUT = -(-OUT // TILES)
PHASE_EXTENT = (PHASE_OUT - 1) * TILES + K   # input samples one phase reads


class U2Tiled(_UnsharedCase):
    """U2: tiled, tiles = 2 x 2, N=32, C=16, 32 x 32, F=16, 3 x 3, stride 1, 'valid'."""

    case = "U2"
    description = "tiled_conv tiles 2 x 2, N=32, C=16, 32 x 32, F=16, 3 x 3, stride 1, valid"
    middle = (TILES, TILES)

    def torch_setup(self, torch):
        self.tw = torch.from_numpy(self.w)                  # (F, 2, 2, C, 3, 3)
        self.tb = torch.from_numpy(self.b)                  # (F, 2, 2)
        self.tw_leaf = torch.from_numpy(self.w).requires_grad_()
        self.tb_leaf = torch.from_numpy(self.b).requires_grad_()
        # grouped: phase-major weights (4 F, C, 3, 3) and bias (4 F,)
        w_grouped = np.ascontiguousarray(self.w.transpose(1, 2, 0, 3, 4, 5)).reshape(
            TILES * TILES * F, C, K, K)
        b_grouped = np.ascontiguousarray(self.b.transpose(1, 2, 0)).reshape(-1)
        self.tw_grouped = torch.from_numpy(w_grouped)
        self.tb_grouped = torch.from_numpy(b_grouped)
        self.tw_grouped_leaf = torch.from_numpy(w_grouped.copy()).requires_grad_()
        self.tb_grouped_leaf = torch.from_numpy(b_grouped.copy()).requires_grad_()

    def _interleave(self, phases):
        # phases: (T, T, N, F, m, m) -> (N, F, m T, m T), location (j T + a, l T + c) from
        # phase (a, c), cropped to the output size
        y = phases.permute(2, 3, 4, 0, 5, 1).reshape(N, F, PHASE_OUT * TILES,
                                                     PHASE_OUT * TILES)
        return y[:, :, :OUT, :OUT]

    def _four_convs(self, x, w, b):
        torch = self.torch
        ys = [torch.nn.functional.conv2d(x[:, :, a:a + PHASE_EXTENT, c:c + PHASE_EXTENT],
                                         w[:, a, c], b[:, a, c], stride=TILES)
              for a in range(TILES) for c in range(TILES)]
        return self._interleave(torch.stack(ys).reshape(TILES, TILES, N, F, PHASE_OUT,
                                                        PHASE_OUT))

    def _grouped(self, x, w_grouped, b_grouped):
        torch = self.torch
        crops = torch.cat([x[:, :, a:a + PHASE_EXTENT, c:c + PHASE_EXTENT]
                           for a in range(TILES) for c in range(TILES)], dim=1)
        y = torch.nn.functional.conv2d(crops, w_grouped, b_grouped, stride=TILES,
                                       groups=TILES * TILES)     # (N, 4 F, m, m)
        y = y.reshape(N, TILES, TILES, F, PHASE_OUT, PHASE_OUT).permute(1, 2, 0, 3, 4, 5)
        return self._interleave(y)

    def _from_grouped(self, w_grad, b_grad):
        w = w_grad.numpy().reshape(TILES, TILES, F, C, K, K).transpose(2, 0, 1, 3, 4, 5)
        b = b_grad.numpy().reshape(TILES, TILES, F).transpose(2, 0, 1)
        return w, b

    # forward

    @convlab_variant("forward", group="forward", needs=TILED_FORWARD)
    def time_convlab_forward(self, dtype, workers):
        return convlab.tiled_conv(self.x, self.w, self.b, workers=workers)

    @torch_anchor("torch 4 strided conv2d", group="forward")
    def time_torch_four_forward(self, dtype, workers):
        with self.torch.no_grad():
            return self._four_convs(self.tx, self.tw, self.tb).numpy()

    @torch_anchor("torch grouped conv2d", group="forward")
    def time_torch_grouped_forward(self, dtype, workers):
        with self.torch.no_grad():
            return self._grouped(self.tx, self.tw_grouped, self.tb_grouped).numpy()

    # forward + every gradient

    @convlab_variant("forward + grads", group="forward + grads", needs=TILED_STEP)
    def time_convlab_forward_and_grads(self, dtype, workers):
        y = convlab.tiled_conv(self.x, self.w, self.b, workers=workers)
        grad_x = convlab.tiled_conv_grad_input(self.grad_out, self.w, self.x.shape,
                                               workers=workers)
        grad_w = convlab.tiled_conv_grad_weight(self.grad_out, self.x, self.w.shape,
                                                workers=workers)
        grad_b = convlab.tiled_conv_grad_bias(self.grad_out, TILES)
        return y, grad_x, grad_w, grad_b

    @torch_anchor("torch 4 strided conv2d", group="forward + grads")
    def time_torch_four_forward_and_grads(self, dtype, workers):
        x, w, b = self.tx_leaf, self.tw_leaf, self.tb_leaf
        x.grad = w.grad = b.grad = None
        y = self._four_convs(x, w, b)
        y.backward(self.tgrad_out)
        return y.detach().numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy()

    @torch_anchor("torch grouped conv2d", group="forward + grads")
    def time_torch_grouped_forward_and_grads(self, dtype, workers):
        x, w, b = self.tx_leaf, self.tw_grouped_leaf, self.tb_grouped_leaf
        x.grad = w.grad = b.grad = None
        y = self._grouped(x, w, b)
        y.backward(self.tgrad_out)
        return (y.detach().numpy(), x.grad.numpy()) + self._from_grouped(w.grad, b.grad)
