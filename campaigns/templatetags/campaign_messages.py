"""Showing stored emails to the team: `{{ message.subject|for_staff }}` puts a placeholder where
a candidate's signed token was (see campaigns.services.messages.text_for_staff)."""

from django import template

from campaigns.services.messages import text_for_staff

register = template.Library()


@register.filter
def for_staff(text: str) -> str:
    return text_for_staff(text)


# A text taller than `.email-text`'s box (24rem, rapport.css): some 18 lines, or 1,200
# characters at a laptop's width. Such a box scrolls, so it must be reachable by keyboard.
LONG_TEXT_CHARACTERS = 1200
LONG_TEXT_LINES = 18


@register.filter
def scrolls_in_box(text: str) -> bool:
    """Whether `text` is long enough to scroll in an `.email-text` box."""
    text = text or ""
    return len(text) > LONG_TEXT_CHARACTERS or len(text.splitlines()) > LONG_TEXT_LINES
