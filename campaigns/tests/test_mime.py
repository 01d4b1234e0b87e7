"""The send path's shortcuts give what the generic path gives: the campaign email written
without the MIME tree (services/mime.py) parses to the same message as Django's
EmailMultiAlternatives, the per-chunk layout gives `render_to_string`'s output, and the
written-out token signer gives the signer's bytes."""

import email
import email.policy
import smtplib

import pytest
from django.core.mail.message import sanitize_address
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from campaigns.services import branding, mime, tokens
from campaigns.services import messages as message_service
from campaigns.services.sending import _CampaignEmail

LONG_URL = "https://rapport.example.com/e/u/" + "a" * 90 + "/"
CASES = [
    pytest.param(
        {
            "subject": "A role for you, Ada",
            "from_email": "Acme Talent <talent@acme.example>",
            "to": "ada@example.com",
            "reply_to": ["Rex Recruiter <rex@acme.example>"],
            "text": "Hi Ada,\n\nA role.\n",
            "html": "<p>Hi Ada,</p>\n<p>A role.</p>\n",
        },
        id="ascii",
    ),
    pytest.param(
        {
            "subject": "Zoë, a Staff Engineer opening in Kraków — 20 minutes?",
            "from_email": "Équipe Talent <talent@acme.example>",
            "to": "zoë@exämple.com",
            "reply_to": ["Mr. Steven O'Brien <steven@acme.example>", "reply+tok@replies.test"],
            "text": "Cześć Zoë,\r\nline two\rline three\n. a line starting with a dot\n",
            "html": "<p>Grüße, 日本語</p>",
        },
        id="non-ascii, IDN, CR/CRLF, dots",
    ),
    pytest.param(
        {
            "subject": "x" * 120 + " with words " * 8,
            "from_email": '"Talent, Inc." <talent@acme.example>',
            "to": "first.last+tag@sub.example.co.uk",
            "reply_to": [],
            "text": "one very long line " * 80,  # > 998 octets: quoted-printable
            "html": "<p>" + "é" * 600 + "</p>\n" + "<td>" * 300,
        },
        id="long subject, long lines",
    ),
]


def _headers(subject_campaign: str = "Spring roles") -> dict:
    return {
        "Message-ID": "<m42.1700000000.1@acme.example>",
        "List-Unsubscribe": f"<{LONG_URL}>, <mailto:unsubscribe+{'t' * 40}@acme.example>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": f'"{subject_campaign}" <c7.acme.acme.example>',
    }


def _django_bytes(case: dict, headers: dict) -> bytes:
    message = _CampaignEmail(
        subject=case["subject"],
        body=case["text"],
        from_email=case["from_email"],
        to=[case["to"]],
        reply_to=case["reply_to"] or None,
        headers=dict(headers),
    )
    message.attach_alternative(case["html"], "text/html")
    return message.message().as_bytes(linesep="\r\n")


