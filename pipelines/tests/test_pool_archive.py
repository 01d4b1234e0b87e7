"""Pools are archived, never silently destroyed: recruiters archive (hidden from lists, board
read-only, history kept for funnel analytics); only an admin deletes one for good, after a
confirmation that says how many stage changes of history go."""

import pytest
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from pipelines import selectors, services
from pipelines.models import Pool, PoolMembership, StageChange
from pipelines.tests.factories import PoolFactory

pytestmark = pytest.mark.django_db


def url(name, org, **kwargs):
    return reverse(f"pipelines:{name}", kwargs={"org_slug": org.slug, **kwargs})


@pytest.fixture
def with_history(org, pool, stages, make_candidates, add):
    """Two cards in the pool, one moved on twice: two stage changes of history."""
    add(pool, make_candidates(2))
    with scope(organization=org):
        first = PoolMembership.objects.filter(pool=pool).order_by("pk").first()
        services.membership_move(membership=first, to_stage=stages[1], actor=None)
        services.membership_move(membership=first, to_stage=stages[3], actor=None)
        history = StageChange.objects.filter(pool=pool).count()
    assert history == 2
    return history


def _pool(pool) -> Pool:
    with scopes_disabled():
        return Pool.objects.get(pk=pool.pk)


def test_owner_archives_a_pool_and_its_history_stays(
    recruiter_client, org, pool, with_history, unscoped
):
    response = recruiter_client.post(url("pool_archive", org, pool_id=pool.pk))

    assert response.status_code == 302
    assert _pool(pool).is_archived
    with unscoped():
        assert StageChange.objects.filter(pool=pool).count() == with_history
        assert PoolMembership.objects.filter(pool=pool).count() == 2


def test_archived_pool_leaves_the_list_and_shows_under_archived(recruiter_client, org, pool):
    PoolFactory(organization=org, owner=pool.owner, name="Still open")
    with scope(organization=org):
        services.pool_archive(pool=pool)

    active = recruiter_client.get(url("pool_list", org))
    archived = recruiter_client.get(url("pool_list", org) + "?archived=1")

    assert [row.pool.name for row in active.context["rows"]] == ["Still open"]
    assert [row.pool.name for row in archived.context["rows"]] == ["Backend engineers"]
    assert "read-only" in archived.content.decode()


def test_archived_pool_board_is_read_only(recruiter_client, org, pool, stages, with_history):
    with scope(organization=org):
        services.pool_archive(pool=pool)
        card = PoolMembership.objects.filter(pool=pool).order_by("pk").last()

    board = recruiter_client.get(url("pool_board", org, pool_id=pool.pk))
    move = recruiter_client.post(
        url("card_move", org, pool_id=pool.pk, pool_membership_id=card.pk),
        {"stage": stages[2].pk},
    )
    remove = recruiter_client.post(
        url("card_remove", org, pool_id=pool.pk, pool_membership_id=card.pk)
    )

    assert board.status_code == 200
    assert board.context["can_write"] is False
    assert "archived" in board.content.decode()
    assert (move.status_code, remove.status_code) == (403, 403)
    with scopes_disabled():
        card.refresh_from_db()
        assert card.stage_id == stages[0].pk


def test_archived_pool_refuses_new_candidates(org, pool, make_candidates):
    from django.core.exceptions import ValidationError

    candidate = make_candidates(1)[0]
    with scope(organization=org):
        services.pool_archive(pool=pool)
        with pytest.raises(ValidationError, match="archived"):
            services.pool_add_candidates(pool=pool, candidate_ids=[candidate.pk], actor=None)
        panel = selectors.candidate_pools_panel(candidate=candidate, user=pool.owner)
    assert panel["addable_pools"] == []


def test_pool_add_candidates_with_the_pool_read_before_it_was_archived_is_refused(
    org, pool, make_candidates
):
    from django.core.exceptions import ValidationError

    (candidate,) = make_candidates(1)
    with scope(organization=org):
        read_before = Pool.objects.get(pk=pool.pk)
        services.pool_archive(pool=Pool.objects.get(pk=pool.pk))

        with pytest.raises(ValidationError, match="archived"):
            services.pool_add_candidates(pool=read_before, candidate_ids=[candidate.pk], actor=None)

    with scopes_disabled():
        assert not PoolMembership.objects.filter(pool=pool).exists()


