"""A draft broadcast's settings page: name, topic, audience and time change until the launch,
and a colleague's saved search or private pool that the draft has is kept, not dropped."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns.models import Campaign
from campaigns.services.campaigns import broadcast_update, campaign_launch
from campaigns.tests.factories import SavedSearchFactory, make_broadcast, make_candidates
from pipelines.models import Pool
from pipelines.tests.factories import PoolFactory


def _url(org, campaign) -> str:
    return reverse("campaigns:broadcast_edit", args=[org.slug, campaign.pk])


def _reread(campaign) -> Campaign:
    with scopes_disabled():
        return Campaign.objects.get(pk=campaign.pk)


def _post(campaign, **fields) -> dict:
    with scopes_disabled():
        data = {
            "name": campaign.name,
            "topic": campaign.topic,
            "saved_searches": [s.pk for s in campaign.saved_searches.all()],
            "excluded_saved_searches": [s.pk for s in campaign.excluded_saved_searches.all()],
            "pools": [p.pk for p in campaign.pools.all()],
            "excluded_pools": [p.pk for p in campaign.excluded_pools.all()],
            "send_when": "now",
            "interest_include_unstated": "on",
        }
    return {**data, **fields}


def test_recruiter_changes_a_drafts_name_audience_and_time(org, recruiter_user, recruiter_client):
    campaign = make_broadcast(org, user=recruiter_user)
    detail = recruiter_client.get(
        reverse("campaigns:detail", args=[org.slug, campaign.pk])
    ).content.decode()
    assert f'href="{_url(org, campaign)}"' in detail
    other = SavedSearchFactory(organization=org, owner=recruiter_user, name="Designers")
    zone = ZoneInfo(org.time_zone)
    local = (
        (timezone.now() + timedelta(days=3))
        .astimezone(zone)
        .replace(second=0, microsecond=0, tzinfo=None)
    )

    response = recruiter_client.post(
        _url(org, campaign),
        _post(
            campaign,
            name="Autumn roles",
            saved_searches=[other.pk],
            send_when="later",
            scheduled_at=local.strftime("%Y-%m-%dT%H:%M"),
        ),
    )

    assert response.status_code == 302
    saved = _reread(campaign)
    assert saved.name == "Autumn roles"
    assert saved.scheduled_at == local.replace(tzinfo=zone)
    with scopes_disabled():
        assert list(saved.saved_searches.all()) == [other]
    # The page shows what was saved, the time as the wall clock it was written in.
    page = recruiter_client.get(_url(org, campaign)).content.decode()
    assert 'value="Autumn roles"' in page
    assert f'value="{local:%Y-%m-%dT%H:%M}"' in page
    assert "Save settings" in page and 'name="template"' not in page


def test_a_colleagues_private_pool_and_saved_search_are_kept_and_not_named(
    org, recruiter_user, admin_user, admin_client
):
    pool = PoolFactory(
        organization=org,
        name="Poaching list Zanzibar",
        owner=recruiter_user,
        visibility=Pool.Visibility.OWNER,
    )
    campaign = make_broadcast(org, user=recruiter_user)
    with scopes_disabled():
        campaign.pools.set([pool])
        searches = list(campaign.saved_searches.all())

    page = admin_client.get(_url(org, campaign)).content.decode()
    assert "Zanzibar" not in page and "A private pool" in page

    response = admin_client.post(_url(org, campaign), _post(campaign, name="Renamed by the admin"))

    assert response.status_code == 302
    saved = _reread(campaign)
    with scopes_disabled():
        assert (saved.name, list(saved.pools.all())) == ("Renamed by the admin", [pool])
        assert list(saved.saved_searches.all()) == searches


def test_an_archived_pool_must_be_left_out_before_saving(org, recruiter_user, recruiter_client):
    pool = PoolFactory(organization=org, name="Old pool", owner=recruiter_user)
    campaign = make_broadcast(org, user=recruiter_user)
    with scopes_disabled():
        campaign.pools.set([pool])
        Pool.objects.filter(pk=pool.pk).update(archived_at=timezone.now())

    response = recruiter_client.post(_url(org, campaign), _post(campaign, name="Changed"))

    assert response.status_code == 200
    assert "Old pool (archived)" in response.content.decode()
    assert "archived" in " ".join(response.context["form"].errors["pools"])
    assert _reread(campaign).name != "Changed"


def test_an_archived_pool_that_leaves_people_out_stays(org, recruiter_user, recruiter_client):
    """Saving must not force the recruiter to untick an exclusion (its members would then get
    the email): an archived pool still leaves its members out, as at launch."""
    pool = PoolFactory(organization=org, name="Competitors' staff", owner=recruiter_user)
    campaign = make_broadcast(org, user=recruiter_user)
    with scopes_disabled():
        campaign.excluded_pools.set([pool])
        Pool.objects.filter(pk=pool.pk).update(archived_at=timezone.now())

    response = recruiter_client.post(_url(org, campaign), _post(campaign, name="Changed"))

    assert response.status_code == 302
    saved = _reread(campaign)
    with scopes_disabled():
        assert (saved.name, list(saved.excluded_pools.all())) == ("Changed", [pool])


def test_an_archived_topic_stays_the_drafts_topic(org, recruiter_user, recruiter_client):
    """The topic select keeps the draft's topic, archived since, instead of showing the first
    active one and switching the draft to it on save."""
    from campaigns.models import Topic
    from campaigns.services.topics import topics_ensure_defaults

    campaign = make_broadcast(org, user=recruiter_user, topic="newsletter")
    with scopes_disabled():
        topics_ensure_defaults(organization=org)
        Topic.objects.filter(organization=org, key="newsletter").update(archived_at=timezone.now())

    page = recruiter_client.get(_url(org, campaign)).content.decode()
    response = recruiter_client.post(_url(org, campaign), _post(campaign, name="Changed"))

    assert '<option value="newsletter" selected>' in page
    assert "(archived)</option>" in page
    assert response.status_code == 302
    assert (_reread(campaign).name, _reread(campaign).topic) == ("Changed", "newsletter")


def test_a_launched_broadcast_and_a_sequence_have_no_such_page(
    org, recruiter_user, recruiter_client, viewer_client
):
    make_candidates(org, 1)
    campaign = make_broadcast(org, user=recruiter_user)
    assert viewer_client.get(_url(org, campaign)).status_code == 403
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)

    response = recruiter_client.post(_url(org, campaign), _post(campaign, name="Too late"))

    assert response.status_code == 302
    assert _reread(campaign).name != "Too late"
    sequence = make_broadcast(org, user=recruiter_user, kind=Campaign.Kind.SEQUENCE)
    assert recruiter_client.get(_url(org, sequence)).status_code == 404


def test_the_service_refuses_a_draft_launched_meanwhile(org, recruiter_user):
    make_candidates(org, 1)
    campaign = make_broadcast(org, user=recruiter_user)
    stale = _reread(campaign)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)
        with pytest.raises(ValidationError, match="launched meanwhile"):
            broadcast_update(
                campaign=stale,
                name="Late",
                topic=stale.topic,
                saved_searches=[],
                scheduled_at=datetime.now(ZoneInfo("UTC")) + timedelta(days=1),
            )
    assert _reread(campaign).name != "Late"


def test_a_sequence_launched_meanwhile_keeps_the_audience_it_launched_with(org, recruiter_user):
    """sequence_update re-reads the campaign under the launch's lock: a settings page opened
    on the draft and saved after the launch cannot change the launched audience."""
    from campaigns.services.sequences import sequence_update

    make_candidates(org, 1)
    sequence = make_broadcast(org, user=recruiter_user, kind=Campaign.Kind.SEQUENCE)
    stale = _reread(sequence)
    with scopes_disabled():
        launched_with = list(sequence.saved_searches.all())
    other = SavedSearchFactory(organization=org, owner=recruiter_user, name="Designers")
    with scope(organization=org):
        campaign_launch(campaign=sequence, user=recruiter_user)
        sequence_update(campaign=stale, name="Renamed", saved_searches=[other])
    saved = _reread(sequence)
    with scopes_disabled():
        assert list(saved.saved_searches.all()) == launched_with
    assert saved.name == "Renamed"  # what may change after launch still does
