"""The dispatcher: turns due enrollments into outbox Messages and hands them to send tasks.

Celery beat runs `campaigns.dispatch` every minute, and a launch triggers it at once
(`transaction.on_commit`). Each round:

1. claims due enrollments with ``SELECT … FOR UPDATE SKIP LOCKED`` in chunks, so any number of
   dispatchers can run at once and each enrollment is taken by exactly one;
2. renders each Message once (ids taken from the sequence first, so signed links can name the
   message) and writes the chunk with ONE ``INSERT … ON CONFLICT DO NOTHING`` — the unique
   (organization, enrollment, step) constraint makes a second scheduling a no-op;
3. moves each enrollment to its next step (one UPDATE per chunk); a sequence's next step is
   not rendered while the previous email is still in the outbox, and its delay counts from
   when that email went out (`_wait_for_previous_emails`);
4. after commit, queues send tasks carrying ~500 message ids each (never a task per message,
   never an ETA/countdown: the schedule lives in the database);
5. sweeps: queued messages whose task is gone (throttled, worker lost, retry due) get a new
   task; messages claimed by a worker that died (`sending` past the lease) go back to queued
   with their Message-ID unchanged.

Before claiming, a round enrolls audience batches that a launch's `campaigns.enroll` task
should have enrolled long ago (its worker was lost; services/campaigns.py), and candidates
who entered an auto-join pool whose `campaigns.sequence_auto_join` task never came (the broker
was down, the task was lost: `sequences.auto_join_pending`). The Celery task
runs DISPATCH_CHUNKS_PER_TASK chunks and queues its own continuation behind the send tasks
it queued, so the workers take turns rendering and sending; the sweep runs at the end.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django_scopes import scopes_disabled
from jinja2 import TemplateError

from campaigns.conf import (
    AUDIENCE_BATCH_STALE_SECONDS,
    DISPATCH_CHUNK,
    SEND_CHUNK,
    requeue_after_seconds,
    send_lease_seconds,
    send_queue,
)
from campaigns.models import Campaign, EmailSettings, Enrollment, Message, Step
from campaigns.services import guards, rendering, sequences
from campaigns.services import messages as message_service
from campaigns.services.audience import campaign_pool_names
from campaigns.services.campaigns import audience_enroll_pending, campaigns_finish
from candidates.models import Candidate
from crm.db import planner_settings

logger = logging.getLogger(__name__)


@dataclass
class DispatchReport:
    claimed: int = 0
    messages_created: int = 0
    tasks_queued: int = 0
    requeued: int = 0
    recovered: int = 0
    per_task: list[int] = field(default_factory=list)
    enrolled: int = 0  # from audience batches a lost enroll task left behind
    auto_joined: int = 0  # from auto-join batches a lost auto-join task left behind
    more: bool = False  # stopped at max_chunks with a full last chunk: more may be due


def messages_enqueue(*, organization_id: int, message_ids: list[int]) -> int:
    """Queue send tasks for these messages, SEND_CHUNK ids per task. Returns the task count."""
    from campaigns.tasks import send_messages

    count = 0
    for start in range(0, len(message_ids), SEND_CHUNK):
        chunk = message_ids[start : start + SEND_CHUNK]
        send_messages.apply_async(
            kwargs={"organization_id": organization_id, "message_ids": chunk},
            queue=send_queue(),
        )
        count += 1
    return count


def _enqueue_on_commit(report: DispatchReport, by_organization: dict[int, list[int]]) -> None:
    for organization_id, ids in by_organization.items():
        report.tasks_queued += (len(ids) + SEND_CHUNK - 1) // SEND_CHUNK
        report.per_task.extend(
            len(ids[start : start + SEND_CHUNK]) for start in range(0, len(ids), SEND_CHUNK)
        )
        # Robust: emails whose send task could not be queued (the broker down) stay queued,
        # and the sweep gives them a task once it is back (`messages_sweep`).
        transaction.on_commit(
            lambda o=organization_id, i=list(ids): messages_enqueue(
                organization_id=o, message_ids=i
            ),
            robust=True,
        )


def _allocate_message_ids(count: int) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [Message._meta.db_table, count],
        )
        return [row[0] for row in cursor.fetchall()]


def due_enrollments(*, now: datetime, organization_id: int | None = None):
    """The enrollments to claim, in claim order, locked as they are read (skipping those another
    dispatcher holds). The order is the `enrollment_due` index's, so a chunk is read off the
    index rather than sorted out of every due row."""
    due = Enrollment.objects.select_for_update(skip_locked=True, of=("self",)).filter(
        status=Enrollment.Status.ACTIVE,
        next_run_at__lte=now,
        campaign__status__in=[Campaign.Status.SCHEDULED, Campaign.Status.RUNNING],
    )
    if organization_id is not None:
        due = due.filter(organization_id=organization_id)
    return due.order_by("next_run_at", "id")


# The claim is planned without a sort whatever the statistics say. Right after a launch they
# still count the enrollments it has just made active as a few thousand at most, so the planner
# sorted all 100,000 of a broadcast for every chunk of 500 (85 ms) instead of reading the first
# 500 off `enrollment_due` (1.1 ms).
CLAIM_PLANNER_SETTINGS = {"enable_sort": "off"}


def _claim_chunk(*, now: datetime, organization_id: int | None, limit: int) -> list[Enrollment]:
    with planner_settings(**CLAIM_PLANNER_SETTINGS):
        return list(due_enrollments(now=now, organization_id=organization_id)[:limit])


def _dispatch_chunk(
    *,
    now: datetime,
    organization_id: int | None,
    report: DispatchReport,
    limit: int = DISPATCH_CHUNK,
) -> int:
    """One transaction: claim up to DISPATCH_CHUNK enrollments, write their messages, advance
    them. Returns how many were claimed (0: nothing is due)."""
    with transaction.atomic():
        enrollments = _claim_chunk(now=now, organization_id=organization_id, limit=limit)
        if not enrollments:
            return 0
        report.claimed += len(enrollments)
        campaigns = {
            c.pk: c
            for c in Campaign.objects.select_related("organization", "sender").filter(
                pk__in={e.campaign_id for e in enrollments}
            )
        }
        steps_by_campaign: dict[int, list[Step]] = defaultdict(list)
        for step in Step.objects.filter(campaign_id__in=campaigns).order_by("position"):
            steps_by_campaign[step.campaign_id].append(step)
        candidates = Candidate.objects.defer("resume_text", "search_vector").in_bulk(
            {e.candidate_id for e in enrollments}
        )
        claimed = len(enrollments)
        enrollments = _stop_merged_away(enrollments, candidates, now=now)
        # Sequences: a step waits for the previous email to leave the outbox, and its delay
        # counts from when that email went out (those set aside wait until then).
        enrollments = _wait_for_previous_emails(
            enrollments,
            campaigns=campaigns,
            steps_by_campaign=steps_by_campaign,
            candidates=candidates,
            now=now,
        )
        # Sequences: stop rules, the sending window, branches and task steps (those set aside
        # are stopped, finished or moved to a later time; the rest run now).
        enrollments = sequences.sequence_enrollments_due(
            enrollments=enrollments,
            campaigns=campaigns,
            steps_by_campaign=steps_by_campaign,
            candidates=candidates,
            now=now,
        )
        settings_by_org = {
            s.organization_id: s
            for s in EmailSettings.objects.filter(
                organization_id__in={c.organization_id for c in campaigns.values()}
            )
        }
        email_enrollments = [
            e
            for e in enrollments
            if e.current_step_id
            and _step(steps_by_campaign[e.campaign_id], e.current_step_id).kind == Step.Kind.EMAIL
        ]
        pks = iter(_allocate_message_ids(len(email_enrollments))) if email_enrollments else iter(())
        pool_names = (  # the `pool_name` merge field
            campaign_pool_names(
                campaigns=list(campaigns.values()),
                candidate_ids={e.candidate_id for e in email_enrollments},
            )
            if email_enrollments
            else {}
        )
        rows = []
        senders = {}
        layouts: dict[int, message_service.Layout] = {}
        for enrollment in email_enrollments:
            campaign = campaigns[enrollment.campaign_id]
            step = _step(steps_by_campaign[campaign.pk], enrollment.current_step_id)
            candidate = candidates.get(enrollment.candidate_id)
            if candidate is None:
                continue
            if campaign.pk not in senders:
                senders[campaign.pk] = message_service.sender_for(
                    organization=campaign.organization, campaign=campaign
                )
            if campaign.organization_id not in layouts:
                layouts[campaign.organization_id] = message_service.Layout(campaign.organization)
            rows.append(
                _message_row(
                    pk=next(pks),
                    enrollment=enrollment,
                    campaign=campaign,
                    step=step,
                    candidate=candidate,
                    sender=senders[campaign.pk],
                    email_settings=settings_by_org.get(campaign.organization_id),
                    now=now,
                    pool_name=pool_names.get((campaign.pk, candidate.pk), ""),
                    layout=layouts[campaign.organization_id],
                )
            )
        created = message_service.messages_insert(rows, now=now)  # one INSERT … ON CONFLICT
        report.messages_created += len(created)
        _advance(enrollments, steps_by_campaign, now, campaigns=campaigns, candidates=candidates)
        # Only a campaign still scheduled: one paused while this chunk was rendered stays
        # paused (its emails wait in the queue; the send path leaves them alone).
        Campaign.objects.filter(
            pk__in=[c.pk for c in campaigns.values() if c.status == Campaign.Status.SCHEDULED],
            status=Campaign.Status.SCHEDULED,
        ).update(status=Campaign.Status.RUNNING)
        by_organization: dict[int, list[int]] = defaultdict(list)
        for row in rows:
            if row["id"] in created:
                by_organization[row["organization_id"]].append(row["id"])
        _enqueue_on_commit(report, by_organization)
    return claimed


def _stop_merged_away(
    enrollments: list[Enrollment], candidates: dict[int, Candidate], *, now: datetime
) -> list[Enrollment]:
    """Stop (reason `merged`) the enrollments of merged-away profiles: the person is the
    surviving profile, whose own enrollments reach them. The merge stops them itself; this is
    the backstop for one that did not (stopped here, they leave the due index instead of being
    claimed again every round). Returns the others."""
    merged: dict[int, list[int]] = defaultdict(list)
    for enrollment in enrollments:
        candidate = candidates.get(enrollment.candidate_id)
        if candidate is not None and candidate.merged_into_id is not None:
            merged[enrollment.organization_id].append(enrollment.pk)
    if not merged:
        return enrollments
    for organization_id, ids in merged.items():
        sequences.enrollments_stop(
            organization_id=organization_id,
            enrollment_ids=ids,
            reason=Enrollment.StopReason.MERGED,
            now=now,
        )
    stopped = {pk for ids in merged.values() for pk in ids}
    return [e for e in enrollments if e.pk not in stopped]


# How soon a step whose previous email is still in the outbox, due to go at once (queued for a
# send task, or being sent), is looked at again: the dispatcher's own period.
PREVIOUS_EMAIL_RECHECK = timedelta(minutes=1)
# A previous email that went out within this of being written counts as sent when it was
# written (the step's due time, computed then, stands): the usual case, which would otherwise
# be claimed a second time a few seconds later.
SEND_LAG_GRACE = timedelta(minutes=1)
_IN_OUTBOX = (Message.Status.QUEUED, Message.Status.SENDING)


def _wait_for_previous_emails(
    enrollments: list[Enrollment],
    *,
    campaigns: dict[int, Campaign],
    steps_by_campaign: dict[int, list[Step]],
    candidates: dict[int, Candidate],
    now: datetime,
) -> list[Enrollment]:
    """A sequence's step after the first is not rendered while the enrollment's previous email
    is still in the outbox (queued or being sent: held by a cap, the domain's warm-up, a retry,
    the provider's throttling): held steps would otherwise pile up behind it and all go out
    together when it is released, and a branch ("only if not opened") would be judged on an
    email the candidate has not received. Such an enrollment waits until that email's next
    attempt, plus the step's delay (at least PREVIOUS_EMAIL_RECHECK), and is looked at again
    then.

    The step's delay counts from when the previous step's email was sent: `_advance` counted
    it from when that email was written, which is the same moment unless the email waited in
    the outbox (longer than SEND_LAG_GRACE); then the step waits for `sent_at` + its delay,
    moved into the sending window. A send time after the dispatcher's `now`, or before the
    email was written (the clocks of the dispatcher and of the worker disagree), is not used.

    One query for the chunk (the latest email of each enrollment past its first step) and one
    UPDATE for those that wait. Returns the others."""
    later = [
        e
        for e in enrollments
        if campaigns[e.campaign_id].kind == Campaign.Kind.SEQUENCE
        and e.current_step_id
        and steps_by_campaign[e.campaign_id]
        and steps_by_campaign[e.campaign_id][0].pk != e.current_step_id
    ]
    if not later:
        return enrollments
    previous = {
        message.enrollment_id: message
        for message in Message.objects.filter(
            organization_id__in={e.organization_id for e in later},
            enrollment_id__in=[e.pk for e in later],
        )
        .order_by("enrollment_id", "-created_at", "-id")
        .distinct("enrollment_id")
        .only(
            "pk", "enrollment_id", "step_id", "status", "created_at", "sent_at", "next_attempt_at"
        )
    }
    waiting: list[Enrollment] = []
    for enrollment in later:
        message = previous.get(enrollment.pk)
        if message is None:
            continue  # no email before this step (only tasks so far): nothing to wait for
        campaign = campaigns[enrollment.campaign_id]
        candidate = candidates.get(enrollment.candidate_id)
        steps = steps_by_campaign[campaign.pk]
        position = next(
            (i for i, step in enumerate(steps) if step.pk == enrollment.current_step_id), None
        )
        if not position:
            continue  # the first step (or one no longer there): no email before it
        step = steps[position]
        if message.status in _IN_OUTBOX:
            after = max(message.next_attempt_at or now, now)
            due = sequences.step_due_at(
                campaign=campaign, candidate=candidate, after=after, delay=step.delay
            )
            run_at = max(
                sequences.step_run_at(campaign=campaign, candidate=candidate, due=due),
                now + PREVIOUS_EMAIL_RECHECK,
            )
        elif (
            message.step_id == steps[position - 1].pk
            and message.sent_at is not None
            and message.created_at + SEND_LAG_GRACE < message.sent_at <= now
        ):
            due = sequences.step_due_at(
                campaign=campaign, candidate=candidate, after=message.sent_at, delay=step.delay
            )
            run_at = sequences.step_run_at(campaign=campaign, candidate=candidate, due=due)
            if run_at <= now:
                continue
        else:
            continue
        enrollment.due_at, enrollment.next_run_at = due, run_at
        waiting.append(enrollment)
    if not waiting:
        return enrollments
    Enrollment.objects.bulk_update(waiting, ["next_run_at", "due_at"], batch_size=1000)
    postponed = {e.pk for e in waiting}
    return [e for e in enrollments if e.pk not in postponed]


def _step(steps: list[Step], step_id: int) -> Step:
    return next(step for step in steps if step.pk == step_id)


def _message_row(
    *, pk, enrollment, campaign, step, candidate, sender, email_settings, now, layout, pool_name=""
):
    """The column values of one Message row (see messages.messages_insert)."""
    row = {
        "id": pk,
        "organization_id": campaign.organization_id,
        "campaign_id": campaign.pk,
        "step_id": step.pk,
        "enrollment_id": enrollment.pk,
        "candidate_id": candidate.pk,
        "to_email": candidate.email,
        "from_email": sender.from_email,
        "reply_to": sender.reply_to,
        "status": Message.Status.QUEUED,
        "skip_reason": "",
        "last_error": "",
    }
    try:
        built = message_service.message_build(
            compiled=rendering.email_compile(
                subject=step.subject, preheader=step.preheader, body_markdown=step.body_markdown
            ),
            organization=campaign.organization,
            campaign=campaign,
            sender=sender,
            candidate_values=rendering.candidate_values(candidate, pool_name=pool_name),
            candidate_id=candidate.pk,
            message_pk=pk,
            track_opens=email_settings.track_opens if email_settings else True,
            track_clicks=email_settings.track_clicks if email_settings else True,
            layout=layout,
        )
    except DatabaseError:
        raise  # the chunk's transaction is broken: nothing of it can be written
    except Exception as error:
        # Validation at save time makes this rare; the row records why nothing was sent. Any
        # error, not only a TemplateError: one email that cannot be rendered must not roll back
        # its chunk, whose enrollments would then be claimed first again every round, holding
        # up every other campaign and organisation behind them.
        if not isinstance(error, TemplateError):
            logger.exception(
                "Rendering message %s of campaign %s failed unexpectedly", pk, campaign.pk
            )
        return {
            **row,
            "subject": step.subject[:998],
            "html": "",
            "text": "",
            "headers": {},
            "message_id": f"<render-failed-{pk}@invalid>",
            "links": [],
            "status": Message.Status.FAILED,
            "last_error": f"Rendering failed: {error}",
        }
    row.update(
        subject=built.subject,
        html=built.html,
        text=built.text,
        headers=built.headers,
        message_id=built.message_id,
        links=built.links,
    )
    if not candidate.email:
        row.update(status=Message.Status.SKIPPED, skip_reason=Message.SkipReason.NO_EMAIL)
    return row


def _advance(
    enrollments: list[Enrollment], steps_by_campaign: dict, now: datetime, *, campaigns, candidates
) -> None:
    for enrollment in enrollments:
        steps = steps_by_campaign[enrollment.campaign_id]
        position = next(
            (i for i, step in enumerate(steps) if step.pk == enrollment.current_step_id), None
        )
        following = (
            steps[position + 1] if position is not None and position + 1 < len(steps) else None
        )
        if following is None:
            enrollment.status = Enrollment.Status.DONE
            enrollment.finished_at = now
            enrollment.next_run_at = enrollment.due_at = None
        else:
            # Sequences: the next step waits its delay (whole days on the local wall clock),
            # then for the sending window. Counted from now, when its email was written; should
            # that email wait in the outbox, `_wait_for_previous_emails` counts it again from
            # when it went out.
            campaign = campaigns[enrollment.campaign_id]
            candidate = candidates.get(enrollment.candidate_id)
            enrollment.current_step = following
            enrollment.due_at = sequences.step_due_at(
                campaign=campaign, candidate=candidate, after=now, delay=following.delay
            )
            enrollment.next_run_at = sequences.step_run_at(
                campaign=campaign, candidate=candidate, due=enrollment.due_at
            )
    _enrollments_save(enrollments)


def _enrollments_save(enrollments: list[Enrollment]) -> None:
    """One UPDATE per distinct outcome (a broadcast chunk: one statement), not bulk_update's
    CASE WHEN over every row, which cost more than rendering the chunk."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for e in enrollments:
        groups[(e.status, e.finished_at, e.next_run_at, e.due_at, e.current_step_id)].append(e.pk)
    for (status, finished_at, next_run_at, due_at, step_id), ids in groups.items():
        Enrollment.objects.filter(pk__in=ids).update(
            status=status,
            finished_at=finished_at,
            next_run_at=next_run_at,
            due_at=due_at,
            current_step=step_id,
        )


def messages_sweep(*, now: datetime, report: DispatchReport) -> None:
    """Recover messages whose send task is gone. Runs inside the dispatcher round."""
    lease_cutoff = now - timedelta(seconds=send_lease_seconds())
    # A worker that claimed these died (SIGKILL, OOM, lost host) before recording a result.
    # They may have been handed to the SMTP server just before the crash: the re-send keeps
    # the Message-ID so receivers and ESPs can recognise it (see docs/campaigns.md, "crash
    # window"). The UPDATE's WHERE is re-checked under each row's lock, so a live worker's
    # concurrent `sent` wins.
    lost = Message.objects.filter(status=Message.Status.SENDING, claimed_at__lt=lease_cutoff)
    # A sequence's email whose window has shut since waits for it to open again.
    closed = sequences.messages_window_closed(lost, now=now)
    for opening, ids in _grouped(closed).items():
        report.recovered += lost.filter(pk__in=ids).update(
            status=Message.Status.QUEUED,
            claimed_at=None,
            enqueued_at=None,
            next_attempt_at=opening,
            last_error=RECOVERED + " It waits for the sequence's sending window to open.",
        )
    report.recovered += lost.exclude(pk__in=list(closed)).update(
        status=Message.Status.QUEUED, claimed_at=None, enqueued_at=None, last_error=RECOVERED
    )
    requeue_cutoff = now - timedelta(seconds=requeue_after_seconds())
    with transaction.atomic():
        stale = list(
            Message.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=Message.Status.QUEUED)
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
            .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=requeue_cutoff))
            .exclude(campaign__status=Campaign.Status.PAUSED)
            .order_by("id")
            .values_list("pk", "organization_id")[:50000]
        )
        if not stale:
            return
        # Their task never ran (the queue was down, a worker lost): a sequence's email whose
        # window has shut since waits for it to open again instead of going out at night.
        closed = sequences.messages_window_closed(
            Message.objects.filter(pk__in=[pk for pk, _ in stale]), now=now
        )
        for opening, ids in _grouped(closed).items():
            Message.objects.filter(pk__in=ids).update(next_attempt_at=opening)
            # An earlier reason stays: the provider's throttling counts its runs in it.
            Message.objects.filter(pk__in=ids, last_error="").update(
                last_error=guards.HOLD_SENDING_WINDOW
            )
        stale = [(pk, organization_id) for pk, organization_id in stale if pk not in closed]
        if not stale:
            return
        Message.objects.filter(pk__in=[pk for pk, _ in stale]).update(enqueued_at=now)
        by_organization: dict[int, list[int]] = defaultdict(list)
        for pk, organization_id in stale:
            by_organization[organization_id].append(pk)
        report.requeued += len(stale)
        _enqueue_on_commit(report, by_organization)


