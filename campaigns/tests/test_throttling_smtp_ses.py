"""Throttling by an SMTP relay or by Amazon SES (through anymail) is the provider's "slow down",
as an ESP's HTTP 429 is (test_throttling.py): the email waits in the queue with its attempts
unchanged and is never failed for it, while other 4xx replies and SES errors stay what they
were. The outside world here: an SMTP relay (aiosmtpd) that answers with real relays'
throttling, greylisting and full-mailbox replies, and an anymail backend that fails as anymail's
Amazon SES backend does when boto3's call raises a ClientError; the clock is frozen and moved
on by the tests (test_throttling's `clock`)."""

from datetime import timedelta
from email.utils import format_datetime

import pytest
from anymail.backends.test import EmailBackend as AnymailTestBackend
from anymail.exceptions import AnymailAPIError
from django.core import mail

from campaigns.conf import MAX_ATTEMPTS
from campaigns.models import Message
from campaigns.services import sending
from campaigns.services.sending import retry_delay
from campaigns.tests import test_throttling
from campaigns.tests.factories import send_all, smtp_relay

clock = test_throttling.clock  # the frozen clock (a fixture), moved on by the tests
_messages = test_throttling._messages

# ---- the recogniser, on real relays' replies (the text as smtplib gives it: each line without
# its reply code) ----

THROTTLING_REPLIES = [
    # Amazon SES's SMTP interface
    (454, b"Throttling failure: Maximum sending rate exceeded."),
    (454, b"Throttling failure: Daily message quota exceeded."),
    # Gmail
    (
        421,
        b"4.7.28 [203.0.113.7      15] Our system has detected an unusual rate of\n"
        b"4.7.28 unsolicited mail originating from your IP address. To protect our\n"
        b"4.7.28 users from spam, mail sent from your IP address has been temporarily\n"
        b"4.7.28 rate limited. Please visit\n"
        b"4.7.28  https://support.google.com/mail/?p=UnsolicitedRateLimitError to\n"
        b"4.7.28 review our Bulk Email Senders Guidelines. a1si123 - gsmtp",
    ),
    (421, b"4.7.28 Try again later"),  # the enhanced status code alone says it
    (
        450,
        b"4.2.1 The user you are trying to contact is receiving mail at a rate that\n"
        b"4.2.1 prevents additional messages from being delivered. Please resend your\n"
        b"4.2.1 message at a later point. If the user is able to receive mail at that\n"
        b"4.2.1 time, your message will be delivered. a1si123 - gsmtp",
    ),
    # Outlook / Exchange Online
    (
        451,
        b"4.7.500 Server busy. Please try again later from [203.0.113.7]. (S77714)"
        b" [DB5EUR01FT011.eop-EUR01.prod.protection.outlook.com]",
    ),
    # Yahoo
    (
        421,
        b"4.7.0 [TSS04] Messages from 203.0.113.7 temporarily deferred due to unexpected"
        b" volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
    ),
    # generic relays (Postfix policy services, Exim ratelimit ACLs, ESPs' SMTP relays)
    (421, b"4.7.0 Too many messages, slow down"),
    (450, b"4.7.1 Rate limit exceeded, try again later"),
    (451, b"4.7.1 Ratelimited: 100 messages per hour"),
    (421, b"4.7.0 Too many concurrent connections from this IP"),
    (454, b"4.7.0 Throttled"),
]

NOT_THROTTLING_REPLIES = [
    # greylisting: the first try of every new sender is deferred, whatever the rate
    (450, b"4.2.0 Greylisted, try again later"),
    (451, b"4.7.1 Greylisting in action, please come back later"),
    (
        450,
        b"4.2.0 <cand@example.com>: Recipient address rejected: Greylisted, see"
        b" http://postgrey.schweikert.ch/help/example.com.html",
    ),
    # a full mailbox: the recipient's, not the sender's, limit
    (452, b"4.2.2 Mailbox full"),
    (
        452,
        b"4.2.2 The email account that you tried to reach is over quota. Please direct\n"
        b"4.2.2 the recipient to https://support.google.com/mail/?p=OverQuotaTemp a1si123 - gsmtp",
    ),
    (452, b"4.2.2 Mailbox quota exceeded"),
    # too many recipients in one envelope: a limit on the message, not on the sending rate
    (452, b"4.5.3 Too many recipients"),
    # a server in trouble or going away
    (421, b"4.7.0 Try again later"),
    (421, b"4.7.0 Temporary System Problem.  Try again later (10). a1si123 - gsmtp"),
    (421, b"4.3.2 Service not available, closing transmission channel"),
    (451, b"4.3.0 Temporary lookup failure"),
    (452, b"4.3.1 Insufficient system storage"),
    # a permanent refusal is never a "wait", whatever it says
    (
        550,
        b"5.7.28 [203.0.113.7] Our system has detected an unusual rate of\n"
        b"5.7.28 unsolicited mail originating from your IP address.",
    ),
    (554, b"Throttling failure: Daily message quota exceeded."),
]


