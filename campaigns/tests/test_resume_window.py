"""Resuming a paused sequence: its queued emails wait for the sending window (in each candidate's
time zone when the sequence uses it), and "reschedule" moves a candidate who joined, or an email
rendered, during the pause only by the time it waited on the pause. Only the clock is controlled
(`now=`, `timezone.now`); the dispatcher, the services and PostgreSQL are real."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_scopes import scopes_disabled

from campaigns.models import Enrollment, Message
from campaigns.services import sequences
from campaigns.services.campaigns import campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.tests.factories import make_candidates
from campaigns.tests.test_sequences import TUESDAY_10, enrollment_of, launched, make_sequence
from candidates.models import Candidate

# The organisation's zone is UTC, London's in March; the window is Mon to Fri, 09:00 to 17:00.
PAUSED_AT = TUESDAY_10 + timedelta(hours=1)
FRIDAY_1630 = datetime(2026, 3, 6, 16, 30, tzinfo=UTC)
SATURDAY_10 = datetime(2026, 3, 7, 10, 0, tzinfo=UTC)
MONDAY_9 = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
MONDAY_10 = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
MONDAY_0900_NEW_YORK = datetime(2026, 3, 9, 13, 0, tzinfo=UTC)  # EDT since 8 March
TUESDAY_0900_TOKYO = datetime(2026, 3, 10, 0, 0, tzinfo=UTC)


def _paused_with_queued_emails(org, user, *, candidates=2, tag="newsletter", **fields):
    """Step 1 rendered and queued Tuesday 10:00 for every candidate (tagged `tag`), step 2 two
    days later; the campaign is paused at 11:00 before the send task ran."""
    people = make_candidates(org, candidates, tags=(tag,))
    campaign = make_sequence(
        org, user=user, steps=[{}, {"delay": timedelta(days=2)}], tag=tag, **fields
    )
    with scopes_disabled():
        campaign_launch(campaign=campaign, user=user, now=TUESDAY_10)
    dispatch_due(now=TUESDAY_10)
    with scopes_disabled():
        Message.objects.filter(campaign=campaign).update(enqueued_at=None)
        sequences.campaign_pause(campaign=campaign, user=user, now=PAUSED_AT)
    return campaign, people


def _resume(campaign, user, overdue, now):
    with scopes_disabled():
        sequences.campaign_resume(campaign=campaign, user=user, overdue=overdue, now=now)


def _waits(campaign) -> dict[int, datetime | None]:
    """Candidate id → when their queued email may go out."""
    with scopes_disabled():
        return dict(
            Message.objects.filter(campaign=campaign, status=Message.Status.QUEUED).values_list(
                "candidate_id", "next_attempt_at"
            )
        )


@pytest.mark.parametrize("overdue", ["reschedule", "send_now"])
def test_resume_at_the_weekend_holds_queued_emails_until_the_window_opens(
    org, recruiter_user, overdue
):
    campaign, (ann, bob) = _paused_with_queued_emails(org, recruiter_user)

    _resume(campaign, recruiter_user, overdue, SATURDAY_10)

    assert _waits(campaign) == {ann.pk: MONDAY_9, bob.pk: MONDAY_9}
    assert dispatch_due(now=SATURDAY_10).requeued == 0
    assert dispatch_due(now=MONDAY_9).requeued == 2


def test_resume_inside_the_window_leaves_queued_emails_due(org, recruiter_user):
    campaign, (ann, bob) = _paused_with_queued_emails(org, recruiter_user)

    _resume(campaign, recruiter_user, "send_now", MONDAY_10)

    assert _waits(campaign) == {ann.pk: None, bob.pk: None}
    assert dispatch_due(now=MONDAY_10).requeued == 2


def test_reschedule_moves_a_held_email_that_the_pause_pushes_past_closing_time(org, recruiter_user):
    # Bob's email was held (by a cap, say) until an hour after the pause began: resumed Friday
    # 16:30, that hour ends after the window closes, so it waits for Monday; Ann's, due when
    # the campaign was paused, goes now.
    campaign, (ann, bob) = _paused_with_queued_emails(org, recruiter_user)
    with scopes_disabled():
        Message.objects.filter(candidate=bob).update(next_attempt_at=PAUSED_AT + timedelta(hours=1))

    _resume(campaign, recruiter_user, "reschedule", FRIDAY_1630)

    assert _waits(campaign) == {ann.pk: FRIDAY_1630, bob.pk: MONDAY_9}
    assert dispatch_due(now=FRIDAY_1630).requeued == 1


def test_resume_holds_queued_emails_until_the_window_opens_in_each_candidates_time_zone(
    org, recruiter_user
):
    # Resumed Monday 10:00 UTC: open in London (the organisation's zone, for a candidate with
    # none), 06:00 in New York, 19:00 in Tokyo.
    campaign, (ann, bob, chie) = _paused_with_queued_emails(
        org, recruiter_user, candidates=3, use_candidate_time_zone=True
    )
    with scopes_disabled():
        Candidate.objects.filter(pk=bob.pk).update(time_zone="America/New_York")
        Candidate.objects.filter(pk=chie.pk).update(time_zone="Asia/Tokyo")

    _resume(campaign, recruiter_user, "send_now", MONDAY_10)

    assert _waits(campaign) == {
        ann.pk: None,
        bob.pk: MONDAY_0900_NEW_YORK,
        chie.pk: TUESDAY_0900_TOKYO,
    }


def _resume_queries(org, user, *, candidates) -> int:
    campaign, people = _paused_with_queued_emails(
        org, user, candidates=candidates, tag=f"batch-{candidates}", use_candidate_time_zone=True
    )
    with scopes_disabled():
        for index, person in enumerate(people):
            person.time_zone = "America/New_York" if index % 2 else "Asia/Tokyo"
        Candidate.objects.bulk_update(people, ["time_zone"])
    with CaptureQueriesContext(connection) as queries:
        _resume(campaign, user, "send_now", SATURDAY_10)
    assert set(_waits(campaign).values()) == {
        datetime(2026, 3, 9, 13, 0, tzinfo=UTC),  # Monday 09:00 in New York
        datetime(2026, 3, 9, 0, 0, tzinfo=UTC),  # Monday 09:00 in Tokyo
    }
    return len(queries)


def test_resume_moves_queued_emails_with_as_many_queries_however_many_there_are(
    org, recruiter_user
):
    assert _resume_queries(org, recruiter_user, candidates=2) == _resume_queries(
        org, recruiter_user, candidates=6
    )


def test_reschedule_moves_a_candidate_who_joined_during_the_pause_by_the_time_it_waited(
    org, recruiter_user, monkeypatch
):
    # Each step waits two hours. Ann joined at the launch: paused an hour before her step, she
    # has that hour left on Monday 10:00. Bob joined Monday 09:00 during the pause and waited
    # one hour of it: he keeps the two hours from now, not a week more.
    campaign, (ann,) = launched(org, recruiter_user, [{"delay": timedelta(hours=2)}])
    with scopes_disabled():
        sequences.campaign_pause(campaign=campaign, user=recruiter_user, now=PAUSED_AT)
    (bob,) = make_candidates(org, 1)
    monkeypatch.setattr(timezone, "now", lambda: MONDAY_9)  # when the enrollment is stamped
    with scopes_disabled():
        assert sequences.sequence_enroll(campaign=campaign, candidate_ids=[bob.pk], now=MONDAY_9)
    monkeypatch.undo()

    _resume(campaign, recruiter_user, "reschedule", MONDAY_10)

    assert enrollment_of(campaign, ann).next_run_at == MONDAY_10 + timedelta(hours=1)
    assert enrollment_of(campaign, bob).next_run_at == MONDAY_10 + timedelta(hours=2)
    assert dispatch_due(now=MONDAY_10).claimed == 0  # nothing bursts out on resume


def test_reschedule_moves_an_email_rendered_during_the_pause_by_the_time_it_waited(
    org, recruiter_user
):
    # Bob's email was rendered Monday 09:00 (a chunk that was being rendered as the pause
    # came, say) and held until 09:30: it keeps its half hour from now.
    campaign, (ann, bob) = _paused_with_queued_emails(org, recruiter_user)
    with scopes_disabled():
        Message.objects.filter(candidate=bob).update(
            created_at=MONDAY_9, next_attempt_at=MONDAY_9 + timedelta(minutes=30)
        )

    _resume(campaign, recruiter_user, "reschedule", MONDAY_10)

    assert _waits(campaign) == {ann.pk: MONDAY_10, bob.pk: MONDAY_10 + timedelta(minutes=30)}


def test_reschedule_keeps_an_enrollment_stamped_after_now_from_moving_earlier(org, recruiter_user):
    # An enrollment stamped later than the resume's `now` (another server's clock) waited no
    # time on the pause: it keeps its time, never earlier.
    campaign, (ann,) = launched(org, recruiter_user, [{"delay": timedelta(hours=2)}])
    with scopes_disabled():
        sequences.campaign_pause(campaign=campaign, user=recruiter_user, now=PAUSED_AT)
        Enrollment.objects.filter(campaign=campaign).update(
            enrolled_at=MONDAY_10 + timedelta(minutes=5), next_run_at=MONDAY_10 + timedelta(hours=3)
        )

    _resume(campaign, recruiter_user, "reschedule", MONDAY_10)

    assert enrollment_of(campaign, ann).next_run_at == MONDAY_10 + timedelta(hours=3)
