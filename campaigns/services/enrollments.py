"""Stopping one candidate's way through a campaign (replies, complaints, bounces…)."""

from django.utils import timezone

from campaigns.models import Enrollment


def enrollment_stop(*, enrollment: Enrollment, reason: str) -> bool:
    """Stop an active enrollment with `reason` (an Enrollment.StopReason). Returns False when
    it was not active (a stopped enrollment keeps its first reason)."""
    changed = (
        Enrollment.objects.filter(pk=enrollment.pk, status=Enrollment.Status.ACTIVE).update(
            status=Enrollment.Status.STOPPED,
            stop_reason=reason,
            finished_at=timezone.now(),
            next_run_at=None,
        )
        == 1
    )
    if changed:
        enrollment.refresh_from_db(fields=["status", "stop_reason", "finished_at", "next_run_at"])
    return changed
