"""Campaign sequences: the sending window (weekends, DST, time zones), delays, branches on the
previous email, task steps, auto-join from a pool, stop rules, pause/resume, manual removal,
and the sequence pages. Only the clock is controlled (`now=`); the dispatcher, the services and
PostgreSQL are real."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from analytics.services import engagement_event_record
from campaigns.models import Campaign, Enrollment, InboundEmail, Message, Step
from campaigns.sequence_forms import SequenceForm
from campaigns.services import guards, sequences
from campaigns.services.campaigns import campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.services.preferences import candidate_unsubscribe
from campaigns.services.sending import messages_send
from campaigns.tests.factories import SavedSearchFactory, make_candidates
from candidates.models import Activity
from crm.celery import app as celery_app
from crm.tests.markup import applies_with_show_button
from pipelines.models import FollowUp, Stage

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
# Tuesday 3 March 2026, 10:00 in London (GMT, UTC+0).
TUESDAY_10 = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)


def url(name, org, *args):
    return reverse(f"campaigns:{name}", args=[org.slug, *args])


def make_sequence(org, *, user, steps, tag="newsletter", **fields) -> Campaign:
    """A draft sequence to everyone tagged `tag`. `steps`: dicts of Step fields."""
    search = SavedSearchFactory(organization=org, owner=user, query={"tags": [tag]})
    with scopes_disabled():
        campaign = Campaign.objects.create(
            organization=org,
            name=fields.pop("name", "Platform nurture"),
            kind=Campaign.Kind.SEQUENCE,
            sender=user,
            created_by=user,
            **fields,
        )
        campaign.saved_searches.set([search])
        for position, step in enumerate(steps, start=1):
            defaults = {"subject": f"Email {position}", "body_markdown": "Hi {{ first_name }}"}
            if step.get("kind") == Step.Kind.TASK:
                defaults = {"task_note": "Call them"}
            Step.objects.create(
                organization=org, campaign=campaign, position=position, **{**defaults, **step}
            )
    return campaign


def launched(org, user, steps, *, now=TUESDAY_10, candidates=1, **fields):
    people = make_candidates(org, candidates)
    campaign = make_sequence(org, user=user, steps=steps, **fields)
    with scopes_disabled():
        campaign_launch(campaign=campaign, user=user, now=now)
    return campaign, people


def enrollment_of(campaign, candidate=None) -> Enrollment:
    with scopes_disabled():
        enrollments = Enrollment.objects.select_related("current_step").filter(campaign=campaign)
        if candidate is not None:
            enrollments = enrollments.filter(candidate=candidate)
        return enrollments.get()


def messages_of(campaign) -> list[tuple[int, str]]:
    with scopes_disabled():
        return list(
            Message.objects.filter(campaign=campaign)
            .order_by("step__position")
            .values_list("step__position", "status")
        )


def went_out(campaign, at) -> None:
    """The campaign's queued emails are sent at `at`: a sequence's next step waits for the
    previous email to leave the outbox, and its delay counts from then."""
    with scopes_disabled():
        Message.objects.filter(campaign=campaign, status="queued").update(status="sent", sent_at=at)


def timeline(candidate) -> list[str]:
    with scopes_disabled():
        return list(
            Activity.objects.filter(candidate=candidate, kind=Activity.Kind.ENROLLMENT)
            .order_by("occurred_at", "id")
            .values_list("summary", flat=True)
        )


# --- the sending window ---

WEEKDAYS_9_TO_5 = {"days": [0, 1, 2, 3, 4], "start": time(9), "end": time(17)}


def opening(moment, zone=LONDON, **window):
    return sequences.window_next_opening(moment=moment, zone=zone, **{**WEEKDAYS_9_TO_5, **window})


def test_window_inside_is_now():
    assert opening(TUESDAY_10) == TUESDAY_10


def test_window_before_opening_waits_for_nine_the_same_day():
    assert opening(datetime(2026, 3, 3, 6, 30, tzinfo=UTC)) == datetime(2026, 3, 3, 9, tzinfo=UTC)


def test_window_after_closing_on_friday_waits_for_monday():
    friday_evening = datetime(2026, 3, 6, 17, 0, tzinfo=UTC)
    assert opening(friday_evening) == datetime(2026, 3, 9, 9, tzinfo=UTC)


def test_window_on_saturday_waits_for_monday():
    assert opening(datetime(2026, 3, 7, 12, tzinfo=UTC)) == datetime(2026, 3, 9, 9, tzinfo=UTC)


def test_window_across_spring_dst_opens_at_nine_local_time():
    # Clocks go forward in London on Sunday 29 March 2026: Monday 9:00 BST is 8:00 UTC.
    friday_evening = datetime(2026, 3, 27, 18, 0, tzinfo=UTC)
    assert opening(friday_evening) == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)


def test_window_across_autumn_dst_opens_at_nine_local_time():
    # Clocks go back on Sunday 25 October 2026: Friday 17:30 BST → Monday 9:00 GMT (9:00 UTC).
    friday_evening = datetime(2026, 10, 23, 16, 30, tzinfo=UTC)
    assert opening(friday_evening) == datetime(2026, 10, 26, 9, 0, tzinfo=UTC)


def test_window_in_new_york_during_the_weeks_europe_and_america_disagree():
    # New York is on EDT from 8 March 2026 (UTC-4), London still on GMT: 9:00 local is 13:00 UTC.
    assert opening(TUESDAY_10 + timedelta(days=7), zone=NEW_YORK) == datetime(
        2026, 3, 10, 13, 0, tzinfo=UTC
    )


def test_window_closed_today_and_only_wednesdays_waits_a_week():
    wednesday_evening = datetime(2026, 3, 4, 18, tzinfo=UTC)
    assert opening(wednesday_evening, days=[2]) == datetime(2026, 3, 11, 9, tzinfo=UTC)


def test_window_uses_the_candidates_time_zone_when_known(org, recruiter_user):
    campaign = make_sequence(org, user=recruiter_user, steps=[{}])
    candidate = make_candidates(org, 1, time_zone="America/New_York")[0]
    with scopes_disabled():
        at = sequences.step_run_at(campaign=campaign, candidate=candidate, due=TUESDAY_10)
        campaign.use_candidate_time_zone = False
        in_org_zone = sequences.step_run_at(campaign=campaign, candidate=candidate, due=TUESDAY_10)
    # 10:00 UTC is 5:00 in New York (EST): wait for 9:00 EST = 14:00 UTC.
    assert at == datetime(2026, 3, 3, 14, 0, tzinfo=UTC)
    assert in_org_zone == TUESDAY_10


def test_window_unknown_time_zone_falls_back_to_the_organisation(org, recruiter_user):
    campaign = make_sequence(org, user=recruiter_user, steps=[{}])
    candidate = make_candidates(org, 1, time_zone="Mars/Olympus_Mons")[0]
    with scopes_disabled():
        zone = sequences.time_zone_for(campaign=campaign, candidate=candidate)
    assert zone == LONDON


# --- delays and the dispatcher ---


def test_sequence_sends_each_step_after_its_delay(org, recruiter_user):
    campaign, _ = launched(
        org, recruiter_user, [{}, {"delay": timedelta(days=2)}, {"delay": timedelta(hours=3)}]
    )
    dispatch_due(now=TUESDAY_10)
    enrollment = enrollment_of(campaign)
    assert messages_of(campaign) == [(1, "queued")]
    assert (enrollment.current_step.position, enrollment.next_run_at) == (
        2,
        TUESDAY_10 + timedelta(days=2),
    )
    went_out(campaign, TUESDAY_10)
    dispatch_due(now=TUESDAY_10 + timedelta(days=1))
    assert len(messages_of(campaign)) == 1
    dispatch_due(now=TUESDAY_10 + timedelta(days=2))
    assert [position for position, _ in messages_of(campaign)] == [1, 2]
    went_out(campaign, TUESDAY_10 + timedelta(days=2))
    dispatch_due(now=TUESDAY_10 + timedelta(days=2, hours=3))
    assert [position for position, _ in messages_of(campaign)] == [1, 2, 3]
    assert enrollment_of(campaign).status == "done"


def test_sequence_step_due_on_saturday_waits_for_monday_morning(org, recruiter_user):
    friday_4pm = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)
    campaign, _ = launched(org, recruiter_user, [{}, {"delay": timedelta(days=1)}], now=friday_4pm)
    dispatch_due(now=friday_4pm)
    assert enrollment_of(campaign).next_run_at == datetime(2026, 3, 9, 9, 0, tzinfo=UTC)


def test_sequence_first_step_due_at_night_is_moved_to_the_window(org, recruiter_user):
    """The launch stores the window's opening (the campaign page shows it); the dispatcher has
    nothing to move at night."""
    night = datetime(2026, 3, 3, 22, 0, tzinfo=UTC)
    campaign, _ = launched(org, recruiter_user, [{}], now=night)
    assert enrollment_of(campaign).next_run_at == datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
    assert enrollment_of(campaign).due_at == night
    report = dispatch_due(now=night)
    assert (report.claimed, messages_of(campaign)) == (0, [])
    dispatch_due(now=datetime(2026, 3, 4, 9, 0, tzinfo=UTC))
    assert messages_of(campaign) == [(1, "queued")]


def test_sequence_window_in_the_candidates_time_zone(org, recruiter_user):
    make_candidates(org, 1, time_zone="America/New_York")
    campaign = make_sequence(org, user=recruiter_user, steps=[{}])
    with scopes_disabled():
        campaign_launch(campaign=campaign, user=recruiter_user, now=TUESDAY_10)
    dispatch_due(now=TUESDAY_10)
    assert messages_of(campaign) == []
    assert enrollment_of(campaign).next_run_at == datetime(2026, 3, 3, 14, 0, tzinfo=UTC)


def _outbox_state(campaign) -> tuple:
    with scopes_disabled():
        return Message.objects.filter(campaign=campaign).values_list(
            "status", "next_attempt_at", "enqueued_at", "last_error"
        )[0]


@pytest.mark.parametrize(
    ("swept_at", "waits_until"),
    [
        # Lost at 10:01, found at 17:30 after the window shut: Wednesday 9:00.
        (datetime(2026, 3, 3, 17, 30, tzinfo=UTC), datetime(2026, 3, 4, 9, 0, tzinfo=UTC)),
        # Found at 10:30, inside the window: it goes again at once.
        (datetime(2026, 3, 3, 10, 30, tzinfo=UTC), None),
    ],
)
def test_sequence_email_of_a_lost_worker_goes_again_inside_the_window(
    org, recruiter_user, swept_at, waits_until
):
    campaign, _ = launched(org, recruiter_user, [{}])
    dispatch_due(now=TUESDAY_10)
    with scopes_disabled():
        # A worker claimed it at 10:01 and died before recording a result.
        Message.objects.filter(campaign=campaign).update(
            status="sending", claimed_at=TUESDAY_10 + timedelta(minutes=1)
        )
    report = dispatch_due(now=swept_at)
    status, next_attempt_at, enqueued_at, last_error = _outbox_state(campaign)
    assert (report.recovered, status, next_attempt_at) == (1, "queued", waits_until)
    assert last_error.startswith("Recovered after its worker was lost")
    if waits_until is None:
        assert (report.requeued, enqueued_at) == (1, swept_at)
    else:
        assert (report.requeued, enqueued_at) == (0, None)
        assert "sending window" in last_error
        # The sweeper leaves it alone until the window opens, then hands it to a task.
        assert dispatch_due(now=waits_until - timedelta(minutes=1)).requeued == 0
        assert dispatch_due(now=waits_until).requeued == 1


def test_sequence_email_whose_send_task_never_ran_waits_for_the_window(org, recruiter_user):
    friday_4pm = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)
    campaign, _ = launched(org, recruiter_user, [{}], now=friday_4pm)
    dispatch_due(now=friday_4pm)
    with scopes_disabled():
        # Its task was queued at 16:00 and lost; the queue was down until after the window.
        Message.objects.filter(campaign=campaign).update(enqueued_at=friday_4pm)
    friday_evening = datetime(2026, 3, 6, 19, 0, tzinfo=UTC)
    report = dispatch_due(now=friday_evening)
    monday_9 = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
    assert report.requeued == 0
    assert _outbox_state(campaign) == ("queued", monday_9, friday_4pm, guards.HOLD_SENDING_WINDOW)
    assert dispatch_due(now=datetime(2026, 3, 8, 12, 0, tzinfo=UTC)).requeued == 0
    assert dispatch_due(now=monday_9).requeued == 1


@pytest.mark.parametrize("lost_worker", [False, True])
def test_recruiters_test_email_of_a_sequence_is_not_held_for_the_window(
    org, recruiter_user, lost_worker
):
    """A test send is not a step: found by the sweep on a Saturday (its task not yet run, or
    its worker lost), it goes at once."""
    from campaigns.services.templates import email_send_test

    campaign = make_sequence(org, user=recruiter_user, steps=[{}])
    saturday_10 = datetime(2026, 3, 7, 10, 0, tzinfo=UTC)
    with scopes_disabled():
        step = campaign.steps.get()
        message = email_send_test(
            organization=org,
            user=recruiter_user,
            subject=step.subject,
            preheader="",
            body_markdown=step.body_markdown,
            campaign=campaign,
        )
        if lost_worker:
            Message.objects.filter(pk=message.pk).update(
                status="sending", claimed_at=saturday_10 - timedelta(hours=1)
            )
    report = dispatch_due(now=saturday_10)
    assert (report.recovered, report.requeued) == (int(lost_worker), 1)
    assert _outbox_state(campaign)[:3] == ("queued", None, saturday_10)


def test_throttled_sequence_email_held_for_the_window_keeps_its_throttle_count(org, recruiter_user):
    from campaigns.services.sending import _THROTTLED, _throttled_times

    friday_4pm = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)
    campaign, _ = launched(org, recruiter_user, [{}], now=friday_4pm)
    dispatch_due(now=friday_4pm)
    with scopes_disabled():
        throttled = Message.objects.get(campaign=campaign)
        throttled.last_error = _THROTTLED.format(times=3)
        throttled.enqueued_at = friday_4pm
        throttled.save(update_fields=["last_error", "enqueued_at"])
    dispatch_due(now=datetime(2026, 3, 6, 19, 0, tzinfo=UTC))
    status, next_attempt_at, _, last_error = _outbox_state(campaign)
    assert (status, next_attempt_at) == ("queued", datetime(2026, 3, 9, 9, 0, tzinfo=UTC))
    assert (last_error, _throttled_times(last_error)) == (throttled.last_error, 3)


def test_broadcast_email_of_a_lost_worker_goes_again_at_once_at_night(org, recruiter_user, in_org):
    """Broadcasts have no sending window: the recovery queues them again whatever the hour."""
    from campaigns.tests.factories import make_broadcast

    make_candidates(org, 1)
    campaign = make_broadcast(org, user=recruiter_user)
    night = datetime(2026, 3, 7, 23, 0, tzinfo=UTC)  # a Saturday
    with scopes_disabled():
        campaign_launch(campaign=campaign, user=recruiter_user, now=night)
    dispatch_due(now=night)
    with scopes_disabled():
        Message.objects.filter(campaign=campaign).update(status="sending", claimed_at=night)
    report = dispatch_due(now=night + timedelta(minutes=30))
    assert (report.recovered, report.requeued) == (1, 1)
    assert _outbox_state(campaign)[:2] == ("queued", None)


EVERY_DAY = list(range(7))


@pytest.mark.parametrize(
    ("ran_at", "window_end", "expected"),
    [
        # Clocks go forward on Sunday 29 March 2026. Step 1 ran on Saturday at 9:30 GMT; 24
        # hours later is 10:30 BST, after the window closed: Monday 9:00 instead of Sunday 9:30.
        (
            datetime(2026, 3, 28, 9, 30, tzinfo=UTC),
            time(10),
            datetime(2026, 3, 29, 8, 30, tzinfo=UTC),
        ),
        # Clocks go back on Sunday 25 October 2026. Saturday 9:30 BST + 24 hours is 8:30 GMT,
        # before the window opens: 9:00 instead of 9:30.
        (
            datetime(2026, 10, 24, 8, 30, tzinfo=UTC),
            time(17),
            datetime(2026, 10, 25, 9, 30, tzinfo=UTC),
        ),
    ],
    ids=["spring", "autumn"],
)
def test_sequence_delay_in_days_keeps_the_local_time_across_a_dst_change(
    org, recruiter_user, ran_at, window_end, expected
):
    campaign, _ = launched(
        org,
        recruiter_user,
        [{}, {"delay": timedelta(days=1)}],
        now=ran_at,
        window_days=EVERY_DAY,
        window_end=window_end,
    )
    dispatch_due(now=ran_at)
    assert messages_of(campaign) == [(1, "queued")]
    assert enrollment_of(campaign).next_run_at == expected
    went_out(campaign, ran_at)
    dispatch_due(now=expected)
    assert [position for position, _ in messages_of(campaign)] == [1, 2]


def test_sequence_delay_in_days_counts_in_the_candidates_time_zone(org, recruiter_user):
    # New York goes to EDT on Sunday 8 March 2026; London stays on GMT until the 29th. Step 1
    # ran on Saturday at 9:30 in New York (14:30 UTC): the next is on Sunday at 9:30 there.
    ran_at = datetime(2026, 3, 7, 14, 30, tzinfo=UTC)
    make_candidates(org, 1, time_zone="America/New_York")
    campaign = make_sequence(
        org,
        user=recruiter_user,
        steps=[{}, {"delay": timedelta(days=1)}],
        window_days=EVERY_DAY,
        window_end=time(10),
    )
    with scopes_disabled():
        campaign_launch(campaign=campaign, user=recruiter_user, now=ran_at)
    dispatch_due(now=ran_at)
    assert enrollment_of(campaign).next_run_at == datetime(2026, 3, 8, 13, 30, tzinfo=UTC)


def test_sequence_delay_in_hours_is_elapsed_time_across_a_dst_change(org, recruiter_user):
    ran_at = datetime(2026, 3, 28, 9, 30, tzinfo=UTC)
    campaign, _ = launched(
        org,
        recruiter_user,
        [{}, {"delay": timedelta(hours=25)}],
        now=ran_at,
        window_days=EVERY_DAY,
        window_end=time(17),
    )
    dispatch_due(now=ran_at)
    assert enrollment_of(campaign).next_run_at == ran_at + timedelta(hours=25)


def test_joining_a_sequence_whose_first_step_waits_days_keeps_the_local_time(org, recruiter_user):
    joined_at = datetime(2026, 3, 28, 9, 30, tzinfo=UTC)  # Saturday, GMT; Sunday is BST
    campaign = make_sequence(
        org,
        user=recruiter_user,
        steps=[{"delay": timedelta(days=1)}],
        tag="nobody-has-it",
        window_days=EVERY_DAY,
        window_end=time(10),
    )
    (candidate,) = make_candidates(org, 1)
    with scopes_disabled():
        campaign_launch(campaign=campaign, user=recruiter_user, now=joined_at)
        joined = sequences.sequence_enroll(
            campaign=campaign, candidate_ids=[candidate.pk], now=joined_at
        )
    assert joined == 1
    assert enrollment_of(campaign, candidate).next_run_at == datetime(
        2026, 3, 29, 8, 30, tzinfo=UTC
    )


# --- branches on the previous email ---


def _send_first_and_reach_second(org, user, condition):
    campaign, (candidate,) = launched(
        org, user, [{}, {"delay": timedelta(days=1), "condition": condition}]
    )
    dispatch_due(now=TUESDAY_10)
    with scopes_disabled():
        message = Message.objects.get(campaign=campaign)
        Message.objects.filter(pk=message.pk).update(status="sent", sent_at=TUESDAY_10)
    return campaign, candidate, message


@pytest.mark.parametrize(
    ("condition", "engagement", "second_sent"),
    [
        ("not_clicked", {"clicked_at": TUESDAY_10 + timedelta(hours=1)}, False),
        ("not_clicked", {"opened_at": TUESDAY_10 + timedelta(hours=1)}, True),
        ("not_opened", {"opened_at": TUESDAY_10 + timedelta(hours=1)}, False),
        ("not_opened", {}, True),
        ("", {"clicked_at": TUESDAY_10 + timedelta(hours=1)}, True),
    ],
)
def test_sequence_branch_on_the_previous_email(
    org, recruiter_user, condition, engagement, second_sent
):
    campaign, candidate, message = _send_first_and_reach_second(org, recruiter_user, condition)
    with scopes_disabled():
        Message.objects.filter(pk=message.pk).update(**engagement)
    dispatch_due(now=TUESDAY_10 + timedelta(days=1))
    enrollment = enrollment_of(campaign)
    assert (len(messages_of(campaign)) == 2) is second_sent
    assert enrollment.status == "done"
    assert enrollment.stop_reason == ("" if second_sent else "engaged")
    if not second_sent:
        assert timeline(candidate) == [
            "Finished the campaign “Platform nurture”: they engaged, so the next step was "
            "not needed"
        ]


def test_sequence_branch_is_evaluated_when_the_step_becomes_due(org, recruiter_user):
    campaign, _, message = _send_first_and_reach_second(org, recruiter_user, "not_clicked")
    dispatch_due(now=TUESDAY_10 + timedelta(hours=12))  # not yet due: nothing decided
    with scopes_disabled():
        Message.objects.filter(pk=message.pk).update(clicked_at=TUESDAY_10 + timedelta(hours=20))
    dispatch_due(now=TUESDAY_10 + timedelta(days=1))
    assert (len(messages_of(campaign)), enrollment_of(campaign).stop_reason) == (1, "engaged")


def test_sequence_reply_ends_the_sequence_with_replied(org, recruiter_user):
    campaign, candidate, message = _send_first_and_reach_second(org, recruiter_user, "not_replied")
    engagement_event_record(
        organization_id=org.pk,
        kind="replied",
        candidate_id=candidate.pk,
        campaign_id=campaign.pk,
        message_id=message.pk,
    )
    dispatch_due(now=TUESDAY_10 + timedelta(days=1))
    enrollment = enrollment_of(campaign)
    assert (enrollment.status, enrollment.stop_reason) == ("stopped", "replied")
    assert len(messages_of(campaign)) == 1
    assert timeline(candidate) == ["Left the campaign “Platform nurture”: they replied"]


def test_sequence_inbound_reply_stops_it_at_once_on_the_timeline(org, recruiter_user, in_org):
    from anymail.inbound import AnymailInboundMessage

    from campaigns.services.replies import inbound_email_record

    campaign, candidate, message = _send_first_and_reach_second(org, recruiter_user, "")
    reply = AnymailInboundMessage.parse_raw_mime(
        f"From: {candidate.email}\r\nTo: rex.recruiter@acme.example\r\n"
        f"Subject: Re: {message.subject}\r\nMessage-ID: <reply-7@mail.example.com>\r\n"
        f"In-Reply-To: {message.message_id}\r\n\r\nYes, let's talk on Thursday."
    )
    inbound_email_record(message=reply)
    enrollment = enrollment_of(campaign)
    assert (enrollment.status, enrollment.stop_reason) == ("stopped", "replied")
    assert timeline(candidate) == ["Left the campaign “Platform nurture”: they replied"]
    dispatch_due(now=TUESDAY_10 + timedelta(days=1))
    assert len(messages_of(campaign)) == 1


@pytest.mark.parametrize(("kind", "reason"), [("complained", "complained"), ("bounced", "bounced")])
def test_sequence_complaint_or_bounce_ends_the_sequence(org, recruiter_user, kind, reason):
    campaign, candidate, message = _send_first_and_reach_second(org, recruiter_user, "")
    engagement_event_record(
        organization_id=org.pk,
        kind=kind,
        candidate_id=candidate.pk,
        campaign_id=campaign.pk,
        message_id=message.pk,
    )
    dispatch_due(now=TUESDAY_10 + timedelta(days=1))
    enrollment = enrollment_of(campaign)
    assert (enrollment.status, enrollment.stop_reason) == ("stopped", reason)
    assert len(timeline(candidate)) == 1


def test_sequence_hard_bounce_at_send_time_stops_it_on_the_timeline(
    org, recruiter_user, in_org, monkeypatch
):
    import smtplib

    class RefusingConnection:
        def open(self):
            return True

        def close(self):
            pass

        def send_messages(self, messages):
            raise smtplib.SMTPRecipientsRefused({"x@example.com": (550, b"no such user")})

    campaign, (candidate,) = launched(org, recruiter_user, [{}, {"delay": timedelta(days=1)}])
    dispatch_due(now=TUESDAY_10)
    monkeypatch.setattr(timezone, "now", lambda: TUESDAY_10)  # sent inside the window
    with in_org():
        ids = list(Message.objects.values_list("pk", flat=True))
        messages_send(organization=org, message_ids=ids, connection=RefusingConnection())
    enrollment = enrollment_of(campaign)
    assert (enrollment.status, enrollment.stop_reason) == ("stopped", "bounced")
    assert timeline(candidate) == ["Left the campaign “Platform nurture”: their address bounced"]


def test_sequence_unsubscribe_stops_it_on_the_timeline(org, recruiter_user, in_org):
    campaign, (candidate,) = launched(org, recruiter_user, [{}, {"delay": timedelta(days=1)}])
    with in_org():
        candidate_unsubscribe(candidate=candidate, source="test")
    enrollment = enrollment_of(campaign)
    assert (enrollment.status, enrollment.stop_reason) == ("stopped", "unsubscribed")
    assert timeline(candidate) == ["Left the campaign “Platform nurture”: they unsubscribed"]


# --- task steps ---


def test_sequence_task_step_creates_a_follow_up_for_the_owner_and_continues(
    org, recruiter_user, admin_user
):
    campaign, (candidate,) = launched(
        org,
        recruiter_user,
        [
            {"kind": Step.Kind.TASK, "task_note": "Call about the platform role"},
            {"delay": timedelta(days=1)},
        ],
    )
    with scopes_disabled():
        candidate.owner = admin_user
        candidate.save(update_fields=["owner"])
    dispatch_due(now=TUESDAY_10)
    with scopes_disabled():
        follow_up = FollowUp.objects.get(candidate=candidate)
    assert (follow_up.owner, follow_up.source, follow_up.due_on.isoformat()) == (
        admin_user,
        "campaign",
        "2026-03-03",
    )
    assert follow_up.note == "Call about the platform role (campaign “Platform nurture”)"
    assert messages_of(campaign) == []
    enrollment = enrollment_of(campaign)
    assert (enrollment.current_step.position, enrollment.next_run_at) == (
        2,
        TUESDAY_10 + timedelta(days=1),
    )
    dispatch_due(now=TUESDAY_10 + timedelta(days=1))
    assert messages_of(campaign) == [(2, "queued")]


def test_sequence_task_step_without_owner_goes_to_the_sender(org, recruiter_user):
    _campaign, (candidate,) = launched(org, recruiter_user, [{"kind": Step.Kind.TASK}, {}])
    dispatch_due(now=TUESDAY_10)
    with scopes_disabled():
        assert FollowUp.objects.get(candidate=candidate).owner == recruiter_user


# --- joining from a pool (event-driven) ---


@pytest.fixture
def eager_celery():
    """Tasks run in-process when queued (the broker is the outside world here)."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


