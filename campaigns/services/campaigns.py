"""Campaign life cycle: create a broadcast, check it can launch, launch it."""

from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.formats import date_format
from django_scopes import scopes_disabled

from campaigns.conf import AUDIENCE_BATCH, AUDIENCE_FIRST_BATCH, LAUNCH_FIRST_CHUNK, send_queue
from campaigns.models import (
    AudienceBatch,
    Campaign,
    EmailTemplate,
    Enrollment,
    Message,
    Step,
    Topic,
)
from campaigns.services import sequences
from campaigns.services.audience import (
    NO_CAMPAIGN_EMAIL_STATUSES,
    audience_problems,
    audience_queryset,
)
from campaigns.services.domains import unverified_sender_domain
from campaigns.services.templates import email_problems
from candidates.models import Candidate
from crm.models import Organization

# Campaigns whose audience is still being enrolled (the same as sequences.ACTIVE_STATUSES).
ACTIVE_STATUSES = (Campaign.Status.SCHEDULED, Campaign.Status.RUNNING, Campaign.Status.PAUSED)
# A Message in one of these is still to go out; every other status is final (sent, delivered,
# bounced, failed, skipped — "not sent" covers suppressed, unsubscribed, cancelled…).
OUTBOX_STATUSES = (Message.Status.QUEUED, Message.Status.SENDING)


@transaction.atomic
def campaign_create_broadcast(
    *,
    organization,
    user,
    name: str,
    topic: str,
    template: EmailTemplate,
    saved_searches,
    excluded_saved_searches=(),
    pools=(),
    excluded_pools=(),
    scheduled_at: datetime | None = None,
    interest_role_families=(),
    interest_locations=(),
    interest_include_unstated: bool = True,
) -> Campaign:
    """A draft broadcast whose one email step is a copy of `template` (editing the template
    later does not change a campaign that was already written). `interest_*`: only candidates
    interested in these role families and locations (services/audience.py)."""
    campaign = Campaign.objects.create(
        organization=organization,
        name=name,
        kind=Campaign.Kind.BROADCAST,
        topic=topic,
        template=template,
        interest_role_families=list(interest_role_families),
        interest_locations=list(interest_locations),
        interest_include_unstated=interest_include_unstated,
        sender=user,
        scheduled_at=scheduled_at,
        created_by=user,
    )
    _audience_set(
        campaign,
        saved_searches=saved_searches,
        excluded_saved_searches=excluded_saved_searches,
        pools=pools,
        excluded_pools=excluded_pools,
    )
    Step.objects.create(
        organization=organization,
        campaign=campaign,
        position=1,
        kind=Step.Kind.EMAIL,
        subject=template.subject,
        preheader=template.preheader,
        body_markdown=template.body_markdown,
    )
    return campaign


@transaction.atomic
def broadcast_update(
    *,
    campaign: Campaign,
    name: str,
    topic: str,
    saved_searches,
    excluded_saved_searches=(),
    pools=(),
    excluded_pools=(),
    scheduled_at: datetime | None = None,
    interest_role_families=(),
    interest_locations=(),
    interest_include_unstated: bool = True,
) -> Campaign:
    """Change a draft broadcast's settings: its name, topic, audience and when it goes out (its
    email has a page of its own, `step_update`). Under the campaign's row lock, the one
    `campaign_launch` takes: a launch that got there first wins, and this says so."""
    locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if locked.kind != Campaign.Kind.BROADCAST:
        raise ValidationError("Only a broadcast has these settings.")
    if not locked.is_editable:
        raise ValidationError("The campaign has been launched meanwhile: it cannot change now.")
    locked.name = name
    locked.topic = topic
    locked.scheduled_at = scheduled_at
    locked.interest_role_families = list(interest_role_families)
    locked.interest_locations = list(interest_locations)
    locked.interest_include_unstated = interest_include_unstated
    locked.save(
        update_fields=[
            "name",
            "topic",
            "scheduled_at",
            "interest_role_families",
            "interest_locations",
            "interest_include_unstated",
        ]
    )
    _audience_set(
        locked,
        saved_searches=saved_searches,
        excluded_saved_searches=excluded_saved_searches,
        pools=pools,
        excluded_pools=excluded_pools,
    )
    return locked


