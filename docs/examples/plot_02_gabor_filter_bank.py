"""
A Gabor filter bank
===================

A Gabor filter is a sinusoidal grating seen through a Gaussian window. It responds to
stripes and edges of one orientation and one spacing (wavelength), and little to
anything else; a *bank* of them, at several orientations and wavelengths, describes the
local texture of an image, much as the first layer of a trained convolutional network
(or of the visual cortex) does. This example builds a bank of eight Gabor filters with
NumPy, applies all of them to a photograph in **one** call of :func:`convlab.conv`, the
batched, multi-filter convolution layer, and shows which parts of the picture each filter
picks out.
"""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import cbook

import convlab

# sphinx_gallery_thumbnail_number = 2

# %%
# The filters
# -----------
#
# On a grid of ``size x size`` pixels centred on zero, a Gabor kernel of orientation
# :math:`\theta` and wavelength :math:`\lambda` is
#
# .. math::
#
#     g(x, y) = \exp\left(-\frac{x^2 + y^2}{2\sigma^2}\right)
#               \cos\left(\frac{2\pi u}{\lambda} + \varphi\right),
#     \qquad u = x \cos\theta + y \sin\theta,
#
# a cosine wave travelling in the direction :math:`\theta` (its crests are lines
# perpendicular to it) under a Gaussian envelope whose width :math:`\sigma` grows with the
# wavelength, so that every kernel holds about the same number of stripes. The phase
# :math:`\varphi = 0` gives an even, symmetric kernel (a bright line between two dark
# ones); :math:`\varphi = -\pi/2` an odd kernel, a sine, that responds to a step edge. Each
# kernel has its mean subtracted, so that a flat patch of the image gives no response,
# and is scaled to unit norm, so that the responses of all the kernels compare.


def gabor(size, theta, wavelength, phase=0.0):
    """A zero-mean, unit-norm Gabor kernel; theta in radians, counterclockwise from the
    x axis pointing right (rows count downwards, so y is minus the row offset)."""
    half = size // 2
    y, x = np.mgrid[half:-half - 1:-1, -half:half + 1].astype(float)
    sigma = 0.5 * wavelength
    u = x * np.cos(theta) + y * np.sin(theta)
    kernel = np.exp(-(x**2 + y**2) / (2 * sigma**2)) * np.cos(2 * np.pi * u / wavelength
                                                              + phase)
    kernel -= kernel.mean()
    return kernel / np.linalg.norm(kernel)


# %%
# Four orientations and two wavelengths make eight filters; each comes as an even and an
# odd kernel, sixteen kernels in all. A bank passed to :func:`convlab.conv` must have one
# kernel size, so the short-wavelength kernels are drawn on the same 31 x 31 grid as the
# long ones (their envelope is nearly zero near the border of it).

size = 31
thetas = np.deg2rad([0, 45, 90, 135])
wavelengths = [5.0, 10.0]
filters = [(theta, wavelength) for wavelength in wavelengths for theta in thetas]
even = np.stack([gabor(size, theta, wavelength) for theta, wavelength in filters])
odd = np.stack([gabor(size, theta, wavelength, -np.pi / 2)
                for theta, wavelength in filters])
bank = np.concatenate([even, odd])                       # (16, 31, 31)
print(f"filter bank: {bank.shape} (even kernels, then odd kernels)")

