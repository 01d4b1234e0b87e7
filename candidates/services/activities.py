"""The one way to put something on a candidate's timeline. Every app writes through here; and
the one way to say we contacted a candidate ("last contacted")."""

import json
from datetime import datetime

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.utils import timezone

from candidates.models import Activity, Candidate, CandidateContact, Note
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
    or message logged; a sequence's task done): "last contacted" only ever moves forward.

    One statement for any number of candidates, into their CandidateContact rows (see there
    for why not a column of the candidate), in id order so that two concurrent callers lock
    shared rows in the same order. Returns how many candidates' time moved."""
    ids = sorted({int(pk) for pk in candidate_ids})
    if not ids:
        return 0
    table = CandidateContact._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} AS k (candidate_id, organization_id, last_contacted_at)
            SELECT id, organization_id, %s FROM {Candidate._meta.db_table}
            WHERE id = ANY(%s) ORDER BY id
            ON CONFLICT (candidate_id) DO UPDATE SET last_contacted_at = EXCLUDED.last_contacted_at
            WHERE k.last_contacted_at < EXCLUDED.last_contacted_at
            """,  # noqa: S608 - table names from the models
            [at, ids],
        )
        return cursor.rowcount


def candidate_last_contacted(candidate: Candidate) -> datetime | None:
    """When we last reached this candidate (None: never), read afresh."""
    return (
        CandidateContact.objects.filter(candidate_id=candidate.pk)
        .values_list("last_contacted_at", flat=True)
        .first()
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
