"""The outbox: launch, dispatch (bulk, once), send-time guard rails, headers, retries,
bounces, rate limits and recovery after a lost worker."""

import email
import email.policy
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from analytics.models import EngagementEvent
from campaigns.models import (
    Campaign,
    CandidateEmailPreference,
    EmailSettings,
    Enrollment,
    Message,
    Suppression,
)
from campaigns.services import sending, sequences
from campaigns.services.campaigns import campaign_launch, campaign_launch_problems
from campaigns.services.dispatch import CLAIM_PLANNER_SETTINGS, dispatch_due, due_enrollments
from campaigns.services.sending import SendReport, messages_send
from campaigns.tests.backends import ScriptedBackend, deferred, hard_bounce
from campaigns.tests.factories import make_broadcast, make_candidates, send_all
from candidates.models import Activity, Candidate, CandidateContact
from candidates.services.profiles import candidates_delete
from crm.db import planner_settings
from crm.emails import send_transactional_email

LIST_HEADERS = ("List-Unsubscribe", "List-Unsubscribe-Post", "List-Id")


def test_launch_enrolls_the_audience_without_the_opted_out(org, recruiter_user, in_org):
    audience = make_candidates(org, 3)
    make_candidates(org, 2, tags=["other"])
    unsubscribed, do_not_contact = make_candidates(org, 2)
    with in_org():
        CandidateEmailPreference.objects.create(
            organization=org, candidate=unsubscribed, unsubscribed_at=timezone.now()
        )
        Candidate.objects.filter(pk=do_not_contact.pk).update(status="do_not_contact")
        campaign = make_broadcast(org, user=recruiter_user)
        enrolled = campaign_launch(campaign=campaign, user=recruiter_user)
        enrolled_ids = set(Enrollment.objects.values_list("candidate_id", flat=True))
        campaign.refresh_from_db()
    assert enrolled == 3
    assert enrolled_ids == {c.pk for c in audience}
    assert campaign.status == Campaign.Status.RUNNING


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"postal_address": ""}, "no postal address"),
        ({"sender_email": ""}, "no sender address"),
    ],
)
def test_launch_is_blocked_without_postal_address_or_sender(
    org, recruiter_user, in_org, change, reason
):
    make_candidates(org, 1)
    for name, value in change.items():
        setattr(org, name, value)
    org.save()
    campaign = make_broadcast(org, user=recruiter_user)
    with in_org():
        problems = campaign_launch_problems(campaign=campaign)
    assert any(reason in problem for problem in problems)


def test_dispatch_writes_each_chunk_with_one_insert(org, recruiter_user, in_org):
    make_candidates(org, 25)
    campaign = make_broadcast(org, user=recruiter_user)
    with in_org():
        campaign_launch(campaign=campaign, user=recruiter_user)
    with CaptureQueriesContext(connection) as queries:
        report = dispatch_due()
    inserts = [q["sql"] for q in queries if q["sql"].startswith('INSERT INTO "campaigns_message"')]
    assert len(inserts) == 1
    assert "ON CONFLICT DO NOTHING" in inserts[0]
    assert (report.claimed, report.messages_created, report.tasks_queued) == (25, 25, 1)
    assert report.per_task == [25]


def _plan_nodes(plan: dict) -> list[str]:
    return [plan["Node Type"], *(n for p in plan.get("Plans", []) for n in _plan_nodes(p))]


