"""Guard rails at send time: consent, the frequency cap, each recruiter's daily cap and the
sending domain's warm-up ramp. Over a cap, a message waits in the queue and goes out later; it is never lost."""

import threading
from datetime import date, timedelta

import pytest
from django.core import mail
from django.db import connections
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns.models import (
    CandidateEmailPreference,
    Consent,
    EmailSettings,
    Message,
    SendingDomain,
    Suppression,
)
from campaigns.services import domains, guards
from campaigns.services.campaigns import campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.services.sending import messages_send
from campaigns.tests.backends import ScriptedBackend, deferred, hard_bounce
from campaigns.tests.factories import make_broadcast, make_candidates


def _settings(org, **fields) -> EmailSettings:
    with scopes_disabled():
        settings, _ = EmailSettings.objects.update_or_create(organization=org, defaults=fields)
    return settings


def _launch(org, user, **kwargs):
    campaign = make_broadcast(org, user=user, **kwargs)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=user)
        dispatch_due()
    return campaign


def _send(org, campaign=None):
    with scope(organization=org):
        messages = Message.objects.filter(status=Message.Status.QUEUED)
        if campaign is not None:
            messages = messages.filter(campaign=campaign)
        return messages_send(
            organization=org, message_ids=list(messages.values_list("pk", flat=True))
        )


def _earlier_email(org, user, candidate, *, days_ago: int) -> Message:
    """A campaign email this candidate already got `days_ago` days ago."""
    earlier = make_broadcast(org, user=user, name="Earlier", tag="earlier-only")
    with scopes_disabled():
        return Message.objects.create(
            organization=org,
            campaign=earlier,
            step=earlier.steps.first(),
            candidate=candidate,
            to_email=candidate.email,
            from_email="talent@acme.example",
            subject="Earlier",
            html="x",
            text="x",
            message_id=f"<earlier-{candidate.pk}@acme.example>",
            status=Message.Status.SENT,
            sent_at=timezone.now() - timedelta(days=days_ago),
        )


def test_frequency_cap_holds_the_email_until_a_slot_frees_then_sends_it(org, recruiter_user):
    _settings(org, frequency_cap_messages=1, frequency_cap_days=7)
    (candidate,) = make_candidates(org, 1)
    earlier = _earlier_email(org, recruiter_user, candidate, days_ago=2)
    campaign = _launch(org, recruiter_user)

    report = _send(org, campaign)
    with scopes_disabled():
        held = Message.objects.get(campaign=campaign)
    assert (report.sent, report.held, len(mail.outbox)) == (0, 1, 0)
    assert held.status == Message.Status.QUEUED
    assert held.next_attempt_at == earlier.sent_at + timedelta(days=7)
    assert held.last_error == guards.HOLD_FREQUENCY_CAP

    # Five days later the earlier email has left the 7-day window: the held one goes out.
    with scopes_disabled():
        Message.objects.filter(pk=earlier.pk).update(sent_at=timezone.now() - timedelta(days=8))
        Message.objects.filter(pk=held.pk).update(next_attempt_at=timezone.now())
    report = _send(org, campaign)
    with scopes_disabled():
        held.refresh_from_db()
    assert report.sent == 1
    assert held.status == Message.Status.SENT
    assert len(mail.outbox) == 1


def test_frequency_cap_counts_emails_of_the_same_batch(org, recruiter_user):
    _settings(org, frequency_cap_messages=1, frequency_cap_days=7)
    make_candidates(org, 1)
    _launch(org, recruiter_user, name="First")
    _launch(org, recruiter_user, name="Second")
    report = _send(org)
    assert (report.sent, report.held) == (1, 1)


