"""Talent pools, the pipeline board, stages, roles and follow-ups (under /o/<org>/pools/)."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from candidates.search import count_capped, count_display
from candidates.selectors import candidate_get, candidate_owner_choices
from candidates.services import bulk
from candidates.views.destinations import (
    DestinationSelection,
    destination_run,
    destination_selection,
    destination_selection_count,
)
from crm.ids import id_from
from crm.permissions import admin_required, recruiter_required
from pipelines import selectors, services
from pipelines.forms import (
    AddToPoolForm,
    BoardFilterForm,
    BulkMoveForm,
    FollowUpForm,
    MoveForm,
    PoolForm,
    PoolPickForm,
    RoleForm,
    StageForm,
)
from pipelines.models import HiringRole, Pool, PoolMembership

# The smart pool preview and the impact of a rule change count exactly up to this many and
# show "10,000+" beyond.
SMART_PREVIEW_COUNT_CAP = 10_000

# --- helpers ---


def _pool(request: HttpRequest, pool_id: int) -> Pool:
    return selectors.pool_get(organization=request.organization, user=request.user, pool_id=pool_id)


def _managed_pool(request: HttpRequest, pool_id: int) -> Pool:
    pool = _pool(request, pool_id)
    if not selectors.pool_can_manage(pool=pool, membership=request.membership):
        raise PermissionDenied("Only the pool's owner or an admin can change it.")
    return pool


def _open_pool(request: HttpRequest, pool_id: int) -> Pool:
    """A pool whose board may change: an archived pool's board is read-only."""
    pool = _pool(request, pool_id)
    if pool.is_archived:
        raise PermissionDenied("This pool is archived: restore it to change its board.")
    return pool


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    # A path of this site: anything else ("-1", a view's name) is not where a page sent us.
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


def _board_url(pool: Pool, query: str = "") -> str:
    url = reverse(
        "pipelines:pool_board", kwargs={"org_slug": pool.organization.slug, "pool_id": pool.pk}
    )
    return f"{url}?{query}" if query else url


# --- pools ---


@require_safe
def pool_list(request, org_slug):
    archived = request.GET.get("archived") == "1"
    rows = selectors.pool_list_rows(
        organization=request.organization, user=request.user, archived=archived
    )
    return render(
        request,
        "pipelines/pool_list.html",
        {"rows": rows, "archived": archived, "active_tab": "pools"},
    )


@recruiter_required
def pool_create(request, org_slug):
    form = PoolForm(request.POST or None, organization=request.organization, user=request.user)
    if request.method == "POST" and form.is_valid():
        pool = services.pool_create(
            organization=request.organization, owner=request.user, **form.cleaned_data
        )
        if pool.is_smart:
            messages.success(
                request, f"“{pool.name}” was created. Its members are being gathered now."
            )
        else:
            messages.success(
                request,
                f"“{pool.name}” was created. Add candidates from the candidate list "
                "or from a profile.",
            )
        return redirect("pipelines:pool_board", org_slug=org_slug, pool_id=pool.pk)
    return render(request, "pipelines/pool_form.html", {"form": form, "pool": None})


@recruiter_required
def pool_edit(request, org_slug, pool_id):
    pool = _managed_pool(request, pool_id)
    form = PoolForm(
        request.POST or None,
        instance=pool,
        organization=request.organization,
        user=request.user,
    )
    if request.method == "POST" and form.is_valid():
        fields = {name: form.cleaned_data[name] for name in form.Meta.fields}
        # The form has already written the values to the instance; compare with the database.
        original = Pool.objects.get(pk=pool.pk)
        services.pool_update(pool=original, **fields)
        messages.success(request, f"“{original.name}” was saved.")
        return redirect("pipelines:pool_board", org_slug=org_slug, pool_id=pool.pk)
    return render(request, "pipelines/pool_form.html", {"form": form, "pool": pool})


@require_POST
@recruiter_required
def pool_archive(request, org_slug, pool_id):
    pool = _managed_pool(request, pool_id)
    services.pool_archive(pool=pool)
    messages.success(
        request,
        f"“{pool.name}” was archived. Its board and stage history are kept; "
        "restore it from the archived pools any time.",
    )
    return redirect("pipelines:pool_list", org_slug=org_slug)


