"""Celery tasks of the campaigns app: thin wrappers around the services (routed to the
"email" queue by CELERY_TASK_ROUTES)."""

from campaigns.conf import DISPATCH_CHUNK, DISPATCH_CHUNKS_PER_TASK, send_queue
from campaigns.services import dispatch, sending, tracking, webhooks
from crm.celery import OrganizationTask, app


@app.task(name="campaigns.dispatch", acks_late=True, ignore_result=True)
def dispatch_task(organization_id: int | None = None, first_chunk: int | None = None) -> dict:
    """Beat runs this every minute for all organisations; a launch runs it for one at once.
    Each task renders DISPATCH_CHUNKS_PER_TASK chunks; when more is due it queues its own
    continuation, which lands behind the send tasks it has just queued — so with two workers
    one renders the next chunk while the other sends the last one. A launch asks for a small
    `first_chunk` so that the first emails do not wait for 500 to be rendered."""
    report = dispatch.dispatch_due(
        organization_id=organization_id,
        max_chunks=DISPATCH_CHUNKS_PER_TASK,
        first_chunk=first_chunk or DISPATCH_CHUNK,
    )
    if report.more:
        dispatch_task.apply_async(kwargs={"organization_id": organization_id}, queue=send_queue())
    return {"claimed": report.claimed, "messages": report.messages_created}


@app.task(
    base=OrganizationTask,
    name="campaigns.enroll",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def enroll_task(*, organization_id: int, campaign_id: int) -> int:
    """Enroll the rest of a launched campaign's audience (services/campaigns.py), one batch per
    transaction; the dispatcher is kicked after the first batch and at the end."""
    from campaigns.services.campaigns import _dispatch_now, audience_enroll_pending

    enrolled = audience_enroll_pending(
        organization_id=organization_id,
        campaign_id=campaign_id,
        after_first=lambda: _dispatch_now(organization_id),
    )
    _dispatch_now(organization_id)
    return enrolled


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


@app.task(name="campaigns.esp_events_retry", ignore_result=True, expires=60)
def esp_events_retry_task() -> int:
    """Beat runs this every minute: ESP events that arrived before their email's send was
    recorded are applied now (services/webhooks.py)."""
    return webhooks.esp_events_retry()


@app.task(base=OrganizationTask, name="campaigns.sequence_auto_join", acks_late=True)
def sequence_auto_join_task(
    *,
    organization_id: int,
    batch_id: int | None = None,
    pool_id: int | None = None,
    candidate_ids: list[int] | None = None,
) -> int:
    """Candidates who entered a pool join the sequences that auto-join from it: the stored
    AutoJoinBatch `batch_id` (queued on commit by pipelines' `candidates_entered_pool` signal;
    a batch whose task is lost is enrolled by the dispatcher, and enrolling twice is a no-op).
    `pool_id` and `candidate_ids`: a task queued before batches were stored."""
    from campaigns.services import sequences

    if batch_id is not None:
        return sequences.auto_join_batch_run(organization_id=organization_id, batch_id=batch_id)
    if pool_id is None:
        return 0
    return sequences.sequences_auto_join(pool_id=pool_id, candidate_ids=candidate_ids or [])


@app.task(
    base=OrganizationTask,
    name="campaigns.sequence_time_zone_changed",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def sequence_time_zone_changed_task(*, organization_id: int) -> int:
    """The organisation's time zone has changed: its sequences' pending steps timed in that
    zone move into the sending window in the new one (queued on commit by the settings' save;
    running it again changes nothing)."""
    from campaigns.services import sequences

    return sequences.sequence_enrollments_reschedule(organization_id=organization_id)
