import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from candidates.models import DuplicateSuggestion, Job
from candidates.services.duplicates import (
    duplicate_dismiss,
    duplicates_check_candidate,
    duplicates_check_candidates,
    duplicates_scan,
)
from candidates.tasks import duplicates_scan as duplicates_scan_task
from candidates.tasks import duplicates_scan_all
from candidates.tests.factories import CandidateFactory
from crm.tests.markup import applies_with_show_button

pytestmark = pytest.mark.django_db


def _pairs(org) -> dict[tuple[int, int], str]:
    with scopes_disabled():
        return {
            (s.candidate_a_id, s.candidate_b_id): s.reason
            for s in DuplicateSuggestion.objects.filter(organization=org)
        }


def _pair(one, two) -> tuple[int, int]:
    return (min(one.pk, two.pk), max(one.pk, two.pk))


@pytest.fixture
def people(org):
    """Three duplicate pairs (email, phone, name+company), an alternate-email pair, and people
    who must not be matched: same name at another company, same company with another name."""
    make = CandidateFactory
    return {
        "ada": make(organization=org, first_name="Ada", last_name="Lovelace", email="ada@x.org"),
        "ada_again": make(
            organization=org,
            first_name="Augusta",
            last_name="King",
            email="augusta@y.org",
            alternate_emails=["ada@x.org"],
        ),
        "bob": make(organization=org, first_name="Bob", last_name="Stone", phone="+447700900001"),
        "bobby": make(
            organization=org, first_name="Robert", last_name="Stone", phone="+447700900001"
        ),
        "jon": make(
            organization=org, first_name="Jonathan", last_name="Smith", current_company="Initech"
        ),
        "john": make(
            organization=org, first_name="Jonathon", last_name="Smith", current_company="INITECH"
        ),
        "other_jon": make(
            organization=org, first_name="Jonathan", last_name="Smith", current_company="Globex"
        ),
        "colleague": make(
            organization=org, first_name="Maria", last_name="Garcia", current_company="Initech"
        ),
    }


def _expected(people):
    return {
        _pair(people["ada"], people["ada_again"]): "email",
        _pair(people["bob"], people["bobby"]): "phone",
        _pair(people["jon"], people["john"]): "name_company",
    }


def test_duplicates_check_candidate_finds_email_phone_and_name_company(org, people):
    with scopes_disabled():
        for key in ("ada", "bob", "jon"):
            duplicates_check_candidate(candidate=people[key])

    assert _pairs(org) == _expected(people)


def test_duplicates_check_candidate_finds_alternate_emails_both_ways(org, people):
    with scopes_disabled():
        duplicates_check_candidate(candidate=people["ada_again"])

    assert _pairs(org) == {_pair(people["ada"], people["ada_again"]): "email"}


def test_duplicates_check_candidate_ignores_unrelated_people(org, people):
    with scopes_disabled():
        duplicates_check_candidate(candidate=people["other_jon"])
        duplicates_check_candidate(candidate=people["colleague"])

    assert _pairs(org) == {}


def test_duplicates_check_candidate_ignores_other_organisations(org, other_org):
    mine = CandidateFactory(organization=org, email="same@x.org", phone="+447700900002")
    CandidateFactory(organization=other_org, email="same@x.org", phone="+447700900002")

    with scopes_disabled():
        duplicates_check_candidate(candidate=mine)

    assert _pairs(org) == {}


def test_duplicates_check_candidate_ignores_merged_profiles(org):
    primary = CandidateFactory(organization=org, phone="+447700900003")
    CandidateFactory(organization=org, phone="+447700900003", merged_into=primary)

    with scopes_disabled():
        duplicates_check_candidate(candidate=primary)

    assert _pairs(org) == {}


def test_duplicates_check_candidates_covers_an_import_batch(org, people):
    with scopes_disabled():
        written = duplicates_check_candidates(
            organization=org,
            candidate_ids=[people["ada"].pk, people["bobby"].pk, people["john"].pk],
        )

    assert written == 3
    assert _pairs(org) == _expected(people)


