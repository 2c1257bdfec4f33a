"""Train a small convolutional network on handwritten digits with convlab's gradients alone.

The network is LeNet's shape scaled to 8 x 8 images::

    conv 3 x 3 (16 filters) -> ReLU -> max-pool 2 x 2
    -> conv 3 x 3 (32 filters) -> ReLU -> max-pool 2 x 2
    -> dense (128 -> 10) -> softmax

written with numpy and convlab only: every layer's forward pass and every gradient
(input, weight and bias) is a convlab call -- ``conv`` / ``conv_grad_input`` /
``conv_grad_weight`` / ``conv_grad_bias``, ``max_pool`` / ``max_pool_grad`` -- and no
automatic differentiation is involved. The dense layer is a convolution whose kernel covers
the whole 2 x 2 feature map, so its gradients are convlab's too; numpy computes only the
ReLU mask, the softmax cross-entropy and the momentum update.

The data are scikit-learn's bundled digits (``sklearn.datasets.load_digits``: 1797 images of
8 x 8 pixels, shipped inside the package, nothing downloaded), split once with a fixed seed
into 1347 training and 450 test images.

    python examples/train_digits.py                     # shared 3 x 3 kernels
    python examples/train_digits.py --first-layer local # locally connected first layer
    python examples/train_digits.py --first-layer tiled # tiled first layer (2 x 2 tiles)
    python examples/train_digits.py --torch             # also time the same network in PyTorch

It prints the loss, the test accuracy and the seconds of every epoch, and saves the loss
curve as a PNG (``--plot``, needs matplotlib).
"""

import argparse
import time

import numpy as np

import convlab

FIRST_LAYERS = ("conv", "local", "tiled")


