"""A broadcast's excluded saved searches: everyone the search finds is left out of the
audience size shown before launch and gets nothing when the broadcast is sent."""

from collections import Counter

from django.core import mail
from django.urls import reverse
from django_scopes import scopes_disabled

from campaigns.models import Message
from campaigns.services.audience import audience_count
from campaigns.services.campaigns import campaign_create_broadcast, campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.tests.factories import EmailTemplateFactory, SavedSearchFactory, send_all
from candidates.selectors import saved_search_queryset
from candidates.tests.factories import CandidateFactory
from pipelines.tests.factories import PoolFactory, PoolMembershipFactory


def test_broadcast_to_a_pool_minus_a_saved_search_leaves_its_matches_out(
    org, recruiter_user, recruiter_client, in_org
):
    pool = PoolFactory(organization=org)

    def member(tags):
        candidate = CandidateFactory(organization=org, tags=tags)
        PoolMembershipFactory(pool=pool, candidate=candidate)
        return candidate

    kept = [member(["newsletter"]) for _ in range(3)]
    left_out = [member(["placed"]), member(["newsletter", "placed"])]
    CandidateFactory(organization=org, tags=["placed"])  # found by the search, not in the pool
    placed = SavedSearchFactory(organization=org, owner=recruiter_user, query={"tags": ["placed"]})
    with in_org():
        # The search does find the two pool members it is meant to leave out.
        found = set(saved_search_queryset(saved_search=placed).values_list("pk", flat=True))
        campaign = campaign_create_broadcast(
            organization=org,
            user=recruiter_user,
            name="Pool news",
            topic="jobs",
            template=EmailTemplateFactory(organization=org),
            saved_searches=[],
            pools=[pool],
            excluded_saved_searches=[placed],
        )
        size = audience_count(campaign=campaign)
    assert {c.pk for c in left_out} <= found

    page = recruiter_client.get(reverse("campaigns:detail", args=[org.slug, campaign.pk]))
    assert page.status_code == 200
    assert '<span class="stat-value">3</span>' in page.content.decode()  # the size before launch
    assert size == 3

    with in_org():
        enrolled = campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
    send_all(org, campaign)

    with scopes_disabled():
        messages = Counter(
            Message.objects.filter(campaign=campaign).values_list("candidate_id", flat=True)
        )
        left_out_messages = Message.objects.filter(candidate__in=left_out).count()
    sent = Counter(address for email in mail.outbox for address in email.to)
    assert enrolled == 3
    assert messages == Counter({c.pk: 1 for c in kept})
    assert left_out_messages == 0
    assert sent == Counter({c.email: 1 for c in kept})


def test_an_excluded_saved_search_that_no_longer_works_blocks_the_launch_and_keeps_everyone_out(
    org, admin_user, recruiter_user, in_org
):
    """It filters by an owner who has since become a viewer (owner choices are recruiters and
    admins): leaving the filter out would keep no one out, so the campaign reaches nobody and
    cannot launch until the search is fixed."""
    import pytest
    from django.core.exceptions import ValidationError

    from crm.models import Membership, Role

    pool = PoolFactory(organization=org)
    for _ in range(3):
        PoolMembershipFactory(pool=pool, candidate=CandidateFactory(organization=org))
    theirs = SavedSearchFactory(
        organization=org,
        owner=admin_user,
        name="Riya's people",
        query={"owner": [recruiter_user.pk]},
    )
    with in_org():
        campaign = campaign_create_broadcast(
            organization=org,
            user=admin_user,
            name="Pool news",
            topic="jobs",
            template=EmailTemplateFactory(organization=org),
            saved_searches=[],
            pools=[pool],
            excluded_saved_searches=[theirs],
        )
        assert audience_count(campaign=campaign) == 3
    with scopes_disabled():
        Membership.objects.filter(organization=org, user=recruiter_user).update(role=Role.VIEWER)

    with in_org():
        assert audience_count(campaign=campaign) == 0
        with pytest.raises(ValidationError) as refused:
            campaign_launch(campaign=campaign, user=admin_user)
    assert any(
        "The saved search “Riya's people”, which keeps people out of the audience, no longer "
        "works (Owner:" in message
        for message in refused.value.messages
    )
