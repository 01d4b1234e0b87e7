"""Your email signature: how you appear in the campaign emails you send."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from campaigns.forms import SenderProfileForm
from campaigns.services import rendering
from campaigns.services.sender_profiles import sender_profile_get, sender_profile_update
from crm.permissions import recruiter_required


@recruiter_required
@require_http_methods(["GET", "POST"])
def sender_profile_edit(request, org_slug):
    profile = sender_profile_get(organization=request.organization, user=request.user)
    form = SenderProfileForm(
        request.POST or None,
        email=request.user.email,
        initial={
            "name": request.user.name,
            "job_title": request.user.job_title,
            "signature": profile.signature,
        },
    )
    if request.method == "POST" and form.is_valid():
        sender_profile_update(
            organization=request.organization, user=request.user, **form.cleaned_data
        )
        messages.success(request, "Saved: your campaign emails sign off this way from now on.")
        return redirect("campaigns:sender_profile", org_slug=org_slug)
    signature_lines = (
        profile.signature.splitlines()
        if profile.signature
        else rendering.MERGE_FIELDS["recruiter"].sample["signature"].splitlines()
    )
    return render(
        request,
        "campaigns/sender_profile.html",
        {"form": form, "profile": profile, "signature_lines": signature_lines},
    )
