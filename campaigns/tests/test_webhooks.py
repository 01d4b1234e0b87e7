"""ESP tracking webhooks through anymail: authentication, matching, idempotency and effects.

Requests go through anymail's real webhook views (Postmark: basic auth; Mailgun: basic auth and
its HMAC signature), with payloads in the ESPs' documented formats."""

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connections
from django.test import Client
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from analytics.models import EngagementEvent
from campaigns.models import (
    CandidateEmailPreference,
    Enrollment,
    EspEvent,
    Message,
    PendingEspEvent,
    Suppression,
)
from campaigns.services import webhooks
from campaigns.services.campaigns import campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.services.sending import messages_send
from campaigns.tests.factories import make_broadcast, make_candidates
from candidates.models import Activity

SECRET = "rapport-hooks:s3cret-passphrase"
MAILGUN_KEY = "mailgun-signing-key-for-tests"
ESP_ID = "883953f4-6105-42a2-a16a-77a8eac79483"


@pytest.fixture(autouse=True)
def _anymail(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}


@pytest.fixture
def sent_message(org, recruiter_user):
    """A campaign email that went out an hour ago and that the ESP knows as ESP_ID."""
    make_candidates(org, 1)
    campaign = make_broadcast(org, user=recruiter_user)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
        ids = list(Message.objects.values_list("pk", flat=True))
        messages_send(organization=org, message_ids=ids)
        Message.objects.filter(pk__in=ids).update(
            esp_message_id=ESP_ID, sent_at=timezone.now() - timedelta(hours=1)
        )
        # As in a sequence with more steps to come: the enrollment is still active.
        Enrollment.objects.update(
            status=Enrollment.Status.ACTIVE, next_run_at=timezone.now() + timedelta(days=3)
        )
        return Message.objects.select_related("candidate", "enrollment").get(pk=ids[0])


def _auth_client() -> Client:
    return Client(HTTP_AUTHORIZATION="Basic " + base64.b64encode(SECRET.encode()).decode())


def _postmark(client: Client, payload: dict):
    return client.post(
        "/webhooks/anymail/postmark/tracking/",
        data=json.dumps(payload),
        content_type="application/json",
    )


def _now_iso() -> str:
    return timezone.now().isoformat()


def _bounce(message) -> dict:
    return {
        "RecordType": "Bounce",
        "ID": 4323372036854775807,
        "Type": "HardBounce",
        "TypeCode": 1,
        "Name": "Hard bounce",
        "MessageID": ESP_ID,
        "Description": "The server was unable to deliver your message (ex: unknown user).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": message.to_email,
        "From": "sender@example.com",
        "BouncedAt": _now_iso(),
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Test subject",
    }


def _counts(org):
    with scopes_disabled():
        return (
            EspEvent.objects.filter(organization=org).count(),
            EngagementEvent.objects.filter(organization=org).exclude(kind="sent").count(),
        )


def test_webhook_postmark_delivery_marks_the_message_delivered(org, sent_message):
    response = _postmark(
        _auth_client(),
        {
            "RecordType": "Delivery",
            "ServerID": 23,
            "MessageID": ESP_ID,
            "Recipient": sent_message.to_email,
            "DeliveredAt": _now_iso(),
            "Details": "Test delivery webhook details",
        },
    )
    with scope(organization=org):
        sent_message.refresh_from_db()
        kinds = list(EngagementEvent.objects.exclude(kind="sent").values_list("kind", flat=True))
        summaries = list(
            Activity.objects.filter(candidate=sent_message.candidate).values_list(
                "summary", flat=True
            )
        )
    assert response.status_code == 200
    assert sent_message.status == Message.Status.DELIVERED
    assert sent_message.delivered_at is not None
    assert kinds == ["delivered"]
    assert any(s.startswith("Email delivered") for s in summaries)


def test_webhook_hard_bounce_suppresses_and_stops_the_enrollment(org, sent_message):
    response = _postmark(_auth_client(), _bounce(sent_message))
    with scope(organization=org):
        sent_message.refresh_from_db()
        enrollment = Enrollment.objects.get(pk=sent_message.enrollment_id)
        suppression = Suppression.objects.get(email=sent_message.to_email.lower())
        bounced_activity = Activity.objects.filter(
            candidate=sent_message.candidate, kind=Activity.Kind.EMAIL_BOUNCED
        ).count()
    assert response.status_code == 200
    assert sent_message.status == Message.Status.BOUNCED
    assert suppression.reason == Suppression.Reason.BOUNCED
    assert (enrollment.status, enrollment.stop_reason) == ("stopped", "bounced")
    assert bounced_activity == 1


