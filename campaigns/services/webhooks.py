"""ESP tracking events (delivered, bounced, complained, opened, clicked, unsubscribed) that
arrive through anymail's webhooks and its `tracking` signal.

anymail checks the request (basic auth from ANYMAIL["WEBHOOK_SECRET"], and the ESP's own
signature where it has one) before the signal fires; a bad request is a 400 and reaches none
of this code. An event is matched to its Message by the ESP's message id (or our Message-ID,
which some ESPs report), recorded once per (ESP, event id) — ESPs retry until they get a 2xx —
and written as an analytics.EngagementEvent and a timeline entry.
"""

import hashlib
import json
import logging

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from analytics.services import engagement_event_record
from campaigns.models import EspEvent, Message, Suppression
from campaigns.services.enrollments import enrollment_stop
from campaigns.services.preferences import candidate_unsubscribe
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


def tracking_event_record(*, event, esp_name: str) -> str:
    """Record one anymail tracking event. Returns what happened: "recorded", "duplicate",
    "ignored" (a type we do not act on) or "unmatched" (not one of our messages)."""
    if event.event_type not in HANDLED:
        return "ignored"
    message = message_for_esp_id(event.message_id or "")
    if message is None:
        logger.info("ESP event %s for unknown message %r", event.event_type, event.message_id)
        return "unmatched"
    organization = message.organization
    occurred_at = event.timestamp or timezone.now()
    with scope(organization=organization), transaction.atomic():
        try:
            with transaction.atomic():
                EspEvent.objects.create(
                    organization=organization,
                    esp=esp_name[:40],
                    event_id=event_key(event),
                    event_type=event.event_type,
                    message=message,
                    occurred_at=occurred_at,
                )
        except IntegrityError:
            return "duplicate"
        _apply(event=event, message=message, esp_name=esp_name, occurred_at=occurred_at)
    return "recorded"


def _apply(*, event, message: Message, esp_name: str, occurred_at) -> None:
    kind, activity_kind = HANDLED[event.event_type]
    candidate = message.candidate
    data = {"esp": esp_name, "event_id": event.event_id or ""}
    is_machine, reason = False, ""
    summary = ""
    subject = message.subject
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
