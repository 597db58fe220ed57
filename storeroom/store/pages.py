"""The items of a stream of pages, one after another: ``search_all``'s iterator.

The sync store hands out ``itertools.chain.from_iterable`` over its pages: each item
then comes from C, not from resuming a generator frame (a tenth of the time of
iterating a large table's built items). ``scripts/unasync.py`` maps the async name to
the sync one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from itertools import chain
from typing import TypeVar

T = TypeVar("T")


async def apages_items(pages: AsyncIterator[Iterable[T]]) -> AsyncIterator[T]:
    """Every item of every page of ``pages``, in order (async)."""
    async for page in pages:
        for item in page:
            yield item


def pages_items(pages: Iterator[Iterable[T]]) -> Iterator[T]:
    """Every item of every page of ``pages``, in order (sync: a C iterator)."""
    return chain.from_iterable(pages)


__all__ = ["apages_items", "pages_items"]
