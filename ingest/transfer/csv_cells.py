"""CSV cells a spreadsheet will not run as formulas (OWASP "CSV Injection").

A spreadsheet treats a cell starting with `=`, `+`, `-`, `@`, tab or carriage return as a
formula (`=HYPERLINK(...)`, `=cmd|...`). OWASP's advice: prefix such a cell with a single
quote, which spreadsheets show as text. To keep `ai-runs export` -> `ai-runs import`
lossless, the prefix is reversible: a cell that already starts with quotes followed by one
of those characters gets one more quote, and `restore_formula` takes exactly one away.
"""

from __future__ import annotations

import re

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_QUOTED_FORMULA = re.compile("^'*[=+\\-@\t\r]")
_NEUTRALIZED = re.compile("^'+[=+\\-@\t\r]")


def neutralize_formula(cell: str) -> str:
    """`cell` safe to open in a spreadsheet: "'" + cell when it starts (after any quotes)
    with = + - @ tab or CR; otherwise unchanged."""
    return "'" + cell if _QUOTED_FORMULA.match(cell) else cell


def restore_formula(cell: str) -> str:
    """The inverse of neutralize_formula (for cells written by it)."""
    return cell[1:] if _NEUTRALIZED.match(cell) else cell
