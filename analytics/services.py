"""The one way to write engagement events. Every app records through here."""

import json
from datetime import datetime

import psycopg
from django.db import connection
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


# One INSERT … SELECT over arrays, bound on the server: `bulk_create` built a model instance
# per event and Django's cursor quoted every value into a statement PostgreSQL parsed afresh
# (in a profile of the send path, which writes a "sent" event per email, that cost more than
# writing the email's MIME).
_BULK_INSERT = (
    "INSERT INTO analytics_engagementevent (organization_id, kind, candidate_id, campaign_id,"
    " message_id, occurred_at, is_machine, machine_reason, data, source_key)"
    " SELECT organization_id, kind, candidate_id, campaign_id, message_id, occurred_at,"
    " is_machine, machine_reason, data::jsonb, ''"
    " FROM unnest(%s::bigint[], %s::text[], %s::bigint[], %s::bigint[], %s::bigint[],"
    " %s::timestamptz[], %s::boolean[], %s::text[], %s::text[])"
    " AS event (organization_id, kind, candidate_id, campaign_id, message_id, occurred_at,"
    " is_machine, machine_reason, data)"
)


def engagement_events_record_bulk(*, events: list[dict]) -> int:
    """Many events in one INSERT; each dict takes the keyword arguments of
    `engagement_event_record`."""
    if not events:
        return 0
    now = timezone.now()
    columns = [[] for _ in range(9)]
    for event in events:
        for column, value in zip(
            columns,
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
            ),
            strict=True,
        ):
            column.append(value)
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_BULK_INSERT, columns)
    return len(events)
