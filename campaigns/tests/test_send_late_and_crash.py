"""A sequence's email whose send task runs late waits for the sending window, and a hard bounce
is recorded the moment it happens, so that a crash in the middle of a chunk cannot lose it.

* The window is checked at send time, not only by the dispatcher's sweep: a send task that runs
  at night (its worker was down, a big broadcast was queued ahead of it) holds a sequence's
  email until the window's next opening, in the candidate's time zone when the sequence uses it;
  a chunk that runs past the window's end holds the rest of it. Broadcasts have no window, and a
  recruiter's test email goes whenever it is asked for.
* A hard bounce suppresses the address, marks the email `bounced` and stops the enrollment at
  once: a worker that dies, or a database connection lost, later in the chunk no longer leaves
  the address unsuppressed and the sequence emailing it.

The outside world: the clock (frozen, moved on by the tests), an SMTP relay (aiosmtpd) that
refuses one address with a 550, an ESP backend that refuses one and then loses its worker, and
a second database connection that terminates the worker's (`pg_terminate_backend`), as a
database restart or a network failure would. The dispatcher, the send path, PostgreSQL and
Redis are real."""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from anymail.exceptions import AnymailRecipientsRefused
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from analytics.models import EngagementEvent
from campaigns.conf import send_lease_seconds
from campaigns.models import Enrollment, Message, Suppression
from campaigns.services import guards, sending
from campaigns.services.campaigns import campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.services.sending import messages_send
from campaigns.services.templates import email_send_test
from campaigns.tests.factories import make_broadcast, make_candidates, send_all, smtp_relay
from campaigns.tests.test_sequences import TUESDAY_10, launched, make_sequence, timeline
from candidates.models import Activity

# Tuesday 3 March 2026 (London is on GMT: UTC+0; New York on EST: UTC-5 until 8 March).
TUESDAY_2330 = datetime(2026, 3, 3, 23, 30, tzinfo=UTC)
WEDNESDAY_9 = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)


class Clock:
    now = TUESDAY_10


@pytest.fixture
def clock(monkeypatch):
    """`timezone.now()` frozen at `clock.now` (Tuesday 10:00 unless a test moves it)."""
    frozen = Clock()
    monkeypatch.setattr(timezone, "now", lambda: frozen.now)
    return frozen


def _messages(campaign) -> list[Message]:
    with scopes_disabled():
        return list(Message.objects.filter(campaign=campaign).order_by("pk"))


def _send(org, message_ids, connection=None):
    with scope(organization=org):
        return messages_send(organization=org, message_ids=message_ids, connection=connection)


# ---- the sending window at send time ----


def test_sequence_email_whose_task_runs_at_night_waits_for_the_window(org, recruiter_user, clock):
    campaign, _ = launched(org, recruiter_user, [{}])  # Monday to Friday, 9:00 to 17:00
    dispatch_due(now=TUESDAY_10)  # rendered Tuesday 10:00; its send task runs at 23:30
    clock.now = TUESDAY_2330

    report = send_all(org, campaign)

    (message,) = _messages(campaign)
    assert (report.claimed, report.sent, report.held) == (1, 0, 1)
    assert mail.outbox == []
    assert (message.status, message.next_attempt_at, message.last_error, message.attempts) == (
        Message.Status.QUEUED,
        WEDNESDAY_9,
        guards.HOLD_SENDING_WINDOW,
        0,
    )

    clock.now = WEDNESDAY_9 - timedelta(minutes=1)
    assert (dispatch_due(now=clock.now).requeued, send_all(org, campaign).sent) == (0, 0)
    clock.now = WEDNESDAY_9
    assert dispatch_due(now=clock.now).requeued == 1
    assert send_all(org, campaign).sent == 1
    assert [m.to for m in mail.outbox] == [[message.to_email]]


def test_sequence_email_at_night_waits_in_the_candidates_time_zone(org, recruiter_user, clock):
    (in_new_york,) = make_candidates(org, 1, time_zone="America/New_York")
    (in_london,) = make_candidates(org, 1)  # no time zone: the organisation's, London
    campaign = make_sequence(org, user=recruiter_user, steps=[{}], use_candidate_time_zone=True)
    tuesday_14 = TUESDAY_10 + timedelta(hours=4)  # 09:00 in New York, 14:00 in London
    with scopes_disabled():
        campaign_launch(campaign=campaign, user=recruiter_user, now=TUESDAY_10)
    dispatch_due(now=tuesday_14)
    clock.now = TUESDAY_10 + timedelta(hours=11, minutes=30)  # 16:30 in New York, 21:30 here

    report = send_all(org, campaign)

    statuses = {m.candidate_id: (m.status, m.next_attempt_at) for m in _messages(campaign)}
    assert (report.sent, report.held) == (1, 1)
    assert statuses == {
        in_new_york.pk: (Message.Status.SENT, None),
        in_london.pk: (Message.Status.QUEUED, WEDNESDAY_9),
    }
    assert [m.to for m in mail.outbox] == [[in_new_york.email]]