def test_webhook_same_event_twice_is_recorded_once(org, sent_message):
    client = _auth_client()
    payload = _bounce(sent_message)
    first, second = _postmark(client, payload), _postmark(client, payload)
    assert (first.status_code, second.status_code) == (200, 200)
    assert _counts(org) == (1, 1)


def test_webhook_events_without_esp_id_are_deduplicated_by_content(org, sent_message):
    payload = {
        "RecordType": "Open",
        "FirstOpen": True,
        "UserAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15",
        "MessageID": ESP_ID,
        "ReceivedAt": _now_iso(),
        "Recipient": sent_message.to_email,
    }
    client = _auth_client()
    _postmark(client, payload)
    _postmark(client, payload)
    with scope(organization=org):
        sent_message.refresh_from_db()
        opens = EngagementEvent.objects.filter(kind="opened", is_machine=False).count()
        timeline = Activity.objects.filter(kind=Activity.Kind.EMAIL_OPENED).count()
    assert opens == 1
    assert timeline == 1
    assert sent_message.opened_at is not None


def test_webhook_click_records_the_url(org, sent_message):
    _postmark(
        _auth_client(),
        {
            "RecordType": "Click",
            "ClickLocation": "HTML",
            "OriginalLink": "https://jobs.example.com/roles/42",
            "UserAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0",
            "MessageID": ESP_ID,
            "ReceivedAt": _now_iso(),
            "Recipient": sent_message.to_email,
        },
    )
    with scope(organization=org):
        event = EngagementEvent.objects.get(kind="clicked")
        sent_message.refresh_from_db()
    assert event.data["url"] == "https://jobs.example.com/roles/42"
    assert sent_message.clicked_at is not None


def test_webhook_complaint_suppresses_and_unsubscribes(org, sent_message):
    _postmark(
        _auth_client(),
        {
            "RecordType": "SpamComplaint",
            "ID": 42,
            "Type": "SpamComplaint",
            "TypeCode": 512,
            "MessageID": ESP_ID,
            "Email": sent_message.to_email,
            "BouncedAt": _now_iso(),
        },
    )
    with scope(organization=org):
        sent_message.refresh_from_db()
        suppression = Suppression.objects.get(email=sent_message.to_email.lower())
        preference = CandidateEmailPreference.objects.get(candidate=sent_message.candidate)
        enrollment = Enrollment.objects.get(pk=sent_message.enrollment_id)
        kinds = sorted(EngagementEvent.objects.exclude(kind="sent").values_list("kind", flat=True))
    assert suppression.reason == Suppression.Reason.COMPLAINED
    assert preference.unsubscribed_at is not None
    assert sent_message.complained_at is not None
    assert enrollment.stop_reason == Enrollment.StopReason.COMPLAINED
    assert kinds == ["complained", "unsubscribed"]


def test_webhook_complaint_on_an_email_of_a_merged_away_profile_unsubscribes_the_person(
    org, recruiter_user
):
    """Both profiles got the broadcast, so the merged-away one keeps its email (one email per
    campaign and profile); a complaint about it must stop email to the surviving profile."""
    from candidates.services.merge import candidate_merge

    survivor, merged_away = make_candidates(org, 2)
    campaign = make_broadcast(org, user=recruiter_user)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
        messages_send(
            organization=org, message_ids=list(Message.objects.values_list("pk", flat=True))
        )
        Message.objects.filter(candidate=merged_away).update(esp_message_id=ESP_ID)
        Enrollment.objects.update(
            status=Enrollment.Status.ACTIVE, next_run_at=timezone.now() + timedelta(days=3)
        )
        candidate_merge(
            primary=survivor, secondary=merged_away, field_choices={}, actor=recruiter_user
        )
        message = Message.objects.get(esp_message_id=ESP_ID)
    assert message.candidate_id == merged_away.pk

    response = _postmark(
        _auth_client(),
        {
            "RecordType": "SpamComplaint",
            "ID": 43,
            "Type": "SpamComplaint",
            "TypeCode": 512,
            "MessageID": ESP_ID,
            "Email": message.to_email,
            "BouncedAt": _now_iso(),
        },
    )

    with scope(organization=org):
        unsubscribed = CandidateEmailPreference.objects.get(candidate=survivor).unsubscribed_at
        survivors_enrollment = Enrollment.objects.get(candidate=survivor)
        message.refresh_from_db()
        event = EngagementEvent.objects.get(kind="unsubscribed")
    assert response.status_code == 200
    assert unsubscribed is not None
    assert survivors_enrollment.stop_reason == Enrollment.StopReason.UNSUBSCRIBED
    assert message.unsubscribed_at is not None
    assert (event.candidate_id, event.message_id) == (survivor.pk, message.pk)


