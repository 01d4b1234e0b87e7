"""A sequence whose emails wait in the outbox (held by a cap, a retry, the provider…):

* stop rules and the recruiter's "Remove" reach the last step's email while it waits, though
  its enrollment is already done (the last email is written);
* the next step is not rendered while the previous email is still in the outbox, and its delay
  counts from when that email went out, so held steps do not pile up and go out in the same
  minute, and a branch is never judged on an email the candidate has not received.

The clock is controlled (`now=`) where the test needs it; the dispatcher, the send path,
PostgreSQL and Redis are real."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns.models import EmailSettings, Enrollment, Message
from campaigns.selectors import campaign_progress, campaign_step_results
from campaigns.services import sequences
from campaigns.services.dispatch import PREVIOUS_EMAIL_RECHECK, dispatch_due
from campaigns.services.preferences import candidate_unsubscribe
from campaigns.services.replies import inbound_email_record
from campaigns.tests.factories import make_candidates
from campaigns.tests.test_guards import _earlier_email, _send, _settings
from campaigns.tests.test_replies import _headers, _raw
from campaigns.tests.test_sequences import (
    TUESDAY_10,
    enrollment_of,
    launched,
    make_sequence,
    messages_of,
    timeline,
    url,
    went_out,
)
from pipelines.models import Stage


def _messages(campaign) -> list[Message]:
    with scopes_disabled():
        return list(Message.objects.filter(campaign=campaign).order_by("step__position"))


# --- stop rules reach the last email while it waits in the outbox ---


def _to_final_stage(org, candidate, user, outcome: str) -> None:
    from pipelines.services import membership_move, pool_add_candidates
    from pipelines.tests.factories import PoolFactory

    pool = PoolFactory(organization=org)
    with scope(organization=org):
        pool_add_candidates(pool=pool, candidate_ids=[candidate.pk], actor=None)
        membership = pool.memberships.select_related("pool", "stage", "candidate").get()
        stage = (
            Stage.objects.filter(organization=org, pool__isnull=True, outcome=outcome)
            .order_by("position")
            .first()
        )
        membership_move(membership=membership, to_stage=stage, actor=user)


def _last_step_held(org, user):
    """A two-step sequence whose step 1 went out and whose step 2 (the last) is written and
    held until tomorrow by the recruiter's daily cap: its enrollment is done."""
    _settings(org, sender_daily_cap=1)
    now = timezone.now()
    campaign, (candidate,) = launched(
        org, user, [{}, {"delay": timedelta(hours=1)}], now=now, window_days=[]
    )
    dispatch_due(now=now)
    assert _send(org, campaign).sent == 1  # step 1; the recruiter's cap is used up
    dispatch_due(now=now + timedelta(hours=1, minutes=1))
    assert _send(org, campaign).held == 1  # step 2, until tomorrow
    assert enrollment_of(campaign).status == Enrollment.Status.DONE
    return campaign, candidate


def _hold_is_over(org, campaign) -> None:
    """Tomorrow: the recruiter's cap lifted, the held email due (as the sweeper finds it)."""
    with scopes_disabled():
        EmailSettings.objects.filter(organization=org).update(sender_daily_cap=0)
        Message.objects.filter(campaign=campaign, status="queued").update(
            next_attempt_at=timezone.now()
        )


