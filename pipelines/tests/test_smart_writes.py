"""How a smart pool writes: one statement for memberships and timeline, the candidate's other
memberships untouched by a re-evaluation, stage history kept when a member leaves, statistics
refreshed after a big change."""

import threading
import time

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.test.utils import CaptureQueriesContext
from django_scopes import scope, scopes_disabled

from candidates.models import Activity, Candidate, SavedSearch
from pipelines import services
from pipelines.models import Pool, PoolMembership, StageChange
from pipelines.tests.factories import PoolFactory

pytestmark = pytest.mark.django_db


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


def _members(pool):
    with scopes_disabled():
        return set(PoolMembership.objects.filter(pool=pool).values_list("candidate_id", flat=True))


def _timeline(candidate):
    with scopes_disabled():
        return list(
            Activity.objects.filter(candidate=candidate)
            .order_by("pk")
            .values_list("organization_id", "kind", "summary", "data")
        )


def test_smart_pool_refresh_writes_memberships_and_timeline_in_one_statement(
    org, smart_pool, make_candidates, in_org, unscoped
):
    lisbon = make_candidates(3, city="Lisbon")
    make_candidates(1, city="Porto")

    with in_org(), CaptureQueriesContext(connection) as queries:
        entered, left = services.smart_pool_refresh(pool=smart_pool)

    assert (entered, left) == (3, 0)
    assert _members(smart_pool) == {c.pk for c in lisbon}
    writes = [q["sql"] for q in queries if "INSERT INTO" in q["sql"]]
    assert len(writes) == 1
    assert "pipelines_poolmembership" in writes[0] and "candidates_activity" in writes[0]
    assert _timeline(lisbon[0]) == [
        (
            org.pk,
            "pool_added",
            "Entered the smart pool “Lisbon people” (matches its search)",
            {"pool_id": smart_pool.pk, "source": "smart"},
        )
    ]


def test_smart_pool_refresh_keeps_the_stage_history_of_members_who_leave(
    org, smart_pool, make_candidates, in_org, stages, unscoped
):
    (moved,) = make_candidates(1, city="Lisbon")
    with in_org():
        services.smart_pool_refresh(pool=smart_pool)
        membership = PoolMembership.objects.get(pool=smart_pool, candidate=moved)
        change = services.membership_move(membership=membership, to_stage=stages[2], actor=None)
    with unscoped():
        Candidate.objects.filter(pk=moved.pk).update(city="Faro")

    with in_org():
        entered, left = services.smart_pool_refresh(pool=smart_pool)
        connection.check_constraints()  # the deferred foreign keys, as the commit checks them

    assert (entered, left) == (0, 1)
    assert _members(smart_pool) == set()
    with unscoped():
        kept = StageChange.objects.get(pk=change.pk)
    assert (kept.candidate_id, kept.to_stage_id, kept.membership_id) == (
        moved.pk,
        stages[2].pk,
        None,
    )
    assert [kind for _, kind, _, _ in _timeline(moved)] == [
        "pool_added",
        "stage_changed",
        "pool_removed",
    ]


def test_smart_pools_reevaluate_candidate_leaves_the_other_members_alone(
    org, smart_pool, make_candidates, in_org, unscoped
):
    staying = make_candidates(2, city="Lisbon")
    (leaving,) = make_candidates(1, city="Lisbon")
    (joining,) = make_candidates(1, city="Porto")
    with in_org():
        services.smart_pool_refresh(pool=smart_pool)
    with unscoped():
        Candidate.objects.filter(pk=leaving.pk).update(city="Faro")
        Candidate.objects.filter(pk=joining.pk).update(city="Lisbon")

    with in_org():
        left = services.smart_pools_reevaluate_candidate(candidate=leaving)
        entered = services.smart_pools_reevaluate_candidate(candidate=joining)

    assert (left, entered) == ({smart_pool.pk: "left"}, {smart_pool.pk: "entered"})
    assert _members(smart_pool) == {staying[0].pk, staying[1].pk, joining.pk}
    assert [kind for _, kind, _, _ in _timeline(staying[0])] == ["pool_added"]