def test_webhook_unsubscribe_from_the_esp_unsubscribes_the_candidate(org, sent_message):
    _postmark(
        _auth_client(),
        {
            "RecordType": "SubscriptionChange",
            "MessageID": ESP_ID,
            "ChangedAt": _now_iso(),
            "Recipient": sent_message.to_email,
            "SuppressSending": True,
            "SuppressionReason": "ManualSuppression",
        },
    )
    with scope(organization=org):
        preference = CandidateEmailPreference.objects.get(candidate=sent_message.candidate)
        kinds = list(EngagementEvent.objects.exclude(kind="sent").values_list("kind", flat=True))
    assert preference.unsubscribed_at is not None
    assert kinds == ["unsubscribed"]


def test_webhook_without_basic_auth_is_400_and_writes_nothing(org, sent_message):
    response = _postmark(Client(), _bounce(sent_message))
    wrong = Client(HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"rapport-hooks:nope").decode())
    wrong_response = _postmark(wrong, _bounce(sent_message))
    with scope(organization=org):
        sent_message.refresh_from_db()
    assert (response.status_code, wrong_response.status_code) == (400, 400)
    assert _counts(org) == (0, 0)
    assert sent_message.status == Message.Status.SENT


def test_webhook_event_for_an_unknown_message_changes_nothing(org, sent_message):
    payload = {**_bounce(sent_message), "MessageID": "not-one-of-ours"}
    response = _postmark(_auth_client(), payload)
    assert response.status_code == 200
    assert _counts(org) == (0, 0)


def _mailgun_payload(event: dict, *, key: str = MAILGUN_KEY) -> dict:
    timestamp, token = str(int(time.time())), "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": event,
    }


def _mailgun_delivered(message) -> dict:
    return {
        "event": "delivered",
        "timestamp": time.time(),
        "id": "CPgfbmQMTCKtHW6uIWtuVe",
        "recipient": message.to_email,
        "message": {"headers": {"message-id": "20130503182626.18666.16540@sandbox.mailgun.org"}},
        "delivery-status": {"code": 250, "message": "OK"},
    }


def test_webhook_mailgun_signed_event_is_recorded(org, sent_message):
    with scopes_disabled():
        Message.objects.filter(pk=sent_message.pk).update(
            esp_message_id="<20130503182626.18666.16540@sandbox.mailgun.org>"
        )
    response = _auth_client().post(
        "/webhooks/anymail/mailgun/tracking/",
        data=json.dumps(_mailgun_payload(_mailgun_delivered(sent_message))),
        content_type="application/json",
    )
    with scope(organization=org):
        sent_message.refresh_from_db()
    assert response.status_code == 200
    assert sent_message.status == Message.Status.DELIVERED


def test_webhook_mailgun_bad_signature_is_400_and_writes_nothing(org, sent_message):
    with scopes_disabled():
        Message.objects.filter(pk=sent_message.pk).update(
            esp_message_id="<20130503182626.18666.16540@sandbox.mailgun.org>"
        )
    response = _auth_client().post(
        "/webhooks/anymail/mailgun/tracking/",
        data=json.dumps(_mailgun_payload(_mailgun_delivered(sent_message), key="forged")),
        content_type="application/json",
    )
    with scope(organization=org):
        sent_message.refresh_from_db()
    assert response.status_code == 400
    assert sent_message.status == Message.Status.SENT
    assert _counts(org) == (0, 0)


