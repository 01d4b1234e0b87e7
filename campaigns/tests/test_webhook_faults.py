"""ESP webhooks under faults: a retry round that runs late (beat or the email worker down for
more than an hour), an inbound reply larger than Django's 10 MB limit on request bodies (a
candidate's CV attached), authenticated events whose fields are not text, and requests that
carry no CSRF token (no ESP sends one).

Requests go through anymail's real webhook views, as in test_webhooks.py and test_replies.py."""

import base64
import hashlib
import hmac
import json
import logging
import time
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from analytics.models import EngagementEvent
from campaigns.models import (
    Enrollment,
    EspEvent,
    InboundEmail,
    Message,
    PendingEspEvent,
    Suppression,
)
from campaigns.services import webhooks
from campaigns.services.sending import messages_send
from campaigns.tests import test_webhooks
from campaigns.tests.test_replies import REPLY
from campaigns.tests.test_webhooks import (
    ESP_ID,
    MAILGUN_KEY,
    SECRET,
    _auth_client,
    _bounce,
    _hard_bounce,
    _launched_to_one,
    _now_iso,
    _postmark,
    _reported_before_the_answer,
)

# A campaign email sent an hour ago, known to the ESP as ESP_ID (a fixture).
sent_message = test_webhooks.sent_message
MB = 1024 * 1024


@pytest.fixture(autouse=True)
def _anymail(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}


def _later(monkeypatch, delay: timedelta) -> None:
    """The clock moves on by `delay` (beat did not run in between)."""
    later = timezone.now() + delay
    monkeypatch.setattr(timezone, "now", lambda: later)


# --- D4: a retry round that runs more than an hour late ---------------------------------------


@pytest.mark.django_db(transaction=True)
def test_early_hard_bounce_is_applied_by_a_retry_round_that_runs_more_than_an_hour_late(
    org, recruiter_user, postmark, settings, monkeypatch
):
    """The bounce came before the send was recorded and waited; beat was down for an hour. The
    first round after it applies the bounce (the send has long been recorded) instead of
    dropping it as too old: the address is suppressed."""
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}
    ids = _launched_to_one(org, recruiter_user)
    answers = _reported_before_the_answer(postmark, report="bounce", reported_as="esp id")
    with scope(organization=org):
        messages_send(organization=org, message_ids=ids)
    _later(monkeypatch, webhooks.pending_retry_for() + timedelta(minutes=1))

    applied = webhooks.esp_events_retry()

    with scopes_disabled():
        message = Message.objects.get()
        suppressed = list(Suppression.objects.values_list("email", "reason"))
        kinds = list(EngagementEvent.objects.exclude(kind="sent").values_list("kind", flat=True))
    assert answers == [200]
    assert applied == 1
    assert suppressed == [(message.to_email.lower(), Suppression.Reason.BOUNCED)]
    assert message.status == Message.Status.BOUNCED
    assert kinds == ["bounced"]
    assert PendingEspEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_late_retry_round_drops_only_what_still_matches_nothing_and_logs_how_many(
    org, recruiter_user, postmark, settings, monkeypatch, caplog
):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}
    ids = _launched_to_one(org, recruiter_user)
    for number in range(2):  # two events about emails that are not campaign emails
        not_ours = _hard_bounce(f"transactional-{number}", "someone@example.com")
        assert _postmark(_auth_client(), {**not_ours, "ID": number}).status_code == 200
    _reported_before_the_answer(postmark, report="bounce", reported_as="esp id")
    with scope(organization=org):
        messages_send(organization=org, message_ids=ids)
    _later(monkeypatch, webhooks.pending_retry_for() + timedelta(minutes=1))

    with caplog.at_level(logging.INFO, logger="campaigns.services.webhooks"):
        applied = webhooks.esp_events_retry()

    with scopes_disabled():
        suppressed = list(Suppression.objects.values_list("email", flat=True))
        message = Message.objects.get()
    assert applied == 1
    assert suppressed == [message.to_email.lower()]
    assert PendingEspEvent.objects.count() == 0
    assert "Dropped 2 ESP events" in caplog.text


