"""System checks of the campaigns app."""

from django.conf import settings
from django.core.checks import Warning, register


@register("campaigns", deploy=True)
def anymail_webhook_secret(app_configs, **kwargs):
    """Without WEBHOOK_SECRET anymail accepts webhook posts from anyone (it only warns)."""
    backend = getattr(settings, "EMAIL_BACKEND", "")
    secret = getattr(settings, "ANYMAIL", {}).get("WEBHOOK_SECRET")
    # anymail's backends, or ours built on them (campaigns/backends.py)
    if backend.startswith(("anymail.", "campaigns.backends.")) and not secret:
        return [
            Warning(
                "ANYMAIL_WEBHOOK_SECRET is not set: the ESP webhooks under /webhooks/anymail/ "
                "would accept events from anyone.",
                hint="Set ANYMAIL_WEBHOOK_SECRET=user:password and use it in the ESP's webhook URL.",
                id="campaigns.W001",
            )
        ]
    return []
