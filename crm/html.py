"""HTML escaping for markup written in Python (the candidate list's rows, the timeline): what
`django.utils.html.conditional_escape` returns, without its lazy-string wrapper — about a
microsecond a call, and a list page makes a thousand."""

from html import escape as _escape

from django.utils.functional import Promise


def escape(value) -> str:
    """`value` as HTML: escaped, unless it is already safe (has `__html__`)."""
    if isinstance(value, Promise):
        value = str(value)
    if hasattr(value, "__html__"):
        return value.__html__()
    return _escape(str(value))
