"""Campaign sequences: several steps per candidate, spaced by delays, sent only inside a sending
window, branching on what the candidate did with the previous email, recruiter tasks between
emails, candidates joining when they enter a pool, stop rules, pause and resume, and moving
pending steps when the organisation's time zone changes.

The dispatcher (services/dispatch.py) calls `sequence_enrollments_due` for the enrollments it
claimed and `step_due_at` and `step_run_at` when it moves one on to its next step; views,
tasks and the pipelines signal receivers call the rest. The schedule lives in
`Enrollment.next_run_at` (never in ETA tasks), with `due_at` the moment before the window, so
every change here is an UPDATE the next dispatcher round acts on.
"""

import logging
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Exists, F, Max, OuterRef, Q, Value
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone
from django_scopes import scopes_disabled

from analytics.models import EngagementEvent
from campaigns.models import (
    AutoJoinBatch,
    Campaign,
    CandidateEmailPreference,
    Enrollment,
    Message,
    Step,
    Suppression,
)
from campaigns.services.audience import NO_CAMPAIGN_EMAIL_STATUSES, interest_condition
from candidates.models import Activity, Candidate
from candidates.services.activities import activities_record_bulk
from crm.models import User

logger = logging.getLogger(__name__)

MAX_DELAY = timedelta(days=365)
AUTO_JOIN_CHUNK = 5000  # candidate ids per auto-join batch (AutoJoinBatch) and task
# An auto-join batch still stored this long after its pool change lost its task (the task
# comes within seconds): the dispatcher enrolls it (`auto_join_pending`).
AUTO_JOIN_STALE_SECONDS = 60
ACTIVE_STATUSES = (Campaign.Status.SCHEDULED, Campaign.Status.RUNNING, Campaign.Status.PAUSED)
# Whom a sequence takes from its auto-join pool: not while paused (those who enter the pool
# then do not join, rather than all get step 1 at once on Resume), never once it has ended.
AUTO_JOIN_STATUSES = (Campaign.Status.SCHEDULED, Campaign.Status.RUNNING)
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


# --- the sending window ---


def _zone(name: str) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def time_zone_for(*, campaign: Campaign, candidate: Candidate | None = None) -> ZoneInfo:
    """The candidate's time zone when known (and the sequence uses it), else the
    organisation's."""
    return _window_zone(campaign, candidate.time_zone if candidate is not None else "")


def _window_zone(campaign: Campaign, candidate_time_zone: str) -> ZoneInfo:
    """`time_zone_for` given the candidate's `time_zone` value rather than the candidate."""
    if campaign.use_candidate_time_zone:
        zone = _zone(candidate_time_zone)
        if zone is not None:
            return zone
    return _zone(campaign.organization.time_zone) or ZoneInfo("UTC")


def window_next_opening(
    *, moment: datetime, days: list[int], start: time, end: time, zone: ZoneInfo
) -> datetime:
    """`moment` itself when it falls inside the window (one of `days`, 0 = Monday, between the
    wall-clock times `start` and `end` in `zone`), else the window's next opening. Wall-clock
    arithmetic, so 9:00 stays 9:00 local across daylight-saving changes (an opening the spring
    change skips moves on by the skipped hour). Never before `moment`: on the autumn night an
    opening in the repeated hour that passed in summer time comes again in winter time (01:38
    BST has gone at 01:01 GMT; 01:38 GMT has not). No days: no window."""
    if not days or start >= end:
        return moment
    local = moment.astimezone(zone)
    for offset in range(8):
        day: date = local.date() + timedelta(days=offset)
        if day.weekday() not in days:
            continue
        if offset == 0:
            if start <= local.time() < end:
                return moment
            if local.time() >= end:
                continue  # today's window has closed
        for fold in (0, 1):  # an ambiguous wall-clock time: the first, else the second time
            opening = datetime.combine(day, start.replace(fold=fold), tzinfo=zone)
            opening = opening.astimezone(UTC)
            if opening >= moment:
                return opening
    return moment  # not reached: some weekday is always within the next 8 days


def step_run_at(*, campaign: Campaign, candidate: Candidate | None, due: datetime) -> datetime:
    """When a step due at `due` may run: broadcasts at once, sequences inside their window."""
    return _run_in_zone(
        campaign=campaign, due=due, zone=time_zone_for(campaign=campaign, candidate=candidate)
    )


def _run_in_zone(*, campaign: Campaign, due: datetime, zone: ZoneInfo) -> datetime:
    if campaign.kind != Campaign.Kind.SEQUENCE:
        return due
    return window_next_opening(
        moment=due,
        days=list(campaign.window_days or []),
        start=campaign.window_start,
        end=campaign.window_end,
        zone=zone,
    )


# What `step_run_at` reads of a Message's campaign and candidate, for `.only()` on Messages.
MESSAGE_WINDOW_FIELDS = (
    "campaign__kind",
    "campaign__window_days",
    "campaign__window_start",
    "campaign__window_end",
    "campaign__use_candidate_time_zone",
    "campaign__organization__time_zone",
    "candidate__time_zone",
)


def messages_window_closed(messages, *, now: datetime) -> dict[int, datetime]:
    """The sequence emails among `messages` (a Message queryset) whose sending window is shut
    at `now`: {message pk: the window's next opening}. For emails that go out later than
    planned — their worker was lost, their send task never ran — which must not reach the
    candidate at night or at the weekend because of it."""
    return windows_shut(
        messages.filter(campaign__kind=Campaign.Kind.SEQUENCE, is_test=False)
        .select_related("campaign__organization", "candidate")
        .only(*MESSAGE_WINDOW_FIELDS),
        now=now,
    )


def windows_shut(messages, *, now: datetime) -> dict[int, datetime]:
    """`messages_window_closed` for loaded Messages (with `MESSAGE_WINDOW_FIELDS`): no query,
    the window worked out once per campaign and candidate time zone. A recruiter's test send
    is not a step: it goes whenever it is asked for; broadcasts have no window."""
    openings: dict[tuple[int, str], datetime] = {}
    shut: dict[int, datetime] = {}
    for message in messages:
        if message.is_test or message.campaign_id is None:
            continue
        if message.campaign.kind != Campaign.Kind.SEQUENCE:
            continue
        candidate = message.candidate
        key = (message.campaign_id, candidate.time_zone if candidate is not None else "")
        opening = openings.get(key)
        if opening is None:
            opening = openings[key] = step_run_at(
                campaign=message.campaign, candidate=candidate, due=now
            )
        if opening > now:
            shut[message.pk] = opening
    return shut


def _counts_calendar_days(campaign: Campaign, delay: timedelta) -> bool:
    return campaign.kind == Campaign.Kind.SEQUENCE and bool(delay) and not delay % timedelta(days=1)


def _due_in_zone(
    *, campaign: Campaign, after: datetime, delay: timedelta, zone: ZoneInfo
) -> datetime:
    if _counts_calendar_days(campaign, delay):
        return (after.astimezone(zone) + delay).astimezone(UTC)  # aware + timedelta: wall clock
    return after + delay