def test_broadcasts_and_test_emails_go_out_at_night(org, recruiter_user, clock):
    clock.now = TUESDAY_2330
    make_candidates(org, 1, tags=("news",))
    broadcast = make_broadcast(org, user=recruiter_user, tag="news")
    sequence = make_sequence(org, user=recruiter_user, steps=[{}])
    with scopes_disabled():
        campaign_launch(campaign=broadcast, user=recruiter_user)
    dispatch_due(now=TUESDAY_2330)
    with scope(organization=org):
        test_email = email_send_test(
            organization=org,
            user=recruiter_user,
            subject="Hello",
            preheader="",
            body_markdown="Hi {{ first_name }}",
            campaign=sequence,
        )
    (broadcast_email,) = _messages(broadcast)

    report = _send(org, [broadcast_email.pk, test_email.pk])

    assert (report.sent, report.held) == (2, 0)
    assert {m.status for m in [*_messages(broadcast), *_messages(sequence)]} == {"sent"}


class SlowServer(LocmemBackend):
    """An email server that takes a second to accept each email (the clock is moved on)."""

    def __init__(self, clock, **kwargs):
        super().__init__(**kwargs)
        self.clock = clock

    def send_messages(self, messages):
        self.clock.now += timedelta(seconds=len(messages))
        return super().send_messages(messages)


def test_chunk_that_runs_past_the_window_end_holds_the_rest(
    org, recruiter_user, clock, monkeypatch
):
    # The chunk reads again what may stop its emails after every email here (by default every
    # 50 emails, once a second has passed).
    monkeypatch.setattr(sending, "OPT_OUTS_REREAD_EVERY", 1)
    monkeypatch.setattr(sending, "OPT_OUTS_REREAD_SECONDS", 0)
    campaign, _ = launched(org, recruiter_user, [{}], candidates=3)
    dispatch_due(now=TUESDAY_10)
    clock.now = TUESDAY_10 + timedelta(hours=6, minutes=59, seconds=59)  # 16:59:59

    report = _send(org, [m.pk for m in _messages(campaign)], connection=SlowServer(clock))

    first, *rest = _messages(campaign)
    assert (report.sent, report.held) == (1, 2)
    assert first.status == Message.Status.SENT
    assert [(m.status, m.next_attempt_at) for m in rest] == [("queued", WEDNESDAY_9)] * 2
    assert len(mail.outbox) == 1


def _queries_to_hold_at_night(org, user, clock, recipients: int) -> tuple[tuple[int, int], int]:
    """A sequence's emails rendered on Tuesday at 10:00, their send task run at 23:30: each
    waits for the window's next opening in its candidate's time zone (`sending._within_window`
    reads the campaign's window, the organisation's and the candidate's time zone)."""
    tag = f"n{recipients}"
    make_candidates(org, recipients, tags=(tag,), time_zone="Europe/Paris")
    campaign = make_sequence(org, user=user, steps=[{}], tag=tag, name=tag)
    clock.now = TUESDAY_10
    with scopes_disabled():
        campaign_launch(campaign=campaign, user=user, now=TUESDAY_10)
    dispatch_due(now=TUESDAY_10)
    clock.now = TUESDAY_2330
    with CaptureQueriesContext(connection) as queries:
        report = _send(org, [m.pk for m in _messages(campaign)])
    return (report.sent, report.held), len(queries)


def test_queries_do_not_grow_with_the_emails_held_for_the_window(
    org, recruiter_user, admin_user, clock
):
    outcome_few, few = _queries_to_hold_at_night(org, recruiter_user, clock, 2)
    outcome_many, many = _queries_to_hold_at_night(org, admin_user, clock, 6)
    assert (outcome_few, outcome_many) == ((0, 2), (0, 6))
    assert many == few


# ---- a hard bounce is recorded at once ----


def _terminate_backend(params: dict, pid: int) -> None:
    """From another connection, end the worker's database session (`pid`), as a database
    restart or a network failure would; returns once it is gone."""
    with psycopg.connect(
        dbname=params["NAME"],
        user=params["USER"],
        password=params["PASSWORD"] or None,
        host=params["HOST"],
        port=params["PORT"] or None,
        autocommit=True,
    ) as other:
        other.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])


class BouncingRelay:
    """An SMTP relay that answers 550 (no such user) to one address and accepts the others;
    after accepting `lose_database_after` emails it calls `lose_database` (before answering,
    while the worker waits for the answer)."""

    def __init__(self):
        self.dead = ""
        self.lose_database_after = 0
        self.lose_database = None
        self.refused: list[str] = []
        self.received: list[str] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == self.dead:
            self.refused.append(address)
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.extend(envelope.rcpt_tos)
        if self.lose_database_after and len(self.received) == self.lose_database_after:
            self.lose_database()
        return "250 OK"


@pytest.fixture
def relay(settings):
    with smtp_relay(settings, BouncingRelay()) as handler:
        yield handler


def _emails_sent_on_timeline(candidate) -> int:
    with scopes_disabled():
        return Activity.objects.filter(candidate=candidate, kind=Activity.Kind.EMAIL_SENT).count()


