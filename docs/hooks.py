"""MkDocs hook: the API reference lists every name of ``storeroom.__all__``.

The reference pages (``docs/reference/*.md``) document names by hand, grouped, with
mkdocstrings ``::: path`` blocks. The marker ``<!-- storeroom:all -->`` on
``reference/index.md`` becomes a table of every public name, and
``<!-- storeroom:others -->`` becomes a ``::: path`` block for each name that no
reference page documents yet, so a name added to ``__all__`` appears without editing
the docs. ``tests/docs/test_docs.py`` checks that every name ends up documented.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference"
# document the checkout being built (as mkdocstrings does, `paths: [.]`), not whichever
# storeroom the environment has installed
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
DIRECTIVE = re.compile(r"^:::\s+(\S+)", re.MULTILINE)
ALL_MARKER = "<!-- storeroom:all -->"
OTHERS_MARKER = "<!-- storeroom:others -->"


def public_names() -> list[str]:
    """``storeroom.__all__``, in its order."""
    import storeroom

    return list(storeroom.__all__)


def object_path(name: str) -> str:
    """The dotted path mkdocstrings documents ``storeroom.<name>`` at.

    Names imported in ``storeroom/__init__.py`` resolve as ``storeroom.<name>``; names
    served by its module ``__getattr__`` (imported lazily) are documented where they are
    defined, found from the object itself.
    """
    import storeroom

    if name in vars(storeroom):
        return f"storeroom.{name}"
    obj = getattr(storeroom, name)
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname:
        return f"storeroom.{name}"
    # prefer the shortest public package that re-exports it (storeroom.context.DataManager)
    # (not ``storeroom`` itself: its ``__getattr__`` is invisible to mkdocstrings)
    parts = module.split(".")
    for i in range(2, len(parts) + 1):
        candidate = ".".join(parts[:i])
        if getattr(importlib.import_module(candidate), qualname, None) is obj:
            return f"{candidate}.{qualname}"
    return f"{module}.{qualname}"


def documented_paths(texts: list[str]) -> set[str]:
    """Every ``::: path`` of the given page texts."""
    return {m.group(1) for text in texts for m in DIRECTIVE.finditer(text)}


def is_documented(name: str, paths: set[str]) -> bool:
    """True when a ``::: path`` block documents ``storeroom.<name>``."""
    return f"storeroom.{name}" in paths or object_path(name) in paths


def reference_texts() -> dict[str, str]:
    """The reference pages' markdown as written, by file name."""
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(REFERENCE.glob("*.md"))}


def page_of(name: str, pages: dict[str, str]) -> str | None:
    """The reference page (file name) whose ``:::`` blocks document ``name``."""
    for fname, text in pages.items():
        if is_documented(name, documented_paths([text])):
            return fname
    return None


def undocumented(pages: dict[str, str]) -> list[str]:
    """Public names that no hand-written ``:::`` block documents."""
    paths = documented_paths(list(pages.values()))
    return [n for n in public_names() if not is_documented(n, paths)]


def render(fname: str, markdown: str, pages: dict[str, str] | None = None) -> str:
    """A reference page with its markers expanded."""
    pages = reference_texts() if pages is None else pages
    if ALL_MARKER in markdown:
        rows = ["| name | documented in |", "|---|---|"]
        for name in public_names():
            where = page_of(name, pages) or "index.md"
            anchor = object_path(name)
            target = "" if where == fname else where
            rows.append(f"| [`{name}`]({target}#{anchor}) | {where.removesuffix('.md')} |")
        markdown = markdown.replace(ALL_MARKER, "\n".join(rows))
    if OTHERS_MARKER in markdown:
        missing = undocumented(pages)
        blocks = [f"::: {object_path(n)}\n" for n in missing]
        text = "\n".join(blocks) if blocks else "Every public name is documented on the pages above."
        markdown = markdown.replace(OTHERS_MARKER, text)
    return markdown


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """MkDocs event: expand the markers of the reference pages."""
    src = page.file.src_uri
    if not src.startswith("reference/"):
        return markdown
    return render(Path(src).name, markdown)


def missing_anchors(site_dir: Path) -> list[str]:
    """Public names without a heading (``id="<path>"``) in the built reference pages."""
    html = "".join(p.read_text(encoding="utf-8")
                   for p in sorted((site_dir / "reference").rglob("*.html")))
    return [n for n in public_names() if f'id="{object_path(n)}"' not in html]


def on_post_build(config: Any, **kwargs: Any) -> None:
    """MkDocs event: fail the build when a public name did not make it into the site."""
    from mkdocs.exceptions import PluginError

    missing = missing_anchors(Path(config["site_dir"]))
    if missing:
        raise PluginError(f"the API reference does not document {missing}")