def test_restore_brings_the_pool_back(recruiter_client, org, pool):
    with scope(organization=org):
        services.pool_archive(pool=pool)

    response = recruiter_client.post(url("pool_restore", org, pool_id=pool.pk))

    assert response.status_code == 302
    assert not _pool(pool).is_archived


def test_archive_by_a_viewer_is_403_and_by_another_recruiter_too(viewer_client, client, org, pool):
    from crm.models import Role
    from tests.factories import MembershipFactory, UserFactory

    other = UserFactory()
    MembershipFactory(organization=org, user=other, role=Role.RECRUITER)
    client.force_login(other)

    assert viewer_client.post(url("pool_archive", org, pool_id=pool.pk)).status_code == 403
    assert client.post(url("pool_archive", org, pool_id=pool.pk)).status_code == 403
    assert not _pool(pool).is_archived


def test_delete_confirmation_says_how_much_history_goes(admin_client, org, pool, with_history):
    page = admin_client.get(url("pool_delete", org, pool_id=pool.pk))

    assert page.status_code == 200
    assert page.context["history"] == with_history
    body = " ".join(page.content.decode().split())
    assert f"{with_history} stage changes of history" in body


def test_delete_without_the_confirmation_keeps_everything(admin_client, org, pool, with_history):
    response = admin_client.post(url("pool_delete", org, pool_id=pool.pk))

    assert response.status_code == 200
    assert response.context["unconfirmed"] is True
    with scopes_disabled():
        assert StageChange.objects.filter(pool=pool).count() == with_history


def test_admin_deletes_a_pool_for_good_with_its_history(admin_client, org, pool, with_history):
    response = admin_client.post(url("pool_delete", org, pool_id=pool.pk), {"confirm": "yes"})

    assert response.status_code == 302
    with scopes_disabled():
        assert not Pool.objects.filter(pk=pool.pk).exists()
        assert PoolMembership.objects.filter(pool_id=pool.pk).count() == 0
        assert StageChange.objects.filter(pool_id=pool.pk).count() == 0


def test_a_recruiter_cannot_delete_a_pool_for_good(recruiter_client, org, pool, with_history):
    response = recruiter_client.post(url("pool_delete", org, pool_id=pool.pk), {"confirm": "yes"})

    assert response.status_code == 403
    with scopes_disabled():
        assert Pool.objects.filter(pk=pool.pk).exists()


def test_archived_smart_pool_stops_following_its_search(org, recruiter_user, make_candidates):
    from candidates.models import SavedSearch

    make_candidates(2, tags=["go"])
    with scope(organization=org):
        search = SavedSearch.objects.create(
            organization=org, owner=recruiter_user, name="Go", query={"tags": ["go"]}
        )
        smart = services.pool_create(
            organization=org,
            owner=recruiter_user,
            name="Gophers",
            kind="smart",
            saved_search=search,
        )
        services.pool_archive(pool=smart)
        refreshed = services.smart_pool_refresh(pool=smart)
        members = PoolMembership.objects.filter(pool=smart).count()

    assert (refreshed, members) == ((0, 0), 0)


def test_an_archived_pools_settings_say_it_is_archived_and_offer_restore(
    recruiter_client, org, pool
):
    with scope(organization=org):
        services.pool_archive(pool=pool)

    body = recruiter_client.get(url("pool_edit", org, pool_id=pool.pk)).content.decode()

    assert "This pool is archived" in body
    assert "Archive this pool" not in body
    assert url("pool_restore", org, pool_id=pool.pk) in body
    assert url("pool_archive", org, pool_id=pool.pk) not in body


def test_an_empty_archived_pool_does_not_invite_adding_candidates(recruiter_client, org, pool):
    with scope(organization=org):
        services.pool_archive(pool=pool)

    body = recruiter_client.get(url("pool_list", org) + "?archived=1").content.decode()

    assert "No one is in this pool." in body
    assert "add candidates from the candidate list" not in body


def test_delete_confirmation_offers_to_archive_instead(admin_client, org, pool):
    page = admin_client.get(url("pool_delete", org, pool_id=pool.pk)).content.decode()
    with scope(organization=org):
        services.pool_archive(pool=pool)
    archived = admin_client.get(url("pool_delete", org, pool_id=pool.pk)).content.decode()

    assert url("pool_archive", org, pool_id=pool.pk) in page
    assert "Archive instead" in page
    assert "Archive instead" not in archived
