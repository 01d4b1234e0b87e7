"""The candidate list page: filters, empty states, query counts, htmx, saved searches."""

import datetime
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from candidates.models import Candidate, SavedSearch
from candidates.selectors import candidate_selection_queryset, saved_search_queryset
from candidates.tests.factories import CandidateFactory, CustomFieldFactory

pytestmark = pytest.mark.django_db


def _url(org):
    return reverse("candidates:list", args=[org.slug])


def _ids(response):
    return sorted(candidate.pk for candidate in response.context["page"].rows)


# --- access ---


def test_list_anonymous_is_sent_to_login(client, org):
    response = client.get(_url(org))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_list_other_organisation_gets_404(outsider_client, org):
    assert outsider_client.get(_url(org)).status_code == 404


def test_list_viewer_sees_candidates_without_bulk_tools(viewer_client, org):
    CandidateFactory(organization=org, first_name="Visible")
    response = viewer_client.get(_url(org))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Visible" in body
    assert 'id="bulk-form"' not in body


def test_list_never_shows_another_organisations_candidates(recruiter_client, org, other_org):
    CandidateFactory(organization=other_org, first_name="Foreigner")
    mine = CandidateFactory(organization=org, first_name="Local")
    response = recruiter_client.get(_url(org))
    assert _ids(response) == [mine.pk]
    assert "Foreigner" not in response.content.decode()


def test_list_hides_merged_candidates(recruiter_client, org):
    primary = CandidateFactory(organization=org)
    CandidateFactory(organization=org, merged_into=primary)
    assert _ids(recruiter_client.get(_url(org))) == [primary.pk]


# --- empty states ---


def test_list_empty_organisation_shows_no_candidates_yet(recruiter_client, org):
    response = recruiter_client.get(_url(org))
    body = response.content.decode()
    assert "No candidates yet" in body
    assert reverse("candidates:new", args=[org.slug]) in body


def test_list_links_to_the_duplicates_review(viewer_client, org):
    CandidateFactory(organization=org)

    body = viewer_client.get(_url(org)).content.decode()

    assert f'href="{reverse("candidates:duplicates", args=[org.slug])}"' in body


def test_list_no_matches_shows_clear_filters(recruiter_client, org):
    CandidateFactory(organization=org, city="London")
    response = recruiter_client.get(_url(org), {"city": "Lisbon"})
    body = response.content.decode()
    assert "No candidates match these filters" in body
    assert "Clear filters" in body


# --- filters ---


def test_list_filter_skills_any_and_all(recruiter_client, org):
    both = CandidateFactory(organization=org, skills=["python", "django"])
    python = CandidateFactory(organization=org, skills=["python"])
    CandidateFactory(organization=org, skills=["go"])
    any_response = recruiter_client.get(_url(org), {"skills": "Python, Django"})
    all_response = recruiter_client.get(
        _url(org), {"skills": "Python, Django", "skills_mode": "all"}
    )
    assert _ids(any_response) == sorted([both.pk, python.pk])
    assert _ids(all_response) == [both.pk]


def test_list_filter_tags(recruiter_client, org):
    tagged = CandidateFactory(organization=org, tags=["shortlist"])
    CandidateFactory(organization=org, tags=["other"])
    assert _ids(recruiter_client.get(_url(org), {"tags": "Shortlist"})) == [tagged.pk]


@pytest.mark.parametrize(
    ("field", "match", "miss", "value"),
    [
        ("city", "Berlin", "Paris", "berlin"),
        ("country", "Germany", "France", "GERMANY"),
        ("source", "referral", "event", "referral"),
        ("seniority", "senior", "junior", "senior"),
        ("status", "not_now", "active", "not_now"),
    ],
)
def test_list_filter_simple_fields(recruiter_client, org, field, match, miss, value):
    wanted = CandidateFactory(organization=org, **{field: match})
    CandidateFactory(organization=org, **{field: miss})
    assert _ids(recruiter_client.get(_url(org), {field: value})) == [wanted.pk]


