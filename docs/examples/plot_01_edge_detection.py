"""
Edge detection with hand-made kernels
=====================================

An edge is a place where the brightness changes quickly, so finding edges means
estimating the image's derivatives. Small kernels do that: the **Sobel** kernels estimate
the horizontal and vertical first derivatives, and the **Laplacian** kernel the sum of the
second derivatives. This example applies them to a photograph with
:func:`convlab.correlate` and :func:`convlab.convolve`, the SciPy-style functions that take
one array and one kernel, and shows what each kernel picks out. It also shows the one
difference between the two functions: :func:`~convlab.convolve` flips the kernel.
"""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import cbook
from scipy import ndimage

import convlab

# sphinx_gallery_thumbnail_number = 2

# %%
# A grayscale photograph
# ----------------------
#
# Matplotlib ships a portrait of Grace Hopper among its sample data, so nothing needs to
# be downloaded. It is an RGB image of 8-bit integers; a weighted sum of the three
# channels (the ITU-R BT.601 luma weights) turns it into one float channel in [0, 1].

with cbook.get_sample_data("grace_hopper.jpg") as file:
    rgb = plt.imread(file)
image = rgb[..., :3] @ np.array([0.299, 0.587, 0.114]) / 255.0
print(f"photograph: {rgb.shape} {rgb.dtype} -> grayscale {image.shape} {image.dtype}")

# %%
# Correlation and convolution
# ---------------------------
#
# :func:`convlab.correlate` slides the kernel over the image and, at every position, sums
# the products of the kernel with the pixels under it: kernel entry ``[i, j]`` multiplies
# the pixel ``i`` rows and ``j`` columns away from the window's corner, as the kernel is
# written. :func:`convlab.convolve` does the same with the kernel reversed along both axes
# (the mathematical convolution).
#
# The Sobel kernel below is written *as a correlation kernel*: its right column is
# positive and its left column negative, so correlating with it gives a positive answer
# where the image gets brighter from left to right. The vertical kernel is its transpose
# (positive where the image gets brighter downwards).

sobel_x = np.array([[-1.0, 0.0, 1.0],
                    [-2.0, 0.0, 2.0],
                    [-1.0, 0.0, 1.0]])
sobel_y = sobel_x.T

# %%
# ``mode="same"`` keeps the output the size of the image, assuming zeros beyond its
# border. Convolving with the same array flips it, which for an antisymmetric kernel such
# as Sobel's only changes the sign of the result; convolving with the kernel flipped
# beforehand gives the correlation back:

gx_same = convlab.correlate(image, sobel_x, mode="same")
flipped = sobel_x[::-1, ::-1]
print("convolve(image, sobel_x) == -correlate(image, sobel_x):",
      np.allclose(convlab.convolve(image, sobel_x, mode="same"), -gx_same))
print("convolve(image, flipped sobel_x) == correlate(image, sobel_x):",
      np.allclose(convlab.convolve(image, flipped, mode="same"), gx_same))

# %%
# Here are the two signed derivatives on a crop around the eyes: correlation marks a
# dark-to-bright step (from left to right) in red, and convolution with the same array
# marks it in blue. The color scale is clipped at the 99th percentile of the absolute
# values so that the weaker edges show.

rows, cols = slice(150, 300), slice(170, 350)
crop_corr = gx_same[rows, cols]
crop_conv = convlab.convolve(image, sobel_x, mode="same")[rows, cols]
limit = np.percentile(np.abs(crop_corr), 99)

fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
axes[0].imshow(image[rows, cols], cmap="gray")
axes[0].set_title("crop of the photograph")
for axis, data, title in [(axes[1], crop_corr, "correlate(image, sobel_x)"),
                          (axes[2], crop_conv, "convolve(image, sobel_x)")]:
    shown = axis.imshow(data, cmap="RdBu_r", vmin=-limit, vmax=limit)
    axis.set_title(title)
    fig.colorbar(shown, ax=axis, shrink=0.8)
for axis in axes:
    axis.set_axis_off()
plt.tight_layout()

# %%
# Borders
# -------
#
# Zeros beyond the border are a sharp drop from a bright image to black, so
# ``mode="same"`` reports a false edge all around the picture. The usual remedy is to
# extend the image by repeating its edge pixels (:func:`numpy.pad` with
# ``mode="edge"``), by half the kernel on every side, and to keep only the outputs whose
# window lies entirely inside the extended image (``mode="valid"``): the result again has
# the image's size. SciPy's ``ndimage.correlate`` calls that border rule "nearest", and
# agrees with it:


