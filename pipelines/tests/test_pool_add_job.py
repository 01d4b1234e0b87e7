"""The candidate list's "Add to pool…" runs as the list's own bulk actions do
(candidates.services.bulk): at once for a small selection, with the messages it always had;
from the inline limit up as a job in batches with a progress page, in the organisation's
scope, resumable after its cursor. A batch done again adds nobody twice, and the entries of a
job feed the sequences that auto-join from the pool like any other entries."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from campaigns.models import Campaign, Enrollment, Step
from campaigns.services.campaigns import campaign_launch
from campaigns.tests.factories import SavedSearchFactory
from candidates.models import Activity, Job
from candidates.services.bulk import bulk_apply_batch
from candidates.tasks import bulk_action
from candidates.tests.factories import bulk_job_stopped_after_batch
from crm.celery import app as celery_app
from pipelines import services
from pipelines.models import Pool, PoolMembership
from pipelines.tests.factories import PoolFactory

pytestmark = pytest.mark.django_db


def _add_url(org):
    return reverse("pipelines:pool_add", args=[org.slug])


def _members(pool) -> list[int]:
    """The pool's members, one entry per membership (a duplicate would show twice)."""
    with scopes_disabled():
        return sorted(PoolMembership.objects.filter(pool=pool).values_list("candidate", flat=True))


def _entries(pool) -> list[int]:
    """The candidates with a "joined the pool" timeline entry, one per entry."""
    with scopes_disabled():
        return sorted(
            Activity.objects.filter(
                kind=Activity.Kind.POOL_ADDED, data__pool_id=pool.pk
            ).values_list("candidate", flat=True)
        )


def _ids(candidates) -> list[int]:
    return sorted(c.pk for c in candidates)


def _start_job(client, org, pool, settings, capture, monkeypatch, **post):
    """POST the add-to-pool page above the inline limit (3); returns (response, queued tasks)."""
    settings.CANDIDATE_BULK_INLINE_LIMIT = 3
    queued = []
    monkeypatch.setattr(bulk_action, "delay", lambda **kwargs: queued.append(kwargs))
    with capture(execute=True):
        response = client.post(_add_url(org), {"pool": pool.pk, **post})
    return response, queued


# --- at once, below the inline limit ---


def test_pool_add_below_the_inline_limit_adds_at_once_with_its_messages(
    recruiter_client, org, pool, make_candidates, add
):
    people = make_candidates(3)
    add(pool, people[:1])

    response = recruiter_client.post(
        _add_url(org), {"pool": pool.pk, "candidate": [p.pk for p in people]}
    )

    assert response["Location"] == reverse("pipelines:pool_board", args=[org.slug, pool.pk])
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "2 candidates added to “Backend engineers”.",
        "1 was already in it.",
    ]
    assert _members(pool) == _ids(people)
    with scopes_disabled():
        assert not Job.objects.exists()


def test_pool_add_inline_of_people_all_in_the_pool_says_so(
    recruiter_client, org, pool, make_candidates, add
):
    people = make_candidates(2)
    add(pool, people)

    response = recruiter_client.post(
        _add_url(org), {"pool": pool.pk, "candidate": [p.pk for p in people]}
    )

    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Everyone selected was already in “Backend engineers”."
    ]
    assert _entries(pool) == _ids(people)


def test_pool_add_page_says_a_big_selection_is_added_in_the_background(
    recruiter_client, org, pool, make_candidates, settings
):
    make_candidates(3, city="Lisbon")
    settings.CANDIDATE_BULK_INLINE_LIMIT = 3
    big = recruiter_client.get(_add_url(org), {"query": "city=Lisbon"}).content.decode()
    settings.CANDIDATE_BULK_INLINE_LIMIT = 4
    small = recruiter_client.get(_add_url(org), {"query": "city=Lisbon"}).content.decode()

    assert "added in the background" in big
    assert "added in the background" not in small


# --- a job, from the inline limit up ---


