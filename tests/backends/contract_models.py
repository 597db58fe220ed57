"""Models of the backend contract suite."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from storeroom import Index, field, generated, stored


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "Blue"


class Level(enum.Enum):
    LOW = 1
    HIGH = 2


@dataclass
class Address:
    street: str
    zip: str


@dataclass
class Point:
    x: int
    y: int


@stored(key="id", indexes=[Index("owner", "created_at")], table="tasks")
class Task:
    id: str = generated.uuid()
    owner: str
    title: str = field(max_length=200)
    done: bool = False
    priority: int = field(default=0, ge=0, le=5)
    tags: list[str] = field(default_factory=list)
    created_at: datetime = generated.created_at()
    updated_at: datetime = generated.updated_at()
    note: str | None = field(default=None, store=False)


@stored
class Everything:
    id: str
    s: str = ""
    i: int = 0
    f: float = 0.0
    b: bool = False
    dec: Decimal = Decimal("0")
    dt: datetime | None = None
    d: date | None = None
    u: uuid.UUID | None = None
    by: bytes = b""
    color: Color = Color.RED
    level: Level = Level.LOW
    opt: str | None = None
    opt_i: int | None = None
    lst: list[int] = field(default_factory=list)
    dct: dict[str, Any] = field(default_factory=dict)
    point: Point | None = None


@stored(key=("owner", "num"))
class Note:
    owner: str
    num: int
    text: str = ""


@stored
class User:
    id: str
    email: str = field(unique=True)
    name: str = ""


@stored
class Counter:
    id: int = generated.sequence()
    label: str = ""


@stored
class Row:
    """For searches, sorting and pages."""

    id: int
    group: str = "a"
    n: int | None = None
    name: str | None = None
