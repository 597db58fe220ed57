"""The driver each kind of store URL needs, and the extra of storeroom that installs it.

A URL whose driver is missing raises ``MissingDriver`` (an ``ImportError``) naming the
package and the command that installs it, when the store or engine is opened, instead of
a bare ``ModuleNotFoundError`` at first use. The extras are those of ``pyproject.toml``.
"""

from __future__ import annotations

import importlib

from ..errors import MissingDriver

EXTRAS = {"psycopg": "postgres", "pymysql": "mysql", "aiomysql": "mysql", "boto3": "dynamodb",
          "aioboto3": "dynamodb", "pymongo": "mongodb", "redis": "redis"}
"""The extra of storeroom that installs each driver package."""

# scheme: (modules of the sync driver, modules of the async driver)
_DRIVERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "postgresql": (("psycopg",), ("psycopg",)),
    "mysql": (("pymysql",), ("aiomysql",)),
    "dynamodb": (("boto3",), ("aioboto3",)),
    "mongodb": (("pymongo",), ("pymongo",)),
    "redis": (("redis",), ("redis",)),
}


def require_module(module: str, what: str) -> None:
    """Import driver ``module``; ``MissingDriver`` naming its extra when it is missing.

    Modules storeroom has no extra for are left to their own import errors.
    """
    extra = EXTRAS.get(module)
    if extra is None:
        return
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise MissingDriver(f"{what} needs the {module} package, which is not installed: "
                            f"pip install 'storeroom[{extra}]'", name=module) from exc


def require_driver(scheme: str, is_async: bool) -> None:
    """Import the driver of a store URL scheme (``postgresql``, ``mysql``, ``dynamodb``,
    ``mongodb``, ``redis``; the others need none); ``MissingDriver`` when missing."""
    spec = _DRIVERS.get(scheme)
    if spec is None:
        return
    for module in spec[1] if is_async else spec[0]:
        require_module(module, f"a{'n async' if is_async else ''} {scheme} store")
