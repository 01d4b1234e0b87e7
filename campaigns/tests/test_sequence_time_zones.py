"""Sequence timing and time zones: a launch's first step that waits whole days counts calendar
days in the zone its window uses (as every later step does), and a change of the
organisation's time zone moves the pending steps timed in that zone into the window in the
new zone, in a background task. Only the clock is controlled (`now=`, `timezone.now`); the
dispatcher, the services, the task and PostgreSQL are real."""

from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_scopes import scopes_disabled

from campaigns.models import Campaign, Enrollment
from campaigns.services import campaigns as campaign_service
from campaigns.services import sequences
from campaigns.services.campaigns import audience_enroll_pending, campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.tasks import sequence_time_zone_changed_task
from campaigns.tests.factories import make_broadcast, make_candidates
from campaigns.tests.test_sequences import enrollment_of, make_sequence, messages_of, went_out
from crm.celery import app as celery_app

EVERY_DAY = list(range(7))
WEEKDAYS = [0, 1, 2, 3, 4]
# Clocks go back in Berlin on Sunday 25 October 2026 (03:00 CEST → 02:00 CET); New York
# stays on EDT until 1 November, London goes back the same night as Berlin.
SATURDAY_0930_BERLIN = datetime(2026, 10, 24, 7, 30, tzinfo=UTC)  # 09:30 CEST
FRIDAY_1600_BERLIN = datetime(2026, 10, 23, 14, 0, tzinfo=UTC)  # 16:00 CEST
MONDAY_0900_BERLIN = datetime(2026, 10, 26, 8, 0, tzinfo=UTC)  # 09:00 CET
MONDAY_0900_LONDON = datetime(2026, 10, 26, 9, 0, tzinfo=UTC)  # 09:00 GMT
MONDAY_0900_NEW_YORK = datetime(2026, 10, 26, 13, 0, tzinfo=UTC)  # 09:00 EDT
SUNDAY_NOON = datetime(2026, 10, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def berlin(org):
    with scopes_disabled():
        org.time_zone = "Europe/Berlin"
        org.save(update_fields=["time_zone"])
    return org


@pytest.fixture
def clock(monkeypatch):
    """The clock, frozen at `clock.now` until a test moves it."""

    class Clock:
        now = SUNDAY_NOON

    monkeypatch.setattr(timezone, "now", lambda: Clock.now)
    return Clock


@pytest.fixture
def eager_celery():
    """Tasks run in-process when queued (the broker is the outside world here)."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


def next_runs(campaign) -> dict[int, datetime]:
    with scopes_disabled():
        return dict(
            Enrollment.objects.filter(campaign=campaign).values_list("candidate_id", "next_run_at")
        )


def due_ats(campaign) -> dict[int, datetime]:
    """When each enrollment's step is due, before the sending window moves it (`next_run_at`)."""
    with scopes_disabled():
        return dict(
            Enrollment.objects.filter(campaign=campaign).values_list("candidate_id", "due_at")
        )


# --- the first step of a launch ---


def test_launch_first_step_in_days_keeps_the_local_time_across_a_dst_change(
    berlin, recruiter_user, monkeypatch
):
    """Launched on Saturday at 09:30 in Berlin, "1 day later" is Sunday 09:30 there (08:30
    UTC), not 24 hours later (08:30 CET, before a 09:00 to 10:00 window opens: it went at 09:00).
    Each candidate counts in the zone their window uses, in the launch's own batch and in the
    batches enrolled afterwards alike."""
    monkeypatch.setattr(campaign_service, "AUDIENCE_FIRST_BATCH", 1)
    monkeypatch.setattr(campaign_service, "AUDIENCE_BATCH", 1)
    (in_berlin,) = make_candidates(berlin, 1)
    (in_new_york,) = make_candidates(berlin, 1, time_zone="America/New_York")
    (unknown_zone,) = make_candidates(berlin, 1, time_zone="Mars/Olympus_Mons")
    campaign = make_sequence(
        berlin,
        user=recruiter_user,
        steps=[{"delay": timedelta(days=1)}],
        window_days=EVERY_DAY,
        window_start=time(9),
        window_end=time(10),
    )
    with scopes_disabled():
        campaign_launch(campaign=campaign, user=recruiter_user, now=SATURDAY_0930_BERLIN)
    audience_enroll_pending(campaign_id=campaign.pk)

    sunday_0930_berlin = datetime(2026, 10, 25, 8, 30, tzinfo=UTC)
    assert due_ats(campaign) == {
        in_berlin.pk: sunday_0930_berlin,
        in_new_york.pk: datetime(2026, 10, 25, 7, 30, tzinfo=UTC),  # 03:30 EDT, as Saturday
        unknown_zone.pk: sunday_0930_berlin,  # the organisation's zone
    }
    # Stored already moved into each zone's window (09:00 to 10:00): what the campaign page shows.
    sunday_0900_new_york = datetime(2026, 10, 25, 13, 0, tzinfo=UTC)
    assert next_runs(campaign) == {
        in_berlin.pk: sunday_0930_berlin,
        in_new_york.pk: sunday_0900_new_york,
        unknown_zone.pk: sunday_0930_berlin,
    }
    dispatch_due(now=sunday_0930_berlin)  # inside the window in Berlin, not in New York
    assert messages_of(campaign) == [(1, "queued"), (1, "queued")]
    assert enrollment_of(campaign, in_berlin).status == "done"
    assert enrollment_of(campaign, in_new_york).next_run_at == sunday_0900_new_york


def test_launch_first_step_in_days_in_the_organisations_zone_for_everyone(berlin, recruiter_user):
    make_candidates(berlin, 1, time_zone="America/New_York")
    campaign = make_sequence(
        berlin,
        user=recruiter_user,
        steps=[{"delay": timedelta(days=1)}],
        use_candidate_time_zone=False,
    )
    with scopes_disabled():
        campaign_launch(campaign=campaign, user=recruiter_user, now=SATURDAY_0930_BERLIN)
    assert list(due_ats(campaign).values()) == [datetime(2026, 10, 25, 8, 30, tzinfo=UTC)]
    # Sunday is outside the window (Monday to Friday, 09:00 to 17:00, in Berlin for everyone).
    assert list(next_runs(campaign).values()) == [MONDAY_0900_BERLIN]


def test_launch_first_step_in_hours_is_elapsed_time(berlin, recruiter_user):
    make_candidates(berlin, 1)
    campaign = make_sequence(berlin, user=recruiter_user, steps=[{"delay": timedelta(hours=25)}])
    with scopes_disabled():
        campaign_launch(campaign=campaign, user=recruiter_user, now=SATURDAY_0930_BERLIN)
    assert list(due_ats(campaign).values()) == [SATURDAY_0930_BERLIN + timedelta(hours=25)]
    assert list(next_runs(campaign).values()) == [MONDAY_0900_BERLIN]


def test_launch_queries_do_not_grow_with_the_audience_or_its_time_zones(berlin, recruiter_user):
    """One query for the zones present, one computation per zone: never one per candidate."""

    def queries_of_a_launch(tag, zones) -> int:
        for zone in zones:
            make_candidates(berlin, 1, tags=[tag], time_zone=zone)
        campaign = make_sequence(
            berlin, user=recruiter_user, steps=[{"delay": timedelta(days=2)}], tag=tag
        )
        with scopes_disabled(), CaptureQueriesContext(connection) as queries:
            campaign_launch(campaign=campaign, user=recruiter_user, now=SATURDAY_0930_BERLIN)
        assert len(next_runs(campaign)) == len(zones)
        return len(queries)

    assert queries_of_a_launch("one", [""]) == queries_of_a_launch(
        "many", ["", "America/New_York", "Asia/Tokyo", "Asia/Tokyo", "Europe/London"]
    )


# --- the organisation's time zone changes ---


def _waiting_for_monday(org, user, *, candidates, **fields) -> Campaign:
    """A sequence launched on Friday at 16:00 in Berlin (window Monday to Friday, 09:00 to 17:00): step 1
    goes out at once; step 2, due on Saturday, waits for Monday's opening."""
    campaign = make_sequence(org, user=user, steps=[{}, {"delay": timedelta(days=1)}], **fields)
    with scopes_disabled():
        campaign_launch(campaign=campaign, user=user, now=FRIDAY_1600_BERLIN)
    dispatch_due(now=FRIDAY_1600_BERLIN, organization_id=org.pk)
    assert len(messages_of(campaign)) == len(candidates)
    return campaign


def _change_time_zone(client, org, time_zone, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            f"/o/{org.slug}/settings/", {"name": org.name, "slug": org.slug, "time_zone": time_zone}
        )
    assert response.status_code == 302
    return callbacks


def test_time_zone_change_moves_waiting_steps_to_the_new_window(
    berlin,
    recruiter_user,
    admin_client,
    other_org,
    outsider_user,
    clock,
    eager_celery,
    django_capture_on_commit_callbacks,
):
    """Through the settings page and the real task: the organisation's waiting steps open at
    09:00 in New York; a candidate with their own time zone keeps theirs; another
    organisation's sequence in the same zone does not move."""
    (in_org_zone,) = make_candidates(berlin, 1)
    (in_london,) = make_candidates(berlin, 1, time_zone="Europe/London")
    campaign = _waiting_for_monday(berlin, recruiter_user, candidates=[in_org_zone, in_london])
    # Joined on Saturday: step 1 is due then and waits for Monday too.
    (joined_later,) = make_candidates(berlin, 1, tags=["joined"])
    with scopes_disabled():
        sequences.sequence_enroll(
            campaign=campaign,
            candidate_ids=[joined_later.pk],
            now=datetime(2026, 10, 24, 10, 0, tzinfo=UTC),
        )
    other_org.time_zone = "Europe/Berlin"
    other_org.save(update_fields=["time_zone"])
    (elsewhere,) = make_candidates(other_org, 1)
    other = _waiting_for_monday(other_org, outsider_user, candidates=[elsewhere])
    assert next_runs(campaign) == {
        in_org_zone.pk: MONDAY_0900_BERLIN,
        in_london.pk: MONDAY_0900_LONDON,
        joined_later.pk: MONDAY_0900_BERLIN,
    }

    callbacks = _change_time_zone(
        admin_client, berlin, "America/New_York", django_capture_on_commit_callbacks
    )

    assert len(callbacks) == 1  # the task, queued once the settings were saved
    assert next_runs(campaign) == {
        in_org_zone.pk: MONDAY_0900_NEW_YORK,
        in_london.pk: MONDAY_0900_LONDON,
        joined_later.pk: MONDAY_0900_NEW_YORK,
    }
    assert next_runs(other) == {elsewhere.pk: MONDAY_0900_BERLIN}
    went_out(campaign, FRIDAY_1600_BERLIN)  # step 1 (step 2 waits for it to leave the outbox)
    # The dispatcher agrees: nothing at Berlin's opening, step 2 at New York's.
    assert dispatch_due(now=MONDAY_0900_BERLIN, organization_id=berlin.pk).claimed == 0
    dispatch_due(now=MONDAY_0900_NEW_YORK, organization_id=berlin.pk)
    assert [position for position, _ in messages_of(campaign)] == [1, 1, 1, 2, 2]


def test_time_zone_change_moves_a_candidates_step_when_the_sequence_ignores_their_zone(
    berlin, recruiter_user
):
    (in_london,) = make_candidates(berlin, 1, time_zone="Europe/London")
    campaign = _waiting_for_monday(
        berlin, recruiter_user, candidates=[in_london], use_candidate_time_zone=False
    )
    berlin.time_zone = "America/New_York"
    berlin.save(update_fields=["time_zone"])
    with scopes_disabled():
        moved = sequences.sequence_enrollments_reschedule(
            organization_id=berlin.pk, now=SUNDAY_NOON
        )
    assert (moved, next_runs(campaign)) == (1, {in_london.pk: MONDAY_0900_NEW_YORK})


def test_time_zone_change_never_runs_a_step_before_its_delay_is_over(berlin, recruiter_user):
    """Step 2 waits 12 hours after Friday 08:00 UTC: due at 20:00 UTC, 22:00 in Berlin, so it
    waits for Monday. In Los Angeles 20:00 UTC is 13:00, inside the window: it runs then —
    not at 09:00 there (16:00 UTC), the window's next opening after the change."""
    friday_8 = datetime(2026, 10, 23, 8, 0, tzinfo=UTC)
    (candidate,) = make_candidates(berlin, 1)
    campaign = make_sequence(
        berlin, user=recruiter_user, steps=[{}, {"delay": timedelta(hours=12)}]
    )
    with scopes_disabled():
        campaign_launch(campaign=campaign, user=recruiter_user, now=friday_8)
    dispatch_due(now=friday_8)
    assert next_runs(campaign) == {candidate.pk: MONDAY_0900_BERLIN}

    berlin.time_zone = "America/Los_Angeles"
    berlin.save(update_fields=["time_zone"])
    with scopes_disabled():
        sequences.sequence_enrollments_reschedule(
            organization_id=berlin.pk, now=datetime(2026, 10, 23, 15, 0, tzinfo=UTC)
        )
    assert next_runs(campaign) == {candidate.pk: datetime(2026, 10, 23, 20, 0, tzinfo=UTC)}


def test_time_zone_change_never_moves_a_step_into_the_past(berlin, recruiter_user):
    """Due on Saturday, waiting for Monday 09:00 in Berlin; at 12:00 on Monday in Tokyo the
    window there is open: the step runs now, not at a moment that has passed."""
    (candidate,) = make_candidates(berlin, 1)
    campaign = _waiting_for_monday(berlin, recruiter_user, candidates=[candidate])
    monday_noon_tokyo = datetime(2026, 10, 26, 3, 0, tzinfo=UTC)
    berlin.time_zone = "Asia/Tokyo"
    berlin.save(update_fields=["time_zone"])
    with scopes_disabled():
        sequences.sequence_enrollments_reschedule(organization_id=berlin.pk, now=monday_noon_tokyo)
    assert next_runs(campaign) == {candidate.pk: monday_noon_tokyo}


def test_time_zone_change_leaves_overdue_steps_of_a_paused_sequence_to_the_resume(
    berlin, recruiter_user
):
    """Steps that fell due during a pause stay due: on resume, "send now" or "reschedule"
    decides, as before the change."""
    (candidate,) = make_candidates(berlin, 1)
    campaign = _waiting_for_monday(berlin, recruiter_user, candidates=[candidate])
    with scopes_disabled():
        sequences.campaign_pause(campaign=campaign, user=recruiter_user, now=SUNDAY_NOON)
    berlin.time_zone = "America/New_York"
    berlin.save(update_fields=["time_zone"])
    tuesday = datetime(2026, 10, 27, 12, 0, tzinfo=UTC)
    with scopes_disabled():
        moved = sequences.sequence_enrollments_reschedule(organization_id=berlin.pk, now=tuesday)
    assert (moved, next_runs(campaign)) == (0, {candidate.pk: MONDAY_0900_BERLIN})


def test_time_zone_change_after_a_rescheduled_resume_keeps_the_pause_spacing(
    berlin, recruiter_user
):
    """ "Reschedule" moved step 2 later by the pause's length and made that its due time: a
    zone change afterwards keeps the wait, instead of sending at once (inside the new window)
    the step that was due before the pause."""
    (candidate,) = make_candidates(berlin, 1)
    campaign = _waiting_for_monday(berlin, recruiter_user, candidates=[candidate])
    paused_at = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)  # Saturday; step 2 due at 14:00
    resumed_at = datetime(2026, 10, 27, 12, 0, tzinfo=UTC)  # Tuesday 13:00 in Berlin
    with scopes_disabled():
        sequences.campaign_pause(campaign=campaign, user=recruiter_user, now=paused_at)
        sequences.campaign_resume(
            campaign=campaign, user=recruiter_user, overdue="reschedule", now=resumed_at
        )
    shifted = MONDAY_0900_BERLIN + (resumed_at - paused_at)  # Thursday 09:00 in Berlin
    assert next_runs(campaign) == {candidate.pk: shifted}

    berlin.time_zone = "Europe/London"
    berlin.save(update_fields=["time_zone"])
    with scopes_disabled():
        sequences.sequence_enrollments_reschedule(
            organization_id=berlin.pk, now=resumed_at + timedelta(minutes=5)
        )
    # Thursday 08:00 UTC is 08:00 in London: the window there opens at 09:00.
    assert next_runs(campaign) == {candidate.pk: datetime(2026, 10, 29, 9, 0, tzinfo=UTC)}


