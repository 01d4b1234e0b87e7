"""A provider's throttling (HTTP 429) never drops a message: throttled messages wait in the
queue and go out later, exactly once. The ESP is the outside world here: a local HTTP server
that answers like Postmark's API (the `postmark` fixture), scripted to answer 429 instead; the
clock is frozen and moved on by the tests."""

from datetime import timedelta
from email.utils import format_datetime

import pytest
from django.utils import timezone
from django_scopes import scopes_disabled

from campaigns.conf import MAX_ATTEMPTS
from campaigns.models import Message
from campaigns.services.campaigns import campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.tests.factories import make_broadcast, make_candidates, send_all


class Clock:
    def __init__(self):
        self.now = timezone.now().replace(microsecond=0)

    def move(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock(monkeypatch):
    """`timezone.now()` frozen at the start of the test; `clock.move(...)` moves it on."""
    frozen = Clock()
    monkeypatch.setattr(timezone, "now", lambda: frozen.now)
    return frozen


@pytest.fixture
def five_queued(org, recruiter_user, in_org, clock):
    """A broadcast to five candidates, launched and dispatched: five queued messages."""
    make_candidates(org, 5)
    campaign = make_broadcast(org, user=recruiter_user)
    with in_org():
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
    return campaign


def _messages(campaign) -> list[Message]:
    with scopes_disabled():
        return list(Message.objects.filter(campaign=campaign).order_by("pk"))


def test_throttled_send_stops_the_chunk_and_queues_the_rest_for_later(
    five_queued, org, postmark, clock
):
    postmark.answers = [200, 429]
    report = send_all(org, five_queued)
    first, *rest = _messages(five_queued)

    assert len(postmark.requests) == 2  # nothing more to the provider once it throttled
    assert (first.status, first.attempts) == (Message.Status.SENT, 1)
    assert [(m.status, m.attempts, m.enqueued_at) for m in rest] == [("queued", 0, None)] * 4
    assert {m.next_attempt_at for m in rest} == {clock.now + timedelta(minutes=1)}
    assert {m.last_error for m in rest} == {
        "Waiting: the email provider is throttling sends, 1 in a row"
    }
    assert (report.sent, report.provider_throttled, report.retried, report.failed) == (1, 4, 0, 0)


def test_throttled_messages_are_not_sent_before_their_time(five_queued, org, postmark, clock):
    postmark.answers = [429]
    send_all(org, five_queued)
    clock.move(timedelta(seconds=59))

    assert dispatch_due().requeued == 0
    assert send_all(org, five_queued).sent == 0
    assert len(postmark.requests) == 1


def test_throttling_never_fails_a_message_and_backs_off_up_to_fifteen_minutes(
    launched_broadcast, org, postmark, clock
):
    campaign, _ = launched_broadcast
    postmark.always = 429
    waits = []
    for _ in range(MAX_ATTEMPTS + 3):
        send_all(org, campaign)
        first = _messages(campaign)[0]
        waits.append(first.next_attempt_at - clock.now)
        clock.move(first.next_attempt_at - clock.now)

    messages = _messages(campaign)
    assert [(m.status, m.attempts) for m in messages] == [("queued", 0)] * 3
    assert [int(wait.total_seconds() // 60) for wait in waits] == [1, 2, 4, 8, 15, 15, 15, 15, 15]
    assert "9 in a row" in messages[0].last_error
    assert len(postmark.requests) == MAX_ATTEMPTS + 3  # one request per task, then it stops


def test_throttled_messages_go_out_exactly_once_when_the_provider_accepts_again(
    five_queued, org, postmark, clock
):
    stored_ids = {m.to_email: m.message_id for m in _messages(five_queued)}
    postmark.answers = [200, 429]
    send_all(org, five_queued)
    clock.move(timedelta(minutes=1))

    assert dispatch_due().requeued == 4  # the sweeper hands them to a new task when due
    report = send_all(org, five_queued)
    again = send_all(org, five_queued)  # a duplicate task: nothing left to send
    messages = _messages(five_queued)

    assert (report.sent, again.sent) == (4, 0)
    assert postmark.recipients[:2] == [m.to_email for m in messages[:2]]  # 200, then 429
    assert postmark.recipients[2:] == [m.to_email for m in messages[1:]]  # the rest, once each
    assert [(m.status, m.attempts, m.last_error) for m in messages] == [("sent", 1, "")] * 5
    assert {m.esp_message_id for m in messages} == set(postmark.message_ids.values())
    assert all(r["Message-ID"] == stored_ids[r["To"]] for r in postmark.requests)


@pytest.mark.parametrize("as_date", [False, True])
def test_throttled_messages_wait_for_the_providers_retry_after(
    launched_broadcast, org, postmark, clock, as_date
):
    campaign, _ = launched_broadcast
    later = clock.now + timedelta(minutes=7)
    retry_after = format_datetime(later, usegmt=True) if as_date else "420"
    postmark.answers = [(429, {"Retry-After": retry_after})]
    send_all(org, campaign)

    assert {(m.status, m.next_attempt_at) for m in _messages(campaign)} == {("queued", later)}


def test_other_provider_errors_still_count_as_attempts(launched_broadcast, org, postmark, clock):
    campaign, _ = launched_broadcast
    postmark.answers = [503]
    report = send_all(org, campaign)
    first, *rest = _messages(campaign)

    assert (report.sent, report.retried, report.provider_throttled) == (2, 1, 0)
    assert (first.status, first.attempts) == (Message.Status.QUEUED, 1)
    assert [m.status for m in rest] == ["sent", "sent"]