def load_split(seed=0, test_size=450, dtype=np.float32):
    """The digits as (N, 1, 8, 8) images scaled to [0, 1], split into training and test
    sets by one fixed permutation."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(dtype)[:, None]
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    test, train = order[:test_size], order[test_size:]
    return (images[train], labels[train]), (images[test], labels[test])


def _he(rng, shape, fan_in, dtype):
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)


class Conv:
    """Shared kernels: convlab.conv and its three gradients."""

    def __init__(self, rng, channels, filters, k, padding, in_size, dtype):
        self.params = {"w": _he(rng, (filters, channels, k, k), channels * k * k, dtype),
                       "b": np.zeros(filters, dtype)}
        self.padding = padding
        self.out_size = in_size + 2 * padding - k + 1

    def forward(self, x, workers):
        self.x = x
        return convlab.conv(x, self.params["w"], self.params["b"], padding=self.padding,
                            workers=workers)

    def backward(self, g, workers):
        w = self.params["w"]
        self.grads = {"w": convlab.conv_grad_weight(g, self.x, w.shape, padding=self.padding,
                                                    workers=workers),
                      "b": convlab.conv_grad_bias(g)}
        return convlab.conv_grad_input(g, w, self.x.shape, padding=self.padding,
                                       workers=workers)


class Local:
    """Locally connected: one kernel per output position (convlab.local_conv)."""

    def __init__(self, rng, channels, filters, k, padding, in_size, dtype):
        out = in_size + 2 * padding - k + 1
        self.params = {"w": _he(rng, (filters, out, out, channels, k, k), channels * k * k,
                                dtype),
                       "b": np.zeros((filters, out, out), dtype)}
        self.padding = padding
        self.out_size = out

    def forward(self, x, workers):
        self.x = x
        return convlab.local_conv(x, self.params["w"], self.params["b"], padding=self.padding,
                                  workers=workers)

    def backward(self, g, workers):
        w = self.params["w"]
        self.grads = {"w": convlab.local_conv_grad_weight(g, self.x, w.shape,
                                                          padding=self.padding,
                                                          workers=workers),
                      "b": convlab.local_conv_grad_bias(g)}
        return convlab.local_conv_grad_input(g, w, self.x.shape, padding=self.padding,
                                             workers=workers)


class Tiled:
    """Tiled: a 2 x 2 pattern of kernels repeated over the map (convlab.tiled_conv)."""

    tiles = (2, 2)

    def __init__(self, rng, channels, filters, k, padding, in_size, dtype):
        self.params = {"w": _he(rng, (filters,) + self.tiles + (channels, k, k),
                                channels * k * k, dtype),
                       "b": np.zeros((filters,) + self.tiles, dtype)}
        self.padding = padding
        self.out_size = in_size + 2 * padding - k + 1

    def forward(self, x, workers):
        self.x = x
        return convlab.tiled_conv(x, self.params["w"], self.params["b"], padding=self.padding,
                                  workers=workers)

    def backward(self, g, workers):
        w = self.params["w"]
        self.grads = {"w": convlab.tiled_conv_grad_weight(g, self.x, w.shape,
                                                          padding=self.padding,
                                                          workers=workers),
                      "b": convlab.tiled_conv_grad_bias(g, self.tiles)}
        return convlab.tiled_conv_grad_input(g, w, self.x.shape, padding=self.padding,
                                             workers=workers)


class ReLU:
    params = {}

    def forward(self, x, workers):
        self.positive = x > 0
        return np.where(self.positive, x, 0).astype(x.dtype, copy=False)

    def backward(self, g, workers):
        self.grads = {}
        return np.where(self.positive, g, 0).astype(g.dtype, copy=False)


class MaxPool:
    """2 x 2 windows, stride 2 (convlab.max_pool and its gradient)."""

    params = {}

    def forward(self, x, workers):
        self.x = x
        return convlab.max_pool(x, 2, workers=workers)

    def backward(self, g, workers):
        self.grads = {}
        return convlab.max_pool_grad(g, self.x, 2, workers=workers)


def build(first_layer="conv", seed=0, dtype=np.float32):
    """The network's layers, initialised from `seed`; `first_layer` is "conv", "local" or
    "tiled"."""
    if first_layer not in FIRST_LAYERS:
        raise ValueError(f"first_layer must be one of {FIRST_LAYERS}; got {first_layer!r}")
    # one generator per layer, so that the layers after the first start from the same
    # weights whatever the first layer is
    first_rng, second_rng, dense_rng = (np.random.default_rng(s)
                                        for s in np.random.SeedSequence(seed).spawn(3))
    first = {"conv": Conv, "local": Local, "tiled": Tiled}[first_layer]
    return [
        first(first_rng, 1, 16, 3, 1, 8, dtype), ReLU(), MaxPool(),  # 8 x 8 -> 4 x 4
        Conv(second_rng, 16, 32, 3, 1, 4, dtype), ReLU(), MaxPool(), # 4 x 4 -> 2 x 2
        Conv(dense_rng, 32, 10, 2, 0, 2, dtype),                     # dense: 128 -> 10
    ]


def forward(layers, x, workers=None):
    for layer in layers:
        x = layer.forward(x, workers)
    return x.reshape(len(x), -1)                                     # (N, 10) logits


def softmax_cross_entropy(logits, labels):
    """Mean loss over the batch and its gradient with respect to the logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(labels))
    loss = -log_p[rows, labels].mean()
    grad = np.exp(log_p)
    grad[rows, labels] -= 1
    return float(loss), (grad / len(labels)).astype(logits.dtype)


def accuracy(layers, images, labels, workers=None, batch=512):
    hits = 0
    for start in range(0, len(labels), batch):
        logits = forward(layers, images[start:start + batch], workers)
        hits += int((logits.argmax(axis=1) == labels[start:start + batch]).sum())
    return hits / len(labels)