def _audience_set(campaign, *, saved_searches, excluded_saved_searches, pools, excluded_pools):
    """A broadcast's audience: whom its saved searches and pools bring in and leave out."""
    campaign.saved_searches.set(saved_searches)
    campaign.excluded_saved_searches.set(excluded_saved_searches)
    campaign.pools.set(pools)
    campaign.excluded_pools.set(excluded_pools)


@transaction.atomic
def step_update(*, step: Step, subject: str, preheader: str, body_markdown: str) -> Step:
    """Change a draft campaign's email. The campaign's row lock (the one `campaign_launch` takes)
    keeps a launch from checking the email while it changes; the status is read under it."""
    campaign = Campaign.objects.select_for_update().get(pk=step.campaign_id)
    if not campaign.is_editable:
        raise ValidationError(
            "This campaign has been launched, so its email can no longer be changed."
        )
    step.subject, step.preheader, step.body_markdown = subject, preheader, body_markdown
    step.save(update_fields=["subject", "preheader", "body_markdown"])
    return step


def archived_pool_problem(pool, *, user=None) -> str:
    """`user`: who reads it; a colleague's "Only me" pool is not named to them."""
    from pipelines.selectors import pool_visible_to

    if user is not None and not pool_visible_to(pool=pool, user=user):
        return (
            "A colleague's private talent pool has been archived: leave it out, "
            "or ask its owner to restore it."
        )
    return (
        f"The talent pool “{pool.name}” has been archived: leave it out, "
        "or restore it from the archived pools page."
    )


def campaign_held_by_domain(*, organization: Organization, campaign: Campaign) -> str:
    """The unverified domain of the organisation's sender address when it holds every email
    of this launched campaign at send time (guards.send_holds); "" otherwise. The campaign page
    says so, rather than look as if it were sending."""
    if campaign.status not in (
        Campaign.Status.SCHEDULED,
        Campaign.Status.RUNNING,
        Campaign.Status.PAUSED,
    ):
        return ""
    return unverified_sender_domain(organization=organization)


def campaign_launch_problems(
    *, campaign: Campaign, user=None, now: datetime | None = None
) -> list[str]:
    """Why this campaign cannot launch `now` (empty: it can), in words for `user`."""
    organization = campaign.organization
    problems = []
    if campaign.status != Campaign.Status.DRAFT:
        problems.append("Only a draft campaign can be launched.")
    elif campaign.scheduled_at is not None and campaign.scheduled_at <= (now or timezone.now()):
        # Launching would send at once, not at the time the launch button names.
        when = timezone.localtime(campaign.scheduled_at, organization.zone)
        problems.append(
            f"The time you chose, {date_format(when, 'j M Y, H:i')}, has passed: in Settings, "
            "choose a new time or “As soon as I launch it”."
        )
    archived_topic = (
        Topic.objects.filter(
            organization=organization, key=campaign.topic, archived_at__isnull=False
        )
        .values_list("name", flat=True)
        .first()
    )
    if archived_topic is not None:
        # Hidden from new campaigns and, to candidates who do not get it, from the
        # preference centre (services/preferences.py: preference_topics).
        problems.append(
            f"The topic “{archived_topic}” is archived: choose another in Settings, or restore "
            "it in Settings → Email topics."
        )
    if not organization.postal_address.strip():
        problems.append(
            "Your organisation has no postal address. The law requires it in every campaign "
            "email: an admin can add it in Settings."
        )
    if not organization.sender_email:
        problems.append("Your organisation has no sender address: an admin can add it in Settings.")
    unverified = unverified_sender_domain(organization=organization)
    if unverified:
        problems.append(
            f"The domain of your sender address, {unverified}, is not verified: an admin can "
            "verify it in Settings → Email."
        )
    email_steps = [s for s in campaign.steps.all() if s.kind == Step.Kind.EMAIL]
    if not email_steps:
        problems.append("The campaign has no email to send.")
    for step in email_steps:
        for problem in email_problems(
            organization=organization,
            subject=step.subject,
            preheader=step.preheader,
            body_markdown=step.body_markdown,
        ).values():
            problems.extend(str(p) for p in problem)
    pools = list(campaign.pools.filter(archived_at__isnull=False))
    if campaign.auto_join_pool_id is not None and campaign.auto_join_pool.archived_at:
        pools.append(campaign.auto_join_pool)
    problems.extend(archived_pool_problem(pool, user=user) for pool in pools)
    problems.extend(audience_problems(campaign=campaign))
    if campaign.kind == Campaign.Kind.SEQUENCE:
        joins_at_launch = campaign.saved_searches.exists() or campaign.pools.exists()
        if not joins_at_launch and campaign.auto_join_pool_id is None:
            problems.append(
                "Choose who joins: a saved search or talent pool, or a pool candidates join from."
            )
    elif not campaign.saved_searches.exists() and not campaign.pools.exists():
        problems.append("Choose who receives it: at least one saved search or talent pool.")
    return problems