def step_due_at(
    *, campaign: Campaign, candidate: Candidate | None, after: datetime, delay: timedelta
) -> datetime:
    """When a step that waits `delay` after `after` (joining, or the previous step) is due,
    before the sending window (`Enrollment.due_at`). A sequence's delay in whole days counts
    calendar days on the wall clock of the zone its window uses (`time_zone_for`), so "1 day
    after" Saturday 09:10 is Sunday 09:10 there across a daylight-saving change too, not 10:10
    or 08:10 (24 hours), which a window closing at 10:00 would push to the next day's opening.
    A wall-clock time that the change skips moves on by the skipped hour. A delay in hours is
    elapsed time."""
    return _due_in_zone(
        campaign=campaign,
        after=after,
        delay=delay,
        zone=time_zone_for(campaign=campaign, candidate=candidate),
    )


def step_next_run_at(
    *, campaign: Campaign, candidate: Candidate | None, after: datetime, delay: timedelta
) -> datetime:
    """When a step that waits `delay` after `after` runs: its due time (`step_due_at`), then
    the window (`step_run_at`)."""
    due = step_due_at(campaign=campaign, candidate=candidate, after=after, delay=delay)
    return step_run_at(campaign=campaign, candidate=candidate, due=due)


def step_times_vary_by_candidate(*, campaign: Campaign) -> bool:
    """Whether candidates who start waiting for a step at the same moment can be due or run at
    different moments: a sequence whose window (and whole-day delays) are in each candidate's
    time zone."""
    return campaign.kind == Campaign.Kind.SEQUENCE and campaign.use_candidate_time_zone


def step_times_by_time_zone(
    *, campaign: Campaign, after: datetime, delay: timedelta, time_zones
) -> dict[str, tuple[datetime, datetime]]:
    """`step_due_at` and `step_run_at` for candidates whose `time_zone` value is each of
    `time_zones` (a name that is not a zone stands for the organisation's, as in
    `time_zone_for`): {name: (due, runs)}, one computation per zone rather than per candidate,
    for a launch's audience."""
    times = {}
    for name in time_zones:
        zone = _window_zone(campaign, name)
        due = _due_in_zone(campaign=campaign, after=after, delay=delay, zone=zone)
        times[name] = (due, _run_in_zone(campaign=campaign, due=due, zone=zone))
    return times


def window_summary(*, campaign: Campaign) -> str:
    """The window in words for the campaign page, e.g. Mon to Fri 09:00 to 17:00 (with dashes)."""
    days = sorted(campaign.window_days or [])
    if not days:
        return "Any time"
    if days == list(range(days[0], days[-1] + 1)) and len(days) > 2:
        names = f"{WEEKDAYS[days[0]]}–{WEEKDAYS[days[-1]]}"
    else:
        names = ", ".join(WEEKDAYS[day] for day in days)
    return f"{names} {campaign.window_start:%H:%M}–{campaign.window_end:%H:%M}"


