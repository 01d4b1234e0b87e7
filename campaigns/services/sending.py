"""The send path: claim queued Messages, re-check the guard rails, send over one connection,
record each result at once.

Status bookkeeping (what makes "exactly once" hold under crashes):

* claim — ``queued → sending`` under row locks (``FOR UPDATE SKIP LOCKED``); anything not
  queued is skipped, so duplicate tasks and the sweeper's re-queues are harmless;
* send — one message at a time over ONE connection (SMTP or an ESP's HTTP session);
* record — right after the backend accepts a message, one autocommitted UPDATE marks it
  ``sent`` (guarded by ``status = 'sending'``, see `_status_is`); a hard bounce is recorded
  as soon as the server refuses it too (`_record_bounce`).

**The remaining crash window.** If the worker dies after the SMTP server (or ESP) accepted a
message and before the UPDATE commits — a window of one round trip to the database — the
message stays ``sending``. After CAMPAIGNS_SEND_LEASE_SECONDS the sweeper puts it back in the
queue and it is sent again, *with the same Message-ID* (stored at render time), so receiving
systems and ESPs can recognise the duplicate. Because messages go out one at a time per
connection, each crash can duplicate at most ONE message per connection; nothing is ever lost.
No design can close this window without a two-phase commit with the mail server, which SMTP
does not offer.

A live task stops claiming and sending after half its lease and gives back what it has not
sent, so the sweeper never re-queues a message that a slow but living worker still holds.

**Provider throttling.** A provider's "slow down" is not a failed attempt: an ESP's HTTP 429,
Amazon SES's throttling errors through anymail, or an SMTP relay's 4xx reply that says it is
throttling (`smtp_reply_is_throttling`; greylisting and full mailboxes are not). The message
was not accepted, so it goes back to ``queued`` with its Message-ID, its attempts unchanged and
a later ``next_attempt_at`` (the provider's Retry-After, else a backoff that grows while the
throttling lasts, see `throttle_delay`), and the task stops there: the rest of its chunk goes
back to the queue with it, untried. The sweeper hands them all to a new task when they are due.
Throttling alone never makes a message ``failed``.

**A server that cannot be reached** (the SMTP relay's or the ESP's connection refused or timed
out, its name unresolved, the greeting or login refused) took nothing: the chunk waits the same
way, with no attempt counted and the error in ``last_error``, so an outage never fails a
campaign and the emails go out, once each, when the server is back. A request that may have
reached the ESP (a connection dropped after sending, a read timeout) stays a transient failure.
"""

import contextlib
import logging
import re
import smtplib
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from types import SimpleNamespace

from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.db import IntegrityError, transaction
from django.db.models import BooleanField, F, Q, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.utils import timezone

from analytics.services import engagement_events_record_bulk
from campaigns.conf import (
    MAX_ATTEMPTS,
    THROTTLE_BACKOFF_MAX_SECONDS,
    THROTTLE_RETRY_AFTER_MAX_SECONDS,
    send_lease_seconds,
)
from campaigns.models import (
    Campaign,
    CandidateEmailPreference,
    EmailSettings,
    Enrollment,
    Message,
    Suppression,
)
from campaigns.services import guards, mime, smtp
from campaigns.services.campaigns import campaigns_finish
from campaigns.services.ratelimit import rate_limit_take
from campaigns.services.replies import reply_address_for
from campaigns.services.sequences import (
    MESSAGE_WINDOW_FIELDS,
    enrollments_stop,
    step_run_at,
    windows_shut,
)
from candidates.models import Activity, Candidate
from candidates.services.activities import activities_record_bulk, candidates_mark_contacted
from crm.db import server_binding_cursor

logger = logging.getLogger(__name__)

# Skip reasons that also end the candidate's enrollment.
_STOPPING = {
    Message.SkipReason.SUPPRESSED: Enrollment.StopReason.SUPPRESSED,
    Message.SkipReason.UNSUBSCRIBED: Enrollment.StopReason.UNSUBSCRIBED,
    Message.SkipReason.DO_NOT_CONTACT: Enrollment.StopReason.DO_NOT_CONTACT,
    Message.SkipReason.CAMPAIGN_CANCELLED: Enrollment.StopReason.CANCELLED,
    Message.SkipReason.MERGED: Enrollment.StopReason.MERGED,
    Message.SkipReason.HIRED: Enrollment.StopReason.HIRED,
}


@dataclass
class SendReport:
    claimed: int = 0
    sent: int = 0
    skipped: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0
    throttled: int = 0  # over the organisation's rate limit: not claimed, left queued
    provider_throttled: int = 0  # the provider said "slow down": back in the queue until later
    unreachable: int = 0  # the server could not be reached: back in the queue until later
    # Over a cap (services/guards.py), or a sequence's email whose sending window is shut:
    # back in the queue until later.
    held: int = 0
    paused: int = 0  # the campaign was paused meanwhile: back in the queue, for after the resume
    skip_reasons: dict = field(default_factory=dict)


class TransientError(Exception):
    """Try again later (connection trouble, 4xx)."""


class PermanentError(Exception):
    def __init__(self, message: str, *, hard_bounce: bool = False):
        super().__init__(message)
        self.hard_bounce = hard_bounce


