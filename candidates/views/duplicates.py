"""Duplicate review and merging.

* the review page lists open suggestions, both profiles side by side (every member reads it;
  recruiters act on it);
* "Not a duplicate" dismisses a pair for good; "Scan now" queues an organisation-wide scan;
* the merge screen asks, for each field on which the two profiles differ, which value to keep;
* undo puts both profiles back exactly as they were.
"""

import django_filters
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from candidates.forms import MergeForm, MergeTargetForm
from candidates.models import Activity, Attachment, DuplicateSuggestion, Note
from candidates.selectors import (
    candidate_get,
    duplicate_suggestion_get,
    duplicate_suggestions_open,
    merge_record_get,
)
from candidates.services.duplicates import (
    duplicate_dismiss,
    duplicate_shared_emails,
    duplicates_scan_start,
)
from candidates.services.merge import (
    MergeError,
    candidate_merge,
    candidate_merge_undo,
    merge_combined,
)
from crm.permissions import recruiter_required

PAGE_SIZE = 20


class DuplicateSuggestionFilter(django_filters.FilterSet):
    reason = django_filters.ChoiceFilter(
        choices=DuplicateSuggestion.Reason.choices, empty_label="Any reason"
    )

    class Meta:
        model = DuplicateSuggestion
        fields = ["reason"]


def _next_url(request, default: str, data=None) -> str:
    target = (request.POST if data is None else data).get("next", "")
    # A path of this site: anything else ("-1", a view's name) is not where a page sent us.
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def _profile_url(request, candidate_id: int) -> str:
    return reverse("candidates:detail", args=[request.organization.slug, candidate_id])


@require_safe
def duplicate_list(request, org_slug):
    suggestions = DuplicateSuggestionFilter(
        request.GET, queryset=duplicate_suggestions_open(organization=request.organization)
    )
    page = Paginator(suggestions.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    for suggestion in rows:
        suggestion.sides = (suggestion.candidate_a, suggestion.candidate_b)
        # The badge "Same email" is backed by the address shown highlighted on both sides.
        suggestion.shared_emails = duplicate_shared_emails(
            one=suggestion.candidate_a, other=suggestion.candidate_b
        )
        phone = suggestion.candidate_a.phone
        suggestion.shared_phone = phone if phone == suggestion.candidate_b.phone else ""
    context = {"filter": suggestions, "page": page, "suggestions": rows}
    return render(request, "candidates/duplicates.html", context)


@recruiter_required
@require_POST
def duplicate_dismiss_view(request, org_slug, suggestion_id):
    suggestion = duplicate_suggestion_get(
        organization=request.organization, suggestion_id=suggestion_id
    )
    duplicate_dismiss(suggestion=suggestion)
    if request.htmx:
        return HttpResponse("")  # the card disappears
    messages.success(request, "Marked as not a duplicate. This pair will not be suggested again.")
    return redirect(_next_url(request, reverse("candidates:duplicates", args=[org_slug])))


@recruiter_required
@require_POST
def duplicate_scan(request, org_slug):
    job = duplicates_scan_start(organization=request.organization, actor=request.user)
    return redirect("candidates:job_detail", org_slug, job.pk)


def _merge_counts(secondary) -> dict[str, int]:
    scope = {"organization_id": secondary.organization_id, "candidate": secondary}
    return {
        "notes": Note.objects.filter(**scope).count(),
        "activities": Activity.objects.filter(**scope).count(),
        "files": Attachment.objects.filter(**scope).count(),
    }


# How many profiles the "merge with another profile" search offers.
MERGE_PICK_LIMIT = 10


def _merge_pick(request, primary):
    """No profile chosen yet: search for the other profile of this person by name or email."""
    from candidates.filters import CandidateFilterSet
    from candidates.selectors import candidate_list_queryset

    find = " ".join(request.GET.get("find", "").split())[:200]
    found = []
    if find:
        filterset = CandidateFilterSet({"q": find}, organization=request.organization)
        found = list(
            candidate_list_queryset(filterset=filterset)
            .exclude(pk=primary.pk)
            .defer("resume_text", "search_vector")[:MERGE_PICK_LIMIT]
        )
    context = {"primary": primary, "find": find, "found": found}
    return render(request, "candidates/merge_pick.html", context)


@recruiter_required
def candidate_merge_view(request, org_slug, candidate_id):
    primary = candidate_get(organization=request.organization, candidate_id=candidate_id)
    if request.method == "GET" and "other" not in request.GET:
        return _merge_pick(request, primary)
    target = MergeTargetForm(
        request.POST if request.method == "POST" else request.GET,
        organization=request.organization,
        primary=primary,
    )
    if not target.is_valid():
        raise Http404("Choose another profile of this organisation to merge.")
    secondary = target.cleaned_data["other"]
    form = MergeForm(
        request.POST if request.method == "POST" else None,
        organization=request.organization,
        primary=primary,
        secondary=secondary,
    )
    if request.method == "POST" and form.is_valid():
        try:
            record = candidate_merge(
                primary=primary,
                secondary=secondary,
                field_choices=form.field_choices(),
                actor=request.user,
            )
        except MergeError as error:
            messages.error(request, str(error))
        else:
            messages.success(
                request,
                f"{record.secondary.full_name} was merged into this profile. "
                "You can undo it under “Merged into this profile” in the Possible duplicates card.",
            )
            return redirect(_profile_url(request, primary.pk))
    # Where the merge was opened (the duplicates list, a profile): Cancel goes back there.
    duplicates_url = reverse("candidates:duplicates", args=[org_slug])
    back = _next_url(request, "", data=request.POST if request.method == "POST" else request.GET)
    context = {
        "primary": primary,
        "secondary": secondary,
        "back": back,
        "cancel_url": back or duplicates_url,
        "form": form,
        "counts": _merge_counts(secondary),
        "combined": merge_combined(primary=primary, secondary=secondary),
    }
    return render(request, "candidates/merge.html", context)


@recruiter_required
@require_POST
def merge_undo(request, org_slug, merge_id):
    record = merge_record_get(organization=request.organization, merge_id=merge_id)
    try:
        candidate_merge_undo(record=record, actor=request.user)
    except MergeError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            f"The merge was undone: {record.secondary.full_name} has their own profile again.",
        )
    return redirect(_next_url(request, _profile_url(request, record.primary_id)))
