"""Search: full-text ranking, typo tolerance, bounded ranking, highlighting, keyset pages."""

import datetime
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString

from candidates.models import Candidate
from candidates.search import (
    SORTS,
    candidate_search,
    count_capped,
    count_display,
    cursor_decode,
    cursor_encode,
    highlight,
    highlight_terms,
    keyset_page,
    ranked_page,
    search_is_bounded,
    search_matches,
    skill_badges,
)
from candidates.tests.factories import CandidateFactory
from crm.db import planner_settings

pytestmark = pytest.mark.django_db


def _search(org, q, **kwargs):
    return list(candidate_search(Candidate.objects.filter(organization=org), q, **kwargs))


def test_search_name_match_outranks_resume_match(org, in_org):
    resume = CandidateFactory(
        organization=org,
        first_name="Ada",
        last_name="Byron",
        resume_text="Worked alongside Kowalczyk on compilers for many years.",
    )
    named = CandidateFactory(organization=org, first_name="Marta", last_name="Kowalczyk")
    CandidateFactory(organization=org, first_name="Nobody", last_name="Else")
    with in_org():
        results = _search(org, "kowalczyk")
    assert [c.pk for c in results] == [named.pk, resume.pk]
    assert results[0].rank > results[1].rank


def test_search_english_stemming_finds_prose(org, in_org):
    engineer = CandidateFactory(
        organization=org, headline="Engineering payments systems", current_title=""
    )
    CandidateFactory(organization=org, headline="Sales", current_title="Account manager")
    with in_org():
        results = _search(org, "engineer")
    assert [c.pk for c in results] == [engineer.pk]


def test_search_misspelled_first_and_last_name_finds_the_person(org, in_org):
    john = CandidateFactory(
        organization=org, first_name="John", last_name="Smith", email="js@example.com"
    )
    CandidateFactory(organization=org, first_name="Maria", last_name="Garcia")
    with in_org():
        results = _search(org, "Jonh Smiht")
    assert [c.pk for c in results] == [john.pk]


def test_search_misspelled_email_finds_the_person(org, in_org):
    person = CandidateFactory(organization=org, email="katarina.novak@example.org")
    CandidateFactory(organization=org, email="someone.else@example.com")
    with in_org():
        results = _search(org, "katarina.nowak@example.org")
    assert results[0].pk == person.pk


def test_search_bounded_ranking_still_ranks_the_best_match_first(org, in_org, settings):
    settings.CANDIDATE_SEARCH_FUZZY_LIMIT = 5
    for number in range(6):
        CandidateFactory(
            organization=org,
            first_name=f"Person{number}",
            resume_text="Python developer",
            headline="",
        )
    best = CandidateFactory(organization=org, headline="Python", skills=["python"])
    with in_org():
        queryset = Candidate.objects.filter(organization=org)
        results = list(candidate_search(queryset, "python", limit=50))
        bounded = search_is_bounded(queryset, "python", limit=3)
        unbounded = search_is_bounded(queryset, "python", limit=50)
        limited = list(candidate_search(queryset, "python", limit=3))
    assert results[0].pk == best.pk
    assert bounded is True
    assert unbounded is False
    assert len(limited) == 3


def test_search_never_returns_another_organisations_candidates(org, other_org, in_org):
    CandidateFactory(organization=other_org, first_name="Kowalczyk")
    mine = CandidateFactory(organization=org, first_name="Kowalczyk")
    with in_org():
        results = _search(org, "kowalczyk")
    assert [c.pk for c in results] == [mine.pk]


def test_search_query_of_punctuation_only_finds_nothing_without_error(org, in_org):
    CandidateFactory(organization=org)
    with in_org():
        assert _search(org, "!!! &&& ()") == []


