"""The one way to write engagement events. Every app records through here."""

import json
from datetime import datetime

from django.utils import timezone

from analytics.models import EngagementEvent
from crm.db import server_bound


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


# One INSERT … SELECT over arrays, bound on the server (crm.db): `bulk_create` built a model
# instance per event and Django's cursor quoted every value into a statement PostgreSQL parsed
# afresh (in a profile of the send path, which writes a "sent" event per email, that cost more
# than writing the email's MIME).
EVENT_COLUMNS = (
    "organization_id",
    "kind",
    "candidate_id",
    "campaign_id",
    "message_id",
    "occurred_at",
    "is_machine",
    "machine_reason",
    "data",
    "source_key",
)
_BULK_INSERT = (
    "INSERT INTO analytics_engagementevent (organization_id, kind, candidate_id, campaign_id,"
    " message_id, occurred_at, is_machine, machine_reason, data, source_key)"
    " SELECT organization_id, kind, candidate_id, campaign_id, message_id, occurred_at,"
    " is_machine, machine_reason, data::jsonb, source_key"
    " FROM unnest(%b::bigint[], %b::text[], %b::bigint[], %b::bigint[], %b::bigint[],"
    " %b::timestamptz[], %b::boolean[], %b::text[], %b::text[], %b::text[])"
    " AS event (organization_id, kind, candidate_id, campaign_id, message_id, occurred_at,"
    " is_machine, machine_reason, data, source_key)"
    " ON CONFLICT DO NOTHING"
)


def engagement_events_insert(rows: list[tuple]) -> None:
    """Write event rows, each a tuple of EVENT_COLUMNS' values (`data` as JSON text), in one
    statement. A row whose non-empty `source_key` its organisation already has is skipped
    (the tracking flush writes a batch again after a crash); rows without one never conflict."""
    if rows:
        server_bound(_BULK_INSERT, [list(column) for column in zip(*rows, strict=True)])


def engagement_events_record_bulk(*, events: list[dict]) -> int:
    """Many events in one INSERT; each dict takes the keyword arguments of
    `engagement_event_record`."""
    now = timezone.now()
    engagement_events_insert(
        [
            (
                event["organization_id"],
                event["kind"],
                event.get("candidate_id"),
                event.get("campaign_id"),
                event.get("message_id"),
                event.get("occurred_at") or now,
                event.get("is_machine", False),
                event.get("machine_reason", "")[:64],
                json.dumps(event.get("data") or {}),
                "",
            )
            for event in events
        ]
    )
    return len(events)