@pytest.mark.django_db(transaction=True)
def test_hard_bounce_is_recorded_before_the_database_connection_is_lost(
    org, recruiter_user, clock, relay
):
    campaign, people = launched(
        org, recruiter_user, [{}, {"delay": timedelta(days=1)}], candidates=3
    )
    dispatch_due(now=TUESDAY_10)
    first, bouncing, third = _messages(campaign)
    relay.dead = bouncing.to_email
    relay.lose_database_after = 2  # the first and the third email are accepted
    connection.ensure_connection()
    worker = (dict(connection.settings_dict), connection.connection.info.backend_pid)
    relay.lose_database = lambda: _terminate_backend(*worker)

    with pytest.raises(DatabaseError):
        send_all(org, campaign)
    connection.close()  # the broken session; the next query opens a new one

    first, bouncing, third = _messages(campaign)
    with scopes_disabled():
        suppression = Suppression.objects.get(email=bouncing.to_email.lower())
        enrollment = Enrollment.objects.get(pk=bouncing.enrollment_id)
        sent_events = EngagementEvent.objects.filter(kind="sent").count()
    assert relay.refused == [bouncing.to_email]
    assert (first.status, bouncing.status, third.status) == ("sent", "bounced", "sending")
    assert "550" in bouncing.last_error
    assert (suppression.reason, "User unknown" in suppression.detail) == ("bounced", True)
    assert (enrollment.status, enrollment.stop_reason) == ("stopped", "bounced")
    dead = next(p for p in people if p.pk == bouncing.candidate_id)
    assert timeline(dead) == ["Left the campaign “Platform nurture”: their address bounced"]
    # What the crash loses (docs/campaigns.md, "The crash window"): the derived records of the
    # email sent before it — its engagement event, its timeline entry.
    sent_to = next(p for p in people if p.pk == first.candidate_id)
    assert (sent_events, _emails_sent_on_timeline(sent_to)) == (0, 0)

    # The next day the sequence's second step goes to the others, never to the dead address.
    clock.now = TUESDAY_10 + timedelta(days=1, seconds=send_lease_seconds())
    dispatch_due(now=clock.now)
    with scopes_disabled():
        to_dead = Message.objects.filter(to_email=bouncing.to_email).count()
        second_steps = Message.objects.filter(campaign=campaign, step__position=2).count()
    assert (to_dead, second_steps) == (1, 1)


class WorkerLost(BaseException):
    """The worker process is killed (SIGKILL, out of memory): nothing after this line runs."""


class RefusingEsp(LocmemBackend):
    """An ESP's backend that refuses one address (anymail's AnymailRecipientsRefused: the ESP
    says the address is invalid) and accepts the others; the worker is lost as soon as it has
    handed over `lose_worker_after` emails."""

    def __init__(self, *, dead: str, lose_worker_after: int, **kwargs):
        super().__init__(**kwargs)
        self.dead = dead
        self.lose_worker_after = lose_worker_after
        self.accepted = 0

    def send_messages(self, messages):
        if self.accepted == self.lose_worker_after:
            raise WorkerLost
        if messages[0].to == [self.dead]:
            raise AnymailRecipientsRefused(f"Invalid recipient: {self.dead}")
        self.accepted += len(messages)
        return super().send_messages(messages)


def test_hard_bounce_from_an_esp_is_recorded_before_the_worker_is_lost(org, recruiter_user, clock):
    campaign, _ = launched(org, recruiter_user, [{}, {"delay": timedelta(days=1)}], candidates=3)
    dispatch_due(now=TUESDAY_10)
    bouncing = _messages(campaign)[0]
    esp = RefusingEsp(dead=bouncing.to_email, lose_worker_after=1)

    with pytest.raises(WorkerLost):
        _send(org, [m.pk for m in _messages(campaign)], connection=esp)

    bouncing, sent, lost_with_the_worker = _messages(campaign)
    with scopes_disabled():
        suppressed = list(Suppression.objects.values_list("email", "reason"))
        enrollment = Enrollment.objects.get(pk=bouncing.enrollment_id)
    assert (bouncing.status, sent.status, lost_with_the_worker.status) == (
        "bounced",
        "sent",
        "sending",
    )
    assert suppressed == [(bouncing.to_email.lower(), "bounced")]
    assert (enrollment.status, enrollment.stop_reason) == ("stopped", "bounced")


def test_a_bounce_spares_the_rest_of_the_chunk_to_the_same_address(
    org, recruiter_user, in_org, relay
):
    (candidate,) = make_candidates(org, 1, tags=("news",))
    campaigns = [
        make_broadcast(org, user=recruiter_user, tag="news", name=name) for name in ("A", "B")
    ]
    with in_org():
        for campaign in campaigns:
            campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
    relay.dead = candidate.email
    ids = [m.pk for campaign in campaigns for m in _messages(campaign)]

    report = _send(org, ids)

    with scopes_disabled():
        outcome = list(
            Message.objects.filter(pk__in=ids).order_by("pk").values_list("status", "skip_reason")
        )
    assert relay.refused == [candidate.email]  # asked once, not once per email
    assert outcome == [("bounced", ""), ("skipped", "suppressed")]
    assert (report.failed, report.skipped) == (1, 1)
