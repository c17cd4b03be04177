"""Sphinx configuration of skcal's documentation site.

Build it with ``make docs`` (warnings are errors): the markdown guides (MyST),
an API reference written from :mod:`apiref` (one page per public module, one
page per object), and a gallery of ``examples/*.py`` run on their quick
settings. Nothing is fetched from the network: intersphinx is not used.
"""

import sys
from pathlib import Path

from sphinx.util.nodes import make_refnode

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS))
sys.path.insert(0, str(ROOT))

import apiref  # noqa: E402
import gallery  # noqa: E402

from skcal import __version__  # noqa: E402

project = "skcal"
author = "skcal developers"
copyright = "skcal developers"  # noqa: A001
version = release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]

# -- cross-references -----------------------------------------------------------
# No intersphinx (the build runs offline), so references to numpy, torch,
# scikit-learn or skorch objects stay plain text; nitpicky stays off so they do
# not warn. References between skcal's own pages resolve.
nitpicky = False
default_role = "py:obj"  # `name` in a docstring is a cross-reference, as in numpy's and scikit-learn's docs

# -- API reference -----------------------------------------------------------------
autosummary_generate = True
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_inherit_docstrings = True

numpydoc_show_class_members = False  # autodoc lists the members (numpydoc's tables would list them twice)
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()  # tests/test_docs.py validates, with the checks it names


def _skip_member(app, what, name, obj, skip, options):
    """Leave out what skcal did not write: scikit-learn's ``set_*_request`` setters, sklearn's and skorch's methods.

    Class pages list inherited members too (the estimator's ``relabel`` comes
    from a mixin, a strategy's hooks from :class:`~skcal.replay.ReplayStrategy`),
    so this is where methods inherited from outside skcal are dropped.
    """
    if name.startswith("set_") and name.endswith("_request"):
        return True
    if what in ("class", "exception"):
        function = obj.fget if isinstance(obj, property) else getattr(obj, "__func__", obj)
        if isinstance(obj, property) or callable(function):
            module = getattr(function, "__module__", None) or ""
            if module.split(".")[0] != "skcal":
                return True
    return skip


def _resolve_by_suffix(app, env, node, contnode):
    """Resolve a Python reference Sphinx could not find to the one documented object whose name ends with it.

    Docstrings name objects as their module sees them (``LabelledHistory``,
    ``Round.checkpoint``, ``skcal.ReplayBatch``), while each is documented once,
    under its home module (``skcal.history.LabelledHistory``). Ambiguous names
    stay plain text.
    """
    if node.get("refdomain") != "py":
        return None
    objects = env.get_domain("py").objects
    parts = node.get("reftarget", "").lstrip(".~").split(".")
    for start in range(len(parts)):
        suffix = ".".join(parts[start:])
        matches = [name for name in objects if name == suffix or name.endswith("." + suffix)]
        if len(matches) == 1:
            entry = objects[matches[0]]
            return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, matches[0])
        if matches:
            return None
    return None


def _results_are_orphans(app, docname, source):
    """Mark the pages under ``results/`` (tables, notes) orphans: results/README links them, no toctree lists them."""
    if docname.startswith("results/") and docname != "results/README":
        text = source[0]
        if text.startswith("---\n"):  # MyST front matter already: add to it
            source[0] = "---\norphan: true\n" + text[4:]
        else:
            source[0] = "---\norphan: true\n---\n" + text


def write_api_pages() -> None:
    """Write ``api/<module>.rst`` for every page :mod:`apiref` lists (only the files whose text changed)."""
    folder = DOCS / "api"
    folder.mkdir(exist_ok=True)
    pages = apiref.pages()
    # pages and autosummary stubs of names no longer public would be orphans (a warning): remove them
    expected = {f"{page.name}.rst" for page in pages}
    stubs = {f"{page.name}.{name}.rst" for page in pages for name in page.classes + page.functions + page.exceptions}
    for path in folder.glob("*.rst"):
        if path.name not in expected:
            path.unlink()
    for path in (folder / "generated").glob("*.rst"):
        if path.name not in stubs:
            path.unlink()
    for page in pages:
        lines = [f".. _api-{page.name}:", "", f"``{page.name}``", "=" * (len(page.name) + 4), ""]
        lines += [f".. automodule:: {page.name}", "   :no-members:", ""]
        lines += [f".. currentmodule:: {page.name}", ""]
        # each object's page: _templates/autosummary/<class, exception or function>.rst
        for title, names in (("Classes", page.classes), ("Functions", page.functions), ("Exceptions", page.exceptions)):
            if names:
                lines += [title, "-" * len(title), "", ".. autosummary::", "   :toctree: generated/"]
                lines += ["   :nosignatures:", ""]
                lines += [f"   {name}" for name in names] + [""]
        if page.data:
            lines += ["Constants", "---------", ""]
            for name in page.data:
                lines += [f".. autodata:: {name}", "   :no-value:", ""]
        if page.elsewhere:
            lines += ["Also here", "---------", "", "Documented on the page of the module that defines them:", ""]
            lines += [f"- :obj:`{page.name}.{name} <{target}>`" for name, target in page.elsewhere.items()] + [""]
        text = "\n".join(lines)
        path = folder / f"{page.name}.rst"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


write_api_pages()

# -- the guides (MyST) ---------------------------------------------------------------
myst_heading_anchors = 4  # `[...](#a-heading)` and `[...](page.md#a-heading)` links resolve
myst_enable_extensions = ["colon_fence", "dollarmath"]

# -- the gallery (what runs, and on which settings: gallery.py) -----------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": gallery.FILENAME_PATTERN,
    "reset_argv": "gallery.quick_argv",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "min_reported_time": 1,
    "abort_on_example_error": True,
    "capture_repr": (),
}

# -- HTML ----------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skcal {release}"
html_theme_options = {
    "github_url": "https://github.com/skcal/skcal",
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
}
html_static_path = []
html_show_sourcelink = False


def setup(app):
    """Register the member filter, the reference resolver and the results pages' orphan mark."""
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("missing-reference", _resolve_by_suffix)
    app.connect("source-read", _results_are_orphans)
