"""Joining a sequence from its pool does not depend on the Celery broker: who enters the pool is
stored with the pool change (an auto-join batch), the `campaigns.sequence_auto_join` task is
only a head start, and the dispatcher's minute enrolls the batches whose task never came (the
broker was down, a Redis restart or a lost worker dropped it) — once the task has had its
chance, with the same rules as the task, and never twice. The outside world here is the
broker: the Celery app is pointed at a port where nothing listens (`broker_down`), or runs
tasks in-process (`eager_celery`); the dispatcher, the services and PostgreSQL are real."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from campaigns.models import CandidateEmailPreference, Enrollment
from campaigns.services import sequences
from campaigns.services.campaigns import sequence_end
from campaigns.services.dispatch import dispatch_due
from campaigns.tests.factories import make_candidates
from campaigns.tests.test_broker_down import broker_down  # noqa: F401 (a fixture)
from campaigns.tests.test_sequences import (
    _auto_join_sequence,
    eager_celery,  # noqa: F401 (a fixture)
    timeline,
)
from candidates.models import Candidate

pytestmark = pytest.mark.django_db

# The task's chance: a round this soon after the pool change leaves the batch to the task,
# one this late enrolls it (sequences.AUTO_JOIN_STALE_SECONDS is a minute).
WITHIN_GRACE = timedelta(seconds=10)
AFTER_GRACE = timedelta(minutes=2)
JOINED = "Joined the campaign “Platform nurture” (entered the pool “Backend”)"


def _pool(org, name="Backend"):
    from pipelines.tests.factories import PoolFactory

    return PoolFactory(organization=org, name=name)


def _enter(pool, candidates, in_org, capture):
    """Candidates enter the pool as the board adds them; what is queued on commit runs."""
    from pipelines.services import pool_add_candidates

    with capture(execute=True), in_org():
        pool_add_candidates(pool=pool, candidate_ids=[c.pk for c in candidates], actor=None)


def _enrolled(campaign) -> set[int]:
    with scopes_disabled():
        return set(
            Enrollment.objects.filter(campaign=campaign).values_list("candidate_id", flat=True)
        )


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("broker_down")
def test_entrant_whose_task_is_lost_joins_at_the_first_round_after_the_grace_period(
    org, recruiter_user, recruiter_client
):
    pool = _pool(org)
    campaign = _auto_join_sequence(org, recruiter_user, pool)
    (candidate,) = make_candidates(org, 1)

    # The profile's "Add to pool": the change commits, so the page does not answer 500.
    response = recruiter_client.post(
        reverse("pipelines:candidate_add_to_pool", args=[org.slug, candidate.pk]),
        {"pool": pool.pk},
    )

    assert response.status_code == 302
    dispatch_due(now=timezone.now() + WITHIN_GRACE)
    assert _enrolled(campaign) == set()
    dispatch_due(now=timezone.now() + AFTER_GRACE)
    assert _enrolled(campaign) == {candidate.pk}
    with scopes_disabled():
        enrollment = Enrollment.objects.select_related("current_step").get(campaign=campaign)
    assert (enrollment.status, enrollment.current_step.position) == ("active", 1)
    assert timeline(candidate) == [JOINED]


@pytest.mark.usefixtures("broker_down")
def test_backstop_leaves_out_whom_the_task_would_leave_out(
    org, recruiter_user, in_org, django_capture_on_commit_callbacks
):
    pool = _pool(org)
    campaign = _auto_join_sequence(org, recruiter_user, pool)
    (welcome,) = make_candidates(org, 1)
    (unsubscribed,) = make_candidates(org, 1)
    (do_not_contact,) = make_candidates(org, 1, status=Candidate.Status.DO_NOT_CONTACT)
    (hired,) = make_candidates(org, 1, status=Candidate.Status.HIRED)
    with scopes_disabled():
        CandidateEmailPreference.objects.create(
            organization=org, candidate=unsubscribed, unsubscribed_at=timezone.now()
        )

    _enter(
        pool,
        [welcome, unsubscribed, do_not_contact, hired],
        in_org,
        django_capture_on_commit_callbacks,
    )
    dispatch_due(now=timezone.now() + AFTER_GRACE)
    dispatch_due(now=timezone.now() + 2 * AFTER_GRACE)

    assert _enrolled(campaign) == {welcome.pk}
    assert [timeline(c) for c in (unsubscribed, do_not_contact, hired)] == [[], [], []]


@pytest.mark.usefixtures("eager_celery")
def test_nobody_joins_twice_when_the_task_did_run(
    org, recruiter_user, in_org, django_capture_on_commit_callbacks
):
    pool = _pool(org)
    campaign = _auto_join_sequence(org, recruiter_user, pool)
    (candidate,) = make_candidates(org, 1)

    _enter(pool, [candidate], in_org, django_capture_on_commit_callbacks)
    assert _enrolled(campaign) == {candidate.pk}
    dispatch_due(now=timezone.now() + AFTER_GRACE)

    assert _enrolled(campaign) == {candidate.pk}
    assert timeline(candidate) == [JOINED]


@pytest.mark.usefixtures("broker_down")
def test_paused_sequence_takes_nobody_from_a_lost_task_even_after_resume(
    org, recruiter_user, in_org, django_capture_on_commit_callbacks
):
    pool = _pool(org)
    campaign = _auto_join_sequence(org, recruiter_user, pool)
    (before_pause,) = make_candidates(org, 1)
    (during_pause,) = make_candidates(org, 1)

    # Entered while it ran, but its task was lost; paused before the dispatcher came: the task
    # would have found it paused too.
    _enter(pool, [before_pause], in_org, django_capture_on_commit_callbacks)
    with scopes_disabled():
        sequences.campaign_pause(campaign=campaign, user=recruiter_user)
    _enter(pool, [during_pause], in_org, django_capture_on_commit_callbacks)
    dispatch_due(now=timezone.now() + AFTER_GRACE)
    assert _enrolled(campaign) == set()

    with scopes_disabled():
        sequences.campaign_resume(
            campaign=campaign, user=recruiter_user, overdue=sequences.Overdue.SEND_NOW
        )
    dispatch_due(now=timezone.now() + 2 * AFTER_GRACE)
    assert _enrolled(campaign) == set()


@pytest.mark.usefixtures("broker_down")
def test_ended_sequence_takes_nobody_from_a_lost_task(
    org, recruiter_user, in_org, django_capture_on_commit_callbacks
):
    pool = _pool(org)
    campaign = _auto_join_sequence(org, recruiter_user, pool)
    (candidate,) = make_candidates(org, 1)

    _enter(pool, [candidate], in_org, django_capture_on_commit_callbacks)
    with scopes_disabled():
        sequence_end(campaign=campaign, user=recruiter_user)
    dispatch_due(now=timezone.now() + AFTER_GRACE)

    assert _enrolled(campaign) == set()


@pytest.mark.usefixtures("broker_down")
def test_dispatcher_of_another_organisation_leaves_the_batch_alone(
    org, other_org, recruiter_user, in_org, django_capture_on_commit_callbacks
):
    pool = _pool(org)
    campaign = _auto_join_sequence(org, recruiter_user, pool)
    (candidate,) = make_candidates(org, 1)

    _enter(pool, [candidate], in_org, django_capture_on_commit_callbacks)
    dispatch_due(now=timezone.now() + AFTER_GRACE, organization_id=other_org.pk)
    assert _enrolled(campaign) == set()
    dispatch_due(now=timezone.now() + AFTER_GRACE, organization_id=org.pk)
    assert _enrolled(campaign) == {candidate.pk}


def _sequences_joined(org, user, in_org, capture, count: int) -> None:
    """`count` more auto-join sequences, each with its own pool and an entrant whose task ran."""
    for index in range(count):
        pool = _pool(org, name=f"Pool {index}")
        _auto_join_sequence(org, user, pool)
        _enter(pool, make_candidates(org, 1), in_org, capture)


def _round_queries() -> tuple[int, int]:
    """(queries of a dispatcher round, those of them that look for lost auto-join tasks)."""
    with CaptureQueriesContext(connection) as queries:
        dispatch_due(now=timezone.now() + AFTER_GRACE)
    return len(queries), sum("autojoin" in query["sql"].lower() for query in queries)


@pytest.mark.usefixtures("eager_celery")
def test_round_with_nothing_lost_costs_the_same_whatever_the_number_of_sequences(
    org, recruiter_user, in_org, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    _sequences_joined(org, recruiter_user, in_org, capture, 1)
    one = _round_queries()
    _sequences_joined(org, recruiter_user, in_org, capture, 2)
    three = _round_queries()

    assert one == three
    assert one[1] == 1
