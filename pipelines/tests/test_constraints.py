"""The database's own guarantees for pools and pipelines: each constraint refuses what it must
and lets through what it must not refuse."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from pipelines import services
from pipelines.models import FollowUpDigest, PoolMembership, RolePool, Stage, StageChange
from pipelines.tests.factories import HiringRoleFactory, PoolFactory

pytestmark = pytest.mark.django_db


def _refused(create) -> bool:
    try:
        with scopes_disabled(), transaction.atomic():
            create()
    except IntegrityError:
        return True
    return False


def test_stage_names_are_unique_among_active_stages_of_one_pipeline(org, pool, stages):
    def stage(name, pool=None, archived=False):
        return lambda: Stage.objects.create(
            organization=org, pool=pool, name=name, archived=archived
        )

    assert _refused(stage("New"))  # the default set (pool is NULL: NULLs are not distinct)
    assert not _refused(stage("New", archived=True))  # an archived one may share the name
    assert not _refused(stage("New", pool=pool))  # a pool's own set is another pipeline
    assert _refused(stage("New", pool=pool))


def test_a_candidate_is_once_in_a_pool(org, pool, stages, make_candidates, add):
    (candidate,) = make_candidates(1)
    add(pool, [candidate])
    now = timezone.now()

    assert _refused(
        lambda: PoolMembership.objects.create(
            organization=org,
            pool=pool,
            candidate=candidate,
            stage=stages[0],
            entered_stage_at=now,
            added_at=now,
        )
    )


def test_a_role_links_a_pool_once_and_a_digest_goes_once_a_day(org, pool, recruiter_user):
    role = HiringRoleFactory(organization=org)
    other = PoolFactory(organization=org, owner=recruiter_user)
    today = timezone.localdate()

    def link(target):
        return lambda: RolePool.objects.create(organization=org, role=role, pool=target)

    def digest(day):
        return lambda: FollowUpDigest.objects.create(
            organization=org, user=recruiter_user, sent_on=day
        )

    assert not _refused(link(pool))
    assert _refused(link(pool))
    assert not _refused(link(other))
    assert not _refused(digest(today))
    assert _refused(digest(today))
    assert not _refused(digest(today + timezone.timedelta(days=1)))


def test_deleting_a_membership_unlinks_its_stage_history_in_the_database(
    org, pool, stages, make_candidates, add
):
    """The database itself sets a stage change's membership to NULL when the card goes (ON
    DELETE SET NULL, like the model's on_delete): a move committed while a removal or a smart
    refresh is deleting the card cannot make that delete fail at commit."""
    add(pool, make_candidates(1))
    with scope(organization=org):
        card = PoolMembership.objects.get(pool=pool)
        services.membership_move(membership=card, to_stage=stages[1], actor=None)

    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # checked now, not at the test's end
        cursor.execute("DELETE FROM pipelines_poolmembership WHERE id = %s", [card.pk])

    with scopes_disabled():
        history = list(StageChange.objects.values_list("membership_id", "to_stage_id"))
    assert history == [(None, stages[1].pk)]
