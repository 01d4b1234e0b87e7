"""The progress page of a long job (import, bulk action, export), polled by htmx, and the
download of its output file (through a view that checks membership, never a public URL)."""

from django.http import FileResponse, Http404
from django.shortcuts import render

from candidates.panels import BULK_DESTINATIONS
from candidates.selectors import job_get


def job_detail(request, org_slug, job_id):
    job = job_get(organization=request.organization, job_id=job_id)
    # Once an import has landed, its candidates can go on to a pool or a sequence together.
    context = {"job": job, "bulk_destinations": BULK_DESTINATIONS.values()}
    if request.htmx:
        return render(request, "candidates/job_detail.html#progress", context)
    return render(request, "candidates/job_detail.html", context)


def job_download(request, org_slug, job_id):
    job = job_get(organization=request.organization, job_id=job_id)
    if not job.output_file:
        raise Http404("This job has no file.")
    name = job.params.get("output_name") or f"rapport-{job.kind}-{job.pk}"
    response = FileResponse(job.output_file.open("rb"), as_attachment=True, filename=name)
    response["X-Content-Type-Options"] = "nosniff"
    return response