def test_list_filter_status_several(recruiter_client, org):
    active = CandidateFactory(organization=org, status="active")
    hired = CandidateFactory(organization=org, status="hired")
    CandidateFactory(organization=org, status="not_now")
    response = recruiter_client.get(_url(org), {"status": ["active", "hired"]})
    assert _ids(response) == sorted([active.pk, hired.pk])


def test_list_filter_owner_and_unassigned(recruiter_client, org, recruiter_user):
    owned = CandidateFactory(organization=org, owner=recruiter_user)
    free = CandidateFactory(organization=org, owner=None)
    assert _ids(recruiter_client.get(_url(org), {"owner": recruiter_user.pk})) == [owned.pk]
    assert _ids(recruiter_client.get(_url(org), {"owner": "unassigned"})) == [free.pk]


def test_list_filter_has_resume(recruiter_client, org):
    with_resume = CandidateFactory(organization=org, has_resume=True)
    without = CandidateFactory(organization=org, has_resume=False)
    assert _ids(recruiter_client.get(_url(org), {"has_resume": "true"})) == [with_resume.pk]
    assert _ids(recruiter_client.get(_url(org), {"has_resume": "false"})) == [without.pk]


def test_list_filter_created_range(recruiter_client, org, in_org):
    old = CandidateFactory(organization=org)
    new = CandidateFactory(organization=org)
    with in_org():
        Candidate.objects.filter(pk=old.pk).update(
            created_at=timezone.make_aware(datetime.datetime(2023, 3, 10, 12))
        )
        Candidate.objects.filter(pk=new.pk).update(
            created_at=timezone.make_aware(datetime.datetime(2024, 6, 1, 9))
        )
    after = recruiter_client.get(_url(org), {"created_after": "2024-01-01"})
    before = recruiter_client.get(_url(org), {"created_before": "2023-03-10"})
    assert _ids(after) == [new.pk]
    assert _ids(before) == [old.pk]


def test_list_filter_contacted_range_and_never(recruiter_client, org):
    day = timezone.make_aware(datetime.datetime(2024, 5, 20, 15))
    contacted = CandidateFactory(organization=org, last_contacted_at=day)
    never = CandidateFactory(organization=org, last_contacted_at=None)
    in_range = recruiter_client.get(
        _url(org), {"contacted_after": "2024-05-20", "contacted_before": "2024-05-20"}
    )
    assert _ids(in_range) == [contacted.pk]
    assert _ids(recruiter_client.get(_url(org), {"never_contacted": "on"})) == [never.pk]


def test_list_filter_custom_fields(recruiter_client, org):
    CustomFieldFactory(
        organization=org, key="visa", label="Visa", field_type="choice", choices=["yes", "no"]
    )
    CustomFieldFactory(organization=org, key="notice", label="Notice", field_type="text")
    CustomFieldFactory(organization=org, key="salary", label="Salary", field_type="number")
    CustomFieldFactory(organization=org, key="available", label="Available", field_type="date")
    first = CandidateFactory(
        organization=org,
        custom_fields={
            "visa": "yes",
            "notice": "Three months",
            "salary": 90000,
            "available": "2025-01-15",
        },
    )
    second = CandidateFactory(
        organization=org,
        custom_fields={"visa": "no", "notice": "none", "salary": 50000, "available": "2025-06-01"},
    )
    CandidateFactory(organization=org, custom_fields={"salary": "not a number"})
    assert _ids(recruiter_client.get(_url(org), {"cf_visa": "yes"})) == [first.pk]
    assert _ids(recruiter_client.get(_url(org), {"cf_notice": "MONTH"})) == [first.pk]
    salary = recruiter_client.get(_url(org), {"cf_salary_min": "60000", "cf_salary_max": ""})
    assert _ids(salary) == [first.pk]
    cheap = recruiter_client.get(_url(org), {"cf_salary_max": "60000"})
    assert _ids(cheap) == [second.pk]
    available = recruiter_client.get(_url(org), {"cf_available_after": "2025-03-01"})
    assert _ids(available) == [second.pk]


