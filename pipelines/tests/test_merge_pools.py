"""A candidate merge and the pools: the secondary's cards move to the primary, a card it had
in a pool the primary is also in leaves the board (no one counted twice), and undo puts every
card back in its stage; smart pools follow the merged values."""

import pytest
from django_scopes import scope, scopes_disabled

from candidates.services.merge import candidate_merge, candidate_merge_undo
from pipelines import selectors, services
from pipelines.models import PoolMembership, StageChange
from pipelines.tests.factories import PoolFactory

pytestmark = pytest.mark.django_db


def _cards(pool) -> dict[int, int]:
    with scopes_disabled():
        return dict(
            PoolMembership.objects.filter(pool=pool).values_list("candidate_id", "stage_id")
        )


def test_merge_leaves_one_card_per_person_and_undo_restores_every_card(
    org, recruiter_user, pool, stages, make_candidates, add, in_org
):
    primary, secondary = make_candidates(2)
    only_secondary = PoolFactory(organization=org, owner=recruiter_user, name="Second pool")
    add(pool, [primary, secondary])
    add(only_secondary, [secondary])
    with in_org():
        card = PoolMembership.objects.get(pool=pool, candidate=secondary)
        services.membership_move(membership=card, to_stage=stages[3], actor=recruiter_user)

        record = candidate_merge(
            primary=primary, secondary=secondary, field_choices={}, actor=recruiter_user
        )
        counts = selectors.pool_stage_counts(pool=pool)

    assert _cards(pool) == {primary.pk: stages[0].pk}
    assert counts == {stages[0].pk: 1}
    assert _cards(only_secondary) == {primary.pk: stages[0].pk}
    with scopes_disabled():
        # The secondary's move in the shared pool is still in the history.
        assert StageChange.objects.filter(candidate=secondary, to_stage=stages[3]).count() == 1

    with in_org():
        candidate_merge_undo(record=record, actor=recruiter_user)

    assert _cards(pool) == {primary.pk: stages[0].pk, secondary.pk: stages[3].pk}
    assert _cards(only_secondary) == {secondary.pk: stages[0].pk}


@pytest.fixture
def eager_celery():
    from crm.celery import app as celery_app

    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_merge_re_evaluates_the_primarys_smart_pools_with_the_merged_values(
    org,
    recruiter_user,
    stages,
    make_candidates,
    eager_celery,
    django_capture_on_commit_callbacks,
):
    from candidates.models import SavedSearch
    from pipelines.models import Pool

    with scopes_disabled():
        search = SavedSearch.objects.create(
            organization=org, owner=recruiter_user, name="Lisbon", query={"city": ["Lisbon"]}
        )
    smart = PoolFactory(
        organization=org, owner=recruiter_user, kind=Pool.Kind.SMART, saved_search=search
    )
    porto, also_porto = make_candidates(2, city="Porto")
    lisbon, also_lisbon = make_candidates(2, city="Lisbon")
    with scope(organization=org):
        services.smart_pool_refresh(pool=smart)
    assert set(_cards(smart)) == {lisbon.pk, also_lisbon.pk}

    with scope(organization=org), django_capture_on_commit_callbacks(execute=True):
        # Keeps Porto: the smart card it took over from the Lisbon profile goes.
        candidate_merge(primary=porto, secondary=lisbon, field_choices={}, actor=None)
        # Takes Lisbon: it joins the pool.
        candidate_merge(
            primary=also_porto,
            secondary=also_lisbon,
            field_choices={"city": "secondary"},
            actor=None,
        )

    assert set(_cards(smart)) == {also_porto.pk}