class ProviderThrottled(Exception):
    """The provider asks us to slow down (an HTTP 429, SES's throttling, an SMTP relay's
    throttling reply): not a failed attempt. `retry_after` is
    its Retry-After, when it gave one."""

    def __init__(self, message: str, *, retry_after: timedelta | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class ProviderUnreachable(ProviderThrottled):
    """The email server could not be reached at all — the connection refused or timed out, the
    name not resolved, the greeting or login refused — so nothing was handed over. Like
    throttling it says nothing about the email: the chunk waits, with no attempt counted, so an
    outage never fails a campaign (the waiting emails show why on the campaign page)."""


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff: 1, 2, 4, 8, 16 minutes… capped at an hour."""
    return timedelta(minutes=min(60, 2 ** max(0, attempts - 1)))


def throttle_delay(times: int) -> timedelta:
    """The wait after the provider throttled a message `times` times in a row, when it gave no
    Retry-After: 1, 2, 4, 8… minutes, capped at THROTTLE_BACKOFF_MAX_SECONDS."""
    minutes = 2 ** min(20, max(0, times - 1))
    return timedelta(seconds=min(THROTTLE_BACKOFF_MAX_SECONDS, 60 * minutes))


# What a throttled message's `last_error` says (the operator's view, and where the next
# throttle reads how many came before: the model has no field for it).
_THROTTLED = "Waiting: the email provider is throttling sends, {times} in a row"
_UNREACHABLE = "Waiting: could not connect to the email server, {times} in a row ({error})"
# Rows written before SMTP and SES throttling were recognised say "(HTTP 429)" too.
_THROTTLED_TIMES = re.compile(
    r"(?:throttling sends(?: \(HTTP 429\))?|could not connect to the email server), (\d+) in a row"
)


def _throttled_times(last_error: str) -> int:
    match = _THROTTLED_TIMES.search(last_error or "")
    return int(match[1]) if match else 0


def _retry_after(response) -> timedelta | None:
    """An HTTP answer's Retry-After (seconds, or an HTTP date), at most a day."""
    headers = getattr(response, "headers", None) or {}
    value = (headers.get("Retry-After") or "").strip()
    if value.isascii() and value.isdigit():
        seconds = float(value)
    else:
        try:
            until = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if until.tzinfo is None:  # "-0000": UTC
            until = until.replace(tzinfo=UTC)
        seconds = (until - timezone.now()).total_seconds()
    return timedelta(seconds=min(THROTTLE_RETRY_AFTER_MAX_SECONDS, max(0.0, seconds)))


def skip_reason_for(
    *, message: Message, candidate, preference, suppressed: set[str], today: date
) -> str:
    """Why this message must not go out now ("" when it may). Checked at send time. `today`
    is the date in the organisation's time zone (for the candidate's pause)."""
    if message.campaign.status == Campaign.Status.CANCELLED:
        return Message.SkipReason.CAMPAIGN_CANCELLED
    if message.enrollment is not None and message.enrollment.status == Enrollment.Status.STOPPED:
        return Message.SkipReason.ENROLLMENT_STOPPED
    if candidate is None:  # deleted (bulk delete, erasure) since the message was written
        return Message.SkipReason.CANDIDATE_DELETED
    if candidate.merged_into_id is not None:
        # A merged-away profile: the person is the surviving profile, whose own emails reach
        # them (the merge stops this profile's enrollments; this is the backstop).
        return Message.SkipReason.MERGED
    if not message.to_email:
        return Message.SkipReason.NO_EMAIL
    if message.to_email.lower() in suppressed:
        return Message.SkipReason.SUPPRESSED
    if candidate is not None and candidate.status == Candidate.Status.DO_NOT_CONTACT:
        return Message.SkipReason.DO_NOT_CONTACT
    if candidate is not None and candidate.status == Candidate.Status.HIRED:
        # An employee now: campaign email about opportunities no longer goes to them.
        return Message.SkipReason.HIRED
    if preference is not None:
        if preference.unsubscribed_at is not None:
            return Message.SkipReason.UNSUBSCRIBED
        if message.campaign.topic in (preference.opted_out_topics or []):
            return Message.SkipReason.TOPIC_OPTED_OUT
        if preference.is_paused_on(today):
            return Message.SkipReason.PAUSED
    # Consent, the frequency cap and the per-sender daily cap need more than one message:
    # services/guards.py, called from messages_send.
    return ""


# The fields messages_send reads (a field left out would cost a query per message: see
# test_send_queries).
_SEND_FIELDS = (
    "organization",
    "is_test",
    "to_email",
    "from_email",
    "reply_to",
    "subject",
    "html",
    "text",
    "headers",
    "attempts",
    "last_error",
    "campaign__status",
    "campaign__topic",
    "campaign__name",
    "enrollment__status",
    "candidate__status",
    "candidate__merged_into",
    # A sequence's held or retried email waits for its sending window (`_within_window`).
    *MESSAGE_WINDOW_FIELDS,
)


def _claim(*, organization, message_ids: list[int], limit: int, now) -> list[int]:
    with transaction.atomic():
        ids = list(
            Message.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                _status_is(Message.Status.QUEUED), organization=organization, pk__in=message_ids
            )
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
            .exclude(campaign__status=Campaign.Status.PAUSED)
            .order_by("pk")
            .values_list("pk", flat=True)[:limit]
        )
        Message.objects.filter(pk__in=ids).update(status=Message.Status.SENDING, claimed_at=now)
    return ids


class _CampaignEmail(EmailMultiAlternatives):
    """Django's email with its MIME boundary set up front: the standard library otherwise
    compiles a new regular expression for every message's random boundary (~0.2 ms each)."""

    def message(self, *args, **kwargs):
        mime = super().message(*args, **kwargs)
        if mime.is_multipart():
            mime.set_boundary(f"=_rapport_{uuid.uuid4().hex}")
        return mime


