"""A candidate marked Hired is an employee now: campaign email about opportunities no longer
reaches them (launch audiences, sequence joins, the stop check when a step falls due, the send
path), as for "Do not contact". Setting either status — on the profile, by a bulk "Set status",
by an import, by a merge — ends their enrollments at once, as an unsubscribe does. And the
send path's caps do not mistake the emails of their own chunk that were skipped for another
worker's emails in flight."""

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns.models import CandidateEmailPreference, EmailSettings, Enrollment, Message
from campaigns.services import guards, sequences
from campaigns.services.audience import audience_queryset
from campaigns.services.campaigns import campaign_launch
from campaigns.services.consent import consent_request_refusal
from campaigns.services.dispatch import dispatch_due
from campaigns.services.sending import messages_send
from campaigns.tests.factories import make_broadcast, make_candidates
from campaigns.tests.test_sequences import (
    TUESDAY_10,
    enrollment_of,
    launched,
    make_sequence,
    messages_of,
    timeline,
    went_out,
)
from candidates.models import Candidate, Job
from candidates.services.merge import candidate_merge
from candidates.services.profiles import candidate_set_status
from candidates.tasks import bulk_action
from pipelines.tests.factories import PoolFactory

pytestmark = pytest.mark.django_db

TWO_STEPS = [{}, {"delay": timedelta(days=1)}]
# (status set, the enrollment's stop reason, the timeline's words)
STOPS = [
    ("hired", "hired", "marked Hired"),
    ("do_not_contact", "do_not_contact", "marked “Do not contact”"),
]


def _set_status_quietly(candidate, status) -> None:
    """The status written straight to the table, as nothing in the app does: only the
    dispatcher's and the send path's own checks can notice it."""
    with scopes_disabled():
        Candidate.objects.filter(pk=candidate.pk).update(status=status)


def _waiting_for_step_two(org, user, **fields):
    """A two-step sequence whose first email went out: the enrollment waits a day."""
    campaign, (candidate,) = launched(org, user, TWO_STEPS, **fields)
    dispatch_due(now=TUESDAY_10)
    went_out(campaign, TUESDAY_10)
    return campaign, candidate


def _stopped(enrollment) -> tuple[str, str]:
    return enrollment.status, enrollment.stop_reason


# --- Hired is left out like "Do not contact" ---


def test_launch_audience_leaves_out_hired_candidates(org, recruiter_user):
    hired, active = make_candidates(org, 2)
    _set_status_quietly(hired, Candidate.Status.HIRED)
    campaign = make_sequence(org, user=recruiter_user, steps=[{}])

    with scopes_disabled():
        audience = set(audience_queryset(campaign=campaign).values_list("pk", flat=True))
        campaign_launch(campaign=campaign, user=recruiter_user, now=TUESDAY_10)
        enrolled = set(
            Enrollment.objects.filter(campaign=campaign).values_list("candidate_id", flat=True)
        )

    assert audience == {active.pk}
    assert enrolled == {active.pk}


def test_hired_candidate_leaves_the_sequence_when_the_next_step_falls_due(org, recruiter_user):
    campaign, candidate = _waiting_for_step_two(org, recruiter_user)
    _set_status_quietly(candidate, Candidate.Status.HIRED)

    dispatch_due(now=TUESDAY_10 + timedelta(days=1))

    assert messages_of(campaign) == [(1, "sent")]
    assert _stopped(enrollment_of(campaign)) == ("stopped", "hired")
    assert timeline(candidate)[-1] == "Left the campaign “Platform nurture”: marked Hired"


def test_hired_candidate_does_not_join_a_sequence_from_its_pool(org, recruiter_user):
    pool = PoolFactory(organization=org)
    hired, active = make_candidates(org, 2)
    _set_status_quietly(hired, Candidate.Status.HIRED)
    campaign = make_sequence(
        org, user=recruiter_user, steps=[{}], tag="nobody", auto_join_pool=pool
    )
    with scopes_disabled():
        campaign_launch(campaign=campaign, user=recruiter_user, now=TUESDAY_10)

        joined = sequences.sequences_auto_join(pool_id=pool.pk, candidate_ids=[hired.pk, active.pk])
        enrolled = list(
            Enrollment.objects.filter(campaign=campaign).values_list("candidate_id", flat=True)
        )

    assert joined == 1
    assert enrolled == [active.pk]


