"""A launch snapshots its audience in batches, enrolls the first at once and the rest in a task
(services/campaigns.py), so the first emails go out while a large audience is enrolled; a
worker killed halfway leaves whole batches that the dispatcher enrolls later — nobody twice,
nobody lost. And the dispatcher task renders a chunk at a time, queueing its continuation
behind the send tasks it queued."""

import base64
import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from datetime import timedelta

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns.models import AudienceBatch, Campaign, Enrollment, Message
from campaigns.services import campaigns as campaign_service
from campaigns.services.campaigns import audience_enroll_pending, campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.tasks import dispatch_task, enroll_task
from campaigns.tests.factories import make_broadcast
from candidates.models import Candidate
from candidates.services.merge import candidate_merge
from candidates.services.profiles import candidate_update

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queue(settings):
    name = f"test-{uuid.uuid4().hex[:8]}"
    settings.CAMPAIGNS_SEND_QUEUE = name
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    yield name
    broker.delete(name)


def _batches(monkeypatch, size: int) -> None:
    monkeypatch.setattr(campaign_service, "AUDIENCE_FIRST_BATCH", size)
    monkeypatch.setattr(campaign_service, "AUDIENCE_BATCH", size)


def _queued_kwargs(queue: str) -> list[dict]:
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    return [
        json.loads(base64.b64decode(json.loads(raw)["body"]))[1]
        for raw in reversed(broker.lrange(queue, 0, -1))
    ]


def _queued_tasks(queue: str) -> list[str]:
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    # kombu publishes with LPUSH and consumes from the right: oldest last.
    return [json.loads(raw)["headers"]["task"] for raw in reversed(broker.lrange(queue, 0, -1))]


def _audience(org, count, *, tag="newsletter", prefix="p"):
    with scopes_disabled():
        Candidate.objects.bulk_create(
            [
                Candidate(
                    organization=org,
                    first_name=f"P{i}",
                    email=f"{prefix}{i}@x.example",
                    tags=[tag],
                )
                for i in range(count)
            ]
        )
        return set(
            Candidate.objects.filter(organization=org, tags__contains=[tag]).values_list(
                "pk", flat=True
            )
        )


def _enrolled(campaign) -> Counter:
    with scopes_disabled():
        return Counter(
            Enrollment.objects.filter(campaign=campaign).values_list("candidate_id", flat=True)
        )


def test_launch_enrolls_the_first_batch_and_a_task_the_rest(
    org, recruiter_user, queue, monkeypatch
):
    _batches(monkeypatch, 4)
    audience = _audience(org, 10)
    campaign = make_broadcast(org, user=recruiter_user)

    with scope(organization=org):
        size = campaign_launch(campaign=campaign, user=recruiter_user)

    first = sorted(audience)[:4]
    assert size == 10
    assert _enrolled(campaign) == Counter(first)  # the first batch, in the launch itself
    with scopes_disabled():
        assert sorted(AudienceBatch.objects.values_list("position", flat=True)) == [1, 2]
    # After commit: the dispatcher first (it can start on the first batch, with a small first
    # chunk), then the enroller.
    assert _queued_tasks(queue) == ["campaigns.dispatch", "campaigns.enroll"]
    assert _queued_kwargs(queue)[0] == {"organization_id": org.pk, "first_chunk": 50}

    assert (
        enroll_task.apply(kwargs={"organization_id": org.pk, "campaign_id": campaign.pk}).get() == 6
    )
    assert _enrolled(campaign) == Counter(audience)  # everyone once
    with scopes_disabled():
        assert not AudienceBatch.objects.exists()
    # The enroller kicked the dispatcher after its first batch and when it was done.
    assert _queued_tasks(queue)[2:] == ["campaigns.dispatch", "campaigns.dispatch"]


def test_the_first_batch_is_smaller_than_the_rest(org, recruiter_user, queue, monkeypatch):
    """The launch waits for the first batch only; the others are bigger."""
    monkeypatch.setattr(campaign_service, "AUDIENCE_FIRST_BATCH", 2)
    monkeypatch.setattr(campaign_service, "AUDIENCE_BATCH", 5)
    audience = sorted(_audience(org, 12))
    campaign = make_broadcast(org, user=recruiter_user)
    with scope(organization=org):
        assert campaign_launch(campaign=campaign, user=recruiter_user) == 12
    with scopes_disabled():
        left = list(
            AudienceBatch.objects.order_by("position").values_list("position", "candidate_ids")
        )
    assert _enrolled(campaign) == Counter(audience[:2])
    assert left == [(1, audience[2:7]), (2, audience[7:])]


