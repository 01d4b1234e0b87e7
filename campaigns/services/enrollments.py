"""Stopping one candidate's way through a campaign (replies, complaints, bounces…)."""

from datetime import datetime

from campaigns.models import Enrollment


def enrollment_stop(*, enrollment: Enrollment, reason: str, now: datetime | None = None) -> bool:
    """Stop an active enrollment with `reason` (an Enrollment.StopReason), or a finished one
    whose last email still waits in the outbox. Returns False when there was nothing to stop
    (a stopped enrollment keeps its first reason). `now`: when it ended
    (default: now; a reply ends it when the reply was received). Goes through
    sequences.enrollments_stop, so the stop is also on the candidate's timeline."""
    from campaigns.services.sequences import enrollments_stop

    changed = (
        enrollments_stop(
            organization_id=enrollment.organization_id,
            enrollment_ids=[enrollment.pk],
            reason=reason,
            now=now,
        )
        == 1
    )
    if changed:
        enrollment.refresh_from_db(fields=["status", "stop_reason", "finished_at", "next_run_at"])
    return changed
