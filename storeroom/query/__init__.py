"""Filters and ordering: one AST, three spellings, validation, local evaluation, cursors."""

from .ast import EVERYTHING, NOTHING, OPERATORS, And, Cond, Node, Not, Or
from .cursor import (
    CursorKeys,
    after_filter,
    cursor_keys,
    decode_cursor,
    encode_cursor,
    fingerprint,
)
from .evaluate import compile_local, matches, plain, sort_items
from .order import Order, order_values, parse_order
from .prepare import build_filter, coerce_value, free_text, prepare, simplify
from .q import Q, attr, lookups_node, parse_lookup, to_node

__all__ = [
    "EVERYTHING", "NOTHING", "OPERATORS", "And", "Cond", "Node", "Not", "Or", "after_filter",
    "decode_cursor", "encode_cursor", "fingerprint", "CursorKeys", "cursor_keys", "compile_local", "matches", "plain",
    "sort_items", "Order", "order_values", "parse_order", "build_filter", "coerce_value",
    "free_text", "prepare", "simplify", "Q", "attr", "lookups_node", "parse_lookup", "to_node",
]