@pytest.mark.parametrize(
    ("stop", "reason", "summary"),
    [
        ("reply", "replied", "they replied"),
        ("won", "stage_won", "moved to a won stage"),
        ("lost", "stage_lost", "moved to a lost stage"),
        ("remove", "removed", "removed by a recruiter"),
        ("unsubscribe", "unsubscribed", "they unsubscribed"),
    ],
)
def test_a_held_last_step_is_not_sent_after_a_stop(
    org, recruiter_user, recruiter_client, stop, reason, summary
):
    campaign, candidate = _last_step_held(org, recruiter_user)
    step_one, step_two = _messages(campaign)

    if stop == "reply":
        inbound_email_record(message=_raw(headers=_headers(step_one)))
    elif stop in ("won", "lost"):
        _to_final_stage(org, candidate, recruiter_user, outcome=stop)
    elif stop == "remove":  # the campaign page's Remove button
        enrollment = enrollment_of(campaign)
        response = recruiter_client.post(url("enrollment_remove", org, campaign.pk, enrollment.pk))
        assert response.status_code == 302
    else:
        with scopes_disabled():
            candidate_unsubscribe(candidate=candidate, source="preference centre")

    enrollment = enrollment_of(campaign)
    assert (enrollment.status, enrollment.stop_reason) == ("stopped", reason)
    # The held email is not sent, and no longer counts as waiting on the campaign page.
    step_two.refresh_from_db()
    assert (step_two.status, step_two.skip_reason) == ("skipped", "enrollment_stopped")
    with scopes_disabled():
        progress = campaign_progress(campaign=campaign)
        results = campaign_step_results(campaign=campaign)
    assert (progress["done"], progress["stopped"], progress["percent"]) == (0, 1, 100)
    assert [(row["pending"], row["sent"], row["skipped"]) for row in results] == [
        (0, 1, 0),
        (0, 0, 1),
    ]
    assert timeline(candidate)[-1] == f"Left the campaign “Platform nurture”: {summary}"

    _hold_is_over(org, campaign)
    mail.outbox.clear()
    _send(org, campaign)
    assert mail.outbox == []


def test_a_stop_that_comes_while_the_last_email_is_being_sent_skips_it(org, recruiter_user):
    """Claimed by a send task (`sending`) when the reply comes: the enrollment stops, and the
    send path skips the email when it reads the enrollment (or puts it back in the queue held,
    and skips it then)."""
    campaign, _ = _last_step_held(org, recruiter_user)
    step_one, step_two = _messages(campaign)
    with scopes_disabled():
        Message.objects.filter(pk=step_two.pk).update(status="sending")
    inbound_email_record(message=_raw(headers=_headers(step_one)))
    enrollment = enrollment_of(campaign)
    assert (enrollment.status, enrollment.stop_reason) == ("stopped", "replied")
    step_two.refresh_from_db()
    assert step_two.status == "sending"  # the send task's
    with scopes_disabled():
        Message.objects.filter(pk=step_two.pk).update(status="queued", next_attempt_at=None)
    _hold_is_over(org, campaign)
    mail.outbox.clear()
    report = _send(org, campaign)
    assert (mail.outbox, report.skip_reasons) == ([], {"enrollment_stopped": 1})


def test_a_last_email_that_went_out_is_not_stopped_by_a_later_reply(org, recruiter_user):
    """Once its last email has left the outbox, a finished enrollment stays done."""
    campaign, candidate = _last_step_held(org, recruiter_user)
    _hold_is_over(org, campaign)
    assert _send(org, campaign).sent == 1
    step_one, _ = _messages(campaign)
    inbound_email_record(message=_raw(headers=_headers(step_one)))
    _to_final_stage(org, candidate, recruiter_user, outcome="won")
    with scopes_disabled():
        removed = sequences.enrollment_remove(enrollment=enrollment_of(campaign), actor=None)
    assert removed is False
    enrollment = enrollment_of(campaign)
    assert (enrollment.status, enrollment.stop_reason) == ("done", "")


def test_a_broadcasts_held_email_is_left_to_the_send_path(org, recruiter_user):
    """A broadcast's enrollment is done once its one email is written; an unsubscribe while
    the email is held leaves it done, and the send path skips the email with its own reason."""
    from campaigns.tests.test_guards import _launch

    _settings(org, sender_daily_cap=1)
    make_candidates(org, 2)
    campaign = _launch(org, recruiter_user)
    report = _send(org, campaign)
    assert (report.sent, report.held) == (1, 1)
    with scopes_disabled():
        held = Message.objects.get(campaign=campaign, status="queued")
        candidate_unsubscribe(candidate=held.candidate, source="preference centre")
        enrollment = Enrollment.objects.get(pk=held.enrollment_id)
    assert enrollment.status == "done"
    _hold_is_over(org, campaign)
    assert _send(org, campaign).skip_reasons == {"suppressed": 1}


