"""Celery tasks of the campaigns app: thin wrappers around the services (routed to the
"email" queue by CELERY_TASK_ROUTES)."""

from campaigns.services import dispatch, sending, tracking
from crm.celery import OrganizationTask, app


@app.task(name="campaigns.dispatch", acks_late=True, ignore_result=True)
def dispatch_task(organization_id: int | None = None) -> dict:
    """Beat runs this every minute for all organisations; a launch runs it for one at once."""
    report = dispatch.dispatch_due(organization_id=organization_id)
    return {"claimed": report.claimed, "messages": report.messages_created}


@app.task(
    base=OrganizationTask,
    name="campaigns.send_messages",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def send_messages(self, *, organization_id: int, message_ids: list[int]) -> dict:
    """Send a chunk (~500) of queued messages over one connection. Retries are not Celery
    retries: a transient failure puts the message back in the queue with a later
    `next_attempt_at` and the dispatcher's sweeper hands it to a new task when it is due."""
    from crm.models import Organization

    organization = Organization.objects.get(pk=organization_id)
    report = sending.messages_send(organization=organization, message_ids=message_ids)
    return {"sent": report.sent, "skipped": report.skipped, "retried": report.retried}


@app.task(name="campaigns.tracking_flush", ignore_result=True, expires=30)
def tracking_flush_task() -> dict:
    """Beat runs this every few seconds: buffered opens and clicks become EngagementEvents."""
    report = tracking.tracking_flush()
    return {"events": report.events, "written": report.written, "machine": report.machine}


@app.task(base=OrganizationTask, name="campaigns.sequence_auto_join", acks_late=True)
def sequence_auto_join_task(*, organization_id: int, pool_id: int, candidate_ids: list[int]) -> int:
    """Candidates who entered a pool join the sequences that auto-join from it (queued on
    commit by pipelines' `candidates_entered_pool` signal; enrolling twice is a no-op)."""
    from campaigns.services import sequences

    return sequences.sequences_auto_join(pool_id=pool_id, candidate_ids=candidate_ids)