RECOVERED = "Recovered after its worker was lost; sent again with the same Message-ID."


def _grouped(openings: dict[int, datetime]) -> dict[datetime, list[int]]:
    by_opening: dict[datetime, list[int]] = defaultdict(list)
    for pk, opening in openings.items():
        by_opening[opening].append(pk)
    return by_opening


def dispatch_due(
    *,
    now: datetime | None = None,
    organization_id: int | None = None,
    max_chunks: int | None = None,
    first_chunk: int = DISPATCH_CHUNK,
) -> DispatchReport:
    """One dispatcher round (see the module docstring). Safe to run concurrently.

    With `max_chunks` (the Celery task) the round stops after that many full chunks and sets
    `report.more`; the task then queues its own continuation behind the send tasks it queued.
    The sweep and the campaign bookkeeping run when a round finds nothing more to do.
    `first_chunk` (a launch's kick) makes the first chunk smaller, so its emails go out
    after rendering a few dozen instead of DISPATCH_CHUNK."""
    now = now or timezone.now()
    report = DispatchReport()
    with scopes_disabled():
        report.enrolled = audience_enroll_pending(
            organization_id=organization_id,
            created_before=now - timedelta(seconds=AUDIENCE_BATCH_STALE_SECONDS),
        )
        report.auto_joined = sequences.auto_join_pending(
            organization_id=organization_id,
            created_before=now - timedelta(seconds=sequences.AUTO_JOIN_STALE_SECONDS),
        )
        chunks = 0
        while max_chunks is None or chunks < max_chunks:
            limit = first_chunk if chunks == 0 else DISPATCH_CHUNK
            claimed = _dispatch_chunk(
                now=now, organization_id=organization_id, report=report, limit=limit
            )
            if not claimed:
                break
            chunks += 1
            report.more = claimed == limit
        else:
            if report.more:
                return _logged(report)
        report.more = False
        messages_sweep(now=now, report=report)
        # The catch-up: the send task finishes a campaign with its last chunk, but a chunk
        # whose worker was lost, or one that ended with held emails, leaves it to this round.
        campaigns_finish(now=now)
    return _logged(report)


def _logged(report: DispatchReport) -> DispatchReport:
    if (
        report.claimed
        or report.requeued
        or report.recovered
        or report.enrolled
        or report.auto_joined
    ):
        logger.info("campaigns.dispatch: %s", report)
    return report
