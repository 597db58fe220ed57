"""Stored models: ``@stored`` classes, fields, generators, keys, indexes and schemas."""

from .attrs import Attr
from .fields import FieldOptions, Generator, field, generated, utcnow
from .indexes import Index
from .keys import KeyConfig
from .relations import Many, Ref, is_loaded
from .stored import ModelMeta, is_stored, meta_of, snake_case, stored
from .undefined import UNDEFINED

__all__ = [
    "Attr", "FieldOptions", "Generator", "field", "generated", "utcnow", "Index", "KeyConfig",
    "ModelMeta", "Many", "Ref", "is_loaded", "is_stored", "meta_of", "snake_case", "stored", "UNDEFINED",
]