# --- D7: authenticated events whose fields are not text ---------------------------------------


def _open(**fields) -> dict:
    return {
        "RecordType": "Open",
        "FirstOpen": True,
        "UserAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0",
        "MessageID": ESP_ID,
        "ReceivedAt": _now_iso(),
        "Recipient": "jane@example.com",
        **fields,
    }


def _click(**fields) -> dict:
    return {
        **_open(),
        "RecordType": "Click",
        "ClickLocation": "HTML",
        "OriginalLink": "https://jobs.example.com/roles/42",
        **fields,
    }


@pytest.mark.parametrize(
    ("record", "fields", "kind"),
    [
        ("bounce", {"Details": 550}, "bounced"),
        ("bounce", {"Details": None, "Description": 42}, "bounced"),
        ("bounce", {"Details": {"code": 550}}, "bounced"),
        ("open", {"UserAgent": 42}, "opened"),
        ("open", {"UserAgent": ["Mozilla/5.0"]}, "opened"),
        ("click", {"OriginalLink": 123}, "clicked"),
        ("click", {"UserAgent": 1.5, "OriginalLink": {"href": "x"}}, "clicked"),
    ],
)
def test_an_event_with_fields_that_are_not_text_is_recorded_without_a_server_error(
    org, sent_message, record, fields, kind
):
    payload = {"bounce": _bounce(sent_message), "open": _open(), "click": _click()}[record]

    response = _postmark(_auth_client(), {**payload, **fields})

    with scopes_disabled():
        kinds = list(EngagementEvent.objects.exclude(kind="sent").values_list("kind", flat=True))
    assert response.status_code == 200
    assert kinds == [kind]


def test_a_bounce_whose_details_are_a_number_keeps_them_as_text(org, sent_message):
    response = _postmark(_auth_client(), {**_bounce(sent_message), "Details": 550})

    with scopes_disabled():
        suppression = Suppression.objects.get()
        message = Message.objects.get(pk=sent_message.pk)
    assert response.status_code == 200
    assert (suppression.detail, message.last_error) == ("550", "550")


@pytest.mark.parametrize(
    ("message_id", "waiting"),
    [(12345, ["12345"]), (1.5, ["1.5"]), (True, []), ({"id": ESP_ID}, []), ([ESP_ID], [])],
)
def test_an_event_whose_message_id_is_not_text_changes_nothing(
    org, sent_message, message_id, waiting
):
    """A number may be some ESP's id of an email still being recorded: it waits like any other
    event; anything else names no email. Either way nothing is applied, and no 500."""
    response = _postmark(_auth_client(), {**_bounce(sent_message), "MessageID": message_id})

    with scopes_disabled():
        pending = list(PendingEspEvent.objects.values_list("esp_message_id", flat=True))
        sent_message.refresh_from_db()
        written = (
            EspEvent.objects.count(),
            EngagementEvent.objects.exclude(kind="sent").count(),
            Suppression.objects.count(),
        )
    assert response.status_code == 200
    assert pending == waiting
    assert written == (0, 0, 0)
    assert sent_message.status == Message.Status.SENT


def test_a_waiting_event_whose_kept_fields_are_not_text_is_still_applied(org, sent_message):
    """As an earlier version stored it: the ESP's numbers kept as they came."""
    PendingEspEvent.objects.create(
        esp="Postmark",
        event_id="4323372036854775807",
        event_type="bounced",
        esp_message_id=ESP_ID,
        event={"event_id": 4323372036854775807, "mta_response": 550, "user_agent": 7},
        occurred_at=timezone.now(),
    )

    applied = webhooks.esp_events_retry()

    with scopes_disabled():
        suppression = Suppression.objects.get()
    assert applied == 1
    assert suppression.detail == "550"
    assert PendingEspEvent.objects.count() == 0


# --- D5: inbound replies larger than Django's limit on request bodies -------------------------