def _auto_join_sequence(org, user, pool):
    # The first step waits 3 days, so that joining is all that happens now: with eager tasks a
    # step due at once would be sent in the same call whenever the wall clock is inside the
    # sending window, and the one-step enrollment would already be done.
    campaign = make_sequence(
        org,
        user=user,
        steps=[{"delay": timedelta(days=3)}],
        tag="nobody-has-it",
        auto_join_pool=pool,
    )
    with scopes_disabled():
        campaign_launch(campaign=campaign, user=user)
    return campaign


def test_auto_join_enrolls_on_entering_the_pool(
    org, recruiter_user, in_org, eager_celery, django_capture_on_commit_callbacks
):
    from pipelines.services import pool_add_candidates
    from pipelines.tests.factories import PoolFactory

    pool = PoolFactory(organization=org, name="Backend")
    campaign = _auto_join_sequence(org, recruiter_user, pool)
    candidate = make_candidates(org, 1)[0]
    with django_capture_on_commit_callbacks(execute=True), in_org():
        pool_add_candidates(pool=pool, candidate_ids=[candidate.pk], actor=recruiter_user)
    enrollment = enrollment_of(campaign, candidate)
    assert (enrollment.status, enrollment.current_step.position) == ("active", 1)
    assert timeline(candidate) == [
        "Joined the campaign “Platform nurture” (entered the pool “Backend”)"
    ]


