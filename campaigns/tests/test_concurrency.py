"""Concurrency of the dispatcher: two dispatchers at once claim each enrollment once (with a
control run showing that the same measurement catches a claim without the lock), and a
rolled-back transaction queues nothing on the real broker."""

import threading
import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection, connections, transaction
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns.models import Campaign, Enrollment, Message, Step
from campaigns.services import dispatch, sequences
from campaigns.services.campaigns import campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.tests.factories import make_broadcast, make_candidates
from candidates.models import Activity, Candidate

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


@pytest.fixture
def queue(settings):
    """A send queue of this test's own, emptied at the end (the dispatcher queues send tasks)."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    settings.CAMPAIGNS_SEND_QUEUE = name
    yield name
    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).delete(name)


class TwoDispatchers:
    """Runs the real dispatcher (`dispatch_due`) in two threads, each on its own database
    connection, and records what each one claimed and rendered.

    Each dispatcher's first claim is held open — its rows read (and, with the lock, locked),
    its transaction not yet written — until the other has made its own first claim too, so
    the two claims always overlap. Claims and renders are counted, not only Messages: the
    unique (enrollment, step) constraint and `ON CONFLICT DO NOTHING` would hide a double
    claim from a count of Messages."""

    def __init__(self, monkeypatch):
        self.claimed: list[list[list[int]]] = [[], []]  # per dispatcher: the ids of each claim
        self.rendered: list[Counter] = [Counter(), Counter()]  # per dispatcher: enrollment ids
        self.reports = []
        self._local = threading.local()
        self._overlap = threading.Barrier(2, timeout=30)
        claim_chunk, message_row = dispatch._claim_chunk, dispatch._message_row

        def claim_and_hold(**kwargs):
            enrollments = claim_chunk(**kwargs)
            claims = self.claimed[self._local.index]
            claims.append([enrollment.pk for enrollment in enrollments])
            if len(claims) == 1:
                self._overlap.wait()  # after the read, before anything is written
            return enrollments

        def render_and_count(**kwargs):
            self.rendered[self._local.index][kwargs["enrollment"].pk] += 1
            return message_row(**kwargs)

        monkeypatch.setattr(dispatch, "_claim_chunk", claim_and_hold)
        monkeypatch.setattr(dispatch, "_message_row", render_and_count)

    def run(self) -> None:
        def dispatcher(index):
            self._local.index = index
            return dispatch_due()

        self.reports = _in_threads(dispatcher)

    def claims_per_enrollment(self) -> Counter:
        return Counter(pk for claims in self.claimed for claim in claims for pk in claim)

    def renders_per_enrollment(self) -> Counter:
        return self.rendered[0] + self.rendered[1]


def _messages_per_enrollment(campaign) -> Counter:
    with scopes_disabled():
        return Counter(
            Message.objects.filter(campaign=campaign).values_list("enrollment_id", flat=True)
        )


def _enrollment_ids(campaign) -> set[int]:
    with scopes_disabled():
        return set(Enrollment.objects.filter(campaign=campaign).values_list("pk", flat=True))


def test_two_dispatchers_at_once_claim_each_enrollment_once(
    org, recruiter_user, queue, monkeypatch
):
    campaign = _due_enrollments(org, recruiter_user, 1500)  # three chunks of 500
    dispatchers = TwoDispatchers(monkeypatch)

    dispatchers.run()

    everyone = _enrollment_ids(campaign)
    first_claims = [set(claims[0]) for claims in dispatchers.claimed]
    # Both first claims were made while the other was held open, and neither came back empty:
    # the two dispatchers really did claim at the same time…
    assert all(first_claims), dispatchers.claimed
    # …and SKIP LOCKED gave them different enrollments.
    assert first_claims[0].isdisjoint(first_claims[1])
    assert dispatchers.claims_per_enrollment() == Counter(dict.fromkeys(everyone, 1))
    assert dispatchers.renders_per_enrollment() == Counter(dict.fromkeys(everyone, 1))
    assert sum(report.claimed for report in dispatchers.reports) == 1500
    assert _messages_per_enrollment(campaign) == Counter(dict.fromkeys(everyone, 1))


def _claim_without_the_lock(monkeypatch) -> None:
    """The dispatcher's claim query as it is, minus `FOR UPDATE SKIP LOCKED`: the only change."""
    due_enrollments = dispatch.due_enrollments

    def due_unlocked(**kwargs):
        queryset = due_enrollments(**kwargs).all()
        queryset.query.select_for_update = False
        return queryset

    now = timezone.now()
    with scopes_disabled(), transaction.atomic():  # FOR UPDATE compiles only in a transaction
        locked_sql = str(due_enrollments(now=now).query)
        unlocked_sql = str(due_unlocked(now=now).query)
    assert "FOR UPDATE" in locked_sql and "FOR UPDATE" not in unlocked_sql
    assert unlocked_sql == locked_sql[: locked_sql.index(" FOR UPDATE")]
    monkeypatch.setattr(dispatch, "due_enrollments", due_unlocked)