def test_dispatch_claims_in_index_order_without_sorting_the_due(org, recruiter_user, in_org):
    """A broadcast's enrollments share one `next_run_at`: the claim's order (then by id) comes
    from the `enrollment_due` index, or every chunk sorts all the due rows (85 ms a chunk of 500
    out of 100,000 on the bench). The claim is planned with sorting off, since the statistics
    right after a launch count few active enrollments; with sorting off an index in another
    order would still need a Sort node, which is what this checks."""
    make_candidates(org, 5)
    campaign = make_broadcast(org, user=recruiter_user)
    with in_org():
        campaign_launch(campaign=campaign, user=recruiter_user)
    with scopes_disabled():  # the dispatcher's scan spans organisations
        sql, params = due_enrollments(now=timezone.now()).query.sql_with_params()
    with planner_settings(**CLAIM_PLANNER_SETTINGS), connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql} LIMIT 500", params)
        plan = cursor.fetchone()[0][0]["Plan"]
    nodes = _plan_nodes(plan)
    assert not any("Sort" in node for node in nodes), nodes
    assert "Index Scan" in nodes, nodes

    with CaptureQueriesContext(connection) as queries:
        assert dispatch_due().claimed == 5
    statements = [q["sql"] for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    claim = next(
        i
        for i, sql in enumerate(statements)
        if sql.startswith('SELECT "campaigns_enrollment"') and "SKIP LOCKED" in sql
    )
    assert "set_config('enable_sort', 'off', true)" in statements[claim - 1]
    assert "set_config('enable_sort', 'on', true)" in statements[claim + 1]


def test_dispatch_twice_never_creates_a_second_message(launched_broadcast, in_org):
    campaign, _ = launched_broadcast
    with in_org():
        first_ids = set(Message.objects.values_list("pk", "message_id"))
        # As if the enrollments were scheduled again for the same step (a crash before the
        # enrollment moved on, a replayed task…): the unique constraint makes it a no-op.
        step = campaign.steps.get()
        Enrollment.objects.update(status="active", current_step=step, next_run_at=timezone.now())
        Campaign.objects.filter(pk=campaign.pk).update(status="running")
        report = dispatch_due()
        second_ids = set(Message.objects.values_list("pk", "message_id"))
    assert report.claimed == 3
    assert report.messages_created == 0
    assert second_ids == first_ids


def test_dispatch_renders_each_message_with_its_headers(
    launched_broadcast, org, recruiter_user, in_org
):
    _campaign, candidates = launched_broadcast
    with in_org():
        message = Message.objects.get(candidate=candidates[0])
    assert message.status == Message.Status.QUEUED
    assert message.subject == f"A role for you, {candidates[0].first_name}"
    assert message.message_id.startswith("<") and message.message_id.endswith("@acme.example>")
    assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.links == ["https://jobs.example.com/roles/42?ref=mail&x=1"]
    assert "https://jobs.example.com" not in message.html  # the link goes through tracking
    assert "1 Example Street" in message.html and "1 Example Street" in message.text


def test_sent_campaign_email_has_list_headers_parsed_by_email_module(
    launched_broadcast, org, recruiter_user, in_org
):
    campaign, candidates = launched_broadcast
    report = send_all(org, campaign)
    assert report.sent == 3
    with in_org():
        stored = Message.objects.get(candidate=candidates[0])
    raw = next(m for m in mail.outbox if m.to == [candidates[0].email]).message().as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)

    assert parsed["Message-ID"] == stored.message_id
    assert parsed["From"] == "Sam Sender <talent@acme.example>"
    # Compared as an address: a generated name such as "Mr. Steven Baker" is quoted on the wire.
    reply_to = parsed["Reply-To"].addresses[0]
    assert (reply_to.display_name, reply_to.addr_spec) == (
        recruiter_user.display_name,
        recruiter_user.email,
    )
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https_part, mailto_part = [p.strip() for p in parsed["List-Unsubscribe"].split(",")]
    assert https_part.startswith("<https://rapport.example.com/e/u/")
    assert mailto_part.startswith("<mailto:unsubscribe+") and mailto_part.endswith("@acme.example>")
    local_part = mailto_part.removeprefix("<mailto:").split("@")[0]
    assert len(local_part) <= 64  # RFC 5321
    # The organisation's name and an opaque label: not the team's name for the campaign, not
    # its id or the organisation's URL name.
    assert re.fullmatch(r'"Acme Talent" <[0-9a-f]{20}\.acme\.example>', parsed["List-Id"])
    assert "Spring roles" not in str(parsed) and f"c{campaign.pk}." not in parsed["List-Id"]
    assert parsed.get_content_type() == "multipart/alternative"
    text = parsed.get_body(("plain",)).get_content()
    html = parsed.get_body(("html",)).get_content()
    assert "Unsubscribe: https://rapport.example.com/e/u/" in text
    assert "1 Example Street" in html and ">Unsubscribe</a>" in html
    assert stored.status == Message.Status.SENT and stored.sent_at is not None


