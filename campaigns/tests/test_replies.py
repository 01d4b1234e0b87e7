"""Inbound email: replies (matching, quoted text and signatures, auto-replies, and their
effects) and requests to the mailto: List-Unsubscribe address."""

import base64
import json
from datetime import timedelta
from email.utils import getaddresses

import pytest
from anymail.inbound import AnymailInboundMessage
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope

from analytics.models import EngagementEvent
from campaigns.models import (
    CandidateEmailPreference,
    Enrollment,
    InboundEmail,
    Message,
    Suppression,
)
from campaigns.services.campaigns import campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.services.replies import (
    auto_reply_reason,
    inbound_email_record,
    inbound_unsubscribe,
    reply_address_for,
    reply_text,
)
from campaigns.services.sending import messages_send
from campaigns.tests.factories import make_broadcast, make_candidates
from candidates.models import Activity

SECRET = "rapport-hooks:s3cret-passphrase"
REPLY = """Thanks Rex, yes I'm interested. Could we talk on Thursday?

Best regards,
Jane Doe
Senior Engineer

On Mon, 5 Jan 2026 at 10:00, Rex Recruiter <rex.recruiter@acme.example> wrote:
> Hi Jane,
> We are hiring for a role close to yours.
"""


@pytest.fixture(autouse=True)
def _anymail(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}


@pytest.fixture
def sent_message(org, recruiter_user):
    make_candidates(org, 1)
    campaign = make_broadcast(org, user=recruiter_user)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
        ids = list(Message.objects.values_list("pk", flat=True))
        messages_send(organization=org, message_ids=ids)
        Enrollment.objects.update(
            status=Enrollment.Status.ACTIVE, next_run_at=timezone.now() + timedelta(days=3)
        )
        return Message.objects.select_related("candidate", "enrollment").get(pk=ids[0])


def _raw(*, headers: dict, body: str = REPLY) -> AnymailInboundMessage:
    lines = [f"{name}: {value}" for name, value in headers.items()]
    return AnymailInboundMessage.parse_raw_mime("\r\n".join(lines) + "\r\n\r\n" + body)


def _headers(message, **extra) -> dict:
    return {
        "From": "Jane Doe <jane@example.com>",
        "To": "rex.recruiter@acme.example",
        "Subject": f"Re: {message.subject}",
        "Message-ID": "<reply-1@mail.example.com>",
        "Date": "Mon, 05 Jan 2026 11:00:00 +0000",
        "In-Reply-To": message.message_id,
        **extra,
    }


def test_reply_text_drops_quote_and_signature():
    assert reply_text(REPLY) == "Thanks Rex, yes I'm interested. Could we talk on Thursday?"


def test_reply_text_drops_a_german_quote():
    text = "Ja, gerne!\n\nAm 05.01.2026 um 10:00 schrieb Rex <rex@acme.example>:\n> Hallo Jane\n"
    assert reply_text(text) == "Ja, gerne!"


def test_reply_postmark_inbound_webhook_records_the_reply_and_stops_the_enrollment(
    org, sent_message
):
    payload = {
        "FromFull": {"Email": "jane@example.com", "Name": "Jane Doe"},
        "ToFull": [{"Email": "rex.recruiter@acme.example", "Name": ""}],
        "Subject": f"Re: {sent_message.subject}",
        "MessageID": "22c74902-a0c1-4511-804f-341342852c90",
        "Date": "Mon, 5 Jan 2026 11:00:00 +0000",
        "TextBody": REPLY,
        "HtmlBody": "",
        "Headers": [
            {"Name": "Message-ID", "Value": "<reply-webhook@mail.example.com>"},
            {"Name": "In-Reply-To", "Value": sent_message.message_id},
        ],
    }
    client = Client(HTTP_AUTHORIZATION="Basic " + base64.b64encode(SECRET.encode()).decode())
    response = client.post(
        "/webhooks/anymail/postmark/inbound/",
        data=json.dumps(payload),
        content_type="application/json",
    )
    with scope(organization=org):
        inbound = InboundEmail.objects.get()
        enrollment = Enrollment.objects.get(pk=sent_message.enrollment_id)
        sent_message.refresh_from_db()
        activity = Activity.objects.get(kind=Activity.Kind.EMAIL_REPLIED)
        replied = EngagementEvent.objects.filter(kind="replied").count()
    assert response.status_code == 200
    assert inbound.text == "Thanks Rex, yes I'm interested. Could we talk on Thursday?"
    assert inbound.is_auto_reply is False
    assert (enrollment.status, enrollment.stop_reason) == ("stopped", "replied")
    assert sent_message.replied_at is not None
    assert "Could we talk on Thursday?" in activity.summary
    assert activity.data["text"] == inbound.text
    assert replied == 1


