"""Ids that arrive as text (query strings, form values, cursors): one check for all of them.

`str.isdigit()` alone is not enough: it is true for "²" or "٣", which `int()` refuses, and a
long run of digits overflows the database's bigint. An id is 1 to 12 ASCII digits.
"""

from collections.abc import Iterable

MAX_ID_DIGITS = 12


def id_from(value) -> int | None:
    """The id that `value` spells, or None when it is not one."""
    text = str(value).strip() if value is not None else ""
    if text.isascii() and text.isdigit() and len(text) <= MAX_ID_DIGITS:
        return int(text)
    return None


def ids_from(values: Iterable) -> list[int]:
    """The ids among `values`, in order; anything else is left out."""
    return [pk for pk in map(id_from, values) if pk is not None]
