"""Op-table rows for the nn family (see op_table.py)."""

from tests.ops.op_table import A, C, OpSpec  # noqa: F401

ROWS: list = []
