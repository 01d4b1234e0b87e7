"""Bulk actions: confirmation, inline runs, the batched Celery task and its resumption."""

import contextlib
import re
from datetime import date, timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django_scopes import scopes_disabled

from candidates.models import Activity, Candidate, Job
from candidates.services import bulk
from candidates.services.bulk import bulk_apply_batch, bulk_selection
from candidates.tasks import bulk_action
from candidates.tests.factories import CandidateFactory, bulk_job_stopped_after_batch
from crm.tests.markup import attributes, elements, text

pytestmark = pytest.mark.django_db


def _bulk_url(org):
    return reverse("candidates:bulk", args=[org.slug])


def _candidates(org, count, **kwargs):
    return [CandidateFactory(organization=org, **kwargs) for _ in range(count)]


def _fresh(candidate):
    with scopes_disabled():
        return Candidate.objects.get(pk=candidate.pk)


def _activities(kind):
    with scopes_disabled():
        return list(Activity.objects.filter(kind=kind).values_list("candidate_id", flat=True))


# --- access ---


def test_bulk_anonymous_is_sent_to_login(client, org):
    response = client.get(_bulk_url(org), {"action": "tag", "ids": "1"})
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_bulk_viewer_gets_403(viewer_client, org):
    candidate = CandidateFactory(organization=org)
    get = viewer_client.get(_bulk_url(org), {"action": "tag", "ids": candidate.pk})
    post = viewer_client.post(_bulk_url(org), {"action": "tag", "ids": candidate.pk, "tags": "x"})
    assert get.status_code == 403
    assert post.status_code == 403
    assert _fresh(candidate).tags == []


def test_bulk_other_organisation_gets_404(outsider_client, org):
    assert outsider_client.get(_bulk_url(org), {"action": "tag"}).status_code == 404


def test_bulk_cannot_reach_another_organisations_candidates(recruiter_client, org, other_org):
    foreign = CandidateFactory(organization=other_org)
    response = recruiter_client.post(
        _bulk_url(org), {"action": "tag", "ids": foreign.pk, "tags": "stolen"}
    )
    assert response.status_code == 200
    assert "No candidates selected" in response.content.decode()
    assert _fresh(foreign).tags == []


# --- confirmation ---


