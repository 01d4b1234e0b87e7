"""The timeline's write service: one entry, and many in one statement."""

import datetime

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_scopes import scope

from candidates.models import Activity, CandidateContact
from candidates.services.activities import (
    activities_record_bulk,
    candidate_last_contacted,
    candidates_mark_contacted,
)
from candidates.tests.factories import CandidateFactory

pytestmark = pytest.mark.django_db


def test_activities_record_bulk_writes_one_entry_per_candidate_in_one_statement(
    org, recruiter_user, in_org
):
    candidates = [CandidateFactory(organization=org) for _ in range(3)]
    when = timezone.now() - datetime.timedelta(hours=1)

    with in_org(), CaptureQueriesContext(connection) as queries:
        written = activities_record_bulk(
            organization_id=org.pk,
            candidate_ids=[c.pk for c in candidates],
            kind=Activity.Kind.POOL_ADDED,
            summary="Added to the pool “Backend”",
            actor=recruiter_user,
            data={"pool_id": 7, "source": "manual"},
            occurred_at=when,
        )

    assert written == 3
    assert len(queries) == 1
    with in_org():
        entries = list(
            Activity.objects.filter(organization=org, kind=Activity.Kind.POOL_ADDED).order_by(
                "candidate_id"
            )
        )
    assert [e.candidate_id for e in entries] == sorted(c.pk for c in candidates)
    assert {(e.summary, e.actor_id, e.occurred_at, e.note_id) for e in entries} == {
        ("Added to the pool “Backend”", recruiter_user.pk, when, None)
    }
    assert entries[0].data == {"pool_id": 7, "source": "manual"}


def test_activities_record_bulk_with_no_candidates_writes_nothing(org, in_org):
    with in_org(), CaptureQueriesContext(connection) as queries:
        assert activities_record_bulk(organization_id=org.pk, candidate_ids=[], kind="edited") == 0
    assert len(queries) == 0


def test_timeline_entry_for_another_organisations_candidate_is_refused_by_the_database(
    org, other_org, unscoped
):
    """organization_id and candidate_id are one foreign key (migration 0010): an entry can only
    name a candidate of its own organisation (and the organisation of an existing candidate)."""
    with unscoped():
        ours = CandidateFactory(organization=org)
        theirs = CandidateFactory(organization=other_org)
        activities_record_bulk(organization_id=org.pk, candidate_ids=[ours.pk], kind="edited")
        connection.check_constraints()

        with pytest.raises(IntegrityError), transaction.atomic():
            activities_record_bulk(organization_id=org.pk, candidate_ids=[theirs.pk], kind="edited")
            connection.check_constraints()


def test_candidates_mark_contacted_moves_each_forward_in_one_statement_and_never_back(
    org, other_org, in_org
):
    never, earlier, ahead = (CandidateFactory(organization=org) for _ in range(3))
    elsewhere = CandidateFactory(organization=other_org)
    now = timezone.now()
    with in_org():
        candidates_mark_contacted(candidate_ids=[earlier.pk], at=now - datetime.timedelta(days=9))
        candidates_mark_contacted(candidate_ids=[ahead.pk], at=now + datetime.timedelta(days=1))
    with in_org(), CaptureQueriesContext(connection) as queries:
        moved = candidates_mark_contacted(
            candidate_ids=[ahead.pk, earlier.pk, never.pk, never.pk], at=now
        )
    with in_org():
        contacted = [candidate_last_contacted(c) for c in (never, earlier, ahead)]
    assert (moved, len(queries)) == (2, 1)
    assert contacted == [now, now, now + datetime.timedelta(days=1)]
    with scope(organization=other_org):
        candidates_mark_contacted(candidate_ids=[elsewhere.pk], at=now)
        row = CandidateContact.objects.get(candidate=elsewhere)
    # The row belongs to its candidate's organisation, whoever asked.
    assert row.organization_id == other_org.pk


def test_candidates_mark_contacted_never_rewrites_the_candidates_row(org, in_org):
    """The point of CandidateContact: a campaign email must not rewrite the candidate (twenty
    indexes, seven GIN). The row's system column `xmin` changes with every new version."""
    candidate = CandidateFactory(organization=org)

    def version():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT xmin::text FROM candidates_candidate WHERE id = %s", [candidate.pk]
            )
            return cursor.fetchone()[0]

    before = version()
    with in_org():
        candidates_mark_contacted(candidate_ids=[candidate.pk], at=timezone.now())
    assert version() == before
