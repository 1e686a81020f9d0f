"""Sphinx configuration of the altgrad documentation site.

Build it with ``python docs/build.py`` (see docs/README.md): that script writes the generated pages into
``docs/_generated/`` (catalogue, errata, results, API, derivation wrappers), then runs ``sphinx-build -W`` on this
folder. Mathematics is rendered to HTML at build time by ``_ext/katex_prerender.py`` (KaTeX under node); the
site loads nothing from the network.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

project = "altgrad"
author = "the altgrad developers"
copyright = "2026, the altgrad developers"
release = "0.1.0"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "altgrad_docstrings",
    "katex_prerender",
]

# --- sources ------------------------------------------------------------------------------------------------------
source_suffix = {".md": "markdown"}
root_doc = "index"
# docs/derivations/*.md (written by symbolic/) are included into the term pages, never built as pages of their own;
# README.md tells how to build, for readers of the repository.
exclude_patterns = ["_build", "node_modules", "derivations", "README.md", "_generated/fragments"]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_dmath_double_inline = True
myst_heading_anchors = 3

# --- mathematics: KaTeX at build time, no CDN ---------------------------------------------------------------------
html_math_renderer = "katex_prerender"
katex_dist = os.environ.get("ALTGRAD_KATEX_DIST", str(DOCS / "node_modules" / "katex" / "dist"))
katex_macros = {r"\R": r"\mathbb{R}", r"\T": r"^{\top}"}

# --- API reference --------------------------------------------------------------------------------------------------
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
napoleon_numpy_docstring = True
napoleon_google_docstring = True

# --- HTML -----------------------------------------------------------------------------------------------------------
# Furo: a full-width reading column with the navigation in a left sidebar that folds away on a narrow screen, a
# light and a dark scheme. It loads nothing from the network (system fonts; its CSS and JS ship in _static).
html_theme = "furo"
html_title = "altgrad"
html_theme_options = {
    "navigation_with_keys": True,
    "top_of_page_buttons": [],
}
html_show_sourcelink = False
html_copy_source = False
html_last_updated_fmt = None
nitpicky = False
