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
from email.errors import HeaderParseError
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
_LINE_BREAKS = re.compile(r"\r\n|\r|\n")
# "Re:", "Fwd:", "AW:", "SV:"… in front of the subject of the email answered.
_REPLY_PREFIXES = re.compile(
    r"^(?:\s*(?:re|fwd?|aw|wg|sv|vs|antw|odp|tr|rif|r|回复|答复|转发)\s*[:：])+\s*",
    re.IGNORECASE,
)
# mailparser_reply's expressions take quadratic or cubic time on some text (a run of blank
# lines; long lines like "Am Am Am … schrieb schrieb …"), and it runs in the inbound webhook's
# request: it reads the first REPLY_PARSE_LIMIT characters of a reply, at most two blank lines
# in a row, and lines cut to REPLY_PARSE_LINE_LIMIT characters (longer than a quote header
# such as "On 5 Jan 2026, Rex <rex@acme.example> wrote:"). 200 KB of the worst text found
# takes ~0.2 s; it took hours.
REPLY_PARSE_LIMIT = 20_000
REPLY_PARSE_LINE_LIMIT = 200
_BLANK_LINES = re.compile(r"\n{4,}")

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


def _words(value) -> str:
    return " ".join(str(value or "").lower().split())


def auto_reply_reason(email_message, *, original_subject: str = "") -> str:
    """Why this email is an automatic answer ("" for a person's reply): RFC 3834
    Auto-Submitted (anything but "no"), X-Autoreply / X-Autorespond, Precedence
    auto_reply/bulk/junk/list, or an out-of-office subject.

    Only what the replier put in the subject counts, not the subject they answer
    (`original_subject`, the campaign email's): "Re: Questions on leave policy" is a person's
    reply, "Out of office: Re: Questions on leave policy" is not."""
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
    subject = _REPLY_PREFIXES.sub("", _words(email_message.get("Subject")))
    original = _REPLY_PREFIXES.sub("", _words(original_subject))
    if original:
        subject = subject.replace(original, "\n")
    for marker in AUTO_REPLY_SUBJECTS:
        if marker in subject:
            return f"subject: {marker}"
    return ""


def reply_text(full_text: str) -> str:
    """What the person wrote: without the quoted message and without the signature.

    The parser reads the first REPLY_PARSE_LIMIT characters, with runs of blank lines cut to
    two and lines cut to REPLY_PARSE_LINE_LIMIT characters (see above); the lines it keeps
    come back whole."""
    if not full_text.strip():
        return ""
    lines, cut_lines = [], {}
    for line in full_text[:REPLY_PARSE_LIMIT].replace("\r\n", "\n").split("\n"):
        line = line.strip()  # as the parser does
        if len(line) > REPLY_PARSE_LINE_LIMIT:
            cut = line[:REPLY_PARSE_LINE_LIMIT].rstrip()
            cut_lines.setdefault(cut, []).append(line)
            line = cut
        lines.append(line)
    text = _BLANK_LINES.sub("\n\n\n", "\n".join(lines))
    parsed = EmailReplyParser(languages=REPLY_LANGUAGES).read(text=text)
    if parsed.replies:
        body = (parsed.replies[0].body or "").strip()
        if body:
            kept = []
            for line in body.split("\n"):
                whole = cut_lines.get(line)
                kept.append(whole.pop(0) if whole else line)
            return "\n".join(kept)
    return full_text.strip()


def _text(value) -> str:
    """Text of an email as we read and keep it: without NUL characters, which some mailers
    send and PostgreSQL cannot hold (not even to compare with)."""
    return str(value or "").replace("\x00", "")