def test_list_range_filters_are_named_groups_of_named_inputs(recruiter_client, org):
    CustomFieldFactory(
        organization=org, key="notice", label="Notice period (weeks)", field_type="number"
    )
    CustomFieldFactory(organization=org, key="available", label="Available", field_type="date")

    body = recruiter_client.get(_url(org)).content.decode()

    assert 'for=""' not in body
    notice = re.search(
        r"<fieldset[^>]*>\s*<legend[^>]*>Notice period \(weeks\)</legend>(.*?)</fieldset>",
        body,
        re.S,
    )
    assert re.findall(r'<input[^>]*aria-label="([^"]*)"', notice.group(1)) == [
        "Notice period (weeks), minimum",
        "Notice period (weeks), maximum",
    ]
    available = re.search(
        r"<fieldset[^>]*>\s*<legend[^>]*>Available</legend>(.*?)</fieldset>", body, re.S
    )
    assert re.findall(r'<input[^>]*aria-label="([^"]*)"', available.group(1)) == [
        "Available, from",
        "Available, until",
    ]
    # The built-in date ranges are pairs of fields, each with its own label.
    for name, label in [("created_after", "Added from"), ("contacted_before", "Contacted until")]:
        assert (
            f'<label class="form-label small fw-semibold" for="id_{name}">{label}</label>' in body
        )


def test_list_range_filter_errors_are_announced_on_both_inputs(recruiter_client, org):
    CustomFieldFactory(organization=org, key="notice", label="Notice", field_type="number")

    body = recruiter_client.get(_url(org), {"cf_notice_min": "lots"}).content.decode()

    inputs = re.findall(r'<input[^>]*name="cf_notice_m(?:in|ax)"[^>]*>', body)
    assert len(inputs) == 2
    assert all('aria-describedby="id_cf_notice_errors"' in tag for tag in inputs)
    assert 'id="id_cf_notice_errors"' in body


def test_list_ignores_a_selection_that_is_not_candidate_ids(recruiter_client, org):
    candidate = CandidateFactory(organization=org)

    response = recruiter_client.get(
        _url(org), {"selected": ["²", "x", "9" * 20, str(candidate.pk)]}
    )

    assert response.status_code == 200
    assert f'value="{candidate.pk}" form="bulk-form" checked' in response.content.decode()


def test_list_search_combines_with_filters(recruiter_client, org):
    berlin = CandidateFactory(organization=org, headline="Python developer", city="Berlin")
    CandidateFactory(organization=org, headline="Python developer", city="Paris")
    response = recruiter_client.get(_url(org), {"q": "python", "city": "Berlin"})
    assert _ids(response) == [berlin.pk]


@pytest.mark.parametrize(
    "params",
    [
        {"created_after": "not-a-date"},
        {"status": "bogus"},
        {"owner": "999999"},
        {"cf_salary_min": "lots"},
        {"sort": "DROP TABLE"},
        {"skills_mode": "some"},
        {"has_resume": "maybe", "contacted_before": "2024-13-45"},
        {"q": "x" * 500},
    ],
)
def test_list_invalid_filter_input_shows_errors_not_500(recruiter_client, org, params):
    CustomFieldFactory(organization=org, key="salary", label="Salary", field_type="number")
    CandidateFactory(organization=org)
    response = recruiter_client.get(_url(org), params)
    assert response.status_code == 200
    body = response.content.decode()
    if params != {"has_resume": "maybe", "contacted_before": "2024-13-45"}:
        assert "Some filters were not applied" in body


def test_list_filters_are_kept_in_the_pager_links(recruiter_client, org, settings):
    settings.CANDIDATE_LIST_PAGE_SIZE = 1
    CandidateFactory(organization=org, city="Berlin")
    CandidateFactory(organization=org, city="Berlin")
    response = recruiter_client.get(_url(org), {"city": "Berlin"})
    assert "city=Berlin&amp;after=" in response.content.decode()


# --- query counts and htmx ---


