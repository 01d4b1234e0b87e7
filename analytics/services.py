"""The one way to write engagement events. Every app records through here."""

from datetime import datetime

from django.utils import timezone

from analytics.models import EngagementEvent


def engagement_event_record(
    *,
    organization_id: int,
    kind: str,
    candidate_id: int | None = None,
    campaign_id: int | None = None,
    message_id: int | None = None,
    occurred_at: datetime | None = None,
    is_machine: bool = False,
    machine_reason: str = "",
    data: dict | None = None,
) -> EngagementEvent:
    return EngagementEvent.objects.create(
        organization_id=organization_id,
        kind=kind,
        candidate_id=candidate_id,
        campaign_id=campaign_id,
        message_id=message_id,
        occurred_at=occurred_at or timezone.now(),
        is_machine=is_machine,
        machine_reason=machine_reason[:64],
        data=data or {},
    )


def engagement_events_record_bulk(*, events: list[dict]) -> int:
    """Many events in one INSERT; each dict takes the keyword arguments of
    `engagement_event_record`."""
    now = timezone.now()
    rows = [
        EngagementEvent(
            organization_id=event["organization_id"],
            kind=event["kind"],
            candidate_id=event.get("candidate_id"),
            campaign_id=event.get("campaign_id"),
            message_id=event.get("message_id"),
            occurred_at=event.get("occurred_at") or now,
            is_machine=event.get("is_machine", False),
            machine_reason=event.get("machine_reason", "")[:64],
            data=event.get("data") or {},
        )
        for event in events
    ]
    EngagementEvent.objects.bulk_create(rows, batch_size=2000)
    return len(rows)
