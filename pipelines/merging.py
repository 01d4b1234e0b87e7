"""What a candidate merge does to pools (registered as a merge hook in PipelinesConfig.ready).

Memberships of the secondary profile move to the primary (a `MergeMover`). Where both were in
the same pool the secondary's membership cannot move — the primary already has one — and it
would leave the merged-away profile on that board, counted twice. This hook takes those
leftovers off the boards (their stage history stays, pointing at the pool and the candidate)
and keeps what is needed to put them back if the merge is undone.
"""

from datetime import datetime

from django.utils.dateparse import parse_datetime

from pipelines.models import PoolMembership


def _stamp(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def pool_memberships_merge(primary, secondary) -> list[dict]:
    """Remove the secondary's remaining memberships; return them as JSON for undo."""
    leftovers = PoolMembership.objects.filter(
        organization_id=secondary.organization_id, candidate_id=secondary.pk
    )
    kept = [
        {
            "pool_id": membership.pool_id,
            "stage_id": membership.stage_id,
            "entered_stage_at": _stamp(membership.entered_stage_at),
            "added_at": _stamp(membership.added_at),
            "added_by_id": membership.added_by_id,
            "source": membership.source,
        }
        for membership in leftovers
    ]
    leftovers.delete()
    return kept


def pool_memberships_unmerge(primary, secondary, kept: list[dict] | None) -> None:
    """Give the secondary its memberships back, in the stages they were in."""
    PoolMembership.objects.bulk_create(
        [
            PoolMembership(
                organization_id=secondary.organization_id,
                candidate_id=secondary.pk,
                pool_id=row["pool_id"],
                stage_id=row["stage_id"],
                entered_stage_at=parse_datetime(row["entered_stage_at"]),
                added_at=parse_datetime(row["added_at"]),
                added_by_id=row["added_by_id"],
                source=row["source"],
            )
            for row in kept or []
        ],
        ignore_conflicts=True,
    )