def _queries_for(client, url, params=None):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params or {})
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize(
    "params", [{}, {"q": "engineer"}, {"skills": "python", "owner": "unassigned"}]
)
def test_list_query_count_is_constant_in_the_number_of_rows(
    recruiter_client, org, recruiter_user, params
):
    CustomFieldFactory(organization=org, key="visa", label="Visa")

    def make():
        return CandidateFactory(
            organization=org,
            owner=None if params else recruiter_user,
            skills=["python", "sql", "go", "rust"],
            headline="Engineer",
        )

    make()
    one = _queries_for(recruiter_client, _url(org), params)
    make()
    make()
    three = _queries_for(recruiter_client, _url(org), params)
    assert one == three


def test_list_rows_read_only_the_columns_a_row_shows(recruiter_client, org, recruiter_user):
    # LIST_COLUMNS: the 50 rows are read without the resume, the custom fields, the phone…
    CandidateFactory(organization=org, owner=recruiter_user, resume_text="Fortran for decades")
    for params in ({}, {"q": "fortran"}, {"sort": "name"}):
        with CaptureQueriesContext(connection) as queries:
            response = recruiter_client.get(_url(org), params)
        assert response.status_code == 200
        rows = [
            query["sql"]
            for query in queries
            if '"candidates_candidate"."headline"' in query["sql"].split(" FROM ")[0]
        ]
        assert rows, params
        for sql in rows:
            selected = sql.split(" FROM ")[0]
            for column in ("resume_text", "custom_fields", "phone", "search_vector"):
                assert f'"candidates_candidate"."{column}"' not in selected, (params, column)
            assert '"crm_user"."password"' not in selected


