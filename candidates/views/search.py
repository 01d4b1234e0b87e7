from django.shortcuts import render

from candidates.models import Candidate


def candidate_list(request, org_slug):
    candidates = (
        Candidate.objects.live().select_related("owner").order_by("-created_at", "-id")[:50]
    )
    return render(request, "candidates/candidate_list.html", {"candidates": candidates})