@transaction.atomic
def campaign_launch(*, campaign: Campaign, user, now: datetime | None = None) -> int:
    """Enroll the audience and start sending (at once, or at `scheduled_at`). Returns how many
    candidates the audience has (all of them are enrolled within seconds: see
    `_enroll_audience`). Raises ValidationError with the reasons when it cannot launch."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    now = now or timezone.now()
    problems = campaign_launch_problems(campaign=campaign, user=user, now=now)
    if problems:
        raise ValidationError(problems)
    start = launch_start(campaign=campaign, now=now)
    first = campaign.steps.order_by("position").first()
    # When the first step is due in the organisation's time zone; `_batch_enroll` gives
    # candidates in another zone their own (a sequence's whole days are calendar days there).
    due = sequences.step_due_at(campaign=campaign, candidate=None, after=start, delay=first.delay)
    enrolled, pending = _enroll_audience(campaign=campaign, first=first, run_at=due, now=now)
    campaign.status = Campaign.Status.SCHEDULED if start > now else Campaign.Status.RUNNING
    campaign.launched_at = now
    campaign.save(update_fields=["status", "launched_at"])
    organization_id, campaign_id = campaign.organization_id, campaign.pk
    # Head starts only (robust: a broker that is down does not undo or fail the launch): the
    # dispatcher's minute dispatches the campaign and enrolls batches left waiting over 30 s.
    if start <= now:
        transaction.on_commit(
            lambda: _dispatch_now(organization_id, first_chunk=LAUNCH_FIRST_CHUNK), robust=True
        )
    if pending:
        transaction.on_commit(lambda: _enroll_later(organization_id, campaign_id), robust=True)
    return enrolled


def launch_start(*, campaign: Campaign, now: datetime) -> datetime:
    """When a campaign launched at `now` starts: then, or at its `scheduled_at`. The first
    step's delay counts from here."""
    return max(now, campaign.scheduled_at) if campaign.scheduled_at else now


def _enroll_audience(
    *, campaign: Campaign, first: Step, run_at: datetime, now: datetime
) -> tuple[int, bool]:
    """Snapshot the audience with one statement — the audience query's ids, in order, stored in
    AudienceBatch rows (the first AUDIENCE_FIRST_BATCH ids, then AUDIENCE_BATCH each) — and
    enroll the first batch now. Returns the
    audience size and whether batches are left for `campaigns.enroll`.

    Enrolling 100,000 candidates in the launch (one INSERT … SELECT) took 2.1-2.3 s of
    index and foreign-key work before the first email could go out; the snapshot takes
    ~0.2 s and the first batch ~0.1 s, and its emails are being rendered while the rest is
    enrolled. Who is in the audience is decided here, at launch, for everyone: the batches
    only carry out that decision (send-time guard rails still apply to every email)."""
    audience_sql, audience_params = (
        audience_queryset(campaign=campaign).order_by().values("pk").query.sql_with_params()
    )
    table = AudienceBatch._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (organization_id, campaign_id, position, candidate_ids, "  # noqa: S608 (our table name; the audience SQL is Django's)
            "step_id, run_at, enrolled_at, created_at) "
            "SELECT %s, %s, numbered.batch, array_agg(numbered.id ORDER BY numbered.id), "
            "%s, %s, %s, %s FROM ("
            "  SELECT audience.id, CASE WHEN number <= %s THEN 0"
            "    ELSE 1 + (number - %s - 1) / %s END AS batch"
            "  FROM (SELECT audience.id, row_number() OVER (ORDER BY audience.id) AS number"
            f"    FROM ({audience_sql}) AS audience(id)) AS audience"
            ") AS numbered GROUP BY numbered.batch "
            "RETURNING id, position, cardinality(candidate_ids)",
            [
                campaign.organization_id,
                campaign.pk,
                first.pk,
                run_at,
                now,
                now,
                AUDIENCE_FIRST_BATCH,
                AUDIENCE_FIRST_BATCH,
                AUDIENCE_BATCH,
                *audience_params,
            ],
        )
        batches = sorted(cursor.fetchall(), key=lambda row: row[1])
    if not batches:
        return 0, False
    _batch_enroll(batch_id=batches[0][0])
    return sum(size for _, _, size in batches), len(batches) > 1


