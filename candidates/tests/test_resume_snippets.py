"""Search results show where a resume matched: a short excerpt with the matched words marked,
made by PostgreSQL's ts_headline over a bounded window of the text, for the shown page only
(one query), and escaped so that nothing in a resume becomes HTML."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from candidates.search import resume_snippets
from candidates.tests.factories import CandidateFactory

pytestmark = pytest.mark.django_db

FILLER = "Worked on many things with many people over many years. " * 120  # ~7,000 characters


def _list(client, org, q):
    return client.get(reverse("candidates:list", args=[org.slug]), {"q": q})


def test_a_match_deep_in_a_resume_shows_a_marked_excerpt(recruiter_client, org):
    CandidateFactory(
        organization=org,
        first_name="Ana",
        headline="Platform engineer",
        resume_text=FILLER + "Ran Kubernetes clusters for payments. " + FILLER,
    )

    body = _list(recruiter_client, org, "kubernetes").content.decode()

    assert "resume-snippet" in body
    assert "<mark>Kubernetes</mark> clusters for payments" in body
    assert "… " in body  # cut from a longer text


def test_stemmed_matches_are_marked(org):
    candidate = CandidateFactory(organization=org, resume_text=FILLER + "Led engineering teams.")

    snippets = resume_snippets(organization_id=org.pk, candidate_ids=[candidate.pk], q="engineers")

    assert "<mark>engineering</mark> teams" in snippets[candidate.pk]


def test_no_excerpt_when_the_resume_does_not_match(recruiter_client, org):
    CandidateFactory(organization=org, first_name="Zebedee", resume_text="Python and SQL.")

    body = _list(recruiter_client, org, "zebedee").content.decode()

    assert "<mark>Zebedee</mark>" in body
    assert "resume-snippet" not in body


def test_resume_text_can_never_become_html(recruiter_client, org):
    CandidateFactory(
        organization=org,
        resume_text=(
            '<script>alert("x")</script> <img src=x onerror=alert(1)> rustacean '
            "<mark>fake</mark> \ue000fake\ue001 & more"
        ),
    )

    body = _list(recruiter_client, org, "rustacean").content.decode()

    snippet = body[body.index("resume-snippet") :]
    snippet = snippet[: snippet.index("</div>")]
    assert "<mark>rustacean</mark>" in snippet
    # ts_headline drops what its parser takes for tags; everything else is escaped text.
    assert "<script" not in snippet and "<img" not in snippet
    assert "&lt;img src=x onerror=alert(1)&gt;" in snippet
    assert snippet.count("<mark>") == 1 and snippet.count("</mark>") == 1
    assert "\ue000" not in snippet and "\ue001" not in snippet


def test_only_the_shown_page_and_other_organisations_never(org, other_org):
    mine = CandidateFactory(organization=org, resume_text="Haskell compilers.")
    theirs = CandidateFactory(organization=other_org, resume_text="Haskell compilers.")

    snippets = resume_snippets(
        organization_id=org.pk, candidate_ids=[mine.pk, theirs.pk], q="haskell"
    )

    assert list(snippets) == [mine.pk]


def test_search_with_resume_matches_has_a_constant_query_count(recruiter_client, org):
    def make():
        CandidateFactory(organization=org, resume_text=FILLER + "Erlang and OTP.")

    make()
    with CaptureQueriesContext(connection) as one:
        assert _list(recruiter_client, org, "erlang").status_code == 200
    make()
    make()
    with CaptureQueriesContext(connection) as three:
        response = _list(recruiter_client, org, "erlang")

    assert len(one) == len(three)
    assert response.content.decode().count("<mark>Erlang</mark> and OTP") == 3
