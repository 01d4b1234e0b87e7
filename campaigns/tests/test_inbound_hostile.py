"""Inbound email that anyone can write: malformed address headers, charsets Python does not
know, bodies built to make the quoted-text parser slow, and campaign subjects that contain the
words of an out-of-office subject. None of it may cost a candidate's reply or unsubscribe
request (a 500 makes the ESP retry until it gives up), or hold the webhook's request."""

import base64
import json
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from analytics.models import EngagementEvent
from campaigns.models import CandidateEmailPreference, Enrollment, InboundEmail, Message
from campaigns.services.campaigns import campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.services.replies import inbound_email_record, reply_address_for, reply_text
from campaigns.services.sending import messages_send
from campaigns.tests.factories import make_broadcast, make_candidates
from campaigns.tests.test_replies import SECRET, _headers, _mailto_address, _raw

MALFORMED_ADDRESSES = ["a@[1.2.3", "a:b:c:;;;,<>@,"]


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


def _post_raw_email(headers: dict, body: str = "Yes, let's talk on Thursday.\r\n"):
    """A Postmark inbound webhook carrying the email as its sender wrote it (RawEmail): anymail
    parses that with Python's email package, which parses some headers only when read."""
    raw = "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n" + body
    payload = {
        "FromFull": {"Email": "jane@example.com", "Name": "Jane Doe"},
        "ToFull": [{"Email": "rex.recruiter@acme.example", "Name": ""}],
        "Subject": headers.get("Subject", ""),
        "MessageID": "22c74902-a0c1-4511-804f-341342852c91",
        "Date": "Mon, 5 Jan 2026 11:00:00 +0000",
        "TextBody": body,
        "HtmlBody": "",
        "Headers": [],
        "RawEmail": raw,
    }
    client = Client(
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(SECRET.encode()).decode(),
        raise_request_exception=False,
    )
    return client.post(
        "/webhooks/anymail/postmark/inbound/",
        data=json.dumps(payload),
        content_type="application/json",
    )


def _outcome(org, message) -> dict:
    with scope(organization=org):
        enrollment = Enrollment.objects.get(pk=message.enrollment_id)
        return {
            "inbound": list(
                InboundEmail.objects.values_list("from_email", "text", "is_auto_reply")
            ),
            "enrollment": (enrollment.status, enrollment.stop_reason),
            "replied": EngagementEvent.objects.filter(kind="replied").count(),
            "unsubscribed": CandidateEmailPreference.objects.filter(
                candidate_id=message.candidate_id, unsubscribed_at__isnull=False
            ).exists(),
        }


# --- malformed address headers ---


@pytest.mark.parametrize("malformed", MALFORMED_ADDRESSES)
@pytest.mark.parametrize("header", ["To", "Cc", "From"])
def test_inbound_reply_with_a_malformed_address_header_is_recorded(
    org, sent_message, header, malformed
):
    headers = {**_headers(sent_message), header: malformed}

    response = _post_raw_email(headers)

    outcome = _outcome(org, sent_message)
    assert response.status_code == 200
    assert len(outcome["inbound"]) == 1
    assert outcome["enrollment"] == ("stopped", "replied")
    assert outcome["replied"] == 1


@pytest.mark.parametrize("malformed", MALFORMED_ADDRESSES)
def test_inbound_reply_address_beside_a_malformed_cc_still_matches(
    org, sent_message, settings, malformed
):
    settings.CAMPAIGNS_REPLY_DOMAIN = "replies.acme.example"
    headers = {**_headers(sent_message), "To": reply_address_for(sent_message), "Cc": malformed}
    del headers["In-Reply-To"]

    response = _post_raw_email(headers)

    outcome = _outcome(org, sent_message)
    assert response.status_code == 200
    assert outcome["inbound"] == [("jane@example.com", "Yes, let's talk on Thursday.", False)]
    assert outcome["enrollment"] == ("stopped", "replied")


@pytest.mark.parametrize("malformed", MALFORMED_ADDRESSES)
@pytest.mark.parametrize("where", ["another header", "the same header"])
def test_mailto_unsubscribe_beside_a_malformed_address_still_unsubscribes(
    org, sent_message, malformed, where
):
    mailto = _mailto_address()
    if where == "another header":
        headers = {"From": "Jane Doe <jane@example.com>", "To": mailto, "Cc": malformed}
    else:
        headers = {"From": "Jane Doe <jane@example.com>", "To": f"{malformed}, {mailto}"}
    headers.update({"Subject": "unsubscribe", "Message-ID": "<unsub-1@mail.example.com>"})

    response = _post_raw_email(headers, body="This is an unsubscribe request.\r\n")

    outcome = _outcome(org, sent_message)
    assert response.status_code == 200
    assert outcome["unsubscribed"] is True
    assert outcome["enrollment"] == ("stopped", "unsubscribed")
    assert outcome["inbound"] == []


@pytest.mark.parametrize("malformed", ["<a@[", "<>@,"])
def test_inbound_reply_with_a_malformed_message_id_is_recorded(org, sent_message, malformed):
    headers = {**_headers(sent_message), "Message-ID": malformed}

    response = _post_raw_email(headers)

    outcome = _outcome(org, sent_message)
    assert response.status_code == 200
    assert outcome["enrollment"] == ("stopped", "replied")


