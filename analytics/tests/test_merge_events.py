"""Merging two profiles of one person moves the secondary's engagement events to the primary
(so opens, clicks and replies count once, on the profile that stays); undo moves exactly those
back. Suppressions are keyed on the address, not the candidate: a merge neither moves nor
loses them."""

import pytest
from django_scopes import scope, scopes_disabled

from analytics.models import EngagementEvent
from analytics.services import engagement_event_record
from campaigns.models import Suppression
from candidates.services.merge import candidate_merge, candidate_merge_undo
from candidates.tests.factories import CandidateFactory

pytestmark = pytest.mark.django_db


def _events(org, candidate) -> set[int]:
    with scopes_disabled():
        return set(
            EngagementEvent.objects.filter(organization=org, candidate=candidate).values_list(
                "pk", flat=True
            )
        )


def _record(org, candidate, kind) -> int:
    with scopes_disabled():
        return engagement_event_record(
            organization_id=org.pk, kind=kind, candidate_id=candidate.pk
        ).pk


def test_merge_moves_engagement_events_and_undo_moves_them_back(org, recruiter_user):
    primary = CandidateFactory(organization=org, email="ana@example.com")
    secondary = CandidateFactory(organization=org, email="ana.old@example.com")
    own = {_record(org, primary, "opened")}
    theirs = {_record(org, secondary, "clicked"), _record(org, secondary, "replied")}

    with scope(organization=org):
        record = candidate_merge(
            primary=primary, secondary=secondary, field_choices={}, actor=recruiter_user
        )
    after_merge = (_events(org, primary), _events(org, secondary))
    later = {_record(org, primary, "opened")}  # after the merge, on the profile that stays
    with scope(organization=org):
        candidate_merge_undo(record=record, actor=recruiter_user)

    assert after_merge == (own | theirs, set())
    assert (_events(org, primary), _events(org, secondary)) == (own | later, theirs)


def test_merge_leaves_suppressions_of_either_address_in_force(org, recruiter_user):
    assert "candidate" not in {f.name for f in Suppression._meta.get_fields()}
    primary = CandidateFactory(organization=org, email="ana@example.com")
    secondary = CandidateFactory(organization=org, email="ana.old@example.com")
    with scopes_disabled():
        Suppression.objects.create(organization=org, email="ana.old@example.com", reason="bounced")

    with scope(organization=org):
        record = candidate_merge(
            primary=primary,
            secondary=secondary,
            field_choices={"email": "secondary"},
            actor=recruiter_user,
        )
        primary.refresh_from_db()
        merged_email_suppressed = Suppression.objects.filter(email=primary.email).exists()
        candidate_merge_undo(record=record, actor=recruiter_user)
        still = list(Suppression.objects.values_list("email", flat=True))

    assert (primary.email, merged_email_suppressed) == ("ana.old@example.com", True)
    assert still == ["ana.old@example.com"]
