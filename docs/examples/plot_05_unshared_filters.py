"""
Shared, tiled and locally connected filters
===========================================

A convolution layer applies the *same* filters at every position of its input. Two
layers relax that sharing: a **tiled** convolution (:func:`convlab.tiled_conv`) cycles
through a small pattern of filter banks, so that positions a whole number of tiles apart
share one, and a **locally connected** layer (:func:`convlab.local_conv`) gives every
output position filters of its own. This example trains the digits network of the
previous example three times, with each kind of first layer, and shows what each one
learns: one 3 x 3 kernel per filter, a 2 x 2 pattern of them, or an 8 x 8 grid of them.
"""

import importlib.util
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import convlab

# sphinx_gallery_thumbnail_number = 2

# %%
# The three layers
# ----------------
#
# All three take the same input, a batch ``(N, C, 8, 8)``, and give the same output,
# ``(N, 16, 8, 8)`` with padding 1; only the weights differ:
#
# ==================  ========================  ===================================
# first layer         weights                   kernel used at output position o
# ==================  ========================  ===================================
# shared              ``(F, C, 3, 3)``          ``w[f]``, at every position
# tiled, 2 x 2        ``(F, 2, 2, C, 3, 3)``    ``w[f, o_y % 2, o_x % 2]``
# locally connected   ``(F, 8, 8, C, 3, 3)``    ``w[f, o_y, o_x]``
# ==================  ========================  ===================================
#
# The shared and locally connected layers are the two ends of the tiled family: tiles of
# 1 x 1 give :func:`convlab.conv`, tiles the size of the output give
# :func:`convlab.local_conv`. With random weights:

rng = np.random.default_rng(0)
x = rng.standard_normal((4, 1, 8, 8))
w_shared = rng.standard_normal((16, 1, 3, 3))
y_shared = convlab.conv(x, w_shared, padding=1)

w_tiled = np.broadcast_to(w_shared[:, None, None], (16, 2, 2, 1, 3, 3))
w_local = np.broadcast_to(w_shared[:, None, None], (16, 8, 8, 1, 3, 3))
print("tiled_conv with four copies of each kernel == conv:",
      np.allclose(convlab.tiled_conv(x, w_tiled, padding=1), y_shared))
print("local_conv with 64 copies of each kernel == conv:",
      np.allclose(convlab.local_conv(x, w_local, padding=1), y_shared))

# %%
# Training the three networks
# ---------------------------
#
# The training script ``examples/train_digits.py`` is loaded as in the previous example.
# Its ``train`` function takes ``first_layer="conv"``, ``"local"`` or ``"tiled"`` and
# otherwise builds the same network, trained with the same seed, on the same data, in the
# same order of mini-batches (the later layers' starting weights differ, though: the
# first layer draws a different number of random values before them). Ten epochs each
# keep this page quick.


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

variants = ["conv", "tiled", "local"]
names = {"conv": "shared", "tiled": "tiled 2 x 2", "local": "locally connected"}
results = {}
for variant in variants:
    history, layers = train_digits.train(epochs=10, seed=0, first_layer=variant,
                                         workers=None, log=lambda line: None)
    results[variant] = (history, layers)

print(f"{'first layer':<18} {'weights':<22} {'parameters':>10} {'test accuracy':>14} "
      f"{'s / epoch':>10}")
for variant in variants:
    history, layers = results[variant]
    params = layers[0].params
    count = sum(value.size for value in params.values())
    print(f"{names[variant]:<18} {params['w'].shape!s:<22} {count:>10} "
          f"{history['test_accuracy'][-1]:>14.2%} {np.median(history['seconds']):>10.3f}")

# %%
# The parameter counts include the biases, which follow the weights' sharing (one per
# filter, per filter and tile position, or per filter and output position). On a data
# set this small, differences of a few test images between the variants are within the
# noise of a single run:

(x_train, _), (x_test, _) = train_digits.load_split(seed=0)
print(f"{len(x_train)} training images, {len(x_test)} test images: one test image is "
      f"{1 / len(x_test):.2%} of the accuracy")

# %%
# The test accuracy per epoch:

fig, axis = plt.subplots(figsize=(6.5, 3.6))
for variant in variants:
    history = results[variant][0]
    epochs = np.arange(1, len(history["test_accuracy"]) + 1)
    axis.plot(epochs, np.array(history["test_accuracy"]) * 100, "o-",
              label=names[variant])
axis.set_xlabel("epoch")
axis.set_ylabel("test accuracy (%)")
axis.set_title("three first layers, same network otherwise")
axis.grid(alpha=0.3)
axis.legend()
plt.tight_layout()

# %%
# What each first layer learned
# -----------------------------
#
# Every layer starts from random weights, and the script's ``build`` function, given the
# same seed, gives back the weights each network started from. How far the trained
# weights moved from them, relative to their size, already tells the three layers apart:
# a shared weight is trained by every position of every image, a locally connected one
# only by its own window.

initial = {variant: train_digits.build(variant, seed=0)[0].params["w"]
           for variant in variants}