@require_POST
@recruiter_required
def pool_restore(request, org_slug, pool_id):
    pool = _managed_pool(request, pool_id)
    services.pool_restore(pool=pool)
    messages.success(request, f"“{pool.name}” was restored.")
    return redirect("pipelines:pool_board", org_slug=org_slug, pool_id=pool.pk)


@admin_required
def pool_delete(request, org_slug, pool_id):
    """Delete for good (admins only): a page that says what goes, then a confirmed POST."""
    pool = _pool(request, pool_id)
    history = services.pool_history_count(pool=pool)
    refusal = ""
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        name = pool.name
        try:
            services.pool_delete(pool=pool)
        except ValidationError as error:
            refusal = " ".join(error.messages)
        else:
            messages.success(
                request,
                f"The pool “{name}” was deleted with {history} stage change"
                f"{'s' if history != 1 else ''} of history.",
            )
            return redirect("pipelines:pool_list", org_slug=org_slug)
    campaigns = services.pool_campaigns(pool=pool)
    if campaigns and not refusal:
        refusal = services.pool_campaigns_refusal(campaigns=campaigns)
    context = {
        "pool": pool,
        "history": history,
        "size": selectors.pool_size(pool=pool),
        "campaigns": campaigns,
        "refusal": refusal,
        "unconfirmed": request.method == "POST" and not campaigns,
        "active_tab": "pools",
    }
    status = 400 if request.method == "POST" and campaigns else 200
    return render(request, "pipelines/pool_delete.html", context, status=status)


@require_POST
@recruiter_required
def pool_refresh(request, org_slug, pool_id):
    pool = _open_pool(request, pool_id)
    if pool.is_smart:
        services.pool_schedule_refresh(pool=pool)
        messages.info(request, "Refreshing the pool from its search. Reload in a moment.")
    return redirect("pipelines:pool_board", org_slug=org_slug, pool_id=pool.pk)


@recruiter_required
def smart_pool_preview(request, org_slug):
    """While choosing or changing a smart pool's rule (its saved search): how many the search
    finds now and a few of them, with the rule in words; with `impact=1` and the filters being
    tried (`query`, from the candidate list's "changing a saved search" banner): how many would
    join and leave each smart pool the search defines."""
    from candidates.models import SavedSearch
    from candidates.selectors import candidate_selection_queryset, saved_search_queryset
    from candidates.services.saved_searches import saved_search_describe, saved_search_querystring

    saved_search_id = id_from(request.GET.get("saved_search", ""))
    saved_search = None
    if saved_search_id is not None:
        smart_pools = selectors.pools_visible(
            organization=request.organization, user=request.user
        ).filter(kind=Pool.Kind.SMART)
        saved_search = (
            SavedSearch.objects.filter(organization=request.organization, pk=saved_search_id)
            .filter(Q(owner=request.user) | Q(smart_pools__in=smart_pools))
            .distinct()
            .first()
        )
    if saved_search is not None and request.GET.get("impact"):
        pools = selectors.pools_visible(
            organization=request.organization, user=request.user
        ).filter(kind=Pool.Kind.SMART, saved_search=saved_search)
        matching = candidate_selection_queryset(
            organization=request.organization,
            query=request.GET.get("query", "")[:4000],
            everyone=True,
        )
        context = {
            "impacts": selectors.smart_pool_impacts(
                pools=pools, matching=matching, cap=SMART_PREVIEW_COUNT_CAP
            )
        }
        return render(request, "pipelines/includes/smart_impact.html", context)
    context = {"saved_search": saved_search}
    if saved_search is not None:
        queryset = saved_search_queryset(saved_search=saved_search)
        # Capped as the list counts: a search for a common word can find most of a million
        # candidates, ~1 s to count exactly there, 70 ms to 10,001.
        count = count_capped(queryset, SMART_PREVIEW_COUNT_CAP)
        sample = list(queryset.order_by("last_name", "first_name", "id")[:8])
        context["count"] = count
        context["count_text"] = count_display(count, SMART_PREVIEW_COUNT_CAP)
        context["sample"] = sample
        if count > SMART_PREVIEW_COUNT_CAP:
            context["more_text"] = "more"
        elif count > len(sample):
            context["more_text"] = f"{count - len(sample):,} more"
        context["rule"] = saved_search_describe(saved_search=saved_search)
        if saved_search.owner_id == request.user.pk:
            querystring = saved_search_querystring(saved_search)
            context["edit_url"] = (
                reverse("candidates:list", kwargs={"org_slug": org_slug})
                + f"?{querystring}{'&' if querystring else ''}editing={saved_search.pk}"
            )
    return render(request, "pipelines/includes/smart_preview.html", context)