@pytest.mark.parametrize(("code", "reply"), THROTTLING_REPLIES)
def test_smtp_throttling_replies_are_recognised(code, reply):
    assert sending.smtp_reply_is_throttling(code, reply) is True
    assert sending.smtp_reply_is_throttling(code, reply.decode()) is True


@pytest.mark.parametrize(("code", "reply"), NOT_THROTTLING_REPLIES)
def test_other_smtp_replies_are_not_throttling(code, reply):
    assert sending.smtp_reply_is_throttling(code, reply) is False


# ---- the send path over SMTP ----


class Relay:
    """An SMTP relay that answers MAIL FROM, RCPT TO or the end of DATA with the reply it is
    given (`relay.replies["RCPT"] = "454 …"`; lines joined by CRLF for a multi-line reply) and
    accepts everything else. Records what it accepted and how many MAIL commands came."""

    def __init__(self):
        self.replies: dict[str, str] = {}
        self.received: list[str] = []
        self.mail_commands = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.mail_commands += 1
        if "MAIL" in self.replies:
            return self.replies["MAIL"]
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if "RCPT" in self.replies:
            return self.replies["RCPT"]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if "DATA" in self.replies:
            return self.replies["DATA"]
        self.received.extend(envelope.rcpt_tos)
        return "250 OK"


@pytest.fixture
def relay(settings):
    with smtp_relay(settings, Relay()) as handler:
        yield handler


SMTP_THROTTLING = [
    ("MAIL", "454 Throttling failure: Maximum sending rate exceeded."),
    ("MAIL", "454 Throttling failure: Daily message quota exceeded."),
    (
        "RCPT",
        "421-4.7.28 [127.0.0.1] Our system has detected an unusual rate of\r\n"
        "421-4.7.28 unsolicited mail originating from your IP address. To protect our\r\n"
        "421 4.7.28 users from spam, mail sent from your IP address has been rate limited.",
    ),
    (
        "RCPT",
        "450-4.2.1 The user you are trying to contact is receiving mail at a rate that\r\n"
        "450-4.2.1 prevents additional messages from being delivered. Please resend your\r\n"
        "450 4.2.1 message at a later point.",
    ),
    ("DATA", "451 4.7.500 Server busy. Please try again later from [127.0.0.1]. (S77714)"),
    ("DATA", "421 4.7.0 Too many messages, rate limit exceeded"),
]


@pytest.mark.parametrize(("stage", "reply"), SMTP_THROTTLING)
def test_smtp_throttling_puts_the_chunk_back_without_counting_an_attempt(
    launched_broadcast, org, relay, clock, stage, reply
):
    campaign, _ = launched_broadcast
    relay.replies[stage] = reply
    report = send_all(org, campaign)
    messages = _messages(campaign)

    assert [(m.status, m.attempts) for m in messages] == [("queued", 0)] * 3
    assert {m.next_attempt_at for m in messages} == {clock.now + timedelta(minutes=1)}
    assert {m.last_error.rsplit(", ", 1)[-1] for m in messages} == {"1 in a row"}
    assert (report.sent, report.provider_throttled, report.retried, report.failed) == (0, 3, 0, 0)
    assert relay.mail_commands == 1  # nothing more to the relay once it throttled
    assert relay.received == []