def test_highlight_marks_terms_and_escapes_everything_else():
    result = highlight("<b>Python</b> & python-dev", highlight_terms("python"))
    assert result == "&lt;b&gt;<mark>Python</mark>&lt;/b&gt; &amp; <mark>python</mark>-dev"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "plain text without a match",
        "Python, PYTHON and pythonista; not cpython",
        """Quotes " and ' <tags> & entities &amp; around python""",
        "Zoë Müller-Łukasiewicz, python développeuse",
        """python then "quotes", 'apostrophes' & <b>tags</b> after it""",
        SafeString("<b>already safe</b> python"),
    ],
)
def test_highlight_writes_what_django_escaping_writes(text):
    """The same text as escaping each piece with Django's `escape` and marking with
    `format_html`, which highlight() wrote before it joined plain strings."""
    terms = highlight_terms("python développeuse & zoë")

    def reference(text):
        result = escape("")
        position = 0
        pattern = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, terms)) + ")", re.I)
        for match in pattern.finditer(text):
            result += escape(text[position : match.start()])
            result += format_html("<mark>{}</mark>", match.group(0))
            position = match.end()
        return result + escape(text[position:])

    marked = highlight(text, terms)
    assert marked == reference(text)
    assert isinstance(marked, SafeString)
    assert highlight(text, []) == escape(text)


def test_highlight_skips_excluded_terms_and_operators():
    assert highlight_terms('python -java or "go"') == ["python", "go"]


def test_list_search_highlights_the_match_in_results(recruiter_client, org):
    CandidateFactory(organization=org, first_name="Grace", last_name="Hopper", headline="")
    url = reverse("candidates:list", args=[org.slug])
    response = recruiter_client.get(url, {"q": "hopper"})
    assert response.status_code == 200
    assert "Grace <mark>Hopper</mark>" in response.content.decode()


def test_list_search_escapes_user_data_in_highlights(recruiter_client, org):
    CandidateFactory(
        organization=org, first_name="<script>alert(1)</script>", last_name="Evil", headline=""
    )
    response = recruiter_client.get(reverse("candidates:list", args=[org.slug]), {"q": "evil"})
    body = response.content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;" in body


def test_list_search_shows_the_bound_hint_when_the_bound_is_hit(recruiter_client, org, settings):
    settings.CANDIDATE_SEARCH_RANK_LIMIT = 2
    for _ in range(3):
        CandidateFactory(organization=org, headline="Rust engineer")
    response = recruiter_client.get(reverse("candidates:list", args=[org.slug]), {"q": "rust"})
    assert response.status_code == 200
    assert "best matches among the first 2" in response.content.decode()
    assert len(response.context["page"].rows) == 2


def test_list_search_without_many_matches_shows_no_bound_hint(recruiter_client, org):
    CandidateFactory(organization=org, headline="Rust engineer")
    response = recruiter_client.get(reverse("candidates:list", args=[org.slug]), {"q": "rust"})
    assert "best matches among" not in response.content.decode()


# --- keyset pagination ---


def _walk(queryset, sort, size=2):
    seen, cursor, pages = [], None, 0
    while True:
        page = keyset_page(queryset, sort=SORTS[sort], size=size, after=cursor)
        seen.extend(candidate.pk for candidate in page.rows)
        pages += 1
        if not page.next_cursor:
            return seen, pages
        cursor = page.next_cursor


@pytest.mark.parametrize(
    "sort", ["-created", "created", "name", "-name", "-contacted", "contacted"]
)
def test_keyset_walks_every_candidate_exactly_once_with_ties(org, in_org, sort):
    moment = timezone.now()
    ids = []
    for number in range(5):
        candidate = CandidateFactory(
            organization=org,
            first_name="Same",
            last_name="Name" if number < 4 else "Other",
            last_contacted_at=None if number % 2 else moment,
        )
        ids.append(candidate.pk)
    with in_org():
        Candidate.objects.filter(organization=org).update(created_at=moment)
        queryset = Candidate.objects.filter(organization=org).with_last_contacted()
        seen, pages = _walk(queryset, sort)
        again, _ = _walk(queryset, sort)
    assert sorted(seen) == sorted(ids)
    assert len(seen) == len(set(seen))
    assert pages == 3
    assert seen == again


