"""The mailto: half of List-Unsubscribe: an email to `unsubscribe+<token>@…` unsubscribes."""

import base64
import json
from datetime import timedelta
from email.utils import getaddresses

import pytest
from django.core import mail
from django.test import Client
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
from campaigns.services.replies import inbound_unsubscribe
from campaigns.services.sending import messages_send
from campaigns.tests.factories import make_broadcast, make_candidates
from candidates.models import Activity

SECRET = "rapport-hooks:s3cret-passphrase"


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
    handled = inbound_unsubscribe(
        message=type("Email", (), {"get_all": lambda self, name: [f"{forged}@{domain}"]})()
    )

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