def test_list_htmx_request_returns_only_the_results(recruiter_client, org):
    CandidateFactory(organization=org, first_name="Partial")
    response = recruiter_client.get(
        _url(org), {"q": "partial"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="candidate-results"
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="candidate-results"')
    assert "<mark>Partial</mark>" in body
    assert "<html" not in body


# --- saved searches ---


def test_saved_search_create_stores_the_filters(recruiter_client, org, recruiter_user, in_org):
    url = reverse("candidates:saved_search_create", args=[org.slug])
    response = recruiter_client.post(
        url, {"name": "  Berlin   Python ", "query": "q=python&city=Berlin&after=x,1&tags="}
    )
    assert response.status_code == 302
    with in_org():
        saved = SavedSearch.objects.get(owner=recruiter_user)
    assert saved.name == "Berlin Python"
    assert saved.query == {"q": ["python"], "city": ["Berlin"]}
    assert "q=python" in response["Location"]


def test_saved_search_create_same_name_replaces_the_query(
    recruiter_client, org, recruiter_user, in_org
):
    url = reverse("candidates:saved_search_create", args=[org.slug])
    recruiter_client.post(url, {"name": "Mine", "query": "city=Berlin"})
    recruiter_client.post(url, {"name": "Mine", "query": "city=Paris"})
    with in_org():
        assert list(SavedSearch.objects.values_list("query", flat=True)) == [{"city": ["Paris"]}]


def test_saved_search_create_without_name_shows_an_error(recruiter_client, org, in_org):
    url = reverse("candidates:saved_search_create", args=[org.slug])
    response = recruiter_client.post(url, {"name": "  ", "query": "city=Berlin"}, follow=True)
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    with in_org():
        assert SavedSearch.objects.count() == 0


def test_saved_search_create_viewer_gets_403(viewer_client, org):
    url = reverse("candidates:saved_search_create", args=[org.slug])
    assert viewer_client.post(url, {"name": "x", "query": ""}).status_code == 403


def test_saved_search_listed_and_deleted(recruiter_client, org, recruiter_user, in_org):
    with scopes_disabled():
        saved = SavedSearch.objects.create(
            organization=org, owner=recruiter_user, name="Rustaceans", query={"q": ["rust"]}
        )
    body = recruiter_client.get(_url(org)).content.decode()
    assert "Rustaceans" in body
    assert "?q=rust" in body
    url = reverse("candidates:saved_search_delete", args=[org.slug, saved.pk])
    assert recruiter_client.post(url).status_code == 302
    with in_org():
        assert not SavedSearch.objects.exists()


def test_saved_search_delete_someone_elses_gets_404(recruiter_client, org, admin_user):
    with scopes_disabled():
        saved = SavedSearch.objects.create(organization=org, owner=admin_user, name="Admin's")
    url = reverse("candidates:saved_search_delete", args=[org.slug, saved.pk])
    assert recruiter_client.post(url).status_code == 404


def test_saved_search_delete_other_organisation_gets_404(outsider_client, org, recruiter_user):
    with scopes_disabled():
        saved = SavedSearch.objects.create(organization=org, owner=recruiter_user, name="x")
    url = reverse("candidates:saved_search_delete", args=[org.slug, saved.pk])
    assert outsider_client.post(url).status_code == 404


def test_saved_search_queryset_finds_what_the_list_finds(org, recruiter_user, in_org):
    wanted = CandidateFactory(organization=org, headline="Python developer", city="Berlin")
    CandidateFactory(organization=org, headline="Python developer", city="Paris")
    CandidateFactory(organization=org, headline="Chef", city="Berlin")
    with scopes_disabled():
        saved = SavedSearch.objects.create(
            organization=org,
            owner=recruiter_user,
            name="x",
            query={"q": ["python"], "city": ["Berlin"]},
        )
    with in_org():
        assert [c.pk for c in saved_search_queryset(saved_search=saved)] == [wanted.pk]


def test_selection_of_everyone_is_not_bounded_like_the_lists_search(org, in_org, settings):
    # "All matching" acts on what the list counts (its ranked matches); the smart pool preview
    # asks for everyone the same query finds.
    settings.CANDIDATE_SEARCH_RANK_LIMIT = 2
    for _ in range(4):
        CandidateFactory(organization=org, headline="Erlang developer")
    with in_org():
        listed = candidate_selection_queryset(organization=org, query="q=erlang&sort=name")
        everyone = candidate_selection_queryset(organization=org, query="q=erlang", everyone=True)
        assert (listed.count(), everyone.count()) == (2, 4)


def test_selection_of_all_matching_leaves_out_candidates_added_after_its_bound(org, in_org):
    confirmed = [
        CandidateFactory(organization=org, city="Lisbon", headline="Erlang developer")
        for _ in range(2)
    ]
    bound = max(c.pk for c in confirmed)
    newcomer = CandidateFactory(organization=org, city="Lisbon", headline="Erlang developer")
    with in_org():
        filtered = candidate_selection_queryset(
            organization=org, query="city=Lisbon", up_to_id=bound
        )
        searched = candidate_selection_queryset(organization=org, query="q=erlang", up_to_id=bound)
        ticked = candidate_selection_queryset(
            organization=org, candidate_ids=[newcomer.pk], up_to_id=bound
        )
        wanted = {c.pk for c in confirmed}
        assert {c.pk for c in filtered} == {c.pk for c in searched} == wanted
        # Ticked rows are what they are: the bound is for "all matching".
        assert [c.pk for c in ticked] == [newcomer.pk]


# --- changing a saved search on the list ---


def _saved(org, owner, name="Berliners", query=None):
    with scopes_disabled():
        return SavedSearch.objects.create(
            organization=org, owner=owner, name=name, query=query or {"city": ["Berlin"]}
        )


def test_saved_search_editing_shows_the_banner_and_keeps_the_marker_in_the_filters(
    recruiter_client, org, recruiter_user
):
    saved = _saved(org, recruiter_user)
    paris = CandidateFactory(organization=org, city="Paris")

    unchanged = recruiter_client.get(_url(org), {"city": "Berlin", "editing": saved.pk})
    changed = recruiter_client.get(_url(org), {"city": "Paris", "editing": saved.pk})

    body = unchanged.content.decode()
    assert unchanged.context["editing"] == saved
    assert unchanged.context["editing_changed"] is False
    assert "Changing the saved search “Berliners”" in body
    assert f'<input type="hidden" name="editing" value="{saved.pk}">' in body
    assert changed.context["editing_changed"] is True
    assert changed.context["editing_query"] == "city=Paris"
    assert _ids(unchanged) == []
    assert _ids(changed) == [paris.pk]


def test_saved_search_editing_offers_save_changes_not_a_second_save(
    recruiter_client, org, recruiter_user
):
    saved = _saved(org, recruiter_user)
    CandidateFactory(organization=org, city="Paris")

    listing = recruiter_client.get(_url(org), {"city": "Paris"}).content.decode()
    editing = recruiter_client.get(_url(org), {"city": "Paris", "editing": saved.pk})

    body = editing.content.decode()
    assert "Save search" in listing
    assert "Save changes" in body
    assert "Save search" not in body  # "Save changes" is the save while it is being changed


def test_saved_search_controls_are_named_on_hover_and_to_screen_readers(
    recruiter_client, org, recruiter_user
):
    from crm.tests.markup import attributes, elements

    _saved(org, recruiter_user)

    response = recruiter_client.get(_url(org))

    controls = [
        attributes(element)
        for element in elements(response.content.decode())
        if "saved-search-action" in (attributes(element).get("class") or "")
    ]
    assert [(control["title"], control["aria-label"]) for control in controls] == [
        ("Change the filters", "Change the filters of Berliners"),
        ("Rename", "Rename saved search Berliners"),
        ("Delete", "Delete saved search Berliners"),
    ]


def test_saved_search_editing_someone_elses_search_is_ignored(
    recruiter_client, org, admin_user, viewer_client
):
    saved = _saved(org, admin_user)

    response = recruiter_client.get(_url(org), {"city": "Paris", "editing": saved.pk})

    assert response.status_code == 200
    assert response.context["editing"] is None
    assert "Changing the saved search" not in response.content.decode()
    assert viewer_client.get(_url(org), {"editing": saved.pk}).context["editing"] is None


def test_saved_search_save_changes_replaces_the_filters(recruiter_client, org, recruiter_user):
    saved = _saved(org, recruiter_user)
    url = reverse("candidates:saved_search_save_changes", args=[org.slug, saved.pk])

    response = recruiter_client.post(
        url, {"query": "city=Paris&skills=Go&editing=99&after=x,1"}, follow=True
    )

    with scopes_disabled():
        saved.refresh_from_db()
    assert saved.query == {"city": ["Paris"], "skills": ["Go"]}
    assert "Search “Berliners” updated." in response.content.decode()
    assert response.redirect_chain[-1][0].endswith("?city=Paris&skills=Go")


def test_saved_search_save_changes_is_only_for_its_owner(
    recruiter_client, viewer_client, org, admin_user, outsider_client
):
    saved = _saved(org, admin_user)
    url = reverse("candidates:saved_search_save_changes", args=[org.slug, saved.pk])

    assert recruiter_client.post(url, {"query": "city=Paris"}).status_code == 404
    assert viewer_client.post(url, {"query": "city=Paris"}).status_code == 403
    assert outsider_client.post(url, {"query": "city=Paris"}).status_code == 404
    assert recruiter_client.get(url).status_code == 405
    with scopes_disabled():
        saved.refresh_from_db()
    assert saved.query == {"city": ["Berlin"]}


def test_saved_search_describe_puts_the_filters_in_words(org, recruiter_user, in_org):
    from candidates.services.saved_searches import saved_search_describe

    saved = _saved(
        org,
        recruiter_user,
        query={
            "q": ["rust"],
            "skills": ["Go, Python"],
            "skills_mode": ["all"],
            "status": ["active", "not_now"],
            "seniority": ["senior"],
            "has_resume": ["false"],
            "sort": ["name"],
        },
    )

    with in_org():
        described = saved_search_describe(saved_search=saved)

    assert described == [
        ("Search", "“rust”"),
        ("Skills", "go, python (all of them)"),
        ("Status", "Active, Not now"),
        ("Seniority", "Senior"),
        ("Resume", "no resume"),
    ]


def test_list_rows_say_when_each_was_last_contacted_also_on_phones(recruiter_client, org):
    """The "Last contacted" column is hidden on phones (`d-md-none` line in the name cell)."""
    CandidateFactory(organization=org, first_name="Reached", last_contacted_at=timezone.now())
    CandidateFactory(organization=org, first_name="Quiet", last_contacted_at=None)
    body = recruiter_client.get(_url(org), {"sort": "-contacted"}).content.decode()
    rows = re.findall(r"<tr>.*?</tr>", body, re.S)[1:]  # the header row first
    phone_lines = [
        re.search(r'text-body-secondary d-md-none">(.*?)</div>', row, re.S).group(1) for row in rows
    ]
    assert [" ".join(re.sub(r"<[^>]+>", "", line).split()) for line in phone_lines] == [
        "Contacted today",
        "Never contacted",
    ]


# --- date filters at the ends of the calendar ---

CALENDAR_ENDS = {
    "created_after": "0001-01-01",
    "created_before": "9999-12-31",
    "contacted_after": "0001-01-01",
    "contacted_before": "9999-12-31",
}


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York", "Pacific/Kiritimati"])
@pytest.mark.parametrize("name", sorted(CALENDAR_ENDS))
def test_list_filter_dates_at_the_ends_of_the_calendar_are_open_ranges(
    recruiter_client, org, zone, name
):
    contacted = CandidateFactory(
        organization=org, last_contacted_at=timezone.make_aware(datetime.datetime(2024, 5, 20))
    )
    never = CandidateFactory(organization=org, last_contacted_at=None)

    with timezone.override(zone):
        response = recruiter_client.get(_url(org), {name: CALENDAR_ENDS[name]})

    assert response.status_code == 200
    expected = [contacted.pk] if name.startswith("contacted") else sorted([contacted.pk, never.pk])
    assert _ids(response) == expected


def test_list_filter_until_the_day_before_the_last_still_bounds(recruiter_client, org, in_org):
    candidate = CandidateFactory(organization=org)
    with in_org():
        Candidate.objects.filter(pk=candidate.pk).update(
            created_at=datetime.datetime(9999, 12, 31, 12, tzinfo=datetime.UTC)
        )

    response = recruiter_client.get(_url(org), {"created_before": "9999-12-30"})

    assert response.status_code == 200
    assert _ids(response) == []


def test_smart_pool_of_a_saved_search_until_the_last_day_refreshes_and_reevaluates(
    org, recruiter_user, in_org
):
    from pipelines.models import Pool
    from pipelines.selectors import stages_default
    from pipelines.services import smart_pool_refresh, smart_pools_reevaluate_candidate
    from pipelines.tests.factories import PoolFactory

    contacted = CandidateFactory(
        organization=org, last_contacted_at=timezone.make_aware(datetime.datetime(2024, 5, 20))
    )
    with scopes_disabled():
        saved = SavedSearch.objects.create(
            organization=org,
            owner=recruiter_user,
            name="Everyone ever contacted",
            query={key: [value] for key, value in CALENDAR_ENDS.items()},
        )
    with in_org():
        stages_default(organization=org)
    pool = PoolFactory(
        organization=org, owner=recruiter_user, kind=Pool.Kind.SMART, saved_search=saved
    )

    with in_org(), timezone.override("Europe/Berlin"):
        refreshed = smart_pool_refresh(pool=pool)
        later = CandidateFactory(
            organization=org,
            last_contacted_at=timezone.make_aware(datetime.datetime(2025, 1, 2)),
        )
        reevaluated = smart_pools_reevaluate_candidate(candidate=later)
        found = sorted(c.pk for c in saved_search_queryset(saved_search=saved))

    assert refreshed == (1, 0)
    assert reevaluated == {pool.pk: "entered"}
    assert found == sorted([contacted.pk, later.pk])


def test_list_long_unbroken_name_and_skill_wrap_inside_their_columns(recruiter_client, org):
    CandidateFactory(organization=org, first_name="N" * 100, last_name="", skills=["s" * 64])

    body = recruiter_client.get(_url(org)).content.decode()

    assert re.search(r'<a class="fw-semibold text-break" href="[^"]*">N{100}</a>', body)
    assert re.search(
        r'<span class="badge rounded-pill [^"]*text-wrap text-break mw-100[^"]*">s{64}<', body
    )