def test_frequency_cap_counts_another_workers_email_in_flight(org, recruiter_user):
    """Another worker has claimed an email of another campaign to the same candidate and is
    sending it: with a cap of one, this one waits and is checked again shortly, then sends
    only if that one did not go out."""
    _settings(org, frequency_cap_messages=1, frequency_cap_days=7)
    (candidate,) = make_candidates(org, 1)
    other = _earlier_email(org, recruiter_user, candidate, days_ago=0)
    with scopes_disabled():
        Message.objects.filter(pk=other.pk).update(
            status=Message.Status.SENDING, sent_at=None, claimed_at=timezone.now()
        )
    campaign = _launch(org, recruiter_user)

    before = timezone.now()
    report = _send(org, campaign)
    with scopes_disabled():
        held = Message.objects.get(campaign=campaign)
    assert (report.sent, report.held, len(mail.outbox)) == (0, 1, 0)
    assert held.last_error == guards.HOLD_FREQUENCY_CAP
    assert before + guards.IN_FLIGHT_RECHECK <= held.next_attempt_at
    assert held.next_attempt_at <= timezone.now() + guards.IN_FLIGHT_RECHECK

    # The other worker's send failed and went back to the queue: this one goes out now.
    with scopes_disabled():
        Message.objects.filter(pk=other.pk).update(status=Message.Status.QUEUED)
        Message.objects.filter(pk=held.pk).update(next_attempt_at=timezone.now())
    assert _send(org, campaign).sent == 1


def test_frequency_cap_off_sends_everything(org, recruiter_user):
    _settings(org, frequency_cap_messages=0)
    (candidate,) = make_candidates(org, 1)
    _earlier_email(org, recruiter_user, candidate, days_ago=1)
    campaign = _launch(org, recruiter_user)
    assert _send(org, campaign).sent == 1


def test_consent_required_skips_candidates_without_active_consent(org, recruiter_user):
    _settings(org, consent_required=True)
    consenting, silent, withdrawn = make_candidates(org, 3)
    now = timezone.now()
    with scopes_disabled():
        for candidate, withdrawn_at in ((consenting, None), (withdrawn, now)):
            Consent.objects.create(
                organization=org,
                candidate=candidate,
                source="Career fair sign-up",
                wording="Send me jobs.",
                granted_at=now - timedelta(days=30),
                withdrawn_at=withdrawn_at,
            )
    campaign = _launch(org, recruiter_user)
    report = _send(org, campaign)
    with scopes_disabled():
        outcome = dict(Message.objects.values_list("candidate_id", "skip_reason"))
    assert report.sent == 1
    assert [m.to for m in mail.outbox] == [[consenting.email]]
    assert outcome == {
        consenting.pk: "",
        silent.pk: Message.SkipReason.NO_CONSENT,
        withdrawn.pk: Message.SkipReason.NO_CONSENT,
    }


def test_consent_pending_double_opt_in_blocks_campaign_email_even_when_not_required(
    org, recruiter_user
):
    _settings(org, consent_required=False)
    pending, other = make_candidates(org, 2)
    with scopes_disabled():
        Consent.objects.create(
            organization=org,
            candidate=pending,
            source="Web form",
            wording="Send me jobs.",
            requested_at=timezone.now(),
        )
    campaign = _launch(org, recruiter_user)
    _send(org, campaign)
    assert [m.to for m in mail.outbox] == [[other.email]]


def test_candidates_own_frequency_choice_holds_the_email_until_the_period_is_over(
    org, recruiter_user, monkeypatch
):
    weekly, anytime = make_candidates(org, 2)
    with scopes_disabled():
        CandidateEmailPreference.objects.create(
            organization=org, candidate=weekly, frequency="weekly"
        )
    earlier = _earlier_email(org, recruiter_user, weekly, days_ago=2)
    campaign = _launch(org, recruiter_user)

    report = _send(org, campaign)

    with scopes_disabled():
        waiting = Message.objects.get(campaign=campaign, candidate=weekly)
    assert (report.sent, report.held) == (1, 1)
    assert [m.to for m in mail.outbox] == [[anytime.email]]
    assert waiting.status == Message.Status.QUEUED
    assert waiting.next_attempt_at == earlier.sent_at + timedelta(days=7)
    assert waiting.last_error == guards.HOLD_CANDIDATE_FREQUENCY

    # A week after their last email, it goes.
    monkeypatch.setattr(timezone, "now", lambda: earlier.sent_at + timedelta(days=7, minutes=1))
    assert _send(org, campaign).sent == 1
    assert [m.to for m in mail.outbox] == [[anytime.email], [weekly.email]]