def test_bulk_confirmation_states_the_exact_count(recruiter_client, org):
    chosen = _candidates(org, 3)
    response = recruiter_client.get(
        _bulk_url(org), {"action": "tag", "ids": [c.pk for c in chosen]}
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert [text(e) for e in elements(body) if e.name == "h1"] == ["Add tags to 3 candidates"]
    assert [text(e) for e in elements(body) if e.name == "button"][-1] == "Add tags"


def test_bulk_confirmation_for_all_matching_counts_exactly(recruiter_client, org):
    _candidates(org, 4, city="Berlin")
    _candidates(org, 2, city="Paris")
    response = recruiter_client.get(
        _bulk_url(org), {"action": "status", "select_all": "1", "query": "city=Berlin"}
    )
    assert response.context["count"] == 4
    h1s = [text(e) for e in elements(response.content.decode()) if e.name == "h1"]
    assert h1s == ["Set the status of 4 candidates"]


def test_bulk_without_selection_goes_back_with_a_message(recruiter_client, org):
    response = recruiter_client.get(
        _bulk_url(org), {"action": "tag", "query": "city=Berlin"}, follow=True
    )
    assert response.redirect_chain[0][0].endswith("?city=Berlin")
    assert "Select at least one candidate first." in response.content.decode()


def _ticked(response) -> list[int]:
    body = response.content.decode()
    return sorted(
        int(pk) for pk in re.findall(r'name="ids" value="(\d+)" form="bulk-form" checked', body)
    )


def test_bulk_without_an_action_goes_back_with_the_selection_ticked(recruiter_client, org):
    first, second, _other = _candidates(org, 3, city="Berlin")

    response = recruiter_client.get(
        _bulk_url(org),
        {"action": "", "ids": [first.pk, second.pk], "query": "city=Berlin"},
        follow=True,
    )

    assert response.redirect_chain[0][0].endswith(
        f"?city=Berlin&selected={first.pk}&selected={second.pk}"
    )
    body = response.content.decode()
    assert "Choose what to do with the selected candidates." in body
    assert "This field is required." not in body
    assert _ticked(response) == [first.pk, second.pk]
    assert re.search(r'id="bulk-selected"[^>]*>\s*2 selected\s*<', body)


def test_bulk_without_an_action_keeps_all_matching_and_the_page(recruiter_client, org, settings):
    settings.CANDIDATE_LIST_PAGE_SIZE = 2
    _candidates(org, 5)
    first_page = recruiter_client.get(reverse("candidates:list", args=[org.slug]))
    cursor = first_page.context["page"].next_cursor

    response = recruiter_client.get(
        _bulk_url(org), {"action": "", "select_all": "1", "query": "", "after": cursor}, follow=True
    )

    assert response.context["page"].rows[0].pk not in [
        c.pk for c in first_page.context["page"].rows
    ]
    body = response.content.decode()
    assert re.search(r'checked\s+id="select-all-matching"', body)
    assert len(_ticked(response)) == 2
    assert "All 5 matching selected" in body
    assert "Choose what to do with the selected candidates." in body
    # The selection is not a filter: the bulk form, the pager and saving a search leave it out.
    assert 'name="query" value=""' in body
    assert "select_all=1" not in body.split('id="candidate-results"')[1]


@pytest.mark.parametrize("action", ["", "nonsense"])
def test_bulk_action_is_required_on_the_list_and_named_in_the_message(
    recruiter_client, org, action
):
    candidate = CandidateFactory(organization=org)
    list_page = recruiter_client.get(reverse("candidates:list", args=[org.slug]))

    response = recruiter_client.get(
        _bulk_url(org), {"action": action, "ids": candidate.pk}, follow=True
    )

    assert re.search(
        r'<select name="action"\s+id="bulk-action"[^>]*\srequired>', list_page.content.decode()
    )
    assert "Choose what to do with the selected candidates." in response.content.decode()


def test_bulk_invalid_arguments_rerender_with_errors(recruiter_client, org):
    candidate = CandidateFactory(organization=org)
    response = recruiter_client.post(
        _bulk_url(org), {"action": "tag", "ids": candidate.pk, "tags": " , "}
    )
    assert response.status_code == 200
    assert "Enter at least one tag." in response.content.decode()


@pytest.mark.parametrize("ids", ["abc", "-1", "1;drop", "²"])
def test_bulk_invalid_ids_go_back_without_500(recruiter_client, org, ids):
    response = recruiter_client.get(_bulk_url(org), {"action": "tag", "ids": ids})
    assert response.status_code == 302


# --- inline runs ---


def test_bulk_tag_inline_adds_tags_once_and_records_activities(recruiter_client, org):
    plain = CandidateFactory(organization=org, tags=["keep"])
    already = CandidateFactory(organization=org, tags=["shortlist", "q3"])
    untouched = CandidateFactory(organization=org)
    response = recruiter_client.post(
        _bulk_url(org),
        {"action": "tag", "ids": [plain.pk, already.pk], "tags": "Shortlist, Q3", "query": ""},
    )
    assert response.status_code == 302
    assert _fresh(plain).tags == ["keep", "shortlist", "q3"]
    assert _fresh(already).tags == ["shortlist", "q3"]
    assert _fresh(untouched).tags == []
    assert _activities(Activity.Kind.TAGGED) == [plain.pk]


def test_bulk_tag_updates_the_search_vector(recruiter_client, org, in_org):
    candidate = CandidateFactory(organization=org)
    recruiter_client.post(_bulk_url(org), {"action": "tag", "ids": candidate.pk, "tags": "zorbl"})
    with in_org():
        assert Candidate.objects.filter(search_vector="zorbl").count() == 1


def test_bulk_untag_inline_removes_only_those_tags(recruiter_client, org):
    tagged = CandidateFactory(organization=org, tags=["a", "shortlist", "b"])
    plain = CandidateFactory(organization=org, tags=["c"])
    recruiter_client.post(
        _bulk_url(org), {"action": "untag", "ids": [tagged.pk, plain.pk], "tags": "shortlist"}
    )
    assert _fresh(tagged).tags == ["a", "b"]
    assert _fresh(plain).tags == ["c"]
    assert _activities(Activity.Kind.TAGGED) == [tagged.pk]


def test_bulk_owner_inline_assigns_and_unassigns(recruiter_client, org, recruiter_user):
    first, second = _candidates(org, 2)
    recruiter_client.post(
        _bulk_url(org),
        {"action": "owner", "ids": [first.pk, second.pk], "owner": recruiter_user.pk},
    )
    assert _fresh(first).owner_id == recruiter_user.pk
    assert _fresh(second).owner_id == recruiter_user.pk
    recruiter_client.post(_bulk_url(org), {"action": "owner", "ids": [first.pk], "owner": ""})
    assert _fresh(first).owner_id is None
    assert len(_activities(Activity.Kind.OWNER_CHANGED)) == 3


def test_bulk_inline_result_is_a_sentence_saying_what_changed(
    recruiter_client, admin_client, org, recruiter_user
):
    plain = CandidateFactory(organization=org)
    tagged = CandidateFactory(organization=org, tags=["python"], status="hired")
    both = [plain.pk, tagged.pk]

    def said(data, client=recruiter_client) -> str:
        response = client.post(_bulk_url(org), {"ids": both, **data}, follow=True)
        assert response.redirect_chain
        return " ".join(str(message) for message in response.context["messages"])

    assert said({"action": "tag", "tags": "Python"}) == (
        "Tagged 1 candidate with “python”. 1 already had it."
    )
    assert (
        said({"action": "tag", "tags": "go, rust"}) == "Tagged 2 candidates with “go” and “rust”."
    )
    assert said({"action": "tag", "tags": "go, rust"}) == (
        "Nothing changed: all 2 candidates already had them."
    )
    assert said({"action": "untag", "tags": "go"}) == "Removed “go” from 2 candidates."
    assert said({"action": "owner", "owner": recruiter_user.pk}) == (
        f"Assigned 2 candidates to {recruiter_user.display_name}."
    )
    assert said({"action": "owner", "owner": ""}) == "Unassigned 2 candidates."
    assert said({"action": "status", "status": "hired"}) == (
        "Set the status of 1 candidate to “Hired”. 1 already had that status."
    )
    both = [plain.pk]
    assert said({"action": "delete"}, client=admin_client) == "Deleted 1 candidate."


def test_bulk_owner_offers_unassigned_for_no_owner(recruiter_client, org):
    candidate = CandidateFactory(organization=org)

    response = recruiter_client.get(_bulk_url(org), {"action": "owner", "ids": candidate.pk})

    assert response.context["arguments_form"].fields["owner"].choices[0] == ("", "Unassigned")


def test_bulk_owner_rejects_a_non_member(recruiter_client, org, outsider_user):
    candidate = CandidateFactory(organization=org)
    response = recruiter_client.post(
        _bulk_url(org), {"action": "owner", "ids": candidate.pk, "owner": outsider_user.pk}
    )
    assert response.status_code == 200
    assert _fresh(candidate).owner_id is None


def test_bulk_status_inline_on_all_matching(recruiter_client, org):
    berlin = _candidates(org, 3, city="Berlin")
    paris = CandidateFactory(organization=org, city="Paris")
    response = recruiter_client.post(
        _bulk_url(org),
        {"action": "status", "select_all": "True", "query": "city=Berlin", "status": "hired"},
        follow=True,
    )
    assert [_fresh(c).status for c in berlin] == ["hired"] * 3
    assert _fresh(paris).status == "active"
    assert "Set the status of 3 candidates to “Hired”." in response.content.decode()


def test_bulk_status_not_now_needs_a_future_date(recruiter_client, org):
    candidate = CandidateFactory(organization=org)
    for until, error in (
        ("", "Say until when these candidates do not want to hear from you."),
        (str(date.today()), "Choose a date in the future."),
    ):
        response = recruiter_client.post(
            _bulk_url(org),
            {"action": "status", "ids": candidate.pk, "status": "not_now", "not_now_until": until},
        )
        assert response.status_code == 200
        assert error in response.content.decode()
    assert _fresh(candidate).status == "active"


def test_bulk_status_not_now_stores_the_date_they_come_back(recruiter_client, org):
    away = _candidates(org, 2)
    until = date.today() + timedelta(days=30)
    response = recruiter_client.post(
        _bulk_url(org),
        {
            "action": "status",
            "ids": [c.pk for c in away],
            "status": "not_now",
            "not_now_until": until.isoformat(),
        },
    )
    assert response.status_code == 302
    assert [(_fresh(c).status, _fresh(c).not_now_until) for c in away] == [("not_now", until)] * 2
    with scopes_disabled():
        summaries = set(
            Activity.objects.filter(kind=Activity.Kind.STATUS_CHANGED).values_list(
                "summary", flat=True
            )
        )
    assert summaries == {f"Status set to Not now until {until:%-d %b %Y}"}


def test_bulk_status_do_not_contact_confirmation_warns_while_that_status_is_chosen(
    recruiter_client, org
):
    chosen = _candidates(org, 2)

    page = recruiter_client.get(
        _bulk_url(org), {"action": "status", "ids": [c.pk for c in chosen]}
    ).content.decode()

    warning = next(
        e for e in elements(page) if attributes(e).get("data-show-when") == "status=do_not_contact"
    )
    assert "“Do not contact” stops all campaign email to these 2 candidates" in text(warning)
    boxes = [e for e in elements(warning) if e.name == "input"]
    assert [(attributes(b)["type"], attributes(b)["name"]) for b in boxes] == [
        ("checkbox", "confirm_do_not_contact")
    ]


def test_bulk_status_do_not_contact_without_confirming_changes_nobody(recruiter_client, org):
    chosen = _candidates(org, 2, city="Berlin")
    for selection in (
        {"ids": [c.pk for c in chosen]},
        {"select_all": "True", "query": "city=Berlin"},
    ):
        response = recruiter_client.post(
            _bulk_url(org), {"action": "status", "status": "do_not_contact", **selection}
        )

        assert response.status_code == 200
        assert response.context["arguments_form"].errors["confirm_do_not_contact"] == [
            "Tick this to confirm: “Do not contact” stops all campaign email to them."
        ]
    assert [_fresh(c).status for c in chosen] == ["active", "active"]


def test_bulk_status_do_not_contact_once_confirmed_is_applied(recruiter_client, org):
    chosen = _candidates(org, 2, city="Berlin")

    response = recruiter_client.post(
        _bulk_url(org),
        {
            "action": "status",
            "select_all": "True",
            "query": "city=Berlin",
            "status": "do_not_contact",
            "confirm_do_not_contact": "on",
        },
        follow=True,
    )

    assert [_fresh(c).status for c in chosen] == ["do_not_contact"] * 2
    assert "Set the status of 2 candidates to “Do not contact”." in response.content.decode()


def test_bulk_status_other_than_do_not_contact_needs_no_confirmation(recruiter_client, org):
    candidate = CandidateFactory(organization=org)

    response = recruiter_client.post(
        _bulk_url(org), {"action": "status", "ids": candidate.pk, "status": "hired"}
    )

    assert response.status_code == 302
    assert _fresh(candidate).status == "hired"


def test_bulk_status_other_than_not_now_clears_the_date(org, recruiter_user):
    candidate = CandidateFactory(
        organization=org, status="not_now", not_now_until=date.today() + timedelta(days=9)
    )
    with scopes_disabled():
        changed = bulk_apply_batch(
            organization_id=org.pk,
            action="status",
            args={"status": "active", "not_now_until": None},
            ids=[candidate.pk],
            actor=recruiter_user,
        )
    assert changed == 1
    assert (_fresh(candidate).status, _fresh(candidate).not_now_until) == ("active", None)


def test_bulk_all_matching_a_search_acts_on_the_search_results(recruiter_client, org):
    match = CandidateFactory(organization=org, headline="Haskell wizard")
    other = CandidateFactory(organization=org, headline="Chef")
    recruiter_client.post(
        _bulk_url(org),
        {"action": "tag", "select_all": "True", "query": "q=haskell", "tags": "fp"},
    )
    assert _fresh(match).tags == ["fp"]
    assert _fresh(other).tags == []


def test_bulk_delete_is_admin_only(recruiter_client, admin_client, org):
    doomed = CandidateFactory(organization=org)
    assert (
        recruiter_client.get(_bulk_url(org), {"action": "delete", "ids": doomed.pk}).status_code
        == 403
    )
    assert (
        recruiter_client.post(_bulk_url(org), {"action": "delete", "ids": doomed.pk}).status_code
        == 403
    )
    response = admin_client.post(_bulk_url(org), {"action": "delete", "ids": doomed.pk})
    assert response.status_code == 302
    with scopes_disabled():
        assert not Candidate.objects.filter(pk=doomed.pk).exists()


# --- jobs ---


def test_bulk_large_selection_creates_a_job_and_redirects_to_its_page(
    recruiter_client, org, settings, django_capture_on_commit_callbacks, monkeypatch
):
    settings.CANDIDATE_BULK_INLINE_LIMIT = 2
    queued = []
    monkeypatch.setattr(bulk_action, "delay", lambda **kwargs: queued.append(kwargs))
    chosen = _candidates(org, 3)
    with django_capture_on_commit_callbacks(execute=True):
        response = recruiter_client.post(
            _bulk_url(org), {"action": "tag", "ids": [c.pk for c in chosen], "tags": "later"}
        )
    with scopes_disabled():
        job = Job.objects.get()
    assert response["Location"] == reverse("candidates:job_detail", args=[org.slug, job.pk])
    assert job.kind == Job.Kind.BULK
    assert job.status == Job.Status.QUEUED
    assert job.total == 3
    assert queued == [{"organization_id": org.pk, "job_id": job.pk}]
    assert [_fresh(c).tags for c in chosen] == [[], [], []]


def _under_way(page: str) -> str | None:
    """The job page's sentence about the work going on (None once there is none)."""
    for element in elements(page):
        if "job-under-way" in (attributes(element).get("class") or ""):
            return text(element)
    return None


def test_bulk_job_says_it_is_under_way_on_its_page_until_it_ends_not_in_a_flash(
    recruiter_client, org, settings, django_capture_on_commit_callbacks, monkeypatch
):
    """A flash saying "Working on 3 candidates in the background." stayed above the page after
    the polled part below it had turned into the outcome; the sentence is in that part now."""
    settings.CANDIDATE_BULK_INLINE_LIMIT = 2
    queued = []
    monkeypatch.setattr(bulk_action, "delay", lambda **kwargs: queued.append(kwargs))
    chosen = _candidates(org, 3)
    with django_capture_on_commit_callbacks(execute=True):
        started = recruiter_client.post(
            _bulk_url(org),
            {"action": "tag", "ids": [c.pk for c in chosen], "tags": "later"},
            follow=True,
        )
    page_url = started.redirect_chain[-1][0]
    bulk_action.apply(kwargs=queued[0])

    poll = recruiter_client.get(page_url, headers={"HX-Request": "true"}).content.decode()
    reloaded = recruiter_client.get(page_url).content.decode()

    assert [str(message) for message in started.context["messages"]] == []
    assert _under_way(started.content.decode()) == (
        "Working on 3 candidates in the background. "
        "You can leave this page; the job carries on without it."
    )
    assert (_under_way(poll), _under_way(reloaded)) == (None, None)
    assert "Tagged 3 candidates with “later”." in poll
    assert "Working on" not in reloaded


def _job(org, user, action, args, selection, total):
    with scopes_disabled():
        return Job.objects.create(
            organization=org,
            kind=Job.Kind.BULK,
            status=Job.Status.QUEUED,
            created_by=user,
            total=total,
            params={"action": action, "args": args, "selection": selection, "cursor": 0},
        )


def test_bulk_task_works_in_batches_and_finishes(org, recruiter_user, settings):
    settings.CANDIDATE_BULK_BATCH_SIZE = 2
    chosen = _candidates(org, 5, city="Berlin")
    CandidateFactory(organization=org, city="Paris")
    job = _job(org, recruiter_user, "tag", {"tags": ["batch"]}, {"query": "city=Berlin"}, 5)
    bulk_action.apply(kwargs={"organization_id": org.pk, "job_id": job.pk})
    with scopes_disabled():
        job.refresh_from_db()
    assert job.status == Job.Status.DONE
    assert job.processed == 5
    assert job.result == {"changed": 5, "unchanged": 0}
    assert job.params["cursor"] == max(c.pk for c in chosen)
    assert [_fresh(c).tags for c in chosen] == [["batch"]] * 5
    assert sorted(_activities(Activity.Kind.TAGGED)) == sorted(c.pk for c in chosen)


@contextlib.contextmanager
def _worker_running(job):
    """Hold the job's run lock, as the worker running it does."""
    key = bulk._run_lock_key(job.pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", key)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)


def test_bulk_job_page_shows_a_progress_bar_that_polls_until_done(
    org, recruiter_user, recruiter_client
):
    job = _job(org, recruiter_user, "tag", {"tags": ["x"]}, {"query": ""}, 2000)
    with scopes_disabled():
        Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, processed=500)
    page_url = reverse("candidates:job_detail", args=[org.slug, job.pk])

    with _worker_running(job):
        page = recruiter_client.get(page_url).content.decode()
        poll = recruiter_client.get(page_url, headers={"HX-Request": "true"}).content.decode()
    with scopes_disabled():
        Job.objects.filter(pk=job.pk).update(status=Job.Status.DONE, processed=2000)
    done = recruiter_client.get(page_url, headers={"HX-Request": "true"}).content.decode()

    assert 'value="25"' in page and "500 of 2,000 · 25%" in page
    assert 'hx-trigger="every 1s"' in page and "Working…" in page
    assert _resume_url(org, job) not in page
    assert poll.lstrip().startswith('<div id="job-progress"')  # only the partial
    assert "<html" not in poll
    assert 'hx-trigger="every 1s"' not in done and 'value="100"' in done


def test_bulk_job_page_reports_the_outcome(org, recruiter_user, recruiter_client):
    _candidates(org, 2, city="Berlin", tags=["batch"])
    fresh = _candidates(org, 1, city="Berlin")
    job = _job(org, recruiter_user, "tag", {"tags": ["batch"]}, {"query": "city=Berlin"}, 3)
    bulk_action.apply(kwargs={"organization_id": org.pk, "job_id": job.pk})

    page = recruiter_client.get(reverse("candidates:job_detail", args=[org.slug, job.pk]))

    body = page.content.decode()
    assert "Tagged 1 candidate with “batch”. 2 already had it." in body
    assert _fresh(fresh[0]).tags == ["batch"]


def test_bulk_task_resumes_after_the_stored_cursor(org, recruiter_user, settings):
    settings.CANDIDATE_BULK_BATCH_SIZE = 2
    chosen = sorted(_candidates(org, 5), key=lambda c: c.pk)
    job = _job(
        org, recruiter_user, "status", {"status": "not_now"}, {"ids": [c.pk for c in chosen]}, 5
    )
    # A previous run committed the first batch (and only it) before the worker died.
    with scopes_disabled():
        bulk_apply_batch(
            organization_id=org.pk,
            action="status",
            args={"status": "not_now"},
            ids=[chosen[0].pk, chosen[1].pk],
            actor=recruiter_user,
        )
        Job.objects.filter(pk=job.pk).update(
            status=Job.Status.RUNNING,
            processed=2,
            params={**job.params, "cursor": chosen[1].pk},
            result={"changed": 2},
        )
    bulk_action.apply(kwargs={"organization_id": org.pk, "job_id": job.pk})
    with scopes_disabled():
        job.refresh_from_db()
    assert job.status == Job.Status.DONE
    assert job.processed == 5
    assert job.result == {"changed": 5, "unchanged": 0}
    assert [_fresh(c).status for c in chosen] == ["not_now"] * 5
    assert sorted(_activities(Activity.Kind.STATUS_CHANGED)) == sorted(c.pk for c in chosen)


def test_bulk_task_crash_keeps_committed_batches_and_exact_progress(
    org, recruiter_user, settings, monkeypatch
):
    settings.CANDIDATE_BULK_BATCH_SIZE = 2
    chosen = sorted(_candidates(org, 5), key=lambda c: c.pk)
    job = _job(org, recruiter_user, "tag", {"tags": ["x"]}, {"ids": [c.pk for c in chosen]}, 5)
    calls = []

    def crash_on_second_batch(**kwargs):  # the database goes away mid-job
        calls.append(1)
        if len(calls) == 2:
            raise ConnectionError("database went away")

    monkeypatch.setattr("candidates.services.bulk.activities_record_bulk", crash_on_second_batch)
    with pytest.raises(ConnectionError):
        bulk_action.apply(kwargs={"organization_id": org.pk, "job_id": job.pk}, throw=True)
    with scopes_disabled():
        job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.processed == 2
    assert [_fresh(c).tags for c in chosen] == [["x"], ["x"], [], [], []]
    monkeypatch.undo()
    bulk_action.apply(kwargs={"organization_id": org.pk, "job_id": job.pk})
    with scopes_disabled():
        job.refresh_from_db()
    assert job.status == Job.Status.DONE
    assert job.processed == 5
    assert [_fresh(c).tags for c in chosen] == [["x"]] * 5


def test_bulk_task_delete_in_batches(org, admin_user, settings):
    settings.CANDIDATE_BULK_BATCH_SIZE = 2
    doomed = _candidates(org, 3)
    kept = CandidateFactory(organization=org)
    job = _job(org, admin_user, "delete", {}, {"ids": [c.pk for c in doomed]}, 3)
    bulk_action.apply(kwargs={"organization_id": org.pk, "job_id": job.pk})
    with scopes_disabled():
        assert list(Candidate.objects.values_list("pk", flat=True)) == [kept.pk]
        job.refresh_from_db()
    assert job.result == {"changed": 3, "unchanged": 0}


def test_bulk_selection_of_ids_drops_foreign_and_unknown_ids(org, other_org, in_org):
    mine = CandidateFactory(organization=org)
    foreign = CandidateFactory(organization=other_org)
    with in_org():
        selection = bulk_selection(
            organization=org, ids=[mine.pk, foreign.pk, 99999999], select_all=False, query=""
        )
    assert selection == {"ids": [mine.pk]}


def test_bulk_tag_longer_than_64_characters_is_refused_not_cut(recruiter_client, org):
    candidate = CandidateFactory(organization=org, tags=[])
    long_tag = "a" * 65

    response = recruiter_client.post(
        _bulk_url(org), {"action": "tag", "ids": candidate.pk, "tags": f"fine, {long_tag}"}
    )

    assert response.status_code == 200
    assert "longer than 64 characters" in response.content.decode()
    with scopes_disabled():
        candidate.refresh_from_db()
    assert candidate.tags == []


# --- what was confirmed is what changes ---


def _confirmation_form(response) -> dict:
    """The hidden fields of a confirmation page's form, as a browser would send them back."""
    form = response.content.decode().split('class="bulk-confirm-form"')[1].split("</form>")[0]
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))


