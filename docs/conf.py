"""Sphinx configuration for the convlab documentation.

Build from the repository root, with convlab installed (``python -m pip install ".[docs]"``
or the editable development install):

    sphinx-build -W --keep-going -b html docs docs/_build/html

The build needs no network: intersphinx reads inventories written at build time
(``_inventories.py``), the gallery and the figures are computed here, and no theme option
fetches anything.
"""

import pathlib
import sys

# convlab is imported as installed. The repository root is deliberately *not* put on
# sys.path: the source tree holds no compiled kernels, so importing it would fail (or,
# worse, document a different version than the one installed).
import convlab

DOCS = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS))            # for _inventories only (docs/, not the source tree)
import _inventories  # noqa: E402

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
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "matplotlib.sphinxext.plot_directive",
    "sphinx_gallery.gen_gallery",
    "sphinx_copybutton",
]

language = "en"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "examples", "sg_execution_times.rst"]
# Markup like `in1` (single backticks) in the docstrings names an argument: render it as
# emphasis (the docutils default), never as a cross-reference that might not resolve.
default_role = None

# -- autodoc / autosummary --------------------------------------------------------------

# One page per public function, written to docs/generated/ at build time (git-ignored).
autosummary_generate = True
autodoc_typehints = "none"

# -- intersphinx: NumPy, SciPy and PyTorch, from inventories written here ---------------

intersphinx_mapping = _inventories.write(DOCS / "_build" / "inventories")
intersphinx_disabled_reftypes = ["*"]     # only explicit :func:`numpy.x` style references

# -- matplotlib's plot directive: the user guide's figures, computed at build time -------

plot_include_source = False
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]
plot_rcparams = {"figure.autolayout": True, "font.size": 9}
plot_pre_code = "import numpy as np\nimport matplotlib.pyplot as plt\nimport convlab\n"

# -- sphinx-gallery: docs/examples/plot_*.py, executed at build time --------------------

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "show_memory": False,
    "remove_config_comments": True,
    "image_scrapers": ("matplotlib",),
    "reference_url": {"convlab": None},
}

# -- copy buttons: copy code without prompts or output ------------------------------------

copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = False

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
