"""Celery tasks of the candidates app. Thin: explicit name, primitive arguments, the
organisation's scope entered by OrganizationTask, then a service call. Each area keeps its
tasks in its own section."""

from crm.celery import OrganizationTask, app

# --- bulk actions and export ---


@app.task(base=OrganizationTask, name="candidates.bulk_action")
def bulk_action(*, organization_id: int, job_id: int) -> str:
    """Run or resume a bulk-action or export Job (resumes after job.params["cursor"]); a
    second delivery while a run is active leaves the job to it (bulk_job_run's run lock)."""
    from candidates.services.bulk import bulk_job_run

    return bulk_job_run(job_id=job_id).status


# --- import ---


@app.task(base=OrganizationTask, name="candidates.import_run", acks_late=True)
def import_run_task(*, organization_id: int, job_id: int) -> None:
    """Run or resume an import; a redelivered task continues after the committed batches."""
    from candidates.models import Job
    from candidates.services.imports import import_run

    job = Job.objects.filter(pk=job_id, kind=Job.Kind.IMPORT).first()
    if job is not None:
        import_run(job=job)


# --- attachments (text extraction) ---


@app.task(
    base=OrganizationTask,
    name="candidates.attachment_extract_text",
    soft_time_limit=120,
    time_limit=180,
)
def attachment_extract_text(*, organization_id: int, attachment_id: int) -> str | None:
    from candidates.models import Attachment
    from candidates.services import attachments

    attachment = Attachment.objects.filter(pk=attachment_id).first()
    if attachment is None:
        return None  # deleted before the worker got to it
    extracted = attachments.attachment_extract_text(attachment=attachment)
    return extracted.extraction_status if extracted is not None else None  # None: deleted


# --- duplicates ---


@app.task(base=OrganizationTask, name="candidates.duplicates_scan")
def duplicates_scan(*, organization_id: int, job_id: int | None = None) -> int:
    from candidates.models import Job
    from candidates.services import duplicates
    from crm.models import Organization

    if job_id is not None:
        job = Job.objects.filter(pk=job_id, kind=Job.Kind.DUPLICATE_SCAN).first()
        return duplicates.duplicates_scan_job_run(job=job) if job is not None else 0
    organization = Organization.objects.get(pk=organization_id)
    return duplicates.duplicates_scan(organization=organization)


@app.task(name="candidates.duplicates_scan_all")
def duplicates_scan_all() -> int:
    """Nightly: queue one duplicate scan per organisation."""
    from crm.models import Organization

    organization_ids = list(Organization.objects.values_list("pk", flat=True))
    for organization_id in organization_ids:
        duplicates_scan.delay(organization_id=organization_id)
    return len(organization_ids)


@app.task(name="candidates.import_drafts_expire", ignore_result=True)
def import_drafts_expire() -> int:
    """Nightly: delete draft imports abandoned for a week, with their uploaded files."""
    from candidates.services.imports import import_drafts_expire as expire

    return expire()


@app.task(name="candidates.jobs_requeue_waiting", ignore_result=True)
def jobs_requeue_waiting() -> int:
    """Every two minutes: queue again the imports, bulk actions and exports whose task never
    came (the broker was down when they were started, or lost it)."""
    from candidates.services.bulk import jobs_requeue_waiting as requeue

    return requeue()
