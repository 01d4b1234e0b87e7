"""A campaign's stored status is honest: a broadcast is "sending" (running) until every one of
its emails has reached a final state, then "done" — set by the send task that finishes the
last chunk, and by the dispatcher as a catch-up. Sequences are done when no enrollment is
active and nothing waits in the outbox."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns.models import Campaign, Message, Suppression
from campaigns.services.campaigns import campaign_launch, campaigns_finish
from campaigns.services.dispatch import dispatch_due
from campaigns.services.sending import messages_send
from campaigns.tests.backends import ScriptedBackend, deferred
from campaigns.tests.factories import make_broadcast, make_candidates
from campaigns.tests.test_sequences import TUESDAY_10
from campaigns.tests.test_sequences import launched as launched_sequence

pytestmark = pytest.mark.django_db


@pytest.fixture
def broadcast(org, recruiter_user):
    """A broadcast to four candidates, launched and dispatched: four queued messages."""
    make_candidates(org, 4)
    campaign = make_broadcast(org, user=recruiter_user)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)
    dispatch_due()
    return campaign


def _ids(campaign, status=Message.Status.QUEUED) -> list[int]:
    with scopes_disabled():
        return list(
            Message.objects.filter(campaign=campaign, status=status)
            .order_by("pk")
            .values_list("pk", flat=True)
        )


def _send(org, ids):
    with scope(organization=org):
        return messages_send(organization=org, message_ids=ids)


def _status(campaign) -> tuple[str, object]:
    with scopes_disabled():
        campaign.refresh_from_db()
    return campaign.status, campaign.finished_at


def test_broadcast_is_sending_while_its_emails_are_written_but_not_sent(broadcast):
    assert len(_ids(broadcast)) == 4
    assert _status(broadcast) == (Campaign.Status.RUNNING, None)


def test_broadcast_is_done_when_the_last_chunk_is_sent(broadcast, org):
    first, second = _ids(broadcast)[:2], _ids(broadcast)[2:]

    _send(org, first)
    after_first = _status(broadcast)[0]
    _send(org, second)

    status, finished_at = _status(broadcast)
    assert (after_first, status) == (Campaign.Status.RUNNING, Campaign.Status.DONE)
    assert finished_at is not None


def test_failed_and_skipped_emails_are_final(broadcast, org):
    with scopes_disabled():
        first, second = Message.objects.filter(campaign=broadcast).order_by("pk")[:2]
        Suppression.objects.create(organization=org, email=first.to_email.lower(), reason="manual")
        Message.objects.filter(pk=second.pk).update(status=Message.Status.FAILED)

    _send(org, _ids(broadcast))

    with scopes_disabled():
        first.refresh_from_db()
    assert first.status == Message.Status.SKIPPED
    assert _status(broadcast)[0] == Campaign.Status.DONE


def test_an_email_waiting_for_a_retry_keeps_the_broadcast_sending(broadcast, org, settings):
    settings.EMAIL_BACKEND = "campaigns.tests.backends.ScriptedBackend"
    ScriptedBackend.script = [deferred(), None, None, None]

    report = _send(org, _ids(broadcast))

    assert (report.sent, report.retried) == (3, 1)
    assert _status(broadcast)[0] == Campaign.Status.RUNNING
    # The retry is due later; the dispatcher's catch-up does not finish it either.
    dispatch_due()
    assert _status(broadcast)[0] == Campaign.Status.RUNNING

    with scopes_disabled():
        Message.objects.filter(campaign=broadcast).update(next_attempt_at=timezone.now())
    _send(org, _ids(broadcast))
    assert _status(broadcast)[0] == Campaign.Status.DONE


def test_dispatcher_finishes_a_broadcast_whose_last_task_did_not(broadcast):
    # The last chunk's results were recorded but its worker was lost before it looked.
    with scopes_disabled():
        Message.objects.filter(campaign=broadcast).update(
            status=Message.Status.SENT, sent_at=timezone.now()
        )
    assert _status(broadcast)[0] == Campaign.Status.RUNNING

    dispatch_due()

    assert _status(broadcast)[0] == Campaign.Status.DONE


def test_finishing_is_idempotent(broadcast, org):
    _send(org, _ids(broadcast))
    finished_at = _status(broadcast)[1]

    again = campaigns_finish(campaign_ids=[broadcast.pk], now=timezone.now() + timedelta(hours=1))
    dispatch_due()

    assert again == 0
    assert _status(broadcast) == (Campaign.Status.DONE, finished_at)


def test_a_paused_broadcast_is_not_finished(broadcast, org):
    with scopes_disabled():
        Message.objects.filter(campaign=broadcast).update(status=Message.Status.SENT)
        Campaign.objects.filter(pk=broadcast.pk).update(status=Campaign.Status.PAUSED)

    assert campaigns_finish() == 0
    assert _status(broadcast)[0] == Campaign.Status.PAUSED


def test_sequence_is_done_when_no_enrollment_is_active_and_its_last_email_is_sent(
    org, recruiter_user, monkeypatch
):
    campaign, _ = launched_sequence(org, recruiter_user, [{}, {"delay": timedelta(days=1)}])
    dispatch_due(now=TUESDAY_10)
    monkeypatch.setattr(timezone, "now", lambda: TUESDAY_10)  # sent inside the window
    _send(org, _ids(campaign))
    assert _status(campaign)[0] == Campaign.Status.RUNNING  # an enrollment is still active

    wednesday_10 = TUESDAY_10 + timedelta(days=1)
    dispatch_due(now=wednesday_10)
    assert _status(campaign)[0] == Campaign.Status.RUNNING  # its last email is in the outbox
    monkeypatch.setattr(timezone, "now", lambda: wednesday_10)
    _send(org, _ids(campaign))

    assert _status(campaign)[0] == Campaign.Status.DONE


def test_campaign_page_shows_the_stored_status(broadcast, org, recruiter_client):
    page = recruiter_client.get(reverse("campaigns:detail", args=[org.slug, broadcast.pk]))
    assert "campaign-status-running" in page.content.decode()

    _send(org, _ids(broadcast))
    page = recruiter_client.get(reverse("campaigns:detail", args=[org.slug, broadcast.pk]))

    assert "campaign-status-done" in page.content.decode()
