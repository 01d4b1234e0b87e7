"""`manage.py check --deploy` warns when the one-click unsubscribe link would not be HTTPS, and
when the ESP webhooks under /webhooks/anymail/ would take posts from anyone: with an ESP
backend (tracking webhooks), and with CAMPAIGNS_REPLY_DOMAIN, whose mail reaches anymail's
inbound webhook whatever backend sends (SMTP too)."""

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from campaigns.checks import anymail_webhook_secret, site_url_https

SMTP = "django.core.mail.backends.smtp.EmailBackend"
SECRET = {"WEBHOOK_SECRET": "rapport-hooks:s3cret-passphrase"}


def _ids() -> list[str]:
    return [message.id for message in anymail_webhook_secret(None)]


@override_settings(EMAIL_BACKEND=SMTP, ANYMAIL={}, CAMPAIGNS_REPLY_DOMAIN="reply.example.com")
def test_a_reply_domain_without_a_webhook_secret_warns_even_when_smtp_sends():
    [warning] = anymail_webhook_secret(None)
    assert warning.id == "campaigns.W001"
    assert "CAMPAIGNS_REPLY_DOMAIN" in warning.msg
    assert "inbound" in warning.msg


@override_settings(EMAIL_BACKEND=SMTP, ANYMAIL=SECRET, CAMPAIGNS_REPLY_DOMAIN="reply.example.com")
def test_a_reply_domain_with_a_webhook_secret_is_fine():
    assert _ids() == []


@override_settings(EMAIL_BACKEND=SMTP, ANYMAIL={}, CAMPAIGNS_REPLY_DOMAIN="")
def test_smtp_without_a_reply_domain_needs_no_secret():
    assert _ids() == []


def test_the_reply_domain_counts_when_it_comes_from_the_environment(settings, monkeypatch):
    # Operators set it in the environment; campaigns/conf.py reads it from there.
    settings.EMAIL_BACKEND = SMTP
    settings.ANYMAIL = {}
    if hasattr(settings, "CAMPAIGNS_REPLY_DOMAIN"):
        del settings.CAMPAIGNS_REPLY_DOMAIN
    monkeypatch.delenv("CAMPAIGNS_REPLY_DOMAIN", raising=False)
    assert _ids() == []
    monkeypatch.setenv("CAMPAIGNS_REPLY_DOMAIN", "reply.example.com")
    assert _ids() == ["campaigns.W001"]


@pytest.mark.parametrize("reply_domain", ["", "reply.example.com"])
@override_settings(EMAIL_BACKEND="campaigns.backends.PostmarkBackend", ANYMAIL={})
def test_an_esp_backend_without_a_secret_warns_once(reply_domain):
    with override_settings(CAMPAIGNS_REPLY_DOMAIN=reply_domain):
        assert _ids() == ["campaigns.W001"]


@override_settings(EMAIL_BACKEND=SMTP, ANYMAIL={}, CAMPAIGNS_REPLY_DOMAIN="reply.example.com")
def test_the_warning_is_part_of_check_deploy():
    found = run_checks(include_deployment_checks=True, tags=["campaigns"])
    assert "campaigns.W001" in [message.id for message in found]


@pytest.mark.parametrize(
    ("site_url", "warned"),
    [
        ("https://rapport.example.com", []),
        ("http://rapport.example.com", ["campaigns.W002"]),
        ("http://localhost:8000", ["campaigns.W002"]),
    ],
)
def test_one_click_unsubscribe_needs_an_https_site_url(site_url, warned):
    with override_settings(SITE_URL=site_url):
        assert [message.id for message in site_url_https(None)] == warned
        found = run_checks(include_deployment_checks=True, tags=["campaigns"])
    assert [m.id for m in found if m.id == "campaigns.W002"] == warned