# --- the board ---


def _board_filters(request, params: QueryDict):
    """The board's filter form on `params` (the page's query string) and the filters it
    gives."""
    owners = candidate_owner_choices(organization=request.organization)
    form = BoardFilterForm(params or None, owners=owners)
    return form, form.filters()


@require_safe
def pool_board(request, org_slug, pool_id):
    pool = _pool(request, pool_id)
    filter_form, filters = _board_filters(request, request.GET)
    columns = selectors.pool_board(pool=pool, **filters)
    stages = [column.stage for column in columns]
    context = {
        "pool": pool,
        "columns": columns,
        "stages": stages,
        "filter_form": filter_form,
        "filtered": any(filters.values()),
        "total": sum(column.count for column in columns),
        "can_manage": selectors.pool_can_manage(pool=pool, membership=request.membership),
        "can_write": request.membership.can_write and not pool.is_archived,
        "query": request.GET.urlencode(),
        "active_tab": "pools",
    }
    return render(request, "pipelines/pool_board.html", context)


@require_safe
def board_column(request, org_slug, pool_id, stage_id):
    """The next page of one column (the board's "Show more")."""
    pool = _pool(request, pool_id)
    stage = next(
        (stage for stage in selectors.pool_stages(pool=pool) if stage.pk == stage_id), None
    )
    if stage is None:
        raise Http404("No such column.")
    after = selectors.parse_cursor(request.GET.get("after", ""))
    _form, filters = _board_filters(request, request.GET)
    cards, next_cursor = ([], None)
    if after is not None:
        cards, next_cursor = selectors.board_column_page(
            pool=pool, stage=stage, after=after, **filters
        )
    context = {
        "pool": pool,
        "stage": stage,
        "cards": cards,
        "next_cursor": next_cursor,
        "stages": selectors.pool_stages(pool=pool),
        "can_write": request.membership.can_write and not pool.is_archived,
        # The board's filters for the next "Show more", without this page's own cursor.
        "query": _without_paging(request.GET),
    }
    return render(request, "pipelines/pool_board.html#column_page", context)


def _without_paging(params: QueryDict) -> str:
    params = params.copy()
    params.pop("after", None)
    return params.urlencode()


def _query_without_paging(request) -> str:
    return _without_paging(QueryDict(request.POST.get("query", "")))


@require_POST
@recruiter_required
def card_move(request, org_slug, pool_id, pool_membership_id):
    pool = _open_pool(request, pool_id)
    membership = selectors.pool_membership_get(pool=pool, pool_membership_id=pool_membership_id)
    stages = selectors.pool_stages(pool=pool)
    form = MoveForm(request.POST, stages=stages)
    previous_stage_id = membership.stage_id
    error = ""
    if form.is_valid():
        try:
            services.membership_move(
                membership=membership, to_stage=form.target_stage, actor=request.user
            )
        except ValidationError as exc:
            error = " ".join(exc.messages)
    elif "stage" in request.POST:
        error = (
            "That stage is no longer on this board (it was archived or removed). "
            "Reload the board to see its current stages."
        )
    else:
        error = "Choose one of this pool's stages."
    if request.htmx:
        if error:
            return HttpResponse(error, status=422, content_type="text/plain; charset=utf-8")
        # The board's filters (posted with the card): its badges count what it shows, and the
        # card's next move carries them again.
        query = _query_without_paging(request)
        _form, filters = _board_filters(request, QueryDict(query))
        counts = selectors.pool_stage_counts(pool=pool, **filters)
        context = {
            "pool": pool,
            "card": membership,
            "stages": stages,
            "can_write": True,
            "query": query,
        }
        html = render_to_string("pipelines/pool_board.html#card", context, request=request)
        for stage_id in {previous_stage_id, membership.stage_id}:
            html += render_to_string(
                "pipelines/pool_board.html#count",
                {"stage_id": stage_id, "count": counts.get(stage_id, 0), "oob": True},
                request=request,
            )
        return HttpResponse(html)
    if error:
        messages.error(request, error)
    else:
        messages.success(
            request, f"{membership.candidate.full_name} moved to “{membership.stage.name}”."
        )
    return redirect(_board_url(pool, _query_without_paging(request)))


