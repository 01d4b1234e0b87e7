"""Importing candidates from a spreadsheet: upload → map columns → preview → run (a Job whose
progress page is candidates:job_detail). Recruiters and admins only."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from candidates.forms import ImportMappingForm, ImportUploadForm, phone_region_label
from candidates.importing.reading import ImportFileError, max_upload_bytes
from candidates.models import Job
from candidates.selectors import import_drafts_of, import_job_get, import_jobs_recent
from candidates.services import imports
from candidates.services.custom_fields import custom_fields_active
from crm.permissions import recruiter_required


@recruiter_required
def import_upload(request, org_slug):
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        job = imports.import_create(
            organization=request.organization,
            user=request.user,
            upload=form.cleaned_data["file"],
            info=form.info,
        )
        return redirect("candidates:import_mapping", org_slug=org_slug, job_id=job.pk)
    context = {
        "form": form,
        "recent_jobs": import_jobs_recent(organization=request.organization),
        "drafts": import_drafts_of(organization=request.organization, user=request.user),
        "max_megabytes": max_upload_bytes() // (1024 * 1024),
        "step": 1,
    }
    return render(request, "candidates/import_upload.html", context)


def _draft_or_progress(request, job: Job):
    """A job that has been started is shown on its progress page instead of being edited."""
    if job.status != Job.Status.DRAFT:
        return redirect("candidates:job_detail", org_slug=request.organization.slug, job_id=job.pk)
    return None


@recruiter_required
def import_mapping(request, org_slug, job_id):
    job = import_job_get(organization=request.organization, job_id=job_id)
    if started := _draft_or_progress(request, job):
        return started
    options = job.params["options"]
    initial = {
        **{f"column_{i}": target for i, target in enumerate(job.params["mapping"])},
        **options,
        "tags": ", ".join(options.get("tags", [])),
    }
    form = ImportMappingForm(
        request.POST or None,
        initial=initial,
        headers=job.params["file"]["headers"],
        samples=job.params["file"]["samples"],
        custom_fields=custom_fields_active(organization=request.organization),
    )
    if request.method == "POST" and form.is_valid():
        imports.import_configure(job=job, mapping=form.mapping(), options=form.options())
        return redirect("candidates:import_preview", org_slug=org_slug, job_id=job.pk)
    context = {"job": job, "form": form, "file": job.params["file"], "step": 2}
    return render(request, "candidates/import_mapping.html", context)


def _phone_region_hint(preview: imports.Preview, options: dict) -> str:
    """The country assumed for phone numbers without a country code, when phone cells of the
    preview fail: "“01 42 68 53 01” is not a valid phone number" alone does not say that the
    number was read as, say, a British one."""
    region = options.get("phone_region")
    keys = [key for key, _label in preview.columns]
    if not region or "phone" not in keys:
        return ""
    index = keys.index("phone")
    if not any(row.cells[index].error for row in preview.rows):
        return ""
    return phone_region_label(region)


@recruiter_required
def import_preview(request, org_slug, job_id):
    job = import_job_get(organization=request.organization, job_id=job_id)
    if started := _draft_or_progress(request, job):
        return started
    if not job.params.get("configured"):
        return redirect("candidates:import_mapping", org_slug=org_slug, job_id=job.pk)
    try:
        preview = imports.import_preview(job=job)
    except ImportFileError as error:  # a draft uploaded before the reader learnt to refuse it
        messages.error(request, str(error))
        return redirect("candidates:import", org_slug=org_slug)
    labels = [label for _key, label in preview.columns]
    for row in preview.rows:
        # Each row's problems in words, listed under the row: a cell in error may be off
        # screen in a table wider than a phone (or behind the fade on a laptop).
        row.problems = [
            (label, cell.error) for label, cell in zip(labels, row.cells, strict=True) if cell.error
        ]
        if row.row_error:
            row.problems.append(("", row.row_error))
    file = job.params["file"]
    context = {
        "job": job,
        "file": file,
        "options": job.params["options"],
        "preview": preview,
        # Whether the preview shows every row, so that its problems are all the file's.
        "whole_file": file["rows_exact"] and len(preview.rows) >= file["rows"],
        "phone_region_hint": _phone_region_hint(preview, job.params["options"]),
        "step": 3,
    }
    return render(request, "candidates/import_preview.html", context)


@require_POST
@recruiter_required
def import_start(request, org_slug, job_id):
    job = import_job_get(organization=request.organization, job_id=job_id)
    if started := _draft_or_progress(request, job):
        return started
    if not job.params.get("configured"):
        return redirect("candidates:import_mapping", org_slug=org_slug, job_id=job.pk)
    imports.import_start(job=job)
    return redirect("candidates:job_detail", org_slug=org_slug, job_id=job.pk)


@require_POST
@recruiter_required
def import_resume(request, org_slug, job_id):
    """Run a stopped import again: it continues after the rows already imported."""
    job = import_job_get(organization=request.organization, job_id=job_id)
    if job.status == Job.Status.FAILED:
        imports.import_start(job=job)  # the job page says it carries on, while it does
    return redirect("candidates:job_detail", org_slug=org_slug, job_id=job.pk)


@require_POST
@recruiter_required
def import_discard(request, org_slug, job_id):
    """Delete one of the user's drafts (never started) with its uploaded file."""
    job = import_job_get(organization=request.organization, job_id=job_id)
    if job.created_by_id != request.user.pk or not imports.import_discard(job=job):
        messages.error(request, "Only your own imports that have not started can be discarded.")
    else:
        messages.success(request, f"“{job.input_name or 'Import'}” was discarded with its file.")
    return redirect("candidates:import", org_slug=org_slug)
