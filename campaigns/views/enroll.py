"""Enroll a selection of the candidate list in a running sequence (the list's bulk menu hands
the selection over: ticked ids, or a filter query for "all matching"). Guard rails are checked
again when each step is sent, so enrolling someone who opts out later is harmless.

It runs as the list's own bulk actions do (candidates.services.bulk): at once for a small
selection, else as a job in batches whose progress page the recruiter is sent to."""

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render

from campaigns.models import Campaign
from campaigns.services.sequences import ENROLL_ACTION, sequence_enroll_outcome
from candidates.selectors import candidate_selection_queryset
from candidates.services import bulk
from crm.ids import id_from, ids_from
from crm.permissions import recruiter_required


class EnrollForm(forms.Form):
    campaign = forms.ModelChoiceField(
        queryset=None, label="Sequence", empty_label="Choose a sequence"
    )
    candidate = forms.TypedMultipleChoiceField(
        coerce=int, required=False, choices=(), widget=forms.MultipleHiddenInput
    )
    query = forms.CharField(required=False, widget=forms.HiddenInput, max_length=4000)

    def __init__(self, *args, sequences, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["campaign"].queryset = sequences
        values = self.data.getlist("candidate") if hasattr(self.data, "getlist") else []
        self.fields["candidate"].choices = [(v, v) for v in values if id_from(v) is not None]

    def clean(self):
        data = super().clean()
        if not data.get("candidate") and not data.get("query"):
            raise forms.ValidationError("Select some candidates on the candidate list first.")
        return data


def _sequences(organization):
    return Campaign.objects.filter(
        organization=organization,
        kind=Campaign.Kind.SEQUENCE,
        status__in=[Campaign.Status.RUNNING, Campaign.Status.SCHEDULED, Campaign.Status.PAUSED],
    ).order_by("name")


@recruiter_required
def campaign_enroll(request, org_slug):
    """GET: choose the sequence for the selection; POST: enroll it.

    "All N matching" is all that matched when this page counted N: the page carries the
    highest candidate id at that moment (`up_to_id`) and the count, so a candidate added
    before the POST is not enrolled, and a count that changed meanwhile is said."""
    organization = request.organization
    sequences = _sequences(organization)
    data = request.POST if request.method == "POST" else request.GET
    form = EnrollForm(data if request.method == "POST" else None, sequences=sequences)
    candidate_ids = ids_from(data.getlist("candidate"))
    query = data.get("query", "")
    up_to_id = None
    if query and not candidate_ids:
        # The bound the page counted under; a page from before it was carried: bound now.
        up_to_id = id_from(data.get("up_to_id"))
        if up_to_id is None:
            up_to_id = bulk.bulk_highest_candidate_id()
    if request.method == "POST" and form.is_valid():
        return _enroll(request, form.cleaned_data["campaign"], candidate_ids, query, up_to_id)
    selection = (
        candidate_selection_queryset(
            organization=organization,
            candidate_ids=candidate_ids,
            query=query,
            up_to_id=up_to_id,
        )
        if candidate_ids or query
        else None
    )
    selection_count = selection.count() if selection is not None else 0
    context = {
        "form": form,
        "candidate_ids": candidate_ids,
        "query": query,
        "up_to_id": up_to_id,
        "selection_count": selection_count,
        "in_background": not bulk.bulk_runs_inline(total=selection_count),
        "has_sequences": sequences.exists(),
    }
    return render(request, "campaigns/enroll.html", context)


def _enroll(request, campaign, candidate_ids, query, up_to_id):
    """Enroll the selection at once when it is small (and say how it went), else start a job
    and send the recruiter to its progress page."""
    organization = request.organization
    selection = bulk.bulk_selection(
        organization=organization,
        ids=candidate_ids,
        select_all=not candidate_ids,
        query=query,
        up_to_id=up_to_id,
    )
    outcome = bulk.bulk_start(
        organization=organization,
        actor=request.user,
        action=ENROLL_ACTION,
        args={"campaign_id": campaign.pk, "campaign_name": campaign.name},
        selection=selection,
        label=f"Enroll in “{campaign.name}”",
    )
    if outcome.job:  # its page says what is going on, as for the list's own bulk actions
        return redirect("candidates:job_detail", org_slug=organization.slug, job_id=outcome.job.pk)
    said = sequence_enroll_outcome({"campaign_name": campaign.name}, outcome.changed, outcome.total)
    if outcome.changed:
        messages.success(request, said.pop(0))
    for sentence in said:
        messages.info(request, sentence)
    difference = bulk.bulk_confirmed_difference_text(
        confirmed=id_from(request.POST.get("confirmed_count")),
        found=outcome.total,
        ticked=bool(candidate_ids),
    )
    if difference:
        messages.info(request, difference)
    return redirect("campaigns:detail", org_slug=organization.slug, campaign_id=campaign.pk)