@require_POST
@recruiter_required
def cards_move_bulk(request, org_slug, pool_id):
    pool = _open_pool(request, pool_id)
    form = BulkMoveForm(request.POST, stages=selectors.pool_stages(pool=pool))
    if form.is_valid():
        moved = services.memberships_move_bulk(
            pool=pool,
            membership_ids=form.cleaned_data["membership"],
            to_stage=form.target_stage,
            actor=request.user,
        )
        messages.success(
            request,
            f"{moved} candidate{'s' if moved != 1 else ''} moved to “{form.target_stage.name}”.",
        )
    elif "membership" in form.errors:
        messages.error(request, "Tick the cards you want to move, then choose their stage.")
    else:
        messages.error(
            request,
            "That stage is no longer on this board (it was archived or removed). "
            "Reload the board to see its current stages.",
        )
    return redirect(_board_url(pool, _query_without_paging(request)))


@require_POST
@recruiter_required
def card_remove(request, org_slug, pool_id, pool_membership_id):
    pool = _open_pool(request, pool_id)
    membership = selectors.pool_membership_get(pool=pool, pool_membership_id=pool_membership_id)
    services.pool_remove_candidates(
        pool=pool, candidate_ids=[membership.candidate_id], actor=request.user
    )
    if membership.source == PoolMembership.Source.SMART:
        messages.info(
            request,
            f"{membership.candidate.full_name} was removed from “{pool.name}”; they come back "
            "at the next refresh while they match its search.",
        )
    else:
        messages.success(
            request, f"{membership.candidate.full_name} was removed from “{pool.name}”."
        )
    fallback = _board_url(pool, _query_without_paging(request))
    return redirect(_safe_next(request, fallback))


# --- adding candidates ---


@recruiter_required
def pool_add(request, org_slug):
    """Add a selection to a pool: POSTed candidate ids, or every candidate a filter query
    string finds. GET shows the choice of pool for that selection.

    "All N matching" is all that matched when this page counted N: the page carries the
    highest candidate id at that moment (`up_to_id`) and the count, so a candidate added
    before the POST is not added, and a count that changed meanwhile is said. It runs as the
    list's own bulk actions do (candidates.services.bulk): at once for a small selection,
    else as a job in batches whose progress page the recruiter is sent to."""
    pools = selectors.pools_visible(organization=request.organization, user=request.user).filter(
        kind=Pool.Kind.STATIC
    )
    data = request.POST if request.method == "POST" else request.GET
    form = AddToPoolForm(data if "pool" in data else None, pools=pools, initial=data.dict())
    selection = destination_selection(data)
    if request.method == "POST" and form.is_valid():
        try:
            return _pool_add(request, form.cleaned_data["pool"], selection)
        except ValidationError as error:  # the pool archived a moment ago
            form.add_error(None, error)
    selection_count = destination_selection_count(
        organization=request.organization, selection=selection
    )
    context = {
        "form": form,
        "candidate_ids": selection.candidate_ids,
        "query": selection.query,
        "up_to_id": selection.up_to_id,
        "selection_count": selection_count,
        "in_background": not bulk.bulk_runs_inline(total=selection_count),
        "has_pools": pools.exists(),
    }
    return render(request, "pipelines/pool_add.html", context)


def _pool_add(request, pool: Pool, selection: DestinationSelection) -> HttpResponse:
    args = services.pool_add_args(pool=pool)
    return destination_run(
        request,
        selection=selection,
        action=services.POOL_ADD_ACTION,
        args=args,
        label="Add to a private pool" if args["private"] else f"Add to “{pool.name}”",
        # The recruiter who chose the pool reads its name, a private one's too.
        outcome_args={"pool_name": pool.name},
        done_url=reverse(
            "pipelines:pool_board",
            kwargs={"org_slug": request.organization.slug, "pool_id": pool.pk},
        ),
        success_needs_change=False,  # "Everyone selected was already in …" is good news too
    )