def test_reply_inbound_webhook_without_auth_is_400(org, sent_message):
    response = Client().post(
        "/webhooks/anymail/postmark/inbound/",
        data=json.dumps({"FromFull": {"Email": "x@example.com"}, "TextBody": "hi"}),
        content_type="application/json",
    )
    with scope(organization=org):
        stored = InboundEmail.objects.count()
    assert response.status_code == 400
    assert stored == 0


def test_reply_matched_by_references_when_in_reply_to_is_missing(org, sent_message):
    headers = _headers(sent_message)
    del headers["In-Reply-To"]
    headers["References"] = f"<older@example.com> {sent_message.message_id}"
    inbound = inbound_email_record(message=_raw(headers=headers))
    assert inbound is not None
    assert inbound.message_id == sent_message.pk


def test_reply_matched_by_the_per_message_reply_address(org, sent_message, settings):
    settings.CAMPAIGNS_REPLY_DOMAIN = "replies.acme.example"
    address = reply_address_for(sent_message)
    headers = _headers(sent_message, To=address)
    del headers["In-Reply-To"]
    inbound = inbound_email_record(message=_raw(headers=headers))
    assert address.startswith("reply+") and address.endswith("@replies.acme.example")
    assert inbound is not None
    assert inbound.message_id == sent_message.pk


def test_reply_address_is_added_to_reply_to_when_configured(org, recruiter_user, settings):
    settings.CAMPAIGNS_REPLY_DOMAIN = "replies.acme.example"
    make_candidates(org, 1)
    campaign = make_broadcast(org, user=recruiter_user)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
        ids = list(Message.objects.values_list("pk", flat=True))
        messages_send(organization=org, message_ids=ids)
        expected = reply_address_for(Message.objects.get(pk=ids[0]))
    recruiter, per_message = mail.outbox[-1].reply_to
    assert "<rex.recruiter@acme.example>" in recruiter
    assert per_message == expected


def test_reply_with_a_forged_reply_address_matches_nothing(org, sent_message, settings):
    settings.CAMPAIGNS_REPLY_DOMAIN = "replies.acme.example"
    headers = _headers(sent_message, To="reply+1-2-3-0.forged@replies.acme.example")
    del headers["In-Reply-To"]
    assert inbound_email_record(message=_raw(headers=headers)) is None


@pytest.mark.parametrize(
    "extra",
    [
        {"Auto-Submitted": "auto-replied"},
        {"X-Autoreply": "yes"},
        {"X-Autorespond": "Out of office"},
        {"Precedence": "auto_reply"},
        {"Precedence": "bulk"},
        {"Subject": "Out of Office: A role for you"},
        {"Subject": "Automatische Antwort: A role for you"},
        {"Subject": "Réponse automatique : A role for you"},
        {"Subject": "Respuesta automática: A role for you"},
    ],
)
def test_reply_auto_replies_are_stored_flagged_and_not_counted(org, sent_message, extra):
    headers = _headers(sent_message, **extra)
    inbound = inbound_email_record(message=_raw(headers=headers, body="I am away until Monday."))
    with scope(organization=org):
        enrollment = Enrollment.objects.get(pk=sent_message.enrollment_id)
        replied = EngagementEvent.objects.filter(kind="replied").count()
        timeline = Activity.objects.filter(kind=Activity.Kind.EMAIL_REPLIED).count()
        auto = list(
            Activity.objects.filter(kind=Activity.Kind.EMAIL_AUTO_REPLIED).values(
                "candidate_id", "summary", "data__reason", "data__message_id"
            )
        )
        replied_at = Message.objects.get(pk=sent_message.pk).replied_at
    assert inbound.is_auto_reply is True
    assert inbound.auto_reply_reason != ""
    assert (replied, timeline, replied_at) == (0, 0, None)
    assert enrollment.status == Enrollment.Status.ACTIVE
    # …but the candidate's timeline shows it, with what the auto-reply said.
    assert auto == [
        {
            "candidate_id": sent_message.candidate_id,
            "summary": f"Automatic reply to “{sent_message.subject}”: I am away until Monday.",
            "data__reason": inbound.auto_reply_reason,
            "data__message_id": sent_message.pk,
        }
    ]


