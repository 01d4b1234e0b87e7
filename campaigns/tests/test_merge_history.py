"""Merging two candidate profiles carries the secondary's campaign history (enrollments,
messages, consent, preferences) to the primary, and undo carries it back."""

import secrets
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns.models import CandidateEmailPreference, Consent, Enrollment, Message
from campaigns.services.campaigns import campaign_launch
from campaigns.services.consent import consent_withdraw
from campaigns.services.dispatch import dispatch_due
from campaigns.services.preferences import (
    candidate_is_unsubscribed,
    candidate_preferences_update,
    candidate_unsubscribe,
)
from campaigns.services.topics import topics_for
from campaigns.tests.factories import make_broadcast, make_candidates, send_all
from campaigns.tests.test_sequences import TUESDAY_10, make_sequence
from candidates.models import Activity
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
    holds for the merged person; undo never loosens them (see below)."""
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
    assert mine.unsubscribed_at == unsubscribed
    assert mine.opted_out_topics == ["events", "newsletter"]
    assert mine.paused_until == paused
    assert mine.frequency == "monthly"


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


# --- the secondary's own campaign emails after a merge --------------------------------------


def _launch_and_dispatch(org, user, campaign, now=None):
    with scopes_disabled():
        campaign_launch(campaign=campaign, user=user, now=now)
        dispatch_due(now=now)


def _merged_pair(org, campaign, recruiter_user, now=None):
    """Both profiles of one person in `campaign`, launched and dispatched, then merged."""
    primary, secondary = make_candidates(org, 2)
    _launch_and_dispatch(org, recruiter_user, campaign, now)
    with scope(organization=org):
        record = candidate_merge(
            primary=primary, secondary=secondary, field_choices={}, actor=recruiter_user
        )
    return primary, secondary, record


def _statuses(model, **filters) -> list[tuple]:
    fields = ("status", "stop_reason") if model is Enrollment else ("status", "skip_reason")
    with scopes_disabled():
        return list(model.objects.filter(**filters).values_list(*fields))


def test_merge_skips_the_secondarys_queued_email_so_the_person_gets_a_broadcast_once(
    org, recruiter_user
):
    """Both profiles were in the broadcast: the secondary's email (a twin, it stays with the
    merged-away profile) no longer goes out."""
    campaign = make_broadcast(org, user=recruiter_user)
    primary, secondary, _ = _merged_pair(org, campaign, recruiter_user)

    # Skipped by the merge itself, not only when a worker gets to it.
    assert _statuses(Message, candidate=secondary) == [
        (Message.Status.SKIPPED, Message.SkipReason.MERGED)
    ]
    report = send_all(org, campaign)

    assert report.sent == 1
    assert [message.to for message in mail.outbox] == [[primary.email]]


def test_merge_stops_the_secondarys_sequence_so_later_steps_go_to_the_person_once(
    org, recruiter_user
):
    campaign = make_sequence(
        org, user=recruiter_user, steps=[{"delay": timedelta(0)}, {"delay": timedelta(days=1)}]
    )
    primary, secondary, _ = _merged_pair(org, campaign, recruiter_user, TUESDAY_10)

    with scopes_disabled():
        # The primary's step 1 went out (its step 2 waits for that).
        Message.objects.filter(campaign=campaign, candidate=primary).update(
            status=Message.Status.SENT, sent_at=TUESDAY_10
        )
        dispatch_due(now=TUESDAY_10 + timedelta(days=1, hours=1))
        second_step = list(
            Message.objects.filter(campaign=campaign, step__position=2).values_list(
                "candidate_id", flat=True
            )
        )

    assert second_step == [primary.pk]
    assert _statuses(Enrollment, candidate=secondary) == [
        (Enrollment.Status.STOPPED, Enrollment.StopReason.MERGED)
    ]
    assert _statuses(Message, candidate=secondary) == [
        (Message.Status.SKIPPED, Message.SkipReason.MERGED)
    ]


def test_merge_undo_resumes_exactly_what_the_merge_stopped(org, recruiter_user):
    """Undo puts back what the merge stopped (the enrollment where it was in the sequence, the
    email queued again) and nothing else: an email already sent or skipped for another
    reason stays as it was."""
    campaign = make_sequence(
        org, user=recruiter_user, steps=[{"delay": timedelta(0)}, {"delay": timedelta(days=2)}]
    )
    primary, secondary = make_candidates(org, 2)
    _launch_and_dispatch(org, recruiter_user, campaign, TUESDAY_10)
    with scopes_disabled():
        enrollment = Enrollment.objects.get(campaign=campaign, candidate=secondary)
        queued = Message.objects.get(campaign=campaign, candidate=secondary)
        # An older broadcast whose email to the secondary was sent.
        older = make_broadcast(org, user=recruiter_user, name="Older")
        _, sent = _enroll_with_message(org, older, secondary)
        _enroll_with_message(org, older, primary)
        Message.objects.filter(pk=sent.pk).update(status=Message.Status.SENT)
        # And one that already left a campaign (a recruiter removed it), its email not sent.
        removed_from = make_broadcast(org, user=recruiter_user, name="Removed")
        removed, skipped = _enroll_with_message(org, removed_from, secondary)
        _enroll_with_message(org, removed_from, primary)
        Enrollment.objects.filter(pk=removed.pk).update(
            status=Enrollment.Status.STOPPED, stop_reason=Enrollment.StopReason.REMOVED
        )
        Message.objects.filter(pk=skipped.pk).update(
            status=Message.Status.SKIPPED, skip_reason=Message.SkipReason.ENROLLMENT_STOPPED
        )
    with scope(organization=org):
        record = candidate_merge(
            primary=primary, secondary=secondary, field_choices={}, actor=recruiter_user
        )
    assert _statuses(Enrollment, pk=enrollment.pk) == [
        (Enrollment.Status.STOPPED, Enrollment.StopReason.MERGED)
    ]
    assert _statuses(Message, pk=queued.pk) == [(Message.Status.SKIPPED, Message.SkipReason.MERGED)]

    with scope(organization=org):
        candidate_merge_undo(record=record, actor=recruiter_user)

    with scopes_disabled():
        after = Enrollment.objects.get(pk=enrollment.pk)
        statuses = dict(Message.objects.filter(candidate=secondary).values_list("pk", "status"))
    assert (after.status, after.stop_reason, after.finished_at) == (
        Enrollment.Status.ACTIVE,
        "",
        None,
    )
    assert (after.current_step_id, after.next_run_at) == (
        enrollment.current_step_id,
        enrollment.next_run_at,
    )
    assert statuses == {
        queued.pk: Message.Status.QUEUED,
        sent.pk: Message.Status.SENT,
        skipped.pk: Message.Status.SKIPPED,
    }
    assert _statuses(Message, pk=skipped.pk) == [
        (Message.Status.SKIPPED, Message.SkipReason.ENROLLMENT_STOPPED)
    ]
    assert _statuses(Enrollment, pk=removed.pk) == [
        (Enrollment.Status.STOPPED, Enrollment.StopReason.REMOVED)
    ]


# --- undo never loosens what restricts contact ---------------------------------------------


def test_merge_undo_keeps_preferences_chosen_after_the_merge(org, recruiter_user):
    """The merged person opts out of every topic, pauses and asks for fewer emails: undo
    gives the primary back its interests, not fewer restrictions."""
    primary, secondary = make_candidates(org, 2)
    with scopes_disabled():
        CandidateEmailPreference.objects.create(
            organization=org, candidate=primary, interested_roles=["Engineer"]
        )
        CandidateEmailPreference.objects.create(organization=org, candidate=secondary)
    with scope(organization=org):
        record = candidate_merge(primary=primary, secondary=secondary, field_choices={}, actor=None)
        primary.refresh_from_db()
        candidate_preferences_update(
            candidate=primary,
            topics=[],
            pause_months=6,
            current_title=primary.current_title,
            city=primary.city,
            frequency="monthly",
            interested_roles=["Pilot"],
        )
        paused = CandidateEmailPreference.objects.get(candidate=primary).paused_until

        candidate_merge_undo(record=record, actor=recruiter_user)

    with scopes_disabled():
        preference = CandidateEmailPreference.objects.get(candidate=primary)
    with scope(organization=org):
        topics = sorted(topic.key for topic in topics_for(organization=org))
    assert sorted(preference.opted_out_topics) == topics
    assert (preference.paused_until, preference.frequency) == (paused, "monthly")
    assert preference.interested_roles == ["Engineer"]


def test_merge_undo_keeps_an_unsubscribe_made_after_the_merge(org, recruiter_user):
    primary, secondary = make_candidates(org, 2)
    with scopes_disabled():
        CandidateEmailPreference.objects.create(organization=org, candidate=primary)
        CandidateEmailPreference.objects.create(organization=org, candidate=secondary)
    with scope(organization=org):
        record = candidate_merge(primary=primary, secondary=secondary, field_choices={}, actor=None)
        candidate_unsubscribe(candidate=primary, source="preference centre")

        candidate_merge_undo(record=record, actor=recruiter_user)

        assert candidate_is_unsubscribed(candidate=primary) is True


def test_merge_undo_keeps_restrictions_set_through_the_secondarys_moved_preferences(
    org, recruiter_user
):
    """Only the secondary had a preferences row: it moved to the primary, the merged person
    unsubscribed through it, and undo takes it back to the secondary — the primary stays
    unsubscribed (it gets a row with the restrictions, not the secondary's interests)."""
    primary, secondary = make_candidates(org, 2)
    with scopes_disabled():
        theirs = CandidateEmailPreference.objects.create(
            organization=org, candidate=secondary, interested_roles=["Pilot"]
        )
    with scope(organization=org):
        record = candidate_merge(primary=primary, secondary=secondary, field_choices={}, actor=None)
        candidate_unsubscribe(candidate=primary, source="preference centre")

        candidate_merge_undo(record=record, actor=recruiter_user)

    assert _owner(theirs) == secondary.pk
    with scopes_disabled():
        mine = CandidateEmailPreference.objects.get(candidate=primary)
    assert mine.unsubscribed_at is not None
    assert mine.interested_roles == []


def test_merge_undo_keeps_a_consent_withdrawn_after_the_merge_withdrawn(org, recruiter_user):
    primary, secondary = make_candidates(org, 2)
    with scopes_disabled():
        consent = Consent.objects.create(
            organization=org,
            candidate=secondary,
            source="Sign-up form",
            wording="Yes, email me about roles.",
            granted_at=timezone.now(),
        )
    with scope(organization=org):
        record = candidate_merge(primary=primary, secondary=secondary, field_choices={}, actor=None)
        consent_withdraw(consent=Consent.objects.get(pk=consent.pk))

        candidate_merge_undo(record=record, actor=recruiter_user)

    with scopes_disabled():
        consent.refresh_from_db()
    assert (consent.candidate_id, consent.is_active) == (secondary.pk, False)


def test_merge_undo_says_on_the_timeline_which_restrictions_it_kept(org, recruiter_user):
    primary, secondary = make_candidates(org, 2)
    with scopes_disabled():
        CandidateEmailPreference.objects.create(organization=org, candidate=primary)
        CandidateEmailPreference.objects.create(organization=org, candidate=secondary)
    with scope(organization=org):
        record = candidate_merge(primary=primary, secondary=secondary, field_choices={}, actor=None)
        candidate_unsubscribe(candidate=primary, source="preference centre")

        candidate_merge_undo(record=record, actor=recruiter_user)

    with scopes_disabled():
        entry = Activity.objects.get(candidate=primary, kind=Activity.Kind.UNMERGED)
    assert "kept" in entry.summary and "email preferences" in entry.summary
    assert entry.data["kept"] == ["email preferences"]
