"""Email templates: list, write with validation at save time, preview, send a test."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from campaigns.forms import EmailTemplateForm, PreviewCandidateForm
from campaigns.selectors import email_template_get, email_templates_for_list
from campaigns.services import templates as template_service
from campaigns.views.common import (
    email_html_response,
    frame_view,
    merge_fields_context,
    problems_html,
    unsaved_text,
)
from candidates.models import Candidate
from crm.permissions import recruiter_required


def _preview_candidates(organization):
    return Candidate.objects.live().filter(organization=organization).order_by("-created_at", "-id")


@require_safe
def template_list(request, org_slug):
    templates = email_templates_for_list(organization=request.organization)
    return render(request, "campaigns/template_list.html", {"templates": templates})


def _editor(request, form, template=None):
    return render(
        request,
        "campaigns/template_form.html",
        {
            "form": form,
            "template": template,
            **merge_fields_context(organization=request.organization),
            "preview_form": PreviewCandidateForm(
                request.GET or None, candidates=_preview_candidates(request.organization)
            ),
        },
    )


@recruiter_required
def template_create(request, org_slug):
    form = EmailTemplateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            template = template_service.email_template_create(
                organization=request.organization, user=request.user, **form.cleaned_data
            )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f"The template “{template.name}” was saved.")
            return redirect("campaigns:template_edit", org_slug=org_slug, template_id=template.pk)
    return _editor(request, form)


@require_http_methods(["GET", "POST"])
def template_edit(request, org_slug, template_id):
    template = email_template_get(organization=request.organization, template_id=template_id)
    if request.method == "POST":
        return _template_save(request, template)
    form = EmailTemplateForm(template=template, read_only=not request.membership.can_write)
    return _editor(request, form, template)


@recruiter_required
def _template_save(request, template):
    form = EmailTemplateForm(request.POST, template=template)
    if form.is_valid():
        try:
            template_service.email_template_update(template=template, **form.cleaned_data)
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f"The template “{template.name}” was saved.")
            return redirect(
                "campaigns:template_edit",
                org_slug=request.organization.slug,
                template_id=template.pk,
            )
    return _editor(request, form, template)


@frame_view
@require_http_methods(["GET", "POST"])
def template_preview(request, org_slug, template_id):
    """The email as HTML for the editor's preview frame: the saved version (GET), or the
    unsaved text of the editor (POST, the "Update preview" button targets the frame) — only for
    those who may edit it: a viewer's POST ("Show preview" as a candidate) shows the saved one."""
    template = email_template_get(organization=request.organization, template_id=template_id)
    source = unsaved_text(request)
    preview_form = PreviewCandidateForm(
        request.POST if request.method == "POST" else request.GET,
        candidates=_preview_candidates(request.organization),
    )
    candidate = preview_form.cleaned_data.get("candidate") if preview_form.is_valid() else None
    built, problems = template_service.email_preview(
        organization=request.organization,
        user=request.user,
        subject=source.get("subject", template.subject),
        preheader=source.get("preheader", template.preheader),
        body_markdown=source.get("body_markdown", template.body_markdown),
        candidate=candidate,
    )
    return email_html_response(built.html if built else problems_html(problems))


@require_POST
@recruiter_required
def template_test_send(request, org_slug, template_id):
    template = email_template_get(organization=request.organization, template_id=template_id)
    try:
        template_service.email_send_test(
            organization=request.organization,
            user=request.user,
            subject=template.subject,
            preheader=template.preheader,
            body_markdown=template.body_markdown,
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"A test email is on its way to {request.user.email}.")
    return redirect("campaigns:template_edit", org_slug=org_slug, template_id=template.pk)
