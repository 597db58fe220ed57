"""Generated code is compiled under a real file name registered in linecache."""

from __future__ import annotations

import traceback

import pytest

from storeroom import field, open_store, stored
from storeroom.model.stored import meta_of


@stored
class Gen:
    id: str
    n: int = field(default=0)


def _generated_frames(exc: BaseException) -> list[traceback.FrameSummary]:
    return [f for f in traceback.extract_tb(exc.__traceback__)
            if f.filename.startswith("<storeroom generated")]


def test_a_traceback_through_the_fast_path_shows_its_source():
    class Odd:  # an item whose attribute read fails inside the generated code
        @property
        def id(self):
            raise RuntimeError("boom on id")
    with pytest.raises(RuntimeError) as info:
        meta_of(Gen).fast_create(Odd())
    frames = _generated_frames(info.value)
    assert len(frames) == 1
    f = frames[0]
    assert "fast_create" in f.filename and f"{__name__}.Gen" in f.filename
    assert f.line == "x0 = item.id"  # the generated line, as linecache serves it
    assert "x0 = item.id" in "".join(traceback.format_exception(info.value))


def test_generated_file_names_are_unique_per_model_and_kind():
    with open_store(Gen, "sqlite:///:memory:") as store:
        store.create(Gen(id="a", n=1))
        assert store.read("a") == Gen(id="a", n=1)
    import linecache
    names = [n for n in linecache.cache if n.startswith("<storeroom generated")
             and f"{__name__}.Gen" in n]
    assert len(names) == len(set(names)) >= 2  # fast_create and at least a row builder
    assert any("row_builder[sqlite]" in n for n in names)
    for n in names:
        assert linecache.getline(n, 1).startswith("def ")
