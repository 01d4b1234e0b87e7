"""The one way to put something on a candidate's timeline. Every app writes through here; and
the one way to say we contacted a candidate ("last contacted")."""

import json
from datetime import datetime

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.db.models import Q
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


def candidates_mark_contacted(*, candidate_ids, at: datetime) -> int:
    """Record that we reached these candidates at `at` (a campaign email sent; a call, meeting
    or message logged; a sequence's task done): "last contacted" only ever moves forward."""
    return (
        Candidate.objects.filter(pk__in=candidate_ids)
        .filter(Q(last_contacted_at__isnull=True) | Q(last_contacted_at__lt=at))
        .update(last_contacted_at=at)
    )


def activities_insert_sql(
    *,
    organization_id: int,
    candidates_from: str,
    kind: str,
    summary: str = "",
    actor: User | None = None,
    data: dict | None = None,
    occurred_at: datetime | None = None,
) -> tuple[str, list]:
    """The INSERT … SELECT that gives one timeline entry to each candidate of a relation with a
    `candidate_id` column (`candidates_from`: a table, a CTE's name, `unnest(…) AS e
    (candidate_id)`), with its parameters — for a writer that puts it in its own statement, e.g.
    as one part of a data-modifying WITH whose other parts write the rows the entries are about
    (a smart pool's memberships and their entries in one pass)."""
    sql = f"""
        INSERT INTO {Activity._meta.db_table}
            (organization_id, candidate_id, kind, summary, actor_id, data, occurred_at)
        SELECT %s, candidate_id, %s, %s, %s, %s::jsonb, %s FROM {candidates_from}
    """  # noqa: S608 - table name from the model, the relation from the caller's own SQL
    params = [
        organization_id,
        kind,
        summary[:500],
        actor.pk if actor else None,
        json.dumps(data or {}, cls=DjangoJSONEncoder),
        occurred_at or timezone.now(),
    ]
    return sql, params


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
    sql, params = activities_insert_sql(
        organization_id=organization_id,
        candidates_from="unnest(%s::bigint[]) AS entry (candidate_id)",
        kind=kind,
        summary=summary,
        actor=actor,
        data=data,
        occurred_at=occurred_at,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, list(candidate_ids)])
        return cursor.rowcount
