"""`{{ organization|brand }}`: the organisation's logo and colour for candidate-facing pages."""

from django import template

from campaigns.services.branding import Brand, brand_for

register = template.Library()


@register.filter
def brand(organization) -> Brand | None:
    return brand_for(organization) if organization else None
