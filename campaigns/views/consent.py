"""Double opt-in: a recruiter asks a candidate to confirm; the candidate confirms on a signed
page (GET shows the button and changes nothing; the POST confirms)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from django_scopes import scope

from campaigns.forms import ConsentRequestForm
from campaigns.services import consent as consent_service
from candidates.selectors import candidate_get
from crm.permissions import recruiter_required


@require_POST
@recruiter_required
def consent_request(request, org_slug, candidate_id):
    candidate = candidate_get(organization=request.organization, candidate_id=candidate_id)
    form = ConsentRequestForm(request.POST)
    if form.is_valid():
        try:
            consent = consent_service.consent_request_double_opt_in(
                candidate=candidate,
                source=form.cleaned_data["source"],
                wording=form.cleaned_data["wording"],
                actor=request.user,
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            if consent.granted_at:
                messages.info(request, "This candidate has already given consent.")
            else:
                messages.success(
                    request, f"A confirmation email is on its way to {candidate.email}."
                )
    else:
        messages.error(request, "Give the source and the wording the candidate agrees to.")
    return redirect("candidates:detail", org_slug=org_slug, candidate_id=candidate.pk)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def consent_confirm(request, token):
    found = consent_service.consent_from_token(token)
    if found is None:
        return render(request, "campaigns/public/invalid.html", status=404)
    organization, candidate, consent = found
    with scope(organization=organization):
        just_confirmed = False
        if request.method == "POST":
            just_confirmed = consent_service.consent_confirm(consent=consent)
            consent.refresh_from_db()
        return render(
            request,
            "campaigns/public/consent_confirm.html",
            {
                "organization": organization,
                "candidate_first_name": candidate.first_name,
                "consent": consent,
                "token": token,
                "just_confirmed": just_confirmed,
            },
        )