@pytest.mark.parametrize("sort", ["-contacted", "contacted"])
def test_keyset_by_last_contacted_pages_both_ways_across_never_contacted(
    org, other_org, in_org, sort
):
    """The contacted and the never-contacted are read as two segments (`_rows_by_segment`):
    pages that straddle them, forwards and back, give the one order."""
    start = timezone.now() - datetime.timedelta(days=30)
    times = [start + datetime.timedelta(days=day) for day in (3, 1, 3, 2)] + [None] * 3
    candidates = [CandidateFactory(organization=org, last_contacted_at=when) for when in times]
    CandidateFactory(organization=other_org, last_contacted_at=start)
    descending = sort == "-contacted"
    # Nulls are the smallest value; ties by id in the sort's direction.
    expected = [
        c.pk
        for c, _ in sorted(
            zip(candidates, times, strict=True),
            key=lambda pair: (pair[1] is not None, pair[1] or start, pair[0].pk),
            reverse=descending,
        )
    ]
    with in_org():
        queryset = Candidate.objects.filter(organization=org).with_last_contacted(
            organization_id=org.pk
        )
        forward, pages, cursor = [], [], None
        while True:
            page = keyset_page(queryset, sort=SORTS[sort], size=3, after=cursor)
            pages.append(page)
            forward += [c.pk for c in page.rows]
            if not page.next_cursor:
                break
            cursor = page.next_cursor
        backward, cursor = [], pages[-1].previous_cursor
        while cursor:
            page = keyset_page(queryset, sort=SORTS[sort], size=3, before=cursor)
            backward = [c.pk for c in page.rows] + backward
            cursor = page.previous_cursor
    assert forward == expected
    assert backward + [c.pk for c in pages[-1].rows] == expected


def test_keyset_previous_page_returns_the_page_before(org, in_org):
    for number in range(5):
        CandidateFactory(organization=org, last_name=f"Name{number}")
    with in_org():
        queryset = Candidate.objects.filter(organization=org)
        first = keyset_page(queryset, sort=SORTS["name"], size=2)
        second = keyset_page(queryset, sort=SORTS["name"], size=2, after=first.next_cursor)
        back = keyset_page(queryset, sort=SORTS["name"], size=2, before=second.previous_cursor)
    assert [c.last_name for c in back.rows] == [c.last_name for c in first.rows]
    assert back.previous_cursor is None
    assert back.next_cursor is not None


def test_keyset_relevance_walks_search_results_once(org, in_org):
    for number in range(5):
        CandidateFactory(organization=org, headline="Kotlin developer", first_name=f"K{number}")
    with in_org():
        queryset = candidate_search(Candidate.objects.filter(organization=org), "kotlin")
        seen, _ = _walk(queryset, "relevance")
    assert len(seen) == 5
    assert len(set(seen)) == 5


def _page_ids(page):
    return [row.pk for row in page.rows], page.next_cursor, page.previous_cursor


def test_ranked_pages_are_the_sql_keyset_pages(org, in_org):
    """`ranked_page` orders a search's page from the ranks found with its ids; walked forward
    and back it gives the rows and cursors of the SQL keyset over the ranked query, ties
    (same rank, then id) included."""
    for number in range(4):
        CandidateFactory(organization=org, headline="Kotlin developer", first_name=f"Kim{number}")
    for number in range(3):
        CandidateFactory(organization=org, first_name="Kotlin", last_name=f"Ng{number}")
    CandidateFactory(
        organization=org, headline="Kotlin and Kotlin Multiplatform", skills=["kotlin"]
    )
    # Found by trigrams only. A fixed last name: the factory's random one can be long enough
    # ("Kotlyn Vandenberghe": similarity 0.17) to fall under the 0.2 threshold.
    CandidateFactory(organization=org, first_name="Kotlyn", last_name="Ng")
    with in_org():
        base = Candidate.objects.filter(organization=org)
        matches = search_matches(base, "kotlin", ranked=True)
        queryset = candidate_search(base, "kotlin", matches=matches)
        ranked, sql = (
            [ranked_page(queryset, matches, size=3)],
            [keyset_page(queryset, sort=SORTS["relevance"], size=3)],
        )
        while sql[-1].next_cursor:
            cursor = sql[-1].next_cursor
            ranked.append(ranked_page(queryset, matches, size=3, after=ranked[-1].next_cursor))
            sql.append(keyset_page(queryset, sort=SORTS["relevance"], size=3, after=cursor))
        back_ranked = ranked_page(queryset, matches, size=3, before=ranked[-1].previous_cursor)
        back_sql = keyset_page(
            queryset, sort=SORTS["relevance"], size=3, before=sql[-1].previous_cursor
        )
    assert len(sql) == 3 and len(matches.ids) == 9
    assert [_page_ids(page) for page in ranked] == [_page_ids(page) for page in sql]
    assert _page_ids(back_ranked) == _page_ids(back_sql) == _page_ids(sql[-2])
    assert [row.rank for row in ranked[0].rows] == [row.rank for row in sql[0].rows]