@pytest.mark.parametrize(
    "backend", ["anymail.backends.postmark.EmailBackend", "campaigns.backends.PostmarkBackend"]
)
def test_deploy_check_warns_when_an_esp_backend_has_no_webhook_secret(settings, backend):
    from campaigns.checks import anymail_webhook_secret

    settings.EMAIL_BACKEND = backend
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "x"}
    warned = [m.id for m in anymail_webhook_secret(None)]
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "x", "WEBHOOK_SECRET": SECRET}
    assert warned == ["campaigns.W001"]
    assert anymail_webhook_secret(None) == []


def _open(sent_message, **fields) -> None:
    payload = {"RecordType": "Open", "FirstOpen": True, "MessageID": ESP_ID, **fields}
    payload |= {"ReceivedAt": _now_iso(), "Recipient": sent_message.to_email}
    _postmark(_auth_client(), payload)


def _the_open(org, sent_message) -> tuple[bool, str, object]:
    with scope(organization=org):
        event = EngagementEvent.objects.get(kind="opened")
        sent_message.refresh_from_db()
    return event.is_machine, event.machine_reason, sent_message.opened_at


@pytest.mark.parametrize(
    ("user_agent", "reason"),
    [
        ("Mozilla/5.0", "apple_privacy_proxy"),
        (
            "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com"
            " GoogleImageProxy)",
            "google_image_proxy",
        ),
        ("Mozilla/5.0 (compatible; Barracuda Sentinel)", "scanner_user_agent"),
    ],
)
def test_webhook_machine_opens_are_flagged_like_our_own_pixel(
    org, sent_message, user_agent, reason
):
    _open(sent_message, UserAgent=user_agent)
    # Flagged, and not counted as engagement (no opened_at).
    assert _the_open(org, sent_message) == (True, reason, None)


def test_webhook_open_without_a_user_agent_counts(org, sent_message):
    """Several ESPs leave the user agent out of their events: not a sign of a machine."""
    _open(sent_message)
    is_machine, reason, opened_at = _the_open(org, sent_message)
    assert (is_machine, reason) == (False, "")
    assert opened_at is not None


# --- events that arrive before the send is recorded ---


def _delivery(message_id: str, to: str) -> dict:
    return {
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageID": message_id,
        "Recipient": to,
        "DeliveredAt": _now_iso(),
        "Details": "Test delivery webhook details",
    }


def _hard_bounce(message_id: str, to: str) -> dict:
    return {
        "RecordType": "Bounce",
        "ID": 4323372036854775808,
        "Type": "HardBounce",
        "TypeCode": 1,
        "MessageID": message_id,
        "Description": "The server was unable to deliver your message (ex: unknown user).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": to,
        "BouncedAt": _now_iso(),
    }


REPORTS = {"delivery": _delivery, "bounce": _hard_bounce}


def _reported_before_the_answer(postmark, *, report: str, reported_as: str) -> list[int]:
    """The ESP's webhook for the email it has just accepted is handled (by another process: a
    thread with its own database connection) before the ESP's API answers the send, so before
    the send task can store the ESP's id and mark the email sent. Returns the webhook's answers.
    `reported_as`: the ESP's own id, or our Message-ID, which some ESPs report instead."""
    answers = []

    def on_accept(to, esp_message_id, message_id):
        try:
            reported = esp_message_id if reported_as == "esp id" else message_id
            payload = REPORTS[report](reported, to)
            answers.append(_postmark(_auth_client(), payload).status_code)
        finally:
            connections.close_all()

    postmark.on_accept = on_accept
    return answers


def _launched_to_one(org, user) -> list[int]:
    make_candidates(org, 1)
    campaign = make_broadcast(org, user=user)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=user)
        dispatch_due()
        return list(Message.objects.values_list("pk", flat=True))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("reported_as", ["esp id", "message-id"])