def test_bulk_job_on_all_matching_leaves_out_candidates_added_after_confirming(
    admin_client, org, settings, django_capture_on_commit_callbacks, monkeypatch
):
    settings.CANDIDATE_BULK_INLINE_LIMIT = 2
    monkeypatch.setattr(bulk_action, "delay", lambda **kwargs: None)
    _candidates(org, 3, city="Berlin")
    page = admin_client.get(
        _bulk_url(org), {"action": "delete", "select_all": "1", "query": "city=Berlin"}
    )
    assert [text(e) for e in elements(page.content.decode()) if e.name == "h1"] == [
        "Delete 3 candidates"
    ]
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(_bulk_url(org), _confirmation_form(page))
    # While the job waits in the queue, a colleague adds a candidate in Berlin.
    newcomer = CandidateFactory(organization=org, city="Berlin")
    with scopes_disabled():
        job = Job.objects.get()

    bulk_action.apply(kwargs={"organization_id": org.pk, "job_id": job.pk})

    with scopes_disabled():
        job.refresh_from_db()
        remaining = list(Candidate.objects.values_list("pk", flat=True))
    assert remaining == [newcomer.pk]
    assert (job.status, job.total, job.processed) == (Job.Status.DONE, 3, 3)
    assert job.result == {"changed": 3, "unchanged": 0}


