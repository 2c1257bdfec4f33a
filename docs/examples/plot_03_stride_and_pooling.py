"""
Stride and pooling: how feature maps shrink
===========================================

A convolutional network makes its feature maps smaller as they go deeper, so that each
output sees a larger part of the image and the later layers cost less. Two operations do
the shrinking: a convolution with a **stride** larger than one, which computes only every
s-th output, and a **pooling** layer, which summarises each window of a map by its maximum
(:func:`convlab.max_pool`) or its mean (:func:`convlab.avg_pool`). This example applies
both to a small image with :func:`convlab.conv`, checks every output size against the
formula, and draws each map at its true size, one screen pixel per map pixel whatever
the map.
"""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import cbook

import convlab

# sphinx_gallery_thumbnail_number = 2

# %%
# A small image and an edge filter
# --------------------------------
#
# The input is a 64 x 64 crop of the photograph of Grace Hopper that ships with
# Matplotlib, around her eyes, reduced by keeping every third pixel: a layer input of
# shape ``(N, C, H, W) = (1, 1, 64, 64)``. The filter is a 5 x 5 vertical-edge detector,
# a smoothing kernel along the rows times a derivative along the columns, of shape
# ``(F, C, kh, kw) = (1, 1, 5, 5)``. After the convolution, a ReLU keeps the positive
# responses (edges where the image gets brighter from left to right), as a network
# would before pooling.
#
# The image has its mean subtracted, as network inputs usually do. The filter sums to zero
# along each row, so that changes no response inside the image; but the zero padding then
# acts as a mid-gray frame instead of a black one, and the image's border no longer shows
# as a strong edge.

with cbook.get_sample_data("grace_hopper.jpg") as file:
    rgb = plt.imread(file)
gray = rgb[..., :3] @ np.array([0.299, 0.587, 0.114]) / 255.0
image = gray[110:302:3, 165:357:3]
x = (image - image.mean())[None, None]

smooth = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16
derivative = np.array([-1.0, -2.0, 0.0, 2.0, 1.0]) / 6
kernel = np.outer(smooth, derivative)
w = kernel[None, None]
print(f"input x {x.shape}, filter w {w.shape}")

fig, axes = plt.subplots(1, 2, figsize=(7, 3.2), width_ratios=[64, 40])
axes[0].imshow(image, cmap="gray")
axes[0].set_title(f"input, {image.shape[0]} x {image.shape[1]}")
limit = np.abs(kernel).max()
shown = axes[1].imshow(kernel, cmap="RdBu_r", vmin=-limit, vmax=limit)
axes[1].set_title("5 x 5 vertical-edge kernel")
fig.colorbar(shown, ax=axes[1], shrink=0.8)
for axis in axes:
    axis.set_xticks([])
    axis.set_yticks([])
plt.tight_layout()

# %%
# The output-size formula
# -----------------------
#
# Along each spatial axis, a convolution with kernel size k, zero padding p on both
# sides, dilation d (the spacing between the kernel's taps) and stride s turns n samples
# into
#
# .. math::
#
#     n_\mathrm{out} = \left\lfloor \frac{n + 2p - d(k - 1) - 1}{s} \right\rfloor + 1 .
#
# The numerator is the number of steps the dilated kernel, ``d(k - 1) + 1`` samples wide,
# can take inside the padded input; every s-th of those positions gives an output.
# Pooling with windows of ``size`` samples follows the same rule with k = size and d = 1
# (and :func:`convlab.max_pool` / :func:`convlab.avg_pool` take the stride equal to the
# window by default, so that the windows sit side by side).


