"""Reusable tenant-scoped reads: views load objects through these, and get a 404 for anything
that is not the current organisation's (the same answer for missing and foreign)."""

from datetime import datetime

from django.db.models import BooleanField, ExpressionWrapper, Q
from django.http import Http404
from django.shortcuts import get_object_or_404

from candidates.models import Activity, Candidate, CustomField, Job, Note


def candidate_get(*, organization, candidate_id: int) -> Candidate:
    return get_object_or_404(
        Candidate.objects.live().select_related("owner", "contact"),
        organization=organization,
        pk=candidate_id,
    )


def job_get(*, organization, job_id: int) -> Job:
    # The job page names who started it (and polls every second while it runs).
    return get_object_or_404(
        Job.objects.select_related("created_by"), organization=organization, pk=job_id
    )


# --- profiles, notes, timeline, custom fields ---

TIMELINE_PAGE_SIZE = 200


def note_get(*, candidate: Candidate, note_id: int) -> Note:
    return get_object_or_404(
        Note.objects.select_related("author"),
        organization_id=candidate.organization_id,
        candidate=candidate,
        pk=note_id,
    )


def custom_field_get(*, organization, field_id: int) -> CustomField:
    return get_object_or_404(CustomField, organization=organization, pk=field_id)


# The timeline's filters: what a recruiter looks for, each a set of activity kinds.
TIMELINE_FILTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "notes": ("Notes", (Activity.Kind.NOTE_ADDED, Activity.Kind.FOLLOW_UP)),
    "emails": (
        "Emails",
        (
            Activity.Kind.EMAIL_SENT,
            Activity.Kind.EMAIL_OPENED,
            Activity.Kind.EMAIL_CLICKED,
            Activity.Kind.EMAIL_REPLIED,
            Activity.Kind.EMAIL_AUTO_REPLIED,
            Activity.Kind.EMAIL_BOUNCED,
            Activity.Kind.ENROLLMENT,
        ),
    ),
    "pipeline": (
        "Stages and pools",
        (Activity.Kind.STAGE_CHANGED, Activity.Kind.POOL_ADDED, Activity.Kind.POOL_REMOVED),
    ),
    "consent": ("Consent", (Activity.Kind.CONSENT_CHANGED, Activity.Kind.UNSUBSCRIBED)),
    "edits": (
        "Edits and imports",
        (
            Activity.Kind.CREATED,
            Activity.Kind.EDITED,
            Activity.Kind.STATUS_CHANGED,
            Activity.Kind.TAGGED,
            Activity.Kind.OWNER_CHANGED,
            Activity.Kind.ATTACHMENT_ADDED,
            Activity.Kind.IMPORTED,
            Activity.Kind.MERGED,
            Activity.Kind.UNMERGED,
        ),
    ),
}


TIMELINE_COLUMNS = (
    "id",
    "organization_id",
    "candidate_id",
    "kind",
    "occurred_at",
    "summary",
    "actor__name",
    "actor__email",
    "note__body",
    "note__contact",
    "note__pinned",
    "note__author_id",
    "note__created_at",
    "note__updated_at",
)


def candidate_timeline(
    *,
    candidate: Candidate,
    user,
    before: tuple[datetime, int] | None = None,
    limit: int = TIMELINE_PAGE_SIZE,
    show: str = "",
) -> tuple[list[Activity], tuple[datetime, int] | None]:
    """The candidate's activities as `user` may read them, newest first, `limit` at a time
    (keyset pagination on (occurred_at, id)); returns the page and the cursor of the next
    older page, or None. `show` names one of TIMELINE_FILTERS (anything else: every entry).
    An entry that names what the user may not see elsewhere (a colleague's "Only me" pool:
    panels.TIMELINE_REDACTIONS) stays, in vaguer words ("Added to a private pool").
    One query however long the page: actor and note come joined, with only the columns an
    entry shows (not `data`, JSON decoded per row, nor the actor's password and flags: with
    200 rows a page, every column is work for the compiler and for each row); the database
    says which entries to redact."""
    from candidates.panels import TIMELINE_REDACTIONS

    redactions = list(TIMELINE_REDACTIONS.values())
    activities = (
        Activity.objects.filter(organization_id=candidate.organization_id, candidate=candidate)
        .select_related("actor", "note")
        .only(*TIMELINE_COLUMNS)
        .annotate(
            **{
                f"redacted_{index}": ExpressionWrapper(
                    redaction.condition(organization_id=candidate.organization_id, user=user),
                    output_field=BooleanField(),
                )
                for index, redaction in enumerate(redactions)
            }
        )
        .order_by("-occurred_at", "-id")
    )
    if show in TIMELINE_FILTERS:
        activities = activities.filter(kind__in=TIMELINE_FILTERS[show][1])
    if before is not None:
        occurred_at, activity_id = before
        activities = activities.filter(
            Q(occurred_at__lt=occurred_at) | Q(occurred_at=occurred_at, id__lt=activity_id)
        )
    page = list(activities[: limit + 1])
    for activity in page:
        for index, redaction in enumerate(redactions):
            if getattr(activity, f"redacted_{index}"):
                activity.summary = redaction.summary(activity)
                break
    if len(page) > limit:
        page = page[:limit]
        return page, (page[-1].occurred_at, page[-1].pk)
    return page, None