@require_POST
@recruiter_required
def candidate_add_to_pool(request, org_slug, candidate_id):
    """The profile's "Add to pool" form."""
    candidate = candidate_get(organization=request.organization, candidate_id=candidate_id)
    pools = selectors.pools_visible(organization=request.organization, user=request.user).filter(
        kind=Pool.Kind.STATIC
    )
    form = PoolPickForm(request.POST, pools=pools)
    fallback = reverse(
        "candidates:detail", kwargs={"org_slug": org_slug, "candidate_id": candidate.pk}
    )
    if form.is_valid():
        pool = form.cleaned_data["pool"]
        added = services.pool_add_candidates(
            pool=pool, candidate_ids=[candidate.pk], actor=request.user
        )
        if added:
            messages.success(request, f"{candidate.full_name} was added to “{pool.name}”.")
        else:
            messages.info(request, f"{candidate.full_name} is already in “{pool.name}”.")
    else:
        messages.error(request, "Choose a pool to add them to.")
    return redirect(_safe_next(request, fallback))


# --- stages (the organisation's defaults, or a pool's own) ---


def _stage_scope(request, pool_id):
    """(pool or None, the stages page URL); 403 for those who may not edit these stages."""
    if pool_id is None:
        if not request.membership.is_admin:
            raise PermissionDenied("Only admins can edit the default stages.")
        return None, reverse("pipelines:stage_list", kwargs={"org_slug": request.organization.slug})
    pool = _managed_pool(request, pool_id)
    if not pool.custom_stages:
        raise PermissionDenied("This pool uses the organisation's stages.")
    return pool, reverse(
        "pipelines:pool_stage_list",
        kwargs={"org_slug": request.organization.slug, "pool_id": pool.pk},
    )


@recruiter_required
def stage_list(request, org_slug, pool_id=None):
    pool, _url = _stage_scope(request, pool_id)
    if pool is None:
        stages = selectors.stages_default(organization=request.organization, include_archived=True)
    else:
        stages = selectors.pool_stages(pool=pool, include_archived=True)
    counts = selectors.stage_member_counts(stages=stages)
    rows = [(stage, counts.get(stage.pk, 0)) for stage in stages]
    context = {
        "pool": pool,
        "active_rows": [row for row in rows if not row[0].archived],
        "archived_rows": [row for row in rows if row[0].archived],
        "form": StageForm(),
        "active_tab": "stages" if pool is None else "pools",
    }
    return render(request, "pipelines/stage_list.html", context)


@require_POST
@recruiter_required
def stage_add(request, org_slug, pool_id=None):
    pool, url = _stage_scope(request, pool_id)
    form = StageForm(request.POST)
    if form.is_valid():
        try:
            stage = services.stage_create(
                organization=request.organization, pool=pool, **form.cleaned_data
            )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f"The stage “{stage.name}” was added.")
            return redirect(url)
    stages = (
        selectors.stages_default(organization=request.organization, include_archived=True)
        if pool is None
        else selectors.pool_stages(pool=pool, include_archived=True)
    )
    counts = selectors.stage_member_counts(stages=stages)
    rows = [(stage, counts.get(stage.pk, 0)) for stage in stages]
    context = {
        "pool": pool,
        "active_rows": [row for row in rows if not row[0].archived],
        "archived_rows": [row for row in rows if row[0].archived],
        "form": form,
        "active_tab": "stages" if pool is None else "pools",
    }
    return render(request, "pipelines/stage_list.html", context, status=400)


@recruiter_required
def stage_edit(request, org_slug, stage_id, pool_id=None):
    pool, url = _stage_scope(request, pool_id)
    stage = selectors.stage_get(organization=request.organization, stage_id=stage_id, pool=pool)
    initial = {"name": stage.name, "outcome": stage.outcome}
    form = StageForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.stage_update(stage=stage, **form.cleaned_data)
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f"The stage “{stage.name}” was saved.")
            return redirect(url)
    return render(
        request,
        "pipelines/stage_form.html",
        {"form": form, "stage": stage, "pool": pool, "back_url": url, "active_tab": "stages"},
    )


@require_POST
@recruiter_required
def stage_reorder(request, org_slug, stage_id, pool_id=None):
    pool, url = _stage_scope(request, pool_id)
    stage = selectors.stage_get(organization=request.organization, stage_id=stage_id, pool=pool)
    services.stage_reorder(stage=stage, direction=request.POST.get("direction", ""))
    return redirect(url)


