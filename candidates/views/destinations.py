"""For other apps' pages that act on a candidate-list selection (a
`candidates.panels.BulkDestination`: pipelines' "Add to pool", campaigns' "Enroll in a
sequence"): read the selection the list handed over, count it for the confirmation, and run
the app's registered `BulkJobAction` on it as the list's own bulk actions run — at once for a
small selection, with its outcome as messages, else as a job whose progress page the
recruiter is sent to."""

from dataclasses import dataclass

from django.contrib import messages
from django.http import HttpResponse, QueryDict
from django.shortcuts import redirect

from candidates.selectors import candidate_selection_queryset
from candidates.services import bulk
from crm.ids import id_from, ids_from


@dataclass(frozen=True)
class DestinationSelection:
    """The ticked ids, or "all matching" a list query string among the candidates up to
    `up_to_id` (the bound the page counted under)."""

    candidate_ids: list[int]
    query: str
    up_to_id: int | None

    def __bool__(self) -> bool:
        return bool(self.candidate_ids or self.query)


def destination_selection(data: QueryDict) -> DestinationSelection:
    """The selection a destination page got (GET from the list, POST from its own form).
    "All N matching" is all that matched when the page counted N: the page carries the highest
    candidate id at that moment (`up_to_id`), so a candidate added before the POST is left
    out; a page from before the bound was carried is bound now."""
    candidate_ids = ids_from(data.getlist("candidate"))
    query = data.get("query", "")
    up_to_id = None
    if query and not candidate_ids:
        up_to_id = id_from(data.get("up_to_id"))
        if up_to_id is None:
            up_to_id = bulk.bulk_highest_candidate_id()
    return DestinationSelection(candidate_ids, query, up_to_id)


def destination_selection_count(*, organization, selection: DestinationSelection) -> int:
    """How many live candidates the selection names (0 for none), for the confirmation."""
    if not selection:
        return 0
    return candidate_selection_queryset(
        organization=organization,
        candidate_ids=selection.candidate_ids,
        query=selection.query,
        up_to_id=selection.up_to_id,
    ).count()


def destination_run(
    request,
    *,
    selection: DestinationSelection,
    action: str,
    args: dict,
    label: str,
    outcome_args: dict,
    done_url: str,
    success_needs_change: bool = True,
) -> HttpResponse:
    """Run the registered bulk job action `action` on the selection. A small one runs at once:
    its outcome (`BulkJobAction.outcome` with `outcome_args`) becomes messages, the first a
    success when the action changed someone (or, without `success_needs_change`, found
    anyone), with how the number found differs from the count the page confirmed; then to
    `done_url`. A larger one starts a job and goes to its page. A ValidationError from the
    action (what it acts on went away meanwhile) reaches the caller."""
    organization = request.organization
    outcome = bulk.bulk_start(
        organization=organization,
        actor=request.user,
        action=action,
        args=args,
        selection=bulk.bulk_selection(
            organization=organization,
            ids=selection.candidate_ids,
            select_all=not selection.candidate_ids,
            query=selection.query,
            up_to_id=selection.up_to_id,
        ),
        label=label,
    )
    if outcome.job:  # its page says what is going on, as for the list's own bulk actions
        return redirect("candidates:job_detail", org_slug=organization.slug, job_id=outcome.job.pk)
    said = bulk.BULK_JOB_ACTIONS[action].outcome(outcome_args, outcome.changed, outcome.total)
    if said and (outcome.changed if success_needs_change else outcome.total):
        messages.success(request, said.pop(0))
    for sentence in said:
        messages.info(request, sentence)
    difference = bulk.bulk_confirmed_difference_text(
        confirmed=id_from(request.POST.get("confirmed_count")),
        found=outcome.total,
        ticked=bool(selection.candidate_ids),
    )
    if difference:
        messages.info(request, difference)
    return redirect(done_url)
