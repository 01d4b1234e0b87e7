"""The candidate list: search, filters, sorting, keyset pagination, saved searches, bulk actions
and export."""

import tempfile

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from candidates.filters import EDITING_PARAM, PAGING_PARAMS, SELECTION_PARAMS, CandidateFilterSet
from candidates.forms import (
    BulkArgumentsForm,
    BulkSelectionForm,
    SavedSearchForm,
    SavedSearchRenameForm,
)
from candidates.models import Candidate, SavedSearch
from candidates.panels import BULK_DESTINATIONS, SAVED_SEARCH_EDITING_PANELS
from candidates.search import (
    LIST_COLUMNS,
    SORTS,
    count_capped,
    count_display,
    highlight,
    highlight_terms,
    keyset_page,
    ranked_page,
    resume_snippets,
    skill_badges,
)
from candidates.selectors import (
    candidate_list_search,
    saved_search_get,
    saved_searches_for_user,
)
from candidates.services import bulk, export
from candidates.services.custom_fields import custom_fields_active
from candidates.services.saved_searches import (
    saved_search_create as saved_search_save,
)
from candidates.services.saved_searches import (
    saved_search_delete as saved_search_remove,
)
from candidates.services.saved_searches import (
    saved_search_query_from_params,
    saved_search_querystring,
    saved_search_rename,
    saved_search_update,
)
from candidates.views.outcomes import bulk_outcome
from crm.ids import id_from, ids_from
from crm.middleware import iterate_in_scope
from crm.permissions import recruiter_required

# The list counts matches exactly up to this many and shows "1,000+" beyond. Counting reads
# every matching row: to 10,000 that is ~10,000 random heap reads (150 to 500 ms at a million
# candidates with three facets), to 1,000 a tenth of it. The bulk confirmation counts exactly.
COUNT_CAP = 1_000
# A bulk form sent back with an error ticks its candidates again (at most this many: a page).
SELECTION_CAP = 500


def _filter_query(params: QueryDict) -> str:
    """The list's query string without the pagination cursor (or a bulk selection)."""
    params = params.copy()
    for key in (*PAGING_PARAMS, *SELECTION_PARAMS):
        params.pop(key, None)
    return params.urlencode()


def _selected_ids(params: QueryDict) -> set[int]:
    """The candidates a bulk form sent back ticked (`?selected=…`); anything else is ignored."""
    return set(ids_from(params.getlist("selected")[:SELECTION_CAP]))


def _list_url(organization, query: str = "") -> str:
    url = reverse("candidates:list", args=[organization.slug])
    return f"{url}?{query}" if query else url


@require_safe
def candidate_list(request, org_slug):
    organization = request.organization
    filterset = CandidateFilterSet(request.GET or None, organization=organization)
    filterset.is_valid()  # cleans the form: an invalid filter is left out, with its error
    data = filterset.form.cleaned_data if filterset.is_bound else {}
    q = (data.get("q") or "").strip()
    sort_name = data.get("sort") or ("relevance" if q else "-created")
    if sort_name == "relevance" and not q:
        sort_name = "-created"
    # Ranked as found only when the page is in relevance order (`ranked_page`).
    queryset, matches = candidate_list_search(filterset=filterset, ranked=sort_name == "relevance")

    def listed(queryset):
        # Only what a row shows and the sorts order by (`LIST_COLUMNS`).
        return (
            queryset.select_related("owner")
            .only(*LIST_COLUMNS)
            .with_last_contacted(organization_id=organization.pk)
        )

    paging = {
        "size": getattr(settings, "CANDIDATE_LIST_PAGE_SIZE", 50),
        "after": request.GET.get("after"),
        "before": request.GET.get("before"),
    }
    if matches is not None and sort_name == "relevance":
        # Ordered by the ranks the search found; only the page's rows are read (by id, from
        # the filtered list: they need no ranking again).
        page = ranked_page(listed(filterset.qs), matches, **paging)
    else:
        page = keyset_page(listed(queryset), sort=SORTS[sort_name], **paging)
    # A search counts the ids it ranked (never more than the rank bound plus the fuzzy ones).
    total = len(matches.ids) if matches else count_capped(queryset, COUNT_CAP)
    terms = highlight_terms(q)
    select_all = request.GET.get("select_all") == "1"
    selected_ids = _selected_ids(request.GET)
    # A match in a resume shows as an excerpt (one query for the page, bounded text per row).
    snippets = resume_snippets(
        organization_id=organization.pk, candidate_ids=[c.pk for c in page.rows], q=q
    )
    for candidate in page.rows:
        candidate.resume_snippet_html = snippets.get(candidate.pk)
        candidate.name_html = highlight(candidate.full_name, terms)
        candidate.headline_html = highlight(candidate.headline, terms)
        candidate.skill_badges = skill_badges(candidate.skills, terms)
        candidate.title_html = highlight(candidate.current_title, terms)
        candidate.company_html = highlight(candidate.current_company, terms)
        candidate.role_html = highlight(
            " · ".join(filter(None, [candidate.current_title, candidate.current_company])), terms
        )
        candidate.selected = select_all or candidate.pk in selected_ids
    selected_count = sum(1 for candidate in page.rows if candidate.selected)
    filter_query = _filter_query(request.GET)
    editing = _editing(request)
    without_editing = request.GET.copy()
    for key in (EDITING_PARAM, *SELECTION_PARAMS):
        without_editing.pop(key, None)
    context = {
        "filterset": filterset,
        "page": page,
        "q": q,
        "sort_name": sort_name,
        "total": total,
        # A search's count is exact (its ranked ids); a filtered list's is capped.
        "total_display": f"{total:,}" if matches else count_display(total, COUNT_CAP),
        "search_bounded": bool(matches and matches.bounded),
        "rank_limit": getattr(settings, "CANDIDATE_SEARCH_RANK_LIMIT", 2000),
        "filtered": bool(_filter_query(without_editing).replace("sort=", "").strip("&"))
        and filterset.is_bound,
        "organization_empty": total == 0
        and not Candidate.objects.live().filter(organization=organization).exists(),
        "filter_query": filter_query,
        "bulk_destinations": BULK_DESTINATIONS.values(),
        "select_all": select_all,
        "selected_count": selected_count,
        "saved_search_form": SavedSearchForm(initial={"query": filter_query}),
        "can_write": request.membership.can_write,
        # Editing a saved search: the list is the live preview of its new filters.
        "editing": editing,
        "editing_query": _filter_query(without_editing),
        "editing_changed": editing is not None
        and saved_search_query_from_params(without_editing) != editing.query,
        "saved_search_editing_panels": SAVED_SEARCH_EDITING_PANELS,
    }
    if request.htmx and request.htmx.target == "candidate-results":
        return render(request, "candidates/candidate_list.html#results", context)
    saved_searches = saved_searches_for_user(organization=organization, user=request.user)
    for saved_search in saved_searches:
        saved_search.querystring = saved_search_querystring(saved_search)
    context["saved_searches"] = saved_searches
    return render(request, "candidates/candidate_list.html", context)