def test_a_ranked_page_skips_a_match_deleted_since(org, in_org):
    kept = CandidateFactory(organization=org, headline="Elixir developer")
    gone = CandidateFactory(organization=org, headline="Elixir engineer")
    with in_org():
        base = Candidate.objects.filter(organization=org)
        matches = search_matches(base, "elixir", ranked=True)
        Candidate.objects.filter(pk=gone.pk).delete()
        page = ranked_page(base, matches, size=5)
    assert [row.pk for row in page.rows] == [kept.pk]


def test_keyset_cursor_round_trips_names_with_commas(org, in_org):
    candidate = CandidateFactory(organization=org, last_name="Smith, Jr.", first_name="Bob %")
    cursor = cursor_encode(SORTS["name"], candidate)
    assert cursor_decode(SORTS["name"], cursor) == ("Smith, Jr.", "Bob %", candidate.pk)


@pytest.mark.parametrize("cursor", ["", "abc", "1,2,3,4", "not-a-date,5", ",x"])
def test_keyset_invalid_cursor_starts_at_the_first_page(org, in_org, cursor):
    CandidateFactory(organization=org)
    with in_org():
        page = keyset_page(
            Candidate.objects.filter(organization=org), sort=SORTS["-created"], size=2, after=cursor
        )
    assert len(page.rows) == 1


def test_list_pages_walk_through_the_view(recruiter_client, org, settings):
    settings.CANDIDATE_LIST_PAGE_SIZE = 2
    created = [CandidateFactory(organization=org, last_name=f"N{n}").pk for n in range(5)]
    url = reverse("candidates:list", args=[org.slug])
    seen, params = [], {"sort": "name"}
    for _ in range(5):
        response = recruiter_client.get(url, params)
        page = response.context["page"]
        seen.extend(c.pk for c in page.rows)
        if not page.next_cursor:
            break
        assert "Next" in response.content.decode()
        params = {"sort": "name", "after": page.next_cursor}
    assert sorted(seen) == sorted(created)
    assert len(seen) == 5


def test_list_counts_exactly_up_to_the_cap(recruiter_client, org, monkeypatch):
    monkeypatch.setattr("candidates.views.search.COUNT_CAP", 3)
    for _ in range(4):
        CandidateFactory(organization=org)
    response = recruiter_client.get(reverse("candidates:list", args=[org.slug]))
    assert response.context["total_display"] == "3+"


def test_list_contacted_sort_puts_never_contacted_last(recruiter_client, org):
    never = CandidateFactory(organization=org, last_contacted_at=None)
    recent = CandidateFactory(
        organization=org, last_contacted_at=timezone.now() - datetime.timedelta(days=1)
    )
    response = recruiter_client.get(
        reverse("candidates:list", args=[org.slug]), {"sort": "-contacted"}
    )
    assert [c.pk for c in response.context["page"].rows] == [recent.pk, never.pk]


def test_skill_badges_put_matching_skills_first():
    badges = skill_badges(["go", "java", "kotlin", "sql"], highlight_terms("kotlin"))
    assert badges == [("kotlin", True), ("go", False), ("java", False), ("sql", False)]


# --- typo tolerance only when full text finds few; counts for people ---


def test_search_typo_in_the_first_letters_falls_back_to_the_trigram_index(org, in_org):
    # "Hohn" shares no prefix with "John": the prefix step finds nobody, the index fallback does.
    john = CandidateFactory(
        organization=org, first_name="John", last_name="Smith", email="js@example.com"
    )
    CandidateFactory(organization=org, first_name="Maria", last_name="Garcia")
    with in_org():
        results = _search(org, "Hohn Smith")
    assert [c.pk for c in results] == [john.pk]


