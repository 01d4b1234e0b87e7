"""Data for the profile's Duplicates card (candidates/includes/profile_duplicates.html), which
is included by a view that does not know about duplicates: two queries, whatever the numbers."""

from django import template

from candidates.normalize import phone_display
from candidates.selectors import candidate_duplicates_panel

register = template.Library()


@register.filter(name="phone_display")
def phone_display_filter(phone: str) -> str:
    """`{{ candidate.phone|phone_display }}`: '+4915123452709' -> '+49 1512 3452709'."""
    return phone_display(phone) if phone else ""


@register.simple_tag
def duplicates_panel(candidate):
    """`{% duplicates_panel candidate as panel %}` → panel.suggestions (each with `.other`, the
    other profile) and panel.merges (merges into this candidate, newest first)."""
    return candidate_duplicates_panel(candidate=candidate)