def candidate_pinned_notes(*, candidate: Candidate) -> list[Note]:
    return list(
        Note.objects.filter(
            organization_id=candidate.organization_id, candidate=candidate, pinned=True
        )
        .select_related("author")
        .order_by("-created_at", "-id")
    )


def candidate_owner_choices(*, organization, include=None):
    """Users who may own candidates: the organisation's recruiters and admins (plus the current
    owner, so a demoted owner does not vanish from an edit form)."""
    from crm.models import Role, User

    condition = Q(
        memberships__organization=organization,
        memberships__role__in=[Role.RECRUITER, Role.ADMIN],
    )
    if include is not None:
        condition |= Q(pk=include.pk)
    return User.objects.filter(condition).distinct().order_by("name", "email")


# --- list, search, saved searches ---


def candidate_list_queryset(*, filterset, rank_limit: int | None = None):
    """The candidates matching a CandidateFilterSet: its filters, then its search (if any),
    annotated with `rank` and ordered by relevance. Invalid filter values are left out (the
    form shows their errors)."""
    return candidate_list_search(filterset=filterset, rank_limit=rank_limit)[0]


def candidate_list_search(*, filterset, rank_limit: int | None = None, ranked: bool = False):
    """`candidate_list_queryset` and, when there is a search, what it found (`SearchMatches`:
    the ids to rank, whether the bound was hit and, when `ranked`, their ranks), so the list
    page counts and pages without another pass over the matches. None without a search."""
    from candidates.search import candidate_search, search_matches

    queryset = filterset.qs
    q = (filterset.form.cleaned_data.get("q") or "").strip() if filterset.is_bound else ""
    if not q:
        return queryset, None
    matches = search_matches(queryset, q, limit=rank_limit, ranked=ranked)
    return candidate_search(queryset, q, matches=matches), matches


def saved_searches_for_user(*, organization, user) -> list:
    from candidates.models import SavedSearch

    return list(SavedSearch.objects.filter(organization=organization, owner=user))


def saved_search_get(*, organization, user, saved_search_id: int):
    """One of the user's own saved searches; 404 for anyone else's."""
    from candidates.models import SavedSearch

    return get_object_or_404(SavedSearch, organization=organization, owner=user, pk=saved_search_id)


def filterset_problem(filterset) -> str:
    """What makes a stored filter query no longer valid, in words ("" when it is valid): an
    owner who left or became a viewer, a choice or a custom field that was removed. The list
    page shows such errors and leaves the filter out; a stored selection — a saved search,
    "all matching" of a bulk job — must not, or it would reach more than was chosen (everyone,
    when its only filter goes)."""
    if not filterset.is_bound or filterset.form.is_valid():
        return ""
    form = filterset.form
    parts = []
    for name, errors in form.errors.items():
        field = form.fields.get(name)
        label = field.label if field is not None and field.label else name
        parts.append(f"{label}: {' '.join(str(error) for error in errors)}")
    return "; ".join(parts)


def candidates_found(*, filterset):
    """Everyone a CandidateFilterSet finds, unordered: what a smart pool holds and a campaign
    audience reaches. Unlike the list (`candidate_list_search`), its text search is not
    bounded to the matches the list ranks (`search_filter`)."""
    from candidates.search import search_filter

    queryset = filterset.qs
    q = (filterset.form.cleaned_data.get("q") or "").strip() if filterset.is_bound else ""
    return search_filter(queryset, q) if q else queryset


def _saved_search_filterset(saved_search):
    from django.http import QueryDict

    from candidates.filters import CandidateFilterSet

    params = QueryDict(mutable=True)
    for key, values in (saved_search.query or {}).items():
        params.setlist(key, values if isinstance(values, list) else [values])
    # Without a custom field in the search there is no need to read their definitions (a smart
    # pool re-evaluates its saved search after every edit of a candidate).
    filters_custom_fields = any(key.startswith("cf_") for key in params)
    return CandidateFilterSet(
        params,
        organization=saved_search.organization,
        custom_fields=None if filters_custom_fields else [],
    )