def test_the_audience_is_the_one_at_launch(org, recruiter_user, queue, monkeypatch):
    """Who gets the broadcast is decided when it is launched, for every batch."""
    _batches(monkeypatch, 2)
    audience = _audience(org, 6)
    campaign = make_broadcast(org, user=recruiter_user)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)

    late = _audience(org, 3, prefix="late") - audience  # match the audience after launch
    with scopes_disabled():
        # Left the audience after launch: still enrolled (guard rails are checked at send time).
        Candidate.objects.filter(pk=max(audience)).update(tags=["other"])
    audience_enroll_pending(campaign_id=campaign.pk)

    assert _enrolled(campaign) == Counter(audience)
    assert not late & set(_enrolled(campaign))


@pytest.mark.parametrize("status", ["do_not_contact", "hired"])
def test_a_candidate_marked_do_not_contact_or_hired_after_launch_does_not_join(
    org, recruiter_user, queue, monkeypatch, status
):
    """Their status change stopped their enrollments at once, before their batch had one to
    stop: the batch leaves them out rather than enroll them as active."""
    _batches(monkeypatch, 3)
    audience = _audience(org, 6)
    campaign = make_broadcast(org, user=recruiter_user)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)
        waiting = AudienceBatch.objects.get(campaign=campaign).candidate_ids[0]
        candidate_update(
            candidate=Candidate.objects.get(pk=waiting), actor=recruiter_user, status=status
        )

    assert audience_enroll_pending(campaign_id=campaign.pk) == 2
    assert _enrolled(campaign) == Counter(audience - {waiting})


def test_a_deleted_candidate_is_left_out_and_the_batch_still_enrolls(
    org, recruiter_user, queue, monkeypatch
):
    _batches(monkeypatch, 3)
    audience = _audience(org, 6)
    campaign = make_broadcast(org, user=recruiter_user)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)
    gone = max(audience)
    with scopes_disabled():
        Candidate.objects.filter(pk=gone).delete()

    assert audience_enroll_pending(campaign_id=campaign.pk) == 2
    assert _enrolled(campaign) == Counter(audience - {gone})


def test_a_candidate_merged_after_launch_is_replaced_by_the_profile_kept(
    org, recruiter_user, queue, monkeypatch
):
    """Merged after the launch, before their batch was enrolled: the profile kept joins
    instead, once, even when it was in the audience too."""
    _batches(monkeypatch, 3)
    audience = sorted(_audience(org, 6))
    with scopes_disabled():
        outsider = Candidate.objects.create(organization=org, first_name="O", email="o@x.example")
    campaign = make_broadcast(org, user=recruiter_user)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)
        pending = list(AudienceBatch.objects.filter(campaign=campaign))
        late = pending[0].candidate_ids
        both_listed, merged_away = late[0], late[1]
        # One merged into another listed profile, one into a profile outside the audience.
        candidate_merge(
            primary=Candidate.objects.get(pk=both_listed),
            secondary=Candidate.objects.get(pk=merged_away),
            field_choices={},
            actor=None,
        )
        candidate_merge(
            primary=outsider,
            secondary=Candidate.objects.get(pk=late[2]),
            field_choices={},
            actor=None,
        )

    audience_enroll_pending(campaign_id=campaign.pk)

    expected = (set(audience) - {merged_away, late[2]}) | {outsider.pk}
    assert _enrolled(campaign) == Counter(expected)


def test_batches_of_a_cancelled_campaign_are_dropped(org, recruiter_user, queue, monkeypatch):
    _batches(monkeypatch, 2)
    audience = _audience(org, 5)
    campaign = make_broadcast(org, user=recruiter_user)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)
    with scopes_disabled():
        Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.CANCELLED)

    assert audience_enroll_pending(campaign_id=campaign.pk) == 0
    assert _enrolled(campaign) == Counter(sorted(audience)[:2])
    with scopes_disabled():
        assert not AudienceBatch.objects.exists()


