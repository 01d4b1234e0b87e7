"""A broadcast scheduled for later: launched now, it waits for its time, then goes to its
audience exactly once."""

from collections import Counter
from datetime import timedelta

from django.core import mail
from django.utils import timezone
from django_scopes import scopes_disabled

from campaigns.models import Campaign, Message
from campaigns.services.campaigns import campaign_create_broadcast, campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.tests.factories import (
    EmailTemplateFactory,
    SavedSearchFactory,
    make_candidates,
    send_all,
)


def _outbox(campaign):
    with scopes_disabled():
        status = Campaign.objects.get(pk=campaign.pk).status
        messages = Counter(
            Message.objects.filter(campaign=campaign).values_list("candidate__email", flat=True)
        )
    sent = Counter(address for email in mail.outbox for address in email.to)
    return status, messages, sent


def test_a_scheduled_broadcast_waits_for_its_time_then_sends_once(org, recruiter_user, in_org):
    audience = make_candidates(org, 3)
    make_candidates(org, 2, tags=["other"])  # not in the audience
    launched_at = timezone.now()
    send_at = launched_at + timedelta(hours=2)
    with in_org():
        campaign = campaign_create_broadcast(  # as the "send at a time I choose" form does
            organization=org,
            user=recruiter_user,
            name="Thursday news",
            topic="jobs",
            template=EmailTemplateFactory(organization=org),
            saved_searches=[
                SavedSearchFactory(
                    organization=org, owner=recruiter_user, query={"tags": ["newsletter"]}
                )
            ],
            scheduled_at=send_at,
        )
        enrolled = campaign_launch(campaign=campaign, user=recruiter_user, now=launched_at)
    assert enrolled == 3

    # Before its time: beat's round on the real clock, and one a second before the time,
    # claim nothing, write no Message and send nothing.
    early = [dispatch_due(), dispatch_due(now=send_at - timedelta(seconds=1))]
    send_all(org, campaign)
    assert [(r.claimed, r.messages_created, r.tasks_queued) for r in early] == [(0, 0, 0)] * 2
    assert _outbox(campaign) == (Campaign.Status.SCHEDULED, Counter(), Counter())

    # The clock moves past the time: the next round renders one email per candidate…
    due = dispatch_due(now=send_at + timedelta(seconds=30))
    once = Counter({candidate.email: 1 for candidate in audience})
    assert (due.claimed, due.messages_created) == (3, 3)
    assert _outbox(campaign) == (Campaign.Status.RUNNING, once, Counter())
    send_all(org, campaign)  # …which the send task sends, finishing the campaign
    assert _outbox(campaign) == (Campaign.Status.DONE, once, once)

    # …and later rounds (and sending the campaign's messages again) add nothing.
    later = dispatch_due(now=send_at + timedelta(days=1))
    send_all(org, campaign)
    assert (later.claimed, later.messages_created) == (0, 0)
    assert _outbox(campaign) == (Campaign.Status.DONE, once, once)
