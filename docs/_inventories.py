"""Intersphinx inventories for NumPy, SciPy and PyTorch, written at build time.

The documentation is built where the web is out of reach (CI has the package registries
only), so the projects' own ``objects.inv`` cannot be fetched. These inventories list the
objects convlab's pages link to, with the addresses of those objects in each project's
published documentation; :func:`write` puts them in a folder for ``intersphinx_mapping``.
Add a name here when a page links to one that is missing (the link then renders as plain
text, it does not fail the build).
"""

import pathlib
import zlib

# project -> (base address, version, [(name, role, address relative to the base)])
PROJECTS = {
    "numpy": ("https://numpy.org/doc/stable/", "stable", [
        ("numpy", "py:module", "reference/index.html"),
        ("numpy.ndarray", "py:class", "reference/generated/numpy.ndarray.html"),
        ("numpy.dtype", "py:class", "reference/generated/numpy.dtype.html"),
        ("numpy.convolve", "py:function", "reference/generated/numpy.convolve.html"),
        ("numpy.correlate", "py:function", "reference/generated/numpy.correlate.html"),
        ("numpy.einsum", "py:function", "reference/generated/numpy.einsum.html"),
        ("numpy.outer", "py:function", "reference/generated/numpy.outer.html"),
        ("numpy.linalg.svd", "py:function", "reference/generated/numpy.linalg.svd.html"),
        ("numpy.lib.stride_tricks.sliding_window_view", "py:function",
         "reference/generated/numpy.lib.stride_tricks.sliding_window_view.html"),
        ("numpy.pad", "py:function", "reference/generated/numpy.pad.html"),
        ("numpy.result_type", "py:function", "reference/generated/numpy.result_type.html"),
    ]),
    "scipy": ("https://docs.scipy.org/doc/scipy/", "stable", [
        ("scipy.signal", "py:module", "reference/signal.html"),
        ("scipy.ndimage", "py:module", "reference/ndimage.html"),
        ("scipy.fft", "py:module", "reference/fft.html"),
    ] + [(f"scipy.signal.{name}", "py:function", f"reference/generated/scipy.signal.{name}.html")
         for name in ("correlate", "convolve", "correlate2d", "convolve2d", "fftconvolve",
                      "oaconvolve", "choose_conv_method", "sepfir2d", "correlation_lags")]
      + [(f"scipy.ndimage.{name}", "py:function", f"reference/generated/scipy.ndimage.{name}.html")
         for name in ("correlate", "convolve", "correlate1d", "convolve1d", "gaussian_filter",
                      "sobel", "laplace", "maximum_filter", "uniform_filter")]),
    "torch": ("https://docs.pytorch.org/docs/stable/", "stable", [
        ("torch", "py:module", "index.html"),
        ("torch.nn.functional", "py:module", "nn.functional.html"),
        ("torch.Tensor.unfold", "py:method", "generated/torch.Tensor.unfold.html"),
        ("torch.set_num_threads", "py:function", "generated/torch.set_num_threads.html"),
        ("torch.einsum", "py:function", "generated/torch.einsum.html"),
    ] + [(f"torch.nn.functional.{name}", "py:function",
          f"generated/torch.nn.functional.{name}.html")
         for name in ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                      "conv_transpose3d", "unfold", "max_pool1d", "max_pool2d", "max_pool3d",
                      "avg_pool1d", "avg_pool2d", "avg_pool3d", "lp_pool1d", "lp_pool2d",
                      "lp_pool3d", "cross_entropy", "pad")]
      + [(f"torch.nn.{name}", "py:class", f"generated/torch.nn.{name}.html")
         for name in ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose2d", "MaxPool2d",
                      "AvgPool2d", "LPPool2d")]),
}


def write(folder):
    """Write ``<project>.inv`` for every project into `folder`; returns the
    ``intersphinx_mapping`` that uses them."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    mapping = {}
    for project, (base, version, entries) in PROJECTS.items():
        header = (f"# Sphinx inventory version 2\n# Project: {project}\n# Version: {version}\n"
                  "# The remainder of this file is compressed using zlib.\n").encode()
        body = "".join(f"{name} {role} 1 {address} -\n" for name, role, address in entries)
        path = folder / f"{project}.inv"
        path.write_bytes(header + zlib.compress(body.encode()))
        mapping[project] = (base, str(path))
    return mapping
