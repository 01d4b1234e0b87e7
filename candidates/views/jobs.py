"""The progress page of a long job (import, bulk action, export), polled by htmx, and the
download of its output file (through a view that checks membership, never a public URL).

Recruiters and admins only, like every action that starts a job: an export's file or an
import's failed rows are candidate data in bulk, which a viewer cannot export either."""

from django.http import FileResponse, Http404
from django.shortcuts import render

from candidates.models import Job
from candidates.panels import BULK_DESTINATIONS
from candidates.selectors import import_failed_rows, job_get
from crm.permissions import recruiter_required

# How many failed rows of an import the summary lists (the downloadable file has them all).
FAILED_ROWS_SHOWN = 10


def _import_outcome(job) -> list[tuple[str, int, str]]:
    result = job.result or {}
    return [
        ("New profiles created", int(result.get("created", 0)), "text-success"),
        # Rows folded into an earlier row with the same email count here too (see imports).
        ("Existing profiles updated", int(result.get("updated", 0)), ""),
        ("Skipped", int(result.get("skipped", 0)), "text-body-secondary"),
        ("Failed", int(result.get("failed", 0)), "text-danger" if result.get("failed") else ""),
    ]


@recruiter_required
def job_detail(request, org_slug, job_id):
    job = job_get(organization=request.organization, job_id=job_id)
    # Once an import has landed, its candidates can go on to a pool or a sequence together.
    context = {"job": job, "bulk_destinations": BULK_DESTINATIONS.values()}
    if job.kind == Job.Kind.IMPORT:
        context["import_outcome"] = _import_outcome(job)
        if job.is_finished and (job.result or {}).get("failed"):
            context["failed_rows"] = import_failed_rows(job=job, limit=FAILED_ROWS_SHOWN)
    elif job.kind == Job.Kind.DUPLICATE_SCAN:
        context["duplicates_open"] = int((job.result or {}).get("open suggestions", 0))
    if request.htmx:
        return render(request, "candidates/job_detail.html#progress", context)
    return render(request, "candidates/job_detail.html", context)


@recruiter_required
def job_download(request, org_slug, job_id):
    job = job_get(organization=request.organization, job_id=job_id)
    if not job.output_file:
        raise Http404("This job has no file.")
    name = job.params.get("output_name") or f"rapport-{job.kind}-{job.pk}"
    response = FileResponse(job.output_file.open("rb"), as_attachment=True, filename=name)
    response["X-Content-Type-Options"] = "nosniff"
    return response