def test_enroll_in_a_sequence_leaves_out_hired_candidates(org, recruiter_user):
    """What "Enroll in a sequence" on the candidate list calls (`sequence_enroll`)."""
    campaign = make_sequence(org, user=recruiter_user, steps=[{}], tag="nobody")
    with scopes_disabled():
        campaign_launch(campaign=campaign, user=recruiter_user, now=TUESDAY_10)
    hired, active = make_candidates(org, 2)
    _set_status_quietly(hired, Candidate.Status.HIRED)

    with scopes_disabled():
        joined = sequences.sequence_enroll(
            campaign=campaign, candidate_ids=[hired.pk, active.pk], now=TUESDAY_10
        )
        enrolled = list(
            Enrollment.objects.filter(campaign=campaign).values_list("candidate_id", flat=True)
        )
    assert joined == 1
    assert enrolled == [active.pk]


def test_queued_email_to_a_candidate_hired_since_is_skipped_at_send_time(org, recruiter_user):
    hired, active = make_candidates(org, 2)
    campaign = make_broadcast(org, user=recruiter_user)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
    _set_status_quietly(hired, Candidate.Status.HIRED)

    with scope(organization=org):
        ids = list(Message.objects.filter(campaign=campaign).values_list("pk", flat=True))
        report = messages_send(organization=org, message_ids=ids)

    with scopes_disabled():
        skipped = Message.objects.get(campaign=campaign, candidate=hired)
        enrollment = Enrollment.objects.get(campaign=campaign, candidate=hired)
    assert (report.sent, report.skipped) == (1, 1)
    assert [m.to for m in mail.outbox] == [[active.email]]
    assert (skipped.status, skipped.skip_reason) == ("skipped", "hired")
    assert _stopped(enrollment) == ("stopped", "hired")


def test_hired_candidate_may_still_be_asked_to_confirm_their_consent(org):
    """Only campaign email is held back: a double opt-in confirmation (transactional) is
    still theirs to ask for, unlike for "Do not contact"."""
    (candidate,) = make_candidates(org, 1)
    _set_status_quietly(candidate, Candidate.Status.HIRED)
    with scopes_disabled():
        candidate.refresh_from_db()
        assert consent_request_refusal(candidate=candidate) == ""


# --- a status change stops the enrollments at once ---


@pytest.mark.parametrize(("status", "reason", "why"), STOPS)
def test_status_set_on_the_profile_stops_enrollments_at_once(
    org, recruiter_user, status, reason, why
):
    campaign, candidate = _waiting_for_step_two(org, recruiter_user)

    with scope(organization=org):
        candidate.refresh_from_db()
        candidate_set_status(candidate=candidate, actor=recruiter_user, status=status)

    enrollment = enrollment_of(campaign)
    assert _stopped(enrollment) == ("stopped", reason)
    assert enrollment.next_run_at is None
    assert timeline(candidate)[-1] == f"Left the campaign “Platform nurture”: {why}"


def test_status_set_on_the_profile_skips_the_email_still_in_the_outbox(org, recruiter_user):
    campaign, (candidate,) = launched(org, recruiter_user, TWO_STEPS)
    dispatch_due(now=TUESDAY_10)  # step 1 written, not sent yet

    with scope(organization=org):
        candidate.refresh_from_db()
        candidate_set_status(
            candidate=candidate, actor=recruiter_user, status=Candidate.Status.HIRED
        )

    with scopes_disabled():
        message = Message.objects.get(campaign=campaign)
    assert (message.status, message.skip_reason) == ("skipped", "enrollment_stopped")
    assert _stopped(enrollment_of(campaign)) == ("stopped", "hired")


def test_other_status_changes_and_edits_leave_enrollments_alone(org, recruiter_user):
    campaign, candidate = _waiting_for_step_two(org, recruiter_user)

    with scope(organization=org):
        candidate.refresh_from_db()
        candidate_set_status(
            candidate=candidate,
            actor=recruiter_user,
            status=Candidate.Status.NOT_NOW,
            not_now_until=timezone.now().date() + timedelta(days=30),
        )

    assert enrollment_of(campaign).status == "active"


def test_bulk_status_inline_stops_the_selected_candidates_enrollments(
    recruiter_client, org, recruiter_user
):
    campaign, (hired, kept) = launched(org, recruiter_user, TWO_STEPS, candidates=2)
    dispatch_due(now=TUESDAY_10)
    went_out(campaign, TUESDAY_10)

    response = recruiter_client.post(
        reverse("candidates:bulk", args=[org.slug]),
        {"action": "status", "ids": hired.pk, "status": "hired"},
    )

    assert response.status_code == 302
    assert _stopped(enrollment_of(campaign, hired)) == ("stopped", "hired")
    assert enrollment_of(campaign, kept).status == "active"
    assert timeline(hired)[-1] == "Left the campaign “Platform nurture”: marked Hired"


