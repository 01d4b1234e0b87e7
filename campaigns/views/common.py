"""Helpers shared by the campaign views."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.views.decorators.clickjacking import xframe_options_sameorigin

from campaigns.forms import PreviewCandidateForm
from campaigns.services import rendering
from campaigns.services import templates as template_service
from candidates.services.custom_fields import custom_fields_active

# Rendered emails are shown in a sandboxed <iframe> on our own pages. They carry inline styles
# (email clients need them), so they get their own strict policy instead of the site's: no
# scripts at all, no forms, only our frame may embed them. `allow-same-origin` only lets our
# page read the email's height to size the frame (static/js/rapport.js, fitEmailFrame); never
# add `allow-scripts` beside it, which would let the document lift its own sandbox.
EMAIL_FRAME_POLICY = (
    "default-src 'none'; img-src 'self' data: https:; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'; sandbox allow-same-origin"
)


def email_html_response(html: str) -> HttpResponse:
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = EMAIL_FRAME_POLICY
    return response


def problems_html(problems: list[str]) -> str:
    from django.utils.html import format_html, format_html_join

    items = format_html_join("", "<li>{}</li>", ((p,) for p in problems))
    return format_html(
        '<!DOCTYPE html><html><body style="font-family:system-ui,sans-serif;color:#842029;'
        'padding:1rem"><p><strong>The preview cannot be shown yet:</strong></p><ul>{}</ul>'
        "</body></html>",
        items,
    )


frame_view = xframe_options_sameorigin


def merge_fields_context(*, organization) -> dict:
    """What the merge-field list beside every email editor shows: the built-in fields, the
    organisation's custom.* fields and the filters."""
    return {
        "merge_fields": rendering.MERGE_FIELDS.values(),
        "custom_fields": custom_fields_active(organization=organization),
        "allowed_filters": sorted(rendering.ALLOWED_FILTERS),
    }


def unsaved_text(request) -> dict:
    """The editor's unsaved subject, preheader and body a preview POST carries, for those who
    may edit the email; {} (preview the saved email) for anyone else: a viewer's editor has no
    fields to send, and nobody else needs the web worker to render text that will not be
    saved."""
    if request.method != "POST" or not request.membership.can_write:
        return {}
    return {
        name: request.POST[name]
        for name in ("subject", "preheader", "body_markdown")
        if name in request.POST
    }


def step_preview_response(request, *, campaign, step, candidates) -> HttpResponse:
    """A campaign email for its preview frame: the saved step (GET) or the editor's unsaved
    text (a recruiter's POST), as a chosen candidate among `candidates` or with the sample
    values."""
    source = unsaved_text(request)
    preview_form = PreviewCandidateForm(
        request.POST if request.method == "POST" else request.GET, candidates=candidates
    )
    candidate = preview_form.cleaned_data.get("candidate") if preview_form.is_valid() else None
    built, problems = template_service.email_preview(
        organization=request.organization,
        user=request.user,
        subject=source.get("subject", step.subject),
        preheader=source.get("preheader", step.preheader),
        body_markdown=source.get("body_markdown", step.body_markdown),
        candidate=candidate,
        campaign=campaign,
    )
    return email_html_response(built.html if built else problems_html(problems))


def step_send_test(request, *, campaign, step, candidates, what: str) -> None:
    """ "Send a test to me": the step's saved email, as a chosen candidate among `candidates`
    (or the samples) would get it, to the recruiter's own address through the outbox; the
    outcome is a message for the next page, `what` names the email in it ("A test email")."""
    preview_form = PreviewCandidateForm(request.POST, candidates=candidates)
    candidate = preview_form.cleaned_data.get("candidate") if preview_form.is_valid() else None
    try:
        template_service.email_send_test(
            organization=request.organization,
            user=request.user,
            subject=step.subject,
            preheader=step.preheader,
            body_markdown=step.body_markdown,
            candidate=candidate,
            campaign=campaign,
            step=step,
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"{what} is on its way to {request.user.email}.")