def test_reply_auto_reply_shows_on_the_candidate_timeline(org, sent_message, recruiter_client):
    headers = _headers(sent_message, Subject="Out of office: back on 3 March")
    inbound_email_record(
        message=_raw(headers=headers, body="Back on 3 March, no email until then.")
    )
    url = reverse("candidates:detail", args=[org.slug, sent_message.candidate_id])
    body = recruiter_client.get(url).content.decode()
    assert "Automatic reply" in body
    assert "Back on 3 March, no email until then." in body
    assert "bi-robot" in body


def test_reply_auto_submitted_no_is_a_person(org, sent_message):
    message = _raw(headers=_headers(sent_message, **{"Auto-Submitted": "no"}))
    assert auto_reply_reason(message) == ""


def test_reply_delivered_twice_is_recorded_once(org, sent_message):
    first = inbound_email_record(message=_raw(headers=_headers(sent_message)))
    second = inbound_email_record(message=_raw(headers=_headers(sent_message)))
    with scope(organization=org):
        replied = EngagementEvent.objects.filter(kind="replied").count()
    assert first is not None
    assert second is None
    assert replied == 1


def test_reply_to_unknown_message_is_ignored(org, sent_message):
    headers = _headers(sent_message, **{"In-Reply-To": "<unknown@example.com>"})
    assert inbound_email_record(message=_raw(headers=headers)) is None


def test_reply_shows_on_the_message_page(org, sent_message, recruiter_client):
    inbound_email_record(message=_raw(headers=_headers(sent_message)))
    auto = _headers(sent_message, **{"Message-ID": "<ooo@mail.example.com>", "X-Autoreply": "yes"})
    inbound_email_record(message=_raw(headers=auto, body="Away until Monday."))
    url = reverse(
        "campaigns:message_detail", args=[org.slug, sent_message.campaign_id, sent_message.pk]
    )
    body = recruiter_client.get(url).content.decode()
    assert "Could we talk on Thursday?" in body
    assert "Away until Monday." in body
    assert "Auto-reply" in body


# --- the mailto: half of List-Unsubscribe ---


def _mailto_address() -> str:
    """The mailto: address of the List-Unsubscribe header of the last email sent."""
    header = mail.outbox[-1].extra_headers["List-Unsubscribe"]
    mailto = next(part.strip(" <>") for part in header.split(",") if "mailto:" in part)
    return mailto.removeprefix("mailto:")


def _post_inbound(to: str, *, subject: str = "unsubscribe", headers: list | None = None):
    payload = {
        "FromFull": {"Email": "jane@example.com", "Name": "Jane Doe"},
        "ToFull": [{"Email": to, "Name": ""}],
        "Subject": subject,
        "MessageID": "6f0c2d1e-2b0e-4f59-9d5c-1f0a6c1a9b11",
        "Date": "Mon, 5 Jan 2026 11:00:00 +0000",
        "TextBody": "This is an unsubscribe request.",
        "HtmlBody": "",
        "Headers": headers or [],
    }
    client = Client(HTTP_AUTHORIZATION="Basic " + base64.b64encode(SECRET.encode()).decode())
    return client.post(
        "/webhooks/anymail/postmark/inbound/",
        data=json.dumps(payload),
        content_type="application/json",
    )