def test_auto_join_ignores_other_pools_and_draft_sequences(
    org, recruiter_user, in_org, django_capture_on_commit_callbacks
):
    from pipelines.services import pool_add_candidates
    from pipelines.tests.factories import PoolFactory

    pool, other = PoolFactory(organization=org), PoolFactory(organization=org)
    _auto_join_sequence(org, recruiter_user, pool)
    make_sequence(org, user=recruiter_user, steps=[{}], auto_join_pool=other, name="Draft")
    candidate = make_candidates(org, 1)[0]
    with django_capture_on_commit_callbacks(execute=False) as callbacks, in_org():
        pool_add_candidates(pool=other, candidate_ids=[candidate.pk], actor=None)
    assert callbacks == []


def test_auto_join_never_enrolls_twice(org, recruiter_user, in_org):
    from pipelines.tests.factories import PoolFactory

    pool = PoolFactory(organization=org)
    campaign = _auto_join_sequence(org, recruiter_user, pool)
    candidate = make_candidates(org, 1)[0]
    with in_org():
        first = sequences.sequences_auto_join(pool_id=pool.pk, candidate_ids=[candidate.pk])
        second = sequences.sequences_auto_join(pool_id=pool.pk, candidate_ids=[candidate.pk])
    assert (first, second) == (1, 0)
    assert enrollment_of(campaign, candidate).status == "active"