def test_smtp_throttling_never_fails_a_message_and_it_goes_out_once_the_relay_accepts(
    launched_broadcast, org, relay, clock
):
    campaign, candidates = launched_broadcast
    relay.replies["MAIL"] = "454 Throttling failure: Maximum sending rate exceeded."
    waits = []
    for _ in range(MAX_ATTEMPTS + 3):  # well past the attempts a transient failure has
        send_all(org, campaign)
        first = _messages(campaign)[0]
        waits.append(first.next_attempt_at - clock.now)
        clock.move(first.next_attempt_at - clock.now)

    assert [(m.status, m.attempts) for m in _messages(campaign)] == [("queued", 0)] * 3
    assert [int(wait.total_seconds() // 60) for wait in waits] == [1, 2, 4, 8, 15, 15, 15, 15, 15]
    assert relay.mail_commands == MAX_ATTEMPTS + 3  # one try per task, then it stops

    del relay.replies["MAIL"]
    report = send_all(org, campaign)

    assert report.sent == 3
    assert [(m.status, m.attempts, m.last_error) for m in _messages(campaign)] == [
        ("sent", 1, "")
    ] * 3
    assert sorted(relay.received) == sorted(c.email for c in candidates)


@pytest.mark.parametrize(
    "reply",
    [
        "450 4.2.0 Greylisted, try again later",
        "451 4.7.1 Greylisting in action, please come back later",
        "452 4.2.2 Mailbox full",
        "452-4.2.2 The email account that you tried to reach is over quota.\r\n"
        "452 4.2.2 Please direct the recipient to https://support.google.com/mail/?p=OverQuotaTemp",
        "421 4.7.0 Try again later",
    ],
)
def test_greylisting_and_full_mailboxes_stay_retries_that_count_as_attempts(
    launched_broadcast, org, relay, clock, reply
):
    campaign, _ = launched_broadcast
    relay.replies["RCPT"] = reply
    waits = []
    for _ in range(MAX_ATTEMPTS):
        report = send_all(org, campaign)
        assert (report.retried, report.provider_throttled) == (3, 0)
        first = _messages(campaign)[0]
        if first.status == Message.Status.QUEUED:
            waits.append(first.next_attempt_at - clock.now)
            clock.move(first.next_attempt_at - clock.now)

    # docs/campaigns.md, "Send": 1, 2, 4, 8 and 16 minutes, failed at the sixth attempt
    assert waits == [retry_delay(n) for n in range(1, MAX_ATTEMPTS)]
    assert [int(wait.total_seconds() // 60) for wait in waits] == [1, 2, 4, 8, 16]
    assert [(m.status, m.attempts) for m in _messages(campaign)] == [("failed", MAX_ATTEMPTS)] * 3
    assert relay.received == []


# ---- Amazon SES through anymail ----


class BotocoreClientError(Exception):
    """The shape of botocore's ClientError (botocore is not installed here): the service's
    parsed error response on `.response`, and botocore's message."""

    def __init__(self, response: dict, operation_name: str = "SendEmail"):
        error = response["Error"]
        super().__init__(
            f"An error occurred ({error['Code']}) when calling the {operation_name} operation:"
            f" {error['Message']}"
        )
        self.response = response


class EndpointConnectionError(Exception):
    """botocore's connection errors carry no response."""


def ses_error(code: str, message: str, *, status: int = 400, headers=None) -> dict:
    """An error response as botocore parses it from SES."""
    return {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {
            "RequestId": "5e7b0c0a-1111-2222-3333-444455556666",
            "HTTPStatusCode": status,
            "HTTPHeaders": {"content-type": "application/json", **(headers or {})},
            "RetryAttempts": 0,
        },
    }


class FakeSESBackend(AnymailTestBackend):
    """anymail's test backend, failing as anymail's Amazon SES backend does when boto3's call
    fails (anymail/backends/amazon_ses.py, `post_to_esp`): an AnymailAPIError with no status
    code, raised from botocore's exception, with its response passed on. `FakeSESBackend.errors`
    holds the outcome of the next calls: an SES error response, an exception to raise as
    botocore's, or None (accepted). Accepted emails land in `mail.outbox`."""

    esp_name = "Amazon SES"
    errors: list = []
    calls = 0

    def post_to_esp(self, payload, message):
        FakeSESBackend.calls += 1
        outcome = FakeSESBackend.errors.pop(0) if FakeSESBackend.errors else None
        if isinstance(outcome, dict):
            outcome = BotocoreClientError(outcome)
        if outcome is not None:
            raise AnymailAPIError(
                str(outcome),
                backend=self,
                email_message=message,
                payload=payload,
                response=getattr(outcome, "response", None),
            ) from outcome
        return super().post_to_esp(payload, message)

    def get_esp_message_id(self, message):
        return f"ses-{mail.outbox.index(message)}"


@pytest.fixture
def ses(settings):
    settings.EMAIL_BACKEND = f"{__name__}.FakeSESBackend"
    FakeSESBackend.errors, FakeSESBackend.calls = [], 0
    yield FakeSESBackend
    FakeSESBackend.errors = []


SES_THROTTLING = [
    ("Throttling", 400, "Maximum sending rate exceeded."),
    ("Throttling", 400, "Daily message quota exceeded."),
    ("ThrottlingException", 400, "Maximum sending rate exceeded."),
    ("TooManyRequestsException", 429, "Maximum sending rate exceeded."),
    ("LimitExceededException", 400, "Daily message quota exceeded."),
]


@pytest.mark.parametrize(("code", "status", "text"), SES_THROTTLING)
def test_ses_throttling_puts_the_chunk_back_without_counting_an_attempt(
    launched_broadcast, org, ses, clock, code, status, text
):
    campaign, _ = launched_broadcast
    ses.errors = [ses_error(code, text, status=status)]
    report = send_all(org, campaign)
    messages = _messages(campaign)

    assert [(m.status, m.attempts) for m in messages] == [("queued", 0)] * 3
    assert {m.next_attempt_at for m in messages} == {clock.now + timedelta(minutes=1)}
    assert (report.sent, report.provider_throttled, report.retried, report.failed) == (0, 3, 0, 0)
    assert ses.calls == 1
    assert mail.outbox == []


def test_ses_throttling_never_fails_a_message_and_it_goes_out_once_ses_accepts(
    launched_broadcast, org, ses, clock
):
    campaign, candidates = launched_broadcast
    ses.errors = [ses_error("Throttling", "Maximum sending rate exceeded.")] * (MAX_ATTEMPTS + 3)
    for _ in range(MAX_ATTEMPTS + 3):
        send_all(org, campaign)
        first = _messages(campaign)[0]
        clock.move(first.next_attempt_at - clock.now)

    assert [(m.status, m.attempts) for m in _messages(campaign)] == [("queued", 0)] * 3
    assert "9 in a row" in _messages(campaign)[0].last_error

    report = send_all(org, campaign)

    assert report.sent == 3
    assert [(m.status, m.attempts) for m in _messages(campaign)] == [("sent", 1)] * 3
    assert sorted(to for email in mail.outbox for to in email.to) == sorted(
        c.email for c in candidates
    )


@pytest.mark.parametrize("as_date", [False, True])
def test_ses_throttling_waits_for_the_retry_after_it_gives(
    launched_broadcast, org, ses, clock, as_date
):
    campaign, _ = launched_broadcast
    later = clock.now + timedelta(minutes=7)
    retry_after = format_datetime(later, usegmt=True) if as_date else "420"
    ses.errors = [
        ses_error(
            "TooManyRequestsException",
            "Maximum sending rate exceeded.",
            status=429,
            headers={"retry-after": retry_after},  # botocore lower-cases header names
        )
    ]
    send_all(org, campaign)

    assert {(m.status, m.next_attempt_at) for m in _messages(campaign)} == {("queued", later)}


@pytest.mark.parametrize(
    "error",
    [
        ses_error("MessageRejected", "Email address is not verified."),
        ses_error("SendingPausedException", "Sending is paused for this account."),
        ses_error("InternalFailure", "An internal error occurred.", status=500),
        EndpointConnectionError("Could not connect to the endpoint URL"),
    ],
)
def test_other_ses_errors_still_count_as_attempts(launched_broadcast, org, ses, clock, error):
    campaign, _ = launched_broadcast
    ses.errors = [error]
    report = send_all(org, campaign)
    first, *rest = _messages(campaign)

    assert (report.sent, report.retried, report.provider_throttled) == (2, 1, 0)
    assert (first.status, first.attempts) == (Message.Status.QUEUED, 1)
    assert first.next_attempt_at == clock.now + retry_delay(1)
    assert [m.status for m in rest] == ["sent", "sent"]
