"""campaigns.backends: anymail's Postmark backend without the per-message work that repeats.
The ESP is the outside world here: a local HTTP server that answers like Postmark's API (the
`postmark` fixture)."""

import uuid

import pytest
from anymail.backends.postmark import EmailBackend as AnymailPostmarkBackend
from anymail.utils import parse_address_list
from django.core.mail import EmailMultiAlternatives
from django_scopes import scopes_disabled

from campaigns.backends import PostmarkBackend, addresses_parse
from campaigns.models import Message, Suppression
from campaigns.tests.factories import send_all


@pytest.mark.parametrize(
    "addresses",
    [
        ["cand@example.com"],
        ["ann.o'neil+jobs@mail.sub.example.co.uk"],
        ["Alex Recruiter <talent@bench.rapport.test>"],
        ['"Doe, Jane" <jane@example.com>'],
        ["Zoë Ünal <zoe@exämple.com>"],
        ['"quoted local"@example.com'],
        ["a@example.com, B <b@example.com>"],
        ["a@example.com", "b@example.com"],
        [],
    ],
)
def test_addresses_parse_matches_anymails_parser(addresses):
    def parts(parsed):
        return [(a.display_name, a.username, a.domain, a.addr_spec, a.address) for a in parsed]

    assert parts(addresses_parse(addresses)) == parts(parse_address_list(addresses))
    assert parts(addresses_parse(addresses)) == parts(addresses_parse(addresses))  # cached


def _email(to: str, subject: str) -> EmailMultiAlternatives:
    email = EmailMultiAlternatives(
        subject=subject,
        body="Hi,\n\nA role for you.",
        from_email="Sam Sender <talent@acme.example>",
        to=[to],
        reply_to=["Rae Recruiter <rae@acme.example>"],
        headers={
            "Message-ID": f"<{uuid.uuid4().hex}@acme.example>",
            "List-Unsubscribe": "<https://rapport.example.com/e/u/t/>, <mailto:u+t@acme.example>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    email.attach_alternative("<p>Hi,</p><p>A role for you.</p>", "text/html")
    return email


def test_postmark_backend_sends_what_anymails_postmark_backend_sends(postmark):
    emails = [_email("ann@example.com", "First"), _email("Bo Ek <bo@example.com>", "Zweite ü")]
    for backend_class in (AnymailPostmarkBackend, PostmarkBackend):
        backend = backend_class()
        backend.open()
        for email in emails:
            backend.send_messages([email])
        backend.close()
    stock, ours = postmark.requests[:2], postmark.requests[2:]

    assert [r["path"] for r in ours] == ["/email", "/email"]
    assert [(r["headers"], r["body"]) for r in ours] == [(r["headers"], r["body"]) for r in stock]
    assert ours[1]["payload"]["To"] == "Bo Ek <bo@example.com>"
    assert emails[1].anymail_status.message_id == postmark.message_ids["Bo Ek <bo@example.com>"]


def test_postmark_backend_sends_back_a_cookie_the_esp_sets(postmark):
    postmark.cookie = "lb=node-2; Path=/"
    backend = PostmarkBackend()
    backend.open()
    for email in (_email("ann@example.com", "First"), _email("bo@example.com", "Second")):
        backend.send_messages([email])
    backend.close()

    assert [r["headers"].get("Cookie") for r in postmark.requests] == [None, "lb=node-2"]


def test_campaign_send_through_postmark_stores_esp_ids_and_list_headers(
    launched_broadcast, org, postmark
):
    campaign, candidates = launched_broadcast
    report = send_all(org, campaign)
    with scopes_disabled():
        stored = {m.to_email: m for m in Message.objects.filter(campaign=campaign)}
    sent = {r["payload"]["To"]: r["payload"] for r in postmark.requests}

    assert report.sent == 3
    assert set(sent) == {c.email for c in candidates}
    for address, payload in sent.items():
        message = stored[address]
        headers = {h["Name"]: h["Value"] for h in payload["Headers"]}
        assert message.status == Message.Status.SENT
        assert message.esp_message_id == postmark.message_ids[address]
        assert headers["Message-ID"] == message.message_id
        assert headers["List-Unsubscribe"] == message.headers["List-Unsubscribe"]
        assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert headers["List-Id"] == message.headers["List-Id"]
        assert (payload["HtmlBody"], payload["TextBody"]) == (message.html, message.text)


def test_campaign_send_through_postmark_bounces_refused_and_retries_failed(
    launched_broadcast, org, postmark
):
    campaign, candidates = launched_broadcast
    refused, broken, fine = (c.email for c in candidates)
    postmark.invalid.add(refused)
    postmark.broken.add(broken)
    report = send_all(org, campaign)
    with scopes_disabled():
        status = {
            m.to_email: (m.status, m.attempts, m.esp_message_id)
            for m in Message.objects.filter(campaign=campaign)
        }
        suppressed = list(Suppression.objects.values_list("email", "reason"))

    assert (report.sent, report.failed, report.retried) == (1, 1, 1)
    assert status == {
        refused: (Message.Status.BOUNCED, 1, ""),
        broken: (Message.Status.QUEUED, 1, ""),
        fine: (Message.Status.SENT, 1, postmark.message_ids[fine]),
    }
    assert suppressed == [(refused, "bounced")]


def _send_three(backend_class) -> None:
    backend = backend_class()
    backend.open()
    for n in range(3):
        backend.send_messages([_email(f"c{n}@example.com", f"Email {n}")])
    backend.close()


def test_postmark_backend_reads_the_environment_once_per_session(postmark, monkeypatch):
    import requests.sessions

    calls = []
    original = requests.sessions.get_environ_proxies

    def counting(url, no_proxy=None):
        calls.append(url)
        return original(url, no_proxy=no_proxy)

    monkeypatch.setattr(requests.sessions, "get_environ_proxies", counting)
    _send_three(AnymailPostmarkBackend)
    stock = len(calls)
    calls.clear()
    _send_three(PostmarkBackend)

    assert (stock, len(calls)) == (3, 1)
    assert len(postmark.requests) == 6


def test_postmark_backend_still_goes_through_the_environments_proxy(postmark, monkeypatch):
    """The environment is read once, not ignored: with HTTP_PROXY set (here the fake server
    itself, which records the absolute URL a client sends to a proxy), every request uses it."""
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", postmark.url)
    _send_three(PostmarkBackend)

    assert [r["path"] for r in postmark.requests] == [f"{postmark.url}email"] * 3
