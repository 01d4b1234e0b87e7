"""Two people (or a person and a background refresh) changing one pool at the same moment, each
on their own connection: the one that comes second waits for the first and then does the right
thing with what the first left behind — no 500, no refresh rolled back, no card in a stage its
pool no longer shows."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django_scopes import scope, scopes_disabled

from candidates.models import Candidate, SavedSearch
from crm.tests.locks import join_or_fail, waiting_for_a_lock
from pipelines import services
from pipelines.models import Pool, PoolMembership, Stage, StageChange
from pipelines.tests.factories import PoolFactory


@pytest.fixture
def smart_pool(org, recruiter_user, stages):
    with scopes_disabled():
        search = SavedSearch.objects.create(
            organization=org, owner=recruiter_user, name="Lisbon", query={"city": ["Lisbon"]}
        )
    return PoolFactory(
        organization=org,
        owner=recruiter_user,
        name="Lisbon people",
        kind=Pool.Kind.SMART,
        saved_search=search,
    )


def _in_thread(org, work, outcome):
    """`work()` in the organisation's scope on a connection of its own; what it returns (or
    the error it raised) goes into `outcome`."""

    def run():
        try:
            with scope(organization=org):
                outcome.append(work())
        except Exception as error:  # reported by the test's assertion
            outcome.append(repr(error))
        finally:
            connection.close()

    return threading.Thread(target=run, daemon=True)


def _card(pool):
    with scopes_disabled():
        return PoolMembership.objects.select_related("pool", "stage", "candidate").get(pool=pool)


def _history(pool):
    with scopes_disabled():
        return list(
            StageChange.objects.filter(pool=pool)
            .order_by("pk")
            .values_list("membership_id", "from_stage_id", "to_stage_id")
        )


def _stage_sets(pool):
    """Whose stages the pool's members are in: the pool's own (its id) or the defaults (None)."""
    with scopes_disabled():
        return set(
            PoolMembership.objects.filter(pool=pool).values_list("stage__pool_id", flat=True)
        )


# --- a card removed while it is being moved ---


@pytest.mark.django_db(transaction=True)
def test_pool_remove_candidates_while_the_card_is_being_moved_keeps_the_move_unlinked(
    org, pool, stages, make_candidates, add, recruiter_user, admin_user
):
    """The removal waits for the move, then removes the card; the move's history row stays,
    unlinked from the membership — before, the database refused the removal's commit (the
    history's link to the card had no ON DELETE SET NULL and was checked at commit): a 500."""
    (candidate,) = make_candidates(1)
    add(pool, [candidate])
    card = _card(pool)
    outcome = []
    remover = _in_thread(
        org,
        lambda: services.pool_remove_candidates(
            pool=pool, candidate_ids=[candidate.pk], actor=admin_user
        ),
        outcome,
    )

    with scope(organization=org), transaction.atomic():
        services.membership_move(membership=card, to_stage=stages[2], actor=recruiter_user)
        remover.start()
        waited = waiting_for_a_lock()
    join_or_fail(remover, timeout=30, failure="the removal did not finish")

    assert waited
    assert outcome == [1]
    with scopes_disabled():
        assert not PoolMembership.objects.filter(pool=pool).exists()
    assert _history(pool) == [(None, stages[0].pk, stages[2].pk)]


@pytest.mark.django_db(transaction=True)
def test_smart_pool_refresh_while_a_leaving_member_is_being_moved_keeps_the_move_unlinked(
    org, smart_pool, stages, make_candidates, recruiter_user
):
    """A member who no longer matches leaves at the refresh while a recruiter moves their
    card: the refresh waits, then takes them out and keeps the move's history, unlinked —
    before, the whole refresh was rolled back at commit."""
    (person,) = make_candidates(1, city="Lisbon")
    with scope(organization=org):
        services.smart_pool_refresh(pool=smart_pool)
    with scopes_disabled():
        Candidate.objects.filter(pk=person.pk).update(city="Faro")
    card = _card(smart_pool)
    outcome = []
    refresher = _in_thread(org, lambda: services.smart_pool_refresh(pool=smart_pool), outcome)

    with scope(organization=org), transaction.atomic():
        services.membership_move(membership=card, to_stage=stages[3], actor=recruiter_user)
        refresher.start()
        waited = waiting_for_a_lock()
    join_or_fail(refresher, timeout=30, failure="the refresh did not finish")

    assert waited
    assert outcome == [(0, 1)]
    with scopes_disabled():
        assert not PoolMembership.objects.filter(pool=smart_pool).exists()
    assert _history(smart_pool) == [(None, stages[0].pk, stages[3].pk)]


# --- new members while a pool's stages are customised or the pool archived ---


