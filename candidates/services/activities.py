"""The one way to put something on a candidate's timeline. Every app writes through here."""

from datetime import datetime

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
) -> int:
    """One timeline entry for each of many candidates, written in one statement."""
    now = timezone.now()
    rows = [
        Activity(
            organization_id=organization_id,
            candidate_id=candidate_id,
            kind=kind,
            summary=summary[:500],
            actor=actor,
            data=data or {},
            occurred_at=now,
        )
        for candidate_id in candidate_ids
    ]
    Activity.objects.bulk_create(rows, batch_size=2000)
    return len(rows)
