"""Helpers for markup written in Python (the candidate list's rows, the timeline, the board's
cards): HTML escaping, and URLs that differ only in their last id."""

from collections.abc import Callable
from html import escape as _escape

from django.urls import reverse
from django.utils.functional import Promise


def escape(value) -> str:
    """What `django.utils.html.conditional_escape` returns, without its lazy-string wrapper —
    about a microsecond a call, and a list page makes a thousand.

    `value` as HTML: escaped, unless it is already safe (has `__html__`)."""
    if isinstance(value, Promise):
        value = str(value)
    if hasattr(value, "__html__"):
        return value.__html__()
    return _escape(str(value))


def id_url(viewname: str, *args) -> Callable[[int], str]:
    """`lambda pk: reverse(viewname, args=[*args, pk])`, reversing twice in all instead of once
    per row: the URL is split around the last id, found by reversing with two ids (so a slug
    or an earlier id holding the same digits cannot be mistaken for it)."""
    one = reverse(viewname, args=[*args, 1])
    two = reverse(viewname, args=[*args, 2])
    place = next(i for i, (a, b) in enumerate(zip(one, two, strict=True)) if a != b)
    before, after = one[:place], one[place + 1 :]
    return lambda pk: f"{before}{pk}{after}"