def test_candidates_own_frequency_choice_counts_another_workers_email_in_flight(
    org, recruiter_user
):
    """A "once a week" candidate: another worker is sending them another campaign's email
    right now. This one waits and is checked again shortly; once that email has gone, it
    waits the week."""
    (candidate,) = make_candidates(org, 1)
    with scopes_disabled():
        CandidateEmailPreference.objects.create(
            organization=org, candidate=candidate, frequency="weekly"
        )
    other = _earlier_email(org, recruiter_user, candidate, days_ago=0)
    with scopes_disabled():
        Message.objects.filter(pk=other.pk).update(
            status=Message.Status.SENDING, sent_at=None, claimed_at=timezone.now()
        )
    campaign = _launch(org, recruiter_user)

    before = timezone.now()
    report = _send(org, campaign)
    with scopes_disabled():
        held = Message.objects.get(campaign=campaign)
    assert (report.sent, report.held, len(mail.outbox)) == (0, 1, 0)
    assert held.last_error == guards.HOLD_CANDIDATE_FREQUENCY
    assert before + guards.IN_FLIGHT_RECHECK <= held.next_attempt_at
    assert held.next_attempt_at <= timezone.now() + guards.IN_FLIGHT_RECHECK

    # The other worker's email went out: now this one waits the candidate's week.
    sent_at = timezone.now()
    with scopes_disabled():
        Message.objects.filter(pk=other.pk).update(status=Message.Status.SENT, sent_at=sent_at)
        Message.objects.filter(pk=held.pk).update(next_attempt_at=timezone.now())
    report = _send(org, campaign)
    with scopes_disabled():
        held.refresh_from_db()
    assert (report.sent, report.held, len(mail.outbox)) == (0, 1, 0)
    assert held.next_attempt_at == sent_at + timedelta(days=7)


def test_sender_daily_cap_holds_the_rest_until_tomorrow(org, recruiter_user, monkeypatch):
    _settings(org, sender_daily_cap=2)
    make_candidates(org, 5)
    campaign = _launch(org, recruiter_user)
    start = timezone.now()

    report = _send(org, campaign)
    with scopes_disabled():
        waiting = list(Message.objects.filter(status=Message.Status.QUEUED))
    tomorrow = guards.next_local_midnight(org, start)
    assert (report.sent, report.held) == (2, 3)
    assert {m.next_attempt_at for m in waiting} == {tomorrow}
    assert {m.last_error for m in waiting} == {guards.HOLD_SENDER_CAP}

    # The next day (the clock is the outside world): two more go out, one still waits.
    monkeypatch.setattr(timezone, "now", lambda: tomorrow + timedelta(minutes=5))
    report = _send(org, campaign)
    assert (report.sent, report.held) == (2, 1)
    assert len(mail.outbox) == 4


def test_held_emails_are_explained_on_the_campaign_and_message_pages(
    org, recruiter_user, recruiter_client
):
    from django.urls import reverse

    _settings(org, sender_daily_cap=1)
    make_candidates(org, 3)
    campaign = _launch(org, recruiter_user)
    _send(org, campaign)
    tomorrow = guards.next_local_midnight(org, timezone.now())
    with scopes_disabled():
        held = Message.objects.filter(status=Message.Status.QUEUED).first()

    page = recruiter_client.get(reverse("campaigns:detail", args=[org.slug, campaign.pk]))
    detail = recruiter_client.get(
        reverse("campaigns:message_detail", args=[org.slug, campaign.pk, held.pk])
    ).content.decode()

    assert page.context["waiting"] == [
        {"reason": "the recruiter's daily cap", "count": 2, "first": tomorrow, "due": False}
    ]
    assert "Waiting to go out — nothing is lost" in page.content.decode()
    # Every enrollment is done (its email is written), but the broadcast is still sending.
    assert page.context["delivery"] == {
        "total": 3,
        "sent": 1,
        "waiting": 2,
        "in_outbox": 2,
        "not_sent": 0,
        "percent": 33,
    }
    assert "campaign-status-running" in page.content.decode()
    assert "Goes out" in detail and "Last error" not in detail