def test_smart_pools_reevaluate_candidate_keeps_someone_added_by_hand(
    org, smart_pool, make_candidates, in_org
):
    (candidate,) = make_candidates(1, city="Porto")
    with in_org():
        services.pool_add_candidates(pool=smart_pool, candidate_ids=[candidate.pk], actor=None)

        outcome = services.smart_pools_reevaluate_candidate(candidate=candidate)

    assert outcome == {}
    assert _members(smart_pool) == {candidate.pk}


def _statements(queries):
    return [q["sql"] for q in queries if "SAVEPOINT" not in q["sql"]]


def test_smart_pools_reevaluate_candidate_statements(org, smart_pool, make_candidates, in_org):
    """Two statements decide (the pools; one query for every pool's rule and the candidate's
    memberships); leaving adds one statement, which writes membership and timeline."""
    (candidate,) = make_candidates(1, city="Lisbon")
    with in_org():
        services.smart_pool_refresh(pool=smart_pool)
        with CaptureQueriesContext(connection) as unchanged:
            services.smart_pools_reevaluate_candidate(candidate=candidate)
        Candidate.objects.filter(pk=candidate.pk).update(city="Faro")
        with CaptureQueriesContext(connection) as leaving:
            services.smart_pools_reevaluate_candidate(candidate=candidate)

    unchanged, leaving = _statements(unchanged), _statements(leaving)
    assert len(unchanged) == 2
    assert len(leaving) == 3
    assert "DELETE FROM pipelines_poolmembership" in leaving[2]
    assert "INSERT INTO candidates_activity" in leaving[2]


def _reltuples(table):
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
        return cursor.fetchone()[0]


def test_smart_pool_refresh_analyses_memberships_after_a_big_change(
    org, smart_pool, make_candidates, in_org, monkeypatch
):
    make_candidates(3, city="Lisbon")
    table = PoolMembership._meta.db_table
    monkeypatch.setattr(services, "ANALYZE_AFTER_CHANGES", 4)
    before = _reltuples(table)
    with in_org():
        services.smart_pool_refresh(pool=smart_pool)  # 3 changes: below the threshold
    assert _reltuples(table) == before

    monkeypatch.setattr(services, "ANALYZE_AFTER_CHANGES", 3)
    make_candidates(3, city="Lisbon")
    with in_org():
        services.smart_pool_refresh(pool=smart_pool)  # 3 more: the planner learns of all 6

    assert _reltuples(table) == 6


@pytest.mark.django_db(transaction=True)
def test_smart_pool_refresh_skips_a_candidate_added_meanwhile(
    org, smart_pool, make_candidates, stages
):
    """The refresh inserts without ON CONFLICT (the anti-join leaves out present members); a
    candidate another transaction adds while it runs makes that insert fail, and the refresh
    is repeated skipping those present — nobody twice, nobody lost. The other transaction's
    foreign-key check (FOR KEY SHARE on the pool) does not wait for the refresh's lock on it."""
    added_meanwhile, *others = make_candidates(3, city="Lisbon")
    other = connections.create_connection(DEFAULT_DB_ALIAS)
    other.set_autocommit(False)
    with other.cursor() as cursor:
        cursor.execute(
            "INSERT INTO pipelines_poolmembership (organization_id, pool_id, candidate_id,"
            " stage_id, entered_stage_at, added_at, source) VALUES (%s, %s, %s, %s, now(),"
            " now(), 'manual')",
            [org.pk, smart_pool.pk, added_meanwhile.pk, stages[0].pk],
        )
    outcome = []

    def refresh():
        try:
            with scope(organization=org):
                outcome.append(services.smart_pool_refresh(pool=smart_pool))
        finally:
            connection.close()

    thread = threading.Thread(target=refresh)
    thread.start()
    try:
        _wait_for_a_lock_wait()
        other.commit()
    finally:
        other.close()
    thread.join(timeout=30)

    assert outcome == [(2, 0)]
    with scopes_disabled():
        members = dict(
            PoolMembership.objects.filter(pool=smart_pool).values_list("candidate_id", "source")
        )
        entries = set(
            Activity.objects.filter(kind="pool_added").values_list("candidate_id", flat=True)
        )
    assert members == {added_meanwhile.pk: "manual", others[0].pk: "smart", others[1].pk: "smart"}
    assert entries == {others[0].pk, others[1].pk}


def _wait_for_a_lock_wait(timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
        time.sleep(0.05)
    raise AssertionError("the refresh never waited for the other transaction's insert")
