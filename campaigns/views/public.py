"""Candidate-facing pages: no login, addressed by signed tokens (see services/tokens.py).

GET and HEAD never change anything (mail scanners follow every link); changes are POSTs. A
forged, expired or foreign token changes nothing and reveals nothing about the candidate: the
same neutral page, which names the organisation (how to reach it) only when the token is
genuine, so that a candidate with an old link still has a way to unsubscribe.
"""

import base64

from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_scopes import scope

from campaigns.forms import PreferencesForm
from campaigns.services import preferences as preference_service
from campaigns.services import tokens, tracking
from campaigns.services.role_families import role_family_choices
from campaigns.services.topics import topic_choices
from crm.models import Organization

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _invalid(request, token: str, *, page: str = "unsubscribe"):
    """The page for a link that no longer works. A genuine but expired token (or one whose
    candidate is gone) still names its organisation: the page then gives its contact address.
    Whether the candidate exists never shows. The links of a preview or a test send (no
    candidate, `tokens.TEST_EMAIL_TOKEN`) get a page that says so instead: a recruiter who
    clicks them in their own test email is not told that the link has expired."""
    if token == tokens.TEST_EMAIL_TOKEN:
        return render(request, "campaigns/public/test_link.html", {"page": page})
    organization_id = tokens.token_organization_id(token, salt=tokens.CANDIDATE_SALT)
    organization = (
        Organization.objects.filter(pk=organization_id).first() if organization_id else None
    )
    return render(
        request, "campaigns/public/invalid.html", {"organization": organization}, status=404
    )


@csrf_exempt  # RFC 8058: mail providers POST without cookies; the signed token is the proof
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request, token):
    """GET/HEAD: a page with a confirm button. POST with ``List-Unsubscribe=One-Click``
    (urlencoded or multipart, from a mail provider or from that button): unsubscribe at once
    and answer 200, never a redirect."""
    found = preference_service.candidate_from_token(token)
    if found is None:
        return _invalid(request, token)
    organization, candidate, message_id = found
    if request.method == "POST" and request.POST.get("List-Unsubscribe") != "One-Click":
        return HttpResponseBadRequest("Expected List-Unsubscribe=One-Click.")
    with scope(organization=organization):
        if request.method == "POST":
            preference_service.candidate_unsubscribe(
                candidate=candidate, message_id=message_id, source="one-click"
            )
            unsubscribed = True  # now, or already before
        else:
            unsubscribed = preference_service.candidate_is_unsubscribed(candidate=candidate)
        return render(
            request,
            "campaigns/public/unsubscribe.html",
            {
                "organization": organization,
                "token": token,
                "unsubscribed": unsubscribed,
                "just_unsubscribed": request.method == "POST",
            },
        )


@never_cache
@require_POST
def resubscribe(request, token):
    found = preference_service.candidate_from_token(token)
    if found is None:
        return _invalid(request, token)
    organization, candidate, _ = found
    with scope(organization=organization):
        preference_service.candidate_resubscribe(candidate=candidate)
    return redirect(reverse("campaigns_public:preferences", args=[token]) + "?resubscribed=1")


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def preferences(request, token):
    found = preference_service.candidate_from_token(token)
    if found is None:
        return _invalid(request, token, page="preferences")
    organization, candidate, _ = found
    with scope(organization=organization):
        preference = preference_service.preference_read(candidate=candidate)
        topics = topic_choices(organization=organization, with_descriptions=True)
        families = role_family_choices(organization=organization)
        form = PreferencesForm.for_candidate(
            request.POST if request.method == "POST" else None,
            candidate=candidate,
            preference=preference,
            topics=topics,
            role_families=families,
        )
        saved = form.is_bound and form.is_valid()
        if saved:
            preference = preference_service.candidate_preferences_update(
                candidate=candidate, **form.cleaned_data
            )
            # Shown again as saved (a pause just chosen is now "Keep the pause").
            form = PreferencesForm.for_candidate(
                candidate=candidate, preference=preference, topics=topics, role_families=families
            )
        return render(
            request,
            "campaigns/public/preferences.html",
            {
                "organization": organization,
                "candidate_first_name": candidate.first_name,
                "form": form,
                "preference": preference,
                "token": token,
                "saved": saved,
                # After the Resubscribe button (a redirect here); only says what is true.
                "resubscribed": request.GET.get("resubscribed") == "1"
                and not preference.unsubscribed_at,
                "still_blocked": request.GET.get("resubscribed") == "1"
                and preference_service.candidate_still_blocked(candidate=candidate),
                "paused_until": preference_service.pause_end(preference, organization=organization),
            },
        )


@never_cache
@require_GET
def open_pixel(request, token):
    """Always the same 1x1 GIF, whatever the token: the answer reveals nothing. The open is
    buffered (no database work here) and written by the tracking flush; while Redis is down it
    is written here, and the GIF answers even if that fails."""
    tracking.open_record(
        token=token,
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
        ip=request.META.get("REMOTE_ADDR", ""),
    )
    return HttpResponse(PIXEL, content_type="image/gif")


@never_cache
@require_GET
def click(request, token):
    """Redirect to the link the email contained. There is no URL in the request: a `url`
    parameter, an unknown link or an unsafe stored one is a 400, never a redirect. The invisible
    trap link answers an empty page (only machines follow it). The click is buffered, or
    written here while Redis is down; the redirect does not depend on either."""
    if request.GET:
        return HttpResponseBadRequest("Unexpected parameters.")
    outcome = tracking.click_record(
        token=token,
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
        ip=request.META.get("REMOTE_ADDR", ""),
    )
    if outcome is None:
        return HttpResponseBadRequest("This link is not valid.")
    if outcome.is_trap:
        return HttpResponse("", content_type="text/plain")
    return HttpResponseRedirect(outcome.target)