def test_transactional_email_never_carries_list_headers(db):
    send_transactional_email(
        template="crm/email/invitation",
        to=["new@example.com"],
        context={
            "organization": "Acme",
            "inviter": "Ada",
            "role": "Recruiter",
            "url": "u",
            "days": 7,
        },
    )
    parsed = email.message_from_bytes(mail.outbox[0].message().as_bytes())
    assert parsed["List-Unsubscribe"] is None
    assert parsed["List-Unsubscribe-Post"] is None
    assert parsed["List-Id"] is None


def test_transactional_email_is_never_blocked_by_suppression_and_has_no_list_headers(
    client, org, recruiter_user, admin_user, django_capture_on_commit_callbacks
):
    """Every transactional email the product sends — an invitation, a password reset, the
    follow-up digest, the double opt-in confirmation — reaches an address that campaign email
    must not reach (suppressed, unsubscribed), and none carries list headers."""
    from django.urls import reverse

    from campaigns.services.consent import consent_request_double_opt_in
    from campaigns.services.preferences import candidate_unsubscribe
    from crm.services import invitation_create
    from pipelines.services import follow_up_digest_send
    from pipelines.tests.factories import FollowUpFactory

    blocked = ["new.hire@example.com", recruiter_user.email]
    candidate = make_candidates(org, 1, email="opted.out@example.com")[0]
    with scopes_disabled():
        for address in [*blocked, candidate.email]:
            Suppression.objects.create(organization=org, email=address.lower(), reason="manual")
        candidate_unsubscribe(candidate=candidate, message_id=0, source="test")
        FollowUpFactory(candidate=candidate, owner=recruiter_user, due_on=timezone.localdate())

    with scopes_disabled(), django_capture_on_commit_callbacks(execute=True):
        invitation_create(
            organization=org, email=blocked[0], role="recruiter", invited_by=admin_user
        )
        follow_up_digest_send(organization=org, user=recruiter_user, today=timezone.localdate())
        # The candidate's own request (a sign-up form): a recruiter may not ask them.
        consent_request_double_opt_in(
            candidate=candidate,
            source="Sign-up form",
            wording="Send me jobs.",
            on_candidates_request=True,
        )
    client.post(reverse("account_reset_password"), {"email": recruiter_user.email})

    parsed = [email.message_from_bytes(sent.message().as_bytes()) for sent in mail.outbox]
    # the invitation, the digest, the opt-in confirmation, the password reset
    assert [m["To"] for m in parsed] == [*blocked, candidate.email, recruiter_user.email]
    assert [[m[h] for h in LIST_HEADERS] for m in parsed] == [[None, None, None]] * 4


def test_send_records_events_and_timeline(launched_broadcast, org, in_org):
    campaign, _candidates = launched_broadcast
    send_all(org, campaign)
    with in_org():
        sent_events = EngagementEvent.objects.filter(kind="sent", campaign=campaign).count()
        timeline = Activity.objects.filter(kind=Activity.Kind.EMAIL_SENT).count()
    assert (sent_events, timeline) == (3, 3)


def _guard(org, candidate, campaign, kind):
    if kind == "suppressed":
        Suppression.objects.create(organization=org, email=candidate.email, reason="manual")
    elif kind == "unsubscribed":
        CandidateEmailPreference.objects.create(
            organization=org, candidate=candidate, unsubscribed_at=timezone.now()
        )
    elif kind == "do_not_contact":
        Candidate.objects.filter(pk=candidate.pk).update(status="do_not_contact")
    elif kind == "topic_opted_out":
        CandidateEmailPreference.objects.create(
            organization=org, candidate=candidate, opted_out_topics=[campaign.topic]
        )
    elif kind == "paused":
        CandidateEmailPreference.objects.create(
            organization=org,
            candidate=candidate,
            paused_until=timezone.localdate() + timedelta(days=30),
        )
    elif kind == "campaign_cancelled":
        Campaign.objects.filter(pk=campaign.pk).update(status="cancelled")
    elif kind == "merged":
        # Merged into another profile after the email was written. The merge stops the
        # profile's enrollments itself; the send path is the backstop.
        (survivor,) = make_candidates(org, 1, tags=["elsewhere"])
        Candidate.objects.filter(pk=candidate.pk).update(merged_into=survivor)