def test_webhook_hard_bounce_reported_before_the_send_is_recorded_still_suppresses(
    org, recruiter_user, postmark, settings, reported_as
):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}
    ids = _launched_to_one(org, recruiter_user)
    answers = _reported_before_the_answer(postmark, report="bounce", reported_as=reported_as)
    with scope(organization=org):
        messages_send(organization=org, message_ids=ids)

    applied = webhooks.esp_events_retry()  # Celery beat, within a minute

    with scopes_disabled():
        message = Message.objects.get()
        suppressed = list(Suppression.objects.values_list("email", "reason"))
        kinds = list(EngagementEvent.objects.exclude(kind="sent").values_list("kind", flat=True))
    assert answers == [200]
    assert suppressed == [(message.to_email.lower(), Suppression.Reason.BOUNCED)]
    assert (message.status, message.esp_message_id) == (
        Message.Status.BOUNCED,
        next(iter(postmark.message_ids.values())),
    )
    assert message.sent_at is not None
    assert kinds == ["bounced"]
    assert (applied, PendingEspEvent.objects.count()) == (1, 0)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("reported_as", ["esp id", "message-id"])
def test_webhook_delivery_reported_before_the_send_is_recorded_marks_it_delivered(
    org, recruiter_user, postmark, settings, reported_as
):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}
    ids = _launched_to_one(org, recruiter_user)
    answers = _reported_before_the_answer(postmark, report="delivery", reported_as=reported_as)
    with scope(organization=org):
        messages_send(organization=org, message_ids=ids)

    webhooks.esp_events_retry()

    with scopes_disabled():
        message = Message.objects.get()
        kinds = list(EngagementEvent.objects.exclude(kind="sent").values_list("kind", flat=True))
    assert answers == [200]
    assert message.status == Message.Status.DELIVERED
    assert (message.sent_at is not None, message.delivered_at is not None) == (True, True)
    assert kinds == ["delivered"]


@pytest.mark.parametrize("report", ["delivery", "open"])
def test_webhook_report_of_an_email_waiting_to_go_again_keeps_it_from_going_twice(
    org, recruiter_user, report
):
    """A first try was accepted, but its worker was lost before recording it: the email is back
    in the queue to go again with the same Message-ID. An ESP that reports our Message-ID
    delivered (or opened) says the first copy arrived: it is recorded as sent, with its
    timeline entry, and the send does not repeat it."""
    ids = _launched_to_one(org, recruiter_user)
    with scopes_disabled():
        message = Message.objects.get()
    payload = (
        _delivery(message.message_id, message.to_email)
        if report == "delivery"
        else {
            "RecordType": "Open",
            "FirstOpen": True,
            "MessageID": message.message_id,
            "ReceivedAt": _now_iso(),
            "Recipient": message.to_email,
        }
    )
    response = _postmark(_auth_client(), payload)
    with scope(organization=org):
        messages_send(organization=org, message_ids=ids)
        message.refresh_from_db()
        sent_entries = Activity.objects.filter(summary__startswith="Campaign email sent").count()
        sent_events = EngagementEvent.objects.filter(kind="sent").count()
    assert response.status_code == 200
    assert len(mail.outbox) == 0
    expected = Message.Status.DELIVERED if report == "delivery" else Message.Status.SENT
    assert (message.status, message.sent_at is not None) == (expected, True)
    assert (sent_entries, sent_events) == (1, 1)


def test_webhook_event_for_no_message_of_ours_is_dropped_after_the_retry_window(org, sent_message):
    payload = {**_bounce(sent_message), "MessageID": "not-one-of-ours"}
    for _ in range(2):  # the ESP sent it twice
        assert _postmark(_auth_client(), payload).status_code == 200
    waiting = PendingEspEvent.objects.count()
    applied = webhooks.esp_events_retry()
    still_waiting = PendingEspEvent.objects.count()
    later = timezone.now() + webhooks.pending_retry_for() + timedelta(minutes=1)
    webhooks.esp_events_retry(now=later)

    assert (waiting, applied, still_waiting) == (1, 0, 1)
    assert PendingEspEvent.objects.count() == 0
    assert _counts(org) == (0, 0)
    with scopes_disabled():
        assert Suppression.objects.count() == 0


# --- bodies anymail cannot read, ESPs not configured here -------------------------------------

AUTHORIZED = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(SECRET.encode()).decode()}


