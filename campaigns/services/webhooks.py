"""ESP tracking events (delivered, bounced, complained, opened, clicked, unsubscribed) that
arrive through anymail's webhooks and its `tracking` signal.

anymail checks the request (basic auth from ANYMAIL["WEBHOOK_SECRET"], and the ESP's own
signature where it has one) before the signal fires; a bad request is a 400 and reaches none
of this code. An event is matched to its Message by the ESP's message id (or our Message-ID,
which some ESPs report), recorded once per (ESP, event id) — ESPs retry until they get a 2xx —
and written as an analytics.EngagementEvent and a timeline entry.

An event that finds no Message whose send is recorded — the ESP's webhook can arrive before
the send task's `sent` UPDATE has stored the ESP's message id, or while the Message is still
`sending` — is not dropped: it waits in PendingEspEvent and `esp_events_retry` (beat, every
minute) applies it once the send is recorded, so an early hard bounce still suppresses the
address and an early delivery still marks the email delivered.
"""

import hashlib
import json
import logging
from datetime import timedelta

from anymail.signals import AnymailTrackingEvent
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from analytics.services import engagement_event_record
from campaigns.conf import send_lease_seconds
from campaigns.models import EmailSettings, EspEvent, Message, PendingEspEvent, Suppression
from campaigns.services.enrollments import enrollment_stop
from campaigns.services.preferences import candidate_unsubscribe
from campaigns.services.sending import message_reached_candidate
from campaigns.services.tracking import machine_reason
from candidates.models import Activity
from candidates.services.activities import activity_record

logger = logging.getLogger(__name__)

# anymail's normalised event types that we act on → (EngagementEvent kind, Activity kind).
HANDLED = {
    "delivered": ("delivered", Activity.Kind.EMAIL_SENT),
    "bounced": ("bounced", Activity.Kind.EMAIL_BOUNCED),
    "complained": ("complained", Activity.Kind.UNSUBSCRIBED),
    "opened": ("opened", Activity.Kind.EMAIL_OPENED),
    "clicked": ("clicked", Activity.Kind.EMAIL_CLICKED),
    "unsubscribed": ("unsubscribed", Activity.Kind.UNSUBSCRIBED),
}


def event_key(event) -> str:
    """The ESP's event id, or (for ESPs without one on every event, e.g. Postmark's opens) a
    hash of the raw event, so a retried delivery of the same event gets the same key."""
    if event.event_id:
        return str(event.event_id)[:255]
    try:
        raw = json.dumps(event.esp_event, sort_keys=True, default=str)
    except (TypeError, ValueError):
        raw = "|".join(
            str(part)
            for part in (event.event_type, event.message_id, event.timestamp, event.recipient)
        )
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


def message_for_esp_id(esp_message_id: str) -> Message | None:
    if not esp_message_id:
        return None
    with scopes_disabled():
        return (
            Message.objects.select_related("organization", "campaign", "candidate", "enrollment")
            .filter(Q(esp_message_id=esp_message_id) | Q(message_id=esp_message_id))
            .filter(is_test=False)
            .first()
        )


def _machine_reason(*, message: Message, user_agent: str, at) -> str:
    """ESPs report the opens and clicks of privacy proxies (Apple Mail Privacy Protection's bare
    `Mozilla/5.0`, Google's image proxy) and link scanners too: the same signs as our own
    pixel and links (`tracking.machine_reason`), without the address, which anymail does not
    pass on. An event without a user agent is not held against the reader here: several ESPs
    leave it out of their events."""
    return machine_reason(
        user_agent=user_agent, ip="", sent_at=message.sent_at, at=at, agent_expected=False
    )


def pending_retry_for() -> timedelta:
    """How long an event that matched no recorded send is tried again: an hour, or three send
    leases when those are longer (a Message left `sending` by a lost worker is back in the queue
    one lease later)."""
    return max(timedelta(hours=1), 3 * timedelta(seconds=send_lease_seconds()))


def tracking_event_record(*, event, esp_name: str) -> str:
    """Record one anymail tracking event. Returns what happened: "recorded", "duplicate",
    "ignored" (a type we do not act on), "pending" (no Message whose send is recorded yet:
    kept for `esp_events_retry`) or "unmatched" (the event names no message)."""
    if event.event_type not in HANDLED:
        return "ignored"
    _as_text(event)
    if not event.message_id:
        logger.info("ESP event %s without a message id", event.event_type)
        return "unmatched"
    return _event_record(
        event=event,
        esp_name=esp_name,
        key=event_key(event),
        occurred_at=event.timestamp or timezone.now(),
    )