def _reply_to(message: Message) -> list[str]:
    # The recruiter, plus the per-message reply address when CAMPAIGNS_REPLY_DOMAIN is set.
    return [a for a in (message.reply_to, reply_address_for(message)) if a]


def _email_for(message: Message) -> EmailMultiAlternatives:
    email = _CampaignEmail(
        subject=message.subject,
        body=message.text,
        from_email=message.from_email,
        to=[message.to_email],
        reply_to=_reply_to(message) or None,
        headers=dict(message.headers),  # carries our stored Message-ID: a re-send keeps it
    )
    email.attach_alternative(message.html, "text/html")
    return email


def _deliver(connection, message: Message) -> str:
    """Hand one message to the open backend; returns the ESP's message id ("" for SMTP).

    Over Django's own SMTP backend the message is written by `mime.campaign_email_bytes`
    (the same message, without the standard library's MIME tree: ~15x cheaper) and handed to
    the backend's open smtplib connection, as its `_send` would. Any other backend (anymail's
    ESPs, a subclass that signs messages, locmem, file, console) gets Django's EmailMessage."""
    if type(connection) is SMTPBackend and connection.connection is not None:
        sender, recipients = mime.smtp_envelope(from_email=message.from_email, to=message.to_email)
        data = mime.campaign_email_bytes(
            subject=message.subject,
            from_email=message.from_email,
            to=message.to_email,
            reply_to=_reply_to(message),
            headers=message.headers,
            text=message.text,
            html=message.html,
        )
        smtp.sendmail(connection.connection, sender, recipients, data)
        return ""
    email = _email_for(message)
    connection.send_messages([email])
    return getattr(getattr(email, "anymail_status", None), "message_id", None) or ""


def _session_reads_environment_once(connection) -> None:
    """An HTTP backend's requests.Session (anymail) looks up proxy and CA settings in the
    environment on every request (`trust_env`) — ~0.2 ms each here, scanning os.environ twice.
    Read them once for the task's session instead; the same settings apply to every request."""
    session = getattr(connection, "session", None)
    api_url = getattr(connection, "api_url", None)
    if session is None or not api_url or not getattr(session, "trust_env", False):
        return
    from requests.utils import get_netrc_auth

    environment = session.merge_environment_settings(api_url, {}, None, None, None)
    session.proxies.update(environment.get("proxies") or {})
    if environment.get("verify") not in (None, True):
        session.verify = environment["verify"]
    if session.auth is None:
        session.auth = get_netrc_auth(api_url)
    session.trust_env = False


# ---- What counts as the provider's "slow down" besides an HTTP 429 ----
#
# SMTP. A reply code says only "later" (4xx) or "never" (5xx): the same 421 or 45x comes for
# greylisting, a full mailbox or a server going down, which are retries that count towards
# MAX_ATTEMPTS. Relays that throttle say so in the words of the reply, or in the enhanced status
# code X.7.28 that Gmail gives when it rate-limits a sender:
#   Amazon SES   454 Throttling failure: Maximum sending rate exceeded. (or: Daily message quota)
#   Gmail        421-4.7.28 … an unusual rate of unsolicited mail …
#                450-4.2.1 … is receiving mail at a rate that prevents additional messages …
#   Outlook      451 4.7.500 Server busy. Please try again later from [IP]
#   Yahoo        421 4.7.0 [TSS04] … temporarily deferred due to unexpected volume …
#   others       421 4.7.0 Too many messages / Too many concurrent connections / Rate limit exceeded
# Never throttling, whatever the words: a full mailbox (X.2.2, "over quota"), too many
# recipients in one envelope (X.5.3: a limit on the message, not on the rate) and greylisting.
_SMTP_THROTTLING_WORDS = re.compile(
    r"throttl|\brate\b|ratelimit|too many (?:messages|mails|emails|requests|connections|concurrent)"
    r"|server (?:is )?(?:too )?busy|unexpected volume",
    re.IGNORECASE,
)
_SMTP_GREYLISTING = re.compile(r"gr[ae]y[- ]?list", re.IGNORECASE)
_SMTP_ENHANCED_STATUS = re.compile(r"^\s*4\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_THROTTLING_STATUS = {(7, 28)}  # X.7.28
_SMTP_NEVER_THROTTLING_STATUS = {(2, 2), (5, 3)}  # X.2.2 mailbox full, X.5.3 too many recipients


def smtp_reply_is_throttling(code: int, reply: bytes | str) -> bool:
    """Whether an SMTP reply (its code, and its text as smtplib gives it: each line without the
    code) is the relay's "slow down": a 4xx with the enhanced status code X.7.28 or throttling
    words (see above), and neither a full mailbox, too many recipients nor greylisting."""
    if not 400 <= code < 500:
        return False
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    status = _SMTP_ENHANCED_STATUS.match(text)
    subject_detail = (int(status[1]), int(status[2])) if status else None
    if subject_detail in _SMTP_NEVER_THROTTLING_STATUS or _SMTP_GREYLISTING.search(text):
        return False
    return subject_detail in _SMTP_THROTTLING_STATUS or bool(_SMTP_THROTTLING_WORDS.search(text))


# Amazon SES through anymail (anymail/backends/amazon_ses.py): boto3's ClientError becomes an
# AnymailAPIError with no status code, raised from the ClientError and carrying its parsed
# response ({"Error": {"Code", "Message"}, "ResponseMetadata": {"HTTPStatusCode",
# "HTTPHeaders"}}). These error codes, or an HTTP 429 whatever the code, are SES's throttling
# ("Maximum sending rate exceeded", "Daily message quota exceeded"). Read by duck typing:
# botocore is not a dependency.
_AWS_THROTTLING_CODES = {
    "Throttling",  # the SES v1 API
    "ThrottlingException",  # every AWS API's common error
    "TooManyRequestsException",  # SES v2: maximum sending rate exceeded (HTTP 429)
    "LimitExceededException",  # SES v2: a sending limit (e.g. the daily quota) reached
}


def _aws_error_response(error: Exception) -> dict | None:
    """botocore's parsed error response, on the AnymailAPIError or on its cause."""
    for response in (getattr(error, "response", None), getattr(error.__cause__, "response", None)):
        if isinstance(response, dict) and isinstance(response.get("Error"), dict):
            return response
    return None


def _aws_throttled(error: Exception) -> ProviderThrottled | None:
    """ProviderThrottled when `error` carries an AWS throttling answer (with its Retry-After,
    when the response's HTTP headers have one), else None."""
    response = _aws_error_response(error)
    if response is None:
        return None
    metadata = response.get("ResponseMetadata") or {}
    if (
        response["Error"].get("Code") not in _AWS_THROTTLING_CODES
        and metadata.get("HTTPStatusCode") != 429
    ):
        return None
    from requests.structures import CaseInsensitiveDict  # anymail's dependency

    headers = CaseInsensitiveDict(metadata.get("HTTPHeaders") or {})
    return ProviderThrottled(str(error), retry_after=_retry_after(SimpleNamespace(headers=headers)))


class _Unopened(Exception):
    """The backend's `open()` failed (`__cause__`): no connection, nothing handed over."""


def _connect_failed(error: Exception) -> bool:
    """Whether an anymail ESP's request failed before the ESP could have read it: the
    connection was refused or timed out, or the name did not resolve (requests' ConnectionError
    from urllib3's NewConnectionError or ConnectTimeoutError). A connection dropped after the
    request went out, or a read timeout, is not: the ESP may have accepted the email, and it is
    a transient failure like any other."""
    try:
        from requests.exceptions import ConnectionError as RequestsConnectionError
        from urllib3.exceptions import ConnectTimeoutError, MaxRetryError
    except ImportError:  # pragma: no cover — anymail's dependencies
        return False
    cause = error.__cause__
    if not isinstance(cause, RequestsConnectionError) or not cause.args:
        return False
    reason = cause.args[0]
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, ConnectTimeoutError)  # NewConnectionError is one too