def output_size(n, k, stride=1, padding=0, dilation=1):
    return (n + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def show_formula(label, n, k, stride=1, padding=0, dilation=1, actual=None):
    numerator = n + 2 * padding - dilation * (k - 1) - 1
    size = output_size(n, k, stride, padding, dilation)
    print(f"{label:<28} floor(({n} + 2*{padding} - {dilation}*({k} - 1) - 1) / {stride}) + 1"
          f" = floor({numerator}/{stride}) + 1 = {size};  computed: {actual}")
    assert actual == size


# %%
# Stride
# ------
#
# With padding 2, a 5 x 5 kernel keeps the map's size at stride 1 (what
# ``padding="same"`` would pick). At stride 2 the same call computes only every second
# output along each axis: a quarter of the work, and exactly the stride-1 map with every
# other row and column dropped. A dilated kernel (taps 2 apart, so it spans 9 samples)
# without padding shows the floor at work.

n = image.shape[0]
y1 = np.maximum(convlab.conv(x, w, padding=2), 0)
y2 = np.maximum(convlab.conv(x, w, padding=2, stride=2), 0)
y3 = np.maximum(convlab.conv(x, w, stride=2, dilation=2), 0)

show_formula("conv, stride 1, padding 2", n, 5, 1, 2, 1, y1.shape[-1])
show_formula("conv, stride 2, padding 2", n, 5, 2, 2, 1, y2.shape[-1])
show_formula("conv, stride 2, dilation 2", n, 5, 2, 0, 2, y3.shape[-1])
print("stride-2 map == stride-1 map[::2, ::2]:", np.allclose(y2, y1[..., ::2, ::2]))

# %%
# Pooling
# -------
#
# Pooling the stride-1 map with 2 x 2 windows also halves it, but every output now looks
# at all four samples of its window instead of one: :func:`convlab.max_pool` keeps the
# strongest response, so a thin edge survives at full strength even when it falls between
# the kept rows and columns, while :func:`convlab.avg_pool` keeps the mean, which dilutes a
# thin edge with its zero neighbours. Pooling the stride-2 map once more brings it to
# 16 x 16: each output then summarises a 4 x 4 block of the input's positions.

p_max = convlab.max_pool(y1, 2)
p_avg = convlab.avg_pool(y1, 2)
p_deep = convlab.max_pool(y2, 2)

show_formula("max_pool(stride-1 map, 2)", n, 2, 2, 0, 1, p_max.shape[-1])
show_formula("avg_pool(stride-1 map, 2)", n, 2, 2, 0, 1, p_avg.shape[-1])
show_formula("max_pool(stride-2 map, 2)", y2.shape[-1], 2, 2, 0, 1, p_deep.shape[-1])

# %%
# One window, by hand: the 2 x 2 window of the stride-1 map where the stride-2 output
# (its top-left sample) misses the most of the window's maximum, and what each layer
# makes of it.

row, col = np.unravel_index(np.argmax(p_max[0, 0] - y2[0, 0]), p_max.shape[-2:])
window = y1[0, 0, 2 * row:2 * row + 2, 2 * col:2 * col + 2]
print(f"window at rows {2 * row}-{2 * row + 1}, columns {2 * col}-{2 * col + 1} of the "
      f"stride-1 map:\n{window.round(3)}")
print(f"max_pool -> {p_max[0, 0, row, col]:.3f}, avg_pool -> {p_avg[0, 0, row, col]:.3f}, "
      f"stride 2 keeps the top-left sample -> {y1[0, 0, 2 * row, 2 * col]:.3f}")

# %%
# Striding is blind to what falls between the samples it keeps, max pooling keeps the
# strongest response wherever it is in the window, and average pooling reports how much
# of the window responds. Networks use all three: strided convolutions are the cheapest,
# max pooling gives a little invariance to small shifts, and average pooling is common in
# the last layer, over the whole map.

# %%
# Every map at its true size
# --------------------------
#
# All the panels below share one scale: a map pixel is the same size on the screen in
# every panel, and the dashed square is the input's 64 x 64 extent. The maps share one
# color scale too, clipped at the 99.5th percentile of the stride-1 map. The stride-2 map is the stride-1 map sampled;
# the max-pooled map keeps every edge at full strength; the average-pooled map is smoother
# and dimmer; the dilated map is smaller still, since without padding its 9-sample span
# trims the border.
# The thin bright column at the right border of the padded maps is what remains of the
# padding's edge: the image is darker than its mean there.

panels = [
    (image, "input", "gray"),
    (y1[0, 0], "conv, stride 1, padding 2", "magma"),
    (y2[0, 0], "conv, stride 2, padding 2", "magma"),
    (y3[0, 0], "conv, stride 2, dilation 2", "magma"),
    (p_max[0, 0], "max_pool(stride-1 map, 2)", "magma"),
    (p_avg[0, 0], "avg_pool(stride-1 map, 2)", "magma"),
    (p_deep[0, 0], "max_pool(stride-2 map, 2)", "magma"),
]
top = np.percentile(y1, 99.5)
fig, axes = plt.subplots(2, 4, figsize=(11, 6.2))
for axis, (data, title, cmap) in zip(axes.flat, panels):
    limits = (0, 1) if cmap == "gray" else (0, top)
    shown = axis.imshow(data, cmap=cmap, vmin=limits[0], vmax=limits[1])
    axis.add_patch(plt.Rectangle((-0.5, -0.5), n, n, fill=False, linestyle="--",
                                 edgecolor="0.6"))
    axis.set_xlim(-1, n)
    axis.set_ylim(n, -1)
    axis.set_title(f"{title}\n{data.shape[0]} x {data.shape[1]}", fontsize=9)
    axis.set_xticks([0, 16, 32, 48])
    axis.set_yticks([0, 16, 32, 48])
    axis.tick_params(labelsize=7)
axes.flat[-1].set_axis_off()
fig.colorbar(shown, ax=axes.flat[-1], fraction=0.5, label="ReLU(conv) response")
plt.tight_layout()
