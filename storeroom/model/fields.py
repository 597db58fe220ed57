"""``field(...)`` and ``generated.*``: attribute options attached to dataclass fields."""

from __future__ import annotations

import dataclasses
import uuid as _uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypedDict, TypeVar, Unpack, overload

from .undefined import UNDEFINED

OPTIONS_KEY = "storeroom"
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Generator:
    """How a value is produced: ``on_create`` fills an UNDEFINED value on create,
    ``on_update`` replaces the value on every update. ``kind`` names the built-in ones."""

    kind: str
    on_create: Callable[[], Any] | None = None
    on_update: Callable[[], Any] | None = None


@dataclass(frozen=True, slots=True)
class FieldOptions:
    """Storeroom's options of one attribute (everything but default / default_factory)."""

    max_length: int | None = None
    min_length: int | None = None
    ge: Any = None
    le: Any = None
    pattern: str | None = None
    store: bool = True
    creatable: bool = True
    updatable: bool = True
    readable: bool = True
    sortable: bool = True
    unique: bool = False
    index: bool = False
    generator: Generator | None = None
    reverse: str | None = None
    through: Any = None
    on_delete: str | None = None


#: the names of the options, in order: what an ``Attr`` copies from its field's options
OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(FieldOptions))
DEFAULT_OPTIONS = FieldOptions()


def option_values(opts: FieldOptions) -> dict[str, Any]:
    """``opts`` as {option name: value} (shallow: a ``Generator`` stays itself)."""
    return {n: getattr(opts, n) for n in OPTION_NAMES}


class FieldKwargs(TypedDict, total=False):
    """The options of ``field(...)`` besides ``default`` / ``default_factory``."""

    max_length: int | None
    min_length: int | None
    ge: Any
    le: Any
    pattern: str | None
    store: bool
    creatable: bool
    updatable: bool
    readable: bool
    sortable: bool
    unique: bool
    index: bool
    reverse: str | None
    through: Any
    on_delete: str | None


# typed overloads: a type checker sees ``field(default=0)`` as an int default, so a default
# of the wrong type is an error in the user's class; without a default the field is required
# a Many (``reverse=`` / ``through=``) is never a required argument: for a type checker it
# is not one at all (PEP 681's ``init`` as a Literal), as it is loaded, not given
@overload
def field(*, reverse: str, through: Any = None, init: Literal[False] = False) -> Any: ...
@overload
def field(*, through: Any, reverse: str | None = None, init: Literal[False] = False) -> Any: ...
@overload
def field(*, default: _T, **options: Unpack[FieldKwargs]) -> _T: ...
@overload
def field(*, default_factory: Callable[[], _T], **options: Unpack[FieldKwargs]) -> _T: ...
@overload
def field(**options: Unpack[FieldKwargs]) -> Any: ...