def test_time_zone_change_task_in_chunks_and_twice_moves_each_step_once(
    berlin, recruiter_user, monkeypatch, clock
):
    people = make_candidates(berlin, 3)
    campaign = _waiting_for_monday(berlin, recruiter_user, candidates=people)
    monkeypatch.setattr(sequences, "RESCHEDULE_CHUNK", 2)
    berlin.time_zone = "America/New_York"
    berlin.save(update_fields=["time_zone"])

    first = sequence_time_zone_changed_task.apply(kwargs={"organization_id": berlin.pk}).get()
    second = sequence_time_zone_changed_task.apply(kwargs={"organization_id": berlin.pk}).get()

    assert (first, second) == (3, 0)
    assert set(next_runs(campaign).values()) == {MONDAY_0900_NEW_YORK}


def test_time_zone_change_of_an_organisation_without_sequences_queues_nothing(
    berlin, admin_client, recruiter_user, django_capture_on_commit_callbacks
):
    """A broadcast scheduled for later keeps its moment: it was chosen as an instant, and the
    page shows it in the new zone."""
    make_candidates(berlin, 1)
    scheduled_at = datetime(2026, 10, 30, 8, 0, tzinfo=UTC)
    broadcast = make_broadcast(berlin, user=recruiter_user, scheduled_at=scheduled_at)
    with scopes_disabled():
        campaign_launch(campaign=broadcast, user=recruiter_user, now=SUNDAY_NOON)

    callbacks = _change_time_zone(
        admin_client, berlin, "America/New_York", django_capture_on_commit_callbacks
    )

    assert callbacks == []
    broadcast.refresh_from_db()
    assert broadcast.scheduled_at == scheduled_at
    assert set(next_runs(broadcast).values()) == {scheduled_at}


def test_settings_saved_without_a_time_zone_change_queue_nothing(
    berlin, recruiter_user, admin_client, django_capture_on_commit_callbacks
):
    (candidate,) = make_candidates(berlin, 1)
    _waiting_for_monday(berlin, recruiter_user, candidates=[candidate])
    callbacks = _change_time_zone(
        admin_client, berlin, "Europe/Berlin", django_capture_on_commit_callbacks
    )
    assert callbacks == []