def delay_text(delay: timedelta) -> str:
    """ "After 2 days", "After 5 hours", "At once"."""
    hours = int(delay.total_seconds() // 3600)
    if hours == 0:
        return "At once"
    if hours % 24 == 0:
        days = hours // 24
        return f"After {days} day{'s' if days != 1 else ''}"
    return f"After {hours} hour{'s' if hours != 1 else ''}"


# --- stopping and finishing enrollments (each on the candidate's timeline) ---

_STOP_SUMMARIES = {
    Enrollment.StopReason.REPLIED: "they replied",
    Enrollment.StopReason.UNSUBSCRIBED: "they unsubscribed",
    Enrollment.StopReason.BOUNCED: "their address bounced",
    Enrollment.StopReason.COMPLAINED: "they marked an email as spam",
    Enrollment.StopReason.REMOVED: "removed by a recruiter",
    Enrollment.StopReason.CANCELLED: "the campaign was ended",
    Enrollment.StopReason.STAGE_WON: "moved to a won stage",
    Enrollment.StopReason.STAGE_LOST: "moved to a lost stage",
    Enrollment.StopReason.ENGAGED: "they engaged, so the next step was not needed",
    Enrollment.StopReason.DO_NOT_CONTACT: "marked “Do not contact”",
    Enrollment.StopReason.HIRED: "marked Hired",
}

# A candidate's status that ends their enrollments, with the reason (NO_CAMPAIGN_EMAIL_STATUSES).
STATUS_STOPS = {
    Candidate.Status.DO_NOT_CONTACT: Enrollment.StopReason.DO_NOT_CONTACT,
    Candidate.Status.HIRED: Enrollment.StopReason.HIRED,
}


_IN_OUTBOX = (Message.Status.QUEUED, Message.Status.SENDING)


def enrollments_stop(
    *,
    organization_id: int,
    enrollment_ids: list[int],
    reason: str,
    actor: User | None = None,
    status: str = Enrollment.Status.STOPPED,
    now: datetime | None = None,
    also_done: bool = False,
) -> int:
    """End these enrollments (the active ones among them; with `also_done`, finished ones
    too, e.g. a broadcast whose one email bounced) with `reason`, and put one entry on each
    candidate's timeline. `status` is DONE for a sequence that ended on a branch. Returns how
    many ended.

    A stop also reaches a finished sequence enrollment whose last email is still in the outbox
    (an enrollment is done once its last email is written, which can be a day before a capped
    or retried email goes out): it stops, so the send path does not send that email. (A
    broadcast's one email is left to the send path's guard rails, as before.) The queued
    emails of the enrollments stopped here are marked skipped at once ("removed from the
    campaign"), so the campaign page no longer counts them as waiting; one being sent is the
    send path's, which skips it for the stopped enrollment unless it has gone already. A merge
    (reason `merged`) skips its own, to be able to undo it."""
    stopping = status == Enrollment.Status.STOPPED
    from_statuses = [Enrollment.Status.ACTIVE]
    if also_done or stopping:
        from_statuses.append(Enrollment.Status.DONE)
    now = now or timezone.now()
    with transaction.atomic():
        rows = list(
            Enrollment.objects.select_for_update(of=("self",))
            .filter(
                organization_id=organization_id,
                pk__in=list(enrollment_ids),
                status__in=from_statuses,
            )
            .values_list(
                "pk", "status", "candidate_id", "campaign_id", "campaign__name", "campaign__kind"
            )
        )
        if not also_done:
            done = [
                row[0]
                for row in rows
                if row[1] == Enrollment.Status.DONE and row[5] == Campaign.Kind.SEQUENCE
            ]
            # Read after the lock: a dispatcher that had just written the last email (and
            # marked the enrollment done) has committed it, and this statement sees it.
            in_outbox = (
                set(
                    Message.objects.filter(
                        organization_id=organization_id,
                        enrollment_id__in=done,
                        status__in=_IN_OUTBOX,
                    ).values_list("enrollment_id", flat=True)
                )
                if done
                else set()
            )
            rows = [
                row for row in rows if row[1] == Enrollment.Status.ACTIVE or row[0] in in_outbox
            ]
        if not rows:
            return 0
        ids = [row[0] for row in rows]
        Enrollment.objects.filter(pk__in=ids).update(
            status=status, stop_reason=reason, finished_at=now, next_run_at=None
        )
        if stopping and reason != Enrollment.StopReason.MERGED:
            # The WHERE is checked again under each row's lock: an email a send task has
            # claimed meanwhile is `sending` and left to it.
            Message.objects.filter(
                organization_id=organization_id,
                enrollment_id__in=ids,
                status=Message.Status.QUEUED,
            ).update(
                status=Message.Status.SKIPPED, skip_reason=Message.SkipReason.ENROLLMENT_STOPPED
            )
        by_campaign: dict[tuple[int, str], list[int]] = defaultdict(list)
        for _, _, candidate_id, campaign_id, name, _ in rows:
            by_campaign[(campaign_id, name)].append(candidate_id)
        why = _STOP_SUMMARIES.get(reason) or Enrollment.StopReason(reason).label.lower()
        verb = "Finished" if status == Enrollment.Status.DONE else "Left"
        for (campaign_id, name), candidate_ids in by_campaign.items():
            activities_record_bulk(
                organization_id=organization_id,
                candidate_ids=candidate_ids,
                kind=Activity.Kind.ENROLLMENT,
                summary=f"{verb} the campaign “{name}”: {why}",
                actor=actor,
                data={"campaign_id": campaign_id, "stop_reason": reason, "status": status},
                occurred_at=now,
            )
    return len(rows)


def enrollments_stop_for_candidates(
    *,
    organization_id: int,
    candidate_ids: list[int],
    reason: str,
    campaign_id: int | None = None,
    sequences_only: bool = False,
    actor: User | None = None,
) -> int:
    """End the active enrollments of these candidates (in one campaign, or in all), and the
    finished sequence enrollments whose last email is still in the outbox (see
    `enrollments_stop`)."""
    enrollments = _stoppable_enrollments(organization_id).filter(
        candidate_id__in=list(candidate_ids)
    )
    if campaign_id is not None:
        enrollments = enrollments.filter(campaign_id=campaign_id)
    if sequences_only:
        enrollments = enrollments.filter(campaign__kind=Campaign.Kind.SEQUENCE)
    ids = list(enrollments.values_list("pk", flat=True))
    if not ids:
        return 0
    return enrollments_stop(
        organization_id=organization_id, enrollment_ids=ids, reason=reason, actor=actor
    )


def _stoppable_enrollments(organization_id: int):
    """The organisation's enrollments a stop ends: the active ones, and the finished sequence
    enrollments whose last email is still in the outbox (see `enrollments_stop`)."""
    in_outbox = Message.objects.filter(
        organization_id=OuterRef("organization_id"),
        enrollment_id=OuterRef("pk"),
        status__in=_IN_OUTBOX,
    )
    return Enrollment.objects.filter(organization_id=organization_id).filter(
        Q(status=Enrollment.Status.ACTIVE)
        | Q(
            Exists(in_outbox),
            status=Enrollment.Status.DONE,
            campaign__kind=Campaign.Kind.SEQUENCE,
        )
    )


def enrollments_stop_for_status(
    *, organization_id: int, candidate_ids: list[int] | None = None
) -> int:
    """Candidates marked "Do not contact" or Hired leave every campaign at once (reason
    `do_not_contact` or `hired`, on their timeline), as after an unsubscribe, rather than when
    their next step falls due. Called by the receivers of candidates' `candidate_changed` (a
    profile edited, a merge) and `candidates_changed_in_bulk` (a bulk "Set status", an
    import). Among `candidate_ids`; None (an import or a bulk job does not name whom it
    changed): every such candidate of the organisation, in one query over its do-not-contact
    and hired candidates (index `cand_org_status`) and their enrollments. Returns how many
    enrollments ended."""
    enrollments = _stoppable_enrollments(organization_id).filter(
        candidate__status__in=list(STATUS_STOPS)
    )
    if candidate_ids is not None:
        enrollments = enrollments.filter(candidate_id__in=list(candidate_ids))
    by_reason: dict[str, list[int]] = defaultdict(list)
    for pk, status in enrollments.values_list("pk", "candidate__status"):
        by_reason[STATUS_STOPS[status]].append(pk)
    return sum(
        enrollments_stop(organization_id=organization_id, enrollment_ids=ids, reason=reason)
        for reason, ids in by_reason.items()
    )


def enrollment_remove(*, enrollment: Enrollment, actor: User | None) -> bool:
    """A recruiter takes one candidate out of a campaign ("Remove" on the campaign page)."""
    return bool(
        enrollments_stop(
            organization_id=enrollment.organization_id,
            enrollment_ids=[enrollment.pk],
            reason=Enrollment.StopReason.REMOVED,
            actor=actor,
        )
    )


def stage_outcome_stop(*, pool, stage, candidate_ids: list[int]) -> int:
    """Candidates moved to a won or lost (final) stage leave every sequence they are in."""
    from pipelines.models import Stage

    reasons = {
        Stage.Outcome.WON: Enrollment.StopReason.STAGE_WON,
        Stage.Outcome.LOST: Enrollment.StopReason.STAGE_LOST,
    }
    reason = reasons.get(stage.outcome)
    if reason is None or not candidate_ids:
        return 0
    return enrollments_stop_for_candidates(
        organization_id=pool.organization_id,
        candidate_ids=candidate_ids,
        reason=reason,
        sequences_only=True,
    )


# --- the dispatcher's part: what happens when a step becomes due ---

_SIGNAL_STOPS = [  # strongest first
    (EngagementEvent.Kind.COMPLAINED, Enrollment.StopReason.COMPLAINED),
    (EngagementEvent.Kind.BOUNCED, Enrollment.StopReason.BOUNCED),
    (EngagementEvent.Kind.REPLIED, Enrollment.StopReason.REPLIED),
]


def _signals(enrollments: list[Enrollment]) -> dict[tuple[int, int], set[str]]:
    """(campaign, candidate) → the stop-worthy events seen in that campaign."""
    rows = EngagementEvent.objects.filter(
        organization_id__in={e.organization_id for e in enrollments},
        campaign_id__in={e.campaign_id for e in enrollments},
        candidate_id__in={e.candidate_id for e in enrollments},
        kind__in=[kind for kind, _ in _SIGNAL_STOPS],
        is_machine=False,
    ).values_list("campaign_id", "candidate_id", "kind")
    found: dict[tuple[int, int], set[str]] = defaultdict(set)
    for campaign_id, candidate_id, kind in rows:
        found[(campaign_id, candidate_id)].add(kind)
    return found


def _previous_emails(enrollments: list[Enrollment]) -> dict[int, Message]:
    """Each enrollment's latest email (the "previous email" a condition looks at)."""
    if not enrollments:
        return {}
    messages = (
        Message.objects.filter(
            organization_id__in={e.organization_id for e in enrollments},
            enrollment_id__in=[e.pk for e in enrollments],
        )
        .order_by("enrollment_id", "-created_at", "-id")
        .distinct("enrollment_id")
        .only("pk", "enrollment_id", "opened_at", "clicked_at")
    )
    return {message.enrollment_id: message for message in messages}


def _replied_message_ids(messages) -> set[int]:
    ids = [message.pk for message in messages]
    if not ids:
        return set()
    return set(
        EngagementEvent.objects.filter(
            message_id__in=ids, kind=EngagementEvent.Kind.REPLIED, is_machine=False
        ).values_list("message_id", flat=True)
    )


def condition_met(*, condition: str, previous: Message | None, replied: bool) -> bool:
    """Whether a step with `condition` runs, given the previous email (None: there was none,
    so there was nothing to open, click or answer)."""
    if not condition or previous is None:
        return True
    if condition == Step.Condition.NOT_OPENED:
        return previous.opened_at is None and previous.clicked_at is None
    if condition == Step.Condition.NOT_CLICKED:
        return previous.clicked_at is None
    if condition == Step.Condition.NOT_REPLIED:
        return not replied
    return True


def _task_owners(campaigns: dict, candidates: dict, enrollments: list[Enrollment]) -> dict:
    ids = set()
    for enrollment in enrollments:
        candidate = candidates.get(enrollment.candidate_id)
        ids.add(candidate.owner_id if candidate else None)
        ids.add(campaigns[enrollment.campaign_id].sender_id)
    ids.discard(None)
    return User.objects.in_bulk(ids) if ids else {}


def _tasks_create(*, tasks, campaigns, steps, candidates, now) -> None:
    """Task steps become follow-ups for the candidate's owner (else the campaign's sender),
    due today in the organisation's time zone; the sequence moves on after them."""
    from pipelines.models import FollowUp
    from pipelines.services import follow_up_create

    owners = _task_owners(campaigns, candidates, tasks)
    for enrollment in tasks:
        campaign = campaigns[enrollment.campaign_id]
        step = steps[enrollment.current_step_id]
        candidate = candidates[enrollment.candidate_id]
        owner = owners.get(candidate.owner_id) or owners.get(campaign.sender_id)
        note = step.task_note or f"Step {step.position} of “{campaign.name}”"
        follow_up_create(
            candidate=candidate,
            due_on=now.astimezone(time_zone_for(campaign=campaign)).date(),
            note=f"{note} (campaign “{campaign.name}”)"[:500],
            owner=owner,
            actor=None,
            source=FollowUp.Source.CAMPAIGN,
        )


def sequence_enrollments_due(
    *,
    enrollments: list[Enrollment],
    campaigns: dict[int, Campaign],
    steps_by_campaign: dict[int, list[Step]],
    candidates: dict[int, Candidate],
    now: datetime,
) -> list[Enrollment]:
    """Called by the dispatcher, inside its transaction, with the enrollments it claimed.
    For sequences, in this order: stop those whose candidate replied, complained, bounced or
    became do-not-contact or hired; move those due outside the sending window to its next opening;
    finish (done, "engaged") those whose step's condition on the previous email is not met;
    turn due task steps into follow-ups. Returns the enrollments whose step runs now (broadcast
    ones unchanged); the dispatcher renders their emails and moves them on."""
    sequence = [
        e
        for e in enrollments
        if campaigns[e.campaign_id].kind == Campaign.Kind.SEQUENCE and e.current_step_id
    ]
    if not sequence:
        return enrollments
    steps = {step.pk: step for group in steps_by_campaign.values() for step in group}
    signals = _signals(sequence)
    stops: dict[str, list[int]] = defaultdict(list)
    later: list[Enrollment] = []
    due_now: list[Enrollment] = []
    for enrollment in sequence:
        candidate = candidates.get(enrollment.candidate_id)
        seen = signals.get((enrollment.campaign_id, enrollment.candidate_id), set())
        reason = next((reason for kind, reason in _SIGNAL_STOPS if kind in seen), None)
        if reason is None and candidate is not None:
            reason = STATUS_STOPS.get(candidate.status)  # do not contact, hired
        if reason is not None:
            stops[reason].append(enrollment.pk)
            continue
        run_at = step_run_at(
            campaign=campaigns[enrollment.campaign_id], candidate=candidate, due=now
        )
        if run_at > now:
            enrollment.next_run_at = run_at
            later.append(enrollment)
            continue
        due_now.append(enrollment)

    conditional = [e for e in due_now if steps[e.current_step_id].condition]
    previous = _previous_emails(conditional)
    replied = _replied_message_ids(previous.values())
    engaged: list[int] = []
    tasks: list[Enrollment] = []
    for enrollment in due_now:
        step = steps[enrollment.current_step_id]
        last = previous.get(enrollment.pk)
        if not condition_met(
            condition=step.condition,
            previous=last,
            replied=last is not None and last.pk in replied,
        ):
            engaged.append(enrollment.pk)
        elif step.kind == Step.Kind.TASK:
            tasks.append(enrollment)

    organization_of = {e.pk: e.organization_id for e in sequence}

    def end(ids: list[int], reason: str, status: str = Enrollment.Status.STOPPED) -> None:
        grouped: dict[int, list[int]] = defaultdict(list)
        for pk in ids:
            grouped[organization_of[pk]].append(pk)
        for organization_id, pks in grouped.items():
            enrollments_stop(
                organization_id=organization_id,
                enrollment_ids=pks,
                reason=reason,
                status=status,
                now=now,
            )

    for reason, ids in stops.items():
        end(ids, reason)
    if engaged:
        end(engaged, Enrollment.StopReason.ENGAGED, Enrollment.Status.DONE)
    if later:
        Enrollment.objects.bulk_update(later, ["next_run_at"], batch_size=1000)
    if tasks:
        _tasks_create(tasks=tasks, campaigns=campaigns, steps=steps, candidates=candidates, now=now)
    set_aside = {pk for ids in stops.values() for pk in ids} | set(engaged)
    set_aside |= {e.pk for e in later}
    return [e for e in enrollments if e.pk not in set_aside]


# --- joining ---


def _contactable(candidates, organization_id: int):
    """Leave out who campaign email must not go to (the audience's own rules)."""
    return (
        candidates.exclude(email="")
        .exclude(status__in=NO_CAMPAIGN_EMAIL_STATUSES)
        .exclude(
            Exists(
                CandidateEmailPreference.objects.filter(
                    candidate=OuterRef("pk"), unsubscribed_at__isnull=False
                )
            )
        )
        .exclude(
            Exists(
                Suppression.objects.filter(organization_id=organization_id, email=OuterRef("email"))
            )
        )
    )


@transaction.atomic
def sequence_enroll(
    *,
    campaign: Campaign,
    candidate_ids: list[int],
    now: datetime | None = None,
    summary: str = "",
    by_interest: bool = False,
    pool_id: int | None = None,
    actor: User | None = None,
) -> int:
    """Enroll candidates in a launched sequence at its first step (those already enrolled
    once, now or before, are left alone: nobody goes through a sequence twice). With
    `by_interest` (candidates joining from the auto-join pool), only those who fit the
    sequence's interest targeting join; a recruiter's own choice is not filtered. `pool_id`:
    they joined from that pool, which a paused sequence does not take anyone from
    (AUTO_JOIN_STATUSES); a recruiter may enroll into a paused one (they wait for Resume).
    Nobody joins an ended or finished sequence. Returns how many joined.

    The status is read under a share lock of the campaign's row, held to the end of the
    transaction: a pause or an end (which lock the row for update) waits for these
    enrollments to commit and then deals with them, or this waits for it and sees its status.

    Who joins is what the INSERT inserted, not what was read before it: a second submission
    at the same moment (a double click, two recruiters) reads before the first commits and
    sees nobody enrolled yet; its insert then waits for the first's rows, skips them (the
    unique constraint, `ON CONFLICT DO NOTHING`) and returns only its own, so each candidate
    gets one "Joined" entry and the two submissions' counts add up to who joined."""
    now = now or timezone.now()
    statuses = AUTO_JOIN_STATUSES if pool_id is not None else ACTIVE_STATUSES
    if _campaign_status_shared(campaign) not in statuses:
        return 0
    first = campaign.steps.order_by("position").first()
    if first is None:
        return 0
    already = Enrollment.objects.filter(campaign=campaign, candidate_id=OuterRef("pk"))
    candidates = Candidate.objects.live().filter(
        organization_id=campaign.organization_id, pk__in=list(candidate_ids)
    )
    interests = interest_condition(campaign=campaign) if by_interest else None
    if interests is not None:
        candidates = candidates.filter(interests)
    joining = list(
        _contactable(candidates, campaign.organization_id)
        .exclude(Exists(already))
        .only("pk", "time_zone")
    )
    if not joining:
        return 0
    start = max(now, campaign.scheduled_at) if campaign.scheduled_at else now
    due = {
        candidate.pk: step_due_at(
            campaign=campaign, candidate=candidate, after=start, delay=first.delay
        )
        for candidate in joining
    }
    joined = _enrollments_insert(
        campaign=campaign,
        step=first,
        due_at=due,
        run_at={
            candidate.pk: step_run_at(campaign=campaign, candidate=candidate, due=due[candidate.pk])
            for candidate in joining
        },
    )
    activities_record_bulk(
        organization_id=campaign.organization_id,
        candidate_ids=joined,
        kind=Activity.Kind.ENROLLMENT,
        summary=summary or f"Joined the campaign “{campaign.name}”",
        actor=actor,
        # `pool_id`: the pool they joined from, named in `summary` (AUTO_JOIN_SUMMARY).
        data={"campaign_id": campaign.pk, **({"pool_id": pool_id} if pool_id else {})},
    )
    return len(joined)


def _campaign_status_shared(campaign: Campaign) -> str | None:
    """The campaign's status now, read under a share lock of its row (FOR SHARE: enrollments
    at once do not wait for each other, a pause or an end waits for them); None if it is
    gone."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT status FROM {Campaign._meta.db_table} "  # noqa: S608 (our table name)
            "WHERE id = %s AND organization_id = %s FOR SHARE",
            [campaign.pk, campaign.organization_id],
        )
        row = cursor.fetchone()
    return row[0] if row else None


# The candidate list's bulk action "Enroll in a sequence" (its page: views/enroll.py). Small
# selections are enrolled at once, bigger ones by a job in batches: candidates' bulk-action
# machinery runs both (candidates.services.bulk.BulkJobAction, registered in CampaignsConfig).
ENROLL_ACTION = "sequence_enroll"


def sequence_enroll_selection(
    *, organization_id: int, args: dict, ids: list[int], actor: User | None = None
) -> int:
    """One batch of "Enroll in a sequence" (`args`: the sequence's `campaign_id`): enroll the
    candidates `ids`, in the caller's transaction. A job commits each batch with its cursor,
    so a resumed job starts after the last batch done (and enrolling twice is a no-op anyway).
    Once committed, the dispatcher is kicked, as after an auto-join, so that a first step due
    at once goes out now rather than at the next beat. A sequence ended meanwhile takes
    nobody. Returns how many joined."""
    campaign = (
        Campaign.objects.select_related("organization")
        .filter(
            organization_id=organization_id, kind=Campaign.Kind.SEQUENCE, pk=args["campaign_id"]
        )
        .first()
    )
    if campaign is None:
        return 0
    joined = sequence_enroll(
        campaign=campaign,
        candidate_ids=ids,
        summary=f"Enrolled in the sequence “{campaign.name}”",
        actor=actor,
    )
    if joined:
        _dispatch_soon(organization_id)
    return joined


def sequence_enroll_outcome(args: dict, joined: int, total: int) -> list[str]:
    """What "Enroll in a sequence" did, sentence by sentence (`total`: the candidates it
    found): for the message after an inline run and for a finished job's page."""
    name = args.get("campaign_name", "the sequence")
    said = []
    if joined:
        said.append(f"{joined:,} candidate{'s' if joined != 1 else ''} enrolled in “{name}”.")
    if joined < total:
        said.append(
            f"{total - joined:,} of the selection did not join: already enrolled once, "
            "unsubscribed, suppressed, do-not-contact, hired or without an email address."
        )
    return said


def _enrollments_insert(
    *, campaign: Campaign, step: Step, due_at: dict[int, datetime], run_at: dict[int, datetime]
) -> list[int]:
    """One INSERT of active enrollments at `step` (candidate id → when it is due, and when it
    runs: `due_at` moved into the window), in candidate order (two inserts of overlapping
    candidates wait for each other instead of deadlocking); returns the candidates actually inserted, not those someone enrolled meanwhile."""
    ids = sorted(run_at)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Enrollment._meta.db_table} (organization_id, campaign_id, "  # noqa: S608 (our table name)
            "candidate_id, current_step_id, next_run_at, due_at, status, stop_reason, "
            "enrolled_at, finished_at) "
            "SELECT %s, %s, joining.candidate_id, %s, joining.run_at, joining.due_at, %s, '', "
            "%s, NULL FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) "
            "AS joining(candidate_id, run_at, due_at) "
            "ORDER BY joining.candidate_id "
            "ON CONFLICT DO NOTHING RETURNING candidate_id",
            [
                campaign.organization_id,
                campaign.pk,
                step.pk,
                Enrollment.Status.ACTIVE,
                timezone.now(),
                ids,
                [run_at[pk] for pk in ids],
                [due_at[pk] for pk in ids],
            ],
        )
        return [row[0] for row in cursor.fetchall()]


AUTO_JOIN_SUMMARY = "Joined the campaign “{campaign}” (entered the pool “{pool}”)"
_AUTO_JOIN_POOL = " (entered the pool “"


def enrollment_private_pool_condition(*, organization_id: int, user) -> Q:
    """Auto-join entries naming a pool the user may not see (campaigns' timeline redaction)."""
    from pipelines.selectors import activity_names_hidden_pool

    return Q(kind=Activity.Kind.ENROLLMENT) & activity_names_hidden_pool(
        organization_id=organization_id, user=user
    )


def enrollment_private_pool_summary(activity) -> str:
    """An auto-join entry without the pool's name."""
    joined, marker, _pool = activity.summary.partition(_AUTO_JOIN_POOL)
    return (
        f"{joined} (entered a private pool)" if marker else "Joined a campaign from a private pool"
    )


def sequences_auto_join(
    *, pool_id: int, candidate_ids: list[int], organization_id: int | None = None
) -> int:
    """Candidates who just entered a pool join every launched sequence that auto-joins from
    it and is not paused (run for each stored AutoJoinBatch: `auto_join_batch_run`,
    `auto_join_pending`). Returns how many joined."""
    joined = 0
    campaigns = Campaign.objects.filter(
        kind=Campaign.Kind.SEQUENCE, auto_join_pool_id=pool_id, status__in=AUTO_JOIN_STATUSES
    ).select_related("organization", "auto_join_pool")
    if organization_id is not None:
        campaigns = campaigns.filter(organization_id=organization_id)
    for campaign in campaigns:
        with transaction.atomic():
            joined += sequence_enroll(
                campaign=campaign,
                candidate_ids=candidate_ids,
                summary=AUTO_JOIN_SUMMARY.format(
                    campaign=campaign.name, pool=campaign.auto_join_pool.name
                ),
                by_interest=True,
                pool_id=pool_id,
            )
    if joined:
        _dispatch_soon(campaigns[0].organization_id)
    return joined


def pool_entries_enqueue(*, pool, candidate_ids: list[int]) -> int:
    """The receiver of pipelines' `candidates_entered_pool`: when a launched sequence that is
    not paused joins from this pool, store the entrants in AutoJoinBatch rows of
    AUTO_JOIN_CHUNK ids (one INSERT, in the pool change's transaction) and, after commit,
    queue a `campaigns.sequence_auto_join` task per batch. The task is a head start (robust:
    a broker that is down does not fail the pool change, which has committed): a batch whose
    task never comes is enrolled by the dispatcher (`auto_join_pending`). Returns the number
    of batches."""
    if not candidate_ids:
        return 0
    if not Campaign.objects.filter(
        organization_id=pool.organization_id,
        kind=Campaign.Kind.SEQUENCE,
        auto_join_pool_id=pool.pk,
        status__in=AUTO_JOIN_STATUSES,
    ).exists():
        return 0
    from campaigns.tasks import sequence_auto_join_task

    organization_id = pool.organization_id
    ids = list(candidate_ids)
    batches = AutoJoinBatch.objects.bulk_create(
        AutoJoinBatch(
            organization_id=organization_id,
            pool_id=pool.pk,
            candidate_ids=ids[start : start + AUTO_JOIN_CHUNK],
        )
        for start in range(0, len(ids), AUTO_JOIN_CHUNK)
    )
    for batch in batches:
        transaction.on_commit(
            lambda batch_id=batch.pk: sequence_auto_join_task.delay(
                organization_id=organization_id, batch_id=batch_id
            ),
            robust=True,
        )
    return len(batches)


def _auto_join_batch_enroll(batches) -> int | None:
    """Lock the batch of `batches` (a queryset naming one) unless someone else holds it
    (`SKIP LOCKED`: its task and the dispatcher may come at once), enroll its candidates and
    delete it, in one transaction: both happen or neither, and enrolling twice is a no-op
    anyway. Returns how many joined, None when the batch is gone or held."""
    with transaction.atomic():
        batch = (
            batches.select_for_update(skip_locked=True)
            .values("pk", "organization_id", "pool_id", "candidate_ids")
            .first()
        )
        if batch is None:
            return None
        joined = sequences_auto_join(
            pool_id=batch["pool_id"],
            candidate_ids=batch["candidate_ids"],
            organization_id=batch["organization_id"],
        )
        AutoJoinBatch.objects.filter(pk=batch["pk"]).delete()
    return joined


def auto_join_batch_run(*, organization_id: int, batch_id: int) -> int:
    """The body of the `campaigns.sequence_auto_join` task: enroll the stored batch. Returns
    how many joined (0 when the dispatcher has enrolled it already, or is doing so)."""
    batch = AutoJoinBatch.objects.filter(organization_id=organization_id, pk=batch_id)
    return _auto_join_batch_enroll(batch) or 0


def auto_join_pending(
    *, organization_id: int | None = None, created_before: datetime | None = None
) -> int:
    """The dispatcher's backstop for lost auto-join tasks: enroll the stored batches (of one
    organisation, or all) created before `created_before`, each in its own transaction, and
    delete them. When none is waiting this is one query on a table whose rows live seconds.
    A batch that fails is logged and left for the next round, so that it cannot hold up the
    dispatcher. Returns how many candidates joined."""
    joined = 0
    with scopes_disabled():
        waiting = AutoJoinBatch.objects.all()
        if organization_id is not None:
            waiting = waiting.filter(organization_id=organization_id)
        if created_before is not None:
            waiting = waiting.filter(created_at__lt=created_before)
        for batch_id in list(waiting.order_by("id").values_list("pk", flat=True)):
            try:
                joined += _auto_join_batch_enroll(AutoJoinBatch.objects.filter(pk=batch_id)) or 0
            except Exception:
                logger.exception("Auto-join batch %s failed; the next round tries again", batch_id)
    return joined


def _dispatch_soon(organization_id: int) -> None:
    from campaigns.services.campaigns import _dispatch_now

    # A head start (robust: the dispatcher's minute runs anyway, with the broker down or not).
    transaction.on_commit(lambda: _dispatch_now(organization_id), robust=True)


# --- pause and resume ---


class Overdue:
    SEND_NOW = "send_now"
    RESCHEDULE = "reschedule"
    CHOICES = [
        (RESCHEDULE, "Reschedule them from now, keeping their spacing"),
        (SEND_NOW, "Send them now (within the sending window)"),
    ]


@transaction.atomic
def campaign_pause(*, campaign: Campaign, user: User | None, now: datetime | None = None) -> None:
    """Hold every pending step: the dispatcher skips paused campaigns and the send path leaves
    their queued emails alone."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in (Campaign.Status.SCHEDULED, Campaign.Status.RUNNING):
        raise ValidationError("Only a campaign that is sending can be paused.")
    campaign.status = Campaign.Status.PAUSED
    campaign.paused_at = now or timezone.now()
    campaign.save(update_fields=["status", "paused_at"])


def campaign_overdue_count(*, campaign: Campaign, now: datetime | None = None) -> int:
    """Pending steps whose time has come while the campaign was paused: steps not yet rendered,
    and emails rendered before the pause (or held by a cap) that are waiting to go out."""
    now = now or timezone.now()
    steps = Enrollment.objects.filter(
        organization_id=campaign.organization_id,
        campaign=campaign,
        status=Enrollment.Status.ACTIVE,
        next_run_at__lte=now,
    ).count()
    emails = (
        _queued_messages(campaign)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .count()
    )
    return steps + emails


def _queued_messages(campaign: Campaign):
    return Message.objects.filter(
        organization_id=campaign.organization_id,
        campaign=campaign,
        status=Message.Status.QUEUED,
    )


def _waiting_since(started: str, *, paused_at: datetime, now: datetime) -> Greatest:
    """From when a row has waited on the pause: from the pause's start, or from its field
    `started` (when the candidate joined, when the email was rendered) if that came during the
    pause, but never after now, whatever clock stamped it."""
    return Greatest(Least(F(started), Value(now)), Value(paused_at))


def _queued_emails_into_window(*, campaign: Campaign, now: datetime) -> None:
    """Move a resumed sequence's queued emails that would go out outside its sending window to
    the window's next opening, in the candidate's time zone when the sequence uses it: one due
    at once (no next attempt, or one that has passed) from now, one held until later from then.
    The send path does not look at the window (the dispatcher renders a step only inside it),
    so an email rendered before the pause would otherwise go out on a Saturday night.

    One read of the distinct (wait, time zone) pairs, then one UPDATE per time zone and
    opening, however many emails wait: those due at once all wait until `now`, and the rest
    share the few moments a cap held them until (moved by the same pause)."""
    if campaign.kind != Campaign.Kind.SEQUENCE:
        return
    days, start, end = list(campaign.window_days or []), campaign.window_start, campaign.window_end
    if not days or start >= end:
        return  # no window: any time
    by_candidate = campaign.use_candidate_time_zone
    emails = _queued_messages(campaign).filter(is_test=False)
    wait = Greatest(Coalesce(F("next_attempt_at"), Value(now)), Value(now))
    pairs = (
        emails.annotate(
            wait=wait, time_zone=F("candidate__time_zone") if by_candidate else Value("")
        )
        .values_list("wait", "time_zone")
        .order_by()
        .distinct()
    )
    moves: dict[tuple[str, datetime], list[datetime]] = defaultdict(list)
    for moment, time_zone in pairs:
        opening = window_next_opening(
            moment=moment, days=days, start=start, end=end, zone=_window_zone(campaign, time_zone)
        )
        if opening != moment:
            moves[(time_zone, opening)].append(moment)
    for (time_zone, opening), moments in moves.items():
        waiting = Q(next_attempt_at__in=[moment for moment in moments if moment != now])
        if now in moments:
            waiting |= Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
        moving = emails.filter(waiting)
        if by_candidate:
            moving = moving.filter(candidate__time_zone=time_zone)
        moving.update(next_attempt_at=opening)


@transaction.atomic
def campaign_resume(
    *, campaign: Campaign, user: User | None, overdue: str, now: datetime | None = None
) -> int:
    """Resume a paused campaign. `overdue` says what happens to steps that fell due during the
    pause: SEND_NOW lets them go out at the next dispatch (inside the window), RESCHEDULE moves
    every pending step later by as long as it waited while paused (the whole pause, or since
    the candidate joined or the email was rendered when that came during the pause), so each
    keeps the wait it had left. Either way a sequence's queued emails then wait for the
    sending window (`_queued_emails_into_window`). Returns how many steps were overdue."""
    if overdue not in (Overdue.SEND_NOW, Overdue.RESCHEDULE):
        raise ValidationError("Choose what happens to the steps that are overdue.")
    now = now or timezone.now()
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != Campaign.Status.PAUSED:
        raise ValidationError("Only a paused campaign can be resumed.")
    count = campaign_overdue_count(campaign=campaign, now=now)
    if overdue == Overdue.RESCHEDULE:
        paused_at = campaign.paused_at or now
        joined = _waiting_since("enrolled_at", paused_at=paused_at, now=now)
        Enrollment.objects.filter(
            organization_id=campaign.organization_id,
            campaign=campaign,
            status=Enrollment.Status.ACTIVE,
            next_run_at__isnull=False,
        ).update(
            # The step is due then: a later change of the time zone keeps this wait too.
            next_run_at=Greatest(F("next_run_at") + (Value(now) - joined), Value(now)),
            due_at=Greatest(F("next_run_at") + (Value(now) - joined), Value(now)),
        )
        # Emails rendered before the pause keep their wait too: one that was due when the
        # campaign was paused goes out now, one held by a cap until after the pause began
        # waits as long again as it had left then, instead of all going out at once.
        rendered = _waiting_since("created_at", paused_at=paused_at, now=now)
        _queued_messages(campaign).update(
            next_attempt_at=Greatest(
                Coalesce(F("next_attempt_at"), rendered) + (Value(now) - rendered), Value(now)
            )
        )
    _queued_emails_into_window(campaign=campaign, now=now)
    # Paused before its scheduled time: it is still waiting for that time.
    waiting = campaign.scheduled_at is not None and campaign.scheduled_at > now
    campaign.status = Campaign.Status.SCHEDULED if waiting else Campaign.Status.RUNNING
    campaign.paused_at = None
    campaign.save(update_fields=["status", "paused_at"])
    _dispatch_soon(campaign.organization_id)
    return count


# --- the organisation's time zone changed ---

RESCHEDULE_CHUNK = 2000  # enrollments per transaction


def organization_time_zone_changed(*, organization_id: int) -> bool:
    """Called when an organisation's time zone has changed (crm.services): after commit,
    queue the task that moves its pending sequence steps into the window in the new zone,
    when it has a launched sequence. Returns whether it queued one."""
    if not Campaign.objects.filter(
        organization_id=organization_id, kind=Campaign.Kind.SEQUENCE, status__in=ACTIVE_STATUSES
    ).exists():
        return False
    from campaigns.tasks import sequence_time_zone_changed_task

    transaction.on_commit(
        lambda: sequence_time_zone_changed_task.delay(organization_id=organization_id)
    )
    return True


def sequence_enrollments_reschedule(*, organization_id: int, now: datetime | None = None) -> int:
    """Apply the sending window again, in the organisation's time zone as it is now, to the
    pending steps of its launched sequences that are timed in that zone (not those of
    candidates whose own time zone the sequence uses): each runs at the window's first moment
    from its due time (`Enrollment.due_at`) on, never before that nor before now. The body of
    the `campaigns.sequence_time_zone_changed` task.

    Steps already due (`next_run_at` passed) are the dispatcher's: it applies the window when
    it claims them, in the zone of that moment. A step whose due time has passed while it
    waited for the window runs at the next moment the new window is open, as it would at the
    old one's opening. In chunks of RESCHEDULE_CHUNK enrollments, each in its own transaction
    that locks them and reads the zone and the windows again, so a second change that commits
    meanwhile wins wherever either task comes last; running it twice changes nothing more.
    Returns how many steps moved."""
    now = now or timezone.now()
    moved, last_pk = 0, 0
    while True:
        with transaction.atomic():
            campaigns = {
                campaign.pk: campaign
                for campaign in Campaign.objects.select_related("organization").filter(
                    organization_id=organization_id,
                    kind=Campaign.Kind.SEQUENCE,
                    status__in=ACTIVE_STATUSES,
                )
            }
            rows = list(
                Enrollment.objects.select_for_update(of=("self",))
                .filter(
                    organization_id=organization_id,
                    campaign_id__in=list(campaigns),
                    status=Enrollment.Status.ACTIVE,
                    next_run_at__gt=now,
                    pk__gt=last_pk,
                )
                .order_by("pk")
                .values_list("pk", "campaign_id", "candidate__time_zone", "due_at", "next_run_at")[
                    :RESCHEDULE_CHUNK
                ]
            )
            if not rows:
                return moved
            last_pk = rows[-1][0]
            changes: dict[datetime, list[int]] = defaultdict(list)
            for pk, campaign_id, candidate_time_zone, due_at, next_run_at in rows:
                campaign = campaigns[campaign_id]
                if campaign.use_candidate_time_zone and _zone(candidate_time_zone) is not None:
                    continue  # timed in the candidate's time zone
                run_at = step_run_at(
                    campaign=campaign, candidate=None, due=max(due_at or next_run_at, now)
                )
                if run_at != next_run_at:
                    changes[run_at].append(pk)
            for run_at, pks in changes.items():
                Enrollment.objects.filter(pk__in=pks).update(next_run_at=run_at)
                moved += len(pks)


# --- building a sequence ---

SETTINGS_FIELDS = (
    "name",
    "topic",
    "interest_role_families",
    "interest_locations",
    "interest_include_unstated",
    "auto_join_pool",
    "window_days",
    "window_start",
    "window_end",
    "use_candidate_time_zone",
)
# Settings that only change before launch, like the audience itself.
LAUNCH_FIXED_FIELDS = (
    "topic",
    "interest_role_families",
    "interest_locations",
    "interest_include_unstated",
)


@transaction.atomic
def sequence_create(
    *,
    organization,
    user: User,
    saved_searches=(),
    excluded_saved_searches=(),
    pools=(),
    **settings,
) -> Campaign:
    """A draft sequence without steps; `user` sends it (replies go to them)."""
    campaign = Campaign.objects.create(
        organization=organization,
        kind=Campaign.Kind.SEQUENCE,
        sender=user,
        created_by=user,
        **{name: settings[name] for name in SETTINGS_FIELDS if name in settings},
    )
    campaign.saved_searches.set(saved_searches)
    campaign.excluded_saved_searches.set(excluded_saved_searches)
    campaign.pools.set(pools)
    return campaign


@transaction.atomic
def sequence_update(
    *,
    campaign: Campaign,
    saved_searches=None,
    excluded_saved_searches=None,
    pools=None,
    **settings,
) -> Campaign:
    """Change a sequence's settings. The audience, its interest targeting and the topic only
    change before launch; the window and the auto-join pool change any time (they apply from
    the next step on). Under the campaign's row lock, the one the launch takes: what a launch
    that got there first fixed stays fixed."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status in (Campaign.Status.DONE, Campaign.Status.CANCELLED):
        raise ValidationError("A finished campaign cannot be changed.")
    names = [name for name in SETTINGS_FIELDS if name in settings]
    if not campaign.is_editable:
        names = [name for name in names if name not in LAUNCH_FIXED_FIELDS]
    for name in names:
        setattr(campaign, name, settings[name])
    campaign.save(update_fields=names)
    if campaign.is_editable:
        if saved_searches is not None:
            campaign.saved_searches.set(saved_searches)
        if excluded_saved_searches is not None:
            campaign.excluded_saved_searches.set(excluded_saved_searches)
        if pools is not None:
            campaign.pools.set(pools)
    return campaign


def _check_draft(campaign: Campaign) -> None:
    """Lock the campaign (one change of its steps at a time, none during a launch) and check
    from the database that its steps can still change."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.kind != Campaign.Kind.SEQUENCE:
        raise ValidationError("Only a sequence has steps to change.")
    if not campaign.is_editable:
        raise ValidationError("Steps can only be changed before the sequence is launched.")


def _step_reread(step: Step) -> None:
    """Re-read the step's position under the campaign's lock (take it first, with
    `_check_draft`): a move or deletion that finished while we waited may have changed it."""
    try:
        step.refresh_from_db(fields=["position"])
    except Step.DoesNotExist:
        raise ValidationError("This step has been deleted meanwhile.") from None


@transaction.atomic
def step_create(*, campaign: Campaign, **fields) -> Step:
    """A new last step of a draft sequence."""
    _check_draft(campaign)
    last = campaign.steps.aggregate(last=Max("position"))["last"] or 0
    return Step.objects.create(
        organization_id=campaign.organization_id, campaign=campaign, position=last + 1, **fields
    )


@transaction.atomic
def step_save(*, step: Step, **fields) -> Step:
    _check_draft(step.campaign)
    _step_reread(step)  # refused with a message if it was deleted meanwhile
    for name, value in fields.items():
        setattr(step, name, value)
    step.save(update_fields=list(fields))
    return step


@transaction.atomic
def step_delete(*, step: Step) -> None:
    """Delete a step; the ones after it move up."""
    campaign = step.campaign
    _check_draft(campaign)
    _step_reread(step)
    position = step.position
    step.delete()
    for later in campaign.steps.filter(position__gt=position).order_by("position"):
        later.position -= 1  # one at a time, in order: positions are unique
        later.save(update_fields=["position"])
    _first_step_always(campaign)


@transaction.atomic
def step_move(*, step: Step, direction: str) -> None:
    """Swap a step with the one before ("up") or after ("down") it."""
    campaign = step.campaign
    _check_draft(campaign)
    _step_reread(step)
    siblings = campaign.steps.order_by("position")
    neighbour = (
        siblings.filter(position__lt=step.position).last()
        if direction == "up"
        else siblings.filter(position__gt=step.position).first()
    )
    if neighbour is None:
        return
    mine, theirs = step.position, neighbour.position
    step.position = 0  # free the slot first: positions are unique
    step.save(update_fields=["position"])
    neighbour.position = mine
    neighbour.save(update_fields=["position"])
    step.position = theirs
    step.save(update_fields=["position"])
    _first_step_always(campaign)


def _first_step_always(campaign: Campaign) -> None:
    """A step's condition looks at the previous email; the first step has none, so a step that
    becomes first (by a move or a deletion) goes out always, as the step form shows it."""
    first = campaign.steps.order_by("position").first()
    if first is not None and first.condition != Step.Condition.ALWAYS:
        first.condition = Step.Condition.ALWAYS
        first.save(update_fields=["condition"])