trained = {variant: results[variant][1][0].params["w"] for variant in variants}
for variant in variants:
    change = np.linalg.norm(trained[variant] - initial[variant])
    print(f"{names[variant]:<18} |trained - initial| / |initial| = "
          f"{change / np.linalg.norm(initial[variant]):.2f}")

# %%
# Below, for the two filters of each network that moved most, the kernels are laid out
# as they act on the image: the shared kernel alone; the tiled layer's four kernels in
# their 2 x 2 pattern (6 x 6 weights), which repeats over the image like a checkerboard;
# the locally connected layer's 64 kernels, one per output position, side by side as a
# 24 x 24 mosaic (the mosaic's top-left 3 x 3 block computes the top-left output, and so
# on). The last column is that mosaic minus its initial value: what training added. The
# three networks are trained separately, so filter ``f`` of one has nothing to do with
# filter ``f`` of another.


def mosaic(kernels):
    """(rows, cols, k, k) kernels -> one (rows * k, cols * k) image."""
    rows, cols, k, _ = kernels.shape
    return kernels.transpose(0, 2, 1, 3).reshape(rows * k, cols * k)


def layout(w, f):
    """Filter f's kernels (one input channel) as they sit on the image."""
    return w[f, 0] if w.ndim == 4 else mosaic(w[f, :, :, 0])


def most_moved(variant, count):
    change = (trained[variant] - initial[variant]).reshape(len(trained[variant]), -1)
    return np.argsort(np.linalg.norm(change, axis=1))[::-1][:count]


columns = [(variant, False) for variant in variants] + [("local", True)]
shown_filters = 2
fig, axes = plt.subplots(shown_filters, len(columns), figsize=(12, 3.3 * shown_filters),
                         width_ratios=[1, 1, 1.4, 1.4])
for column, (variant, difference) in enumerate(columns):
    for row, f in enumerate(most_moved(variant, shown_filters)):
        axis = axes[row, column]
        image = layout(trained[variant], f)
        if difference:
            image = image - layout(initial[variant], f)
        limit = np.abs(image).max()
        shown = axis.imshow(image, cmap="RdBu_r", vmin=-limit, vmax=limit)
        for edge in np.arange(3, image.shape[0], 3) - 0.5:
            axis.axhline(edge, color="0.3", linewidth=0.5)
            axis.axvline(edge, color="0.3", linewidth=0.5)
        title = f"{names[variant]}, filter {f}"
        if difference:
            title += "\nchange since initialisation"
        else:
            title += f"\nweights {image.shape[0]} x {image.shape[1]}"
        axis.set_title(title, fontsize=9)
        axis.set_xticks([])
        axis.set_yticks([])
        fig.colorbar(shown, ax=axis, shrink=0.75)
plt.tight_layout()

# %%
# The shared kernels are small line and edge detectors, as in the previous example. The
# tiled layer's four kernels of one filter differ from one another: neighbouring outputs
# look for different things. The locally connected mosaics still look mostly like their
# random starting point: each of their kernels saw only its own window, and what training
# added is concentrated in the middle of the mosaic, where the digits' strokes are.
#
# Where the locally connected layer learned
# -----------------------------------------
#
# Summing that change over the filters, position by position, and setting it beside the
# mean training image makes the point: the digits are centred, the pixels near the left
# and right edges are almost always blank, and the kernels there got almost no gradient.

moved = np.sqrt(((trained["local"] - initial["local"]) ** 2).sum(axis=(0, 3, 4, 5)))
mean_digit = x_train[:, 0].mean(axis=0)

fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
shown = axes[0].imshow(mean_digit, cmap="gray_r")
axes[0].set_title("mean training image")
fig.colorbar(shown, ax=axes[0], shrink=0.85)
shown = axes[1].imshow(moved, cmap="viridis")
axes[1].set_title("locally connected layer:\nweight change per output position")
fig.colorbar(shown, ax=axes[1], shrink=0.85)
for axis in axes:
    axis.set_xticks(range(8))
    axis.set_yticks(range(8))
plt.tight_layout()

# %%
# When does each make sense?
# --------------------------
#
# * **Shared** kernels assume that a feature can appear anywhere and means the same thing
#   wherever it appears: the output moves with the input (translation equivariance),
#   every position's data trains the same few weights, and the layer has the fewest
#   parameters. It is the right default, above all with little data.
# * **Locally connected** kernels suit inputs that are aligned, so that a position always
#   holds the same kind of content: registered faces (the layers of DeepFace) or the
#   centred digits here. Each position can specialise, but the layer has as many kernels
#   as output positions, each trained only by its own window (the blank margins above
#   barely moved), and it loses translation equivariance: it needs more data, and more
#   memory, for the same input.
# * **Tiled** kernels sit in between: a few banks, alternating over the image, multiply
#   the parameters only by the number of tile positions. Neighbouring outputs can use
#   different filters, and pooling over a tile lets a network learn invariances other
#   than translation (Ngiam et al., 2010), while the layer stays almost as cheap as a
#   convolution.
