"""One helper renders every transactional email from subject / text / HTML templates.

Transactional email (invitations, password resets, digests) never carries list headers and is
never blocked by campaign suppression; campaign email goes through the campaigns outbox instead.
"""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template import Context
from django.template.loader import get_template, render_to_string


def _render_plain(name: str, context: dict) -> str:
    """A plain-text template without HTML escaping: a subject is not HTML, and "O'Neil" or
    "Smith & Jones" must not arrive as "O&#x27;Neil" or "Smith &amp; Jones"."""
    return get_template(name).template.render(Context(context, autoescape=False))


def send_transactional_email(
    *, template: str, to: list[str], context: dict, reply_to: list[str] | None = None
) -> None:
    context = {**context, "site_url": settings.SITE_URL}
    subject = " ".join(_render_plain(f"{template}_subject.txt", context).split())
    text = render_to_string(f"{template}.txt", context)
    html = render_to_string(f"{template}.html", context)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=to,
        reply_to=reply_to,
    )
    message.attach_alternative(html, "text/html")
    message.send()