def test_bulk_inline_on_all_matching_acts_on_what_the_confirmation_counted(recruiter_client, org):
    confirmed = _candidates(org, 2, city="Berlin")
    page = recruiter_client.get(
        _bulk_url(org), {"action": "tag", "select_all": "1", "query": "city=Berlin"}
    )
    # Added while the recruiter reads the confirmation ("Add tags to 2 candidates").
    newcomer = CandidateFactory(organization=org, city="Berlin")

    response = recruiter_client.post(
        _bulk_url(org), {**_confirmation_form(page), "tags": "shortlist"}, follow=True
    )

    assert [_fresh(c).tags for c in confirmed] == [["shortlist"], ["shortlist"]]
    assert _fresh(newcomer).tags == []
    assert "Tagged 2 candidates with “shortlist”." in response.content.decode()


def test_bulk_all_matching_a_search_leaves_out_later_matches(recruiter_client, org):
    confirmed = CandidateFactory(organization=org, headline="Haskell wizard")
    page = recruiter_client.get(
        _bulk_url(org), {"action": "tag", "select_all": "1", "query": "q=haskell"}
    )
    newcomer = CandidateFactory(organization=org, headline="Haskell hacker")

    recruiter_client.post(_bulk_url(org), {**_confirmation_form(page), "tags": "fp"})

    assert (_fresh(confirmed).tags, _fresh(newcomer).tags) == (["fp"], [])


