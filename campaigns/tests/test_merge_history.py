"""Merging two candidate profiles carries the secondary's campaign history (enrollments,
messages, consent, preferences) to the primary, and undo carries it back."""

import secrets
from datetime import timedelta

import pytest
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns.models import CandidateEmailPreference, Consent, Enrollment, Message
from campaigns.tests.factories import make_broadcast, make_candidates
from candidates.services.merge import candidate_merge, candidate_merge_undo

pytestmark = pytest.mark.django_db


def _enroll_with_message(org, campaign, candidate) -> tuple[Enrollment, Message]:
    with scopes_disabled():
        enrollment = Enrollment.objects.create(
            organization=org, campaign=campaign, candidate=candidate
        )
        message = Message.objects.create(
            organization=org,
            campaign=campaign,
            step=campaign.steps.first(),
            enrollment=enrollment,
            candidate=candidate,
            to_email=candidate.email,
            from_email="riya@example.com",
            subject="Hello",
            html="<p>Hello</p>",
            text="Hello",
            message_id=f"<{secrets.token_hex(8)}@example.com>",
        )
    return enrollment, message


def _owner(row) -> int:
    with scopes_disabled():
        return type(row).objects.get(pk=row.pk).candidate_id


def test_merge_moves_campaign_history_and_undo_puts_it_back(org, recruiter_user):
    primary, secondary = make_candidates(org, 2)
    spring = make_broadcast(org, user=recruiter_user, name="Spring")
    autumn = make_broadcast(org, user=recruiter_user, name="Autumn")
    _enroll_with_message(org, autumn, primary)
    moved_enrollment, moved_message = _enroll_with_message(org, spring, secondary)
    twin_enrollment, twin_message = _enroll_with_message(org, autumn, secondary)
    with scopes_disabled():
        consent = Consent.objects.create(
            organization=org,
            candidate=secondary,
            source="Sign-up form",
            wording="Yes, email me about roles.",
            granted_at=timezone.now(),
        )
        preference = CandidateEmailPreference.objects.create(
            organization=org, candidate=secondary, frequency="monthly"
        )

    with scope(organization=org):
        record = candidate_merge(
            primary=primary, secondary=secondary, field_choices={}, actor=recruiter_user
        )

    assert [_owner(row) for row in (moved_enrollment, moved_message, consent, preference)] == [
        primary.pk
    ] * 4
    # The primary is already in "Autumn": the secondary's enrollment there stays behind.
    assert [_owner(row) for row in (twin_enrollment, twin_message)] == [secondary.pk] * 2

    with scope(organization=org):
        candidate_merge_undo(record=record, actor=recruiter_user)

    assert [
        _owner(row)
        for row in (
            moved_enrollment,
            moved_message,
            consent,
            preference,
            twin_enrollment,
            twin_message,
        )
    ] == [secondary.pk] * 6


def test_merge_keeps_the_primarys_own_preferences(org, recruiter_user):
    primary, secondary = make_candidates(org, 2)
    with scopes_disabled():
        mine = CandidateEmailPreference.objects.create(
            organization=org, candidate=primary, frequency="weekly"
        )
        theirs = CandidateEmailPreference.objects.create(
            organization=org, candidate=secondary, frequency="monthly"
        )

    with scope(organization=org):
        candidate_merge(primary=primary, secondary=secondary, field_choices={}, actor=None)

    assert (_owner(mine), _owner(theirs)) == (primary.pk, secondary.pk)


def test_merge_keeps_the_stricter_preferences_when_both_profiles_have_them(org, recruiter_user):
    """An unsubscribe (or opted-out topic, pause, lower frequency) made on the secondary still
    holds for the merged person; undo gives the primary its own choices back."""
    primary, secondary = make_candidates(org, 2)
    unsubscribed = timezone.now() - timedelta(days=3)
    paused = timezone.localdate() + timedelta(days=60)
    with scopes_disabled():
        mine = CandidateEmailPreference.objects.create(
            organization=org, candidate=primary, opted_out_topics=["events"], frequency="weekly"
        )
        CandidateEmailPreference.objects.create(
            organization=org,
            candidate=secondary,
            opted_out_topics=["newsletter"],
            unsubscribed_at=unsubscribed,
            paused_until=paused,
            frequency="monthly",
        )

    with scope(organization=org):
        record = candidate_merge(
            primary=primary, secondary=secondary, field_choices={}, actor=recruiter_user
        )

    with scopes_disabled():
        mine.refresh_from_db()
    assert mine.unsubscribed_at == unsubscribed
    assert mine.opted_out_topics == ["events", "newsletter"]
    assert mine.paused_until == paused
    assert mine.frequency == "monthly"

    with scope(organization=org):
        candidate_merge_undo(record=record, actor=recruiter_user)

    with scopes_disabled():
        mine.refresh_from_db()
    assert mine.unsubscribed_at is None
    assert mine.opted_out_topics == ["events"]
    assert mine.paused_until is None
    assert mine.frequency == "weekly"


def test_merge_keeps_the_interests_told_to_either_profile_and_undo_puts_them_back(
    org, recruiter_user
):
    primary, secondary = make_candidates(org, 2)
    with scopes_disabled():
        mine = CandidateEmailPreference.objects.create(
            organization=org,
            candidate=primary,
            interested_role_families=["engineering"],
            interested_locations=["Berlin"],
        )
        CandidateEmailPreference.objects.create(
            organization=org,
            candidate=secondary,
            interested_role_families=["data", "engineering"],
            interested_roles=["Staff engineer"],
            interested_locations=["Lisbon"],
            open_to_remote=True,
        )

    with scope(organization=org):
        record = candidate_merge(
            primary=primary, secondary=secondary, field_choices={}, actor=recruiter_user
        )

    with scopes_disabled():
        mine.refresh_from_db()
    assert mine.interested_role_families == ["engineering", "data"]
    assert mine.interested_roles == ["Staff engineer"]
    assert mine.interested_locations == ["Berlin", "Lisbon"]
    assert mine.open_to_remote is True

    with scope(organization=org):
        candidate_merge_undo(record=record, actor=recruiter_user)

    with scopes_disabled():
        mine.refresh_from_db()
    assert (mine.interested_role_families, mine.interested_roles) == (["engineering"], [])
    assert (mine.interested_locations, mine.open_to_remote) == (["Berlin"], False)
