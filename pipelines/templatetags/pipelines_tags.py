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