def test_duplicates_scan_finds_the_same_set(org, people):
    with scopes_disabled():
        duplicates_scan(organization=org)

    assert _pairs(org) == _expected(people)


def test_duplicates_scan_keeps_the_strongest_reason_and_is_idempotent(org):
    one = CandidateFactory(organization=org, email="a@x.org", phone="+447700900004")
    two = CandidateFactory(
        organization=org, alternate_emails=["a@x.org"], phone="+447700900004", email="b@x.org"
    )

    with scopes_disabled():
        duplicates_scan(organization=org)
        duplicates_scan(organization=org)
        suggestion = DuplicateSuggestion.objects.get()

    assert (suggestion.candidate_a_id, suggestion.candidate_b_id) == _pair(one, two)
    assert (suggestion.reason, suggestion.score) == ("email", 1.0)


def test_duplicates_scan_never_reopens_a_dismissed_pair(org, people):
    with scopes_disabled():
        duplicates_scan(organization=org)
        suggestion = DuplicateSuggestion.objects.get(reason="phone")
        duplicate_dismiss(suggestion=suggestion)

        duplicates_scan(organization=org)
        duplicates_check_candidate(candidate=people["bob"])
        suggestion.refresh_from_db()

    assert suggestion.state == DuplicateSuggestion.State.DISMISSED


def _scan_queries(org) -> int:
    with scopes_disabled(), CaptureQueriesContext(connection) as queries:
        duplicates_scan(organization=org)
    return len(queries)


def test_duplicates_scan_uses_the_same_few_queries_for_any_number_of_candidates(org, other_org):
    for index in range(2):
        CandidateFactory(organization=org, phone=f"+44770090010{index % 1}")
    small = _scan_queries(org)
    for index in range(40):
        CandidateFactory(
            organization=other_org,
            email=f"dup{index // 2}@x.org" if index % 2 else f"dup{index // 2}-{index}@y.org",
            alternate_emails=[] if index % 2 else [f"dup{index // 2}@x.org"],
            phone=f"+4477009002{index // 2:02d}",
            first_name="Pat",
            last_name=f"Jones{index // 2}",
            current_company=f"Umbrella {index // 2}",
        )

    large = _scan_queries(other_org)

    assert small == large <= 4
    assert len(_pairs(other_org)) == 20


def test_duplicates_scan_task_records_its_result_on_the_job(
    org, people, recruiter_user, recruiter_client
):
    with scopes_disabled():
        job = Job.objects.create(
            organization=org, kind=Job.Kind.DUPLICATE_SCAN, status=Job.Status.QUEUED, total=1
        )

    duplicates_scan_task.apply(kwargs={"organization_id": org.pk, "job_id": job.pk})

    with scopes_disabled():
        job.refresh_from_db()
    assert job.status == Job.Status.DONE
    assert job.result == {"new or updated suggestions": 3, "open suggestions": 3}
    page = recruiter_client.get(reverse("candidates:job_detail", args=[org.slug, job.pk]))
    assert "<strong>3</strong> possible duplicates to review." in page.content.decode()


def test_duplicates_scan_all_queues_one_scan_per_organisation(org, other_org, monkeypatch):
    queued = []
    monkeypatch.setattr(duplicates_scan_task, "delay", lambda **kwargs: queued.append(kwargs))

    assert duplicates_scan_all.apply().get() == 2
    assert sorted(call["organization_id"] for call in queued) == sorted([org.pk, other_org.pk])


# --- the review page ---------------------------------------------------------------------


def _suggest(org, count, prefix="p"):
    pairs = []
    for index in range(count):
        one = CandidateFactory(organization=org, email=f"{prefix}{index}@x.org")
        two = CandidateFactory(organization=org, alternate_emails=[f"{prefix}{index}@x.org"])
        pairs.append((one, two))
    with scopes_disabled():
        duplicates_scan(organization=org)
    return pairs