def test_auto_join_sequence_keeps_running_without_enrollments(org, recruiter_user):
    from pipelines.tests.factories import PoolFactory

    campaign = _auto_join_sequence(org, recruiter_user, PoolFactory(organization=org))
    dispatch_due()
    campaign.refresh_from_db()
    assert campaign.status == "running"


# --- stop rules: a final stage, manual removal ---


@pytest.mark.parametrize(("outcome", "reason"), [("won", "stage_won"), ("lost", "stage_lost")])
def test_moving_to_a_final_stage_stops_the_sequence(org, recruiter_user, in_org, outcome, reason):
    from pipelines.services import membership_move, pool_add_candidates
    from pipelines.tests.factories import PoolFactory

    campaign, (candidate,) = launched(org, recruiter_user, [{}, {"delay": timedelta(days=1)}])
    pool = PoolFactory(organization=org)
    with in_org():
        pool_add_candidates(pool=pool, candidate_ids=[candidate.pk], actor=None)
        membership = pool.memberships.select_related("pool", "stage", "candidate").get()
        final = Stage.objects.get(organization=org, pool__isnull=True, outcome=outcome)
        membership_move(membership=membership, to_stage=final, actor=recruiter_user)
    enrollment = enrollment_of(campaign)
    assert (enrollment.status, enrollment.stop_reason) == ("stopped", reason)
    assert len(timeline(candidate)) == 1


def test_moving_to_an_open_stage_keeps_the_sequence(org, recruiter_user, in_org):
    from pipelines.services import memberships_move_bulk, pool_add_candidates
    from pipelines.tests.factories import PoolFactory

    campaign, (candidate,) = launched(org, recruiter_user, [{}, {"delay": timedelta(days=1)}])
    pool = PoolFactory(organization=org)
    with in_org():
        pool_add_candidates(pool=pool, candidate_ids=[candidate.pk], actor=None)
        stage = Stage.objects.get(organization=org, pool__isnull=True, name="Engaged")
        memberships_move_bulk(
            pool=pool,
            membership_ids=list(pool.memberships.values_list("pk", flat=True)),
            to_stage=stage,
            actor=None,
        )
    assert enrollment_of(campaign).status == "active"


def test_manual_removal_stops_the_enrollment(recruiter_client, recruiter_user, org):
    campaign, (candidate,) = launched(org, recruiter_user, [{}])
    enrollment = enrollment_of(campaign)
    response = recruiter_client.post(url("enrollment_remove", org, campaign.pk, enrollment.pk))
    assert response.status_code == 302
    enrollment = enrollment_of(campaign)
    assert (enrollment.status, enrollment.stop_reason) == ("stopped", "removed")
    assert timeline(candidate) == ["Left the campaign “Platform nurture”: removed by a recruiter"]
    dispatch_due(now=TUESDAY_10)
    assert messages_of(campaign) == []


def test_manual_removal_by_a_viewer_is_403(viewer_client, recruiter_user, org):
    campaign, _ = launched(org, recruiter_user, [{}])
    enrollment = enrollment_of(campaign)
    response = viewer_client.post(url("enrollment_remove", org, campaign.pk, enrollment.pk))
    assert response.status_code == 403
    assert enrollment_of(campaign).status == "active"


# --- pause and resume ---


def _paused(org, user, *, paused_at):
    campaign, people = launched(
        org, user, [{}, {"delay": timedelta(days=2)}], candidates=2, now=TUESDAY_10
    )
    dispatch_due(now=TUESDAY_10)  # step 1 out; step 2 due Thursday 10:00
    with scopes_disabled():
        sequences.campaign_pause(campaign=campaign, user=user, now=paused_at)
    return campaign, people


def test_dispatcher_never_runs_a_step_of_a_paused_campaign(org, recruiter_user):
    campaign, _ = _paused(org, recruiter_user, paused_at=TUESDAY_10 + timedelta(hours=1))
    report = dispatch_due(now=TUESDAY_10 + timedelta(days=3))
    assert report.claimed == 0
    assert [position for position, _ in messages_of(campaign)] == [1, 1]


def test_send_path_holds_queued_emails_of_a_paused_campaign(org, recruiter_user, in_org):
    campaign, _ = _paused(org, recruiter_user, paused_at=TUESDAY_10)
    with in_org():
        ids = list(Message.objects.values_list("pk", flat=True))
        report = messages_send(organization=org, message_ids=ids)
    assert report.sent == 0
    assert {status for _, status in messages_of(campaign)} == {"queued"}


