"""Sphinx configuration for the dnnrsa documentation.

Build (warnings are errors)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Set ``DNNRSA_DOCS_NO_GALLERY=1`` to skip running the gallery scripts (the example pages
are still written, without their figures): a fast build while writing prose.
Nothing here reaches the internet.
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import dnnrsa  # noqa: E402

# -- Project -----------------------------------------------------------------------------

project = "dnnrsa"
author = "the dnnrsa developers"
copyright = "2026, the dnnrsa developers"
release = dnnrsa.__version__
version = ".".join(release.split(".")[:2])

# -- General -----------------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
# No sphinx.ext.intersphinx: its inventories would be fetched over the network, and the
# build must work offline. References to other projects' objects stay plain code.

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
root_doc = "index"
default_role = "code"
nitpicky = False

# -- autodoc / autosummary / numpydoc ------------------------------------------------------

autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"  # numpydoc's Parameters sections already give the types
autoclass_content = "class"

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()
numpydoc_xref_param_type = False

# -- sphinx-gallery ----------------------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "sphinx_gallery.sorting.FileNameSortKey",
    "download_all_examples": True,
    "matplotlib_animations": False,
    "remove_config_comments": True,
    "show_memory": False,
    # thumbnails are drawn from each script's last figure; without one (or with the
    # gallery off) the synthetic faces stand in
    "default_thumb_file": str(HERE / "images" / "synthetic_faces_v2.png"),
    "thumbnail_size": (320, 224),
    "capture_repr": ("_repr_html_", "__repr__"),
    "backreferences_dir": None,
}
if os.environ.get("DNNRSA_DOCS_NO_GALLERY", "") == "1":
    sphinx_gallery_conf["plot_gallery"] = False

# -- HTML --------------------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"dnnrsa {release}"
html_static_path = ["_static"]
html_css_files = ["dnnrsa.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    # a right-hand table of contents everywhere but on gallery pages, whose code and output
    # need the width (a page that no pattern names gets none)
    "secondary_sidebar_items": {page: ["page-toc"] for page in (
        "index", "install", "quickstart", "study_choices", "api", "guide/*", "generated/*")},
    "navbar_align": "left",
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_show_sourcelink = False
