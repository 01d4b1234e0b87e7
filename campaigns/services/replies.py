"""Inbound email (anymail's `inbound` signal).

An email to a campaign email's mailto: List-Unsubscribe address (`unsubscribe+<token>@…`,
RFC 2369) unsubscribes the candidate its signed token names, whatever it says: mail clients
without RFC 8058 one-click send such an email when the reader presses "Unsubscribe".

Anything else may be a reply: match it to the campaign Message it answers, keep only what the
candidate wrote, tell auto-replies from real ones, and for a real reply record it and stop the
candidate's enrollment.

Matching: the `In-Reply-To` and `References` headers name our Message-ID (stored on every
Message); when a mail client drops them, the per-message reply address
`reply+<signed token>@CAMPAIGNS_REPLY_DOMAIN` (added to Reply-To when that setting is set)
still names the message.
"""

import hashlib
import re
from email.utils import getaddresses, parsedate_to_datetime

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.html import strip_tags
from django_scopes import scope, scopes_disabled
from mailparser_reply import EmailReplyParser

from analytics.services import engagement_event_record
from campaigns.conf import setting
from campaigns.models import Enrollment, InboundEmail, Message
from campaigns.services import preferences, tokens
from campaigns.services.enrollments import enrollment_stop
from candidates.models import Activity
from candidates.services.activities import activity_record

REPLY_SALT = "campaigns.reply"
REPLY_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pl", "sv", "da", "cs"]
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_REPLY_ADDRESS = re.compile(r"^reply\+([A-Za-z0-9._-]+)@", re.IGNORECASE)
_UNSUBSCRIBE_ADDRESS = re.compile(r"^unsubscribe\+([A-Za-z0-9._-]+)@", re.IGNORECASE)

# Subjects of out-of-office and other automatic answers, in several languages (lower case).
AUTO_REPLY_SUBJECTS = (
    "out of office",
    "out of the office",
    "automatic reply",
    "auto reply",
    "auto-reply",
    "autoreply",
    "auto response",
    "autoresponse",
    "away from the office",
    "on vacation",
    "on leave",
    "abwesenheitsnotiz",
    "abwesend",
    "automatische antwort",
    "réponse automatique",
    "reponse automatique",
    "absence du bureau",
    "absent du bureau",
    "respuesta automática",
    "respuesta automatica",
    "fuera de la oficina",
    "risposta automatica",
    "fuori ufficio",
    "automatisch antwoord",
    "afwezig",
    "resposta automática",
    "ausente do escritório",
    "fora do escritório",
    "autosvar",
    "frånvaro",
    "fraværende",
    "automatyczna odpowiedź",
    "poza biurem",
    "automatická odpověď",
    "自动回复",
    "自動返信",
    "不在",
)


def reply_domain() -> str:
    return setting("CAMPAIGNS_REPLY_DOMAIN", "")


def unsubscribe_mailto(*, token: str, domain: str) -> str:
    """The mailto: List-Unsubscribe address of a campaign email. On CAMPAIGNS_REPLY_DOMAIN
    when it is set: that domain's mail already reaches the inbound webhook (docs/operations.md),
    so these requests arrive here (`inbound_receive`); otherwise on `domain`, the sender's."""
    return f"mailto:unsubscribe+{token}@{reply_domain() or domain}"


def reply_address_for(message: Message) -> str:
    """`reply+<token>@<CAMPAIGNS_REPLY_DOMAIN>` for a candidate's message, or "" when no reply
    domain is configured (or for test sends)."""
    domain = reply_domain()
    if not domain or not message.candidate_id or message.is_test:
        return ""
    token = tokens.token_make(
        salt=REPLY_SALT,
        organization_id=message.organization_id,
        candidate_id=message.candidate_id,
        message_id=message.pk,
    )
    return f"reply+{token}@{domain}"