def test_bulk_status_job_stops_enrollments_once_it_has_run(org, recruiter_user, settings):
    settings.CANDIDATE_BULK_BATCH_SIZE = 1
    campaign, people = launched(org, recruiter_user, TWO_STEPS, candidates=3)
    dispatch_due(now=TUESDAY_10)
    went_out(campaign, TUESDAY_10)
    chosen, other = people[:2], people[2]
    with scopes_disabled():
        Candidate.objects.filter(pk__in=[c.pk for c in chosen]).update(city="Berlin")
        job = Job.objects.create(
            organization=org,
            kind=Job.Kind.BULK,
            status=Job.Status.QUEUED,
            created_by=recruiter_user,
            total=2,
            params={
                "action": "status",
                "args": {"status": "do_not_contact"},
                "selection": {"query": "city=Berlin"},
                "cursor": 0,
            },
        )

    bulk_action.apply(kwargs={"organization_id": org.pk, "job_id": job.pk})

    assert [_stopped(enrollment_of(campaign, c)) for c in chosen] == [
        ("stopped", "do_not_contact")
    ] * 2
    assert enrollment_of(campaign, other).status == "active"


def test_import_that_sets_hired_stops_enrollments_once_it_has_landed(org, recruiter_user):
    from candidates.tests.test_import import _job, _run

    campaign, (candidate,) = launched(org, recruiter_user, TWO_STEPS)
    dispatch_due(now=TUESDAY_10)
    went_out(campaign, TUESDAY_10)
    content = f"Name,Email,Status\nAda,{candidate.email},Hired\n"

    job = _run(org, _job(org, recruiter_user, content.encode()))

    assert job.result["updated"] == 1
    assert _stopped(enrollment_of(campaign)) == ("stopped", "hired")
    assert timeline(candidate)[-1] == "Left the campaign “Platform nurture”: marked Hired"


def test_merge_that_keeps_do_not_contact_stops_the_primarys_enrollments(org, recruiter_user):
    campaign, (primary,) = launched(org, recruiter_user, TWO_STEPS)
    dispatch_due(now=TUESDAY_10)
    went_out(campaign, TUESDAY_10)
    (secondary,) = make_candidates(org, 1, tags=["elsewhere"])
    _set_status_quietly(secondary, Candidate.Status.DO_NOT_CONTACT)

    with scopes_disabled():
        primary.refresh_from_db()
        secondary.refresh_from_db()
        candidate_merge(
            primary=primary, secondary=secondary, field_choices={}, actor=recruiter_user
        )
        primary.refresh_from_db()

    assert primary.status == "do_not_contact"
    assert _stopped(enrollment_of(campaign, primary)) == ("stopped", "do_not_contact")


# --- the caps count another worker's emails in flight, not their own chunk's skipped ones ---


@pytest.mark.parametrize("cap", ["organisation", "candidate"])
def test_an_email_skipped_in_the_chunk_does_not_hold_another_to_the_same_candidate(
    org, recruiter_user, cap
):
    """One chunk holds two emails to one candidate: the first, of a topic they opted out of,
    is skipped; the second may go (a cap of one email a week, nothing sent yet). The skipped
    one was claimed by this task and is not in flight anywhere."""
    (candidate,) = make_candidates(org, 1)
    with scopes_disabled():
        if cap == "organisation":
            EmailSettings.objects.update_or_create(
                organization=org,
                defaults={"frequency_cap_messages": 1, "frequency_cap_days": 7},
            )
        CandidateEmailPreference.objects.create(
            organization=org,
            candidate=candidate,
            opted_out_topics=["jobs"],
            frequency="weekly" if cap == "candidate" else "",
        )
    opted_out = make_broadcast(org, user=recruiter_user, name="Jobs", topic="jobs")
    wanted = make_broadcast(org, user=recruiter_user, name="Events", topic="events")
    with scope(organization=org):
        for campaign in (opted_out, wanted):
            campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
        ids = sorted(Message.objects.values_list("pk", flat=True))

        report = messages_send(organization=org, message_ids=ids)

    with scopes_disabled():
        statuses = dict(Message.objects.values_list("campaign__name", "status"))
        waiting = Message.objects.get(campaign=wanted).last_error
    assert statuses == {"Jobs": "skipped", "Events": "sent"}, waiting
    assert (report.sent, report.skipped, report.held) == (1, 1, 0)
    assert waiting not in (guards.HOLD_FREQUENCY_CAP, guards.HOLD_CANDIDATE_FREQUENCY)
