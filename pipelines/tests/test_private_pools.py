"""An "Only me" pool stays its owner's: a colleague reads neither its name nor its stages on a
candidate's timeline (the entries stay, in vaguer words), however the candidate got there."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_scopes import scopes_disabled

from candidates.models import Activity
from candidates.tests.factories import CandidateFactory
from pipelines import services
from pipelines.models import Pool, PoolMembership
from pipelines.tests.factories import PoolFactory

pytestmark = pytest.mark.django_db

SECRET = "Poaching list Zanzibar"
SECRET_STAGES = ("Quietly approached", "Counter-offer Kilimanjaro")


def _profile(client, org, candidate, **params) -> str:
    url = reverse("candidates:detail", args=[org.slug, candidate.pk])
    response = client.get(url, params)
    assert response.status_code == 200
    return response.content.decode()


def _summaries(response_context) -> list[str]:
    return [activity.summary for activity in response_context["timeline"]]


@pytest.fixture
def private_pool(org, recruiter_user, stages, in_org):
    """The recruiter's "Only me" pool, with stages of its own named like the pool."""
    pool = PoolFactory(
        organization=org, owner=recruiter_user, name=SECRET, visibility=Pool.Visibility.OWNER
    )
    with in_org():
        own = services.pool_customize_stages(pool=pool)
        services.stage_update(stage=own[1], name=SECRET_STAGES[0], outcome=own[1].outcome)
        services.stage_update(stage=own[2], name=SECRET_STAGES[1], outcome=own[2].outcome)
        pool.refresh_from_db()
    return pool


@pytest.fixture
def story(org, recruiter_user, private_pool, in_org):
    """A candidate added to the private pool, moved twice (one card, then in bulk) and
    removed again, all by the pool's owner."""
    candidate = CandidateFactory(organization=org)
    with in_org():
        services.pool_add_candidates(
            pool=private_pool, candidate_ids=[candidate.pk], actor=recruiter_user
        )
        stages = list(private_pool.own_stages.order_by("position"))
        membership = PoolMembership.objects.select_related("pool", "stage", "candidate").get(
            pool=private_pool, candidate=candidate
        )
        services.membership_move(membership=membership, to_stage=stages[1], actor=recruiter_user)
        services.memberships_move_bulk(
            pool=private_pool,
            membership_ids=[membership.pk],
            to_stage=stages[2],
            actor=recruiter_user,
        )
        services.pool_remove_candidates(
            pool=private_pool, candidate_ids=[candidate.pk], actor=recruiter_user
        )
    return candidate


REDACTED = [
    "Removed from a private pool",
    "Moved to another stage in a private pool",
    "Moved to another stage in a private pool",
    "Added to a private pool",
]


def _pool_entries(client, org, candidate, **params) -> list[str]:
    url = reverse("candidates:detail", args=[org.slug, candidate.pk])
    response = client.get(url, params)
    kinds = {Activity.Kind.POOL_ADDED, Activity.Kind.POOL_REMOVED, Activity.Kind.STAGE_CHANGED}
    return [a.summary for a in response.context["timeline"] if a.kind in kinds]


@pytest.mark.parametrize("colleague", ["viewer_client", "admin_client"])
def test_private_pool_history_is_redacted_on_a_colleagues_timeline(
    request, org, story, private_pool, colleague
):
    client = request.getfixturevalue(colleague)

    body = _profile(client, org, story)

    assert "Zanzibar" not in body
    for stage in SECRET_STAGES:
        assert stage not in body and "Kilimanjaro" not in body
    assert _pool_entries(client, org, story) == REDACTED
    # the board itself stays out of reach
    board = client.get(reverse("pipelines:pool_board", args=[org.slug, private_pool.pk]))
    assert board.status_code == 404


def test_private_pool_history_is_redacted_under_the_pipeline_filter_too(org, story, viewer_client):
    body = _profile(viewer_client, org, story, show="pipeline")

    assert "Zanzibar" not in body and "Quietly approached" not in body
    assert _pool_entries(viewer_client, org, story, show="pipeline") == REDACTED


def test_private_pool_owner_reads_the_whole_history(org, story, recruiter_client):
    assert _pool_entries(recruiter_client, org, story) == [
        f"Removed from the pool “{SECRET}”",
        f"{SECRET}: moved to {SECRET_STAGES[1]}",
        f"{SECRET}: New → {SECRET_STAGES[0]}",
        f"Added to the pool “{SECRET}”",
    ]


