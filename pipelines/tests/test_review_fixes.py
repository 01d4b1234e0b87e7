"""Fixes from the second review of pipelines: a pool used by campaigns is not deleted, archiving
a stage reaches archived (and private) pools, the last open stage stays open, saving a pool's
settings writes only the settings, and nothing lands in a stage archived meanwhile."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from campaigns.models import Campaign
from campaigns.services.audience import audience_queryset
from campaigns.tests.factories import make_broadcast
from crm.models import Role
from pipelines import selectors, services
from pipelines.models import Pool, PoolMembership, Stage
from pipelines.tests.factories import PoolFactory
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def url(name, org, **kwargs):
    return reverse(f"pipelines:{name}", kwargs={"org_slug": org.slug, **kwargs})


def _audience(org, campaign):
    with scope(organization=org):
        return set(audience_queryset(campaign=campaign).values_list("pk", flat=True))


# --- deleting a pool that campaigns use ---


def test_a_pool_a_campaign_excludes_is_not_deleted_and_the_audience_stays(
    admin_client, admin_user, org, pool, stages, make_candidates, add
):
    (employee,) = make_candidates(1, tags=["newsletter"])
    (prospect,) = make_candidates(1, tags=["newsletter"])
    add(pool, [employee])  # "Current employees — never email"
    campaign = make_broadcast(org, user=admin_user, name="Spring roles")
    with scopes_disabled():
        campaign.excluded_pools.set([pool])
    assert _audience(org, campaign) == {prospect.pk}

    page = admin_client.get(url("pool_delete", org, pool_id=pool.pk))
    response = admin_client.post(url("pool_delete", org, pool_id=pool.pk), {"confirm": "yes"})

    body = " ".join(page.content.decode().split())
    assert page.status_code == 200
    assert "The campaign “Spring roles” uses this pool" in body
    assert reverse("campaigns:detail", args=[org.slug, campaign.pk]) in body
    assert "Delete for good" not in body
    assert url("pool_archive", org, pool_id=pool.pk) in body
    assert response.status_code == 400
    assert "archive it instead" in response.content.decode()
    with scopes_disabled():
        assert Pool.objects.filter(pk=pool.pk).exists()
    assert _audience(org, campaign) == {prospect.pk}


@pytest.mark.parametrize("use", ["pools", "excluded_pools", "auto_join_pool"])
@pytest.mark.parametrize("status", [Campaign.Status.DRAFT, Campaign.Status.DONE])
def test_any_campaign_using_the_pool_refuses_the_delete(admin_user, org, pool, use, status):
    campaign = make_broadcast(org, user=admin_user, name="Spring roles")
    with scopes_disabled():
        if use == "auto_join_pool":
            Campaign.objects.filter(pk=campaign.pk).update(auto_join_pool=pool, status=status)
        else:
            getattr(campaign, use).set([pool])
            Campaign.objects.filter(pk=campaign.pk).update(status=status)

    with scope(organization=org), pytest.raises(ValidationError) as refused:
        services.pool_delete(pool=pool)

    assert refused.value.messages == [
        "The campaign “Spring roles” uses this pool (as audience, exclusion or auto-join): "
        "archive it instead."
    ]
    with scopes_disabled():
        assert Pool.objects.filter(pk=pool.pk).exists()


def test_the_refusal_names_the_newest_campaign_and_counts_the_others(admin_user, org, pool):
    for name in ["Autumn roles", "Summer roles", "Spring roles"]:
        campaign = make_broadcast(org, user=admin_user, name=name)
        with scopes_disabled():
            campaign.pools.add(pool)

    with scope(organization=org), pytest.raises(ValidationError) as refused:
        services.pool_delete(pool=pool)

    assert refused.value.messages[0].startswith(
        "“Spring roles” and 2 other campaigns use this pool"
    )


def test_an_archived_pool_used_by_a_campaign_shows_the_campaigns_without_a_delete_button(
    admin_client, admin_user, org, pool
):
    campaign = make_broadcast(org, user=admin_user, name="Spring roles")
    with scopes_disabled():
        campaign.excluded_pools.set([pool])
        services.pool_archive(pool=pool)

    body = admin_client.get(url("pool_delete", org, pool_id=pool.pk)).content.decode()

    assert "Spring roles" in body
    assert "Delete for good" not in body
    assert "Archive instead" not in body
    assert "The pool is archived" in body


def test_a_pool_no_campaign_uses_is_still_deleted(admin_client, admin_user, org, pool):
    make_broadcast(org, user=admin_user, name="Spring roles")  # uses a saved search only

    response = admin_client.post(url("pool_delete", org, pool_id=pool.pk), {"confirm": "yes"})

    assert response.status_code == 302
    with scopes_disabled():
        assert not Pool.objects.filter(pk=pool.pk).exists()


# --- archiving a stage used by an archived (private) pool ---


def test_archiving_a_default_stage_moves_the_cards_of_an_archived_private_pool(
    admin_client, org, stages, make_candidates, add
):
    colleague = UserFactory(email="colleague@acme.example")
    MembershipFactory(organization=org, user=colleague, role=Role.RECRUITER)
    secret = PoolFactory(
        organization=org,
        owner=colleague,
        name="Secret poaching list",
        visibility=Pool.Visibility.OWNER,
    )
    add(secret, make_candidates(1))
    with scopes_disabled():
        services.pool_archive(pool=secret)

    response = admin_client.post(
        url("stage_archive", org, stage_id=stages[0].pk), {"move_to": stages[1].pk}, follow=True
    )

    assert "Secret poaching list" not in response.content.decode()
    with scopes_disabled():
        assert Stage.objects.get(pk=stages[0].pk).archived is True
        assert PoolMembership.objects.get(pool=secret).stage_id == stages[1].pk
        # The archived pool's board stays read-only to people.
        with pytest.raises(ValidationError):
            services.memberships_move_bulk(
                pool=Pool.objects.get(pk=secret.pk),
                membership_ids=list(
                    PoolMembership.objects.filter(pool=secret).values_list("pk", flat=True)
                ),
                to_stage=stages[2],
                actor=None,
            )


# --- the last open stage ---


def test_the_last_open_stage_cannot_become_won(
    admin_client, org, pool, stages, make_candidates, add
):
    for stage in stages[1:5]:
        assert admin_client.post(url("stage_archive", org, stage_id=stage.pk)).status_code == 302

    response = admin_client.post(
        url("stage_edit", org, stage_id=stages[0].pk), {"name": "New", "outcome": "won"}
    )

    assert response.status_code == 200
    assert response.context["form"].errors["outcome"] == [
        "A pipeline needs at least one open stage. Add or reopen another one first."
    ]
    add(pool, make_candidates(1))
    with scopes_disabled():
        assert Stage.objects.get(pk=stages[0].pk).outcome == Stage.Outcome.OPEN
        membership = PoolMembership.objects.select_related("stage").get(pool=pool)
        assert membership.stage.outcome == Stage.Outcome.OPEN


def test_an_open_stage_becomes_lost_while_another_stays_open(admin_client, org, stages):
    response = admin_client.post(
        url("stage_edit", org, stage_id=stages[0].pk), {"name": "New", "outcome": "lost"}
    )

    assert response.status_code == 302
    with scopes_disabled():
        assert Stage.objects.get(pk=stages[0].pk).outcome == Stage.Outcome.LOST


def test_renaming_the_last_open_stage_is_still_allowed(org, stages):
    with scope(organization=org):
        for stage in stages[1:5]:
            services.stage_archive(stage=stage)
        services.stage_update(stage=stages[0], name="Sourced", outcome=Stage.Outcome.OPEN)
        assert Stage.objects.get(pk=stages[0].pk).name == "Sourced"


# --- saving a pool's settings ---


def test_saving_settings_does_not_undo_a_concurrent_stage_customisation(
    org, pool, stages, make_candidates, add
):
    add(pool, make_candidates(2))
    with scope(organization=org):
        original = Pool.objects.get(pk=pool.pk)  # pool_edit reads the row …
        services.pool_customize_stages(pool=Pool.objects.get(pk=pool.pk))  # … another tab
        services.pool_update(pool=original, name="Renamed", description="")
        fresh = Pool.objects.get(pk=pool.pk)
        columns = selectors.pool_board(pool=fresh)

    assert (fresh.name, fresh.custom_stages) == ("Renamed", True)
    assert sum(column.count for column in columns) == 2


def test_saving_settings_does_not_undo_a_concurrent_archive(org, pool):
    with scope(organization=org):
        original = Pool.objects.get(pk=pool.pk)
        services.pool_archive(pool=Pool.objects.get(pk=pool.pk))
        services.pool_update(pool=original, name="Renamed", description="")
        fresh = Pool.objects.get(pk=pool.pk)

    assert fresh.name == "Renamed"
    assert fresh.is_archived


# --- writes racing with a stage being archived ---


def test_a_move_to_a_stage_archived_meanwhile_is_refused(org, pool, stages, make_candidates, add):
    add(pool, make_candidates(1))
    with scope(organization=org):
        target = selectors.pool_stages(pool=pool)[2]  # the board was rendered …
        membership = PoolMembership.objects.get(pool=pool)
        services.stage_archive(stage=Stage.objects.get(pk=target.pk))  # … the stage archived …
        with pytest.raises(ValidationError) as refused:  # … then the move comes in.
            services.membership_move(membership=membership, to_stage=target, actor=None)
        columns = selectors.pool_board(pool=pool)

    assert refused.value.messages == ["That stage was archived a moment ago. Reload the board."]
    assert sum(column.count for column in columns) == 1


def test_a_bulk_move_to_a_stage_archived_meanwhile_is_refused(
    org, pool, stages, make_candidates, add
):
    add(pool, make_candidates(2))
    with scope(organization=org):
        target = selectors.pool_stages(pool=pool)[2]
        ids = list(PoolMembership.objects.filter(pool=pool).values_list("pk", flat=True))
        services.stage_archive(stage=Stage.objects.get(pk=target.pk))
        with pytest.raises(ValidationError):
            services.memberships_move_bulk(
                pool=pool, membership_ids=ids, to_stage=target, actor=None
            )
        columns = selectors.pool_board(pool=pool)

    assert sum(column.count for column in columns) == 2


def test_new_members_do_not_enter_an_entry_stage_archived_meanwhile(
    org, pool, stages, make_candidates, add, monkeypatch
):
    from pipelines import selectors as selectors_module

    with scope(organization=org):
        stale = selectors.pool_stages(pool=pool)  # read before "New" was archived
        services.stage_archive(stage=Stage.objects.get(pk=stages[0].pk))
    real = selectors_module.pool_stages
    calls = []

    def pool_stages(**kwargs):
        calls.append(1)
        return stale if len(calls) == 1 else real(**kwargs)

    monkeypatch.setattr(selectors_module, "pool_stages", pool_stages)
    add(pool, make_candidates(1))

    with scopes_disabled():
        membership = PoolMembership.objects.get(pool=pool)
    assert membership.stage_id == stages[1].pk