# --- charsets ---


def test_inbound_reply_in_an_unknown_charset_is_recorded_and_stops_the_enrollment(
    org, sent_message
):
    """RFC 1428's "unknown-8bit" (Python has no such codec): read as UTF-8 when it is."""
    headers = {
        **_headers(sent_message),
        "MIME-Version": "1.0",
        "Content-Type": 'text/plain; charset="unknown-8bit"',
        "Content-Transfer-Encoding": "8bit",
    }

    response = _post_raw_email(headers, body="Ja, gerne – ich bin interessiert.\r\n")

    outcome = _outcome(org, sent_message)
    assert response.status_code == 200
    assert outcome["inbound"] == [("jane@example.com", "Ja, gerne – ich bin interessiert.", False)]
    assert outcome["enrollment"] == ("stopped", "replied")


def test_inbound_reply_in_an_unknown_charset_that_is_not_utf8_reads_as_latin1(org, sent_message):
    headers = {
        **_headers(sent_message),
        "MIME-Version": "1.0",
        "Content-Type": 'text/plain; charset="x-no-such-charset"',
        "Content-Transfer-Encoding": "quoted-printable",
    }

    response = _post_raw_email(headers, body="Tr=E8s bien, merci.\r\n")

    outcome = _outcome(org, sent_message)
    assert response.status_code == 200
    assert outcome["inbound"] == [("jane@example.com", "Très bien, merci.", False)]


# --- bodies that make the quoted-text parser slow ---

HOSTILE_BODIES = {
    "blank lines": "Yes, let's talk.\n" + "\n" * 200_000 + "x",
    "long 'On …' lines": "Yes, let's talk.\n\n" + ("On " + "x " * 2_500 + "\n") * 40,
}


@pytest.mark.parametrize("shape", list(HOSTILE_BODIES))
def test_inbound_reply_with_a_hostile_body_is_recorded_quickly(org, sent_message, shape):
    """A guard against quadratic time in the webhook's request (not a benchmark): the bound
    is generous; before the fix, 12 KB of blank lines alone took 15 s."""
    body = HOSTILE_BODIES[shape]
    message = _raw(headers=_headers(sent_message), body=body)

    started = time.process_time()
    inbound = inbound_email_record(message=message)
    elapsed = time.process_time() - started

    assert elapsed < 2, f"{elapsed:.1f} s"
    assert inbound is not None
    assert inbound.text.startswith("Yes, let's talk.")
    assert inbound.full_text == body
    assert _outcome(org, sent_message)["enrollment"] == ("stopped", "replied")


def test_reply_text_gives_long_lines_back_whole_and_still_drops_the_quote():
    """The parser sees long lines cut short; what it keeps comes back as written."""
    paragraph = "I would love to hear more about the role. " * 30
    text = (
        f"{paragraph}\n\nSecond paragraph.\n\n"
        "On Mon, 5 Jan 2026 at 10:00, Rex Recruiter <rex.recruiter@acme.example> wrote:\n"
        f"> {paragraph}\n"
    )
    assert len(paragraph) > 1000
    assert reply_text(text) == f"{paragraph.strip()}\n\nSecond paragraph."


# --- campaign subjects that contain an out-of-office word ---

SUBJECTS_WITH_MARKERS = ["机会无处不在 — 高级工程师职位", "Questions on leave policy"]


@pytest.mark.parametrize("campaign_subject", SUBJECTS_WITH_MARKERS)
@pytest.mark.parametrize("prefix", ["Re: ", "AW: ", "Re: Fwd: ", "SV:"])
def test_inbound_reply_to_a_subject_with_an_out_of_office_word_counts_as_a_reply(
    org, sent_message, campaign_subject, prefix
):
    with scopes_disabled():
        Message.objects.filter(pk=sent_message.pk).update(subject=campaign_subject)
    headers = _headers(sent_message, Subject=f"{prefix}{campaign_subject}")

    inbound = inbound_email_record(message=_raw(headers=headers, body="Yes, let's talk."))

    outcome = _outcome(org, sent_message)
    assert (inbound.is_auto_reply, inbound.auto_reply_reason) == (False, "")
    assert outcome["enrollment"] == ("stopped", "replied")
    assert outcome["replied"] == 1


@pytest.mark.parametrize("campaign_subject", SUBJECTS_WITH_MARKERS)
@pytest.mark.parametrize(
    "subject",
    [
        "Out of office: Re: {}",
        "Automatic reply: {}",
        "自动回复: {}",
        "AUTO: Jane Doe is out of the office (returning 05/01/2026)",
    ],
)
def test_inbound_out_of_office_to_a_subject_with_an_out_of_office_word_is_an_auto_reply(
    org, sent_message, campaign_subject, subject
):
    with scopes_disabled():
        Message.objects.filter(pk=sent_message.pk).update(subject=campaign_subject)
    headers = _headers(sent_message, Subject=subject.format(campaign_subject))

    inbound = inbound_email_record(message=_raw(headers=headers, body="Away until March."))

    outcome = _outcome(org, sent_message)
    assert inbound.is_auto_reply is True
    assert inbound.auto_reply_reason.startswith("subject: ")
    assert outcome["enrollment"] == ("active", "")
    assert outcome["replied"] == 0
