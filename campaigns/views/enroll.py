"""Enroll a selection of the candidate list in a running sequence (the list's bulk menu hands
the selection over: ticked ids, or a filter query for "all matching"). Guard rails are checked
again when each step is sent, so enrolling someone who opts out later is harmless.

It runs as the list's own bulk actions do (candidates.services.bulk): at once for a small
selection, else as a job in batches whose progress page the recruiter is sent to."""

from django import forms
from django.shortcuts import render
from django.urls import reverse

from campaigns.models import Campaign
from campaigns.services.sequences import ENROLL_ACTION
from candidates.services import bulk
from candidates.views.destinations import (
    destination_run,
    destination_selection,
    destination_selection_count,
)
from crm.ids import id_from
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
    selection = destination_selection(data)
    if request.method == "POST" and form.is_valid():
        campaign = form.cleaned_data["campaign"]
        return destination_run(
            request,
            selection=selection,
            action=ENROLL_ACTION,
            args={"campaign_id": campaign.pk, "campaign_name": campaign.name},
            label=f"Enroll in “{campaign.name}”",
            outcome_args={"campaign_name": campaign.name},
            done_url=reverse(
                "campaigns:detail",
                kwargs={"org_slug": organization.slug, "campaign_id": campaign.pk},
            ),
        )
    selection_count = destination_selection_count(organization=organization, selection=selection)
    context = {
        "form": form,
        "candidate_ids": selection.candidate_ids,
        "query": selection.query,
        "up_to_id": selection.up_to_id,
        "selection_count": selection_count,
        "in_background": not bulk.bulk_runs_inline(total=selection_count),
        "has_sequences": sequences.exists(),
    }
    return render(request, "campaigns/enroll.html", context)