def field(
    *,
    default: Any = dataclasses.MISSING,
    default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
    max_length: int | None = None,
    min_length: int | None = None,
    ge: Any = None,
    le: Any = None,
    pattern: str | None = None,
    store: bool = True,
    creatable: bool = True,
    updatable: bool = True,
    readable: bool = True,
    sortable: bool = True,
    unique: bool = False,
    index: bool = False,
    reverse: str | None = None,
    through: Any = None,
    on_delete: str | None = None,
    init: bool = True,
) -> Any:
    """Declare an attribute with options; use as the default of an annotated class attribute.

    ``title: str = field(max_length=200)``. Every option is keyword-only; a violated rule
    raises ``ValidationError`` naming the field, the value and the rule (the option's name).

    Args:
        default: The value when the attribute is not given (none: the attribute is required).
        default_factory: A callable giving the default (for ``list``, ``dict``, ...).
        max_length: The longest ``str``, ``bytes`` or list accepted (rule ``max_length``);
            on MySQL/MariaDB also the ``VARCHAR`` length of a key or indexed string.
        min_length: The shortest accepted (rule ``min_length``).
        ge: The smallest value accepted (rule ``ge``).
        le: The greatest value accepted (rule ``le``).
        pattern: A regular expression a ``str`` must match (rule ``pattern``).
        store: ``False`` keeps the attribute on the object only: it is never persisted.
        creatable: ``False`` refuses the attribute on create (``ValidationError``).
        updatable: ``False`` refuses a change of the attribute in an update.
        readable: ``False`` keeps the value out of cursors; ordering by it raises
            ``InvalidFilter``. A key attribute must be readable.
        sortable: ``False`` makes ordering by the attribute raise ``InvalidFilter``.
        unique: No two items share a value; a write that would raises ``Conflict``.
        index: The backend keeps an index on the attribute.
        reverse: On a ``Many[M]``: the name of the ``Ref`` on ``M`` pointing back here
            (optional when exactly one does).
        through: On a ``Many[M]``: the model (class or name) with two ``Ref``s that makes
            the relation many-to-many.
        on_delete: On a ``Ref[M]``: what deleting the referenced item does to this one:
            ``"block"`` (the default: ``Conflict``), ``"cascade"`` (deleted too),
            ``"nullify"`` (set to None; the attribute must be ``| None``) or
            ``"ignore"`` (left dangling; it then loads as None).
        init: ``False`` leaves the attribute out of ``__init__`` (type checkers see a
            ``Many`` so, though at run time one may be given).
    """
    opts = FieldOptions(
        max_length=max_length, min_length=min_length, ge=ge, le=le, pattern=pattern,
        store=store, creatable=creatable, updatable=updatable, readable=readable,
        sortable=sortable, unique=unique, index=index, reverse=reverse, through=through,
        on_delete=on_delete,
    )
    if (reverse is not None or through is not None) and default is dataclasses.MISSING \
            and default_factory is dataclasses.MISSING:
        # a Many[M] is never stored nor required: left out, it is "not loaded"
        from .relations import NOT_LOADED
        default = NOT_LOADED
    return dataclasses.field(default=default, default_factory=default_factory, init=init,
                             metadata={OPTIONS_KEY: opts})


def utcnow() -> datetime:
    """The current time, tz-aware UTC, at microsecond precision."""
    return datetime.now(UTC)


def _gen_field(gen: Generator, **kw: Any) -> Any:
    opts = FieldOptions(generator=gen, **kw)
    return dataclasses.field(default=UNDEFINED, metadata={OPTIONS_KEY: opts})


class generated:  # noqa: N801 - used as a namespace: generated.uuid()
    """Generated attribute values, filled in by the store."""

    @staticmethod
    def uuid(**options: Any) -> Any:
        """A random UUID4 on create (as ``str`` or ``UUID``, after the annotation)."""
        return _gen_field(Generator("uuid", on_create=_uuid.uuid4), **options)

    @staticmethod
    def sequence(**options: Any) -> Any:
        """An increasing integer: the backend's autoincrement or a counter."""
        options.setdefault("updatable", False)
        return _gen_field(Generator("sequence"), **options)

    @staticmethod
    def created_at(**options: Any) -> Any:
        """The UTC time of creation; not updatable."""
        options.setdefault("updatable", False)
        return _gen_field(Generator("created_at", on_create=utcnow), **options)

    @staticmethod
    def updated_at(**options: Any) -> Any:
        """The UTC time of the last write (create or update)."""
        return _gen_field(Generator("updated_at", on_create=utcnow, on_update=utcnow), **options)

    @staticmethod
    def on_create(fn: Callable[[], Any], **options: Any) -> Any:
        """``fn()`` fills the value on create when none is given."""
        return _gen_field(Generator("on_create", on_create=fn), **options)

    @staticmethod
    def on_update(fn: Callable[[], Any], **options: Any) -> Any:
        """``fn()`` fills the value on create and replaces it on every update."""
        return _gen_field(Generator("on_update", on_create=fn, on_update=fn), **options)