# --- saved searches ---


def _editing(request) -> SavedSearch | None:
    """The user's saved search named by `?editing=<id>`, if any."""
    pk = id_from(request.GET.get(EDITING_PARAM, ""))
    if pk is None or not request.membership.can_write:
        return None
    return SavedSearch.objects.filter(
        organization=request.organization, owner=request.user, pk=pk
    ).first()


@require_POST
@recruiter_required
def saved_search_create(request, org_slug):
    form = SavedSearchForm(request.POST)
    query = QueryDict(request.POST.get("query", "")[:4000])
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, errors[0])
        return redirect(_list_url(request.organization, _filter_query(query)))
    saved_search, created = saved_search_save(
        organization=request.organization,
        owner=request.user,
        name=form.cleaned_data["name"],
        query=saved_search_query_from_params(query),
    )
    verb = "saved" if created else "updated"
    messages.success(request, f"Search “{saved_search.name}” {verb}.")
    return redirect(_list_url(request.organization, saved_search_querystring(saved_search)))


@require_POST
@recruiter_required
def saved_search_save_changes(request, org_slug, saved_search_id):
    """Save the filters tried while editing a saved search back into it."""
    saved_search = saved_search_get(
        organization=request.organization, user=request.user, saved_search_id=saved_search_id
    )
    query = QueryDict(request.POST.get("query", "")[:4000])
    changed = saved_search_update(
        saved_search=saved_search, query=saved_search_query_from_params(query)
    )
    if changed:
        messages.success(request, f"Search “{saved_search.name}” updated.")
    else:
        messages.info(request, f"Search “{saved_search.name}” was already like this.")
    return redirect(_list_url(request.organization, saved_search_querystring(saved_search)))


@recruiter_required
def saved_search_rename_view(request, org_slug, saved_search_id):
    """GET: the name form; POST: rename, back to the list with the search applied."""
    saved_search = saved_search_get(
        organization=request.organization, user=request.user, saved_search_id=saved_search_id
    )
    list_url = _list_url(request.organization, saved_search_querystring(saved_search))
    data = request.POST if request.method == "POST" else None
    form = SavedSearchRenameForm(data, initial={"name": saved_search.name})
    if form.is_bound and form.is_valid():
        old_name = saved_search.name
        try:
            changed = saved_search_rename(saved_search=saved_search, name=form.cleaned_data["name"])
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            if changed:
                messages.success(
                    request, f"Saved search “{old_name}” renamed to “{saved_search.name}”."
                )
            return redirect(list_url)
    context = {"form": form, "saved_search": saved_search, "list_url": list_url}
    return render(request, "candidates/saved_search_rename.html", context)


@require_POST
@recruiter_required
def saved_search_delete(request, org_slug, saved_search_id):
    saved_search = saved_search_get(
        organization=request.organization, user=request.user, saved_search_id=saved_search_id
    )
    saved_search_remove(saved_search=saved_search)
    messages.success(request, f"Saved search “{saved_search.name}” deleted.")
    return redirect(_list_url(request.organization))


