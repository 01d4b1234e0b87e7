"""`{{ subject|merge_chips }}`: a subject line as a list page shows it, each merge field a
small chip with its name exactly as a recruiter types it (`first_name`, `custom.salary_band`)
instead of its raw `{{ first_name|default('Hello') }}` (which its tooltip keeps).
Pure text work, no query: safe on list pages."""

import re

from django import template
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.safestring import SafeString

from campaigns.services.rendering import JINJA_SEGMENT

register = template.Library()

_FIELD = re.compile(r"{{-?\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)")


def _chip(segment: str) -> SafeString:
    if segment.startswith("{#"):  # a comment shows nowhere
        return SafeString("")
    if segment.startswith("{%"):  # a tag ({% if %}) stays as written
        return conditional_escape(segment)
    field = _FIELD.match(segment)
    label = field[1] if field else segment[2:-2].strip()
    return format_html(
        '<span class="badge rounded-pill text-bg-light border fw-normal font-monospace '
        'merge-chip" title="{}">{}</span>',
        segment,
        label,
    )


@register.filter
def merge_chips(text: str) -> SafeString:
    parts, last = [], 0
    for match in JINJA_SEGMENT.finditer(text or ""):
        parts.append(conditional_escape(text[last : match.start()]))
        parts.append(_chip(match.group(0)))
        last = match.end()
    parts.append(conditional_escape((text or "")[last:]))
    return format_html_join("", "{}", ((part,) for part in parts))