@pytest.mark.django_db(transaction=True)
def test_smart_pool_refresh_waiting_on_a_customisation_puts_entrants_in_the_pools_own_stages(
    org, smart_pool, stages, make_candidates
):
    """The refresh was given the pool as it was before "customise stages" (as its task loads
    it); it waits for the customisation and then puts the entrants in the pool's own first
    stage — before, they went into the organisation's "New", a stage the board no longer
    shows."""
    make_candidates(2, city="Lisbon")
    outcome = []
    refresher = _in_thread(org, lambda: services.smart_pool_refresh(pool=smart_pool), outcome)

    with scope(organization=org), transaction.atomic():
        services.pool_customize_stages(pool=Pool.objects.get(pk=smart_pool.pk))
        refresher.start()
        waited = waiting_for_a_lock()
    join_or_fail(refresher, timeout=30, failure="the refresh did not finish")

    assert waited
    assert outcome == [(2, 0)]
    assert _stage_sets(smart_pool) == {smart_pool.pk}


@pytest.mark.django_db(transaction=True)
def test_smart_pool_refresh_waiting_on_an_archive_leaves_the_pool_as_it_was(
    org, smart_pool, make_candidates
):
    """A refresh that waited for the pool to be archived does nothing: an archived smart pool
    no longer follows its search — before, it materialised the pool anyway."""
    make_candidates(2, city="Lisbon")
    outcome = []
    refresher = _in_thread(org, lambda: services.smart_pool_refresh(pool=smart_pool), outcome)

    with scope(organization=org), transaction.atomic():
        services.pool_archive(pool=Pool.objects.get(pk=smart_pool.pk))
        refresher.start()
        waited = waiting_for_a_lock()
    join_or_fail(refresher, timeout=30, failure="the refresh did not finish")

    assert waited
    assert outcome == [(0, 0)]
    with scopes_disabled():
        assert not PoolMembership.objects.filter(pool=smart_pool).exists()


@pytest.mark.django_db(transaction=True)
def test_smart_pools_reevaluate_candidate_waiting_on_a_customisation_uses_the_pools_own_stages(
    org, smart_pool, stages, make_candidates
):
    """Someone who now matches enters while the pool's stages are being customised: they land
    in the pool's own first stage, not in the organisation's."""
    (person,) = make_candidates(1, city="Lisbon")
    outcome = []
    reevaluator = _in_thread(
        org, lambda: services.smart_pools_reevaluate_candidate(candidate=person), outcome
    )

    with scope(organization=org), transaction.atomic():
        services.pool_customize_stages(pool=Pool.objects.get(pk=smart_pool.pk))
        reevaluator.start()
        waited = waiting_for_a_lock()
    join_or_fail(reevaluator, timeout=30, failure="the re-evaluation did not finish")

    assert waited
    assert outcome == [{smart_pool.pk: "entered"}]
    assert _stage_sets(smart_pool) == {smart_pool.pk}


# --- two stages of one name ---


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("second", ["Offer", "offer"])
def test_stage_create_of_one_name_twice_at_once_adds_it_once_and_tells_the_other_why(
    org, stages, second
):
    """Two admins add "Offer" (or "Offer" and "offer") at the same moment: the second waits
    for the first and gets the form's message — before, the same name was a 500
    (IntegrityError) and the other spelling a second "Offer" on every board."""
    outcome = []

    def add():
        try:
            return services.stage_create(organization=org, name=second, outcome="open").name
        except ValidationError as error:
            return error.message_dict

    adder = _in_thread(org, add, outcome)

    with scope(organization=org), transaction.atomic():
        services.stage_create(organization=org, name="Offer", outcome="open")
        adder.start()
        waited = waiting_for_a_lock(timeout=5)
    join_or_fail(adder, timeout=30, failure="the second add did not finish")

    assert waited
    assert outcome == [{"name": [f"There is already a stage called “{second}”."]}]
    with scopes_disabled():
        names = list(
            Stage.objects.filter(organization=org, name__iexact="offer").values_list(
                "name", flat=True
            )
        )
    assert names == ["Offer"]


@pytest.mark.django_db(transaction=True)
def test_stage_create_clashing_with_a_stage_saved_elsewhere_meanwhile_is_a_form_error(org, stages):
    """A stage of the same name written meanwhile by something that does not wait for the
    service's lock (an operator in the Django admin): the database's unique constraint
    refuses the second, and the person adding it gets the form's message, not a 500."""
    other = connections.create_connection(DEFAULT_DB_ALIAS)
    other.set_autocommit(False)
    with other.cursor() as cursor:
        cursor.execute(
            "INSERT INTO pipelines_stage (organization_id, pool_id, name, position, outcome,"
            " archived, created_at) VALUES (%s, NULL, 'Offer', 20, 'open', FALSE, now())",
            [org.pk],
        )
    outcome = []

    def add():
        try:
            return services.stage_create(organization=org, name="Offer", outcome="open").name
        except ValidationError as error:
            return error.message_dict

    adder = _in_thread(org, add, outcome)
    adder.start()
    try:
        waited = waiting_for_a_lock()
        other.commit()
    finally:
        other.close()
    join_or_fail(adder, timeout=30, failure="the add did not finish")

    assert waited
    assert outcome == [{"name": ["There is already a stage called “Offer”."]}]