# One stored batch's candidates (`candidate`): those listed, each replaced by the profile it has
# been merged into since the launch; deleted ones drop out of the joins.
_BATCH_CANDIDATES = (
    "FROM {batches} AS batch CROSS JOIN LATERAL unnest(batch.candidate_ids) AS ids(id) "
    "JOIN {candidates} AS listed "
    "  ON listed.id = ids.id AND listed.organization_id = batch.organization_id "
    "JOIN {candidates} AS candidate "
    "  ON candidate.id = COALESCE(listed.merged_into_id, listed.id) "
    "  AND candidate.organization_id = batch.organization_id "
    "  AND candidate.merged_into_id IS NULL "
)


def _batch_enroll(*, batch_id: int) -> int:
    """Enroll one batch and delete it, in the caller's transaction: both happen or neither,
    and the unique (organization, campaign, candidate) constraint makes a repeat a no-op.
    Candidates deleted since the launch are left out; one merged into another profile since
    the launch is replaced by that profile (once, if both were in the audience), so the person
    gets the campaign once, at the address kept. One marked "Do not contact" or Hired since
    the launch is left out too: that change stopped their enrollments at once, and this batch's
    was not there yet to stop (the other guard rails are checked when each email is due and
    sent). The first step is due at the batch's `run_at` and runs at the sending window's
    next opening from then (a sequence's), except where `_first_step_times` gives a candidate's
    time zone its own times. Returns how many joined."""
    enrollments, batches = Enrollment._meta.db_table, AudienceBatch._meta.db_table
    batch_candidates = _BATCH_CANDIDATES.format(
        batches=batches, candidates=Candidate._meta.db_table
    )
    times = _first_step_times(batch_id=batch_id, batch_candidates=batch_candidates)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {enrollments} (organization_id, campaign_id, candidate_id, "
            "current_step_id, next_run_at, due_at, status, stop_reason, enrolled_at, "
            "finished_at) "
            "SELECT batch.organization_id, batch.campaign_id, candidate.id, batch.step_id, "
            "COALESCE(zoned.run_at, %s), COALESCE(zoned.due_at, batch.run_at), "
            f"%s, '', batch.enrolled_at, NULL {batch_candidates}"
            "LEFT JOIN unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) "
            "  AS zoned(time_zone, due_at, run_at) ON zoned.time_zone = candidate.time_zone "
            "WHERE batch.id = %s AND NOT candidate.status = ANY(%s::text[]) "
            "ORDER BY candidate.id ON CONFLICT DO NOTHING",
            [
                times.run_at,
                Enrollment.Status.ACTIVE,
                times.time_zones,
                times.due_at_by_zone,
                times.run_at_by_zone,
                batch_id,
                list(NO_CAMPAIGN_EMAIL_STATUSES),
            ],
        )
        enrolled = cursor.rowcount
        cursor.execute(f"DELETE FROM {batches} WHERE id = %s", [batch_id])  # noqa: S608
    return enrolled


