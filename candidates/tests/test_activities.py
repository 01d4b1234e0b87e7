"""The timeline's write service: one entry, and many in one statement."""

import datetime

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from candidates.models import Activity
from candidates.services.activities import activities_record_bulk
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