# --- bulk actions and export ---


def _bulk_hand_over(request, destination, selection: dict):
    """Send the selection to the page of the app that performs this action."""
    params = QueryDict(mutable=True)
    if selection["select_all"]:
        params["query"] = selection["query"]
    else:
        params.setlist("candidate", [str(pk) for pk in selection["ids"]])
    url = reverse(destination.url_name, kwargs={"org_slug": request.organization.slug})
    return redirect(f"{url}?{params.urlencode()}")


def _selection_query(data: QueryDict, selection_form: BulkSelectionForm) -> str:
    """Back to the list a bulk form came from (its filters and page) with the same candidates
    ticked, so that a mistake such as a missing action does not lose the selection."""
    params = QueryDict(_filter_query(QueryDict(data.get("query", "")[:4000])), mutable=True)
    for key in PAGING_PARAMS:
        if data.get(key):
            params[key] = data[key][:1000]
    cleaned = getattr(selection_form, "cleaned_data", {})
    params.setlist("selected", [str(pk) for pk in (cleaned.get("ids") or [])[:SELECTION_CAP]])
    if cleaned.get("select_all"):
        params["select_all"] = "1"
    return params.urlencode()


@recruiter_required
def candidate_bulk(request, org_slug):
    """GET: the confirmation (exactly how many candidates will change); POST: do it."""
    organization = request.organization
    data = request.POST if request.method == "POST" else request.GET
    selection_form = BulkSelectionForm(data)
    if not selection_form.is_valid():
        for errors in selection_form.errors.values():
            messages.error(request, errors[0])
        return redirect(_list_url(organization, _selection_query(data, selection_form)))
    action = selection_form.cleaned_data["action"]
    if action in BULK_DESTINATIONS:
        return _bulk_hand_over(request, BULK_DESTINATIONS[action], selection_form.cleaned_data)
    if action in bulk.ADMIN_ONLY_ACTIONS and not request.membership.is_admin:
        raise PermissionDenied("Only admins can delete candidates.")
    query = selection_form.cleaned_data["query"]
    # "All matching" means all that matched when the confirmation was shown: its page sends
    # back the bound it counted with, so nobody added since is acted on.
    selection = bulk.bulk_selection(
        organization=organization,
        ids=selection_form.cleaned_data["ids"],
        select_all=selection_form.cleaned_data["select_all"],
        query=query,
        up_to_id=id_from(data.get("up_to_id")),
    )
    count = bulk.bulk_selection_count(organization=organization, selection=selection)
    arguments_form = BulkArgumentsForm(
        request.POST if request.method == "POST" else None,
        organization=organization,
        action=action,
    )
    if request.method == "POST" and count and arguments_form.is_valid():
        return _bulk_run(request, action, arguments_form, selection, query)
    return render(
        request,
        "candidates/bulk_confirm.html",
        {
            "action": action,
            "action_label": bulk.ACTIONS[action],
            "count": count,
            "up_to_id": selection.get("up_to_id"),
            "selection_form": selection_form,
            "arguments_form": arguments_form,
            "list_url": _list_url(organization, query),
        },
    )


def _bulk_run(request, action, arguments_form, selection, query):
    organization = request.organization
    if action == "export":
        fmt = arguments_form.cleaned_data["export_format"]
        if bulk.export_is_inline(organization=organization, selection=selection):
            queryset = bulk.bulk_selection_queryset(organization=organization, selection=selection)
            return _export_response(organization, queryset, fmt)
        outcome = bulk.export_start(
            organization=organization, actor=request.user, fmt=fmt, selection=selection
        )
        # The job page says what is going on, in the part that follows the job (no flash
        # that would still say "being prepared" above the finished download).
        return redirect("candidates:job_detail", organization.slug, outcome.job.pk)
    outcome = bulk.bulk_start(
        organization=organization,
        actor=request.user,
        action=action,
        args=arguments_form.action_args(),
        selection=selection,
    )
    if outcome.job:  # its page says what is going on, like an export's
        return redirect("candidates:job_detail", organization.slug, outcome.job.pk)
    args = arguments_form.action_args()
    messages.success(request, bulk_outcome(action, args, outcome.changed, outcome.total))
    return redirect(_list_url(organization, query))


def _export_response(organization, queryset, fmt: str) -> HttpResponse:
    custom_fields = custom_fields_active(organization=organization)
    headers = export.export_headers(custom_fields)
    rows = export.export_rows(queryset, custom_fields)
    filename = export.export_filename(fmt)
    content_type = export.FORMATS[fmt][1]
    if fmt == "xlsx":
        handle = tempfile.TemporaryFile()  # noqa: SIM115 (FileResponse closes it)
        export.export_write_xlsx(handle, headers, rows)
        handle.seek(0)
        response = FileResponse(
            handle, as_attachment=True, filename=filename, content_type=content_type
        )
    else:
        response = StreamingHttpResponse(
            iterate_in_scope(organization, export.export_csv_lines(headers, rows)),
            content_type=content_type,
        )
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
