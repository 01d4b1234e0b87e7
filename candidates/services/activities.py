"""The one way to put something on a candidate's timeline. Every app writes through here."""

import json
from datetime import datetime

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.utils import timezone

from candidates.models import Activity, Candidate, Note
from crm.models import User


def activity_record(
    *,
    candidate: Candidate,
    kind: str,
    summary: str = "",
    actor: User | None = None,
    data: dict | None = None,
    note: Note | None = None,
    occurred_at: datetime | None = None,
) -> Activity:
    return Activity.objects.create(
        organization_id=candidate.organization_id,
        candidate=candidate,
        kind=kind,
        summary=summary[:500],
        actor=actor,
        data=data or {},
        note=note,
        occurred_at=occurred_at or timezone.now(),
    )


def activities_record_bulk(
    *,
    organization_id: int,
    candidate_ids: list[int],
    kind: str,
    summary: str = "",
    actor: User | None = None,
    data: dict | None = None,
    occurred_at: datetime | None = None,
) -> int:
    """One timeline entry for each of many candidates, written by one INSERT … SELECT over an
    array of ids: no model instance per row (300,000 entries of a smart pool took 57 s through
    `bulk_create`, a few seconds this way). Returns how many were written."""
    if not candidate_ids:
        return 0
    table = Activity._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table}
                (organization_id, candidate_id, kind, summary, actor_id, data, occurred_at)
            SELECT %s, candidate_id, %s, %s, %s, %s::jsonb, %s
            FROM unnest(%s::bigint[]) AS entry (candidate_id)
            """,  # noqa: S608 - table name from the model, values are parameters
            [
                organization_id,
                kind,
                summary[:500],
                actor.pk if actor else None,
                json.dumps(data or {}, cls=DjangoJSONEncoder),
                occurred_at or timezone.now(),
                list(candidate_ids),
            ],
        )
        return cursor.rowcount