def train(epochs=30, batch=32, lr=0.05, momentum=0.9, first_layer="conv", seed=0,
          workers=None, log=print):
    """Train with SGD and momentum; returns the per-epoch history and the layers."""
    (x_train, y_train), (x_test, y_test) = load_split(seed=0)
    layers = build(first_layer, seed)
    velocity = [{k: np.zeros_like(v) for k, v in layer.params.items()} for layer in layers]
    rng = np.random.default_rng(seed + 1)
    history = {"loss": [], "test_accuracy": [], "seconds": []}
    for epoch in range(epochs):
        start, losses = time.perf_counter(), []
        order = rng.permutation(len(y_train))
        for first in range(0, len(order), batch):
            rows = order[first:first + batch]
            logits = forward(layers, x_train[rows], workers)
            loss, g = softmax_cross_entropy(logits, y_train[rows])
            losses.append(loss)
            g = g.reshape(g.shape + (1, 1))
            for layer in reversed(layers):
                g = layer.backward(g, workers)
            for layer, v in zip(layers, velocity):
                for name, p in layer.params.items():
                    v[name] *= momentum
                    v[name] -= lr * layer.grads[name]
                    p += v[name]
        seconds = time.perf_counter() - start
        history["loss"].append(float(np.mean(losses)))
        history["seconds"].append(seconds)
        history["test_accuracy"].append(accuracy(layers, x_test, y_test, workers))
        log(f"epoch {epoch + 1:3d}  loss {history['loss'][-1]:.4f}  "
            f"test accuracy {history['test_accuracy'][-1]:.4f}  {seconds:.2f} s")
    return history, layers


def torch_seconds_per_epoch(epochs=3, batch=32, lr=0.05, momentum=0.9, seed=0, threads=None):
    """The same network and training loop in PyTorch (autograd); median seconds per epoch."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    (x_train, y_train), _ = load_split(seed=0)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 10, 2), torch.nn.Flatten())
    optimiser = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    x_all, y_all = torch.from_numpy(x_train), torch.from_numpy(y_train)
    rng = np.random.default_rng(seed + 1)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.from_numpy(rng.permutation(len(y_train)))
        for first in range(0, len(order), batch):
            rows = order[first:first + batch]
            optimiser.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x_all[rows]), y_all[rows])
            loss.backward()
            optimiser.step()
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds))


def save_loss_curve(history, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, loss_axis = plt.subplots(figsize=(6, 3.5))
    loss_axis.plot(epochs, history["loss"], color="tab:blue", label="training loss")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("cross-entropy", color="tab:blue")
    accuracy_axis = loss_axis.twinx()
    accuracy_axis.plot(epochs, history["test_accuracy"], color="tab:orange",
                       label="test accuracy")
    accuracy_axis.set_ylabel("test accuracy", color="tab:orange")
    loss_axis.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--first-layer", choices=FIRST_LAYERS, default="conv")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None,
                        help="convlab's worker threads (default: all usable cores)")
    parser.add_argument("--plot", default="train_digits_loss.png",
                        help="where to save the loss curve ('' for none)")
    parser.add_argument("--torch", action="store_true",
                        help="also time the same network in PyTorch (seconds per epoch)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    history, _ = train(args.epochs, args.batch, args.lr, args.momentum, args.first_layer,
                       args.seed, args.workers)
    total = time.perf_counter() - start
    per_epoch = float(np.median(history["seconds"]))
    print(f"first layer {args.first_layer}: test accuracy {history['test_accuracy'][-1]:.4f} "
          f"after {args.epochs} epochs, {total:.1f} s in all, {per_epoch:.3f} s per epoch "
          f"(median)")
    if args.torch:
        threads = args.workers if args.workers and args.workers > 0 else None
        torch_epoch = torch_seconds_per_epoch(batch=args.batch, lr=args.lr,
                                              momentum=args.momentum, seed=args.seed,
                                              threads=threads)
        print(f"PyTorch, the same network (shared first layer): {torch_epoch:.3f} s per epoch "
              f"(median of 3); PyTorch / convlab = {torch_epoch / per_epoch:.2f}")
    if args.plot:
        save_loss_curve(history, args.plot,
                        f"digits, first layer {args.first_layer}: "
                        f"{history['test_accuracy'][-1]:.1%} test accuracy")
        print(f"loss curve saved to {args.plot}")


if __name__ == "__main__":
    main()
