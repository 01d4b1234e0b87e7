"""The progress page of a long job (import, bulk action, export), polled by htmx, the
download of its output file (through a view that checks membership, never a public URL), and
Resume for a bulk action or export that stopped (imports have their own, views/imports.py).

Recruiters and admins only, like every action that starts a job: an export's file or an
import's failed rows are candidate data in bulk, which a viewer cannot export either."""

from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from candidates.models import Job
from candidates.panels import BULK_DESTINATIONS
from candidates.selectors import import_failed_rows, job_get
from candidates.services import bulk
from candidates.views.outcomes import bulk_outcome
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


def _may_start(request, job) -> bool:
    """Whether this member may start a job like this one (a bulk delete is for admins)."""
    action = (job.params or {}).get("action")
    return action not in bulk.ADMIN_ONLY_ACTIONS or request.membership.is_admin


@recruiter_required
def job_detail(request, org_slug, job_id):
    job = job_get(organization=request.organization, job_id=job_id)
    # Once an import has landed, its candidates can go on to a pool or a sequence together.
    resumable = bulk.bulk_job_can_resume(job=job)
    context = {
        "job": job,
        "bulk_destinations": BULK_DESTINATIONS.values(),
        # "Running" with no worker holding the job: it stopped without a report.
        "stalled": resumable and job.status == Job.Status.RUNNING,
        "can_resume": resumable and _may_start(request, job),
        # Queued, and no worker has taken it up for a while: beat queues it again meanwhile.
        "waiting_long": bulk.job_waits_too_long(job=job),
    }
    if job.kind == Job.Kind.IMPORT:
        context["import_outcome"] = _import_outcome(job)
        if job.is_finished and (job.result or {}).get("failed"):
            context["failed_rows"] = import_failed_rows(job=job, limit=FAILED_ROWS_SHOWN)
    elif job.kind == Job.Kind.BULK and job.result:
        changed, unchanged = int(job.result.get("changed", 0)), int(job.result.get("unchanged", 0))
        params = job.params or {}
        action, args = params.get("action", ""), params.get("args") or {}
        registered = bulk.BULK_JOB_ACTIONS.get(action)  # another app's, e.g. enrolling
        context["bulk_outcome"] = (
            " ".join(registered.outcome(args, changed, changed + unchanged))
            if registered is not None
            else bulk_outcome(action, args, changed, changed + unchanged)
        )
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


@require_POST
@recruiter_required
def job_resume(request, org_slug, job_id):
    """Run a stopped bulk action or export again: a bulk action continues after the candidates
    already done, an export prepares its file again."""
    job = job_get(organization=request.organization, job_id=job_id)
    if job.kind not in bulk.RESUMABLE_KINDS:
        raise Http404("Only bulk actions and exports are resumed here.")
    if not _may_start(request, job):
        raise PermissionDenied("Only admins can delete candidates.")
    # Queued again if it had stopped; either way its page says what is going on, in the part
    # that follows the job (a flash would still say so once the job has finished).
    bulk.bulk_job_resume(job=job)
    return redirect("candidates:job_detail", org_slug=org_slug, job_id=job.pk)
