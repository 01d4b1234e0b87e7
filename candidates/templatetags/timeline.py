"""The heading of a timeline entry, written in Python: a profile shows 200 entries, and the
template language's cost per node and per variable, times 200, was most of the page's time."""

from django import template
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.utils.dateformat import format as date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timezone import template_localtime

from candidates.models import Activity

register = template.Library()
# get_kind_display() walks all the choices on every call; a dict does not.
KIND_LABELS = dict(Activity.Kind.choices)


@register.simple_tag
def timeline_heading(activity) -> SafeString:
    """What happened, who did it and when — the markup the template used to write."""
    occurred_at = template_localtime(activity.occurred_at)
    actor = ""
    if activity.actor_id:
        actor = format_html(
            ' <span class="text-body-secondary">by {}</span>', activity.actor.display_name
        )
    return format_html(
        '<div class="d-flex flex-wrap justify-content-between gap-2">'
        '<div><span class="fw-semibold">{}</span>{}</div>'
        '<time class="small text-body-secondary text-nowrap" datetime="{}" title="{}">{}</time>'
        "</div>",
        KIND_LABELS.get(activity.kind, activity.kind),
        actor,
        date_format(occurred_at, "c"),
        date_format(occurred_at, "j M Y, H:i"),
        naturaltime(activity.occurred_at),
    )