def test_bulk_export_job_leaves_out_candidates_added_after_confirming(
    recruiter_client, org, settings, django_capture_on_commit_callbacks, monkeypatch
):
    settings.CANDIDATE_EXPORT_INLINE_LIMIT = 1
    monkeypatch.setattr(bulk_action, "delay", lambda **kwargs: None)
    _candidates(org, 2, city="Berlin")
    page = recruiter_client.get(
        _bulk_url(org), {"action": "export", "select_all": "1", "query": "city=Berlin"}
    )
    with django_capture_on_commit_callbacks(execute=True):
        recruiter_client.post(_bulk_url(org), {**_confirmation_form(page), "export_format": "csv"})
    CandidateFactory(organization=org, city="Berlin")
    with scopes_disabled():
        job = Job.objects.get()

    bulk_action.apply(kwargs={"organization_id": org.pk, "job_id": job.pk})

    with scopes_disabled():
        job.refresh_from_db()
    assert (job.total, job.processed, job.result) == (2, 2, {"rows": 2, "format": "CSV"})


def test_bulk_job_never_raises_its_total_and_reports_the_difference(
    org, recruiter_user, recruiter_client, settings
):
    settings.CANDIDATE_BULK_BATCH_SIZE = 2
    berlin = _candidates(org, 3, city="Berlin")
    selection = {"query": "city=Berlin", "up_to_id": max(c.pk for c in berlin)}
    # Confirmed as 2; before the job ran, a third existing candidate moved to Berlin.
    job = _job(org, recruiter_user, "tag", {"tags": ["x"]}, selection, 2)

    bulk_action.apply(kwargs={"organization_id": org.pk, "job_id": job.pk})

    with scopes_disabled():
        job.refresh_from_db()
    assert (job.total, job.processed) == (2, 3)
    assert job.result == {"changed": 3, "unchanged": 0, "more_than_confirmed": 1}
    page = recruiter_client.get(reverse("candidates:job_detail", args=[org.slug, job.pk]))
    assert (
        "Found 3, 1 more than the 2 confirmed: profiles edited after the confirmation had come "
        "to match and were included." in page.content.decode()
    )