def test_removing_a_candidate_whose_email_is_held_skips_it_at_once(org, recruiter_user):
    """An active enrollment whose step 1 is held by a cap: Remove skips that email at once, so
    the campaign page does not show it waiting until the hold is over."""
    _settings(org, sender_daily_cap=1)
    now = timezone.now()
    campaign, _ = launched(
        org,
        recruiter_user,
        [{}, {"delay": timedelta(days=1)}],
        now=now,
        window_days=[],
        candidates=2,
    )
    dispatch_due(now=now)
    assert _send(org, campaign).held == 1
    with scopes_disabled():
        held = Message.objects.get(campaign=campaign, status="queued")
        enrollment = Enrollment.objects.get(pk=held.enrollment_id)
        assert enrollment.status == "active"
        assert sequences.enrollment_remove(enrollment=enrollment, actor=None) is True
    held.refresh_from_db()
    assert (held.status, held.skip_reason) == ("skipped", "enrollment_stopped")
    with scopes_disabled():
        results = campaign_step_results(campaign=campaign)
    assert (results[0]["pending"], results[0]["skipped"]) == (0, 1)


# --- the next step waits for the previous email to leave the outbox ---


def test_held_steps_do_not_pile_up_and_go_out_together_when_the_cap_frees(org, recruiter_user):
    _settings(org, frequency_cap_messages=3, frequency_cap_days=7)
    now = timezone.now()
    campaign, (candidate,) = launched(
        org,
        recruiter_user,
        [{}, {"delay": timedelta(days=1)}, {"delay": timedelta(days=1)}],
        now=now,
        window_days=[],
    )
    # The candidate already had three campaign emails yesterday: at the cap for six more days.
    earlier = []
    for n in range(3):
        email = _earlier_email(org, recruiter_user, candidate, days_ago=1)
        with scopes_disabled():
            Message.objects.filter(pk=email.pk).update(message_id=f"<prior-{n}@acme.example>")
        earlier.append(email)
    dispatch_due(now=now)
    assert (_send(org, campaign).held, len(_messages(campaign))) == (1, 1)
    (step_one,) = _messages(campaign)
    for day in (1, 2):
        dispatch_due(now=now + timedelta(days=day, minutes=day))
        assert _send(org, campaign).held == 0  # nothing new was written
        assert messages_of(campaign) == [(1, "queued")]
    # Step 2 waits for step 1's next attempt, plus its day.
    assert enrollment_of(campaign).next_run_at == step_one.next_attempt_at + timedelta(days=1)

    # The earlier emails leave the window; step 1 comes due (as the sweeper would find it).
    with scopes_disabled():
        Message.objects.filter(pk__in=[e.pk for e in earlier]).update(
            sent_at=timezone.now() - timedelta(days=8)
        )
        Message.objects.filter(campaign=campaign).update(next_attempt_at=timezone.now())
    mail.outbox.clear()
    assert _send(org, campaign).sent == 1
    assert [m.subject for m in mail.outbox] == ["Email 1"]
    step_one.refresh_from_db()
    # Step 2 comes at least a day after step 1 went out (here, where the test released step 1
    # early, when its hold would have ended, plus the day), alone.
    dispatch_due(now=step_one.sent_at + timedelta(hours=23))
    assert messages_of(campaign) == [(1, "sent")]
    run_at = enrollment_of(campaign).next_run_at
    assert run_at >= step_one.sent_at + timedelta(days=1)
    dispatch_due(now=run_at)
    assert messages_of(campaign) == [(1, "sent"), (2, "queued")]
    mail.outbox.clear()
    assert _send(org, campaign).sent == 1
    assert [m.subject for m in mail.outbox] == ["Email 2"]


def test_the_delay_counts_from_when_the_previous_email_went_out(org, recruiter_user):
    campaign, _ = launched(org, recruiter_user, [{}, {"delay": timedelta(days=1)}], window_days=[])
    dispatch_due(now=TUESDAY_10)
    went_out(campaign, TUESDAY_10 + timedelta(hours=6))  # it waited six hours in the outbox
    dispatch_due(now=TUESDAY_10 + timedelta(days=1, minutes=1))
    assert messages_of(campaign) == [(1, "sent")]
    enrollment = enrollment_of(campaign)
    assert (enrollment.due_at, enrollment.next_run_at) == (
        TUESDAY_10 + timedelta(days=1, hours=6),
        TUESDAY_10 + timedelta(days=1, hours=6),
    )
    dispatch_due(now=TUESDAY_10 + timedelta(days=1, hours=6))
    assert messages_of(campaign) == [(1, "sent"), (2, "queued")]


