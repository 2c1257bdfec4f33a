"""Layer-level benchmarks: convlab.conv and its gradients next to PyTorch.

Every class times convlab and its PyTorch anchors on the same inputs, drawn in ``setup``
from ``numpy.random.default_rng(1234)`` (input ``x``, weight ``w``, bias ``b`` and the output
gradient ``grad_out``) and handed to PyTorch once, in ``setup``, by ``torch.from_numpy``
(no copy). The cases are those of issue 3, all 2-D (N, C, H, W):

- L1: N=32, C=64, 56 x 56, F=64, 3 x 3, stride 1, padding 1;
- L2: N=32, C=64, 56 x 56, F=128, 3 x 3, stride 2, padding 1;
- L3: N=256, C=1, 32 x 32, F=6, 5 x 5, padding 'valid' (0);
- L4: N=8, C=256, 14 x 14, F=256, 1 x 1.

Each case times the forward pass (``convlab.conv`` / ``torch.nn.functional.conv2d``), the
input gradient (``convlab.conv_grad_input`` / ``torch.nn.grad.conv2d_input``), the weight
gradient (``convlab.conv_grad_weight`` / ``torch.nn.grad.conv2d_weight``) and a training
step's worth of work as one call: the forward pass and the input, weight and bias gradients
(convlab's four functions / PyTorch autograd, ``y.backward(grad_out)`` with ``x``, ``w`` and
``b`` requiring grad). The bias is part of every forward pass. L1 also has a ``peakmem_``
pair for the forward pass.

Each case runs in float32 and float64 with ``workers`` 1 and 2 (convlab's ``workers=``).
Unlike the single-threaded anchors of the signal level, PyTorch is multi-threaded: setup
calls ``torch.set_num_threads(workers)``, and the anchors are timed at both worker counts,
each next to convlab at the same count (their metadata says so to compare.py:
``_bench_threads = "workers"``).

PyTorch is optional. It is imported in ``setup`` (not when this module is imported, so
that the signal-level benchmarks never load it); when it is not installed, the anchors'
own setup raises NotImplementedError, which asv reports as skipped, and the convlab methods
still run. Likewise each convlab method is skipped while convlab lacks the layer function
it calls. The metadata (``_bench_role``, ``_bench_label``, ``_bench_group``) is that of
``bench_signal.py``; every ``time_*`` method returns its result (numpy arrays, in the same
order on both sides) for compare.py's check that the methods of a group agree.
"""

import numpy as np

import convlab

DTYPES = ["float32", "float64"]
WORKERS = [1, 2]

TORCH_REQUIREMENT = "torch==2.13.0"