def test_resume_and_send_overdue_steps_now(org, recruiter_user):
    campaign, _ = _paused(org, recruiter_user, paused_at=TUESDAY_10 + timedelta(hours=1))
    friday_11 = TUESDAY_10 + timedelta(days=3, hours=1)
    with scopes_disabled():
        overdue = sequences.campaign_resume(
            campaign=campaign, user=recruiter_user, overdue="send_now", now=friday_11
        )
    assert overdue == 4  # the two steps 2, and the two emails of step 1 still queued
    dispatch_due(now=friday_11)
    # Step 1's emails go out now; each step 2 then waits its two days from then, rather than
    # going out in the same minute behind them.
    assert [position for position, _ in messages_of(campaign)] == [1, 1]
    went_out(campaign, friday_11)
    dispatch_due(now=friday_11 + timedelta(days=1))
    assert [position for position, _ in messages_of(campaign)] == [1, 1]
    monday_9 = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)  # Sunday 11:00, moved into the window
    dispatch_due(now=monday_9)
    assert [position for position, _ in messages_of(campaign)] == [1, 1, 2, 2]


def test_resume_and_reschedule_keeps_the_spacing(org, recruiter_user):
    paused_at = TUESDAY_10 + timedelta(hours=1)  # step 2 was 47 hours away
    campaign, _ = _paused(org, recruiter_user, paused_at=paused_at)
    went_out(campaign, TUESDAY_10)  # step 1, before the pause
    monday_10 = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
    with scopes_disabled():
        sequences.campaign_resume(
            campaign=campaign, user=recruiter_user, overdue="reschedule", now=monday_10
        )
        next_runs = set(
            Enrollment.objects.filter(campaign=campaign).values_list("next_run_at", flat=True)
        )
    assert next_runs == {monday_10 + timedelta(hours=47)}
    report = dispatch_due(now=monday_10)
    assert report.claimed == 0  # no burst
    dispatch_due(now=monday_10 + timedelta(hours=47))
    assert [position for position, _ in messages_of(campaign)] == [1, 1, 2, 2]


def test_resume_needs_a_paused_campaign(org, recruiter_user):
    campaign, _ = launched(org, recruiter_user, [{}])
    from django.core.exceptions import ValidationError

    with scopes_disabled(), pytest.raises(ValidationError):
        sequences.campaign_resume(campaign=campaign, user=recruiter_user, overdue="send_now")


# --- building a sequence: services ---


def test_steps_reorder_and_delete_keep_positions_dense(org, recruiter_user):
    campaign = make_sequence(org, user=recruiter_user, steps=[{}, {}, {}])
    with scopes_disabled():
        first, _second, third = campaign.steps.order_by("position")
        sequences.step_move(step=third, direction="up")
        assert list(campaign.steps.values_list("subject", flat=True)) == [
            "Email 1",
            "Email 3",
            "Email 2",
        ]
        sequences.step_delete(step=first)
        assert list(campaign.steps.values_list("position", "subject")) == [
            (1, "Email 3"),
            (2, "Email 2"),
        ]


@pytest.mark.parametrize("change", ["move", "delete"])
def test_a_step_that_becomes_first_loses_its_condition(org, recruiter_user, change):
    """Its condition looked at the previous email; as the first step it has none."""
    campaign = make_sequence(
        org, user=recruiter_user, steps=[{}, {"condition": Step.Condition.NOT_OPENED}, {}]
    )
    with scopes_disabled():
        first, second, _third = campaign.steps.order_by("position")
        if change == "move":
            sequences.step_move(step=second, direction="up")
        else:
            sequences.step_delete(step=first)
        second.refresh_from_db()
        conditions = list(campaign.steps.order_by("position").values_list("condition", flat=True))

    assert second.position == 1
    assert conditions[0] == Step.Condition.ALWAYS
    if change == "move":  # the step that was first keeps its own (empty) condition
        assert conditions[1] == Step.Condition.ALWAYS


def test_step_move_reads_the_position_after_a_concurrent_move(org, recruiter_user):
    """The step was loaded before another request moved it: the move starts from where it is
    now (under the campaign's lock), not from the stale position (an IntegrityError before)."""
    campaign = make_sequence(org, user=recruiter_user, steps=[{}, {}, {}])
    with scopes_disabled():
        stale_third = campaign.steps.get(position=3)
        sequences.step_move(step=campaign.steps.get(position=3), direction="up")

        sequences.step_move(step=stale_third, direction="up")

        subjects = list(campaign.steps.order_by("position").values_list("subject", flat=True))
    assert subjects == ["Email 3", "Email 1", "Email 2"]


@pytest.mark.parametrize("change", ["move", "delete", "save"])
def test_step_change_of_a_step_deleted_meanwhile_is_refused(org, recruiter_user, change):
    campaign = make_sequence(org, user=recruiter_user, steps=[{}, {}, {}])
    with scopes_disabled():
        stale_second = campaign.steps.get(position=2)
        sequences.step_delete(step=campaign.steps.get(position=2))

        with pytest.raises(ValidationError, match="deleted meanwhile"):
            if change == "move":
                sequences.step_move(step=stale_second, direction="down")
            elif change == "save":
                sequences.step_save(step=stale_second, subject="Too late")
            else:
                sequences.step_delete(step=stale_second)

        positions = list(campaign.steps.order_by("position").values_list("position", "subject"))
    assert positions == [(1, "Email 1"), (2, "Email 3")]


def test_steps_cannot_change_after_launch(org, recruiter_user):
    from django.core.exceptions import ValidationError

    campaign, _ = launched(org, recruiter_user, [{}])
    with scopes_disabled(), pytest.raises(ValidationError):
        sequences.step_create(campaign=campaign, subject="Late", body_markdown="x")


def test_sequence_launch_with_only_an_auto_join_pool_is_allowed(org, recruiter_user):
    from campaigns.services.campaigns import campaign_launch_problems
    from pipelines.tests.factories import PoolFactory

    campaign = make_sequence(org, user=recruiter_user, steps=[{}])
    with scopes_disabled():
        campaign.saved_searches.clear()
        assert "Choose who joins" in " ".join(campaign_launch_problems(campaign=campaign))
        campaign.pools.set([PoolFactory(organization=org)])
        assert campaign_launch_problems(campaign=campaign) == []
        campaign.pools.clear()
        campaign.auto_join_pool = PoolFactory(organization=org)
        campaign.save()
        assert campaign_launch_problems(campaign=campaign) == []


# --- pages ---


def test_sequence_create_page_makes_a_draft(recruiter_client, recruiter_user, org, in_org):
    search = SavedSearchFactory(organization=org, owner=recruiter_user)
    response = recruiter_client.post(
        url("sequence_create", org),
        {
            "name": "Platform nurture",
            "topic": "jobs",
            "saved_searches": [search.pk],
            "window_days": ["0", "2", "4"],
            "window_start": "08:30",
            "window_end": "12:00",
            "use_candidate_time_zone": "on",
        },
    )
    with in_org():
        campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert response["Location"] == url("step_create", org, campaign.pk)
    assert (campaign.kind, campaign.window_days, campaign.window_start) == (
        "sequence",
        [0, 2, 4],
        time(8, 30),
    )


def test_sequence_create_form_shows_errors(recruiter_client, org, in_org):
    response = recruiter_client.post(
        url("sequence_create", org),
        {"name": "", "topic": "jobs", "window_start": "17:00", "window_end": "09:00"},
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "Choose a time after the start of the window." in body
    assert "This field is required." in body
    with in_org():
        assert not Campaign.objects.exists()


def test_sequence_create_by_a_viewer_is_403(viewer_client, org):
    assert viewer_client.get(url("sequence_create", org)).status_code == 403
    assert viewer_client.post(url("sequence_create", org), {"name": "x"}).status_code == 403


def test_sequence_create_anonymous_is_sent_to_login(client, org):
    response = client.get(url("sequence_create", org))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_sequence_settings_page_saves_the_window(recruiter_client, recruiter_user, org):
    campaign = make_sequence(org, user=recruiter_user, steps=[{}])
    response = recruiter_client.post(
        url("sequence_edit", org, campaign.pk),
        {
            "name": "Renamed",
            "topic": "jobs",
            "window_days": ["5", "6"],
            "window_start": "10:00",
            "window_end": "11:00",
        },
    )
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.name, campaign.window_days, campaign.use_candidate_time_zone) == (
        "Renamed",
        [5, 6],
        False,
    )


def _settings_post(campaign, **fields):
    return {
        "name": campaign.name,
        "topic": "jobs",
        "window_days": ["0", "1", "2", "3", "4"],
        "window_start": "09:00",
        "window_end": "17:00",
        **fields,
    }


def test_sequence_settings_still_save_after_its_pools_are_archived(
    recruiter_client, recruiter_user, org
):
    from pipelines.services import pool_archive
    from pipelines.tests.factories import PoolFactory

    pool = PoolFactory(organization=org, name="Backend")
    campaign, _ = launched(org, recruiter_user, [{"delay": timedelta(days=3)}], auto_join_pool=pool)
    with scopes_disabled():
        campaign.pools.set([pool])
        pool_archive(pool=pool)
    data = _settings_post(campaign, name="Renamed", auto_join_pool=str(pool.pk))
    response = recruiter_client.post(url("sequence_edit", org, campaign.pk), data)
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.name, campaign.auto_join_pool_id) == ("Renamed", pool.pk)


