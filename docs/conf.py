"""Sphinx configuration: the site is built from the docstrings and from the README's
sections (included verbatim, so the two never disagree). ``make docs`` builds it offline into
``docs/_build/html`` with warnings as errors."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import wgan_lip  # noqa: E402

project = "wgan_lip"
author = "the wgan_lip developers"
copyright = "2026, the wgan_lip developers"
release = version = wgan_lip.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "benchmarks"]
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
# The README's sections start at level 2 and are included under a page title.
suppress_warnings = ["myst.header"]

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "signature"
napoleon_google_docstring = True
napoleon_numpy_docstring = True

html_theme = "alabaster"
html_title = f"wgan_lip {release}"
html_static_path: list[str] = []

# Figures referenced by the included README sections (paths relative to the repository
# root) are copied next to the pages that include them.
for png in (ROOT / "benchmarks" / "gan").glob("mnist_cpu_hard*.png"):
    target = Path(__file__).parent / "benchmarks" / "gan" / png.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(png, target)
autodoc_inherit_docstrings = False  # Lightning hooks keep their own pages