def saved_search_found(*, saved_search):
    """(the candidates the saved search finds now, why it no longer works): with a problem
    (`filterset_problem`: a filter that no longer holds), it finds nobody — never everyone the
    other filters find."""
    filterset = _saved_search_filterset(saved_search)
    problem = filterset_problem(filterset)
    if problem:
        return Candidate.objects.none(), problem
    return candidates_found(filterset=filterset), ""


def saved_search_queryset(*, saved_search):
    """The candidates a saved search finds now, all of them (`candidates_found`): a smart
    pool's members, a campaign audience. Nobody when one of its filters no longer holds."""
    return saved_search_found(saved_search=saved_search)[0]


def saved_search_problem(*, saved_search) -> str:
    """Why the saved search no longer works ("" when it does): see `filterset_problem`."""
    return filterset_problem(_saved_search_filterset(saved_search))


# --- attachments, duplicates and merges ---

MERGE_CHAIN_LIMIT = 20


def attachment_get(*, organization, attachment_id: int):
    from candidates.models import Attachment

    return get_object_or_404(
        Attachment.objects.select_related("candidate"), organization=organization, pk=attachment_id
    )


def candidate_get_or_merged(*, organization, candidate_id: int) -> Candidate:
    """The live profile that `candidate_id` now stands for: the candidate itself, or — when it
    was merged — the profile it was merged into (following chains of merges). 404 when there is
    none in this organisation. A view that gets back a different id than it asked for should
    redirect there with a message ("… was merged into this profile").

    The profile shows neither the resume's text nor the search columns made from it: with a
    resume they are ~5.6 KB a candidate on the bench's data (the text and its search vector,
    on average), read and decoded for nothing. "Last contacted" comes with it
    (`candidate.contact`, missing when never)."""
    profiles = Candidate.objects.select_related("owner", "contact").defer(
        "resume_text", "search_vector", "search_name"
    )
    candidate = get_object_or_404(profiles, organization=organization, pk=candidate_id)
    for _ in range(MERGE_CHAIN_LIMIT):
        if candidate.merged_into_id is None:
            return candidate
        candidate = get_object_or_404(
            profiles, organization=organization, pk=candidate.merged_into_id
        )
    raise Http404("Merged too many times to follow.")


def duplicate_suggestion_get(*, organization, suggestion_id: int):
    from candidates.models import DuplicateSuggestion

    return get_object_or_404(DuplicateSuggestion, organization=organization, pk=suggestion_id)


def duplicate_suggestions_open(*, organization):
    """Open suggestions between two live candidates, strongest first (one query)."""
    from candidates.models import DuplicateSuggestion

    return (
        DuplicateSuggestion.objects.filter(
            organization=organization,
            state=DuplicateSuggestion.State.OPEN,
            candidate_a__merged_into__isnull=True,
            candidate_b__merged_into__isnull=True,
        )
        .select_related("candidate_a", "candidate_b")
        .order_by("-score", "-id")
    )


def merge_record_get(*, organization, merge_id: int):
    from candidates.models import MergeRecord

    return get_object_or_404(
        MergeRecord.objects.select_related("primary", "secondary"),
        organization=organization,
        pk=merge_id,
    )


def candidate_timeline_merged_from(*, candidate: Candidate, activities: list) -> dict[int, str]:
    """Which of `activities` came to this profile with a merge that is not undone: {activity
    id: the merged-away profile's name}. Its "Profile created" and the rest of its history
    otherwise read as this profile's own. One query, of the merges into this profile."""
    from django.db.models.fields.json import KeyTransform

    from candidates.models import MergeRecord

    shown = {activity.pk for activity in activities}
    merged_from: dict[int, str] = {}
    merges = (
        MergeRecord.objects.filter(
            organization_id=candidate.organization_id, primary=candidate, undone_at__isnull=True
        )
        .annotate(activity_ids=KeyTransform("candidates.Activity", "moved"))
        .values_list("activity_ids", "secondary__first_name", "secondary__last_name")
    )
    for activity_ids, first_name, last_name in merges:
        name = f"{first_name} {last_name}".strip()
        for pk in activity_ids or []:
            if pk in shown:
                merged_from[pk] = name
    return merged_from


