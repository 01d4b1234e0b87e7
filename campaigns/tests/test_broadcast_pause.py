"""A broadcast can be paused like a sequence: a scheduled one before its time, a running one
while its emails go out; resuming sends what waits (and keeps a scheduled time still to
come)."""

from datetime import timedelta

from django.core import mail
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns.models import Campaign, Message
from campaigns.services.campaigns import campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.tests.factories import make_broadcast, make_candidates, send_all


def _url(name, org, campaign):
    return reverse(f"campaigns:{name}", args=[org.slug, campaign.pk])


def _status(campaign) -> str:
    with scopes_disabled():
        return Campaign.objects.get(pk=campaign.pk).status


def test_a_scheduled_broadcast_paused_before_its_time_sends_nothing_until_resumed(
    org, recruiter_user, recruiter_client, monkeypatch
):
    make_candidates(org, 2)
    when = timezone.now() + timedelta(days=2)
    campaign = make_broadcast(org, user=recruiter_user, scheduled_at=when)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)
    detail = recruiter_client.get(_url("detail", org, campaign)).content.decode()
    assert f'action="{_url("pause", org, campaign)}"' in detail

    response = recruiter_client.post(_url("pause", org, campaign), follow=True)

    page = response.content.decode()
    assert "Paused: no email goes out until you resume it." in page
    assert "no email goes out until the campaign is resumed" in page
    assert f'href="{_url("resume", org, campaign)}"' in page
    assert _status(campaign) == Campaign.Status.PAUSED
    with scope(organization=org):
        dispatch_due(now=when + timedelta(minutes=5))  # its time comes while paused
        assert Message.objects.filter(campaign=campaign).count() == 0

    # Resumed before its time: it waits for it, and says so.
    resume_page = recruiter_client.get(_url("resume", org, campaign)).content.decode()
    assert "Resuming keeps the scheduled time" in resume_page
    assert 'name="overdue"' not in resume_page  # a sequence's question, not a broadcast's
    recruiter_client.post(_url("resume", org, campaign))
    assert _status(campaign) == Campaign.Status.SCHEDULED

    later = when + timedelta(minutes=5)
    monkeypatch.setattr(timezone, "now", lambda: later)
    with scope(organization=org):
        dispatch_due(now=later)
    assert send_all(org, campaign).sent == 2
    assert len(mail.outbox) == 2


def test_a_running_broadcast_paused_mid_send_holds_its_queued_emails(
    org, recruiter_user, recruiter_client
):
    make_candidates(org, 3)
    campaign = make_broadcast(org, user=recruiter_user)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
    recruiter_client.post(_url("pause", org, campaign))

    held = send_all(org, campaign)

    assert (held.sent, mail.outbox) == (0, [])
    resume_page = recruiter_client.get(_url("resume", org, campaign)).content.decode()
    assert '<span class="overdue-count">3</span> emails are waiting to go out.' in resume_page
    recruiter_client.post(_url("resume", org, campaign))
    assert _status(campaign) == Campaign.Status.RUNNING
    with scope(organization=org):
        dispatch_due()
    assert send_all(org, campaign).sent == 3


def test_viewers_cannot_pause_a_broadcast(org, recruiter_user, viewer_client):
    make_candidates(org, 1)
    campaign = make_broadcast(org, user=recruiter_user)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)
    assert 'pause/"' not in viewer_client.get(_url("detail", org, campaign)).content.decode()
    assert viewer_client.post(_url("pause", org, campaign)).status_code == 403
    assert _status(campaign) == Campaign.Status.RUNNING


def test_a_pause_while_its_first_chunk_is_rendered_is_not_undone(org, recruiter_user, monkeypatch):
    """The dispatcher read the campaign as scheduled; the recruiter paused it while the chunk
    was being rendered: the chunk's end must not set it running again."""
    from campaigns.services import messages as message_service

    make_candidates(org, 2)
    when = timezone.now() + timedelta(hours=1)
    campaign = make_broadcast(org, user=recruiter_user, scheduled_at=when)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)
    insert = message_service.messages_insert

    def paused_meanwhile(rows, **kwargs):
        Campaign.objects.filter(pk=campaign.pk).update(
            status=Campaign.Status.PAUSED, paused_at=timezone.now()
        )
        return insert(rows, **kwargs)

    monkeypatch.setattr(message_service, "messages_insert", paused_meanwhile)
    with scope(organization=org):
        dispatch_due(now=when + timedelta(minutes=1))

    assert _status(campaign) == Campaign.Status.PAUSED
    assert send_all(org, campaign).sent == 0