def test_search_trigram_runs_only_when_full_text_finds_few(org, in_org, settings):
    rust = [CandidateFactory(organization=org, headline="Rust engineer") for _ in range(2)]
    rusta = CandidateFactory(organization=org, first_name="Rusta", last_name="Rust", headline="")
    CandidateFactory(organization=org, first_name="Rustam", last_name="Nowak", headline="")
    settings.CANDIDATE_SEARCH_FUZZY_BELOW = 3
    with in_org():
        many = _search(org, "rust")  # three full-text matches: no trigram step
    settings.CANDIDATE_SEARCH_FUZZY_BELOW = 4
    with in_org():
        few = _search(org, "rust")  # fewer than four: similar names join them
    assert sorted(c.pk for c in many) == sorted([*(c.pk for c in rust), rusta.pk])
    assert len(few) == 4


def test_search_matches_fetches_ids_once_and_knows_the_bound(org, in_org):
    for _ in range(4):
        CandidateFactory(organization=org, headline="Kotlin developer")
    with in_org():
        queryset = Candidate.objects.filter(organization=org)
        bounded = search_matches(queryset, "kotlin", limit=3)
        unbounded = search_matches(queryset, "kotlin", limit=10)
    assert (len(bounded.ids), bounded.bounded) == (3, True)
    assert (len(unbounded.ids), unbounded.bounded) == (4, False)


def test_search_matches_of_an_empty_queryset_ranks_nothing(org, in_org):
    CandidateFactory(organization=org, headline="Kotlin developer")
    with in_org():
        matches = search_matches(Candidate.objects.none(), "kotlin", ranked=True)
    assert (matches.ids, matches.ranks, matches.bounded) == ([], {}, False)


def test_count_display_shows_the_cap_with_a_plus():
    assert count_display(10_001, 10_000) == "10,000+"
    assert count_display(10_000, 10_000) == "10,000"
    assert count_display(1_234, 10_000) == "1,234"


def test_list_search_counts_the_ranked_matches_without_a_count_query(recruiter_client, org):
    for _ in range(3):
        CandidateFactory(organization=org, headline="Elixir engineer")
    with CaptureQueriesContext(connection) as queries:
        response = recruiter_client.get(
            reverse("candidates:list", args=[org.slug]), {"q": "elixir"}
        )
    assert response.context["total_display"] == "3"
    assert not [q for q in queries if q["sql"].startswith("SELECT COUNT(*)")]


def test_list_search_count_is_exact_beyond_the_list_cap(recruiter_client, org, monkeypatch):
    monkeypatch.setattr("candidates.views.search.COUNT_CAP", 2)
    for _ in range(3):
        CandidateFactory(organization=org, headline="Haskell engineer")
    url = reverse("candidates:list", args=[org.slug])
    assert recruiter_client.get(url, {"q": "haskell"}).context["total_display"] == "3"
    assert recruiter_client.get(url).context["total_display"] == "2+"


