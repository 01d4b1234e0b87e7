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


@register.simple_tag(takes_context=True)
def pools_home(context):
    """The home page's pools for readers (who have no follow-ups of their own): the largest
    pools they can see, with their size and growth. Three queries (pool_list_rows)."""
    from pipelines.selectors import pool_list_rows

    rows = pool_list_rows(organization=context["organization"], user=context["request"].user)
    rows.sort(key=lambda row: (-row.size, row.pool.name.lower()))
    return {"rows": rows[:5], "more": len(rows) > 5}