def _postmark_reply(message, *, attachment_bytes: int) -> str:
    """Postmark's inbound JSON of a reply with a PDF of `attachment_bytes` (base64 in the JSON,
    as Postmark sends it)."""
    content = base64.b64encode(b"%PDF-1.7\n" + b"\x00" * attachment_bytes).decode()
    return json.dumps(
        {
            "FromFull": {"Email": "jane@example.com", "Name": "Jane Doe"},
            "ToFull": [{"Email": "rex.recruiter@acme.example", "Name": ""}],
            "Subject": f"Re: {message.subject}",
            "MessageID": "22c74902-a0c1-4511-804f-341342852c90",
            "Date": "Mon, 5 Jan 2026 11:00:00 +0000",
            "TextBody": REPLY,
            "HtmlBody": "",
            "Headers": [
                {"Name": "Message-ID", "Value": "<reply-with-cv@mail.example.com>"},
                {"Name": "In-Reply-To", "Value": message.message_id},
            ],
            "Attachments": [
                {
                    "Name": "jane-doe-cv.pdf",
                    "Content": content,
                    "ContentType": "application/pdf",
                    "ContentLength": attachment_bytes,
                }
            ],
        }
    )


def _post_postmark_inbound(client: Client, body: str):
    return client.post("/webhooks/anymail/postmark/inbound/", body, content_type="application/json")


def _replied(org, message) -> tuple:
    with scope(organization=org):
        enrollment = Enrollment.objects.get(pk=message.enrollment_id)
        return (InboundEmail.objects.count(), enrollment.status, enrollment.stop_reason)


def test_a_reply_with_an_8_mb_cv_is_recorded_and_stops_the_sequence(org, sent_message):
    """~11 MB of JSON: over Django's 10 MB (DATA_UPLOAD_MAX_MEMORY_SIZE), which answered 400 to
    the ESP and every one of its retries, so the sequence went on emailing the candidate."""
    body = _postmark_reply(sent_message, attachment_bytes=8 * MB)
    assert len(body) > 10 * MB

    response = _post_postmark_inbound(_auth_client(), body)

    assert response.status_code == 200
    assert _replied(org, sent_message) == (1, "stopped", "replied")


def test_an_inbound_body_over_the_inbound_limit_is_refused_with_413_and_logged(
    org, sent_message, settings, caplog
):
    settings.CAMPAIGNS_INBOUND_MAX_BYTES = 2 * MB
    over = _postmark_reply(sent_message, attachment_bytes=2 * MB)
    under = _postmark_reply(sent_message, attachment_bytes=MB)

    refused = _post_postmark_inbound(_auth_client(), over)
    assert _replied(org, sent_message) == (0, "active", "")
    accepted = _post_postmark_inbound(_auth_client(), under)

    assert (refused.status_code, accepted.status_code) == (413, 200)
    assert _replied(org, sent_message) == (1, "stopped", "replied")
    assert "CAMPAIGNS_INBOUND_MAX_BYTES" in caplog.text


def _mailgun_inbound(message, *, mime: str = "", attachment: bytes = b"") -> dict:
    """Mailgun's inbound post (a route's forward()): parsed, the attachment as a file; or, with
    `mime`, the whole message in one `body-mime` field (the URL that ends in `mime`)."""
    timestamp, token = str(int(time.time())), "b7ad1c54c2f2ee0f7b1d1bd5e84f0d8fd2b0c3b57d0b7b6c4e"
    signature = hmac.new(
        MAILGUN_KEY.encode(), (timestamp + token).encode(), hashlib.sha256
    ).hexdigest()
    signed = {"timestamp": timestamp, "token": token, "signature": signature}
    if mime:
        return {**signed, "recipient": "rex.recruiter@acme.example", "body-mime": mime}
    headers = [
        ["From", "Jane Doe <jane@example.com>"],
        ["To", "rex.recruiter@acme.example"],
        ["Subject", f"Re: {message.subject}"],
        ["Message-Id", "<reply-with-cv@mail.example.com>"],
        ["In-Reply-To", message.message_id],
    ]
    return {
        **signed,
        "recipient": "rex.recruiter@acme.example",
        "sender": "jane@example.com",
        "message-headers": json.dumps(headers),
        "body-plain": REPLY,
        "attachment-count": "1",
        "attachment-1": SimpleUploadedFile("cv.pdf", attachment, content_type="application/pdf"),
    }