def _state(org, message):
    with scope(organization=org):
        enrollment = Enrollment.objects.get(pk=message.enrollment_id)
        return {
            "unsubscribed": CandidateEmailPreference.objects.filter(
                candidate_id=message.candidate_id, unsubscribed_at__isnull=False
            ).exists(),
            "suppressed": list(Suppression.objects.values_list("email", "reason", "detail")),
            "enrollment": (enrollment.status, enrollment.stop_reason),
            "events": list(
                EngagementEvent.objects.filter(kind="unsubscribed").values_list(
                    "message_id", "data"
                )
            ),
            "timeline": Activity.objects.filter(kind=Activity.Kind.UNSUBSCRIBED).count(),
            "inbound": InboundEmail.objects.count(),
        }


def test_mailto_unsubscribe_through_the_inbound_webhook_unsubscribes(org, sent_message):
    to = _mailto_address()
    assert to.startswith("unsubscribe+")

    response = _post_inbound(to)

    state = _state(org, sent_message)
    assert response.status_code == 200
    assert state["unsubscribed"] is True
    assert state["suppressed"] == [(sent_message.to_email, "unsubscribed", "mailto")]
    assert state["enrollment"] == ("stopped", "unsubscribed")
    assert state["events"] == [(sent_message.pk, {"source": "mailto"})]
    assert state["timeline"] == 1
    assert state["inbound"] == 0  # a request to a machine, not a reply to the recruiter


def test_mailto_unsubscribe_twice_changes_nothing_the_second_time(org, sent_message):
    to = _mailto_address()
    _post_inbound(to)
    _post_inbound(to, subject="Unsubscribe again")

    state = _state(org, sent_message)
    assert len(state["events"]) == 1
    assert state["timeline"] == 1


def test_mailto_unsubscribe_with_a_forged_token_changes_nothing(org, sent_message):
    local, domain = _mailto_address().split("@")
    forged = local[:-1] + ("A" if local[-1] != "A" else "B")

    response = _post_inbound(f"{forged}@{domain}")
    handled = inbound_unsubscribe(message=_raw(headers={"To": f"{forged}@{domain}"}))

    state = _state(org, sent_message)
    assert response.status_code == 200
    assert handled is False
    assert state["unsubscribed"] is False
    assert state["suppressed"] == []
    assert state["enrollment"] == ("active", "")
    assert state["events"] == []


def test_mailto_unsubscribe_in_cc_with_a_reply_header_still_unsubscribes(org, sent_message):
    """A client that writes the request as a reply (In-Reply-To set) is still unsubscribing."""
    to = _mailto_address()
    response = _post_inbound(
        "someone-else@example.com",
        headers=[
            {"Name": "Cc", "Value": to},
            {"Name": "In-Reply-To", "Value": sent_message.message_id},
        ],
    )

    state = _state(org, sent_message)
    assert response.status_code == 200
    assert state["unsubscribed"] is True
    assert state["inbound"] == 0


def test_mailto_address_is_on_the_inbound_reply_domain_when_configured(
    org, recruiter_user, settings
):
    settings.CAMPAIGNS_REPLY_DOMAIN = "replies.acme.example"
    make_candidates(org, 1)
    campaign = make_broadcast(org, user=recruiter_user)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
        messages_send(
            organization=org, message_ids=list(Message.objects.values_list("pk", flat=True))
        )
    [(_, address)] = getaddresses([_mailto_address()])
    assert address.endswith("@replies.acme.example")


@pytest.mark.parametrize("matched_by", ["in_reply_to", "reply_address"])
def test_reply_from_a_deleted_candidate_is_not_kept(org, sent_message, settings, matched_by):
    """Deleting a profile deletes its enrollments and their emails; a reply that arrives
    afterwards, whether it names the email by header or by reply address, matches nothing and
    stores nothing of the person who was erased."""
    from candidates.services.profiles import candidates_delete

    settings.CAMPAIGNS_REPLY_DOMAIN = "replies.acme.example"
    headers = _headers(sent_message)
    if matched_by == "reply_address":
        headers["To"] = reply_address_for(sent_message)
        del headers["In-Reply-To"]
    with scope(organization=org):
        candidates_delete(candidate_ids=[sent_message.candidate_id])
    assert inbound_email_record(message=_raw(headers=headers)) is None
    with scope(organization=org):
        assert not InboundEmail.objects.exists()
        assert not EngagementEvent.objects.filter(kind="replied").exists()
