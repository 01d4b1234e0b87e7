"""A timeline entry, written in Python: a profile shows 200 entries, and the template
language's cost per node and per variable (and the `date`/`naturaltime` filters), times 200,
was most of the page's time. The markup is what the template wrote; a note's entry renders
its note with candidates/includes/note_item.html (its actions depend on the user)."""

from django import template
from django.utils.safestring import SafeString, mark_safe

from candidates.models import Activity
from crm.dates import PageClock, page_clock
from crm.html import escape

register = template.Library()
# get_kind_display() walks all the choices on every call; a dict does not.
KIND_LABELS = dict(Activity.Kind.choices)
NOTE_TEMPLATE = "candidates/includes/note_item.html"


def _label(activity) -> str:
    """The entry's heading: the view's own (a logged call: "Call"), else the kind's label."""
    return getattr(activity, "heading", None) or KIND_LABELS.get(activity.kind, activity.kind)


# Entries that only the candidate causes when no user is named: their own unsubscribe (a link,
# their mail client's one-click button, a complaint, a reply asking for it), resubscribe,
# preference choices and double opt-in confirmation. A recruiter's consent request names them.
BY_THE_CANDIDATE = {Activity.Kind.UNSUBSCRIBED, Activity.Kind.CONSENT_CHANGED}


def _heading(activity, clock: PageClock) -> str:
    """What happened, who did it and when."""
    actor = ""
    if activity.actor_id:
        actor = (
            f' <span class="text-body-secondary">by {escape(activity.actor.display_name)}</span>'
        )
    elif activity.kind in BY_THE_CANDIDATE:
        actor = ' <span class="text-body-secondary">by the candidate</span>'
    merged_from = getattr(activity, "merged_from", "")
    if merged_from:
        # Came with a merged-away profile: its "Profile created" is not this profile's.
        actor += (
            ' <span class="badge rounded-pill text-bg-light border fw-normal"'
            f' title="From the profile of {escape(merged_from)}, merged into this one">'
            f"merged from {escape(merged_from)}</span>"
        )
    occurred_at = activity.occurred_at
    local = clock.local(occurred_at)
    return (
        '<div class="d-flex flex-wrap justify-content-between gap-2">'
        f'<div><span class="fw-semibold">{escape(_label(activity))}'
        f"</span>{actor}</div>"
        f'<time class="small text-body-secondary text-nowrap" datetime="{local.isoformat()}"'
        f' title="{escape(clock.day_and_time(local))}">{escape(clock.natural_time(occurred_at))}'
        "</time></div>"
    )


def _note(context, note) -> str:
    """note_item.html for the entry's note, as `{% include … with note=… place="timeline" %}`."""
    note_template = context.template.engine.get_template(NOTE_TEMPLATE)
    with context.push(note=note, place="timeline"):
        return note_template.render(context)


@register.simple_tag(takes_context=True)
def timeline_entry(context, activity) -> SafeString:
    """The timeline's <li> for `activity` (`activity.icon`, and `activity.heading` when the
    kind's label is not the heading, are set by the view)."""
    anchor = f' id="timeline-note-{activity.note_id}"' if activity.note_id else ""
    parts = [
        f'<li class="timeline-item timeline-{escape(activity.kind)}"{anchor}>\n'
        f'<span class="timeline-icon" aria-hidden="true"><i class="bi bi-{escape(activity.icon)}">'
        '</i></span>\n<div class="timeline-content">\n',
        _heading(activity, page_clock(context)),
        "\n",
    ]
    if activity.note_id:
        parts.append(f'<div class="timeline-note mt-1">\n{_note(context, activity.note)}\n</div>\n')
    elif activity.summary:
        parts.append(
            '<div class="text-body-secondary small mt-1 text-break">'
            f"{escape(activity.summary)}</div>\n"
        )
    parts.append("</div>\n</li>")
    return mark_safe("".join(parts))  # noqa: S308 (every value is escaped above)