def _classify(error: Exception) -> Exception:
    """Turn a backend's exception into ProviderThrottled, TransientError or PermanentError.

    Throttling ("slow down": waits, never counted as an attempt) is an ESP's HTTP 429, Amazon
    SES's throttling errors through anymail (`_aws_throttled`), and an SMTP 4xx reply that
    says so (`smtp_reply_is_throttling`) — to MAIL FROM, DATA or the message, or to every
    recipient. Any other SMTP 4xx (greylisting, a full mailbox, a server going down) is a
    transient failure that counts towards MAX_ATTEMPTS; a 5xx is permanent (to every recipient:
    a hard bounce). A server that could not be reached at all (`ProviderUnreachable`) waits
    like throttling: its backend's `open()` failed, unless with a throttling reply, or an ESP's
    request could not connect (`_connect_failed`)."""
    if isinstance(error, _Unopened):
        outcome = _classify(error.__cause__)
        if isinstance(outcome, ProviderThrottled):
            return outcome
        return ProviderUnreachable(f"{type(error.__cause__).__name__}: {error.__cause__}")
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        replies = list(error.recipients.values())
        if replies and all(500 <= code < 600 for code, _ in replies):
            return PermanentError(f"Recipient refused: {error.recipients}", hard_bounce=True)
        if replies and all(smtp_reply_is_throttling(code, reply) for code, reply in replies):
            return ProviderThrottled(f"Recipient throttled: {error.recipients}")
        return TransientError(f"Recipient deferred: {error.recipients}")
    if isinstance(error, smtplib.SMTPResponseException):
        if 500 <= error.smtp_code < 600:
            return PermanentError(f"{error.smtp_code} {error.smtp_error!r}")
        if smtp_reply_is_throttling(error.smtp_code, error.smtp_error):
            return ProviderThrottled(f"{error.smtp_code} {error.smtp_error!r}")
        return TransientError(f"{error.smtp_code} {error.smtp_error!r}")
    try:
        from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
    except ImportError:  # pragma: no cover — anymail is a dependency
        AnymailRecipientsRefused = AnymailAPIError = ()
    if AnymailRecipientsRefused and isinstance(error, AnymailRecipientsRefused):
        return PermanentError(str(error), hard_bounce=True)
    if AnymailAPIError and isinstance(error, AnymailAPIError):
        status = getattr(error, "status_code", None) or 500
        if status == 429:
            return ProviderThrottled(
                str(error), retry_after=_retry_after(getattr(error, "response", None))
            )
        if (throttled := _aws_throttled(error)) is not None:
            return throttled
        if _connect_failed(error):
            return ProviderUnreachable(f"{type(error.__cause__).__name__}: {error.__cause__}")
        if 400 <= status < 500:
            return PermanentError(str(error))
        return TransientError(str(error))
    return TransientError(f"{type(error).__name__}: {error}")