@pytest.mark.parametrize(
    ("kind", "stops_enrollment"),
    [
        ("suppressed", True),
        ("unsubscribed", True),
        ("do_not_contact", True),
        ("topic_opted_out", False),
        ("paused", False),
        ("campaign_cancelled", True),
        ("merged", True),
    ],
)
def test_guard_rails_are_checked_at_send_time(
    launched_broadcast, org, in_org, kind, stops_enrollment
):
    campaign, candidates = launched_broadcast
    target = candidates[0]
    with in_org():
        # The message was rendered and queued while everything was fine; now things change.
        _guard(org, target, campaign, kind)
    report = send_all(org, campaign)
    with in_org():
        message = Message.objects.get(candidate=target)
        enrollment = Enrollment.objects.get(candidate=target)
    recipients = [m.to[0] for m in mail.outbox]
    assert target.email not in recipients
    assert message.status == Message.Status.SKIPPED
    assert message.skip_reason == kind
    assert (enrollment.status == Enrollment.Status.STOPPED) is stops_enrollment
    if kind == "campaign_cancelled":
        assert report.sent == 0
    else:
        assert report.sent == 2


def test_send_skips_messages_that_are_not_queued(launched_broadcast, org, in_org):
    campaign, _ = launched_broadcast
    send_all(org, campaign)
    report = send_all(org, campaign)  # the same ids again: a duplicate task
    assert (report.claimed, report.sent, len(mail.outbox)) == (0, 0, 3)


def test_transient_failure_retries_later_with_backoff(launched_broadcast, org, in_org, settings):
    settings.EMAIL_BACKEND = "campaigns.tests.backends.ScriptedBackend"
    ScriptedBackend.script = [deferred(), None, None]
    campaign, _ = launched_broadcast
    report = send_all(org, campaign)
    with in_org():
        retried = Message.objects.get(status=Message.Status.QUEUED)
    assert (report.sent, report.retried) == (2, 1)
    assert retried.attempts == 1
    assert "421" in retried.last_error
    assert retried.next_attempt_at > timezone.now() + timedelta(seconds=50)

    assert send_all(org, campaign).sent == 0  # not due yet
    with in_org():
        Message.objects.filter(pk=retried.pk).update(next_attempt_at=timezone.now())
    assert send_all(org, campaign).sent == 1
    with in_org():
        retried.refresh_from_db()
    assert (retried.status, retried.attempts) == (Message.Status.SENT, 2)


def test_hard_bounce_fails_the_message_and_suppresses_the_address(
    launched_broadcast, org, in_org, settings
):
    settings.EMAIL_BACKEND = "campaigns.tests.backends.ScriptedBackend"
    campaign, _candidates = launched_broadcast
    with in_org():
        first = Message.objects.order_by("pk").first()
    ScriptedBackend.script = [hard_bounce(first.to_email), None, None]
    report = send_all(org, campaign)
    with in_org():
        first.refresh_from_db()
        suppressed = list(Suppression.objects.values_list("email", "reason"))
        enrollment = Enrollment.objects.get(pk=first.enrollment_id)
    assert (report.sent, report.failed) == (2, 1)
    assert first.status == Message.Status.BOUNCED
    assert suppressed == [(first.to_email, "bounced")]
    assert enrollment.stop_reason == Enrollment.StopReason.BOUNCED


def test_rate_limit_holds_messages_back_for_a_later_minute(launched_broadcast, org, in_org):
    campaign, _ = launched_broadcast
    with in_org():
        EmailSettings.objects.create(organization=org, messages_per_minute=2)
    report = send_all(org, campaign)
    with in_org():
        waiting = list(
            Message.objects.filter(status="queued").values_list("enqueued_at", flat=True)
        )
    assert (report.sent, report.throttled) == (2, 1)
    assert waiting == [None]  # the sweeper gives it a new task in a later minute
    assert send_all(org, campaign).sent == 0  # still this minute: nothing more