def candidate_duplicates_panel(*, candidate: Candidate, limit: int = 5) -> dict:
    """What the profile's duplicates card shows, in two queries: the open suggestions that
    involve this candidate (with the other profile) and the merges into it."""
    from candidates.models import MergeRecord

    # Only what the card shows: Django's compiler works per selected column, and two whole
    # candidates are ~130 of them.
    shown = ("id", "first_name", "last_name", "email", "current_company")
    suggestions = list(
        duplicate_suggestions_open(organization=candidate.organization_id)
        .filter(Q(candidate_a=candidate) | Q(candidate_b=candidate))
        .only(
            "id",
            "reason",
            "score",
            *(f"candidate_a__{name}" for name in shown),
            *(f"candidate_b__{name}" for name in shown),
        )[:limit]
    )
    for suggestion in suggestions:
        suggestion.other = (
            suggestion.candidate_b
            if suggestion.candidate_a_id == candidate.pk
            else suggestion.candidate_a
        )
    merges = list(
        MergeRecord.objects.filter(organization_id=candidate.organization_id, primary=candidate)
        .select_related("secondary", "merged_by")
        .only(
            "id",
            "merged_at",
            "undone_at",
            "primary_id",
            *(f"secondary__{name}" for name in shown),
            "merged_by__name",
            "merged_by__email",
        )
        .order_by("-merged_at", "-id")[:limit]
    )
    return {"suggestions": suggestions, "merges": merges}


# --- import ---


def import_job_get(*, organization, job_id: int) -> Job:
    """An import job of the organisation (404 for others' jobs and other kinds of job)."""
    return get_object_or_404(Job, organization=organization, pk=job_id, kind=Job.Kind.IMPORT)


def import_failed_rows(*, job: Job, limit: int) -> list:
    """The first failed rows of an import, each with `summary`: its non-empty cells in the
    file's column order, joined."""
    from candidates.models import ImportRowError

    headers = (job.params.get("file") or {}).get("headers") or []
    rows = list(
        ImportRowError.objects.filter(organization_id=job.organization_id, job=job).order_by(
            "row_number"
        )[:limit]
    )
    for row in rows:
        data = row.data or {}
        ordered = [data[header] for header in headers if header in data] or list(data.values())
        values = [str(value) for value in ordered if str(value).strip()]
        row.summary = " · ".join(values)[:200]
    return rows


def import_jobs_recent(*, organization, limit: int = 5) -> list[Job]:
    return list(
        Job.objects.filter(organization=organization, kind=Job.Kind.IMPORT)
        .exclude(status=Job.Status.DRAFT)
        .select_related("created_by")
        .order_by("-created_at", "-id")[:limit]
    )


def import_drafts_of(*, organization, user) -> list[Job]:
    """The user's own imports that were uploaded but never started, newest first: they can be
    continued or discarded (others' drafts are theirs to finish)."""
    return list(
        Job.objects.filter(
            organization=organization,
            kind=Job.Kind.IMPORT,
            status=Job.Status.DRAFT,
            created_by=user,
        ).order_by("-created_at", "-id")[:10]
    )


def candidate_selection_queryset(
    *,
    organization,
    candidate_ids=(),
    query: str = "",
    everyone: bool = False,
    up_to_id: int | None = None,
):
    """The live candidates a list selection names, for apps that act on it on their own pages
    (see `candidates.panels.BulkDestination`) and for the list's own bulk actions: the ticked
    ids, or — "all matching" — every candidate the list's filter query string finds (paging and
    sorting ignored): the matches the list counts and ranks, or with `everyone` all of them
    (`candidates_found`, what a saved search with that query would find).

    `up_to_id` bounds "all matching" to the candidates that existed when its confirmation was
    shown (`candidates.services.bulk.bulk_highest_candidate_id` then): one added since — by an
    import, say — was never confirmed and is left out. The bound applies before the search, so
    a newcomer cannot take the place of a confirmed match among those the search ranks."""
    from django.http import QueryDict

    from candidates.filters import CandidateFilterSet

    if candidate_ids:
        return Candidate.objects.live().filter(organization=organization, pk__in=candidate_ids)
    params = QueryDict(query or "", mutable=True)
    for name in ("after", "before", "sort"):
        params.pop(name, None)
    candidates = Candidate.objects.live().filter(organization=organization)
    if up_to_id is not None:
        candidates = candidates.filter(id__lte=up_to_id)
    filterset = CandidateFilterSet(params, candidates, organization=organization)
    if filterset_problem(filterset):
        # A filter that no longer holds selects nobody, not everyone the others find.
        return candidates.none()
    if everyone:
        return candidates_found(filterset=filterset)
    return candidate_list_queryset(filterset=filterset)


def candidate_selection_problem(*, organization, query: str) -> str:
    """Why "all matching" of the list's `query` no longer selects what was confirmed ("" when
    it does): see `filterset_problem`."""
    from django.http import QueryDict

    from candidates.filters import CandidateFilterSet

    params = QueryDict(query or "", mutable=True)
    for name in ("after", "before", "sort"):
        params.pop(name, None)
    return filterset_problem(
        CandidateFilterSet(params, Candidate.objects.none(), organization=organization)
    )
