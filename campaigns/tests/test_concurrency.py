"""Concurrency of the dispatcher: two dispatchers at once claim each enrollment once (with a
control run showing that the same measurement catches a claim without the lock), and a
rolled-back transaction queues nothing on the real broker."""

import threading
import uuid

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection, connections, transaction
from django.db.models import Count
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns.models import Campaign, Enrollment, Message, Step
from campaigns.services.campaigns import campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.tests.factories import make_broadcast, make_candidates
from candidates.models import Candidate

pytestmark = pytest.mark.django_db(transaction=True)


def _due_enrollments(org, user, count) -> Campaign:
    """A running campaign with `count` due enrollments (bulk-created: fast)."""
    campaign = make_broadcast(org, user=user)
    with scopes_disabled():
        Candidate.objects.bulk_create(
            [
                Candidate(organization=org, first_name=f"C{i}", email=f"c{i}@example.com")
                for i in range(count)
            ]
        )
        step = campaign.steps.get()
        Enrollment.objects.bulk_create(
            [
                Enrollment(
                    organization=org,
                    campaign=campaign,
                    candidate=candidate,
                    current_step=step,
                    next_run_at=timezone.now(),
                )
                for candidate in Candidate.objects.filter(organization=org)
            ]
        )
        Campaign.objects.filter(pk=campaign.pk).update(status="running")
    return campaign


def _in_threads(target, count=2):
    barrier = threading.Barrier(count)
    results, errors = [None] * count, []

    def run(index):
        try:
            barrier.wait()
            results[index] = target(index)
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    return results


def test_two_dispatchers_at_once_claim_each_enrollment_once(org, recruiter_user, settings):
    settings.CAMPAIGNS_SEND_QUEUE = f"test-{uuid.uuid4().hex[:8]}"
    campaign = _due_enrollments(org, recruiter_user, 1500)  # three chunks of 500

    reports = _in_threads(lambda _: dispatch_due())

    claimed = [report.claimed for report in reports]
    with scopes_disabled():
        messages = Message.objects.filter(campaign=campaign).count()
        per_enrollment = set(
            Message.objects.filter(campaign=campaign)
            .values("enrollment")
            .annotate(n=Count("pk"))
            .values_list("n", flat=True)
        )
    assert sum(claimed) == 1500  # no enrollment claimed twice…
    assert messages == 1500  # …and one message each
    assert per_enrollment == {1}
    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).delete(settings.CAMPAIGNS_SEND_QUEUE)


CLAIM_WITHOUT_LOCK = """
    SELECT id FROM campaigns_enrollment
    WHERE status = 'active' AND next_run_at <= now() ORDER BY id LIMIT 500
"""
CLAIM_WITH_LOCK = CLAIM_WITHOUT_LOCK + " FOR UPDATE SKIP LOCKED"


def _claim_with(sql):
    """Two claimers run `sql` at the same moment, each in its own transaction, and hold their
    claim until both have looked (the barrier), as a slow dispatcher would."""
    barrier = threading.Barrier(2)

    def claim(_):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
            ids = [row[0] for row in cursor.fetchall()]
            barrier.wait(timeout=30)
            cursor.execute(
                "UPDATE campaigns_enrollment SET status = 'done' WHERE id = ANY(%s)", [ids]
            )
            return ids

    return _in_threads(claim)


def test_control_claim_without_the_lock_claims_enrollments_twice(org, recruiter_user):
    _due_enrollments(org, recruiter_user, 300)
    first, second = _claim_with(CLAIM_WITHOUT_LOCK)
    # The measurement used above detects the race: without the lock both take all 300.
    assert len(first) + len(second) == 600
    assert set(first) & set(second) == set(first)


def test_control_claim_with_skip_locked_claims_each_once(org, recruiter_user):
    _due_enrollments(org, recruiter_user, 300)
    first, second = _claim_with(CLAIM_WITH_LOCK)
    assert len(first) + len(second) == 300
    assert set(first) & set(second) == set()


def test_rolled_back_launch_queues_nothing_on_the_broker(org, recruiter_user, settings):
    queue = f"test-{uuid.uuid4().hex[:8]}"
    settings.CAMPAIGNS_SEND_QUEUE = queue
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    make_candidates(org, 2)
    campaign = make_broadcast(org, user=recruiter_user)

    class Abort(Exception):
        pass

    with pytest.raises(Abort), scope(organization=org), transaction.atomic():
        campaign_launch(campaign=campaign, user=recruiter_user)
        raise Abort
    rolled_back = broker.llen(queue)
    with scopes_disabled():
        enrollments = Enrollment.objects.count()
        status = Campaign.objects.get(pk=campaign.pk).status

    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)  # control: a committed launch
    committed = broker.llen(queue)
    broker.delete(queue)

    assert (rolled_back, enrollments, status) == (0, 0, "draft")
    assert committed == 1  # the dispatcher task, queued after commit


def test_rolled_back_dispatch_queues_no_send_task(org, recruiter_user, settings):
    queue = f"test-{uuid.uuid4().hex[:8]}"
    settings.CAMPAIGNS_SEND_QUEUE = queue
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    _due_enrollments(org, recruiter_user, 10)

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        dispatch_due()
        raise Abort
    with scopes_disabled():
        assert (Message.objects.count(), Step.objects.count()) == (0, 1)
    assert broker.llen(queue) == 0