fig, axes = plt.subplots(4, 4, figsize=(8, 8.4))
for row, (kernels, label) in enumerate([(even, "even"), (odd, "odd")]):
    for index, ((theta, wavelength), kernel) in enumerate(zip(filters, kernels)):
        axis = axes[2 * row + index // 4, index % 4]
        limit = np.abs(kernel).max()
        axis.imshow(kernel, cmap="RdBu_r", vmin=-limit, vmax=limit)
        axis.set_title(f"{label}, {np.rad2deg(theta):.0f}°, λ={wavelength:g}", fontsize=9)
        axis.set_axis_off()
fig.suptitle(f"the bank's {len(bank)} kernels, {size} x {size} pixels (red > 0 > blue)")
plt.tight_layout()

# %%
# One layer call for the whole bank
# ---------------------------------
#
# :func:`convlab.conv` is the convolution layer of a neural network: it takes a batch of
# images with channels, ``x`` of shape ``(N, C, H, W)``, and a bank of filters, ``w`` of
# shape ``(F, C, kh, kw)``, and returns ``(N, F, H_out, W_out)``, one feature map per
# image and filter. Here N = 1 photograph with C = 1 channel, and F = 16 kernels of one
# channel each, so the image gets two leading axes and the bank one, in its second
# place. ``padding="same"`` pads with zeros so that every map keeps the image's size.
#
# Like every deep-learning "convolution", :func:`convlab.conv` computes a correlation
# (``flip=True`` would flip the kernels). That does not matter here: flipping an even
# kernel leaves it unchanged and an odd one only changes its sign.
#
# Zero padding puts a dark frame around the picture, whose edge every kernel would see.
# Since the kernels have zero mean, subtracting the image's mean changes no response away
# from the border, and it turns the frame into a mid-gray one, a much weaker edge.

with cbook.get_sample_data("grace_hopper.jpg") as file:
    rgb = plt.imread(file)
image = rgb[..., :3] @ np.array([0.299, 0.587, 0.114]) / 255.0

x = (image - image.mean())[None, None]                   # (1, 1, 600, 512)
w = bank[:, None]                                        # (16, 1, 31, 31)
maps = convlab.conv(x, w, padding="same")
print(f"x {x.shape}, w {w.shape} -> feature maps {maps.shape}")

# %%
# An even kernel answers a line with a peak and an odd kernel answers an edge, and each
# answers with oscillating signs around the feature. Their *energy*,
# :math:`\sqrt{\mathrm{even}^2 + \mathrm{odd}^2}`, is the amplitude of the local grating:
# it is large wherever the image holds structure of the filter's orientation and
# wavelength, whatever its phase, and smooth over the region (the even and odd kernels
# form a quadrature pair).

energy = np.hypot(maps[0, :len(filters)], maps[0, len(filters):])   # (8, 600, 512)

# %%
# The feature maps
# ----------------
#
# The rows are the two wavelengths and the columns the four orientations. A photograph
# holds more contrast at coarse scales than at fine ones, so the 10-pixel filters respond
# more strongly than the 5-pixel ones; each row therefore has its own color scale, the
# 99.5th percentile of its energy (leaving out a band half a kernel wide along the border,
# where the padding still shows).

margin = size // 2
fig, axes = plt.subplots(2, 4, figsize=(11, 6.4), layout="constrained")
for row, wavelength in enumerate(wavelengths):
    channels = [index for index, f in enumerate(filters) if f[1] == wavelength]
    top = np.percentile(energy[channels, margin:-margin, margin:-margin], 99.5)
    for axis, index in zip(axes[row], channels):
        shown = axis.imshow(energy[index], cmap="inferno", vmin=0, vmax=top)
        axis.set_title(f"θ = {np.rad2deg(filters[index][0]):.0f}°, λ = {wavelength:g} px")
        axis.set_axis_off()
    fig.colorbar(shown, ax=axes[row], shrink=0.9, label="Gabor energy")
fig.suptitle("energy of each filter's response to the photograph")

# %%
# Each filter finds the lines and edges parallel to its stripes. The θ = 0° filters (vertical stripes) light up the vertical cord of the flag,
# the sides of the collar and the dividers of the ribbons; the θ = 90° filters
# (horizontal stripes) the eyebrows, the rims of the glasses, the mouth and the ribbons'
# rows. The diagonal filters each pick one slope of the shoulders and lapels, and the
# arms of the stars that share it. The 5-pixel filters outline fine detail, such as the
# insignia on the cap and the ribbons; the 10-pixel filters respond to broader structure
# and give smoother maps.
#
# Up close, on the eyes and the glasses, here is one filter (θ = 90°, λ = 5 px): its
# even kernel answers the thin horizontal rims with a peak flanked by two troughs, its
# odd kernel answers each side of them with opposite signs, and the energy merges the two
# into one smooth band along each rim.

crop = (slice(150, 300), slice(170, 350))
index = filters.index((thetas[2], 5.0))
panels = [(maps[0, index], "even response"),
          (maps[0, len(filters) + index], "odd response"),
          (energy[index], "energy")]
fig, axes = plt.subplots(1, 4, figsize=(12, 3.2))
axes[0].imshow(image[crop], cmap="gray")
axes[0].set_title("crop of the photograph")
for axis, (data, title) in zip(axes[1:], panels):
    limit = np.percentile(np.abs(data[crop]), 99.5)
    if title == "energy":
        shown = axis.imshow(data[crop], cmap="inferno", vmin=0, vmax=limit)
    else:
        shown = axis.imshow(data[crop], cmap="RdBu_r", vmin=-limit, vmax=limit)
    axis.set_title(title)
    fig.colorbar(shown, ax=axis, shrink=0.85)
for axis in axes:
    axis.set_axis_off()
fig.suptitle("one filter up close: θ = 90°, λ = 5 px")
plt.tight_layout()
