"""Reusable tenant-scoped reads: views load objects through these, and get a 404 for anything
that is not the current organisation's (the same answer for missing and foreign)."""

from django.shortcuts import get_object_or_404

from candidates.models import Candidate, Job


def candidate_get(*, organization, candidate_id: int) -> Candidate:
    return get_object_or_404(
        Candidate.objects.live().select_related("owner"),
        organization=organization,
        pk=candidate_id,
    )


def job_get(*, organization, job_id: int) -> Job:
    return get_object_or_404(Job, organization=organization, pk=job_id)