def test_sender_daily_cap_counts_each_recruiter_separately(org, recruiter_user, admin_user):
    _settings(org, sender_daily_cap=2)
    make_candidates(org, 3, tags=("first",))
    make_candidates(org, 3, tags=("second",))
    first = _launch(org, recruiter_user, tag="first", name="Rex's")
    second = _launch(org, admin_user, tag="second", name="Ada's")

    reports = [_send(org, first), _send(org, second)]

    assert [(r.sent, r.held) for r in reports] == [(2, 1), (2, 1)]
    with scopes_disabled():
        sent = list(Message.objects.filter(status=Message.Status.SENT))
    assert sorted(guards.recruiter_of(m) for m in sent) == [
        "ada.admin@acme.example",
        "ada.admin@acme.example",
        "rex.recruiter@acme.example",
        "rex.recruiter@acme.example",
    ]


def _domain(org, **fields) -> SendingDomain:
    with scopes_disabled():
        domain, _ = SendingDomain.objects.update_or_create(
            organization=org, domain="acme.example", defaults=fields
        )
    return domain


def test_warm_up_ramp_grows_every_day_until_the_target():
    domain = SendingDomain(
        warmup_started_on=date(2026, 3, 1),
        warmup_first_day=50,
        warmup_growth_percent=100,
        warmup_target_per_day=300,
    )
    allowances = [
        domains.warmup_allowance(domain=domain, day=date(2026, month, day))
        for month, day in ((2, 27), (3, 1), (3, 2), (3, 3), (3, 4), (4, 30))
    ]
    assert allowances == [50, 50, 100, 200, None, None]
    assert domains.warmup_schedule(domain=domain) == [
        (1, date(2026, 3, 1), 50),
        (2, date(2026, 3, 2), 100),
        (3, date(2026, 3, 3), 200),
    ]
    assert domains.warmup_finished_on(domain=domain) == date(2026, 3, 4)
    domain.warmup_growth_percent = 50
    assert domains.warmup_allowance(domain=domain, day=date(2026, 3, 3)) == 113  # 50, 75, 113
    domain.warmup_started_on = None
    assert domains.warmup_allowance(domain=domain, day=date(2026, 3, 3)) is None


def test_warm_up_limits_a_new_sending_domain_across_recruiters_then_sends_the_rest(
    org, recruiter_user, admin_user, monkeypatch
):
    _settings(org)  # no per-recruiter cap: only the domain's warm-up limits
    _domain(
        org,
        warmup_started_on=timezone.localdate(),
        warmup_first_day=2,
        warmup_growth_percent=100,
        warmup_target_per_day=1000,
    )
    make_candidates(org, 2, tags=("first",))
    make_candidates(org, 2, tags=("second",))
    first = _launch(org, recruiter_user, tag="first", name="Rex's")
    second = _launch(org, admin_user, tag="second", name="Ada's")
    start = timezone.now()

    reports = [_send(org, first), _send(org, second)]

    assert [(r.sent, r.held) for r in reports] == [(2, 0), (0, 2)]
    tomorrow = guards.next_local_midnight(org, start)
    with scopes_disabled():
        waiting = list(Message.objects.filter(status=Message.Status.QUEUED))
    assert {m.next_attempt_at for m in waiting} == {tomorrow}
    assert {m.last_error for m in waiting} == {guards.HOLD_DOMAIN_WARMUP}

    # Day two of the ramp (4 emails): the sweeper hands the waiting ones to a task, they go.
    monkeypatch.setattr(timezone, "now", lambda: tomorrow + timedelta(minutes=1))
    assert dispatch_due().requeued == 2
    assert _send(org).sent == 2
    with scopes_disabled():
        everyone = sorted(Message.objects.values_list("to_email", flat=True))
    assert sorted(m.to[0] for m in mail.outbox) == everyone


def test_warm_up_only_limits_its_own_domain(org, recruiter_user):
    with scopes_disabled():
        SendingDomain.objects.create(
            organization=org,
            domain="new.acme.example",
            warmup_started_on=timezone.localdate(),
            warmup_first_day=1,
            warmup_target_per_day=100,
        )
    make_candidates(org, 3)
    campaign = _launch(org, recruiter_user)  # sends from talent@acme.example
    assert (_send(org, campaign).sent, len(mail.outbox)) == (3, 3)