def test_lost_worker_message_is_recovered_and_resent_with_the_same_message_id(
    launched_broadcast, org, in_org, settings
):
    campaign, _ = launched_broadcast
    settings.CAMPAIGNS_SEND_LEASE_SECONDS = 60
    with in_org():
        message = Message.objects.order_by("pk").first()
        # A worker claimed it and died before recording a result.
        Message.objects.filter(pk=message.pk).update(
            status="sending", claimed_at=timezone.now() - timedelta(minutes=5)
        )
    report = dispatch_due()
    assert report.recovered == 1
    send_all(org, campaign)
    resent = next(m for m in mail.outbox if m.to == [message.to_email])
    assert resent.extra_headers["Message-ID"] == message.message_id
    with in_org():
        message.refresh_from_db()
    assert message.status == Message.Status.SENT


def test_sweeper_requeues_queued_messages_whose_task_is_gone(launched_broadcast, org, in_org):
    with in_org():
        Message.objects.update(enqueued_at=timezone.now() - timedelta(hours=1))
    report = dispatch_due()
    assert (report.requeued, report.tasks_queued) == (3, 1)


def test_broadcast_finishes_when_every_email_has_left_the_outbox(launched_broadcast, org, in_org):
    campaign, _ = launched_broadcast
    with in_org():
        campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING  # every email written, none sent
    send_all(org, campaign)
    with in_org():
        campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DONE


def test_dispatch_renders_nothing_more_for_a_merged_away_profile(org, recruiter_user):
    """A sequence's next step is not rendered for a profile merged into another (the person is
    the surviving profile, who gets their own): its enrollment stops, with the reason."""
    from campaigns.tests.test_sequences import TUESDAY_10, launched

    steps = [{}, {"delay": timedelta(days=1)}]
    campaign, (survivor, merged) = launched(org, recruiter_user, steps, candidates=2)
    dispatch_due(now=TUESDAY_10)
    with scopes_disabled():
        # Step 1 went out (the next step waits for that), then the profiles were merged.
        Message.objects.filter(campaign=campaign).update(status="sent", sent_at=TUESDAY_10)
        Candidate.objects.filter(pk=merged.pk).update(merged_into=survivor)

    dispatch_due(now=TUESDAY_10 + timedelta(days=1, hours=1))

    with scopes_disabled():
        second_emails = list(
            Message.objects.filter(campaign=campaign, step__position=2).values_list(
                "candidate_id", flat=True
            )
        )
        enrollment = Enrollment.objects.get(campaign=campaign, candidate=merged)
    assert second_emails == [survivor.pk]
    assert (enrollment.status, enrollment.stop_reason) == (
        Enrollment.Status.STOPPED,
        Enrollment.StopReason.MERGED,
    )


# --- what changes while a chunk is being sent ---


def _chunk(org, user, count: int) -> tuple[Campaign, list[Message]]:
    make_candidates(org, count)
    campaign = make_broadcast(org, user=user)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=user)
        dispatch_due()
    with scopes_disabled():
        return campaign, list(Message.objects.filter(campaign=campaign).order_by("pk"))


class _Meanwhile(LocmemBackend):
    """locmem that runs `after[n]` once the n-th email was accepted: something that happens
    while the chunk is being sent."""

    after: dict = {}

    def send_messages(self, email_messages):
        sent = super().send_messages(email_messages)
        action = self.after.get(len(mail.outbox))
        if action is not None:
            with scopes_disabled():
                action()
        return sent


def _send_chunk(org, messages, **after) -> SendReport:
    backend = _Meanwhile()
    backend.after = {int(n.removeprefix("after_")): action for n, action in after.items()}
    with scope(organization=org):
        return messages_send(
            organization=org, message_ids=[m.pk for m in messages], connection=backend
        )


@pytest.fixture
def reread_before_every_message(monkeypatch):
    """A chunk reads again what may stop its emails before every message (in production every
    50 messages once a second has passed)."""
    monkeypatch.setattr(sending, "OPT_OUTS_REREAD_EVERY", 1)
    monkeypatch.setattr(sending, "OPT_OUTS_REREAD_SECONDS", 0)


