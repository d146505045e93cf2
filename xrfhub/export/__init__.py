"""Handing a store on: a PANGAEA-ready table (``pangaea``) and an RO-Crate (``rocrate``).

Both read the current generation only (never write the store) and name every file they
describe by its sha256, so what was handed on can be checked against the archive later.
"""