def auto_reply_reason(email_message) -> str:
    """Why this email is an automatic answer ("" for a person's reply): RFC 3834
    Auto-Submitted (anything but "no"), X-Autoreply / X-Autorespond, Precedence
    auto_reply/bulk/junk/list, or an out-of-office subject."""
    auto_submitted = (email_message.get("Auto-Submitted") or "").strip().lower()
    if auto_submitted and auto_submitted.split(";")[0].strip() != "no":
        return f"Auto-Submitted: {auto_submitted[:60]}"
    for header in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Auto-Reply"):
        if email_message.get(header) is not None:
            return header
    precedence = (email_message.get("Precedence") or "").strip().lower()
    if precedence in ("auto_reply", "bulk", "junk", "list"):
        return f"Precedence: {precedence}"
    if (email_message.get("X-Auto-Response-Suppress") or "").strip().lower() in ("all", "oof"):
        return "X-Auto-Response-Suppress"
    subject = " ".join((email_message.get("Subject") or "").lower().split())
    for marker in AUTO_REPLY_SUBJECTS:
        if marker in subject:
            return f"subject: {marker}"
    return ""


def reply_text(full_text: str) -> str:
    """What the person wrote: without the quoted message and without the signature."""
    if not full_text.strip():
        return ""
    parsed = EmailReplyParser(languages=REPLY_LANGUAGES).read(text=full_text)
    if parsed.replies:
        body = (parsed.replies[0].body or "").strip()
        if body:
            return body
    return full_text.strip()


def _text(value) -> str:
    """Text of an email as we read and keep it: without NUL characters, which some mailers
    send and PostgreSQL cannot hold (not even to compare with)."""
    return str(value or "").replace("\x00", "")


def _referenced_ids(email_message) -> list[str]:
    ids = []
    for header in ("In-Reply-To", "References"):
        for value in email_message.get_all(header) or []:
            ids.extend(_MESSAGE_ID.findall(_text(value)))
    return ids


def _recipients(email_message) -> list[str]:
    values = []
    for header in ("To", "Cc", "Delivered-To", "X-Original-To"):
        values.extend(_text(v) for v in email_message.get_all(header) or [])
    envelope = getattr(email_message, "envelope_recipient", None)
    if envelope:
        values.append(_text(envelope))
    return [address for _, address in getaddresses(values) if address]


def message_for_inbound(email_message) -> Message | None:
    with scopes_disabled():
        ids = _referenced_ids(email_message)
        if ids:
            found = (
                Message.objects.select_related(
                    "organization", "campaign", "candidate", "enrollment"
                )
                .filter(message_id__in=ids, is_test=False)
                .first()
            )
            if found is not None:
                return found
        for address in _recipients(email_message):
            match = _REPLY_ADDRESS.match(address)
            content = tokens.token_read(match.group(1), salt=REPLY_SALT) if match else None
            if content is None:
                continue
            # The message in the token's organisation, whichever candidate it belongs to now
            # (none: the candidate was deleted): the signed token makes its id authentic, and a
            # merge since it was sent moved it from the merged-away profile to the surviving one.
            found = (
                Message.objects.select_related(
                    "organization", "campaign", "candidate", "enrollment"
                )
                .filter(
                    organization_id=content.organization_id,
                    pk=content.message_id,
                    candidate__isnull=False,
                )
                .first()
            )
            if found is not None:
                return found
    return None


def _inbound_id(email_message, full_text: str) -> str:
    header = _text(email_message.get("Message-ID")).strip()
    if header:
        return header[:255]
    raw = "|".join(
        [
            str(email_message.get("From")),
            str(email_message.get("Date")),
            email_message.get("Subject") or "",
            full_text,
        ]
    )
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


def _received_at(email_message):
    try:
        when = parsedate_to_datetime(email_message.get("Date"))
    except (TypeError, ValueError, IndexError):
        return timezone.now()
    if when is None or timezone.is_naive(when):
        return timezone.now()
    return min(when, timezone.now())


def _full_text(email_message) -> str:
    text = getattr(email_message, "text", None)
    if text:
        return _text(text)
    html = getattr(email_message, "html", None)
    return strip_tags(_text(html)) if html else ""


def inbound_receive(*, message, esp_name: str = "") -> None:
    """Everything anymail's inbound webhook hands us: an unsubscribe request, or else perhaps a
    reply."""
    if inbound_unsubscribe(message=message):
        return
    inbound_email_record(message=message, esp_name=esp_name)