def test_duplicate_list_shows_both_profiles_side_by_side(recruiter_client, org):
    [(one, two)] = _suggest(org, 1)

    response = recruiter_client.get(reverse("candidates:duplicates", args=[org.slug]))

    body = response.content.decode()
    assert response.status_code == 200
    assert one.full_name in body and two.full_name in body
    assert "Same email" in body
    assert "Not a duplicate" in body
    assert f"/candidates/{one.pk}/merge/?other={two.pk}" in body


def test_duplicate_list_shows_phones_grouped_for_reading(recruiter_client, org):
    first = CandidateFactory(organization=org, phone="+4915123452709", email="a@x.example")
    CandidateFactory(organization=org, phone="+4915123452709", email="b@x.example")
    with scope(organization=org):
        duplicates_check_candidate(candidate=first)

    body = recruiter_client.get(reverse("candidates:duplicates", args=[org.slug])).content.decode()

    assert body.count("+49 1512 3452709") == 2


def test_duplicate_list_viewer_reads_without_actions(viewer_client, org):
    [(one, _)] = _suggest(org, 1)

    response = viewer_client.get(reverse("candidates:duplicates", args=[org.slug]))

    body = response.content.decode()
    assert one.full_name in body
    assert "Not a duplicate" not in body
    assert "Scan now" not in body


def test_duplicate_list_filter_sits_in_the_same_place_for_every_role(
    viewer_client, recruiter_client, org
):
    """Only the header's Scan now button depends on the role; the filter is not beside it."""
    from crm.tests.markup import attributes, elements, form_of

    _suggest(org, 1)

    def filter_row(client) -> list[tuple[str, str]]:
        html = client.get(reverse("candidates:duplicates", args=[org.slug])).content.decode()
        form = form_of(html, "id_reason")
        parent = next(element for element in elements(html) if form in element.children)
        return [
            (child.name, attributes(child).get("class", ""))
            for child in parent.children
            if not isinstance(child, str)
        ]

    assert filter_row(viewer_client) == filter_row(recruiter_client)


def test_duplicate_list_filters_by_reason(recruiter_client, org, people):
    with scopes_disabled():
        duplicates_scan(organization=org)

    response = recruiter_client.get(
        reverse("candidates:duplicates", args=[org.slug]), {"reason": "phone"}
    )

    body = response.content.decode()
    assert people["bobby"].full_name in body
    assert people["ada_again"].full_name not in body
    assert applies_with_show_button(body, "id_reason")


def test_duplicate_list_empty_state(recruiter_client, org):
    response = recruiter_client.get(reverse("candidates:duplicates", args=[org.slug]))

    assert "No possible duplicates" in response.content.decode()


def _list_queries(client, org) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("candidates:duplicates", args=[org.slug])).status_code == 200
    return len(queries)


def test_duplicate_list_query_count_does_not_grow_with_rows(recruiter_client, org):
    _suggest(org, 1)
    one = _list_queries(recruiter_client, org)
    _suggest(org, 2, prefix="q")

    three = _list_queries(recruiter_client, org)

    assert one == three


def test_duplicate_list_anonymous_goes_to_login(client, org):
    response = client.get(reverse("candidates:duplicates", args=[org.slug]))

    assert "/accounts/login/" in response["Location"]


def test_duplicate_list_other_org_is_not_found(outsider_client, org):
    response = outsider_client.get(reverse("candidates:duplicates", args=[org.slug]))

    assert response.status_code == 404


def _suggestion(org):
    _suggest(org, 1)
    with scopes_disabled():
        return DuplicateSuggestion.objects.get(organization=org)


def test_duplicate_dismiss_marks_the_pair_not_a_duplicate(recruiter_client, org):
    suggestion = _suggestion(org)

    response = recruiter_client.post(
        reverse("candidates:duplicate_dismiss", args=[org.slug, suggestion.pk])
    )

    assert response.status_code == 302
    with scopes_disabled():
        suggestion.refresh_from_db()
    assert suggestion.state == DuplicateSuggestion.State.DISMISSED


def test_duplicate_dismiss_with_htmx_removes_the_card(recruiter_client, org):
    suggestion = _suggestion(org)

    response = recruiter_client.post(
        reverse("candidates:duplicate_dismiss", args=[org.slug, suggestion.pk]),
        headers={"HX-Request": "true"},
    )

    assert (response.status_code, response.content) == (200, b"")


