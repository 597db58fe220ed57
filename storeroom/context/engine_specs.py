"""``EngineSpec`` and ``EngineTopology``: the named engines of a data manager and who replicates whom."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import URL

from ..errors import AlreadyExists
from .urls import same_database


class EngineSpec:
    """One named engine: its engine object and its role.

    A SQL engine has a SQLAlchemy ``URL`` and engine (``is_sql``); a store engine
    (memory, MongoDB, Redis, DynamoDB) has its URL string and a ``StoreEngine``.
    ``primary`` is the writable engine a read-only engine replicates (or
    ``None``); ``replica`` is the read-only engine that replicates a writable
    one (or ``None``). Store engines are always writable and never paired. ``cores`` keeps the SQL backend's compiled per-model state
    on this engine, so it lives exactly as long as the engine's data manager.
    """

    __slots__ = (
        "name", "url", "engine", "read_only", "replica_of", "primary", "replica", "is_sqlite",
        "is_sql",
        "cores",
    )  # fmt: skip

    def __init__(
        self, name: str, url: URL | str, engine: Any, read_only: bool, replica_of: str | None
    ) -> None:
        self.name = name
        self.url = url
        self.engine = engine
        self.read_only = read_only
        self.replica_of = replica_of
        self.primary: str | None = None
        self.replica: str | None = None
        self.is_sql = isinstance(url, URL)
        self.is_sqlite = isinstance(url, URL) and url.get_backend_name() == "sqlite"
        self.cores: dict[Any, Any] = {}

    def __repr__(self) -> str:
        role = "read-only" if self.read_only else "writable"
        shown = self.url.render_as_string(hide_password=True) if isinstance(self.url, URL) else (
            repr(self.engine))
        return f"<EngineSpec {self.name!r} {role} {shown}>"


class EngineTopology:
    """The named engines of one data manager, the default one, and the replica pairs."""

    __slots__ = ("specs", "default")

    def __init__(self) -> None:
        self.specs: dict[str, EngineSpec] = {}
        self.default: str | None = None

    def check_new(self, name: str, read_only: bool, replica_of: str | None) -> None:
        """Validate a new engine's name and role before its engine is created."""
        # any name: ctx.engines[name] reaches every engine (attribute access only the
        # names that are not attributes of ctx.engines)
        if not isinstance(name, str) or not name:
            raise ValueError(f"engine name {name!r} must be a non-empty str")
        if name in self.specs:
            raise AlreadyExists(f"engine {name!r} is already added")
        if replica_of is not None:
            if not read_only:
                raise ValueError(f"engine {name!r}: replica_of needs read_only=True")
            target = self.specs.get(replica_of)
            if target is None:
                raise ValueError(f"engine {name!r}: replica_of={replica_of!r} names no engine")
            if target.read_only:
                raise ValueError(f"engine {name!r}: replica_of={replica_of!r} is read-only itself")
            if not target.is_sql:
                raise ValueError(f"engine {name!r}: replica_of={replica_of!r} is not a SQL engine")

    def add(self, spec: EngineSpec, default: bool) -> None:
        """Add ``spec``; the first engine added is the default unless another says ``default``."""
        self.specs[spec.name] = spec
        if default or self.default is None:
            self.default = spec.name
        self._pair()

    def _pair(self) -> None:
        for spec in self.specs.values():
            spec.primary = spec.replica = None
        for spec in self.specs.values():
            if not spec.read_only:
                continue
            if spec.replica_of is not None:
                spec.primary = spec.replica_of
            else:
                for other in self.specs.values():
                    if not other.read_only and other.is_sql and same_database(spec.url, other.url):
                        spec.primary = other.name
                        break
            if spec.primary is not None:
                writer = self.specs[spec.primary]
                if writer.replica is None:
                    writer.replica = spec.name

    def get(self, name: str | None) -> EngineSpec:
        """The spec named ``name`` (the default when ``None``); ``KeyError`` naming it otherwise."""
        if name is None:
            name = self.default
            if name is None:
                raise KeyError("no engine is added: call add_engine(name, url) first")
        try:
            return self.specs[name]
        except KeyError:
            known = ", ".join(sorted(self.specs)) or "none"
            raise KeyError(f"no engine named {name!r} (engines: {known})") from None