def test_control_two_dispatchers_without_the_lock_claim_each_enrollment_twice(
    org, recruiter_user, queue, monkeypatch
):
    """The control run: the same dispatchers and the same counting, with the lock taken out of
    the claim. Both read the same due enrollments before either writes (the barrier), so both
    claim and render every one of them — which the count of Messages alone would not show."""
    campaign = _due_enrollments(org, recruiter_user, 300)  # one chunk: both read all 300
    _claim_without_the_lock(monkeypatch)
    dispatchers = TwoDispatchers(monkeypatch)

    dispatchers.run()

    everyone = _enrollment_ids(campaign)
    assert [set(claims[0]) for claims in dispatchers.claimed] == [everyone, everyone]
    assert dispatchers.claims_per_enrollment() == Counter(dict.fromkeys(everyone, 2))
    assert dispatchers.renders_per_enrollment() == Counter(dict.fromkeys(everyone, 2))
    assert sum(report.claimed for report in dispatchers.reports) == 600
    # The outbox still holds one Message each: the unique constraint hid the double claim.
    assert _messages_per_enrollment(campaign) == Counter(dict.fromkeys(everyone, 1))


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


def test_two_moves_of_the_same_step_at_once_both_apply(org, recruiter_user):
    """Two requests loaded the third step before either moved it up. The second waits for the
    campaign's lock, then moves the step on from where the first left it (before: it moved from
    the stale position and hit the unique position, an IntegrityError and a 500)."""
    with scopes_disabled():
        campaign = Campaign.objects.create(
            organization=org,
            name="Platform nurture",
            kind=Campaign.Kind.SEQUENCE,
            sender=recruiter_user,
            created_by=recruiter_user,
        )
        for position in (1, 2, 3):
            Step.objects.create(
                organization=org,
                campaign=campaign,
                position=position,
                subject=f"Email {position}",
                body_markdown="Hi",
            )
        loaded = [campaign.steps.get(position=3) for _ in range(2)]

    def move(index):
        with scopes_disabled():
            sequences.step_move(step=loaded[index], direction="up")

    _in_threads(move)

    with scopes_disabled():
        subjects = list(campaign.steps.order_by("position").values_list("subject", flat=True))
    assert subjects == ["Email 3", "Email 1", "Email 2"]


def _running_sequence(org, user) -> Campaign:
    with scopes_disabled():
        campaign = Campaign.objects.create(
            organization=org,
            name="Platform nurture",
            kind=Campaign.Kind.SEQUENCE,
            status=Campaign.Status.RUNNING,
            sender=user,
            created_by=user,
        )
        Step.objects.create(
            organization=org,
            campaign=campaign,
            position=1,
            subject="Hello",
            body_markdown="Hi",
            delay=timedelta(days=3),
        )
    return campaign


def _waiting_for_a_lock() -> int:
    """Other connections of this database blocked on a lock (PostgreSQL's own view, read from
    this connection outside any transaction, so it is fresh on every call)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def test_two_enrolments_of_the_same_candidates_at_once_join_and_say_so_once(org, recruiter_user):
    """A double-submitted enrol form (or two recruiters): the second submission works out who
    joins before the first has committed, so it sees nobody enrolled yet. Its insert then waits
    for the first's rows and inserts none; it must write no "Joined" entry and report 0 joined
    (before: both wrote the timeline entries and both said 3 joined)."""
    campaign = _running_sequence(org, recruiter_user)
    ids = [candidate.pk for candidate in make_candidates(org, 3)]
    first_inserted, commit_first = threading.Event(), threading.Event()
    joined = {}

    def first():
        try:
            with scopes_disabled(), transaction.atomic():
                joined["first"] = sequences.sequence_enroll(campaign=campaign, candidate_ids=ids)
                first_inserted.set()
                commit_first.wait(timeout=30)
        finally:
            connections.close_all()

    def second():
        try:
            with scopes_disabled():
                joined["second"] = sequences.sequence_enroll(campaign=campaign, candidate_ids=ids)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    assert first_inserted.wait(timeout=30)
    threads[1].start()
    deadline = time.monotonic() + 30
    while _waiting_for_a_lock() == 0 and time.monotonic() < deadline:
        time.sleep(0.02)  # until the second submission waits for the first's rows
    blocked = _waiting_for_a_lock()
    commit_first.set()
    for thread in threads:
        thread.join(timeout=60)

    with scopes_disabled():
        enrollments = Enrollment.objects.filter(campaign=campaign).count()
        entries = Counter(
            Activity.objects.filter(
                kind=Activity.Kind.ENROLLMENT, summary__startswith="Joined"
            ).values_list("candidate_id", flat=True)
        )
    assert blocked == 1
    assert (joined["first"], joined["second"]) == (3, 0)
    assert enrollments == 3
    assert entries == dict.fromkeys(ids, 1)