def test_a_late_previous_email_moves_the_next_step_into_the_window(org, recruiter_user):
    """Step 1 (written on Tuesday at 10:00) held until Friday 16:30: step 2, "1 day after",
    is due on Saturday 16:30, outside the window (weekdays 9 to 5, London): Monday 9:00 — not
    Wednesday 10:00, a day after step 1 was written."""
    campaign, _ = launched(org, recruiter_user, [{}, {"delay": timedelta(days=1)}])
    dispatch_due(now=TUESDAY_10)
    went_out(campaign, TUESDAY_10 + timedelta(days=3, hours=6, minutes=30))
    dispatch_due(now=TUESDAY_10 + timedelta(days=3, hours=7))  # Wednesday's due time is past
    assert messages_of(campaign) == [(1, "sent")]
    enrollment = enrollment_of(campaign)
    assert (enrollment.due_at, enrollment.next_run_at) == (
        TUESDAY_10 + timedelta(days=4, hours=6, minutes=30),
        datetime(2026, 3, 9, 9, 0, tzinfo=UTC),
    )


def test_an_email_sent_at_once_keeps_the_step_due_when_it_was_written(org, recruiter_user):
    """The usual case: step 1 went out within a minute of being written; step 2 is rendered
    when it was due, without a second look."""
    campaign, _ = launched(org, recruiter_user, [{}, {"delay": timedelta(days=1)}])
    dispatch_due(now=TUESDAY_10)
    went_out(campaign, TUESDAY_10 + timedelta(seconds=20))
    report = dispatch_due(now=TUESDAY_10 + timedelta(days=1))
    assert report.claimed == 1
    assert messages_of(campaign) == [(1, "sent"), (2, "queued")]


def test_a_send_time_the_dispatcher_cannot_have_seen_is_not_used(org, recruiter_user):
    """A sent_at after the dispatcher's now (the worker's clock is ahead) is not trusted."""
    campaign, _ = launched(org, recruiter_user, [{}, {"delay": timedelta(days=1)}])
    dispatch_due(now=TUESDAY_10)
    went_out(campaign, TUESDAY_10 + timedelta(days=30))
    dispatch_due(now=TUESDAY_10 + timedelta(days=1))
    assert messages_of(campaign) == [(1, "sent"), (2, "queued")]


def test_a_step_without_delay_waits_for_the_previous_email_without_spinning(org, recruiter_user):
    campaign, _ = launched(org, recruiter_user, [{}, {}], window_days=[])
    report = dispatch_due(now=TUESDAY_10)
    # Claimed twice in the round: step 1 rendered, then step 2 (due at once) set aside.
    assert report.claimed == 2
    assert messages_of(campaign) == [(1, "queued")]
    assert enrollment_of(campaign).next_run_at == TUESDAY_10 + PREVIOUS_EMAIL_RECHECK
    went_out(campaign, TUESDAY_10 + timedelta(seconds=10))
    dispatch_due(now=TUESDAY_10 + PREVIOUS_EMAIL_RECHECK)
    assert messages_of(campaign) == [(1, "sent"), (2, "queued")]