@pytest.mark.django_db(transaction=True)
def test_candidate_deleted_while_their_chunk_is_sent_gets_nothing(
    org, recruiter_user, reread_before_every_message
):
    """A candidate deleted (bulk delete, erasure) while their chunk goes out — their email goes
    with their enrollment — is not sent it, and the others' events, timeline entries and last
    contact are all recorded."""
    campaign, (first, deleted, last) = _chunk(org, recruiter_user, 3)

    report = _send_chunk(
        org,
        [first, deleted, last],
        after_1=lambda: candidates_delete(candidate_ids=[deleted.candidate_id]),
    )

    assert [m.to for m in mail.outbox] == [[first.to_email], [last.to_email]]
    assert (report.sent, report.skip_reasons) == (2, {"candidate_deleted": 1})
    with scopes_disabled():
        events = set(
            EngagementEvent.objects.filter(kind="sent").values_list("candidate_id", flat=True)
        )
        timeline = set(
            Activity.objects.filter(kind=Activity.Kind.EMAIL_SENT).values_list(
                "candidate_id", flat=True
            )
        )
        contacted = set(CandidateContact.objects.values_list("candidate_id", flat=True))
        campaign.refresh_from_db()
    assert events == timeline == contacted == {first.candidate_id, last.candidate_id}
    assert campaign.status == Campaign.Status.DONE


@pytest.mark.django_db(transaction=True)
def test_candidate_deleted_after_their_email_went_out_loses_no_one_elses_records(
    org, recruiter_user, reread_before_every_message
):
    """Deleted after their email was accepted (its Message row gone with them) and before the
    chunk's bookkeeping: the other emails' events and timeline entries are still written."""
    campaign, messages = _chunk(org, recruiter_user, 3)
    first, *others = messages

    report = _send_chunk(
        org, messages, after_3=lambda: candidates_delete(candidate_ids=[first.candidate_id])
    )

    assert report.sent == 3
    with scopes_disabled():
        events = set(
            EngagementEvent.objects.filter(kind="sent").values_list("candidate_id", flat=True)
        )
        timeline = set(
            Activity.objects.filter(kind=Activity.Kind.EMAIL_SENT).values_list(
                "candidate_id", flat=True
            )
        )
        campaign.refresh_from_db()
    assert events == timeline == {m.candidate_id for m in others}
    assert campaign.status == Campaign.Status.DONE


def test_pausing_a_campaign_while_its_chunk_is_sent_keeps_the_rest_for_the_resume(
    org, recruiter_user, reread_before_every_message
):
    campaign, messages = _chunk(org, recruiter_user, 4)

    report = _send_chunk(
        org,
        messages,
        after_1=lambda: sequences.campaign_pause(campaign=campaign, user=recruiter_user),
    )

    assert (len(mail.outbox), report.sent, report.paused) == (1, 1, 3)
    with scopes_disabled():
        rest = list(
            Message.objects.filter(pk__in=[m.pk for m in messages[1:]]).values_list(
                "status", "attempts", "next_attempt_at", "enqueued_at", "claimed_at"
            )
        )
    assert rest == [(Message.Status.QUEUED, 0, None, None, None)] * 3
    assert send_all(org, campaign).sent == 0  # still paused
    with scopes_disabled():
        sequences.campaign_resume(
            campaign=campaign, user=recruiter_user, overdue=sequences.Overdue.SEND_NOW
        )
    assert send_all(org, campaign).sent == 3
    assert sorted(m.to[0] for m in mail.outbox) == sorted(m.to_email for m in messages)


def test_cancelling_or_stopping_while_a_chunk_is_sent_skips_the_rest(
    org, recruiter_user, reread_before_every_message
):
    campaign, (first, removed, third, fourth) = _chunk(org, recruiter_user, 4)

    def remove():  # a recruiter takes them out of the campaign, say
        Enrollment.objects.filter(pk=removed.enrollment_id).update(
            status=Enrollment.Status.STOPPED, stop_reason=Enrollment.StopReason.REMOVED
        )

    report = _send_chunk(
        org,
        [first, removed, third, fourth],
        after_1=remove,
        after_2=lambda: Campaign.objects.filter(pk=campaign.pk).update(status="cancelled"),
    )

    assert [m.to for m in mail.outbox] == [[first.to_email], [third.to_email]]
    with scopes_disabled():
        reasons = dict(Message.objects.filter(campaign=campaign).values_list("pk", "skip_reason"))
    assert reasons == {
        first.pk: "",
        removed.pk: Message.SkipReason.ENROLLMENT_STOPPED,
        third.pk: "",
        fourth.pk: Message.SkipReason.CAMPAIGN_CANCELLED,
    }
    assert report.sent == 2
