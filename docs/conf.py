"""Sphinx configuration for the convlab documentation.

Build from the repository root, with convlab installed (``python -m pip install ".[docs]"``
or the editable development install):

    sphinx-build -W --keep-going -b html docs docs/_build/html

The build needs no network: no intersphinx, and no theme option that fetches anything.
"""

# convlab is imported as installed. The repository root is deliberately *not* put on
# sys.path: the source tree holds no compiled kernels, so importing it would fail (or,
# worse, document a different version than the one installed).
import convlab

# -- Project information ----------------------------------------------------------------

project = "convlab"
author = "the convlab developers"
copyright = "the convlab developers"
release = convlab.__version__
version = release

# -- General configuration --------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "numpydoc",
]

language = "en"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
# Markup like `in1` (single backticks) in the docstrings names an argument: render it as
# emphasis (the docutils default), never as a cross-reference that might not resolve.
default_role = None

# -- autodoc / autosummary --------------------------------------------------------------

# One page per public function, written to docs/generated/ at build time (git-ignored).
autosummary_generate = True
autodoc_typehints = "none"

# -- numpydoc ---------------------------------------------------------------------------

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# Parameter types are plain text (no cross-references to numpy/scipy without intersphinx).
numpydoc_xref_param_type = False
# Docstring style validation is the business of the tests and linters, not of the docs
# build: an empty set turns it off, so that no style nit can fail `sphinx-build -W`.
numpydoc_validation_checks = set()

# -- doctest (optional: `sphinx-build -b doctest docs docs/_build/doctest`) -------------

doctest_global_setup = """
import numpy as np
import convlab
"""

# -- HTML output ------------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"convlab {release}"
# Only local options: no version switcher (its JSON would be fetched at build time), no
# icon links, no analytics.
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_show_sourcelink = False