def test_draft_sequence_with_an_archived_pool_says_so_and_cannot_launch(
    recruiter_client, recruiter_user, org
):
    from campaigns.services.campaigns import campaign_launch_problems
    from pipelines.services import pool_archive
    from pipelines.tests.factories import PoolFactory

    pool = PoolFactory(organization=org, name="Backend")
    campaign = make_sequence(org, user=recruiter_user, steps=[{}])
    with scopes_disabled():
        campaign.pools.set([pool])
        pool_archive(pool=pool)
        problems = campaign_launch_problems(campaign=campaign)
    message = "The talent pool “Backend” has been archived"
    assert any(problem.startswith(message) for problem in problems)
    page = recruiter_client.get(url("detail", org, campaign.pk)).content.decode()
    assert "Pool:</span> Backend (archived)" in page and message in page
    data = _settings_post(campaign, pools=[str(pool.pk)])
    response = recruiter_client.post(url("sequence_edit", org, campaign.pk), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    with scopes_disabled():
        assert list(campaign.pools.all()) == [pool]  # nothing saved
    response = recruiter_client.post(
        url("sequence_edit", org, campaign.pk), _settings_post(campaign)
    )
    assert response.status_code == 302
    with scopes_disabled():
        assert not campaign.pools.exists()


def test_step_create_page_adds_an_email_step(recruiter_client, recruiter_user, org, in_org):
    campaign = make_sequence(org, user=recruiter_user, steps=[{}])
    response = recruiter_client.post(
        url("step_create", org, campaign.pk),
        {
            "kind": "email",
            "delay_amount": "3",
            "delay_unit": "days",
            "condition": "not_clicked",
            "subject": "Still interested, {{ first_name }}?",
            "body_markdown": "Just checking in.",
        },
    )
    assert response.status_code == 302
    with in_org():
        step = campaign.steps.get(position=2)
    assert (step.delay, step.condition, step.kind) == (timedelta(days=3), "not_clicked", "email")


def test_step_create_page_adds_a_task_step(recruiter_client, recruiter_user, org, in_org):
    campaign = make_sequence(org, user=recruiter_user, steps=[{}])
    response = recruiter_client.post(
        url("step_create", org, campaign.pk),
        {"kind": "task", "delay_amount": "5", "delay_unit": "hours", "task_note": "Call"},
    )
    assert response.status_code == 302
    with in_org():
        step = campaign.steps.get(position=2)
    assert (step.kind, step.delay, step.task_note, step.subject) == (
        "task",
        timedelta(hours=5),
        "Call",
        "",
    )


def test_step_form_shows_errors(recruiter_client, recruiter_user, org, in_org):
    campaign = make_sequence(org, user=recruiter_user, steps=[{}])
    response = recruiter_client.post(
        url("step_create", org, campaign.pk),
        {
            "kind": "email",
            "delay_amount": "-1",
            "delay_unit": "days",
            "subject": "{{ unknown_field }}",
            "body_markdown": "",
        },
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "An email step needs this." in body
    assert "greater than or equal to 0" in body
    with in_org():
        assert campaign.steps.count() == 1


def test_step_form_rejects_unknown_merge_fields(recruiter_client, recruiter_user, org, in_org):
    campaign = make_sequence(org, user=recruiter_user, steps=[{}])
    response = recruiter_client.post(
        url("step_create", org, campaign.pk),
        {
            "kind": "email",
            "delay_amount": "1",
            "delay_unit": "days",
            "subject": "Hi {{ favourite_colour }}",
            "body_markdown": "Body",
        },
    )
    assert response.status_code == 200
    assert "favourite_colour" in response.content.decode()
    with in_org():
        assert campaign.steps.count() == 1


def test_step_edit_move_and_delete_pages(recruiter_client, recruiter_user, org, in_org):
    campaign = make_sequence(org, user=recruiter_user, steps=[{}, {}])
    with in_org():
        first, second = campaign.steps.order_by("position")
    page = recruiter_client.get(url("step_edit", org, campaign.pk, first.pk))
    assert page.status_code == 200 and "Email 1" in page.content.decode()
    response = recruiter_client.post(
        url("step_move", org, campaign.pk, second.pk), {"direction": "up"}
    )
    assert response.status_code == 302
    with in_org():
        assert list(campaign.steps.values_list("pk", flat=True)) == [second.pk, first.pk]
    bad = recruiter_client.post(url("step_move", org, campaign.pk, second.pk), {"direction": "x"})
    assert bad.status_code == 302
    response = recruiter_client.post(url("step_delete", org, campaign.pk, second.pk))
    assert response.status_code == 302
    with in_org():
        assert list(campaign.steps.values_list("pk", "position")) == [(first.pk, 1)]


def test_step_preview_shows_the_email_with_sample_values(viewer_client, recruiter_user, org):
    campaign = make_sequence(
        org, user=recruiter_user, steps=[{}, {"kind": Step.Kind.TASK, "task_note": "Ring"}]
    )
    with scopes_disabled():
        email, task = campaign.steps.order_by("position")
    response = viewer_client.get(url("step_preview", org, campaign.pk, email.pk))
    assert response.status_code == 200
    assert "Hi Ada" in response.content.decode()  # the sample first name
    assert "sandbox" in response["Content-Security-Policy"]
    assert viewer_client.get(url("step_preview", org, campaign.pk, task.pk)).status_code == 404


def test_step_preview_as_a_real_candidate_and_of_unsaved_text(
    recruiter_client, recruiter_user, org, other_org
):
    grace = make_candidates(org, 1, first_name="Grace")[0]
    outsider = make_candidates(other_org, 1, first_name="Olga")[0]
    stranger = make_candidates(org, 1, first_name="Stan", tags=("elsewhere",))[0]
    campaign = make_sequence(org, user=recruiter_user, steps=[{}])
    with scopes_disabled():
        step = campaign.steps.get()
    preview = url("step_preview", org, campaign.pk, step.pk)

    page = recruiter_client.get(url("step_edit", org, campaign.pk, step.pk)).content.decode()
    as_grace = recruiter_client.get(f"{preview}?candidate={grace.pk}").content.decode()
    unsaved = recruiter_client.post(
        preview,
        {
            "subject": "New subject",
            "preheader": "",
            "body_markdown": "Welcome aboard, {{ first_name }}!",
            "candidate": grace.pk,
        },
    ).content.decode()
    broken = recruiter_client.post(
        preview, {"subject": "x", "body_markdown": "Hi {{ salary }}"}
    ).content.decode()
    # Candidates outside the audience (or the organisation) fall back to the sample values.
    foreign = recruiter_client.get(f"{preview}?candidate={outsider.pk}").content.decode()
    outside = recruiter_client.get(f"{preview}?candidate={stranger.pk}").content.decode()

    assert f'<option value="{grace.pk}">Grace' in page and "Stan" not in page
    assert "Hi Grace" in as_grace
    assert "Welcome aboard, Grace!" in unsaved
    assert "Unknown merge field “salary”" in broken
    assert "Olga" not in foreign and "Hi Ada" in foreign
    assert "Stan" not in outside and "Hi Ada" in outside


def test_step_send_a_test_to_me_goes_through_the_outbox(
    recruiter_client, recruiter_user, org, viewer_client
):
    grace = make_candidates(org, 1, first_name="Grace")[0]
    campaign = make_sequence(
        org,
        user=recruiter_user,
        steps=[{}, {"subject": "Second, {{ first_name }}", "body_markdown": "Step two"}],
    )
    with scopes_disabled():
        second = campaign.steps.get(position=2)
    test_url = url("step_test_send", org, campaign.pk, second.pk)

    response = recruiter_client.post(test_url, {"candidate": grace.pk})

    with scopes_disabled():
        message = Message.objects.get(is_test=True)
    assert response.status_code == 302
    assert (message.to_email, message.subject) == (recruiter_user.email, "[Test] Second, Grace")
    assert (message.step_id, message.campaign_id, message.enrollment_id) == (
        second.pk,
        campaign.pk,
        None,
    )
    assert "Step two" in message.html
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        f"A test of step 2 is on its way to {recruiter_user.email}."
    ]
    assert viewer_client.post(test_url).status_code == 403


def test_step_edit_page_of_a_launched_sequence_says_its_steps_are_fixed(
    recruiter_client, recruiter_user, org
):
    campaign, _ = launched(org, recruiter_user, [{}])
    with scopes_disabled():
        step = campaign.steps.get()
    body = recruiter_client.get(url("step_edit", org, campaign.pk, step.pk)).content.decode()
    assert "This sequence has launched: its steps are fixed" in body
    assert "Save step" not in body and "Send a test to me" in body


@pytest.mark.parametrize("name", ["step_edit", "step_delete", "step_move"])
def test_step_writes_by_a_viewer_are_403(viewer_client, recruiter_user, org, in_org, name):
    campaign = make_sequence(org, user=recruiter_user, steps=[{}])
    with in_org():
        step = campaign.steps.get()
    assert viewer_client.post(url(name, org, campaign.pk, step.pk)).status_code == 403


@pytest.mark.parametrize("name", ["sequence_edit", "step_create", "pause", "resume"])
def test_sequence_writes_by_a_viewer_are_403(viewer_client, recruiter_user, org, name):
    campaign = make_sequence(org, user=recruiter_user, steps=[{}])
    assert viewer_client.post(url(name, org, campaign.pk)).status_code == 403


def test_sequence_pages_of_a_broadcast_are_404(recruiter_client, recruiter_user, org):
    from campaigns.tests.factories import make_broadcast

    campaign = make_broadcast(org, user=recruiter_user)
    assert recruiter_client.get(url("step_create", org, campaign.pk)).status_code == 404


def test_sequence_detail_before_launch_shows_steps_and_audience(viewer_client, recruiter_user, org):
    make_candidates(org, 3)
    campaign = make_sequence(
        org,
        user=recruiter_user,
        steps=[{}, {"kind": Step.Kind.TASK, "delay": timedelta(days=2), "task_note": "Ring"}],
    )
    response = viewer_client.get(url("detail", org, campaign.pk))
    body = response.content.decode()
    assert response.status_code == 200
    assert "3</span>" in body and "would join now" in body
    assert "Task: Ring" in body and "After 2 days" in body
    assert "Mon–Fri 09:00–17:00" in body


def test_sequence_detail_after_launch_shows_results_and_enrollments(
    recruiter_client, recruiter_user, org
):
    campaign, _people = launched(
        org, recruiter_user, [{}, {"delay": timedelta(days=1)}], candidates=2
    )
    dispatch_due(now=TUESDAY_10)
    with scopes_disabled():
        Message.objects.update(status="sent")
        message = Message.objects.first()
        Message.objects.filter(pk=message.pk).update(opened_at=TUESDAY_10)
    engagement_event_record(
        organization_id=org.pk,
        kind="replied",
        candidate_id=message.candidate_id,
        campaign_id=campaign.pk,
        message_id=message.pk,
    )
    response = recruiter_client.get(url("detail", org, campaign.pk))
    body = response.content.decode()
    assert response.status_code == 200
    assert body.count("enrollment-row") == 2
    assert body.count("50.0%") == 2  # opened and replied: 1 of 2
    assert "Remove</button>" in body


def test_sequence_detail_enrollment_filter_and_bad_page(recruiter_client, recruiter_user, org):
    campaign, _ = launched(org, recruiter_user, [{}], candidates=2)
    stopped = recruiter_client.get(url("detail", org, campaign.pk) + "?status=stopped&page=x")
    assert stopped.status_code == 200
    assert stopped.content.decode().count("enrollment-row") == 0
    assert "Nobody with this status." in stopped.content.decode()  # not "Nobody here yet."
    bad = recruiter_client.get(url("detail", org, campaign.pk) + "?status=nonsense")
    assert bad.content.decode().count("enrollment-row") == 2
    assert applies_with_show_button(bad.content.decode(), "id_status")


def test_pause_and_resume_pages(recruiter_client, recruiter_user, org):
    campaign, _ = launched(org, recruiter_user, [{}])
    assert recruiter_client.post(url("pause", org, campaign.pk)).status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == "paused"
    page = recruiter_client.get(url("resume", org, campaign.pk))
    assert page.status_code == 200 and "overdue-count" in page.content.decode()
    invalid = recruiter_client.post(url("resume", org, campaign.pk), {"overdue": "burst"})
    assert invalid.status_code == 200
    assert "Select a valid choice" in invalid.content.decode()
    response = recruiter_client.post(url("resume", org, campaign.pk), {"overdue": "reschedule"})
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.status, campaign.paused_at) == ("running", None)