@pytest.mark.parametrize(
    ("url", "body", "why"),
    [
        # anymail parses the SNS envelope before it checks the credentials
        ("/webhooks/anymail/amazon_ses/tracking/", b"{not json", "could not be read"),
        ("/webhooks/anymail/amazon_ses/inbound/", b"[]", "could not be read"),
        # anymail reads a JSON list as an object to check its signature
        ("/webhooks/anymail/unisender_go/tracking/", b"[]", "could not be read"),
        # not configured: checking Resend's signature needs the svix package, not installed
        ("/webhooks/anymail/resend/tracking/", b"{}", "is not configured"),
    ],
)
def test_a_webhook_request_anymail_cannot_read_gets_400_and_writes_nothing(
    url, body, why, settings, caplog, db
):
    settings.ANYMAIL = {
        "WEBHOOK_SECRET": SECRET,
        "UNISENDER_GO_API_KEY": "key",
        "RESEND_API_KEY": "key",
        "RESEND_SIGNING_SECRET": "whsec_" + base64.b64encode(b"resend-secret").decode(),
    }
    anonymous = Client().post(url, body, content_type="application/json")
    authorized = Client(**AUTHORIZED).post(url, body, content_type="application/json")
    # Without credentials, anymail's basic-auth challenge (401) or its refusal (400).
    assert anonymous.status_code in (400, 401)
    assert authorized.status_code == 400
    with scopes_disabled():
        assert (EspEvent.objects.count(), PendingEspEvent.objects.count()) == (0, 0)
    assert why in caplog.text


def test_an_esp_without_its_signing_key_refuses_and_logs_what_is_missing(settings, caplog, db):
    """Mailgun's webhooks need MAILGUN_WEBHOOK_SIGNING_KEY: without it the request is refused
    with 400 (not a 500) and the log names the missing setting for the operator."""
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    response = Client(**AUTHORIZED).post(
        "/webhooks/anymail/mailgun/tracking/", b"{}", content_type="application/json"
    )
    assert response.status_code == 400
    assert "not configured" in caplog.text
    assert "MAILGUN_WEBHOOK_SIGNING_KEY" in caplog.text
    with scopes_disabled():
        assert EspEvent.objects.count() == 0


def test_an_error_in_our_handling_of_a_good_event_stays_a_500_so_the_esp_retries(
    org, sent_message, monkeypatch
):
    """Only the request's own faults become 400: a well-formed, authenticated event that our
    receiver fails on answers 500, which ESPs retry (the event tables ignore the repeat)."""

    def broken(**kwargs):
        raise ValueError("a bug of ours")

    monkeypatch.setattr("campaigns.receivers.tracking_event_record", broken)
    client = Client(
        raise_request_exception=False,
        HTTP_AUTHORIZATION=AUTHORIZED["HTTP_AUTHORIZATION"],
    )

    response = _postmark(client, _bounce(sent_message))

    assert response.status_code == 500
    with scopes_disabled():
        assert EspEvent.objects.count() == 0


def test_a_failed_check_is_still_anymails_own_400(settings, caplog, db):
    """A wrong password is anymail's validation failure (django.security logs it), not an
    unreadable body."""
    wrong = "Basic " + base64.b64encode(b"rapport-hooks:wrong").decode()
    response = Client(HTTP_AUTHORIZATION=wrong).post(
        "/webhooks/anymail/postmark/tracking/", b"{}", content_type="application/json"
    )
    assert response.status_code == 400
    assert "could not be read" not in caplog.text


@pytest.mark.parametrize(("switch", "record"), [("track_opens", "Open"), ("track_clicks", "Click")])
def test_webhook_opens_and_clicks_are_not_counted_when_the_organisation_tracks_none(
    org, sent_message, switch, record
):
    """An organisation that switched tracking off for privacy: the ESP's own open or click
    tracking, if it is on there, is not counted either."""
    from campaigns.models import EmailSettings

    with scopes_disabled():
        EmailSettings.objects.update_or_create(organization=org, defaults={switch: False})
    _postmark(
        _auth_client(),
        {
            "RecordType": record,
            "FirstOpen": True,
            "OriginalLink": "https://jobs.example.com/roles/42",
            "UserAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0",
            "MessageID": ESP_ID,
            "ReceivedAt": _now_iso(),
            "Recipient": sent_message.to_email,
        },
    )
    with scope(organization=org):
        sent_message.refresh_from_db()
        assert not EngagementEvent.objects.filter(kind__in=["opened", "clicked"]).exists()
        assert not Activity.objects.filter(
            kind__in=[Activity.Kind.EMAIL_OPENED, Activity.Kind.EMAIL_CLICKED]
        ).exists()
    assert sent_message.opened_at is None and sent_message.clicked_at is None
