"""A job whose task never came: the Celery broker was down when an import or a bulk action was
started (or lost the task). The job is in the database before its task is queued, so the
recruiter's action succeeds instead of answering 500, the job page says the job waits, and
beat's backstop (`candidates.jobs_requeue_waiting`) queues the task again once the job has
waited JOB_REQUEUE_AFTER with no run holding its lock. Queuing a job's task twice is harmless:
a second run stands aside while the first holds the run lock, and a finished job is left as
it is. The outside world here is the broker (a port where nothing listens) and the clock."""

import contextlib
import threading
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns.tests.test_broker_down import broker_down  # noqa: F401 (the fixture)
from candidates.importing.reading import inspect_file
from candidates.models import Activity, Candidate, Job
from candidates.services import bulk, imports
from candidates.tasks import bulk_action, import_run_task
from candidates.tests.factories import CandidateFactory
from crm.celery import app as celery_app

# Every test starts with the broker down (campaigns' fixture: a port where nothing listens).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("broker_down")]

LATER = timedelta(minutes=6)  # past JOB_REQUEUE_AFTER


@pytest.fixture
def broker_back():
    """Call it when the broker is back: a task queued from then on runs at once, in this
    process, until the test ends."""
    before = celery_app.conf.task_always_eager

    def back() -> None:
        celery_app.conf.task_always_eager = True

    yield back
    celery_app.conf.task_always_eager = before


def _configured_import(org, user) -> Job:
    upload = SimpleUploadedFile(
        "people.csv", b"First name,Last name,Email\nAda,Lovelace,ada@x.io\n"
    )
    info = inspect_file(upload)
    with scope(organization=org):
        job = imports.import_create(organization=org, user=user, upload=upload, info=info)
        return imports.import_configure(
            job=job, mapping=job.params["mapping"], options=job.params["options"]
        )


def _job(job_id: int) -> Job:
    with scopes_disabled():
        return Job.objects.get(pk=job_id)


def _start_bulk_tagging(org, client, settings, count: int = 3):
    settings.CANDIDATE_BULK_INLINE_LIMIT = 2
    chosen = [CandidateFactory(organization=org) for _ in range(count)]
    response = client.post(
        reverse("candidates:bulk", args=[org.slug]),
        {"action": "tag", "ids": [c.pk for c in chosen], "tags": "later"},
    )
    with scopes_disabled():
        job = Job.objects.get(kind=Job.Kind.BULK)
    return response, job, chosen


def _tags(candidates) -> list[list[str]]:
    with scopes_disabled():
        return [Candidate.objects.get(pk=c.pk).tags for c in candidates]


