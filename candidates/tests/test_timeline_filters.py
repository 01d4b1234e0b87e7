"""The profile's timeline filters (notes, emails, stages and pools, consent, edits and
imports): links that work without JavaScript (?show=…), swapped in place by htmx, paging
within the filter, and the same number of queries as the unfiltered profile."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from candidates.models import Activity
from candidates.selectors import TIMELINE_FILTERS, candidate_timeline
from candidates.services.activities import activity_record
from candidates.tests.factories import CandidateFactory, NoteFactory

pytestmark = pytest.mark.django_db

KINDS = [
    ("note_added", "a note"),
    ("email_sent", "an email"),
    ("stage_changed", "a move"),
    ("consent_changed", "a consent"),
    ("imported", "an import"),
    ("edited", "an edit"),
]


def detail(org, candidate):
    return reverse("candidates:detail", args=[org.slug, candidate.pk])


@pytest.fixture
def candidate(org):
    candidate = CandidateFactory(organization=org)
    start = timezone.now() - datetime.timedelta(days=10)
    with scopes_disabled():
        for i, (kind, summary) in enumerate(KINDS):
            activity_record(
                candidate=candidate,
                kind=kind,
                summary=summary,
                note=NoteFactory(candidate=candidate) if kind == "note_added" else None,
                occurred_at=start + datetime.timedelta(days=i),
            )
    return candidate


def _summaries(response) -> list[str]:
    return [activity.summary for activity in response.context["timeline"]]


def test_every_kind_of_entry_has_a_filter():
    grouped = [kind for _label, kinds in TIMELINE_FILTERS.values() for kind in kinds]
    assert sorted(grouped) == sorted(Activity.Kind.values)


@pytest.mark.parametrize(
    ("show", "expected"),
    [
        ("notes", ["a note"]),
        ("emails", ["an email"]),
        ("pipeline", ["a move"]),
        ("consent", ["a consent"]),
        ("edits", ["an edit", "an import"]),
        ("", ["an edit", "an import", "a consent", "a move", "an email", "a note"]),
        ("nonsense", ["an edit", "an import", "a consent", "a move", "an email", "a note"]),
    ],
)
def test_timeline_filter_by_query_string(recruiter_client, org, candidate, show, expected):
    response = recruiter_client.get(detail(org, candidate), {"show": show})

    assert response.status_code == 200
    assert _summaries(response) == expected


def test_filter_links_work_without_javascript_and_with_htmx(recruiter_client, org, candidate):
    page = recruiter_client.get(detail(org, candidate)).content.decode()
    swapped = recruiter_client.get(
        detail(org, candidate), {"show": "emails"}, HTTP_HX_REQUEST="true"
    )
    body = swapped.content.decode()

    assert f'href="{detail(org, candidate)}?show=emails#activity"' in page
    assert f'hx-get="{detail(org, candidate)}?show=emails"' in page
    assert body.lstrip().startswith('<section id="activity"')
    assert _summaries(swapped) == ["an email"]
    assert ">an email</div>" in body and ">a note</div>" not in body
    assert 'aria-current="true"' in body


def test_paging_keeps_the_filter(org, candidate, in_org, recruiter_user):
    with scopes_disabled():
        for i in range(3):
            activity_record(candidate=candidate, kind="email_opened", summary=f"open {i}")
    with in_org():
        first, cursor = candidate_timeline(
            candidate=candidate, user=recruiter_user, show="emails", limit=2
        )
        rest, end = candidate_timeline(
            candidate=candidate, user=recruiter_user, show="emails", before=cursor, limit=2
        )

    assert len(first) == 2 and cursor is not None
    assert [a.kind for a in first + rest] == ["email_opened"] * 3 + ["email_sent"]
    assert end is None


def test_show_older_link_carries_the_filter(recruiter_client, org, candidate):
    from candidates.selectors import TIMELINE_PAGE_SIZE

    now = timezone.now()
    with scopes_disabled():
        Activity.objects.bulk_create(
            Activity(
                organization=org,
                candidate=candidate,
                kind="email_opened",
                summary=f"open {i}",
                occurred_at=now - datetime.timedelta(minutes=i),
            )
            for i in range(TIMELINE_PAGE_SIZE)
        )

    body = recruiter_client.get(detail(org, candidate), {"show": "emails"}).content.decode()

    assert "Show older activity" in body
    assert "?show=emails&amp;before=" in body


def test_empty_filter_says_so(recruiter_client, org):
    candidate = CandidateFactory(organization=org)
    with scopes_disabled():
        Activity.objects.filter(candidate=candidate).delete()

    body = recruiter_client.get(detail(org, candidate), {"show": "consent"}).content.decode()

    assert "Nothing under “Consent” yet" in body


def test_filtered_profile_has_the_same_query_count(recruiter_client, org, candidate):
    with CaptureQueriesContext(connection) as everything:
        recruiter_client.get(detail(org, candidate))
    with CaptureQueriesContext(connection) as notes:
        recruiter_client.get(detail(org, candidate), {"show": "notes"})

    assert len(notes) == len(everything)