def test_warm_up_gives_back_allowance_a_recruiter_cap_did_not_use(org, recruiter_user, admin_user):
    _settings(org, sender_daily_cap=1)
    _domain(
        org,
        warmup_started_on=timezone.localdate(),
        warmup_first_day=2,
        warmup_target_per_day=1000,
    )
    make_candidates(org, 2, tags=("first",))
    make_candidates(org, 2, tags=("second",))
    first = _launch(org, recruiter_user, tag="first", name="Rex's")
    second = _launch(org, admin_user, tag="second", name="Ada's")

    reports = [_send(org, first), _send(org, second)]

    # Rex's cap held his second email: its share of the domain's allowance went to Ada.
    assert [(r.sent, r.held) for r in reports] == [(1, 1), (1, 1)]
    day = guards.local_day(org, timezone.now())
    assert domains.domain_day_used(organization_id=org.pk, domain="acme.example", day=day) == 2


@pytest.mark.django_db(transaction=True)
def test_warm_up_allowance_holds_across_workers_sending_at_once(org, recruiter_user):
    _domain(
        org,
        warmup_started_on=timezone.localdate(),
        warmup_first_day=5,
        warmup_target_per_day=1000,
    )
    make_candidates(org, 12)
    campaign = _launch(org, recruiter_user)
    with scopes_disabled():
        ids = list(Message.objects.filter(campaign=campaign).values_list("pk", flat=True))
    barrier = threading.Barrier(2)
    reports, errors = [], []

    def worker(half):
        try:
            barrier.wait()
            with scope(organization=org):
                reports.append(messages_send(organization=org, message_ids=half))
        except Exception as error:  # surfaced by the assertion below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(ids[i::2],)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert (sum(r.sent for r in reports), sum(r.held for r in reports)) == (5, 7)
    assert len(mail.outbox) == 5
    with scopes_disabled():
        statuses = sorted(Message.objects.values_list("status", flat=True))
    assert statuses == [Message.Status.QUEUED] * 7 + [Message.Status.SENT] * 5


@pytest.mark.parametrize("cap", [None, 0])
def test_sender_daily_cap_off_means_no_cap(org, recruiter_user, cap):
    if cap is not None:
        _settings(org, sender_daily_cap=cap)
    make_candidates(org, 3)
    campaign = _launch(org, recruiter_user)
    assert _send(org, campaign).sent == 3


def test_opting_out_while_a_chunk_is_sent_stops_the_rest_of_it(org, recruiter_user, monkeypatch):
    """A chunk of up to 500 emails reads its candidates' opt-outs again as it goes (here before
    every message; in production every 50 messages once a second has passed): someone who
    unsubscribes, or is marked "do not contact" or suppressed, while it goes out is not sent
    the rest of it."""
    from django.core.mail.backends.locmem import EmailBackend as LocmemBackend

    from campaigns.services import sending
    from campaigns.services.preferences import candidate_unsubscribe
    from candidates.models import Candidate

    monkeypatch.setattr(sending, "OPT_OUTS_REREAD_EVERY", 1)
    monkeypatch.setattr(sending, "OPT_OUTS_REREAD_SECONDS", 0)
    make_candidates(org, 4)
    campaign = _launch(org, recruiter_user)
    with scopes_disabled():
        queued = list(Message.objects.filter(campaign=campaign).order_by("pk"))
    first, unsubscribing, do_not_contact, suppressed = queued

    class OptOutsArriveMeanwhile(LocmemBackend):
        def send_messages(self, email_messages):
            sent = super().send_messages(email_messages)
            if len(mail.outbox) == 1:  # right after the first email was accepted
                with scopes_disabled():
                    candidate_unsubscribe(
                        candidate=unsubscribing.candidate, source="preference centre"
                    )
                    Candidate.objects.filter(pk=do_not_contact.candidate_id).update(
                        status=Candidate.Status.DO_NOT_CONTACT
                    )
                    Suppression.objects.create(
                        organization=org, email=suppressed.to_email, reason="manual"
                    )
            return sent

    with scope(organization=org):
        report = messages_send(
            organization=org,
            message_ids=[m.pk for m in queued],
            connection=OptOutsArriveMeanwhile(),
        )

    assert [email.to for email in mail.outbox] == [[first.to_email]]
    assert report.sent == 1
    with scopes_disabled():
        reasons = dict(Message.objects.filter(campaign=campaign).values_list("pk", "skip_reason"))
    assert reasons == {
        first.pk: "",
        # An unsubscribe also suppresses the address, which is checked first.
        unsubscribing.pk: Message.SkipReason.SUPPRESSED,
        do_not_contact.pk: Message.SkipReason.DO_NOT_CONTACT,
        suppressed.pk: Message.SkipReason.SUPPRESSED,
    }