def test_a_branch_is_not_judged_on_an_email_still_in_the_outbox(org, recruiter_user):
    campaign, _ = launched(
        org,
        recruiter_user,
        [{}, {"delay": timedelta(days=1), "condition": "not_opened"}],
        window_days=[],
    )
    dispatch_due(now=TUESDAY_10)
    with scopes_disabled():  # held by a cap until Thursday
        Message.objects.filter(campaign=campaign).update(
            next_attempt_at=TUESDAY_10 + timedelta(days=2)
        )
    dispatch_due(now=TUESDAY_10 + timedelta(days=1))
    # Not rendered (the candidate has not had step 1, so has not opened it), not decided.
    enrollment = enrollment_of(campaign)
    assert messages_of(campaign) == [(1, "queued")]
    assert (enrollment.status, enrollment.stop_reason) == ("active", "")
    assert enrollment.next_run_at == TUESDAY_10 + timedelta(days=3)
    # Step 1 goes out on Thursday and is opened: step 2 is not needed.
    went_out(campaign, TUESDAY_10 + timedelta(days=2))
    with scopes_disabled():
        Message.objects.filter(campaign=campaign).update(
            opened_at=TUESDAY_10 + timedelta(days=2, hours=1)
        )
    dispatch_due(now=TUESDAY_10 + timedelta(days=3))
    enrollment = enrollment_of(campaign)
    assert messages_of(campaign) == [(1, "sent")]
    assert (enrollment.status, enrollment.stop_reason) == ("done", "engaged")


def test_a_step_after_a_task_waits_for_the_task_not_the_email_before_it(org, recruiter_user):
    """The delay counts from the previous step: after a task step, from the task (the email
    before it went out long ago, late: that is not re-counted)."""
    from campaigns.models import Step

    campaign, _ = launched(
        org,
        recruiter_user,
        [
            {},
            {"kind": Step.Kind.TASK, "delay": timedelta(days=1)},
            {"delay": timedelta(days=1)},
        ],
        window_days=[],
    )
    dispatch_due(now=TUESDAY_10)
    went_out(campaign, TUESDAY_10 + timedelta(hours=12))
    dispatch_due(now=TUESDAY_10 + timedelta(days=1))
    assert enrollment_of(campaign).current_step.position == 2  # waits for 12 hours after
    dispatch_due(now=TUESDAY_10 + timedelta(days=1, hours=12))
    enrollment = enrollment_of(campaign)
    assert (enrollment.current_step.position, enrollment.next_run_at) == (
        3,
        TUESDAY_10 + timedelta(days=2, hours=12),
    )
    dispatch_due(now=TUESDAY_10 + timedelta(days=2, hours=12))
    assert [position for position, _ in messages_of(campaign)] == [1, 3]


def _queries_to_dispatch_step_two(org, user, *, candidates: int, tag: str) -> int:
    make_candidates(org, candidates, tags=[tag])
    campaign = make_sequence(
        org, user=user, steps=[{}, {"delay": timedelta(days=1)}], tag=tag, window_days=[]
    )
    from campaigns.services.campaigns import campaign_launch

    with scopes_disabled():
        campaign_launch(campaign=campaign, user=user, now=TUESDAY_10)
    dispatch_due(now=TUESDAY_10)
    with scopes_disabled():  # half went out late, half are still held
        ids = list(Message.objects.filter(campaign=campaign).values_list("pk", flat=True))
        Message.objects.filter(pk__in=ids[::2]).update(
            status="sent", sent_at=TUESDAY_10 + timedelta(hours=6)
        )
        Message.objects.filter(pk__in=ids[1::2]).update(
            next_attempt_at=TUESDAY_10 + timedelta(days=2)
        )
    with CaptureQueriesContext(connection) as queries:
        report = dispatch_due(now=TUESDAY_10 + timedelta(days=1, minutes=1))
    assert (report.claimed, report.messages_created) == (candidates, 0)
    return len(queries)


def test_waiting_for_the_previous_email_costs_no_query_per_enrollment(org, recruiter_user):
    two = _queries_to_dispatch_step_two(org, recruiter_user, candidates=2, tag="two")
    six = _queries_to_dispatch_step_two(org, recruiter_user, candidates=6, tag="six")
    assert six == two


def test_the_remove_button_shows_while_the_last_email_waits(org, recruiter_user, recruiter_client):
    campaign, _ = _last_step_held(org, recruiter_user)
    enrollment = enrollment_of(campaign)
    remove = url("enrollment_remove", org, campaign.pk, enrollment.pk)
    page = recruiter_client.get(url("detail", org, campaign.pk)).content.decode()
    assert remove in page
    _hold_is_over(org, campaign)
    assert _send(org, campaign).sent == 1
    page = recruiter_client.get(url("detail", org, campaign.pk)).content.decode()
    assert remove not in page  # it has gone: nothing left to remove
