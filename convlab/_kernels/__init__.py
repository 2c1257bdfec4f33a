"""Private compiled kernels (Cython). Nothing here is public API."""

try:
    from convlab._kernels import _direct  # noqa: F401
except ImportError as exc:  # the source tree, not an installed build
    raise ImportError(
        "convlab's compiled kernels are missing: Python is importing the uncompiled source "
        f"folder {__path__[0]!r}. Install convlab (python -m pip install .) and run from "
        "another directory, or with python -P, which keeps the current directory off the "
        "import path."
    ) from exc