# --- daily allowances count the emails that went out ---


def test_warm_up_allowance_of_emails_the_provider_throttled_is_given_back(
    org, recruiter_user, postmark
):
    """A provider's 429 sends nothing: the warm-up allowance the chunk took is handed back,
    so the emails go out when the provider accepts again, the same day — not tomorrow."""
    _domain(
        org,
        warmup_started_on=timezone.localdate(),
        warmup_first_day=5,
        warmup_target_per_day=1000,
    )
    make_candidates(org, 5)
    campaign = _launch(org, recruiter_user)
    day = guards.local_day(org, timezone.now())
    postmark.answers = [429]

    report = _send(org, campaign)

    assert (report.sent, report.provider_throttled) == (0, 5)
    assert domains.domain_day_used(organization_id=org.pk, domain="acme.example", day=day) == 0
    with scopes_disabled():
        Message.objects.filter(campaign=campaign).update(next_attempt_at=timezone.now())
    assert _send(org, campaign).sent == 5
    assert domains.domain_day_used(organization_id=org.pk, domain="acme.example", day=day) == 5


def test_sender_daily_cap_counts_emails_sent_or_failed_for_good_not_retries(
    org, recruiter_user, settings
):
    """A transient failure gives the recruiter's daily slot back (the retry takes one when it
    goes); an email that failed for good keeps its slot: the provider was asked to deliver it."""
    settings.EMAIL_BACKEND = "campaigns.tests.backends.ScriptedBackend"
    _settings(org, sender_daily_cap=3)
    make_candidates(org, 3)
    campaign = _launch(org, recruiter_user)
    with scopes_disabled():
        bouncing = Message.objects.filter(campaign=campaign).order_by("pk").first()
    ScriptedBackend.script = [hard_bounce(bouncing.to_email), deferred(), None]

    report = _send(org, campaign)

    assert (report.sent, report.failed, report.retried) == (1, 1, 1)
    # The retry is due: it goes out today, the day's third.
    with scopes_disabled():
        Message.objects.filter(status=Message.Status.QUEUED).update(next_attempt_at=timezone.now())
    assert (_send(org, campaign).sent, len(mail.outbox)) == (1, 2)
    # Three used (the bounce, the first and the retried email): a fourth waits for tomorrow.
    make_candidates(org, 1, tags=("later",))
    later = _launch(org, recruiter_user, tag="later", name="Later")
    report = _send(org, later)
    assert (report.sent, report.held) == (0, 1)


def test_warm_up_allowance_of_an_email_skipped_mid_chunk_is_given_back(
    org, recruiter_user, monkeypatch
):
    from django.core.mail.backends.locmem import EmailBackend as LocmemBackend

    from campaigns.services import sending
    from campaigns.services.preferences import candidate_unsubscribe

    monkeypatch.setattr(sending, "OPT_OUTS_REREAD_EVERY", 1)
    monkeypatch.setattr(sending, "OPT_OUTS_REREAD_SECONDS", 0)
    _domain(
        org,
        warmup_started_on=timezone.localdate(),
        warmup_first_day=3,
        warmup_target_per_day=1000,
    )
    make_candidates(org, 3)
    campaign = _launch(org, recruiter_user)
    with scopes_disabled():
        queued = list(Message.objects.filter(campaign=campaign).order_by("pk"))

    class UnsubscribeMeanwhile(LocmemBackend):
        def send_messages(self, email_messages):
            sent = super().send_messages(email_messages)
            if len(mail.outbox) == 1:
                with scopes_disabled():
                    candidate_unsubscribe(candidate=queued[1].candidate, source="preference centre")
            return sent

    with scope(organization=org):
        report = messages_send(
            organization=org,
            message_ids=[m.pk for m in queued],
            connection=UnsubscribeMeanwhile(),
        )

    assert (report.sent, report.skipped) == (2, 1)
    day = guards.local_day(org, timezone.now())
    assert domains.domain_day_used(organization_id=org.pk, domain="acme.example", day=day) == 2