def test_bulk_job_reports_confirmed_candidates_that_were_gone(
    org, recruiter_user, recruiter_client
):
    berlin = _candidates(org, 3, city="Berlin")
    selection = {"query": "city=Berlin", "up_to_id": max(c.pk for c in berlin)}
    job = _job(org, recruiter_user, "tag", {"tags": ["x"]}, selection, 3)
    with scopes_disabled():
        Candidate.objects.filter(pk=berlin[0].pk).update(city="Paris")

    bulk_action.apply(kwargs={"organization_id": org.pk, "job_id": job.pk})

    with scopes_disabled():
        job.refresh_from_db()
    assert (job.total, job.processed) == (3, 2)
    assert job.result == {"changed": 2, "unchanged": 0, "no_longer_matching": 1}
    page = recruiter_client.get(reverse("candidates:job_detail", args=[org.slug, job.pk]))
    assert (
        "Found 2 of the 3 confirmed: the other 1 had been deleted or no longer matched when the "
        "job reached them and were left alone." in page.content.decode()
    )


# --- resuming a stopped job ---


def _resume_url(org, job):
    return reverse("candidates:job_resume", args=[org.slug, job.pk])


def _stopped_after_first_batch(org, user, chosen, action="tag", args=None):
    """A job whose worker committed the first two candidates, then stopped with an error."""
    args = args if args is not None else {"tags": ["x"]}
    job = _job(org, user, action, args, {"ids": [c.pk for c in chosen]}, len(chosen))
    bulk_job_stopped_after_batch(job, ids=[c.pk for c in chosen[:2]], actor=user)
    return job


