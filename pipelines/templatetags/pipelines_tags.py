from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def candidate_pools_panel(context, candidate):
    """The profile's pools card: the candidate's pools (that the viewer can see) with their
    stage, and the static pools they could be added to. Two queries."""
    from pipelines.selectors import candidate_pools_panel as panel

    return panel(candidate=candidate, user=context["request"].user)


@register.simple_tag
def candidate_follow_ups(candidate):
    """The candidate's open follow-ups (one query)."""
    from pipelines.selectors import candidate_follow_ups as follow_ups

    return follow_ups(candidate=candidate)


@register.simple_tag(takes_context=True)
def follow_ups_home(context):
    """The home page's follow-ups: the viewer's open ones due today or earlier (one query)."""
    from django.utils import timezone

    from pipelines.selectors import follow_ups_open

    today = timezone.localdate()
    due = follow_ups_open(organization=context["organization"], owner=context["request"].user)
    due = list(due.filter(due_on__lte=today)[:6])
    return {"items": due[:5], "more": len(due) > 5, "today": today}