def _import_torch():
    """The torch module, or None when it is not installed (imported on first use)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def _requires_convlab(*names):
    # A method's own setup (asv calls the class's setup, then the method's, with the
    # parameters): skip while convlab lacks one of the layer functions the method calls.
    def setup(*params):
        missing = [name for name in names if not hasattr(convlab, name)]
        if missing:
            raise NotImplementedError("convlab has no " + ", ".join(missing) + " yet")

    return setup


def _requires_torch(*params):
    if _import_torch() is None:
        raise NotImplementedError(f"PyTorch is not installed (pip install {TORCH_REQUIREMENT})")


def convlab_variant(label, group, needs):
    """Mark a method as a convlab timing called ``label`` in compare.py's table; skipped while
    convlab lacks any function named in ``needs``."""

    def mark(method):
        method._bench_role = "convlab"
        method._bench_label = label
        method._bench_group = group
        method.setup = _requires_convlab(*needs)
        return method

    return mark


def torch_anchor(label, group):
    """Mark a method as a PyTorch anchor: timed at every ``workers`` value (PyTorch runs with
    ``torch.set_num_threads(workers)``), skipped when PyTorch is not installed."""

    def mark(method):
        method._bench_role = "anchor"
        method._bench_label = label
        method._bench_group = group
        method._bench_threads = "workers"
        method.setup = _requires_torch
        return method

    return mark


FORWARD = ("conv",)
GRAD_INPUT = ("conv_grad_input",)
GRAD_WEIGHT = ("conv_grad_weight",)
TRAINING_STEP = ("conv", "conv_grad_input", "conv_grad_weight", "conv_grad_bias")


class _LayerCase:
    """One convolution layer of the subclass's shapes, in every timed role."""

    params = [DTYPES, WORKERS]
    param_names = ["dtype", "workers"]
    timeout = 600
    case = ""
    description = ""

    x_shape = w_shape = ()      # (N, C, H, W) and (F, C, kH, kW)
    stride = 1
    padding = 0                 # as convlab is called
    torch_padding = 0           # the same padding as PyTorch's functions take it

    @classmethod
    def out_shape(cls):
        n, _, *size = cls.x_shape
        f, _, *kernel = cls.w_shape
        out = [(i + 2 * cls.torch_padding - k) // cls.stride + 1 for i, k in zip(size, kernel)]
        return (n, f, *out)

    def setup(self, dtype, workers):
        rng = np.random.default_rng(1234)
        self.x = rng.standard_normal(self.x_shape, dtype=dtype)
        self.w = rng.standard_normal(self.w_shape, dtype=dtype)
        self.b = rng.standard_normal(self.w_shape[0], dtype=dtype)
        self.grad_out = rng.standard_normal(self.out_shape(), dtype=dtype)
        self.workers = workers
        self.keywords = dict(stride=self.stride, padding=self.padding, workers=workers)

        torch = self.torch = _import_torch()
        if torch is None:
            return
        torch.set_num_threads(workers)
        self.tx = torch.from_numpy(self.x)
        self.tw = torch.from_numpy(self.w)
        self.tb = torch.from_numpy(self.b)
        self.tgrad_out = torch.from_numpy(self.grad_out)
        # Leaves of the autograd graph (sharing memory with the arrays above; autograd
        # never writes to them).
        self.tx_leaf = torch.from_numpy(self.x).requires_grad_()
        self.tw_leaf = torch.from_numpy(self.w).requires_grad_()
        self.tb_leaf = torch.from_numpy(self.b).requires_grad_()

    # forward

    @convlab_variant("forward", group="forward", needs=FORWARD)
    def time_convlab_forward(self, dtype, workers):
        return convlab.conv(self.x, self.w, self.b, **self.keywords)

    @torch_anchor("torch F.conv2d", group="forward")
    def time_torch_forward(self, dtype, workers):
        torch = self.torch
        with torch.no_grad():
            return torch.nn.functional.conv2d(
                self.tx, self.tw, self.tb, stride=self.stride, padding=self.torch_padding
            ).numpy()

    # input gradient

    @convlab_variant("grad input", group="grad input", needs=GRAD_INPUT)
    def time_convlab_grad_input(self, dtype, workers):
        return convlab.conv_grad_input(self.grad_out, self.w, self.x.shape, **self.keywords)

    @torch_anchor("torch grad.conv2d_input", group="grad input")
    def time_torch_grad_input(self, dtype, workers):
        torch = self.torch
        with torch.no_grad():
            return torch.nn.grad.conv2d_input(
                self.x.shape, self.tw, self.tgrad_out,
                stride=self.stride, padding=self.torch_padding,
            ).numpy()

    # weight gradient

    @convlab_variant("grad weight", group="grad weight", needs=GRAD_WEIGHT)
    def time_convlab_grad_weight(self, dtype, workers):
        return convlab.conv_grad_weight(self.grad_out, self.x, self.w.shape, **self.keywords)

    @torch_anchor("torch grad.conv2d_weight", group="grad weight")
    def time_torch_grad_weight(self, dtype, workers):
        torch = self.torch
        with torch.no_grad():
            return torch.nn.grad.conv2d_weight(
                self.tx, self.w.shape, self.tgrad_out,
                stride=self.stride, padding=self.torch_padding,
            ).numpy()

    # forward + every gradient (what one training step asks of the layer)

    @convlab_variant("forward + grads", group="forward + grads", needs=TRAINING_STEP)
    def time_convlab_forward_and_grads(self, dtype, workers):
        y = convlab.conv(self.x, self.w, self.b, **self.keywords)
        grad_x = convlab.conv_grad_input(self.grad_out, self.w, self.x.shape, **self.keywords)
        grad_w = convlab.conv_grad_weight(self.grad_out, self.x, self.w.shape, **self.keywords)
        grad_b = convlab.conv_grad_bias(self.grad_out)
        return y, grad_x, grad_w, grad_b

    @torch_anchor("torch autograd", group="forward + grads")
    def time_torch_forward_and_grads(self, dtype, workers):
        torch = self.torch
        x, w, b = self.tx_leaf, self.tw_leaf, self.tb_leaf
        x.grad = w.grad = b.grad = None   # fresh gradients, as convlab returns fresh arrays
        y = torch.nn.functional.conv2d(x, w, b, stride=self.stride, padding=self.torch_padding)
        y.backward(self.tgrad_out)
        return y.detach().numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy()


class L1Conv3x3(_LayerCase):
    """L1: N=32, C=64, 56 x 56, F=64, 3 x 3, stride 1, padding 1."""

    case = "L1"
    description = "N=32, C=64, 56 x 56, F=64, 3 x 3, stride 1, padding 1"

    x_shape = (32, 64, 56, 56)
    w_shape = (64, 64, 3, 3)
    stride = 1
    padding = torch_padding = 1

    # Peak memory of the forward pass. asv reports the peak resident size of the whole
    # process (imports and inputs included); setup imports PyTorch for both methods, so the
    # two peaks differ by what the forward passes allocate. compare.py measures the
    # increase above the inputs instead, in a fresh process per method.

    @convlab_variant("forward", group="forward", needs=FORWARD)
    def peakmem_convlab_forward(self, dtype, workers):
        convlab.conv(self.x, self.w, self.b, **self.keywords)

    @torch_anchor("torch F.conv2d", group="forward")
    def peakmem_torch_forward(self, dtype, workers):
        torch = self.torch
        with torch.no_grad():
            torch.nn.functional.conv2d(
                self.tx, self.tw, self.tb, stride=self.stride, padding=self.torch_padding
            )


class L2Conv3x3Stride2(_LayerCase):
    """L2: N=32, C=64, 56 x 56, F=128, 3 x 3, stride 2, padding 1."""

    case = "L2"
    description = "N=32, C=64, 56 x 56, F=128, 3 x 3, stride 2, padding 1"

    x_shape = (32, 64, 56, 56)
    w_shape = (128, 64, 3, 3)
    stride = 2
    padding = torch_padding = 1


class L3Conv5x5SingleChannel(_LayerCase):
    """L3: N=256, C=1, 32 x 32, F=6, 5 x 5, padding 'valid' (LeNet's first layer)."""

    case = "L3"
    description = "N=256, C=1, 32 x 32, F=6, 5 x 5, padding 'valid'"

    x_shape = (256, 1, 32, 32)
    w_shape = (6, 1, 5, 5)
    stride = 1
    padding = "valid"
    torch_padding = 0


class L4Conv1x1(_LayerCase):
    """L4: N=8, C=256, 14 x 14, F=256, 1 x 1 (a pointwise convolution)."""

    case = "L4"
    description = "N=8, C=256, 14 x 14, F=256, 1 x 1"

    x_shape = (8, 256, 14, 14)
    w_shape = (256, 256, 1, 1)
    stride = 1
    padding = torch_padding = 0