@require_POST
@recruiter_required
def stage_archive(request, org_slug, stage_id, pool_id=None):
    pool, url = _stage_scope(request, pool_id)
    stage = selectors.stage_get(organization=request.organization, stage_id=stage_id, pool=pool)
    try:
        if request.POST.get("archived", "1") == "0":
            services.stage_restore(stage=stage)
            messages.success(request, f"“{stage.name}” is back on the boards.")
        else:
            move_to = None
            move_to_id = id_from(request.POST.get("move_to", ""))
            if move_to_id is not None:
                move_to = next(
                    (
                        other
                        for other in (
                            selectors.stages_default(organization=request.organization)
                            if pool is None
                            else selectors.pool_stages(pool=pool)
                        )
                        if other.pk == move_to_id
                    ),
                    None,
                )
            moved = services.stage_archive(stage=stage, move_to=move_to, actor=request.user)
            note = (
                f" {moved:,} candidate{'s' if moved != 1 else ''} moved to “{move_to.name}”."
                if moved
                else ""
            )
            messages.success(
                request,
                f"“{stage.name}” was archived.{note} Its history is kept; restore it any time.",
            )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect(url)


@require_POST
@recruiter_required
def pool_customize_stages(request, org_slug, pool_id):
    pool = _managed_pool(request, pool_id)
    services.pool_customize_stages(pool=pool)
    messages.success(
        request, f"“{pool.name}” now has its own stages; changes here affect this pool only."
    )
    return redirect("pipelines:pool_stage_list", org_slug=org_slug, pool_id=pool.pk)


# --- roles ---


@require_safe
def role_list(request, org_slug):
    status = request.GET.get("status", "")
    if status not in HiringRole.Status.values:
        status = ""
    rows = selectors.role_list_rows(
        organization=request.organization, user=request.user, status=status
    )
    context = {
        "rows": rows,
        "status": status,
        "statuses": HiringRole.Status.choices,
        "active_tab": "roles",
    }
    return render(request, "pipelines/role_list.html", context)


def _role_form(request, role=None):
    pools = selectors.pools_visible(organization=request.organization, user=request.user)
    return RoleForm(request.POST or None, instance=role, pools=pools)


def _role_save(request, form, role=None):
    fields = {name: form.cleaned_data[name] for name in form.Meta.fields}
    return services.role_save(
        organization=request.organization,
        role=role,
        pools=list(form.cleaned_data["pools"]),
        actor=request.user,
        choosable_pools=form.fields["pools"].queryset,
        **fields,
    )


@recruiter_required
def role_create(request, org_slug):
    form = _role_form(request)
    if request.method == "POST" and form.is_valid():
        role = _role_save(request, form)
        messages.success(request, f"The role “{role.title}” was added.")
        return redirect("pipelines:role_list", org_slug=org_slug)
    return render(
        request, "pipelines/role_form.html", {"form": form, "role": None, "active_tab": "roles"}
    )


@recruiter_required
def role_edit(request, org_slug, role_id):
    role = selectors.role_get(organization=request.organization, role_id=role_id)
    form = _role_form(request, role)
    if request.method == "POST" and form.is_valid():
        role = _role_save(request, form, role)
        messages.success(request, f"The role “{role.title}” was saved.")
        return redirect("pipelines:role_list", org_slug=org_slug)
    return render(
        request, "pipelines/role_form.html", {"form": form, "role": role, "active_tab": "roles"}
    )


@require_POST
@recruiter_required
def role_delete(request, org_slug, role_id):
    role = selectors.role_get(organization=request.organization, role_id=role_id)
    services.role_delete(role=role)
    messages.success(request, f"The role “{role.title}” was deleted.")
    return redirect("pipelines:role_list", org_slug=org_slug)


# --- follow-ups ---

FOLLOW_UP_VIEWS = {"mine": "Mine", "unassigned": "Unassigned", "everyone": "Everyone"}


@require_safe
def follow_ups(request, org_slug):
    # A viewer cannot own follow-ups: "Mine" would always be empty, so they see everyone's.
    views, default = FOLLOW_UP_VIEWS, "mine"
    if not request.membership.can_write:
        views = {key: label for key, label in views.items() if key != "mine"}
        default = "everyone"
    show = request.GET.get("show", default)
    if show not in views:
        show = default
    follow_ups = selectors.follow_ups_open(
        organization=request.organization,
        owner=request.user if show == "mine" else None,
        unassigned=show == "unassigned",
    )
    today = timezone.localdate()
    groups = selectors.follow_ups_grouped(follow_ups=follow_ups, today=today)
    context = {
        "groups": groups,
        "show": show,
        "views": views,
        "today": today,
        "total": sum(len(items) for items in groups.values()),
        "snooze_choices": services.FOLLOW_UP_SNOOZE_DAYS.items(),
        "active_tab": "follow_ups",
    }
    return render(request, "pipelines/follow_ups.html", context)


