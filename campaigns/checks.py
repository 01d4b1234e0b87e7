"""System checks of the campaigns app."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Warning, register

from campaigns.conf import setting


@register("campaigns", deploy=True)
def anymail_webhook_secret(app_configs, **kwargs):
    """Without WEBHOOK_SECRET anymail accepts webhook posts from anyone (it only warns). The
    webhooks matter with an ESP backend (tracking events) and with CAMPAIGNS_REPLY_DOMAIN, whose
    mail reaches anymail's inbound webhook whatever backend sends (SMTP too)."""
    if getattr(settings, "ANYMAIL", {}).get("WEBHOOK_SECRET"):
        return []
    backend = getattr(settings, "EMAIL_BACKEND", "")
    # anymail's backends, or ours built on them (campaigns/backends.py)
    if backend.startswith(("anymail.", "campaigns.backends.")):
        message = (
            "ANYMAIL_WEBHOOK_SECRET is not set: the ESP webhooks under /webhooks/anymail/ "
            "would accept events from anyone."
        )
    elif setting("CAMPAIGNS_REPLY_DOMAIN", ""):
        message = (
            "ANYMAIL_WEBHOOK_SECRET is not set: the inbound webhook under /webhooks/anymail/, "
            "which CAMPAIGNS_REPLY_DOMAIN's mail reaches, would accept emails from anyone."
        )
    else:
        return []
    return [
        Warning(
            message,
            hint="Set ANYMAIL_WEBHOOK_SECRET=user:password and use it in the ESP's webhook URLs.",
            id="campaigns.W001",
        )
    ]


@register("campaigns", deploy=True)
def site_url_https(app_configs, **kwargs):
    """Every campaign email's List-Unsubscribe names a link under SITE_URL. RFC 8058 requires
    that one-click link to be HTTPS, and mailbox providers ignore List-Unsubscribe-Post (and
    show no unsubscribe button) for a plain-HTTP one — a candidate could then only mark the
    email as spam."""
    if urlsplit(settings.SITE_URL).scheme == "https":
        return []
    return [
        Warning(
            f"SITE_URL ({settings.SITE_URL}) is not HTTPS: the one-click unsubscribe link in every "
            "campaign email's List-Unsubscribe header would not be honoured (RFC 8058 requires "
            "HTTPS).",
            hint="Serve Rapport over HTTPS and set SITE_URL=https://your-host.",
            id="campaigns.W002",
        )
    ]
