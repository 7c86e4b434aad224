"""Integers a client sends, checked against what the database can store.

Row ids are BIGINT columns (signed 64-bit). A value outside a column's range does not simply
find nothing: the driver raises (SQLite's ``OverflowError``, asyncpg's ``DataError``). So
every integer from a path, a query string, a form or a JSON body passes through here before
it reaches a query: an id out of range names no row (a 404 where the id is in the path), a
setting out of its documented range is refused naming the field (400).
"""

from __future__ import annotations

import re

from vaultgate.errors import InvalidRequest

ID_MAX = 2**63 - 1
# ASCII digits only: str.isdigit() also accepts "²" and other digits int() refuses.
_ID_TEXT = re.compile(r"[0-9]{1,19}")
_WHOLE_TEXT = re.compile(r"[0-9]+")


def is_row_id(value: int) -> bool:
    """Whether ``value`` can be the id of a stored row."""
    return 1 <= value <= ID_MAX


def parse_natural(raw: str | None) -> int | None:
    """A whole number from 0 to ``ID_MAX`` written in a URL or a form (an id, a paging
    cursor, a count of days), or None when the text is not one."""
    if raw is None or not _ID_TEXT.fullmatch(raw):
        return None
    value = int(raw)
    return value if value <= ID_MAX else None


def check_range(value: int, *, param: str, low: int, high: int) -> int:
    """``value`` when it lies in ``low..high``; InvalidRequest naming ``param`` otherwise."""
    if not low <= value <= high:
        label = param.replace("_", " ")
        raise InvalidRequest(f"{label} must be between {low:,} and {high:,}", param=param)
    return value


def parse_whole(raw: str, *, param: str, low: int, high: int) -> int:
    """A whole number typed in a form, in ``low..high``; InvalidRequest naming ``param``."""
    text = raw.strip()
    if not _WHOLE_TEXT.fullmatch(text):
        label = param.replace("_", " ")
        raise InvalidRequest(f"{label} must be a whole number", param=param)
    digits = text.lstrip("0") or "0"
    # More digits than the bound is out of range; int() of a huge text could even refuse.
    value = int(digits) if len(digits) <= len(str(high)) else high + 1
    return check_range(value, param=param, low=low, high=high)
