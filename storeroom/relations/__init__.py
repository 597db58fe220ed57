"""Relation loading (sans-I/O planning, see :mod:`storeroom.relations.loading`) and lazy
loading of stubs and unloaded ``Many`` attributes (:mod:`storeroom.relations.lazy`)."""
