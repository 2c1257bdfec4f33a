"""
Training a digits classifier: loss curve and learned filters
============================================================

convlab has no automatic differentiation, but it has every gradient a convolutional
network needs: :func:`convlab.conv_grad_input`, :func:`convlab.conv_grad_weight` and
:func:`convlab.conv_grad_bias` for the convolutions, :func:`convlab.max_pool_grad` for
the pooling. The repository's script ``examples/train_digits.py`` chains them, by hand,
into a small LeNet-shaped network and trains it with stochastic gradient descent on
scikit-learn's bundled 8 x 8 handwritten digits. This example runs that training, plots
the loss and the test accuracy epoch by epoch, and shows the sixteen 3 x 3 kernels the
first layer has learned and what they make of one digit.
"""

import importlib.util
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import convlab

# %%
# The training script
# -------------------
#
# The script is not part of the installed package, so it is loaded from its file. It
# lives in the repository's ``examples/`` folder, two levels above this file; when
# ``__file__`` is not set (as in an interactive session), the current folder and its
# parents are searched for it.


def find_script(relative=Path("examples") / "train_digits.py"):
    candidates = []
    if "__file__" in globals():
        candidates.append(Path(__file__).resolve().parents[2] / relative)
    here = Path.cwd().resolve()
    candidates += [folder / relative for folder in (here, *here.parents)]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"{relative} not found from {here}")


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train_digits = load_module(find_script(), "train_digits")

# %%
# The network, as the script's ``build`` function assembles it. Each layer is a small
# class whose ``forward`` is one convlab call (``conv`` or ``max_pool``) and whose
# ``backward`` is that call's gradients; the last convolution's kernel covers its whole
# 2 x 2 input, so it acts as the dense layer that gives the ten class scores.

for layer in train_digits.build("conv", seed=0):
    shapes = {name: value.shape for name, value in layer.params.items()}
    print(f"{type(layer).__name__:<8} {shapes if shapes else '(no parameters)'}")

# %%
# Training
# --------
#
# The script's ``load_split`` gives the digits as ``(N, 1, 8, 8)`` float32 images scaled
# to [0, 1], split once, with a fixed seed, into a training and a test set:

(x_train, y_train), (x_test, y_test) = train_digits.load_split(seed=0)
print(f"training images {x_train.shape}, test images {x_test.shape}")

# %%
# ``train`` runs stochastic gradient descent with momentum in mini-batches of 32 images
# and logs one line per epoch. It returns the history (mean training loss, test accuracy
# and seconds of each epoch) and the trained layers.

history, layers = train_digits.train(epochs=15, seed=0, workers=None, log=print)
print(f"final test accuracy: {history['test_accuracy'][-1]:.2%} after "
      f"{len(history['loss'])} epochs, {sum(history['seconds']):.1f} s of training")

# %%
# The cross-entropy falls fast in the first few epochs and then flattens; the test
# accuracy, measured on images the network never trains on, rises with it.

epochs = np.arange(1, len(history["loss"]) + 1)
fig, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 3.6))
loss_axis.plot(epochs, history["loss"], "o-", color="tab:blue")
loss_axis.set_xlabel("epoch")
loss_axis.set_ylabel("mean training cross-entropy")
loss_axis.set_yscale("log")
loss_axis.set_title("training loss")
accuracy_axis.plot(epochs, np.array(history["test_accuracy"]) * 100, "o-",
                   color="tab:orange")
accuracy_axis.set_xlabel("epoch")
accuracy_axis.set_ylabel("test accuracy (%)")
accuracy_axis.set_title(f"test accuracy (final: {history['test_accuracy'][-1]:.1%})")
for axis in (loss_axis, accuracy_axis):
    axis.grid(alpha=0.3)
plt.tight_layout()

# %%
# The learned first-layer kernels
# -------------------------------
#
# The first layer's weights are ``layers[0].params["w"]``, of shape ``(F, C, 3, 3)``:
# sixteen kernels of one input channel. They started as random numbers. Nine weights
# leave little room for structure, and nothing forces the kernels to be tidy, but several
# now have a positive side facing a negative side: small oriented edge detectors, the
# learned cousins of the Sobel kernels of the first example. They share one symmetric
# color scale (red positive, blue negative), so their strengths compare.

w = layers[0].params["w"]
b = layers[0].params["b"]
print(f"first-layer weights {w.shape} {w.dtype}, biases {b.shape}")

limit = np.abs(w).max()
fig, axes = plt.subplots(4, 4, figsize=(6, 5.6), layout="constrained")
for index, (axis, kernel) in enumerate(zip(axes.flat, w[:, 0])):
    shown = axis.imshow(kernel, cmap="RdBu_r", vmin=-limit, vmax=limit)
    axis.set_title(f"filter {index}", fontsize=9)
    axis.set_axis_off()
fig.colorbar(shown, ax=axes, shrink=0.6)
fig.suptitle("the sixteen learned 3 x 3 kernels of the first layer")

# %%
# What the first layer sees
# -------------------------
#
# Passing one test digit through the first layer by hand, with the same call the network
# makes (:func:`convlab.conv` with the trained weights and biases, padding 1 so the maps
# stay 8 x 8, then the ReLU), shows the kernels at work: most maps keep the strokes of
# one orientation, or one side of them, and a map may stay dark when its kernel finds
# nothing of its kind in this digit.

digit = x_test[:1]                                          # (1, 1, 8, 8)
maps = np.maximum(convlab.conv(digit, w, b, padding=1), 0)  # (1, 16, 8, 8)
scores = train_digits.forward(layers, digit)
print(f"test image 0: label {y_test[0]}, predicted {scores.argmax()}; "
      f"feature maps {maps.shape}")

fig, axes = plt.subplots(3, 6, figsize=(10, 5.4), layout="constrained")
axes[0, 0].imshow(digit[0, 0], cmap="gray_r")
axes[0, 0].set_title(f"input (label {y_test[0]})", fontsize=9)
for axis in axes.flat[1:2]:
    axis.set_visible(False)
top = maps.max()
for index, axis in enumerate(axes.flat[2:]):
    shown = axis.imshow(maps[0, index], cmap="magma", vmin=0, vmax=top)
    axis.set_title(f"filter {index}", fontsize=9)
for axis in axes.flat:
    axis.set_xticks([])
    axis.set_yticks([])
fig.colorbar(shown, ax=axes[:, -1], shrink=0.8, label="ReLU(conv)")
fig.suptitle("first-layer feature maps of one test digit")