def inbound_unsubscribe(*, message) -> bool:
    """Unsubscribe the candidate named by an `unsubscribe+<token>@` recipient of an inbound
    email. True when the email was such a request with a valid token (already unsubscribed
    included: nothing changes twice); a forged, expired or foreign token changes nothing."""
    for address in _recipients(message):
        match = _UNSUBSCRIBE_ADDRESS.match(address)
        found = preferences.candidate_from_token(match.group(1)) if match else None
        if found is None:
            continue
        organization, candidate, message_id = found
        with scope(organization=organization):
            preferences.candidate_unsubscribe(
                candidate=candidate, message_id=message_id, source="mailto"
            )
        return True
    return False


def inbound_email_record(*, message, esp_name: str = "") -> InboundEmail | None:
    """Record an inbound email (an anymail AnymailInboundMessage, or any email.message.Message
    with `text`/`html`). None when it answers none of our messages or was seen before."""
    campaign_message = message_for_inbound(message)
    if campaign_message is None:
        return None
    full_text = _full_text(message)
    reason = _text(auto_reply_reason(message))
    text = reply_text(full_text)
    from_header = _text(message.get("From"))
    addresses = getaddresses([from_header])
    from_email = addresses[0][1] if addresses and addresses[0][1] else from_header
    received_at = _received_at(message)
    organization = campaign_message.organization
    with scope(organization=organization), transaction.atomic():
        try:
            with transaction.atomic():
                inbound = InboundEmail.objects.create(
                    organization=organization,
                    message=campaign_message,
                    candidate=campaign_message.candidate,
                    email_message_id=_inbound_id(message, full_text),
                    from_email=from_email[:320],
                    subject=_text(message.get("Subject"))[:998],
                    text=text,
                    full_text=full_text,
                    is_auto_reply=bool(reason),
                    auto_reply_reason=reason[:100],
                    received_at=received_at,
                )
        except IntegrityError:
            return None  # the same email delivered twice
        if reason:
            _record_auto_reply(inbound=inbound, message=campaign_message)
        else:
            _record_reply(inbound=inbound, message=campaign_message, esp_name=esp_name)
    return inbound


def _record_auto_reply(*, inbound: InboundEmail, message: Message) -> None:
    """An out-of-office or other automatic answer: on the timeline (recruiters want to know
    someone is away until March), but not a reply — no reply event, no replied_at, and the
    sequence goes on."""
    if message.candidate is None:
        return
    activity_record(
        candidate=message.candidate,
        kind=Activity.Kind.EMAIL_AUTO_REPLIED,
        summary=f"Automatic reply to “{message.subject}”: {inbound.text}"[:500],
        data={
            "campaign_id": message.campaign_id,
            "message_id": message.pk,
            "inbound_email_id": inbound.pk,
            "reason": inbound.auto_reply_reason,
            "subject": inbound.subject[:300],
            "text": inbound.text[:10000],
        },
        occurred_at=inbound.received_at,
    )


def _record_reply(*, inbound: InboundEmail, message: Message, esp_name: str) -> None:
    Message.objects.filter(pk=message.pk, replied_at__isnull=True).update(
        replied_at=inbound.received_at
    )
    engagement_event_record(
        organization_id=message.organization_id,
        kind="replied",
        candidate_id=message.candidate_id,
        campaign_id=message.campaign_id,
        message_id=message.pk,
        occurred_at=inbound.received_at,
        data={"inbound_email_id": inbound.pk, "esp": esp_name},
    )
    if message.candidate is not None:
        activity_record(
            candidate=message.candidate,
            kind=Activity.Kind.EMAIL_REPLIED,
            summary=f"Replied to “{message.subject}”: {inbound.text}"[:500],
            data={
                "campaign_id": message.campaign_id,
                "message_id": message.pk,
                "inbound_email_id": inbound.pk,
                "text": inbound.text[:10000],
            },
            occurred_at=inbound.received_at,
        )
    if message.enrollment is not None:
        enrollment_stop(
            enrollment=message.enrollment,
            reason=Enrollment.StopReason.REPLIED,
            now=inbound.received_at,
        )