def test_pool_add_from_the_inline_limit_becomes_a_job_and_adds_nobody_in_the_request(
    recruiter_client,
    org,
    recruiter_user,
    pool,
    make_candidates,
    settings,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    make_candidates(5, city="Lisbon")
    make_candidates(1, city="Porto")

    response, queued = _start_job(
        recruiter_client,
        org,
        pool,
        settings,
        django_capture_on_commit_callbacks,
        monkeypatch,
        query="city=Lisbon",
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
    assert job.input_name == "Add to “Backend engineers”"
    assert (job.params["action"], job.params["args"]["pool_id"]) == ("pool_add", pool.pk)
    assert queued == [{"organization_id": org.pk, "job_id": job.pk}]
    # Nobody is added inside the request, and nothing is said there: the job's page does.
    assert _members(pool) == []
    assert _entries(pool) == []
    assert [str(m) for m in get_messages(response.wsgi_request)] == []


def test_pool_add_job_adds_everyone_once_and_its_page_says_what_it_did(
    recruiter_client,
    org,
    pool,
    make_candidates,
    add,
    settings,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    lisbon = make_candidates(5, city="Lisbon")
    add(pool, lisbon[2:3])  # already in the pool: keeps its card, gets no second entry
    settings.CANDIDATE_BULK_BATCH_SIZE = 2
    response, queued = _start_job(
        recruiter_client,
        org,
        pool,
        settings,
        django_capture_on_commit_callbacks,
        monkeypatch,
        query="city=Lisbon",
    )
    page_url = response["Location"]
    waiting = recruiter_client.get(page_url).content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        bulk_action.apply(kwargs=queued[0])  # the worker: OrganizationTask enters the scope

    with scopes_disabled():
        job = Job.objects.get()
        actors = set(
            Activity.objects.filter(kind=Activity.Kind.POOL_ADDED)
            .exclude(candidate=lisbon[2])
            .values_list("actor__email", flat=True)
        )
    assert (job.status, job.processed, job.error) == (Job.Status.DONE, 5, "")
    assert job.result == {"changed": 4, "unchanged": 1}
    assert _members(pool) == _ids(lisbon)
    assert _entries(pool) == _ids(lisbon)
    assert actors == {"rex.recruiter@acme.example"}
    assert "Working on 5 candidates in the background" in waiting
    done = recruiter_client.get(page_url, headers={"HX-Request": "true"}).content.decode()
    assert "4 candidates added to “Backend engineers”. 1 was already in it." in done


def test_pool_add_job_redoing_a_batch_after_a_crash_adds_nobody_twice(
    recruiter_client,
    org,
    recruiter_user,
    pool,
    make_candidates,
    settings,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    """The worst case: the first batch's candidates were added but the job stopped before it
    counted them (its cursor still at the start). Resume does that batch again: nobody gets a
    second card or a second timeline entry, and the rest are added."""
    people = make_candidates(5)
    settings.CANDIDATE_BULK_BATCH_SIZE = 2
    _, queued = _start_job(
        recruiter_client,
        org,
        pool,
        settings,
        django_capture_on_commit_callbacks,
        monkeypatch,
        candidate=[p.pk for p in people],
    )
    with scopes_disabled():
        job = Job.objects.get()
    first = bulk_job_stopped_after_batch(
        job, ids=_ids(people)[:2], actor=recruiter_user, counted=False
    )
    with django_capture_on_commit_callbacks(execute=True):
        recruiter_client.post(reverse("candidates:job_resume", args=[org.slug, job.pk]))
    bulk_action.apply(kwargs=queued[-1])

    with scopes_disabled():
        job.refresh_from_db()
    assert first == 2
    assert len(queued) == 2
    assert (job.status, job.processed) == (Job.Status.DONE, 5)
    assert job.result == {"changed": 3, "unchanged": 2}
    assert _members(pool) == _ids(people)
    assert _entries(pool) == _ids(people)


def test_pool_add_job_resumes_after_the_batches_already_done(
    recruiter_client,
    org,
    recruiter_user,
    pool,
    make_candidates,
    settings,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    people = sorted(make_candidates(5), key=lambda c: c.pk)
    settings.CANDIDATE_BULK_BATCH_SIZE = 2
    _, queued = _start_job(
        recruiter_client,
        org,
        pool,
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
    assert "Resume continues with the rest." in stopped.content.decode()
    assert (job.status, job.processed) == (Job.Status.DONE, 5)
    assert job.result == {"changed": 5, "unchanged": 0}
    assert _members(pool) == _ids(people)
    assert _entries(pool) == _ids(people)


def test_pool_add_batch_done_again_sends_no_second_pool_entry(
    org, recruiter_user, pool, make_candidates
):
    """The signal that feeds auto-join sequences carries only those who entered."""
    from pipelines.signals import candidates_entered_pool

    people = make_candidates(3)
    entered = []

    def receiver(sender, *, pool, candidate_ids, **kwargs):
        entered.append(sorted(candidate_ids))

    candidates_entered_pool.connect(receiver, dispatch_uid="test_pool_add_job")
    try:
        with scope(organization=org):
            args = services.pool_add_args(pool=pool)
            for ids in (_ids(people)[:2], _ids(people)):
                bulk_apply_batch(
                    organization_id=org.pk,
                    action="pool_add",
                    args=args,
                    ids=ids,
                    actor=recruiter_user,
                )
    finally:
        candidates_entered_pool.disconnect(dispatch_uid="test_pool_add_job")

    assert entered == [_ids(people)[:2], _ids(people)[2:]]


@pytest.fixture
def eager_celery():
    """Tasks run in-process when queued (the broker is the outside world here)."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


def test_pool_add_job_entries_auto_join_the_pools_sequences(
    recruiter_client,
    org,
    recruiter_user,
    pool,
    make_candidates,
    settings,
    monkeypatch,
    django_capture_on_commit_callbacks,
    eager_celery,
):
    # The first step waits 3 days, so that joining is all that happens now.
    search = SavedSearchFactory(organization=org, owner=recruiter_user, query={"tags": ["none"]})
    with scopes_disabled():
        sequence = Campaign.objects.create(
            organization=org,
            name="Backend nurture",
            kind=Campaign.Kind.SEQUENCE,
            sender=recruiter_user,
            created_by=recruiter_user,
            auto_join_pool=pool,
        )
        sequence.saved_searches.set([search])
        Step.objects.create(
            organization=org,
            campaign=sequence,
            position=1,
            subject="Hi",
            body_markdown="Hi",
            delay=timedelta(days=3),
        )
        campaign_launch(campaign=sequence, user=recruiter_user)
    settings.CANDIDATE_BULK_BATCH_SIZE = 2
    lisbon = make_candidates(5, city="Lisbon")
    _, queued = _start_job(
        recruiter_client,
        org,
        pool,
        settings,
        django_capture_on_commit_callbacks,
        monkeypatch,
        query="city=Lisbon",
    )
    # The worker; the auto-join tasks it queues after each batch run in-process (eagerly).
    with django_capture_on_commit_callbacks(execute=True):
        bulk_action.apply(kwargs=queued[0])

    with scopes_disabled():
        joined = sorted(
            Enrollment.objects.filter(campaign=sequence).values_list("candidate", flat=True)
        )
        job = Job.objects.get()
    assert job.status == Job.Status.DONE
    assert joined == _ids(lisbon)


# --- refusals, roles and scope ---


def test_pool_add_job_for_a_pool_archived_meanwhile_stops_and_resumes_once_restored(
    recruiter_client,
    org,
    pool,
    make_candidates,
    settings,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    lisbon = make_candidates(4, city="Lisbon")
    _, queued = _start_job(
        recruiter_client,
        org,
        pool,
        settings,
        django_capture_on_commit_callbacks,
        monkeypatch,
        query="city=Lisbon",
    )
    with scope(organization=org):
        services.pool_archive(pool=pool)

    bulk_action.apply(kwargs=queued[0])

    with scopes_disabled():
        job = Job.objects.get()
    assert job.status == Job.Status.FAILED
    assert job.error == (
        "“Backend engineers” is archived: nobody more was added. Restore it to add the rest."
    )
    assert _members(pool) == []
    page = recruiter_client.get(reverse("candidates:job_detail", args=[org.slug, job.pk]))
    assert "Resume continues with the rest." in page.content.decode()

    with scope(organization=org):
        services.pool_restore(pool=pool)
    with django_capture_on_commit_callbacks(execute=True):
        recruiter_client.post(reverse("candidates:job_resume", args=[org.slug, job.pk]))
    bulk_action.apply(kwargs=queued[-1])

    with scopes_disabled():
        job.refresh_from_db()
    assert (job.status, job.result) == (Job.Status.DONE, {"changed": 4, "unchanged": 0})
    assert _members(pool) == _ids(lisbon)


def test_pool_add_job_for_a_pool_made_smart_meanwhile_adds_nobody(
    recruiter_client,
    org,
    pool,
    make_candidates,
    settings,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    make_candidates(4, city="Lisbon")
    _, queued = _start_job(
        recruiter_client,
        org,
        pool,
        settings,
        django_capture_on_commit_callbacks,
        monkeypatch,
        query="city=Lisbon",
    )
    with scopes_disabled():
        Pool.objects.filter(pk=pool.pk).update(kind=Pool.Kind.SMART)

    bulk_action.apply(kwargs=queued[0])

    with scopes_disabled():
        job = Job.objects.get()
    assert job.status == Job.Status.FAILED
    assert job.error.startswith("“Backend engineers” is now a smart pool")
    assert _members(pool) == []


def test_pool_add_to_a_smart_pool_is_refused_at_once_too(
    recruiter_client, org, recruiter_user, pool, make_candidates, settings
):
    """Adding by hand is for static pools only, for a big selection as for a small one."""
    smart = PoolFactory(
        organization=org, owner=recruiter_user, name="Lisbon people", kind=Pool.Kind.SMART
    )
    people = make_candidates(4)
    settings.CANDIDATE_BULK_INLINE_LIMIT = 3

    response = recruiter_client.post(
        _add_url(org), {"pool": smart.pk, "candidate": [p.pk for p in people]}
    )

    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert _members(smart) == []
    with scopes_disabled():
        assert not Job.objects.exists()


def test_pool_add_job_to_a_private_pool_does_not_name_it_on_the_job_page(
    recruiter_client,
    org,
    recruiter_user,
    make_candidates,
    settings,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    """Any recruiter of the organisation may open a job's page: a colleague's "Only me" pool
    is named nowhere they can read."""
    private = PoolFactory(
        organization=org,
        owner=recruiter_user,
        name="Secret shortlist",
        visibility=Pool.Visibility.OWNER,
    )
    make_candidates(4, city="Lisbon")
    response, queued = _start_job(
        recruiter_client,
        org,
        private,
        settings,
        django_capture_on_commit_callbacks,
        monkeypatch,
        query="city=Lisbon",
    )
    bulk_action.apply(kwargs=queued[0])

    page = recruiter_client.get(response["Location"]).content.decode()
    with scopes_disabled():
        job = Job.objects.get()
    assert job.input_name == "Add to a private pool"
    assert "4 candidates added to a private pool." in page
    assert "Secret shortlist" not in page
    assert len(_members(private)) == 4


def test_pool_add_job_is_for_recruiters_of_its_organisation_only(
    recruiter_client,
    viewer_client,
    outsider_client,
    org,
    pool,
    make_candidates,
    settings,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    make_candidates(4, city="Lisbon")
    viewer_post = viewer_client.post(_add_url(org), {"pool": pool.pk, "query": "city=Lisbon"})
    response, _ = _start_job(
        recruiter_client,
        org,
        pool,
        settings,
        django_capture_on_commit_callbacks,
        monkeypatch,
        query="city=Lisbon",
    )

    assert viewer_post.status_code == 403
    with scopes_disabled():
        assert Job.objects.count() == 1
    assert viewer_client.get(response["Location"]).status_code == 403
    assert outsider_client.get(response["Location"]).status_code == 404