def correlate_nearest(image, kernel, **options):
    """Correlate with the image's edge pixels repeated beyond its border (output: the
    image's size, for a kernel of odd sizes)."""
    half = [(size // 2, size // 2) for size in kernel.shape]
    return convlab.correlate(np.pad(image, half, mode="edge"), kernel, mode="valid",
                             **options)


gx = correlate_nearest(image, sobel_x)
gy = correlate_nearest(image, sobel_y)
print(f"valid correlation of the padded image: {gx.shape}; matches "
      f"ndimage.correlate(mode='nearest'):",
      np.allclose(gx, ndimage.correlate(image, sobel_x, mode="nearest")))
print(f"largest |Gx| in the first column: {np.abs(gx_same[:, 0]).max():.2f} with zero "
      f"padding, {np.abs(gx[:, 0]).max():.2f} with edge padding")

# %%
# Gradient magnitude and the Laplacian
# ------------------------------------
#
# The gradient magnitude :math:`\sqrt{G_x^2 + G_y^2}` responds to edges of every
# orientation. The Laplacian kernel is symmetric, so correlation and convolution give the
# same result; it responds to thin lines and to both sides of every edge, and since it is
# a second derivative it amplifies pixel noise (and JPEG artefacts) much more than the
# Sobel kernels do. Smoothing first with a Gaussian kernel (a "Laplacian of Gaussian")
# keeps the structure and drops most of the noise. The Gaussian kernel is separable (an
# outer product of two 1-D kernels), which ``method="separable"`` exploits: one 1-D pass
# per axis instead of a 2-D sum over 13 x 13 taps.

magnitude = np.hypot(gx, gy)

laplacian = np.array([[0.0, 1.0, 0.0],
                      [1.0, -4.0, 1.0],
                      [0.0, 1.0, 0.0]])
raw_laplacian = correlate_nearest(image, laplacian)

sigma = 2.0
taps = np.arange(-3 * sigma, 3 * sigma + 1)
gauss_1d = np.exp(-taps**2 / (2 * sigma**2))
gauss_1d /= gauss_1d.sum()
gaussian = np.outer(gauss_1d, gauss_1d)
smooth = correlate_nearest(image, gaussian, method="separable")
log_response = correlate_nearest(smooth, laplacian)
print(f"Gaussian kernel {gaussian.shape}, sigma = {sigma:g}; standard deviation of the "
      f"Laplacian: {raw_laplacian.std():.4f} raw, {log_response.std():.4f} after smoothing")

# %%
# :math:`|G_x|`, :math:`|G_y|` and the magnitude share one color scale, clipped at the
# 99.5th percentile of the magnitude, so their strengths compare directly. In
# :math:`|G_x|` the vertical edges (the sides of the face, the collar) stand out; in
# :math:`|G_y|` the horizontal ones (the eyebrows, the glasses' rims, the cap's brim). The
# two Laplacians use diverging scales clipped at the 99th percentile of their absolute
# values.

top = np.percentile(magnitude, 99.5)
panels = [
    (image, "grayscale photograph", "gray", (0, 1)),
    (np.abs(gx), "|Gx| (vertical edges)", "magma", (0, top)),
    (np.abs(gy), "|Gy| (horizontal edges)", "magma", (0, top)),
    (magnitude, "gradient magnitude", "magma", (0, top)),
    (raw_laplacian, "Laplacian", "RdBu_r", None),
    (log_response, f"Laplacian of Gaussian, sigma={sigma:g}", "RdBu_r", None),
]

fig, axes = plt.subplots(2, 3, figsize=(10, 7.6))
for axis, (data, title, cmap, limits) in zip(axes.flat, panels):
    if limits is None:
        edge = np.percentile(np.abs(data), 99)
        limits = (-edge, edge)
    shown = axis.imshow(data, cmap=cmap, vmin=limits[0], vmax=limits[1])
    axis.set_title(title)
    axis.set_axis_off()
    fig.colorbar(shown, ax=axis, shrink=0.75)
plt.tight_layout()

# %%
# At this scale the two Laplacians differ mostly in how thick their lines are. The crop
# around the eyes, pixel for pixel, shows why the smoothing matters: the raw Laplacian is
# speckled with pixel noise and the JPEG's 8 x 8 block artefacts, while the Laplacian of
# Gaussian outlines the glasses, the nose and the mouth with a red and a blue band on
# either side of each edge (the zero crossing between them is the edge itself).

fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for axis, data, title in [(axes[0], raw_laplacian, "Laplacian (crop)"),
                          (axes[1], log_response, "Laplacian of Gaussian (crop)")]:
    edge = np.percentile(np.abs(data), 99)
    shown = axis.imshow(data[rows, cols], cmap="RdBu_r", vmin=-edge, vmax=edge)
    axis.set_title(title)
    axis.set_axis_off()
    fig.colorbar(shown, ax=axis, shrink=0.85)
plt.tight_layout()