def test_pause_a_draft_is_refused_without_error(recruiter_client, recruiter_user, org):
    campaign = make_sequence(org, user=recruiter_user, steps=[{}])
    response = recruiter_client.post(url("pause", org, campaign.pk), follow=True)
    assert "Only a campaign that is sending can be paused." in response.content.decode()


def test_sequence_detail_query_count_does_not_grow(recruiter_client, recruiter_user, org):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    campaign, _ = launched(org, recruiter_user, [{}, {}], candidates=1)

    def queries_of_the_page() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = recruiter_client.get(url("detail", org, campaign.pk))
        assert response.status_code == 200
        return len(queries)

    with_one = queries_of_the_page()
    more = make_candidates(org, 2)
    with scopes_disabled():
        sequences.sequence_enroll(campaign=campaign, candidate_ids=[c.pk for c in more])
    assert enrollment_of(campaign, more[0]).status == "active"
    assert queries_of_the_page() == with_one


# --- the demo ---


def test_seed_demo_has_a_running_sequence_with_candidates_at_different_steps(db):
    from io import StringIO

    from django.core.management import call_command

    call_command("seed_demo", stdout=StringIO())
    with scopes_disabled():
        campaign = Campaign.objects.get(kind=Campaign.Kind.SEQUENCE)
        enrollments = list(campaign.enrollments.select_related("current_step"))
        positions = {e.current_step.position for e in enrollments if e.status == "active"}
        follow_ups = FollowUp.objects.filter(source=FollowUp.Source.CAMPAIGN).count()
        stopped = {e.stop_reason for e in enrollments if e.status == "stopped"}
        inbound = list(
            InboundEmail.objects.filter(message__campaign=campaign).values_list(
                "is_auto_reply", "candidate_id"
            )
        )
        away = [candidate for is_auto, candidate in inbound if is_auto]
        still_in = (
            campaign.enrollments.filter(candidate_id__in=away)
            .exclude(stop_reason="replied")
            .count()
        )
        statuses = set(campaign.messages.values_list("status", flat=True))
    assert statuses == {"delivered"}  # as the ESP reported: the step results show deliveries
    assert campaign.status == "running"
    assert len(positions) >= 2
    assert follow_ups >= 1
    assert "replied" in stopped
    assert sorted(is_auto for is_auto, _ in inbound) == [False, True]
    assert still_in == 1  # an out-of-office does not end the sequence


def test_candidate_time_zone_is_set_on_the_profile_form(recruiter_client, org, in_org):
    candidate = make_candidates(org, 1, first_name="Ana")[0]
    page = recruiter_client.get(reverse("candidates:edit", args=[org.slug, candidate.pk]))
    assert 'name="time_zone"' in page.content.decode()
    response = recruiter_client.post(
        reverse("candidates:edit", args=[org.slug, candidate.pk]),
        {
            "first_name": "Ana",
            "time_zone": "America/New_York",
            "status": "active",
            "source": "sourced",
        },
    )
    assert response.status_code == 302, response.context["form"].errors
    with in_org():
        candidate.refresh_from_db()
    assert candidate.time_zone == "America/New_York"
    bad = recruiter_client.post(
        reverse("candidates:edit", args=[org.slug, candidate.pk]),
        {"first_name": "Ana", "time_zone": "Mars/Olympus_Mons", "status": "active"},
    )
    assert bad.status_code == 200 and "Select a valid choice" in bad.content.decode()


# --- audit: private pools, the first step's wait, the page after launch ----------------------


def test_sequence_form_hides_and_refuses_another_users_private_pool(
    recruiter_client, recruiter_user, admin_user, org, in_org
):
    from pipelines.models import Pool
    from pipelines.tests.factories import PoolFactory

    shared = PoolFactory(organization=org, name="Shared backend")
    mine = PoolFactory(
        organization=org,
        name="My shortlist",
        owner=recruiter_user,
        visibility=Pool.Visibility.OWNER,
    )
    theirs = PoolFactory(
        organization=org, name="Admin's secret", owner=admin_user, visibility=Pool.Visibility.OWNER
    )

    page = recruiter_client.get(url("sequence_create", org)).content.decode()
    data = {**_settings_post(Campaign(name="Nurture")), "pools": [str(theirs.pk)]}
    as_pool = recruiter_client.post(url("sequence_create", org), data)
    data = {**_settings_post(Campaign(name="Nurture")), "auto_join_pool": str(theirs.pk)}
    as_auto_join = recruiter_client.post(url("sequence_create", org), data)

    assert "Shared backend" in page and "My shortlist" in page
    assert "Admin&#x27;s secret" not in page and "Admin's secret" not in page
    for response in (as_pool, as_auto_join):
        assert response.status_code == 200
        assert "Select a valid choice" in response.content.decode()
    with in_org():
        assert not Campaign.objects.filter(name="Nurture").exists()
    with in_org():
        offered = SequenceForm(organization=org, user=recruiter_user).fields["pools"].queryset
        assert {pool.pk for pool in offered} == {shared.pk, mine.pk}


