"""`engagement_events_record_bulk` writes what `engagement_event_record` writes, one row per
event, in one statement (and inside the caller's transaction)."""

from datetime import UTC, datetime

import pytest
from django.db import transaction
from django.utils import timezone
from django_scopes import scopes_disabled

from analytics.models import EngagementEvent
from analytics.services import (
    EVENT_COLUMNS,
    engagement_event_record,
    engagement_events_insert,
    engagement_events_record_bulk,
)
from candidates.tests.factories import CandidateFactory


def _rows():
    with scopes_disabled():
        return sorted(
            (tuple(getattr(e, f) for f in EVENT_COLUMNS) for e in EngagementEvent.objects.all()),
            key=repr,
        )


def test_bulk_writes_the_rows_one_at_a_time_would(org):
    candidate = CandidateFactory(organization=org)
    at = datetime(2026, 5, 4, 3, 2, 1, tzinfo=UTC)
    events = [
        {"organization_id": org.pk, "kind": "sent", "candidate_id": candidate.pk},
        {
            "organization_id": org.pk,
            "kind": "clicked",
            "candidate_id": candidate.pk,
            "occurred_at": at,
            "is_machine": True,
            "machine_reason": "scanner " + "x" * 80,
            "data": {"url": "https://example.com/é", "n": [1, 2]},
        },
        {
            "organization_id": org.pk,
            "kind": "skipped",
            "occurred_at": at,
            "data": {"reason": "paused"},
        },
    ]
    for event in events[1:]:
        engagement_event_record(**event)
    one_at_a_time = _rows()
    with scopes_disabled():
        EngagementEvent.objects.all().delete()

    assert engagement_events_record_bulk(events=events[1:]) == 2
    assert _rows() == one_at_a_time
    before = timezone.now()
    assert engagement_events_record_bulk(events=events[:1]) == 1
    with scopes_disabled():
        sent = EngagementEvent.objects.get(kind="sent")
    assert (sent.candidate_id, sent.data, sent.source_key, sent.is_machine) == (
        candidate.pk,
        {},
        "",
        False,
    )
    assert before <= sent.occurred_at <= timezone.now()
    assert engagement_events_record_bulk(events=[]) == 0


@pytest.mark.django_db(transaction=True)
def test_bulk_rolls_back_with_the_callers_transaction(org):
    with pytest.raises(RuntimeError), transaction.atomic():
        engagement_events_record_bulk(events=[{"organization_id": org.pk, "kind": "sent"}])
        raise RuntimeError
    assert _rows() == []


def test_insert_skips_a_source_key_the_organisation_has(org, other_org):
    at = datetime(2026, 5, 4, 3, 2, 1, tzinfo=UTC)

    def row(organization, key):
        return (organization.pk, "opened", None, None, None, at, False, "", "{}", key)

    engagement_events_insert([row(org, "k1"), row(org, ""), row(other_org, "k1")])
    engagement_events_insert([row(org, "k1"), row(org, "k2"), row(org, "")])
    keys = sorted((o, k) for o, _, _, _, _, _, _, _, _, k in _rows())
    assert keys == sorted(
        [(org.pk, "k1"), (org.pk, ""), (other_org.pk, "k1"), (org.pk, "k2"), (org.pk, "")]
    )