@contextlib.contextmanager
def _run_lock_held_by_another_worker(key: list[int]):
    """A worker's run holding the job's advisory run lock on its own database connection."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(%s, %s)", key)
            taken.set()
            release.wait(30)
        finally:
            connection.close()  # the session ends, and its lock with it

    worker = threading.Thread(target=hold)
    worker.start()
    assert taken.wait(30)
    try:
        yield
    finally:
        release.set()
        worker.join()


def test_an_import_started_with_the_broker_down_redirects_and_the_backstop_runs_it(
    org, recruiter_user, recruiter_client, broker_back
):
    job = _configured_import(org, recruiter_user)

    response = recruiter_client.post(reverse("candidates:import_start", args=[org.slug, job.pk]))

    assert response.status_code == 302
    assert response["Location"] == reverse("candidates:job_detail", args=[org.slug, job.pk])
    assert _job(job.pk).status == Job.Status.QUEUED
    broker_back()
    # Not before the job has waited JOB_REQUEUE_AFTER: its task may merely be on its way.
    assert bulk.jobs_requeue_waiting() == 0
    assert _job(job.pk).status == Job.Status.QUEUED

    requeued = bulk.jobs_requeue_waiting(now=timezone.now() + LATER)

    assert requeued == 1
    done = _job(job.pk)
    assert (done.status, done.result["created"]) == (Job.Status.DONE, 1)
    with scopes_disabled():
        assert list(Candidate.objects.values_list("email", flat=True)) == ["ada@x.io"]


def test_a_bulk_action_started_with_the_broker_down_redirects_and_the_backstop_runs_it(
    org, recruiter_client, settings, broker_back
):

    response, job, chosen = _start_bulk_tagging(org, recruiter_client, settings)

    assert response.status_code == 302
    assert response["Location"] == reverse("candidates:job_detail", args=[org.slug, job.pk])
    assert job.status == Job.Status.QUEUED
    broker_back()

    requeued = bulk.jobs_requeue_waiting(now=timezone.now() + LATER)

    assert requeued == 1
    done = _job(job.pk)
    assert (done.status, done.result["changed"]) == (Job.Status.DONE, 3)
    assert _tags(chosen) == [["later"], ["later"], ["later"]]


def test_a_job_waiting_long_says_so_on_its_page(org, recruiter_client, settings):
    _, job, _ = _start_bulk_tagging(org, recruiter_client, settings)
    page_url = reverse("candidates:job_detail", args=[org.slug, job.pk])
    fresh = recruiter_client.get(page_url).content.decode()
    with scopes_disabled():  # the clock: it was queued ten minutes ago
        Job.objects.filter(pk=job.pk).update(
            params=bulk.job_params_queued_at(timezone.now() - timedelta(minutes=10))
        )

    waiting = recruiter_client.get(page_url).content.decode()

    assert "No worker has taken this job up yet" not in fresh
    assert "Waiting for a worker" in waiting
    assert "It is handed to them again every few minutes until one starts it" in waiting


def test_a_queued_job_whose_run_holds_the_lock_is_not_queued_again_or_run_twice(
    org, recruiter_client, settings, broker_back
):
    _, job, chosen = _start_bulk_tagging(org, recruiter_client, settings)
    broker_back()

    with _run_lock_held_by_another_worker(bulk._run_lock_key(job.pk)):
        requeued = bulk.jobs_requeue_waiting(now=timezone.now() + LATER)
        # A second delivery of its task while the run works stands aside.
        bulk_action.apply(kwargs={"organization_id": org.pk, "job_id": job.pk})

    assert requeued == 0
    assert _job(job.pk).status == Job.Status.QUEUED
    assert _tags(chosen) == [[], [], []]


def test_an_import_whose_run_holds_the_lock_is_not_queued_again_or_run_twice(
    org, recruiter_user, recruiter_client, broker_back
):
    job = _configured_import(org, recruiter_user)
    recruiter_client.post(reverse("candidates:import_start", args=[org.slug, job.pk]))
    broker_back()

    with _run_lock_held_by_another_worker(imports.import_run_lock_key(job.pk)):
        requeued = bulk.jobs_requeue_waiting(now=timezone.now() + LATER)
        import_run_task.apply(kwargs={"organization_id": org.pk, "job_id": job.pk})

    assert requeued == 0
    assert _job(job.pk).status == Job.Status.QUEUED
    with scopes_disabled():
        assert Candidate.objects.count() == 0


def test_a_task_merely_slow_in_the_queue_does_not_run_the_job_twice(
    org, recruiter_client, settings, broker_back
):
    """The backstop queued the job again and ran it; then its first task arrives at last."""
    _, job, chosen = _start_bulk_tagging(org, recruiter_client, settings)
    broker_back()
    assert bulk.jobs_requeue_waiting(now=timezone.now() + LATER) == 1

    bulk_action.apply(kwargs={"organization_id": org.pk, "job_id": job.pk})

    done = _job(job.pk)
    assert (done.status, done.processed, done.result["changed"]) == (Job.Status.DONE, 3, 3)
    assert _tags(chosen) == [["later"], ["later"], ["later"]]
    with scopes_disabled():
        assert Activity.objects.filter(kind=Activity.Kind.TAGGED).count() == 3


def test_a_job_still_waiting_gains_a_task_once_per_period_not_on_every_sweep(
    org, recruiter_client, settings
):
    _, job, _ = _start_bulk_tagging(org, recruiter_client, settings)
    start = timezone.now()

    # The broker is still down: the backstop's own queuing is logged, not raised.
    sweeps = [
        bulk.jobs_requeue_waiting(now=start + LATER),
        bulk.jobs_requeue_waiting(now=start + LATER + timedelta(minutes=2)),
        bulk.jobs_requeue_waiting(
            now=start + LATER + bulk.JOB_REQUEUE_AFTER + timedelta(minutes=1)
        ),
    ]

    assert sweeps == [1, 0, 1]
    assert _job(job.pk).status == Job.Status.QUEUED
