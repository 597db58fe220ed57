"""Driving the generators of context middleware and resources one step at a time."""

from __future__ import annotations

from inspect import isasyncgen, isawaitable
from typing import Any

IS_ASYNC = True

DONE: Any = object()
"""Returned by :func:`advance` and :func:`throw` when the generator finished."""


def _is_agen(gen: Any) -> bool:
    return isasyncgen(gen)


async def advance(gen: Any) -> Any:
    """Run ``gen`` to its next ``yield``; its value, or ``DONE`` if it finished."""
    try:
        if IS_ASYNC and _is_agen(gen):
            return await anext(gen)
        return next(gen)
    except (StopIteration, StopAsyncIteration):
        return DONE


async def throw(gen: Any, error: BaseException) -> Any:
    """Raise ``error`` at ``gen``'s ``yield``; the next value, or ``DONE`` if it finished."""
    try:
        if IS_ASYNC and _is_agen(gen):
            return await gen.athrow(error)
        return gen.throw(error)
    except (StopIteration, StopAsyncIteration):
        return DONE


async def close(gen: Any) -> None:
    """Close ``gen`` (after it yielded once too often)."""
    if IS_ASYNC and _is_agen(gen):
        await gen.aclose()
    else:
        gen.close()


async def finish(gen: Any, error: BaseException | None, what: str) -> BaseException | None:
    """Resume ``gen`` after its ``yield`` (raising ``error`` there, if any) to its end.

    Returns the error that continues: ``None`` when the generator ended
    normally (a thrown error is then suppressed), the error it raised (the
    same one or a replacement), or a ``RuntimeError`` when it yielded again.
    """
    try:
        result = await advance(gen) if error is None else await throw(gen, error)
    except BaseException as exc:  # noqa: BLE001 - every error is handed on
        return exc
    if result is DONE:
        return None
    try:
        await close(gen)
    except BaseException as exc:  # noqa: BLE001
        return exc
    return RuntimeError(f"{what} yielded more than once")


async def resolve(value: Any) -> Any:
    """``value``, awaited first when it is awaitable (async flavor only)."""
    if IS_ASYNC and isawaitable(value):
        return await value
    return value