def test_a_pool_shared_later_shows_its_history_to_everyone(
    org, story, private_pool, viewer_client, in_org
):
    with in_org():
        services.pool_update(pool=private_pool, visibility=Pool.Visibility.ORGANIZATION)

    assert _pool_entries(viewer_client, org, story)[-1] == f"Added to the pool “{SECRET}”"


def test_a_shared_pool_made_private_hides_its_past_entries(
    org, recruiter_user, stages, viewer_client, in_org
):
    pool = PoolFactory(organization=org, owner=recruiter_user, name=SECRET)
    candidate = CandidateFactory(organization=org)
    with in_org():
        services.pool_add_candidates(pool=pool, candidate_ids=[candidate.pk], actor=None)
        services.pool_update(pool=pool, visibility=Pool.Visibility.OWNER)

    assert _pool_entries(viewer_client, org, candidate) == ["Added to a private pool"]


def test_deleting_a_private_pool_keeps_its_name_off_every_timeline(
    org, admin_user, stages, recruiter_client, admin_client, in_org
):
    pool = PoolFactory(
        organization=org, owner=admin_user, name=SECRET, visibility=Pool.Visibility.OWNER
    )
    shared = PoolFactory(organization=org, owner=admin_user, name="Shared and deleted")
    candidate = CandidateFactory(organization=org)
    with in_org():
        for each in (pool, shared):
            services.pool_add_candidates(pool=each, candidate_ids=[candidate.pk], actor=None)
            services.pool_delete(pool=each)

    for client in (recruiter_client, admin_client):
        assert _pool_entries(client, org, candidate) == [
            "Added to the pool “Shared and deleted”",
            "Added to a private pool",
        ]


def test_private_pool_entries_of_another_candidate_or_pool_are_left_alone(
    org, story, recruiter_user, stages, viewer_client, in_org
):
    shared = PoolFactory(organization=org, owner=recruiter_user, name="Backend engineers")
    with in_org():
        services.pool_add_candidates(pool=shared, candidate_ids=[story.pk], actor=None)

    entries = _pool_entries(viewer_client, org, story)

    assert entries == ["Added to the pool “Backend engineers”", *REDACTED]


def test_profile_query_count_does_not_grow_with_private_pool_entries(
    org, recruiter_user, stages, viewer_client, in_org
):
    """The database says which entries to redact, in the timeline's one query."""
    counts = []
    for pools in (0, 1, 4):
        candidate = CandidateFactory(organization=org)
        with in_org():
            for index in range(pools):
                private = PoolFactory(
                    organization=org,
                    owner=recruiter_user,
                    name=f"{SECRET} {pools}-{index}",
                    visibility=Pool.Visibility.OWNER,
                )
                services.pool_add_candidates(
                    pool=private, candidate_ids=[candidate.pk], actor=recruiter_user
                )
        url = reverse("candidates:detail", args=[org.slug, candidate.pk])
        with CaptureQueriesContext(connection) as queries:
            response = viewer_client.get(url)
        assert _summaries(response.context).count("Added to a private pool") == pools
        counts.append(len(queries))

    assert counts[0] == counts[1] == counts[2]


def test_pools_hidden_is_what_pools_visible_leaves_out(
    org, recruiter_user, admin_user, stages, in_org
):
    from pipelines.selectors import pool_visible_to, pools_hidden, pools_visible

    shared = PoolFactory(organization=org, owner=admin_user)
    mine = PoolFactory(organization=org, owner=recruiter_user, visibility=Pool.Visibility.OWNER)
    theirs = PoolFactory(organization=org, owner=admin_user, visibility=Pool.Visibility.OWNER)
    orphan = PoolFactory(organization=org, owner=None, visibility=Pool.Visibility.OWNER)
    with in_org():
        services.pool_archive(pool=theirs)
        visible = set(pools_visible(organization=org, user=recruiter_user, archived=None))
        hidden = set(pools_hidden(organization=org, user=recruiter_user))

    assert visible == {shared, mine}
    assert hidden == {theirs, orphan}
    with scopes_disabled():
        assert [pool_visible_to(pool=p, user=recruiter_user) for p in (shared, mine)] == [
            True,
            True,
        ]
        assert [pool_visible_to(pool=p, user=recruiter_user) for p in (theirs, orphan)] == [
            False,
            False,
        ]
