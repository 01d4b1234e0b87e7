"""Helpers shared by the campaign views."""

from django.http import HttpResponse
from django.views.decorators.clickjacking import xframe_options_sameorigin

# Rendered emails are shown in a sandboxed <iframe> on our own pages. They carry inline styles
# (email clients need them), so they get their own strict policy instead of the site's: no
# scripts at all, no forms, only our frame may embed them.
EMAIL_FRAME_POLICY = (
    "default-src 'none'; img-src 'self' data: https:; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'; sandbox"
)


def email_html_response(html: str) -> HttpResponse:
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = EMAIL_FRAME_POLICY
    return response


def problems_html(problems: list[str]) -> str:
    from django.utils.html import format_html, format_html_join

    items = format_html_join("", "<li>{}</li>", ((p,) for p in problems))
    return format_html(
        '<!DOCTYPE html><html><body style="font-family:system-ui,sans-serif;color:#842029;'
        'padding:1rem"><p><strong>The preview cannot be shown yet:</strong></p><ul>{}</ul>'
        "</body></html>",
        items,
    )


frame_view = xframe_options_sameorigin
