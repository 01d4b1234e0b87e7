"""Files on a candidate's profile: upload (recruiters), download (every member), delete.

The upload form lives in the profile's Files card (candidates/includes/profile_attachments.html).
With htmx an invalid upload re-renders that card with the error next to the field, and a
successful one reloads the profile; without JavaScript both redirect back to the profile.
"""

from django.contrib import messages
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe
from django_htmx.http import HttpResponseClientRedirect

from candidates.forms import AttachmentUploadForm
from candidates.selectors import attachment_get, candidate_get
from candidates.services.attachments import (
    attachment_clean_name,
    attachment_create,
    attachment_delete,
)
from crm.permissions import recruiter_required


def _files_url(request, candidate_id: int) -> str:
    return reverse("candidates:detail", args=[request.organization.slug, candidate_id]) + "#files"


@recruiter_required
@require_POST
def attachment_upload(request, org_slug, candidate_id):
    candidate = candidate_get(organization=request.organization, candidate_id=candidate_id)
    form = AttachmentUploadForm(request.POST, request.FILES)
    if form.is_valid():
        attachment = attachment_create(
            candidate=candidate,
            uploaded_file=form.cleaned_data["file"],
            kind=form.cleaned_data["kind"],
            actor=request.user,
        )
        messages.success(
            request, f"“{attachment.original_name}” was added. Its text will be searchable shortly."
        )
        if request.htmx:
            return HttpResponseClientRedirect(_files_url(request, candidate.pk))
        return redirect(_files_url(request, candidate.pk))
    if request.htmx:
        context = {"candidate": candidate, "attachment_form": form}
        return render(request, "candidates/includes/profile_attachments.html", context)
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, f"The file was not added: {error}")
    return redirect(_files_url(request, candidate.pk))


@require_safe
def attachment_download(request, org_slug, attachment_id):
    attachment = attachment_get(organization=request.organization, attachment_id=attachment_id)
    try:
        handle = attachment.file.open("rb")
    except (FileNotFoundError, ValueError):
        raise Http404("The file is missing from storage.") from None
    # FileResponse writes an RFC 6266 Content-Disposition (filename*=UTF-8''… when the name is
    # not plain ASCII). The name is cleaned again for files stored before names got the
    # extension of their detected type ("cv.bat" holding a PDF downloads as "cv.bat.pdf").
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=attachment_clean_name(
            attachment.original_name, content_type=attachment.content_type
        ),
        content_type=attachment.content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@recruiter_required
@require_POST
def attachment_remove(request, org_slug, attachment_id):
    attachment = attachment_get(organization=request.organization, attachment_id=attachment_id)
    candidate_id, name = attachment.candidate_id, attachment.original_name
    attachment_delete(attachment=attachment, actor=request.user)
    messages.success(request, f"“{name}” was deleted.")
    return redirect(_files_url(request, candidate_id))
