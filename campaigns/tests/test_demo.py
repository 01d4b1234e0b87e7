from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django_scopes import scopes_disabled

from analytics.models import EngagementEvent
from campaigns.demo_broadcast import NAME
from campaigns.demo_preferences import NAME as DEMO_TARGETED
from campaigns.models import (
    Campaign,
    CandidateEmailPreference,
    EmailTemplate,
    InboundEmail,
    Message,
    SendingDomain,
    Suppression,
)
from campaigns.tests.factories import profile_email_preferences
from candidates.models import Activity

pytestmark = pytest.mark.django_db


def test_seed_demo_has_templates_and_a_sent_broadcast_with_realistic_events(client):
    call_command("seed_demo", stdout=StringIO())

    with scopes_disabled():
        campaign = Campaign.objects.get(name=NAME)
        messages = Message.objects.filter(campaign=campaign)
        statuses = set(messages.values_list("status", flat=True))
        events = EngagementEvent.objects.filter(campaign=campaign)
        human_opens = events.filter(kind="opened", is_machine=False).count()
        machine_opens = events.filter(kind="opened", is_machine=True).count()
        assert EmailTemplate.objects.filter(organization=campaign.organization).count() >= 2
        # The demo launches campaigns: its sender domain is marked verified (demo only).
        assert SendingDomain.objects.filter(
            organization=campaign.organization,
            domain="northwind.example",
            verified_at__isnull=False,
        ).exists()
        assert campaign.status == Campaign.Status.DONE
        assert messages.count() >= 10
        assert statuses == {Message.Status.DELIVERED, Message.Status.BOUNCED}
        assert messages.filter(clicked_at__isnull=False).exists()
        assert machine_opens == 1
        assert human_opens == messages.filter(opened_at__isnull=False).count()
        clicker = messages.filter(clicked_at__isnull=False).first().candidate
        assert set(clicker.activities.values_list("kind", flat=True)) >= {
            "email_sent",
            "email_opened",
            "email_clicked",
        }
        assert set(
            Suppression.objects.filter(organization=campaign.organization).values_list(
                "reason", flat=True
            )
        ) >= {Suppression.Reason.BOUNCED, Suppression.Reason.UNSUBSCRIBED}
        # A reply and an out-of-office came back through the inbound path.
        inbound = list(
            InboundEmail.objects.filter(message__campaign=campaign).values_list(
                "is_auto_reply", "candidate_id"
            )
        )
        assert sorted(flag for flag, _ in inbound) == [False, True]
        assert messages.filter(replied_at__isnull=False).count() == 1
        away = next(candidate for flag, candidate in inbound if flag)
        assert Activity.objects.filter(candidate_id=away, kind="email_auto_replied").count() == 1

    client.login(email="recruiter@demo.rapport.test", password="rapport-demo")
    page = client.get(reverse("campaigns:detail", args=["demo", campaign.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Silver medallists: what&#x27;s new" in body
    assert "Replied" in body

    # Some candidates told the preference centre what they are interested in, and a draft
    # broadcast targets those interested in engineering in London or remote.
    with scopes_disabled():
        interested = CandidateEmailPreference.objects.filter(
            organization=campaign.organization
        ).exclude(interested_role_families=[])
        assert interested.count() >= 50
        assert interested.exclude(interested_locations=[]).exists()
        assert interested.filter(open_to_remote=True).exists()
        targeted = Campaign.objects.get(name=DEMO_TARGETED)
        fan = interested.filter(interested_role_families__contains=["data"]).first()
        assert (targeted.status, targeted.interest_role_families) == ("draft", ["engineering"])
        assert targeted.interest_locations == ["London", "Remote"]
    page = client.get(reverse("campaigns:detail", args=["demo", targeted.pk])).content.decode()
    assert 'id="interest-targeting"' in page and "Engineering" in page
    profile = client.get(reverse("candidates:detail", args=["demo", fan.candidate_id]))
    assert (
        "Data &amp; analytics"
        in profile_email_preferences(profile.content.decode())["Role families"]
    )
