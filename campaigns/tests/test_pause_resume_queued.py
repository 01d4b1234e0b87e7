"""Resuming a paused sequence with "reschedule": emails rendered before the pause keep their wait
too, and the count shown before resuming includes them."""

from datetime import UTC, datetime, timedelta

from django_scopes import scopes_disabled

from campaigns.models import Message
from campaigns.services import sequences
from campaigns.services.dispatch import dispatch_due
from campaigns.tests.test_sequences import TUESDAY_10, launched

PAUSED_AT = TUESDAY_10 + timedelta(hours=1)
MONDAY_10 = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)


def _paused_with_queued_emails(org, user):
    """Two candidates; step 1 rendered and queued for both, one of those held (by a cap, say)
    until an hour after the pause began; then the campaign is paused."""
    campaign, _ = launched(org, user, [{}, {"delay": timedelta(days=2)}], candidates=2)
    dispatch_due(now=TUESDAY_10)
    with scopes_disabled():
        due_at_pause, held = Message.objects.filter(campaign=campaign).order_by("pk")
        Message.objects.filter(pk=held.pk).update(next_attempt_at=PAUSED_AT + timedelta(hours=1))
        Message.objects.filter(campaign=campaign).update(enqueued_at=None)
        sequences.campaign_pause(campaign=campaign, user=user, now=PAUSED_AT)
    return campaign, due_at_pause, held


def _next_attempts(campaign) -> dict[int, datetime | None]:
    with scopes_disabled():
        return dict(
            Message.objects.filter(campaign=campaign, status="queued").values_list(
                "pk", "next_attempt_at"
            )
        )


def test_overdue_count_includes_emails_waiting_since_before_the_pause(org, recruiter_user):
    campaign, _, _ = _paused_with_queued_emails(org, recruiter_user)
    with scopes_disabled():
        # Monday: both steps 2 (due Thursday) and both queued emails are overdue.
        assert sequences.campaign_overdue_count(campaign=campaign, now=MONDAY_10) == 4
        # Ten minutes into the pause only the email that was due when it began is.
        soon = PAUSED_AT + timedelta(minutes=10)
        assert sequences.campaign_overdue_count(campaign=campaign, now=soon) == 1


def test_reschedule_keeps_the_wait_queued_emails_had_left(org, recruiter_user):
    campaign, due_at_pause, held = _paused_with_queued_emails(org, recruiter_user)
    with scopes_disabled():
        sequences.campaign_resume(
            campaign=campaign, user=recruiter_user, overdue="reschedule", now=MONDAY_10
        )
    assert _next_attempts(campaign) == {
        due_at_pause.pk: MONDAY_10,  # it was due when the campaign was paused: now
        held.pk: MONDAY_10 + timedelta(hours=1),  # it had an hour left
    }
    report = dispatch_due(now=MONDAY_10)
    assert report.requeued == 1  # only the email that was due; no burst of the held one


def test_send_now_leaves_queued_emails_due(org, recruiter_user):
    campaign, due_at_pause, held = _paused_with_queued_emails(org, recruiter_user)
    with scopes_disabled():
        sequences.campaign_resume(
            campaign=campaign, user=recruiter_user, overdue="send_now", now=MONDAY_10
        )
    assert _next_attempts(campaign) == {
        due_at_pause.pk: None,
        held.pk: PAUSED_AT + timedelta(hours=1),
    }
    assert dispatch_due(now=MONDAY_10).requeued == 2
