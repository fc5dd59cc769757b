"""Sphinx configuration: the Markdown pages (MyST) and the API reference from the numpydoc
docstrings (napoleon). Built by .ci/run with warnings as errors:

    sphinx-build -W -b html docs docs/_build/html
"""

import boostnet

project = "boostnet"
author = "the boostnet developers"
release = version = boostnet.__version__
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
napoleon_google_docstring = False
napoleon_numpy_docstring = True
autodoc_member_order = "bysource"
autodoc_typehints = "none"
myst_heading_anchors = 3
html_theme = "alabaster"
