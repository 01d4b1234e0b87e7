""" "Enroll in a sequence" on many candidates runs as the list's own bulk actions do: a job in
batches, with a progress page, in the organisation's scope, resumable after its cursor. Small
selections still enroll at once. Either way the dispatcher is kicked once the candidates have
joined, so a first step due at once does not wait for the next beat."""

import json
import uuid

import pytest
import redis
from django.conf import settings as django_settings
from django.contrib.messages import get_messages
from django.urls import reverse
from django_scopes import scopes_disabled

from campaigns.models import Campaign, Enrollment, Step
from campaigns.tests.factories import make_candidates
from candidates.models import Activity, Candidate, Job
from candidates.tasks import bulk_action
from candidates.tests.factories import bulk_job_stopped_after_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def sequence(org, recruiter_user):
    with scopes_disabled():
        campaign = Campaign.objects.create(
            organization=org,
            name="Keep warm",
            kind=Campaign.Kind.SEQUENCE,
            status=Campaign.Status.RUNNING,
            sender=recruiter_user,
            created_by=recruiter_user,
        )
        Step.objects.create(
            organization=org, campaign=campaign, position=1, subject="Hi", body_markdown="Hi"
        )
    return campaign


@pytest.fixture
def queue(settings):
    """The send queue on the real broker, to see which campaigns tasks were queued."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    settings.CAMPAIGNS_SEND_QUEUE = name
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    yield name
    broker.delete(name)


def _queued_tasks(queue: str) -> list[str]:
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    return [json.loads(raw)["headers"]["task"] for raw in reversed(broker.lrange(queue, 0, -1))]


def _enroll_url(org):
    return reverse("campaigns:enroll", args=[org.slug])


def _enrolled(campaign) -> set[int]:
    with scopes_disabled():
        return set(Enrollment.objects.filter(campaign=campaign).values_list("candidate", flat=True))


def _tagged(org, count, tag="bulkx"):
    return sorted(make_candidates(org, count, tags=[tag]), key=lambda c: c.pk)


def _start_job(recruiter_client, org, sequence, settings, capture, monkeypatch, **post):
    """POST the enroll page above the inline limit (3); returns (response, queued tasks)."""
    settings.CANDIDATE_BULK_INLINE_LIMIT = 3
    queued = []
    monkeypatch.setattr(bulk_action, "delay", lambda **kwargs: queued.append(kwargs))
    with capture(execute=True):
        response = recruiter_client.post(_enroll_url(org), {"campaign": sequence.pk, **post})
    return response, queued


def test_enroll_all_matching_above_the_inline_limit_becomes_a_job(
    recruiter_client,
    org,
    recruiter_user,
    sequence,
    settings,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    _tagged(org, 5)
    make_candidates(org, 1, tags=["other"])

    response, queued = _start_job(
        recruiter_client,
        org,
        sequence,
        settings,
        django_capture_on_commit_callbacks,
        monkeypatch,
        query="tags=bulkx",
        confirmed_count="5",
    )

    with scopes_disabled():
        job = Job.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("candidates:job_detail", args=[org.slug, job.pk])
    assert (job.kind, job.status, job.total, job.created_by) == (
        Job.Kind.BULK,
        Job.Status.QUEUED,
        5,
        recruiter_user,
    )
    assert job.input_name == "Enroll in “Keep warm”"
    assert (job.params["action"], job.params["args"]["campaign_id"]) == (
        "sequence_enroll",
        sequence.pk,
    )
    assert queued == [{"organization_id": org.pk, "job_id": job.pk}]
    # Nothing is enrolled inside the request.
    assert _enrolled(sequence) == set()


def test_enroll_job_runs_in_batches_and_its_page_says_what_it_did(
    recruiter_client,
    org,
    sequence,
    settings,
    monkeypatch,
    django_capture_on_commit_callbacks,
    queue,
):
    people = _tagged(org, 5)
    with scopes_disabled():
        Candidate.objects.filter(pk=people[2].pk).update(status=Candidate.Status.DO_NOT_CONTACT)
    settings.CANDIDATE_BULK_BATCH_SIZE = 2
    response, queued = _start_job(
        recruiter_client,
        org,
        sequence,
        settings,
        django_capture_on_commit_callbacks,
        monkeypatch,
        query="tags=bulkx",
    )
    page_url = response["Location"]
    waiting = recruiter_client.get(page_url).content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        bulk_action.apply(kwargs=queued[0])  # the worker: OrganizationTask enters the scope

    with scopes_disabled():
        job = Job.objects.get()
    assert (job.status, job.processed, job.error) == (Job.Status.DONE, 5, "")
    assert job.result == {"changed": 4, "unchanged": 1}
    assert _enrolled(sequence) == {p.pk for p in people} - {people[2].pk}
    assert "Working on 5 candidates in the background" in waiting
    done = recruiter_client.get(page_url, headers={"HX-Request": "true"}).content.decode()
    assert (
        "4 candidates enrolled in “Keep warm”. 1 of the selection did not join: already "
        "enrolled once, unsubscribed, suppressed, do-not-contact, hired or without an email "
        "address." in done
    )
    # One dispatcher kick per batch that enrolled someone (3 batches of 2, 2, 1).
    assert _queued_tasks(queue) == ["campaigns.dispatch"] * 3
    # Enrolled by the recruiter who started the job, on each timeline.
    with scopes_disabled():
        entries = list(
            Activity.objects.filter(kind=Activity.Kind.ENROLLMENT).values_list(
                "summary", "actor__email"
            )
        )
    assert entries == [("Enrolled in the sequence “Keep warm”", "rex.recruiter@acme.example")] * 4


def test_enroll_job_resumes_after_the_batches_already_done(
    recruiter_client,
    org,
    recruiter_user,
    sequence,
    settings,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    """The worker committed the first two candidates with the cursor, then stopped: Resume on
    the job page continues with the rest, and nobody joins or is written up twice."""
    people = _tagged(org, 5)
    settings.CANDIDATE_BULK_BATCH_SIZE = 2
    _, queued = _start_job(
        recruiter_client,
        org,
        sequence,
        settings,
        django_capture_on_commit_callbacks,
        monkeypatch,
        candidate=[p.pk for p in people],
    )
    with scopes_disabled():
        job = Job.objects.get()
    bulk_job_stopped_after_batch(job, ids=[p.pk for p in people[:2]], actor=recruiter_user)
    stopped = recruiter_client.get(reverse("candidates:job_detail", args=[org.slug, job.pk]))
    with django_capture_on_commit_callbacks(execute=True):
        recruiter_client.post(reverse("candidates:job_resume", args=[org.slug, job.pk]))
    bulk_action.apply(kwargs=queued[-1])

    with scopes_disabled():
        job.refresh_from_db()
        joined_entries = Activity.objects.filter(kind=Activity.Kind.ENROLLMENT).count()
    assert "Resume continues with the rest." in stopped.content.decode()
    assert len(queued) == 2
    assert (job.status, job.processed) == (Job.Status.DONE, 5)
    assert job.result == {"changed": 5, "unchanged": 0}
    assert _enrolled(sequence) == {p.pk for p in people}
    assert joined_entries == 5


def test_enroll_job_into_a_sequence_ended_meanwhile_enrolls_nobody(
    recruiter_client,
    org,
    recruiter_user,
    sequence,
    settings,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    from campaigns.services.campaigns import sequence_end

    _tagged(org, 4)
    _, queued = _start_job(
        recruiter_client,
        org,
        sequence,
        settings,
        django_capture_on_commit_callbacks,
        monkeypatch,
        query="tags=bulkx",
    )
    with scopes_disabled():
        sequence_end(campaign=sequence, user=recruiter_user)

    bulk_action.apply(kwargs=queued[0])

    with scopes_disabled():
        job = Job.objects.get()
    assert (job.status, job.result) == (Job.Status.DONE, {"changed": 0, "unchanged": 4})
    assert _enrolled(sequence) == set()


def test_small_enroll_stays_inline_and_kicks_the_dispatcher(
    recruiter_client, org, sequence, django_capture_on_commit_callbacks, queue
):
    people = make_candidates(org, 2)
    with django_capture_on_commit_callbacks(execute=True):
        response = recruiter_client.post(
            _enroll_url(org), {"campaign": sequence.pk, "candidate": [p.pk for p in people]}
        )

    assert response["Location"] == reverse("campaigns:detail", args=[org.slug, sequence.pk])
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "2 candidates enrolled in “Keep warm”."
    ]
    assert _enrolled(sequence) == {p.pk for p in people}
    with scopes_disabled():
        assert not Job.objects.exists()
    assert _queued_tasks(queue) == ["campaigns.dispatch"]


def test_enroll_page_says_a_big_selection_runs_in_the_background(
    recruiter_client, org, sequence, settings
):
    settings.CANDIDATE_BULK_INLINE_LIMIT = 3
    _tagged(org, 3)
    big = recruiter_client.get(_enroll_url(org), {"query": "tags=bulkx"}).content.decode()
    settings.CANDIDATE_BULK_INLINE_LIMIT = 4
    small = recruiter_client.get(_enroll_url(org), {"query": "tags=bulkx"}).content.decode()
    assert "enrolled in the background" in big
    assert "enrolled in the background" not in small


def test_enroll_job_page_is_for_its_organisation_only(
    recruiter_client,
    outsider_client,
    viewer_client,
    org,
    sequence,
    settings,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    _tagged(org, 4)
    response, _ = _start_job(
        recruiter_client,
        org,
        sequence,
        settings,
        django_capture_on_commit_callbacks,
        monkeypatch,
        query="tags=bulkx",
    )
    assert outsider_client.get(response["Location"]).status_code == 404
    assert viewer_client.get(response["Location"]).status_code == 403
    viewer_post = viewer_client.post(
        _enroll_url(org), {"campaign": sequence.pk, "query": "tags=bulkx"}
    )
    assert viewer_post.status_code == 403
