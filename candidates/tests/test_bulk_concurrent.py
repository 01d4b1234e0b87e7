"""Two runs of one bulk job at once. With Redis' visibility timeout (an hour), a job that runs
longer is delivered to a second worker while the first is still working: the second run must
leave the job to the first, so nothing is done twice and `processed`, the result and the
cursor stay exact.

These tests commit for real (`transaction=True`): another connection cannot see a test
transaction."""

import threading

import psycopg
import pytest
from django.db import connection
from django_scopes import scopes_disabled

from candidates.models import Activity, Candidate, Job
from candidates.services import bulk
from candidates.tasks import bulk_action
from candidates.tests.factories import CandidateFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _tag_job(org, user, candidates) -> Job:
    with scopes_disabled():
        return Job.objects.create(
            organization=org,
            kind=Job.Kind.BULK,
            status=Job.Status.QUEUED,
            created_by=user,
            total=len(candidates),
            params={
                "action": "tag",
                "args": {"tags": ["x"]},
                "selection": {"ids": [c.pk for c in candidates]},
                "cursor": 0,
            },
        )


def _in_thread(org, job, outcome: list, name: str) -> threading.Thread:
    def run():
        try:
            outcome.append(
                bulk_action.apply(kwargs={"organization_id": org.pk, "job_id": job.pk}).get()
            )
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def test_bulk_second_run_of_a_running_job_leaves_it_to_the_first(
    org, recruiter_user, settings, monkeypatch
):
    settings.CANDIDATE_BULK_BATCH_SIZE = 2
    chosen = [CandidateFactory(organization=org) for _ in range(4)]
    job = _tag_job(org, recruiter_user, chosen)
    inside, release = threading.Event(), threading.Event()
    real_record = bulk.activities_record_bulk

    def pause_the_first_run(**kwargs):  # the first worker is mid-batch, for a long time
        if threading.current_thread().name == "first" and not inside.is_set():
            inside.set()
            release.wait(30)
        return real_record(**kwargs)

    monkeypatch.setattr(bulk, "activities_record_bulk", pause_the_first_run)
    first_outcome: list = []
    second_outcome: list = []
    first = _in_thread(org, job, first_outcome, "first")
    try:
        assert inside.wait(30)

        second = _in_thread(org, job, second_outcome, "second")  # the redelivered task
        second.join(10)
        second_left_at_once = not second.is_alive()
    finally:
        release.set()
        first.join(60)
    second.join(30)

    with scopes_disabled():
        job.refresh_from_db()
        tagged = sorted(
            Activity.objects.filter(kind=Activity.Kind.TAGGED).values_list(
                "candidate_id", flat=True
            )
        )
        tags = list(Candidate.objects.order_by("pk").values_list("tags", flat=True))
    assert second_left_at_once
    assert (first_outcome, second_outcome) == (["done"], ["running"])
    assert (job.status, job.processed, job.params["cursor"]) == ("done", 4, max(tagged))
    assert job.result == {"changed": 4, "unchanged": 0}
    assert tagged == sorted(c.pk for c in chosen)  # one timeline entry each
    assert tags == [["x"]] * 4


def test_bulk_run_while_another_connection_holds_the_job_leaves_it_untouched(org, recruiter_user):
    chosen = [CandidateFactory(organization=org) for _ in range(2)]
    job = _tag_job(org, recruiter_user, chosen)
    settings_dict = connection.settings_dict
    other = psycopg.connect(
        dbname=settings_dict["NAME"],
        user=settings_dict["USER"],
        password=settings_dict["PASSWORD"] or None,
        host=settings_dict["HOST"],
        port=settings_dict["PORT"],
        autocommit=True,
    )
    try:  # the first run holds the job's lock
        other.execute("SELECT pg_advisory_lock(%s, %s)", [bulk._RUN_LOCK_NAMESPACE, job.pk])

        status = bulk_action.apply(kwargs={"organization_id": org.pk, "job_id": job.pk}).get()

        with scopes_disabled():
            job.refresh_from_db()
            tags = list(Candidate.objects.values_list("tags", flat=True))
        assert (status, job.status, job.processed, tags) == ("queued", "queued", 0, [[], []])
        # Released here, not by closing: a closed connection's backend lets go of its locks
        # when it gets round to exiting, which a busy machine can delay past the next run.
        other.execute("SELECT pg_advisory_unlock(%s, %s)", [bulk._RUN_LOCK_NAMESPACE, job.pk])
    finally:
        other.close()

    bulk_action.apply(kwargs={"organization_id": org.pk, "job_id": job.pk})

    with scopes_disabled():
        job.refresh_from_db()
    assert (job.status, job.processed) == ("done", 2)