def test_duplicate_dismiss_ignores_an_offsite_next(recruiter_client, org):
    suggestion = _suggestion(org)

    response = recruiter_client.post(
        reverse("candidates:duplicate_dismiss", args=[org.slug, suggestion.pk]),
        {"next": "https://evil.example/"},
    )

    assert response["Location"] == reverse("candidates:duplicates", args=[org.slug])


def test_duplicate_dismiss_viewer_is_forbidden(viewer_client, org):
    suggestion = _suggestion(org)

    response = viewer_client.post(
        reverse("candidates:duplicate_dismiss", args=[org.slug, suggestion.pk])
    )

    assert response.status_code == 403


def test_duplicate_dismiss_other_org_is_not_found(outsider_client, other_org, org):
    suggestion = _suggestion(org)

    response = outsider_client.post(
        reverse("candidates:duplicate_dismiss", args=[other_org.slug, suggestion.pk])
    )

    assert response.status_code == 404


def test_duplicate_scan_view_queues_a_job(
    recruiter_client, org, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = recruiter_client.post(reverse("candidates:duplicates_scan", args=[org.slug]))

    with scopes_disabled():
        job = Job.objects.get(organization=org)
    assert response["Location"] == reverse("candidates:job_detail", args=[org.slug, job.pk])
    assert (job.kind, job.status) == (Job.Kind.DUPLICATE_SCAN, Job.Status.QUEUED)
    assert len(callbacks) == 1


def test_duplicate_scan_view_viewer_is_forbidden(viewer_client, org):
    response = viewer_client.post(reverse("candidates:duplicates_scan", args=[org.slug]))

    assert response.status_code == 403


def test_duplicate_profile_card_offers_merge_and_dismiss(recruiter_client, org):
    [(one, two)] = _suggest(org, 1)

    response = recruiter_client.get(reverse("candidates:detail", args=[org.slug, one.pk]))

    body = response.content.decode()
    assert "Possible duplicates" in body
    assert two.full_name in body
    assert f"/candidates/{one.pk}/merge/?other={two.pk}" in body


def test_creating_a_candidate_flags_a_duplicate_at_once(org, recruiter_user):
    from django_scopes import scope

    from candidates.services.profiles import candidate_create

    existing = CandidateFactory(organization=org, email="ana@example.com", phone="+351912345678")
    with scope(organization=org):
        new = candidate_create(
            organization=org,
            actor=recruiter_user,
            first_name="Ana",
            last_name="Other",
            email="ana.other@example.com",
            phone="+351912345678",
        )

    assert _pairs(org) == {_pair(existing, new): DuplicateSuggestion.Reason.PHONE}


def _import_with_eager_tasks(org, user, data: bytes, capture_on_commit):
    """Run a CSV import with its default mapping; the tasks it queues on commit run at once.
    Returns the job and the on-commit callbacks."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django_scopes import scope

    from candidates.importing.reading import inspect_file
    from candidates.services import imports
    from crm.celery import app as celery_app

    upload = SimpleUploadedFile("people.csv", data)
    info = inspect_file(upload)
    with scope(organization=org):
        job = imports.import_create(organization=org, user=user, upload=upload, info=info)
        job = imports.import_configure(
            job=job, mapping=job.params["mapping"], options=job.params["options"]
        )
        celery_app.conf.task_always_eager = True
        try:
            with capture_on_commit(execute=True) as callbacks:
                job = imports.import_run(job=job)
        finally:
            celery_app.conf.task_always_eager = False
    return job, callbacks


def test_import_queues_a_duplicate_scan_that_flags_new_rows(
    org, recruiter_user, django_capture_on_commit_callbacks
):
    existing = CandidateFactory(organization=org, email="kim@example.com", phone="+4915123452709")
    data = b"First name,Last name,Email,Phone\nKim,Second,kim.second@example.com,+4915123452709\n"
    _, callbacks = _import_with_eager_tasks(
        org, recruiter_user, data, django_capture_on_commit_callbacks
    )

    assert len(callbacks) == 1
    ((pair, reason),) = _pairs(org).items()
    assert existing.pk in pair
    assert reason == DuplicateSuggestion.Reason.PHONE


def test_import_that_only_updates_profiles_also_queues_the_duplicate_scan(
    org, recruiter_user, django_capture_on_commit_callbacks
):
    """An import can give an existing profile another's phone: updates are checked too."""
    existing = CandidateFactory(organization=org, email="kim@example.com", phone="+4915123452709")
    updated = CandidateFactory(organization=org, email="lee@example.com", phone="")
    data = b"First name,Last name,Email,Phone\nLee,Updated,lee@example.com,+4915123452709\n"
    job, _ = _import_with_eager_tasks(org, recruiter_user, data, django_capture_on_commit_callbacks)

    assert (job.result["created"], job.result["updated"]) == (0, 1)
    assert _pairs(org) == {_pair(existing, updated): DuplicateSuggestion.Reason.PHONE}


def test_duplicates_scan_compares_names_within_blocks_of_one_company_and_name(org, settings):
    """Similar names at one company are compared only among people sharing a first or a last
    name there; a block above DUPLICATE_MAX_NAME_BLOCK_SIZE is skipped (its pairs grow with the
    square of its size), which the old company-wide self-join never did."""
    jon = CandidateFactory(
        organization=org, first_name="Jon", last_name="Smith", current_company="Acme"
    )
    john = CandidateFactory(
        organization=org, first_name="John", last_name="Smith", current_company="ACME"
    )
    jane = CandidateFactory(
        organization=org, first_name="Jane", last_name="Doe", current_company="Acme"
    )
    jane_typo = CandidateFactory(
        organization=org, first_name="jane", last_name="Doe-", current_company="acme"
    )
    CandidateFactory(
        organization=org, first_name="Jon", last_name="Smith", current_company="Initech"
    )

    with scopes_disabled():
        duplicates_scan(organization=org)
    assert set(_pairs(org)) == {_pair(jon, john), _pair(jane, jane_typo)}

    # Three Smiths at Acme now: the last-name block (3) is over the limit; Jon and John share
    # no first name either, so their pair is not looked at; Jane's pair (first-name block of
    # 2) still is.
    CandidateFactory(organization=org, first_name="Mary", last_name="Smith", current_company="Acme")
    settings.DUPLICATE_MAX_NAME_BLOCK_SIZE = 2
    with scopes_disabled():
        DuplicateSuggestion.objects.all().delete()
        duplicates_scan(organization=org)
    assert set(_pairs(org)) == {_pair(jane, jane_typo)}


def test_duplicate_list_highlights_the_alternate_email_that_matches(recruiter_client, org):
    first = CandidateFactory(
        organization=org, email="ada@work.example", alternate_emails=["ada@home.example"]
    )
    CandidateFactory(organization=org, email="ada@home.example", phone="")
    with scope(organization=org):
        duplicates_check_candidate(candidate=first)

    response = recruiter_client.get(reverse("candidates:duplicates", args=[org.slug]))

    body = response.content.decode()
    [suggestion] = response.context["suggestions"]
    assert suggestion.get_reason_display() == "Same email"
    assert suggestion.shared_emails == {"ada@home.example"}
    marked = re.findall(r'<mark class="duplicate-match">([^<]*)</mark>', body)
    assert marked == ["ada@home.example", "ada@home.example"]  # once on each side
    assert "ada@work.example" in body  # shown, not marked


def test_duplicate_list_highlights_the_phone_that_matches(recruiter_client, org):
    first = CandidateFactory(organization=org, phone="+4915123452709", email="a@x.example")
    CandidateFactory(organization=org, phone="+4915123452709", email="b@x.example")
    with scope(organization=org):
        duplicates_check_candidate(candidate=first)

    body = recruiter_client.get(reverse("candidates:duplicates", args=[org.slug])).content.decode()

    marked = re.findall(r'<mark class="duplicate-match">([^<]*)</mark>', body)
    assert marked == ["+49 1512 3452709", "+49 1512 3452709"]