def test_bulk_job_resume_continues_after_the_committed_cursor(
    recruiter_client, org, recruiter_user, django_capture_on_commit_callbacks, monkeypatch
):
    queued = []
    monkeypatch.setattr(bulk_action, "delay", lambda **kwargs: queued.append(kwargs))
    chosen = sorted(_candidates(org, 5), key=lambda c: c.pk)
    job = _stopped_after_first_batch(org, recruiter_user, chosen)

    with django_capture_on_commit_callbacks(execute=True):
        response = recruiter_client.post(_resume_url(org, job), follow=True)

    with scopes_disabled():
        job.refresh_from_db()
    assert response.redirect_chain[0][0] == reverse(
        "candidates:job_detail", args=[org.slug, job.pk]
    )
    # No flash that would still say so once the job has finished: the page's polled part does.
    assert [str(message) for message in response.context["messages"]] == []
    assert _under_way(response.content.decode()) == (
        "Working on 5 candidates in the background: the 2 counted above are done. "
        "You can leave this page; the job carries on without it."
    )
    # The error of the run that stopped is not shown above a job that was queued again.
    assert "OperationalError" not in response.content.decode()
    assert (job.status, queued) == (
        Job.Status.QUEUED,
        [{"organization_id": org.pk, "job_id": job.pk}],
    )

    bulk_action.apply(kwargs=queued[0])

    with scopes_disabled():
        job.refresh_from_db()
    assert (job.status, job.processed, job.error) == (Job.Status.DONE, 5, "")
    assert job.result == {"changed": 5, "unchanged": 0}
    assert [_fresh(c).tags for c in chosen] == [["x"]] * 5
    # The first two were not done twice: one timeline entry each.
    assert sorted(_activities(Activity.Kind.TAGGED)) == sorted(c.pk for c in chosen)


def test_bulk_job_resume_of_a_job_that_is_not_stopped_changes_nothing(
    recruiter_client, org, recruiter_user, django_capture_on_commit_callbacks, monkeypatch
):
    queued = []
    monkeypatch.setattr(bulk_action, "delay", lambda **kwargs: queued.append(kwargs))
    job = _job(org, recruiter_user, "tag", {"tags": ["x"]}, {"ids": []}, 0)
    with scopes_disabled():
        Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING)

    with _worker_running(job), django_capture_on_commit_callbacks(execute=True):
        response = recruiter_client.post(_resume_url(org, job))

    with scopes_disabled():
        job.refresh_from_db()
    assert response.status_code == 302
    assert (job.status, queued) == (Job.Status.RUNNING, [])