def _parse(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("campaign_name", ["Spring roles", "Rôles de printemps"])
def test_written_email_parses_like_djangos(case, campaign_name, settings):
    settings.EMAIL_USE_LOCALTIME = False
    headers = _headers(campaign_name)
    ours = mime.campaign_email_bytes(headers=headers, **case)
    theirs = _django_bytes(case, headers)
    mine, django = _parse(ours), _parse(theirs)

    names = [name for name, _ in django.items() if name != "Date"]
    assert [name for name, _ in mine.items() if name != "Date"] == names
    for name in names:
        if name == "Content-Type":
            assert mine.get_content_type() == django.get_content_type()
        else:
            # Django folds a long value onto the next line, which leaves a leading space.
            assert str(mine[name]).strip() == str(django[name]).strip(), name
    assert mine["Date"] is not None
    assert mine.get_content_type() == "multipart/alternative"
    for kind in ("plain", "html"):
        ours_part, django_part = mine.get_body((kind,)), django.get_body((kind,))
        assert ours_part.get_content() == django_part.get_content()
        assert ours_part["Content-Transfer-Encoding"] == django_part["Content-Transfer-Encoding"]
        assert ours_part.get_content_charset() == "utf-8"
    assert b"\r\n" in ours and b"\n" not in ours.replace(b"\r\n", b"")  # CRLF only
    assert max(len(line) for line in ours.split(b"\r\n")) <= 998


@pytest.mark.parametrize("case", CASES)
def test_envelope_is_djangos(case):
    sender, recipients = mime.smtp_envelope(from_email=case["from_email"], to=case["to"])
    assert sender == sanitize_address(case["from_email"], "utf-8")
    assert recipients == [sanitize_address(case["to"], "utf-8")]


def test_header_injection_is_refused():
    case = {**CASES[0].values[0], "subject": "Hi\r\nBcc: victim@example.com"}
    with pytest.raises(ValueError, match="newlines"):
        mime.campaign_email_bytes(headers=_headers(), **case)


def test_smtp_server_receives_it_intact():
    """Through smtplib's own dot-stuffing and line handling, as the send path uses it."""
    from aiosmtpd.controller import Controller

    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append((envelope.mail_from, envelope.rcpt_tos, envelope.content))
            return "250 OK"

    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        case = CASES[1].values[0] | {"to": "zoe@example.com"}
        data = mime.campaign_email_bytes(headers=_headers(), **case)
        sender, recipients = mime.smtp_envelope(from_email=case["from_email"], to=case["to"])
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.sendmail(sender, recipients, data)
    finally:
        controller.stop()
    ((mail_from, rcpt_tos, content),) = received
    assert (mail_from, rcpt_tos) == ("talent@acme.example", ["zoe@example.com"])
    parsed = _parse(content)
    assert parsed["Subject"] == case["subject"]
    assert parsed.get_body(("plain",)).get_content().splitlines()[3] == (
        ". a line starting with a dot"
    )


# --- the layout, filled per message ---


class _Org:
    pk = 1
    name = 'Acme & "Sons" <Talent>'
    postal_address = "1 Example Street\nLondon <EC1>"
    logo, logo_width, logo_height = "", 0, 0
    brand_color = "#0b5394"


def _context(values: dict) -> dict:
    return {
        "organization": _Org(),
        "brand": branding.brand_for(_Org()),
        **values,
        "body_html": mark_safe(values["body_html"]),  # noqa: S308
    }


LAYOUT_VALUES = [
    {
        "subject": "Hi <Ada> & co",
        "preheader": "A note from 'Rex'",
        "body_html": "<p>Body with <b>markup</b> &amp; entities</p>",
        "body_text": 'Body <text> & "quotes"\n',
        "unsubscribe_url": "https://x.example/e/u/tok/?a=1&b=2",
        "preferences_url": "https://x.example/e/p/tok/",
        "pixel_url": "https://x.example/e/o/tok.gif",
        "trap_url": "https://x.example/e/c/trap/",
    },
    {
        "subject": "No preheader, no tracking",
        "preheader": "",
        "body_html": "<p>x</p>",
        "body_text": "x\n",
        "unsubscribe_url": "https://x.example/e/u/t/",
        "preferences_url": "https://x.example/e/p/t/",
        "pixel_url": "",
        "trap_url": "",
    },
]


@pytest.mark.parametrize("values", LAYOUT_VALUES)
def test_layout_fills_what_render_to_string_renders(values):
    layout = message_service.Layout(_Org())
    assert layout.html(values) == render_to_string("campaigns/email/layout.html", _context(values))
    assert layout.text(values) == render_to_string("campaigns/email/layout.txt", _context(values))
    # The same layout object serves every variant of a chunk.
    for other in LAYOUT_VALUES:
        assert layout.html(other) == render_to_string(
            "campaigns/email/layout.html", _context(other)
        )


def test_layout_falls_back_when_a_filter_changes_a_value(monkeypatch):
    """A layout edited to transform a per-message value (`{{ subject|upper }}`) would break the
    markers; that variant is then rendered the plain way."""
    from django.template import engines

    template = engines["django"].from_string("<title>{{ subject|upper }}</title>{{ body_html }}")
    real = message_service.render_to_string

    def render(name, context):
        if name.endswith("layout.html"):
            return template.render(context)
        return real(name, context)

    monkeypatch.setattr(message_service, "render_to_string", render)
    layout = message_service.Layout(_Org())
    assert layout.html(LAYOUT_VALUES[0]) == (
        "<title>HI &lt;ADA&gt; &amp; CO</title><p>Body with <b>markup</b> &amp; entities</p>"
    )


# --- tokens ---


@pytest.mark.parametrize("ids", [(1, 2, 3, 0), (35, 36, 1295, 1296), (7, 10**9, 2**40, 99)])
@pytest.mark.parametrize("salt", [tokens.CLICK_SALT, tokens.OPEN_SALT, tokens.CANDIDATE_SALT])
def test_token_make_gives_the_signers_bytes(ids, salt, settings, monkeypatch):
    import time

    from django.utils.http import int_to_base36

    settings.SECRET_KEY = "a-test-key-" + "k" * 40
    monkeypatch.setattr(time, "time", lambda: 1_790_000_000.5)
    organization_id, candidate_id, message_id, link_index = ids
    token = tokens.token_make(
        salt=salt,
        organization_id=organization_id,
        candidate_id=candidate_id,
        message_id=message_id,
        link_index=link_index,
    )
    value = "-".join(int_to_base36(part) for part in ids)
    assert token == tokens._signer(salt).sign(value)
    monkeypatch.undo()
    assert tokens.token_read(token, salt=salt) == tokens.LinkToken(*ids)