@dataclass(frozen=True)
class _FirstStepTimes:
    """When a launch batch's first step runs (`run_at`: the sending window applied to the
    batch's `run_at`), and, per candidate time zone where that differs, when it is due and
    runs there (three parallel lists, empty when it does not differ)."""

    run_at: datetime
    time_zones: list[str]
    due_at_by_zone: list[datetime]
    run_at_by_zone: list[datetime]


def _first_step_times(*, batch_id: int, batch_candidates: str) -> _FirstStepTimes:
    """A batch's first-step times (`_FirstStepTimes`). A sequence whose window is in each
    candidate's time zone opens it at a different moment in each zone, and counts a whole-day
    first delay there too (`sequences.step_due_at`): one query for the zones present and one
    computation per zone, never one per candidate. The enrollments store the window's opening,
    as a recruiter's own enrollment does, so the campaign page shows when each step will
    really go out."""
    batch = (
        AudienceBatch.objects.select_related("campaign__organization", "step")
        .defer("candidate_ids")
        .get(pk=batch_id)
    )
    campaign, delay = batch.campaign, batch.step.delay
    run_at = sequences.step_run_at(campaign=campaign, candidate=None, due=batch.run_at)
    if not sequences.step_times_vary_by_candidate(campaign=campaign):
        return _FirstStepTimes(run_at, [], [], [])
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT candidate.time_zone {batch_candidates} WHERE batch.id = %s",
            [batch_id],
        )
        time_zones = [row[0] for row in cursor.fetchall()]
    times = sequences.step_times_by_time_zone(
        campaign=campaign,
        after=launch_start(campaign=campaign, now=batch.enrolled_at),
        delay=delay,
        time_zones=time_zones,
    )
    return _FirstStepTimes(
        run_at,
        list(times),
        [due for due, _ in times.values()],
        [run for _, run in times.values()],
    )


def audience_enroll_pending(
    *,
    organization_id: int | None = None,
    campaign_id: int | None = None,
    created_before: datetime | None = None,
    after_first=None,
) -> int:
    """Enroll stored audience batches (of one campaign, one organisation, or all), each in its
    own transaction, until none is left that nobody else holds (`SKIP LOCKED`: the launch's
    task and a dispatcher resuming a lost one can run at once). Batches of a campaign that was
    cancelled or finished meanwhile are dropped. `after_first` runs after the first batch is
    committed (the task kicks the dispatcher). Returns how many candidates joined."""
    enrolled, done = 0, 0
    with scopes_disabled():
        while True:
            with transaction.atomic():
                batches = AudienceBatch.objects.select_for_update(skip_locked=True, of=("self",))
                if organization_id is not None:
                    batches = batches.filter(organization_id=organization_id)
                if campaign_id is not None:
                    batches = batches.filter(campaign_id=campaign_id)
                if created_before is not None:
                    batches = batches.filter(created_at__lt=created_before)
                batch = (
                    batches.order_by("campaign_id", "position")
                    .values("pk", "campaign__status")
                    .first()
                )
                if batch is None:
                    return enrolled
                if batch["campaign__status"] in ACTIVE_STATUSES:
                    enrolled += _batch_enroll(batch_id=batch["pk"])
                else:
                    AudienceBatch.objects.filter(pk=batch["pk"]).delete()
            done += 1
            if done == 1 and after_first is not None:
                after_first()


def _enroll_later(organization_id: int, campaign_id: int) -> None:
    from campaigns.tasks import enroll_task

    enroll_task.apply_async(
        kwargs={"organization_id": organization_id, "campaign_id": campaign_id},
        queue=send_queue(),
    )


def _dispatch_now(organization_id: int, *, first_chunk: int | None = None) -> None:
    from campaigns.tasks import dispatch_task

    kwargs = {"organization_id": organization_id}
    if first_chunk:
        kwargs["first_chunk"] = first_chunk
    dispatch_task.apply_async(kwargs=kwargs, queue=send_queue())


