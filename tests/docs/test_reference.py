"""The API reference documents every name of ``storeroom.__all__``.

``docs/hooks.py`` (an MkDocs hook) adds a ``::: path`` block for any public name that no
reference page groups by hand, so names added to ``__all__`` later appear by themselves.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import storeroom

ROOT = Path(__file__).resolve().parents[2]


def load_hooks():  # noqa: ANN201 - a module loaded from a path
    spec = importlib.util.spec_from_file_location("storeroom_docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rendered_paths(hooks) -> set[str]:  # noqa: ANN001
    pages = hooks.reference_texts()
    texts = [hooks.render(name, text, pages) for name, text in pages.items()]
    return hooks.documented_paths(texts)


def test_every_public_name_has_a_reference_entry() -> None:
    hooks = load_hooks()
    paths = rendered_paths(hooks)
    missing = [n for n in storeroom.__all__ if not hooks.is_documented(n, paths)]
    assert missing == []
    # and each is on exactly one page: the "others" section only holds the ungrouped ones
    assert hooks.undocumented(hooks.reference_texts()) == []


def test_a_name_added_to_all_appears_by_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = load_hooks()

    def brand_new() -> None:
        """A public function nobody documented yet."""

    monkeypatch.setattr(storeroom, "brand_new", brand_new, raising=False)
    monkeypatch.setattr(storeroom, "__all__", [*storeroom.__all__, "brand_new"])
    pages = hooks.reference_texts()
    assert hooks.undocumented(pages) == ["brand_new"]
    index = hooks.render("index.md", pages["index.md"], pages)
    assert "::: storeroom.brand_new" in index
    assert "[`brand_new`](#storeroom.brand_new)" in index
    assert hooks.is_documented("brand_new", rendered_paths(hooks))


def test_lazy_names_are_documented_where_they_are_defined() -> None:
    hooks = load_hooks()
    # served by storeroom.__getattr__, which mkdocstrings cannot see
    assert hooks.object_path("DataManager") == "storeroom.context.DataManager"
    assert hooks.object_path("Q") == "storeroom.Q"


def test_the_build_checks_that_every_name_reached_the_site(tmp_path: Path) -> None:
    # docs/hooks.py's on_post_build fails `mkdocs build` (the docs step of scripts/test)
    # when a public name has no heading in the built pages; the site itself is built there
    pytest.importorskip("mkdocs")
    hooks = load_hooks()
    reference = tmp_path / "reference" / "x"
    reference.mkdir(parents=True)
    names = [n for n in storeroom.__all__ if n != "Q"]
    (reference / "index.html").write_text(
        "".join(f'<h2 id="{hooks.object_path(n)}">{n}</h2>' for n in names), encoding="utf-8")
    assert hooks.missing_anchors(tmp_path) == ["Q"]
    (reference / "q.html").write_text('<h2 id="storeroom.Q">Q</h2>', encoding="utf-8")
    assert hooks.missing_anchors(tmp_path) == []
    hooks.on_post_build({"site_dir": str(tmp_path)})
    (reference / "q.html").unlink()
    from mkdocs.exceptions import PluginError
    with pytest.raises(PluginError, match="'Q'"):
        hooks.on_post_build({"site_dir": str(tmp_path)})