def _raw_headers(email_message, name: str) -> list[str]:
    """A header's values as the sender wrote them (unfolded). Python's email package parses
    address and Message-ID headers when they are read (`get`, `get_all`), and a malformed one
    makes that raise (`To: a@[1.2.3`: AttributeError; `Message-ID: <a@[`: UnboundLocalError)
    — a 500 that the ESP retries until it gives up, and the reply or unsubscribe request in
    the email lost. Bytes beyond ASCII (which the parser keeps as surrogate escapes) read as
    UTF-8."""
    name = name.lower()
    values = []
    for key, value in email_message.raw_items():
        if key.lower() == name:
            text = _LINE_BREAKS.sub("", str(value))
            try:
                text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            except UnicodeEncodeError:
                text = text.encode("utf-8", "replace").decode("utf-8")
            values.append(_text(text))
    return values


def _raw_header(email_message, name: str) -> str:
    values = _raw_headers(email_message, name)
    return values[0] if values else ""


def _parsed_addresses(value: str) -> list[tuple[str, str]]:
    try:
        return getaddresses([value])
    except (HeaderParseError, AttributeError, IndexError, ValueError):
        return []


def _referenced_ids(email_message) -> list[str]:
    ids = []
    for header in ("In-Reply-To", "References"):
        for value in _raw_headers(email_message, header):
            ids.extend(_MESSAGE_ID.findall(value))
    return ids


def _recipients(email_message) -> list[str]:
    """The addresses an inbound email was sent to, for the signed reply and unsubscribe tokens
    among them. A malformed address can swallow the rest of its header (`a@[1.2.3, b@c.example`
    reads as one domain literal), so each comma-separated part is read on its own as well;
    what cannot be read is skipped."""
    values = []
    for header in ("To", "Cc", "Delivered-To", "X-Original-To"):
        values.extend(_raw_headers(email_message, header))
    envelope = getattr(email_message, "envelope_recipient", None)
    if envelope:
        values.append(_text(envelope))
    addresses = {}
    for value in values:
        for part in [value, *value.split(",")]:
            for _, address in _parsed_addresses(part):
                if address:
                    addresses[address] = None
    return list(addresses)


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
    header = _raw_header(email_message, "Message-ID").strip()
    if header:
        return header[:255]
    raw = "|".join(
        [
            _raw_header(email_message, "From"),
            _raw_header(email_message, "Date"),
            email_message.get("Subject") or "",
            full_text,
        ]
    )
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


def _received_at(email_message):
    try:
        when = parsedate_to_datetime(_raw_header(email_message, "Date"))
    except (TypeError, ValueError, IndexError, OverflowError):
        return timezone.now()
    if when is None or timezone.is_naive(when):
        return timezone.now()
    return min(when, timezone.now())


def _body(email_message, content_type: str) -> str:
    """The first `content_type` part that is not an attachment, decoded: anymail's `text` and
    `html`, except that a charset Python has no codec for (RFC 1428's "unknown-8bit", a typo)
    reads as UTF-8, or as Latin-1 when it is not UTF-8, instead of raising LookupError."""
    for part in email_message.walk():
        if part.get_content_type() != content_type or part.is_attachment():
            continue
        payload = part.get_payload(decode=True) or b""
        try:
            text = payload.decode(part.get_content_charset("us-ascii"), errors="replace")
        except (LookupError, UnicodeError):
            try:
                text = payload.decode("utf-8")
            except UnicodeDecodeError:
                text = payload.decode("latin-1")
        return _LINE_BREAKS.sub("\n", text)
    return ""


def _full_text(email_message) -> str:
    text = _body(email_message, "text/plain")
    if text:
        return _text(text)
    html = _body(email_message, "text/html")
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
    """Record an inbound email (an anymail AnymailInboundMessage, or any
    email.message.EmailMessage). None when it answers none of our messages or was seen
    before."""
    campaign_message = message_for_inbound(message)
    if campaign_message is None:
        return None
    full_text = _full_text(message)
    reason = _text(auto_reply_reason(message, original_subject=campaign_message.subject))
    text = reply_text(full_text)
    from_header = _raw_header(message, "From")
    addresses = _parsed_addresses(from_header)
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