@recruiter_required
def follow_up_create(request, org_slug, candidate_id):
    candidate = candidate_get(organization=request.organization, candidate_id=candidate_id)
    owners = candidate_owner_choices(organization=request.organization)
    initial = {
        "owner": request.user.pk,
        "due_on": timezone.localdate() + timezone.timedelta(days=90),
    }
    form = FollowUpForm(request.POST or None, owners=owners, initial=initial)
    back = reverse("candidates:detail", kwargs={"org_slug": org_slug, "candidate_id": candidate.pk})
    if request.method == "POST" and form.is_valid():
        services.follow_up_create(
            candidate=candidate,
            due_on=form.cleaned_data["due_on"],
            note=form.cleaned_data["note"],
            owner=form.cleaned_data["owner"],
            actor=request.user,
        )
        messages.success(
            request,
            f"Follow-up with {candidate.full_name} set for "
            f"{form.cleaned_data['due_on']:%-d %b %Y}.",
        )
        return redirect(_safe_next(request, back))
    context = {"form": form, "candidate": candidate, "back_url": back, "active_tab": "follow_ups"}
    return render(request, "pipelines/follow_up_form.html", context)


@require_POST
@recruiter_required
def follow_up_done(request, org_slug, follow_up_id):
    follow_up = selectors.follow_up_get(
        organization=request.organization, follow_up_id=follow_up_id
    )
    services.follow_up_complete(follow_up=follow_up, actor=request.user)
    messages.success(request, f"Follow-up with {follow_up.candidate.full_name} marked as done.")
    fallback = reverse("pipelines:follow_ups", kwargs={"org_slug": org_slug})
    return redirect(_safe_next(request, fallback))


@recruiter_required
def follow_up_edit(request, org_slug, follow_up_id):
    """Change an open follow-up's date, note or owner."""
    follow_up = selectors.follow_up_get(
        organization=request.organization, follow_up_id=follow_up_id
    )
    if follow_up.completed_at is not None:
        messages.info(request, "That follow-up is already done.")
        return redirect("pipelines:follow_ups", org_slug=org_slug)
    candidate = follow_up.candidate
    owners = candidate_owner_choices(organization=request.organization, include=follow_up.owner)
    form = FollowUpForm(request.POST or None, owners=owners, instance=follow_up)
    back = reverse("candidates:detail", kwargs={"org_slug": org_slug, "candidate_id": candidate.pk})
    if request.method == "POST" and form.is_valid():
        services.follow_up_update(
            follow_up=selectors.follow_up_get(
                organization=request.organization, follow_up_id=follow_up.pk
            ),
            due_on=form.cleaned_data["due_on"],
            note=form.cleaned_data["note"],
            owner=form.cleaned_data["owner"],
            actor=request.user,
        )
        messages.success(
            request,
            f"Follow-up with {candidate.full_name} set for {form.cleaned_data['due_on']:%-d %b %Y}.",
        )
        return redirect(_safe_next(request, back))
    context = {
        "form": form,
        "candidate": candidate,
        "follow_up": follow_up,
        "back_url": _safe_next(request, back),
        "active_tab": "follow_ups",
    }
    return render(request, "pipelines/follow_up_form.html", context)


@require_POST
@recruiter_required
def follow_up_later(request, org_slug, follow_up_id):
    """ "Remind me later": push an open follow-up a day, a week or a month."""
    follow_up = selectors.follow_up_get(
        organization=request.organization, follow_up_id=follow_up_id
    )
    fallback = reverse("pipelines:follow_ups", kwargs={"org_slug": org_slug})
    days = request.POST.get("days", "")
    if follow_up.completed_at is not None:
        messages.info(request, "That follow-up is already done.")
    elif id_from(days) not in services.FOLLOW_UP_SNOOZE_DAYS:
        messages.error(request, "Choose when to be reminded again.")
    else:
        try:
            services.follow_up_snooze(
                follow_up=follow_up,
                days=int(days),
                today=timezone.localdate(),
                actor=request.user,
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request,
                f"Follow-up with {follow_up.candidate.full_name} moved to "
                f"{follow_up.due_on:%-d %b %Y}.",
            )
    return redirect(_safe_next(request, fallback))