def messages_send(*, organization, message_ids: list[int], connection=None) -> SendReport:
    """Send the queued ones among `message_ids` (the body of the `campaigns.send_messages`
    task). Runs inside the organisation's scope."""
    report = SendReport()
    started = time.monotonic()
    lease = send_lease_seconds()
    deadline = started + lease / 2
    now = timezone.now()
    email_settings = EmailSettings.objects.filter(organization=organization).first()
    per_minute = email_settings.messages_per_minute if email_settings else 30000

    wanted = Message.objects.filter(
        _status_is(Message.Status.QUEUED), organization=organization, pk__in=message_ids
    ).count()
    allowed = rate_limit_take(organization_id=organization.pk, wanted=wanted, per_minute=per_minute)
    report.throttled = wanted - allowed
    if report.throttled:
        # Throttled messages stay queued; the sweeper gives them a new task in a later minute.
        throttled_ids = list(
            Message.objects.filter(
                _status_is(Message.Status.QUEUED), organization=organization, pk__in=message_ids
            )
            .order_by("-pk")
            .values_list("pk", flat=True)[: report.throttled]
        )
        Message.objects.filter(_status_is(Message.Status.QUEUED), pk__in=throttled_ids).update(
            enqueued_at=None
        )
    if not allowed:
        return report
    claimed_ids = _claim(organization=organization, message_ids=message_ids, limit=allowed, now=now)
    report.claimed = len(claimed_ids)
    if not claimed_ids:
        return report

    messages = list(
        Message.objects.filter(pk__in=claimed_ids)
        .select_related("campaign__organization", "enrollment", "candidate")
        # Only what the guard rails, the email and the bookkeeping read: building whole
        # campaign, enrollment and candidate instances was most of the ~0.3 ms per message
        # that loading a chunk took (docs/performance.md).
        .only(*_SEND_FIELDS)
        .order_by("pk")
    )
    today = guards.local_day(organization, now)
    preferences, suppressed = _opt_outs(organization, messages)
    opt_outs_read = time.monotonic()
    # A sequence's email whose task ran after its sending window shut (the worker was down, a
    # big send was queued ahead of it) waits for the window's next opening.
    shut = windows_shut(messages, now=now)  # from the loaded chunk: no query

    # Guard rails that need more than one message (consent, frequency cap, sender cap).
    guarded = [m for m in messages if not m.is_test and not _campaign_paused(m)]
    reasons = guards.consent_skips(
        organization=organization, messages=guarded, email_settings=email_settings
    )
    caps = guards.send_holds(
        organization=organization,
        messages=[
            m
            for m in guarded
            if not reasons.get(m.pk)
            and m.pk not in shut  # it will not be sent now: it takes no allowance
            and not skip_reason_for(
                message=m,
                candidate=m.candidate,
                preference=preferences.get(m.candidate_id),
                suppressed=suppressed,
                today=today,
            )
        ],
        email_settings=email_settings,
        now=now,
        # The rest of the chunk (skipped, paused) is this task's too, not another worker's
        # emails in flight: it will not be sent now.
        claimed_ids=claimed_ids,
    )
    held: dict = {}

    skipped: list[tuple[Message, str]] = []
    sent: list[Message] = []
    failed: list[Message] = []
    bounced: list[Message] = []
    paused: list[int] = []
    gave_up: list[int] = []  # transient failures on their last attempt: failed for good
    connection = connection or get_connection(timeout=max(5, min(30, lease // 4)))
    opened = False
    # One server-bound statement per accepted message (see _record_sent).
    with server_binding_cursor() as sent_cursor:
        try:
            for index, message in enumerate(messages):
                if time.monotonic() > deadline:
                    # Give back what is left: this task must not outlive its lease.
                    report.released = _back_in_queue([m.pk for m in messages[index:]])
                    break
                if (
                    index
                    and index % OPT_OUTS_REREAD_EVERY == 0
                    and time.monotonic() - opt_outs_read >= OPT_OUTS_REREAD_SECONDS
                ):
                    # What changed while this chunk goes out applies to the rest of it: an
                    # unsubscribe, a suppression, "do not contact", a candidate deleted or
                    # merged away, the campaign paused or cancelled, the enrollment stopped.
                    preferences, suppressed = _reread(organization, messages[index:])
                    # And a chunk that runs past its window's end holds the rest (no query:
                    # `sequences.windows_shut`). Added to, never taken from: an email held at
                    # the start took no allowance from the caps, so it must not go now.
                    shut.update(windows_shut(messages[index:], now=timezone.now()))
                    opt_outs_read = time.monotonic()
                if _campaign_paused(message):
                    paused.append(message.pk)
                    continue
                if not message.is_test:
                    reason = skip_reason_for(
                        message=message,
                        candidate=message.candidate,
                        preference=preferences.get(message.candidate_id),
                        suppressed=suppressed,
                        today=today,
                    ) or reasons.get(message.pk, "")
                    if reason:
                        skipped.append((message, reason))
                        continue
                    if message.pk in caps.holds:  # already inside the window (and later)
                        until, why = caps.holds[message.pk]
                        held[message.pk] = (_within_window(message, until), why)
                        continue
                    if message.pk in shut:
                        held[message.pk] = (shut[message.pk], guards.HOLD_SENDING_WINDOW)
                        continue
                try:
                    if not opened:
                        try:
                            connection.open()
                        except Exception as error:
                            raise _Unopened(error) from error
                        opened = True
                        _session_reads_environment_once(connection)
                    esp_id = _deliver(connection, message)
                except Exception as error:
                    outcome = _classify(error)
                    if isinstance(outcome, ProviderThrottled):
                        # Nothing more to this provider now: this message and the rest of the
                        # chunk wait in the queue, none of them counted as an attempt.
                        waiting = _record_provider_throttled(messages[index:], outcome)
                        if isinstance(outcome, ProviderUnreachable):
                            report.unreachable = waiting
                        else:
                            report.provider_throttled = waiting
                        break
                    if isinstance(outcome, PermanentError) and outcome.hard_bounce:
                        _record_bounce(organization, message, str(outcome))
                        suppressed.add(message.to_email.lower())  # the rest of the chunk too
                        bounced.append(message)
                        report.failed += 1
                    elif isinstance(outcome, PermanentError):
                        _record_failed(message, str(outcome))
                        failed.append(message)
                        report.failed += 1
                    else:
                        if _record_retry(message, str(outcome)):
                            gave_up.append(message.pk)
                        report.retried += 1
                        # The connection may be broken: start a fresh one for the next message.
                        _close_quietly(connection)
                        opened = False
                    continue
                # ---- crash window: accepted by the server, not yet recorded (see module doc) ----
                _record_sent(message, esp_id, cursor=sent_cursor)
                sent.append(message)
                report.sent += 1
        finally:
            if opened:
                _close_quietly(connection)

    # A campaign paused while its chunk went out: the rest waits for the resume, as it would
    # had the pause come before the chunk was claimed (the claim and the sweeper skip paused
    # campaigns).
    report.paused = _back_in_queue(paused)
    _record_skips(skipped, report)
    report.held = guards.messages_hold(holds=held)
    _record_events(organization, sent=sent, failed=failed + bounced, skipped=skipped)
    # The day's allowances count the emails that went out (and those that failed for good):
    # everything else gives its unit back — skipped, held, retried, throttled by the provider,
    # released at the deadline, paused. A worker lost before this line keeps the units it
    # took: the error is on the safe side (an email waits for tomorrow), never over a cap.
    used = {m.pk for m in [*sent, *failed, *bounced]} | set(gave_up)
    caps.give_back([pk for pk in list(caps.taken) if pk not in used])
    # The chunk's results are committed: if it held a campaign's last emails, it is done now.
    campaigns_finish(campaign_ids={m.campaign_id for m in messages if m.campaign_id})
    return report


def _campaign_paused(message: Message) -> bool:
    return message.campaign_id is not None and message.campaign.status == Campaign.Status.PAUSED


def _back_in_queue(message_ids: list[int]) -> int:
    """Claimed messages that were not tried go back to `queued`, due as they were; the sweeper
    hands them to a new task."""
    if not message_ids:
        return 0
    return Message.objects.filter(_status_is(Message.Status.SENDING), pk__in=message_ids).update(
        status=Message.Status.QUEUED, claimed_at=None, enqueued_at=None
    )


def _within_window(message: Message, moment: datetime) -> datetime:
    """When a held or retried email may be tried again: `moment`, or for a sequence's email
    the next opening of its sending window from then on (in the organisation's time zone, or
    the candidate's), so that a wait until the next midnight or a retry's backoff does not
    send it at night or at the weekend."""
    if message.campaign_id is None:
        return moment
    return step_run_at(campaign=message.campaign, candidate=message.candidate, due=moment)


# How often a chunk being sent reads again what may stop its emails: every this many messages,
# once this many seconds have passed since the last read. An unsubscribe, a deletion or a
# pause is then honoured within about a second even on a slow server, for three small queries
# a second at full speed (a chunk of a few messages, as in the query-count tests, reads them
# once).
OPT_OUTS_REREAD_EVERY = 50
OPT_OUTS_REREAD_SECONDS = 1.0


def _reread(organization, messages: list[Message]) -> tuple[dict, set[str]]:
    """Bring the rest of a chunk up to date (see `_refresh`) and read its opt-outs again."""
    _refresh(organization, messages)
    return _opt_outs(organization, messages)


def _refresh(organization, messages: list[Message]) -> None:
    """One query over the messages themselves, joined to their campaign, enrollment and
    candidate: what changed since the chunk was loaded is set on the loaded instances, where
    `skip_reason_for` and `_campaign_paused` look. A message whose row is gone, or whose
    candidate is — deleting a candidate deletes their enrollments and those their messages —
    loses its candidate and is skipped as `candidate_deleted`."""
    rows = {
        pk: rest
        for pk, *rest in Message.objects.filter(
            organization=organization, pk__in=[m.pk for m in messages]
        ).values_list(
            "pk",
            "campaign__status",
            "enrollment__status",
            "candidate_id",
            "candidate__status",
            "candidate__merged_into",
        )
    }
    for message in messages:
        row = rows.get(message.pk)
        if row is None or row[2] is None:
            message.candidate = None
            continue
        campaign_status, enrollment_status, _, candidate_status, merged_into_id = row
        if message.campaign_id is not None:
            message.campaign.status = campaign_status
        if message.enrollment_id is not None and enrollment_status is not None:
            message.enrollment.status = enrollment_status
        if message.candidate is not None:
            message.candidate.status = candidate_status
            message.candidate.merged_into_id = merged_into_id


def _opt_outs(organization, messages: list[Message]) -> tuple[dict, set[str]]:
    """The email preferences of `messages`' candidates and which of their addresses are
    suppressed."""
    candidate_ids = [m.candidate_id for m in messages if m.candidate_id]
    preferences = {
        p.candidate_id: p
        for p in CandidateEmailPreference.objects.filter(
            organization=organization, candidate_id__in=candidate_ids
        )
    }
    suppressed = set(
        Suppression.objects.filter(
            organization=organization,
            email__in={m.to_email.lower() for m in messages},
        ).values_list("email", flat=True)
    )
    return preferences, suppressed


def _status_is(status: str) -> RawSQL:
    """`status = …` written so that PostgreSQL cannot use the partial indexes on queued and
    sending messages (`WHERE status = 'queued'`/`'sending'`) for it. With a row or a chunk
    named by primary key, the planner still chose those indexes — their statistics say "tiny"
    — and walked every queued or sending row (with the dead versions a big send leaves) for each
    statement: the per-message "sent" UPDATE read ~650 buffers instead of ~35 with 1,000
    messages in flight (10 ms instead of 0.2 ms). `(…) IS TRUE` is the same test for a NOT NULL
    column, but not one the planner matches to an index predicate."""
    return RawSQL(  # noqa: S611 — our table name; the status is a parameter
        f'("{Message._meta.db_table}"."status" = %s) IS TRUE', [status], output_field=BooleanField()
    )


def _close_quietly(connection) -> None:
    with contextlib.suppress(Exception):  # a broken connection is being discarded anyway
        connection.close()


# `delivered` when the ESP's delivery report came first: one for our Message-ID, applied
# while the email waited to be sent again (the first try was accepted, then its worker was lost).
_SENT_SQL = (
    "UPDATE campaigns_message SET sent_at = %s, esp_message_id = %s, attempts = attempts + 1,"
    " last_error = '', status = CASE WHEN delivered_at IS NULL THEN 'sent' ELSE 'delivered' END"
    " WHERE id = %s AND (status = 'sending') IS TRUE"
)


def _record_sent(message: Message, esp_message_id: str, *, cursor) -> None:
    """One autocommitted UPDATE right after the server accepted the message (the crash window
    stays one message wide). The cursor binds on the server: Django's own cursors quote the
    values into the SQL, which PostgreSQL then parses afresh — twice its CPU per message.

    The statement is also prepared (once per connection: psycopg keeps it by its text), so
    PostgreSQL neither parses nor plans it for every message; its plan is a primary-key
    lookup whatever the values. It goes to psycopg's cursor under Django's error translation
    — Django's cursor wrapper cannot ask for a prepared statement."""
    with cursor.db.wrap_database_errors:
        cursor.cursor.execute(_SENT_SQL, [timezone.now(), esp_message_id, message.pk], prepare=True)


def _record_retry(message: Message, error: str) -> bool:
    """Back to the queue for a later attempt; True when that was the last one (failed)."""
    attempts = message.attempts + 1
    if attempts >= MAX_ATTEMPTS:
        _record_failed(message, f"Gave up after {attempts} attempts: {error}", attempts=attempts)
        return True
    Message.objects.filter(_status_is(Message.Status.SENDING), pk=message.pk).update(
        status=Message.Status.QUEUED,
        attempts=attempts,
        last_error=error[:2000],
        next_attempt_at=_within_window(message, timezone.now() + retry_delay(attempts)),
        claimed_at=None,
        enqueued_at=None,
    )
    return False


def _record_provider_throttled(messages: list[Message], throttled: ProviderThrottled) -> int:
    """Put the throttled message and the rest of its chunk (claimed, not tried) back in the
    queue until the provider's Retry-After, else `throttle_delay`; `attempts` is unchanged, so
    throttling never fails a message. Each remembers in `last_error` how many throttles in a
    row it has waited through, so the backoff grows while the throttling lasts. A server that
    could not be reached (`ProviderUnreachable`) waits the same way, its error in `last_error`."""
    times = 1 + max(_throttled_times(m.last_error) for m in messages)
    delay = throttled.retry_after if throttled.retry_after is not None else throttle_delay(times)
    until = timezone.now() + delay
    first_line = (str(throttled).splitlines() or [""])[0]
    unreachable = isinstance(throttled, ProviderUnreachable)
    if unreachable:
        why = _UNREACHABLE.format(times=times, error=first_line[:500])
    else:
        why = _THROTTLED.format(times=times)
    count = guards.messages_hold(holds={m.pk: (_within_window(m, until), why) for m in messages})
    logger.warning(
        "campaigns.send: %s; %d messages wait until %s: %s",
        "the email server could not be reached" if unreachable else "the provider throttled",
        count,
        until.isoformat(),
        first_line,
    )
    return count


def message_reached_candidate(*, message: Message, at: datetime) -> bool:
    """The ESP reports a delivery, open or click of an email that is back in the queue: its
    first try was accepted, but the worker was lost before recording it and the sweeper queued
    it again. The candidate has it, so it is recorded as sent (with its timeline entry, as the
    send would have) and never goes a second time. True when it was waiting in the queue."""
    changed = Message.objects.filter(pk=message.pk, status=Message.Status.QUEUED).update(
        status=Message.Status.SENT, sent_at=Coalesce(F("sent_at"), Value(at)), last_error=""
    )
    if changed:
        message.status = Message.Status.SENT
        _record_events(message.organization, sent=[message], failed=[], skipped=[])
    return bool(changed)


def _record_failed(message: Message, error: str, attempts: int | None = None) -> None:
    Message.objects.filter(_status_is(Message.Status.SENDING), pk=message.pk).update(
        status=Message.Status.FAILED,
        attempts=attempts or message.attempts + 1,
        last_error=error[:2000],
    )


def _record_skips(skipped: list[tuple[Message, str]], report: SendReport) -> None:
    by_reason: dict[str, list[int]] = defaultdict(list)
    stop: dict[str, list[int]] = defaultdict(list)
    for message, reason in skipped:
        by_reason[reason].append(message.pk)
        if message.enrollment_id and reason in _STOPPING:
            stop[_STOPPING[reason]].append(message.enrollment_id)
    for reason, ids in by_reason.items():
        Message.objects.filter(_status_is(Message.Status.SENDING), pk__in=ids).update(
            status=Message.Status.SKIPPED, skip_reason=reason
        )
        report.skipped += len(ids)
        report.skip_reasons[reason] = len(ids)
    for stop_reason, enrollment_ids in stop.items():
        Enrollment.objects.filter(pk__in=enrollment_ids).exclude(
            status=Enrollment.Status.STOPPED
        ).update(
            status=Enrollment.Status.STOPPED,
            stop_reason=stop_reason,
            finished_at=timezone.now(),
            next_run_at=None,
        )


def _record_bounce(organization, message: Message, error: str) -> None:
    """A hard bounce, recorded the moment the server refuses the address, in one transaction:
    the email `bounced`, the address suppressed, the enrollment stopped (with its entry on the
    candidate's timeline). Recorded at once, as a send is, so that a worker lost or a database
    connection dropped later in the chunk cannot leave the address unsuppressed and a sequence
    emailing it; a crash before the commit leaves the email `sending`, and its re-send bounces
    again. Bounces are rare: these few statements each cost nothing at the chunk's scale. Its
    engagement event is written after the chunk with the others' (`_record_events`)."""
    with transaction.atomic():
        Message.objects.filter(_status_is(Message.Status.SENDING), pk=message.pk).update(
            status=Message.Status.BOUNCED,
            attempts=message.attempts + 1,
            last_error=error[:2000],
        )
        Suppression.objects.bulk_create(
            [
                Suppression(
                    organization=organization,
                    email=message.to_email.lower(),
                    reason=Suppression.Reason.BOUNCED,
                    detail=error[:500],
                )
            ],
            ignore_conflicts=True,
        )
        if message.enrollment_id:
            enrollments_stop(  # also a broadcast's, done once its email was written
                organization_id=organization.pk,
                enrollment_ids=[message.enrollment_id],
                reason=Enrollment.StopReason.BOUNCED,
                also_done=True,
            )


# How many times the bookkeeping after a chunk is written when deletions keep getting in its way.
_RECORD_ATTEMPTS = 3


def _record_events(organization, *, sent, failed, skipped) -> None:
    """Engagement events and timeline entries, in bulk after the loop (the Message rows are
    the truth; these are derived and could be rebuilt from them).

    Only for the messages and candidates that still exist: deleting a candidate (bulk delete,
    erasure) while their chunk goes out deletes their messages too. What exists is read in the
    transaction that writes the entries; a deletion committed in between makes that
    transaction fail on a foreign key, and it is written again without the deleted rows — so a
    deletion never loses the other messages' records."""
    messages = [*sent, *failed, *(message for message, _ in skipped)]
    if not messages:
        return
    for attempt in range(1, _RECORD_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                existing = dict(  # message pk → its candidate now (None: deleted)
                    Message.objects.filter(pk__in=[m.pk for m in messages]).values_list(
                        "pk", "candidate_id"
                    )
                )
                _record_existing_events(
                    organization, existing, sent=sent, failed=failed, skipped=skipped
                )
            return
        except IntegrityError:
            if attempt == _RECORD_ATTEMPTS:
                logger.exception(
                    "campaigns.send: the events and timeline entries of %d messages were not"
                    " recorded (their Message rows are)",
                    len(messages),
                )


def _record_existing_events(organization, existing: dict, *, sent, failed, skipped) -> None:
    events = [
        *(_event(organization, m, "sent") for m in sent if not m.is_test),
        *(_event(organization, m, "failed") for m in failed),
        *(_event(organization, m, "skipped", data={"reason": why}) for m, why in skipped),
    ]
    for event in events:
        event["candidate_id"] = existing.get(event["message_id"])
    engagement_events_record_bulk(events=[e for e in events if e["candidate_id"]])
    by_campaign: dict[int, list[int]] = defaultdict(list)
    names = {}
    for message in sent:
        if existing.get(message.pk) and not message.is_test:
            by_campaign[message.campaign_id].append(existing[message.pk])
            names[message.campaign_id] = message.campaign.name
    for campaign_id, candidate_ids in by_campaign.items():
        activities_record_bulk(
            organization_id=organization.pk,
            candidate_ids=candidate_ids,
            kind=Activity.Kind.EMAIL_SENT,
            summary=f"Campaign email sent: {names[campaign_id]}",
            data={"campaign_id": campaign_id},
        )
        candidates_mark_contacted(candidate_ids=candidate_ids, at=timezone.now())


def _event(organization, message: Message, kind: str, data: dict | None = None) -> dict:
    return {
        "organization_id": organization.pk,
        "kind": kind,
        "candidate_id": message.candidate_id,
        "campaign_id": message.campaign_id,
        "message_id": message.pk,
        "data": data or {},
    }