def _setting(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting(%s)", [name])
        return cursor.fetchone()[0]


def _index_tuple_cost() -> str:
    return _setting("cpu_index_tuple_cost")


def test_full_text_ids_are_planned_with_the_raised_index_entry_cost(org, in_org):
    """The organisation's bitmap must not be ANDed with the full-text one for a large
    organisation (module docstring): the id query is planned with FULL_TEXT_INDEX_TUPLE_COST,
    and the session's own value is back afterwards. A sequential scan of it starts at the
    first page (no synchronised scans), so a common term ranks the same candidates each time."""
    CandidateFactory(organization=org, headline="Haskell developer")
    with connection.cursor() as cursor:
        cursor.execute("SET cpu_index_tuple_cost = 0.007")
    try:
        with in_org(), CaptureQueriesContext(connection) as queries:
            matches = search_matches(Candidate.objects.filter(organization=org), "haskell")
        after = _index_tuple_cost()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET cpu_index_tuple_cost")
    statements = [q["sql"] for q in queries]
    search = next(i for i, sql in enumerate(statements) if "search_vector" in sql)
    assert "set_config('cpu_index_tuple_cost', '0.05', true)" in statements[search - 1]
    assert "set_config('synchronize_seqscans', 'off', true)" in statements[search - 1]
    assert "set_config('cpu_index_tuple_cost', '0.007', true)" in statements[search + 1]
    assert "set_config('synchronize_seqscans', 'on', true)" in statements[search + 1]
    assert len(matches.ids) == 1
    assert (after, _setting("synchronize_seqscans")) == ("0.007", "on")


def test_a_failing_search_query_leaves_the_index_entry_cost_alone(org, in_org):
    from candidates import search as search_module

    default = _index_tuple_cost()
    with pytest.raises(ZeroDivisionError), search_module._full_text_plan():
        assert _index_tuple_cost() == search_module.FULL_TEXT_INDEX_TUPLE_COST
        assert _setting("synchronize_seqscans") == "off"
        1 / 0  # noqa: B018
    assert (_index_tuple_cost(), _setting("synchronize_seqscans")) == (default, "on")


def test_capped_counts_are_planned_without_sequential_scans(org, in_org):
    """A LIMITed sequential scan assumes a tenant's rows are spread over the table
    (`count_capped`): the count runs with enable_seqscan off, and the session's setting is
    back afterwards."""
    for _ in range(3):
        CandidateFactory(organization=org)
    with in_org(), CaptureQueriesContext(connection) as queries:
        total = count_capped(Candidate.objects.filter(organization=org), 2)
    with connection.cursor() as cursor:
        cursor.execute("SHOW enable_seqscan")
        after = cursor.fetchone()[0]
    statements = [q["sql"] for q in queries]
    count = next(i for i, sql in enumerate(statements) if "COUNT(*)" in sql)
    assert "set_config('enable_seqscan', 'off', true)" in statements[count - 1]
    assert "set_config('enable_seqscan', 'on', true)" in statements[count + 1]
    assert (total, after) == (3, "on")


def test_unranked_matches_rank_nothing_and_cannot_order_a_page(org, in_org):
    """A smart pool or a bulk selection needs only the ids: no rank is computed for them."""
    CandidateFactory(organization=org, headline="Erlang developer")
    with in_org(), CaptureQueriesContext(connection) as queries:
        matches = search_matches(Candidate.objects.filter(organization=org), "erlang")
    assert len(matches.ids) == 1 and matches.ranks == {}
    assert not any("ts_rank_cd" in query["sql"] for query in queries)
    with pytest.raises(ValueError), in_org():
        ranked_page(Candidate.objects.filter(organization=org), matches, size=5)


def _plan_nodes(plan: dict) -> list[str]:
    return [plan["Node Type"], *(n for p in plan.get("Plans", []) for n in _plan_nodes(p))]


@pytest.mark.parametrize("sort", ["-contacted", "contacted"])
def test_keyset_by_last_contacted_reads_each_segment_without_sorting(org, in_org, sort):
    """Each segment's query can be read off an index in the sort's order: the contacted through
    `contact_org_recent` (the join names the organisation), the never contacted in id order by
    an anti-join. With sorting off, a query no index can order (one ORDER BY … NULLS LAST over
    the left join, as before) still needs a Sort node, which is what this checks."""
    for days in (None, 3, None, 1):
        CandidateFactory(
            organization=org,
            last_contacted_at=timezone.now() - datetime.timedelta(days=days) if days else None,
        )
    with in_org(), CaptureQueriesContext(connection) as queries:
        queryset = Candidate.objects.filter(organization=org).with_last_contacted(
            organization_id=org.pk
        )
        page = keyset_page(queryset, sort=SORTS[sort], size=10)
    assert len(page.rows) == 4 and len(queries) == 2  # both segments, one query each
    for query in queries:
        with planner_settings(enable_sort="off"), connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {query['sql']}")
            nodes = _plan_nodes(cursor.fetchone()[0][0]["Plan"])
        assert not any("Sort" in node for node in nodes), (query["sql"], nodes)