def _as_text(event) -> None:
    """The event's fields as we match and keep them: text, whatever an ESP passes on (anymail
    hands on its JSON's values as they are: a number, a list, an object where text belongs), and
    without NUL characters, which PostgreSQL cannot hold (not even to compare with)."""
    for name in ("message_id", "event_id", "recipient", *_KEPT):
        setattr(event, name, _text(getattr(event, name, None)))


def _text(value) -> str:
    """A number becomes its digits (an id may be one); anything else that is not text, "" (it
    names no email and says nothing we keep)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _event_record(*, event, esp_name: str, key: str, occurred_at, retry: bool = False) -> str:
    message = message_for_esp_id(event.message_id or "")
    if message is None or message.status == Message.Status.SENDING:
        # The ESP may report a delivery or a bounce before the send task's `sent` UPDATE has
        # stored its message id (or while the Message is still `sending`, when the ESP reports
        # our Message-ID): applied now it would be lost, or undone by that UPDATE. It waits.
        if not retry:
            _pending_store(event=event, esp_name=esp_name, key=key, occurred_at=occurred_at)
        return "pending"
    organization = message.organization
    switch = TRACKING_SWITCHES.get(event.event_type)
    if switch:
        with scope(organization=organization):
            if not _tracking_on(organization, switch):
                # The organisation switched open (or click) tracking off: the ESP's own pixel
                # or link tracking, if it has it on, is not counted either. The event still
                # shows the email reached the candidate (a copy waiting to go again after a
                # lost worker does not go).
                message_reached_candidate(message=message, at=occurred_at)
                return "ignored"
    with scope(organization=organization), transaction.atomic():
        try:
            with transaction.atomic():
                EspEvent.objects.create(
                    organization=organization,
                    esp=esp_name[:40],
                    event_id=key,
                    event_type=event.event_type,
                    message=message,
                    occurred_at=occurred_at,
                )
        except IntegrityError:
            return "duplicate"
        _apply(event=event, message=message, esp_name=esp_name, occurred_at=occurred_at)
    return "recorded"


# ESP events an organisation's tracking switches (EmailSettings) turn off.
TRACKING_SWITCHES = {"opened": "track_opens", "clicked": "track_clicks"}


def _tracking_on(organization, switch: str) -> bool:
    on = EmailSettings.objects.filter(organization=organization).values_list(switch, flat=True)
    return next(iter(on), True)  # no settings row yet: the defaults, on


# What `_apply` reads of an event besides its type, id and time (kept with a pending event).
_KEPT = ("mta_response", "description", "user_agent", "click_url")


def _pending_store(*, event, esp_name: str, key: str, occurred_at) -> None:
    logger.info("ESP event %s for %r waits for its message", event.event_type, event.message_id)
    PendingEspEvent.objects.bulk_create(
        [
            PendingEspEvent(
                esp=esp_name[:40],
                event_id=key,
                event_type=event.event_type,
                esp_message_id=(event.message_id or "")[:255],
                event={
                    "event_id": event.event_id or "",
                    **{name: getattr(event, name, None) or "" for name in _KEPT},
                },
                occurred_at=occurred_at,
            )
        ],
        ignore_conflicts=True,  # the ESP sent the same event again
    )


def esp_events_retry(*, now=None) -> int:
    """Apply the pending events whose Message's send is now recorded (beat, every minute), then
    drop those still waiting after `pending_retry_for()` (not ours, or their email was never
    recorded as sent). In that order: a round that runs late (beat or the email worker down for
    longer than that) still applies an early hard bounce first. Returns how many were applied."""
    now = now or timezone.now()
    applied, after = 0, 0
    while batch := list(PendingEspEvent.objects.filter(pk__gt=after).order_by("pk")[:1000]):
        after = batch[-1].pk
        ready = _recorded({pending.esp_message_id for pending in batch})
        for pending in batch:
            if pending.esp_message_id in ready:
                try:
                    applied += _pending_apply(pending)
                except Exception:  # one event that cannot be applied holds up no other
                    logger.exception("ESP event %s could not be applied", pending)
    expired = PendingEspEvent.objects.filter(received_at__lt=now - pending_retry_for())
    dropped, _ = expired.delete()
    if dropped:
        logger.info(
            "Dropped %d ESP events that matched none of our sent messages within %s",
            dropped,
            pending_retry_for(),
        )
    return applied


def _recorded(ids: set[str]) -> set[str]:
    """Which of these ids (the ESP's, or our Message-ID) name a Message no longer `sending`."""
    ids = ids - {""}
    with scopes_disabled():
        rows = (
            Message.objects.filter(Q(esp_message_id__in=ids) | Q(message_id__in=ids))
            .filter(is_test=False)
            .exclude(status=Message.Status.SENDING)
            .values_list("esp_message_id", "message_id")
        )
        return {value for row in rows for value in row} & ids


def _pending_apply(pending: PendingEspEvent) -> int:
    with transaction.atomic():
        # Locked, so that two retry rounds at once apply it once (the EspEvent would too).
        locked = PendingEspEvent.objects.select_for_update(skip_locked=True).filter(pk=pending.pk)
        if locked.first() is None:
            return 0
        event = AnymailTrackingEvent(
            event_type=pending.event_type,
            timestamp=pending.occurred_at,
            message_id=pending.esp_message_id,
            **{name: value or None for name, value in pending.event.items()},
        )
        _as_text(event)  # kept by an earlier version as the ESP sent it
        outcome = _event_record(
            event=event,
            esp_name=pending.esp,
            key=pending.event_id,
            occurred_at=pending.occurred_at,
            retry=True,
        )
        if outcome == "pending":  # sending again since `_recorded` looked: next round
            return 0
        pending.delete()
    return int(outcome == "recorded")


def _apply(*, event, message: Message, esp_name: str, occurred_at) -> None:
    kind, activity_kind = HANDLED[event.event_type]
    candidate = message.candidate
    data = {"esp": esp_name, "event_id": event.event_id or ""}
    is_machine, reason = False, ""
    summary = ""
    subject = message.subject
    if kind in ("delivered", "opened", "clicked"):
        # Waiting to go again after a lost worker? The candidate has it: it does not go twice.
        message_reached_candidate(message=message, at=occurred_at)
    if kind == "delivered":
        Message.objects.filter(pk=message.pk, status=Message.Status.SENT).update(
            status=Message.Status.DELIVERED
        )
        Message.objects.filter(pk=message.pk, delivered_at__isnull=True).update(
            delivered_at=occurred_at
        )
        summary = f"Email delivered: “{subject}”"
    elif kind == "bounced":
        detail = (event.mta_response or event.description or "")[:500]
        Message.objects.filter(pk=message.pk).update(
            status=Message.Status.BOUNCED, last_error=detail[:2000]
        )
        Suppression.objects.get_or_create(
            organization=message.organization,
            email=message.to_email.lower(),
            defaults={"reason": Suppression.Reason.BOUNCED, "detail": detail},
        )
        if message.enrollment is not None:
            enrollment_stop(enrollment=message.enrollment, reason="bounced")
        data["detail"] = detail
        summary = f"Email bounced: “{subject}”"
    elif kind == "complained":
        Message.objects.filter(pk=message.pk, complained_at__isnull=True).update(
            complained_at=occurred_at
        )
        Suppression.objects.update_or_create(
            organization=message.organization,
            email=message.to_email.lower(),
            defaults={"reason": Suppression.Reason.COMPLAINED, "detail": f"{esp_name} complaint"},
        )
        if message.enrollment is not None:
            enrollment_stop(enrollment=message.enrollment, reason="complained")
        summary = f"Marked “{subject}” as spam: unsubscribed"
    elif kind in ("opened", "clicked"):
        reason = _machine_reason(message=message, user_agent=event.user_agent or "", at=occurred_at)
        is_machine = bool(reason)
        field = "opened_at" if kind == "opened" else "clicked_at"
        first = False
        if not is_machine:
            first = (
                Message.objects.filter(pk=message.pk, **{f"{field}__isnull": True}).update(
                    **{field: occurred_at}
                )
                == 1
            )
        if event.click_url:
            data["url"] = event.click_url[:500]
        # Like our own tracking: only a person's first open/click goes on the timeline.
        if first:
            summary = (
                f"Opened “{subject}”" if kind == "opened" else f"Clicked a link in “{subject}”"
            )
    if kind == "unsubscribed" and candidate is not None:
        candidate_unsubscribe(
            candidate=candidate, message_id=message.pk, source=f"{esp_name} unsubscribe"
        )
        return
    engagement_event_record(
        organization_id=message.organization_id,
        kind=kind,
        candidate_id=message.candidate_id,
        campaign_id=message.campaign_id,
        message_id=message.pk,
        occurred_at=occurred_at,
        is_machine=is_machine,
        machine_reason=reason,
        data=data,
    )
    if candidate is not None and summary:
        activity_record(
            candidate=candidate,
            kind=activity_kind,
            summary=summary,
            data={"campaign_id": message.campaign_id, "message_id": message.pk, "esp": esp_name},
            occurred_at=occurred_at,
        )
    if candidate is not None and kind == "complained":
        candidate_unsubscribe(
            candidate=candidate, message_id=message.pk, source=f"{esp_name} complaint"
        )
