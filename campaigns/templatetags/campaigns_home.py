from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def campaigns_home(context):
    """The home page's newest campaigns with their audience and sent counts (one query)."""
    from campaigns.selectors import campaigns_for_list

    return list(campaigns_for_list(organization=context["organization"])[:5])
