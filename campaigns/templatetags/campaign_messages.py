"""Showing stored emails to the team: `{{ message.subject|for_staff }}` puts a placeholder where
a candidate's signed token was (see campaigns.services.messages.text_for_staff)."""

from django import template

from campaigns.services.messages import text_for_staff

register = template.Library()


@register.filter
def for_staff(text: str) -> str:
    return text_for_staff(text)