def test_a_mailgun_reply_whose_attachment_is_over_10_mb_is_recorded(org, sent_message):
    """Multipart: Django streams the file to a temporary file and limits only the text fields;
    the inbound limit counts the whole body."""
    payload = _mailgun_inbound(sent_message, attachment=b"%PDF-1.7\n" + b"\x00" * (11 * MB))

    response = _auth_client().post("/webhooks/anymail/mailgun/inbound/", payload)

    assert response.status_code == 200
    assert _replied(org, sent_message) == (1, "stopped", "replied")


def test_a_multipart_inbound_body_over_the_inbound_limit_is_refused_with_413(
    org, sent_message, settings
):
    settings.CAMPAIGNS_INBOUND_MAX_BYTES = 2 * MB
    payload = _mailgun_inbound(sent_message, attachment=b"\x00" * (3 * MB))

    response = _auth_client().post("/webhooks/anymail/mailgun/inbound/", payload)

    assert response.status_code == 413
    assert _replied(org, sent_message) == (0, "active", "")


def test_a_raw_mime_form_field_over_djangos_limit_is_refused_with_413_and_logged(
    org, sent_message, caplog
):
    """Mailgun's raw-MIME post carries the whole email in one form field, which Django still
    holds to DATA_UPLOAD_MAX_MEMORY_SIZE: refused with 413 (not 400), and the log says why."""
    mime = (
        "From: jane@example.com\r\nTo: rex.recruiter@acme.example\r\n"
        f"In-Reply-To: {sent_message.message_id}\r\nSubject: Re: a role\r\n\r\n" + "A" * (11 * MB)
    )
    payload = _mailgun_inbound(sent_message, mime=mime)

    response = _auth_client().post("/webhooks/anymail/mailgun/inbound_mime/", payload)

    assert response.status_code == 413
    assert "DATA_UPLOAD_MAX_MEMORY_SIZE" in caplog.text
    assert _replied(org, sent_message) == (0, "active", "")


def test_a_tracking_webhook_keeps_djangos_10_mb_limit(org, sent_message):
    payload = {**_bounce(sent_message), "Padding": "x" * (11 * MB)}

    response = _postmark(_auth_client(), payload)

    assert response.status_code == 400
    with scopes_disabled():
        assert EspEvent.objects.count() == 0


def test_a_large_inbound_body_without_the_credentials_is_refused_with_400(org, sent_message):
    """Only the ESP (with the webhook's credentials) gets more than Django's 10 MB read."""
    body = _postmark_reply(sent_message, attachment_bytes=9 * MB)
    stranger = Client(HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"who:guess").decode())

    responses = [_post_postmark_inbound(client, body) for client in (stranger, Client())]

    assert [response.status_code for response in responses] == [400, 400]
    assert _replied(org, sent_message) == (0, "active", "")


# --- no ESP sends a CSRF token ----------------------------------------------------------------


def test_webhooks_take_posts_without_a_csrf_token(org, sent_message):
    """As an ESP posts: no CSRF cookie or token (the views are csrf-exempt, as anymail's own
    are)."""
    client = Client(
        enforce_csrf_checks=True,
        HTTP_AUTHORIZATION=_auth_client().defaults["HTTP_AUTHORIZATION"],
    )

    tracking = _postmark(client, _bounce(sent_message))
    inbound = _post_postmark_inbound(client, _postmark_reply(sent_message, attachment_bytes=10))

    assert (tracking.status_code, inbound.status_code) == (200, 200)
    assert _replied(org, sent_message) == (1, "stopped", "bounced")