def campaigns_finish(*, now: datetime | None = None, campaign_ids=None) -> int:
    """Mark running campaigns done once nothing is left to send: no active enrollment, no
    audience batch waiting to be enrolled and no Message still in the outbox (queued or
    sending: a capped or retried email can wait a day after it was written). A sequence that
    candidates join from a pool keeps running, whoever is left in it, until a recruiter ends
    it (`sequence_end`); pausing it only holds it.

    The send task calls it for the campaigns of the chunk it has just finished and the
    dispatcher for all running campaigns (the catch-up). One UPDATE, guarded by the status, so
    two last chunks finishing at once, or a task and the dispatcher, mark it done once: each
    caller's own results are committed before it looks, so the last one to look sees them
    all. Returns how many campaigns it finished."""
    now = now or timezone.now()
    with scopes_disabled():
        active = Enrollment.objects.filter(
            organization_id=OuterRef("organization_id"),
            campaign=OuterRef("pk"),
            status=Enrollment.Status.ACTIVE,
        )
        pending = AudienceBatch.objects.filter(campaign=OuterRef("pk"))
        in_outbox = Message.objects.filter(
            organization_id=OuterRef("organization_id"),
            campaign=OuterRef("pk"),
            status__in=OUTBOX_STATUSES,
        )
        running = Campaign.objects.filter(status=Campaign.Status.RUNNING)
        if campaign_ids is not None:
            running = running.filter(pk__in=list(campaign_ids))
        return (
            running.exclude(Exists(active))
            .exclude(Exists(pending))
            .exclude(Exists(in_outbox))
            .exclude(kind=Campaign.Kind.SEQUENCE, auto_join_pool__isnull=False)
            .update(status=Campaign.Status.DONE, finished_at=now)
        )


@transaction.atomic
def sequence_end(*, campaign: Campaign, user, now: datetime | None = None) -> int:
    """End a launched sequence for good ("End sequence" on its page: running, scheduled or
    paused). Everyone still in it leaves (reason `cancelled`, on their timeline), the emails
    written for it and still queued are not sent, nobody joins it any more from its auto-join
    pool (which stays named on its page) or from the rest of its launch's audience, and it
    shows as ended (Cancelled, `finished_at`). An email already being sent is the send path's,
    which skips it for a cancelled campaign unless it has gone. Returns how many candidates
    left it.

    First the launch's audience batches still waiting to be enrolled are locked (a batch being
    enrolled now is waited for: its candidates then leave below; `campaigns.enroll` skips the
    locked ones), then the campaign's row: an enrollment under way (`sequence_enroll` reads
    the status under a share lock) commits first and its candidates leave here too, or it
    waits and then finds the sequence ended."""
    waiting = list(
        AudienceBatch.objects.select_for_update()
        .filter(organization_id=campaign.organization_id, campaign_id=campaign.pk)
        .values_list("pk", flat=True)
    )
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.kind != Campaign.Kind.SEQUENCE:
        raise ValidationError("Only a sequence can be ended.")
    if campaign.status not in ACTIVE_STATUSES:
        raise ValidationError("This sequence has already ended.")
    now = now or timezone.now()
    AudienceBatch.objects.filter(pk__in=waiting).delete()
    # Who leaves: those still in it, and those whose last email is written but not yet sent
    # (an enrollment is done once its last email is written), read before those emails are
    # skipped.
    in_outbox = Message.objects.filter(
        organization_id=OuterRef("organization_id"),
        enrollment_id=OuterRef("pk"),
        status__in=OUTBOX_STATUSES,
    )
    leaving = list(
        Enrollment.objects.filter(organization_id=campaign.organization_id, campaign=campaign)
        .filter(
            Q(status=Enrollment.Status.ACTIVE) | Q(Exists(in_outbox), status=Enrollment.Status.DONE)
        )
        .values_list("pk", flat=True)
    )
    Message.objects.filter(
        organization_id=campaign.organization_id,
        campaign=campaign,
        status=Message.Status.QUEUED,
    ).update(status=Message.Status.SKIPPED, skip_reason=Message.SkipReason.CAMPAIGN_CANCELLED)
    left = sequences.enrollments_stop(
        organization_id=campaign.organization_id,
        enrollment_ids=leaving,
        reason=Enrollment.StopReason.CANCELLED,
        actor=user,
        now=now,
        also_done=True,
    )
    campaign.status = Campaign.Status.CANCELLED
    campaign.finished_at = now
    campaign.save(update_fields=["status", "finished_at"])
    return left