def test_bulk_job_running_without_a_worker_is_shown_stopped_and_can_be_resumed(
    recruiter_client, org, recruiter_user, django_capture_on_commit_callbacks, monkeypatch
):
    """The run set "running", then its database connection broke (or its worker died after a
    redelivered task had stood aside): nobody holds the job, and nobody will report."""
    queued = []
    monkeypatch.setattr(bulk_action, "delay", lambda **kwargs: queued.append(kwargs))
    chosen = sorted(_candidates(org, 3), key=lambda c: c.pk)
    job = _stopped_after_first_batch(org, recruiter_user, chosen)
    with scopes_disabled():
        Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, error="")
    page_url = reverse("candidates:job_detail", args=[org.slug, job.pk])

    page = recruiter_client.get(page_url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        recruiter_client.post(_resume_url(org, job))
    bulk_action.apply(kwargs=queued[0])

    assert "No worker is running this job any more" in page
    assert 'hx-trigger="every 1s"' not in page
    assert f'action="{_resume_url(org, job)}"' in page
    with scopes_disabled():
        job.refresh_from_db()
    assert (job.status, job.processed) == (Job.Status.DONE, 3)
    assert [_fresh(c).tags for c in chosen] == [["x"]] * 3


def test_bulk_job_resume_of_an_export_prepares_the_file_again(
    recruiter_client, org, recruiter_user, django_capture_on_commit_callbacks, monkeypatch
):
    queued = []
    monkeypatch.setattr(bulk_action, "delay", lambda **kwargs: queued.append(kwargs))
    _candidates(org, 2)
    with scopes_disabled():
        job = Job.objects.create(
            organization=org,
            kind=Job.Kind.EXPORT,
            status=Job.Status.FAILED,
            created_by=recruiter_user,
            total=2,
            params={"format": "csv", "selection": {"query": ""}, "output_name": "c.csv"},
        )

    with django_capture_on_commit_callbacks(execute=True):
        recruiter_client.post(_resume_url(org, job))
    bulk_action.apply(kwargs=queued[0])

    with scopes_disabled():
        job.refresh_from_db()
    assert (job.status, job.result) == (Job.Status.DONE, {"rows": 2, "format": "CSV"})
    assert bool(job.output_file)


def test_bulk_job_page_offers_resume_for_a_stopped_job_only(recruiter_client, org, recruiter_user):
    chosen = sorted(_candidates(org, 3), key=lambda c: c.pk)
    job = _stopped_after_first_batch(org, recruiter_user, chosen)
    page_url = reverse("candidates:job_detail", args=[org.slug, job.pk])

    stopped = recruiter_client.get(page_url).content.decode()
    with scopes_disabled():
        Job.objects.filter(pk=job.pk).update(status=Job.Status.DONE)
    done = recruiter_client.get(page_url).content.decode()

    assert f'action="{_resume_url(org, job)}"' in stopped
    assert "The job stopped (OperationalError)." in stopped
    assert _resume_url(org, job) not in done


def test_bulk_job_resume_of_a_delete_is_for_admins(
    recruiter_client,
    admin_client,
    org,
    admin_user,
    django_capture_on_commit_callbacks,
    monkeypatch,
):
    monkeypatch.setattr(bulk_action, "delay", lambda **kwargs: None)
    chosen = sorted(_candidates(org, 3), key=lambda c: c.pk)
    job = _stopped_after_first_batch(org, admin_user, chosen, action="delete", args={})
    page_url = reverse("candidates:job_detail", args=[org.slug, job.pk])

    recruiter_page = recruiter_client.get(page_url).content.decode()
    refused = recruiter_client.post(_resume_url(org, job))
    admin_page = admin_client.get(page_url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(_resume_url(org, job))

    with scopes_disabled():
        job.refresh_from_db()
    assert _resume_url(org, job) not in recruiter_page
    assert refused.status_code == 403
    assert _resume_url(org, job) in admin_page
    assert job.status == Job.Status.QUEUED


def test_bulk_job_resume_viewer_gets_403(viewer_client, org, recruiter_user):
    job = _stopped_after_first_batch(org, recruiter_user, _candidates(org, 3))
    assert viewer_client.post(_resume_url(org, job)).status_code == 403
    with scopes_disabled():
        assert Job.objects.get(pk=job.pk).status == Job.Status.FAILED


def test_bulk_job_resume_anonymous_is_sent_to_login(client, org, recruiter_user):
    job = _stopped_after_first_batch(org, recruiter_user, _candidates(org, 3))
    response = client.post(_resume_url(org, job))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_bulk_job_resume_other_organisation_gets_404(outsider_client, org, recruiter_user):
    job = _stopped_after_first_batch(org, recruiter_user, _candidates(org, 3))
    assert outsider_client.post(_resume_url(org, job)).status_code == 404
    with scopes_disabled():
        assert Job.objects.get(pk=job.pk).status == Job.Status.FAILED


def test_bulk_job_resume_is_post_only_and_not_for_imports(recruiter_client, org, recruiter_user):
    with scopes_disabled():
        imported = Job.objects.create(
            organization=org, kind=Job.Kind.IMPORT, status=Job.Status.FAILED
        )
    job = _stopped_after_first_batch(org, recruiter_user, _candidates(org, 3))
    assert recruiter_client.get(_resume_url(org, job)).status_code == 405
    assert recruiter_client.post(_resume_url(org, imported)).status_code == 404


def test_bulk_job_whose_filter_no_longer_holds_changes_nothing_and_says_why(
    org, admin_user, recruiter_user, viewer_user
):
    """Filtered by an owner who has since become a viewer (owner choices are recruiters and
    admins): the filter would be left out and "all matching" would be everyone."""
    from crm.models import Membership, Role

    mine = _candidates(org, 2, owner=recruiter_user)
    others = _candidates(org, 3)
    job = _job(
        org, admin_user, "tag", {"tags": ["reassigned"]}, {"query": f"owner={recruiter_user.pk}"}, 2
    )
    with scopes_disabled():
        Membership.objects.filter(organization=org, user=recruiter_user).update(role=Role.VIEWER)

    bulk_action.apply(kwargs={"organization_id": org.pk, "job_id": job.pk})

    with scopes_disabled():
        job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "The selection's filter no longer holds (Owner:" in job.error
    assert "nothing more was changed" in job.error
    assert [_fresh(c).tags for c in mine + others] == [[]] * 5


def test_a_selection_or_saved_search_whose_filter_no_longer_holds_finds_nobody(org, recruiter_user):
    from candidates.models import SavedSearch
    from candidates.selectors import (
        candidate_selection_queryset,
        saved_search_problem,
        saved_search_queryset,
    )
    from crm.models import Membership, Role

    _candidates(org, 2, owner=recruiter_user)
    _candidates(org, 3)
    with scopes_disabled():
        search = SavedSearch.objects.create(
            organization=org,
            owner=recruiter_user,
            name="Mine",
            query={"owner": [str(recruiter_user.pk)]},
        )
        query = f"owner={recruiter_user.pk}"
        assert (
            candidate_selection_queryset(organization=org, query=query, everyone=True).count() == 2
        )
        assert saved_search_queryset(saved_search=search).count() == 2
        Membership.objects.filter(organization=org, user=recruiter_user).update(role=Role.VIEWER)
        assert (
            candidate_selection_queryset(organization=org, query=query, everyone=True).count() == 0
        )
        assert candidate_selection_queryset(organization=org, query=query).count() == 0
        assert saved_search_queryset(saved_search=search).count() == 0
        assert saved_search_problem(saved_search=search).startswith("Owner:")