def test_a_campaign_is_not_done_while_part_of_its_audience_waits(
    org, recruiter_user, queue, monkeypatch
):
    _batches(monkeypatch, 2)
    _audience(org, 5)
    campaign = make_broadcast(org, user=recruiter_user)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)

    report = dispatch_due()  # the batches are fresh: their task is expected to enroll them
    with scopes_disabled():
        status = Campaign.objects.get(pk=campaign.pk).status
    assert (report.claimed, report.enrolled, status) == (2, 0, Campaign.Status.RUNNING)

    audience_enroll_pending(campaign_id=campaign.pk)
    dispatch_due()
    with scopes_disabled():
        assert Message.objects.filter(campaign=campaign).count() == 5
        Message.objects.filter(campaign=campaign).update(status=Message.Status.SENT)
    dispatch_due()
    with scopes_disabled():
        campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DONE


_CRASHING_ENROLLER = """
import os, signal
import django
django.setup()
from campaigns.services import campaigns as service

real, done = service._batch_enroll, []

def enroll_then_die(*, batch_id):
    enrolled = real(batch_id=batch_id)  # the INSERT and the DELETE, not yet committed
    done.append(batch_id)
    if len(done) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return enrolled

service._batch_enroll = enroll_then_die
service.audience_enroll_pending(campaign_id=int(os.environ["CAMPAIGN_ID"]))
"""


def test_a_worker_killed_mid_enrollment_loses_and_duplicates_nobody(
    org, recruiter_user, queue, monkeypatch
):
    """A real process enrolls the batches and is SIGKILLed inside its second batch's
    transaction; the dispatcher later enrolls what is left."""
    _batches(monkeypatch, 25)
    audience = _audience(org, 120)  # 5 batches: 1 at launch, 4 for the enroller
    campaign = make_broadcast(org, user=recruiter_user)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)

    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        "CAMPAIGN_ID": str(campaign.pk),
    }
    worker = subprocess.run(
        [sys.executable, "-c", _CRASHING_ENROLLER],
        env=env,
        cwd=django_settings.BASE_DIR,
        timeout=120,
        check=False,
    )
    assert worker.returncode == -signal.SIGKILL

    enrolled = _enrolled(campaign)
    with scopes_disabled():
        left = list(AudienceBatch.objects.order_by("position").values_list("position", flat=True))
    # Batch 1 committed; batch 2 died with its transaction and is still waiting, as are 3 and 4.
    assert sum(enrolled.values()) == 50 and max(enrolled.values()) == 1
    assert left == [2, 3, 4]

    report = dispatch_due(now=timezone.now() + timedelta(seconds=31))  # beat, a minute later
    assert report.enrolled == 70
    assert _enrolled(campaign) == Counter(audience)  # everyone, once
    with scopes_disabled():
        assert not AudienceBatch.objects.exists()


def test_the_dispatch_task_renders_a_chunk_then_queues_its_continuation(org, recruiter_user, queue):
    _audience(org, 1200)
    campaign = make_broadcast(org, user=recruiter_user)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)
        campaign_service.audience_enroll_pending(campaign_id=campaign.pk)
    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).delete(queue)

    dispatch_task.apply(kwargs={"organization_id": org.pk, "first_chunk": 50})  # the launch's
    # A first chunk of 50 rendered; its send task first, then the dispatcher's continuation.
    assert _queued_tasks(queue) == ["campaigns.send_messages", "campaigns.dispatch"]
    assert len(_queued_kwargs(queue)[0]["message_ids"]) == 50
    assert _queued_kwargs(queue)[1] == {"organization_id": org.pk}  # then chunks of 500

    dispatch_task.apply(kwargs={"organization_id": org.pk})
    dispatch_task.apply(kwargs={"organization_id": org.pk})
    dispatch_task.apply(kwargs={"organization_id": org.pk})  # 150 left: no continuation
    assert Counter(_queued_tasks(queue)) == {"campaigns.send_messages": 4, "campaigns.dispatch": 3}
    assert [len(k["message_ids"]) for k in _queued_kwargs(queue) if "message_ids" in k] == [
        50,
        500,
        500,
        150,
    ]
    with scopes_disabled():
        assert Message.objects.filter(campaign=campaign).count() == 1200