def test_sequence_settings_keep_a_colleagues_private_pool_already_chosen(
    recruiter_client, recruiter_user, admin_user, org, in_org
):
    from pipelines.models import Pool
    from pipelines.tests.factories import PoolFactory

    theirs = PoolFactory(
        organization=org, name="Admin's secret", owner=admin_user, visibility=Pool.Visibility.OWNER
    )
    campaign = make_sequence(org, user=recruiter_user, steps=[{}], auto_join_pool=theirs)
    with in_org():
        campaign.pools.set([theirs])

    data = _settings_post(
        campaign, name="Renamed", pools=[str(theirs.pk)], auto_join_pool=str(theirs.pk)
    )
    response = recruiter_client.post(url("sequence_edit", org, campaign.pk), data)

    assert response.status_code == 302
    campaign.refresh_from_db()
    with in_org():
        assert (campaign.name, list(campaign.pools.all())) == ("Renamed", [theirs])
    assert campaign.auto_join_pool_id == theirs.pk


def test_auto_join_from_a_private_pool_is_not_named_on_a_colleagues_timeline(
    org,
    recruiter_user,
    recruiter_client,
    viewer_client,
    in_org,
    eager_celery,
    django_capture_on_commit_callbacks,
):
    from pipelines.models import Pool
    from pipelines.services import pool_add_candidates
    from pipelines.tests.factories import PoolFactory

    pool = PoolFactory(
        organization=org,
        name="Poaching list Zanzibar",
        owner=recruiter_user,
        visibility=Pool.Visibility.OWNER,
    )
    _auto_join_sequence(org, recruiter_user, pool)
    candidate = make_candidates(org, 1)[0]
    with django_capture_on_commit_callbacks(execute=True), in_org():
        pool_add_candidates(pool=pool, candidate_ids=[candidate.pk], actor=recruiter_user)
    profile = reverse("candidates:detail", args=[org.slug, candidate.pk])

    viewer = viewer_client.get(profile)
    owner = recruiter_client.get(profile)

    def joined(response):
        timeline = response.context["timeline"]
        return [a.summary for a in timeline if a.kind == Activity.Kind.ENROLLMENT]

    assert "Zanzibar" not in viewer.content.decode()
    assert joined(viewer) == ["Joined the campaign “Platform nurture” (entered a private pool)"]
    assert joined(owner) == [
        "Joined the campaign “Platform nurture” (entered the pool “Poaching list Zanzibar”)"
    ]


def test_migration_gives_old_auto_join_entries_the_pool_they_name(
    org, other_org, recruiter_user, viewer_client, in_org
):
    """Entries written before auto-join stored `data.pool_id` named a private pool to
    everyone; campaigns' migration 0017 gives them the pool they name, so the timeline
    redacts them like new ones."""
    import importlib

    from django.db import connection

    from pipelines.models import Pool
    from pipelines.tests.factories import PoolFactory

    migration = importlib.import_module("campaigns.migrations.0017_auto_join_activity_pool_id")
    private = PoolFactory(
        organization=org,
        name="Poaching list Zanzibar",
        owner=recruiter_user,
        visibility=Pool.Visibility.OWNER,
    )
    renamed = PoolFactory(
        organization=org,
        name="Quiet % list",
        owner=recruiter_user,
        visibility=Pool.Visibility.OWNER,
    )
    PoolFactory(organization=other_org, name="Gone pool")  # another organisation's name
    PoolFactory(organization=org, name="Python")  # shared; its name ends the next one's
    senior = PoolFactory(
        organization=org,
        name="Senior Python",
        owner=recruiter_user,
        visibility=Pool.Visibility.OWNER,
    )
    campaign = _auto_join_sequence(org, recruiter_user, private)
    other = make_sequence(org, user=recruiter_user, steps=[{}], name="Old nurture")
    candidate = make_candidates(org, 1)[0]
    old_entries = [
        (campaign, "Poaching list Zanzibar"),  # the campaign's own auto-join pool
        (other, "Quiet % list"),  # the campaign moved on: the org's only pool of that name
        (other, "Gone pool"),  # no pool of that name here: left as it is
        (other, "Senior Python"),  # not “Python”, whose name only ends it
    ]
    with in_org():
        for sequence, pool_name in old_entries:
            Activity.objects.create(
                organization=org,
                candidate=candidate,
                kind=Activity.Kind.ENROLLMENT,
                occurred_at=timezone.now(),
                summary=sequences.AUTO_JOIN_SUMMARY.format(campaign=sequence.name, pool=pool_name),
                data={"campaign_id": sequence.pk},
            )

    with connection.cursor() as cursor:
        cursor.execute(migration.BY_CAMPAIGN)
        cursor.execute(migration.BY_NAME)

    with in_org():
        pool_ids = list(
            Activity.objects.filter(kind=Activity.Kind.ENROLLMENT)
            .order_by("pk")
            .values_list("data__pool_id", flat=True)
        )
    assert pool_ids == [private.pk, renamed.pk, None, senior.pk]
    page = viewer_client.get(reverse("candidates:detail", args=[org.slug, candidate.pk]))
    assert "Zanzibar" not in page.content.decode() and "Quiet % list" not in page.content.decode()
    assert "Senior Python" not in page.content.decode()


def test_sequence_pages_do_not_name_a_colleagues_private_pool(
    recruiter_client, admin_client, recruiter_user, admin_user, org, in_org
):
    from pipelines.models import Pool
    from pipelines.services import pool_archive
    from pipelines.tests.factories import PoolFactory

    theirs = PoolFactory(
        organization=org,
        name="Admin's Zanzibar",
        owner=admin_user,
        visibility=Pool.Visibility.OWNER,
    )
    campaign = make_sequence(org, user=admin_user, steps=[{}], auto_join_pool=theirs)
    with in_org():
        campaign.pools.set([theirs])
        pool_archive(pool=theirs)  # a launch problem that would name it

    detail = recruiter_client.get(url("detail", org, campaign.pk)).content.decode()
    edit = recruiter_client.get(url("sequence_edit", org, campaign.pk)).content.decode()
    own_detail = admin_client.get(url("detail", org, campaign.pk)).content.decode()

    for page in (detail, edit):
        assert "Zanzibar" not in page
    assert "Pool:</span> A private pool (archived)" in detail
    assert "a private pool" in " ".join(detail.split())
    assert "A colleague&#x27;s private talent pool has been archived" in detail
    assert "A private pool (archived)" in edit
    assert "Pool:</span> Admin&#x27;s Zanzibar (archived)" in own_detail
    assert "the pool “Admin&#x27;s Zanzibar”" in own_detail
    assert "The talent pool “Admin&#x27;s Zanzibar” has been archived" in own_detail


def test_step_form_starts_the_first_step_at_once_and_later_ones_after_two_days(
    recruiter_client, recruiter_user, org
):
    empty = make_sequence(org, user=recruiter_user, steps=[], name="Empty")
    with_one = make_sequence(org, user=recruiter_user, steps=[{}], name="One step")

    first = recruiter_client.get(url("step_create", org, empty.pk)).context["form"]
    second = recruiter_client.get(url("step_create", org, with_one.pk)).context["form"]

    assert first["delay_amount"].value() == 0
    assert second["delay_amount"].value() == 2


def test_running_sequence_says_who_joined_instead_of_the_launch_estimate(
    recruiter_client, recruiter_user, org
):
    campaign, _ = launched(org, recruiter_user, [{"delay": timedelta(days=2)}], candidates=3)

    body = " ".join(recruiter_client.get(url("detail", org, campaign.pk)).content.decode().split())

    assert "On launch" not in body and "Left out" not in body
    assert '<dd class="col-sm-7 sequence-joined"> 3 candidates </dd>' in body
    assert "At launch, from" in body


def test_sequence_page_shows_step_subjects_as_merge_field_chips_and_header_like_a_broadcast(
    recruiter_client, recruiter_user, org
):
    campaign = make_sequence(
        org, user=recruiter_user, steps=[{"subject": "{{ first_name|default('Hello') }}, hi"}]
    )

    body = recruiter_client.get(url("detail", org, campaign.pk)).content.decode()

    assert 'title="{{ first_name|default(&#x27;Hello&#x27;) }}">first_name</span>, hi' in body
    assert '<div class="page-header flex-md-nowrap">' in body
    # The buttons keep one row beside the title from md; a narrower screen wraps them.
    assert '<div class="d-flex flex-wrap gap-2 flex-md-shrink-0">' in body
    assert url("messages", org, campaign.pk) not in body  # a draft has sent nothing
