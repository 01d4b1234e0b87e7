"""Buffered open/click tracking: the flush loses nothing when it crashes and writes nothing twice;
a batch that keeps failing is moved aside; machine opens and clicks are flagged with their reason
and not counted, also when a scanner's clicks straddle a flush (clicks wait until they have
settled); the trap link; open tracking switched off; no open redirect. The clock (Django's
`timezone.now`, which stamps the buffered events) is frozen and moved on by the tests."""

import json
import logging
from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.http import int_to_base36
from django_scopes import scopes_disabled

from analytics.models import EngagementEvent
from campaigns.models import EmailSettings, Message
from campaigns.selectors import campaign_machine_engagement
from campaigns.services import tokens, tracking
from campaigns.services.campaigns import campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.tests.factories import make_broadcast, make_candidates
from campaigns.tests.tracking_links import click_paths, pixel_path, trap_path
from candidates.models import Activity

HUMAN = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko)"
BODY = (
    'Hi {{ first_name|default("there") }}, three roles: '
    "[one](https://jobs.example.com/1), [two](https://jobs.example.com/2) and "
    "[three](https://jobs.example.com/3)."
)
GOOGLE_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)


class Clock:
    def __init__(self):
        self.now = timezone.now()

    def move(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):
    """`timezone.now()` frozen at the start of the test; `clock.move(...)` moves it on."""
    frozen = Clock()
    monkeypatch.setattr(timezone, "now", lambda: frozen.now)
    return frozen


def flush_settled(clock):
    """The beat's flush once the clicks so far have settled."""
    clock.move(seconds=tracking.CLICK_HOLD_SECONDS + 1)
    return tracking.tracking_flush()


def _launch(org, recruiter_user, in_org, count=1, *, track_opens=True):
    candidates = make_candidates(org, count)
    campaign = make_broadcast(org, user=recruiter_user, body=BODY)
    with in_org():
        if not track_opens:
            EmailSettings.objects.create(organization=org, track_opens=False)
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
        Message.objects.filter(campaign=campaign).update(
            status="sent", sent_at=timezone.now() - timedelta(minutes=10)
        )
        messages = list(Message.objects.filter(campaign=campaign).order_by("pk"))
    assert len(messages) == len(candidates)
    return campaign, messages


@pytest.fixture
def sent(org, recruiter_user, in_org):
    return _launch(org, recruiter_user, in_org, 3)


def _events(in_org, **filters):
    with in_org():
        return list(
            EngagementEvent.objects.filter(**filters)
            .order_by("pk")
            .values_list("kind", "is_machine", "machine_reason")
        )


# --- the buffer and the flush --------------------------------------------------------------------


def test_open_is_buffered_then_written_by_the_flush(sent, client, in_org):
    _, messages = sent
    response = client.get(pixel_path(messages[0]), headers={"user-agent": HUMAN})
    assert response.status_code == 200
    assert tracking.buffered_count() == 1
    assert _events(in_org) == []

    report = tracking.tracking_flush()

    assert (report.events, report.written, report.first_opens) == (1, 1, 1)
    assert tracking.buffered_count() == 0
    assert _events(in_org) == [("opened", False, "")]


def test_flush_after_a_crash_mid_batch_loses_nothing(sent, client, in_org):
    _, messages = sent
    for message in messages:
        client.get(pixel_path(message), headers={"user-agent": HUMAN})
    # A flusher took the batch off the buffer and died before writing it.
    claimed = tracking.tracking_batch_claim(size=2)
    assert len(claimed) == 2
    assert tracking.buffered_count() == 3

    report = tracking.tracking_flush()

    assert (report.events, report.written, report.batches) == (3, 3, 2)
    assert tracking.buffered_count() == 0
    assert len(_events(in_org, kind="opened")) == 3
    with in_org():
        assert Message.objects.filter(opened_at__isnull=False).count() == 3
        assert Activity.objects.filter(kind=Activity.Kind.EMAIL_OPENED).count() == 3


def test_flush_after_a_crash_between_commit_and_ack_writes_nothing_twice(
    sent, client, in_org, clock
):
    _, messages = sent
    client.get(pixel_path(messages[0]), headers={"user-agent": HUMAN})
    client.get(click_paths(messages[0])[0], headers={"user-agent": HUMAN})
    clock.move(seconds=tracking.CLICK_HOLD_SECONDS + 1)
    # A flusher wrote the batch (committed) and died before removing it from processing.
    first = tracking.tracking_batch_write(tracking.tracking_batch_claim())
    assert first.written == 2

    again = tracking.tracking_flush()

    assert (again.events, again.written, again.first_opens, again.first_clicks) == (2, 0, 0, 0)
    assert tracking.buffered_count() == 0
    assert _events(in_org) == [("opened", False, ""), ("clicked", False, "")]
    with in_org():
        assert Activity.objects.filter(kind=Activity.Kind.EMAIL_OPENED).count() == 1
        assert Activity.objects.filter(kind=Activity.Kind.EMAIL_CLICKED).count() == 1


def test_claim_moves_a_large_batch_in_order_and_leaves_the_rest():
    client = tracking._redis()
    events = [f"event-{n}".encode() for n in range(2500)]
    client.rpush(tracking._buffer_key(), *events)

    claimed = tracking.tracking_batch_claim(size=2200)

    assert claimed == events[:2200]
    assert client.lrange(tracking._processing_key(), 0, -1) == events[:2200]
    assert client.lrange(tracking._buffer_key(), 0, -1) == events[2200:]
    # Until it is acknowledged, the same batch is claimed again (a dead flusher's batch).
    assert tracking.tracking_batch_claim(size=10) == events[:2200]
    tracking.tracking_batch_ack()
    assert tracking.tracking_batch_claim(size=1000) == events[2200:]


def test_flush_runs_one_at_a_time(sent, client):
    _, messages = sent
    client.get(pixel_path(messages[0]), headers={"user-agent": HUMAN})
    lock_key = tracking._buffer_key() + ":lock"
    tracking._redis().set(lock_key, "another-flusher", ex=60)

    blocked = tracking.tracking_flush()
    tracking._redis().delete(lock_key)
    done = tracking.tracking_flush()

    assert (blocked.locked, blocked.events) == (True, 0)
    assert (done.locked, done.written) == (False, 1)


def _buffer_raw(message, **fields):
    """An event as the endpoints buffer it (or as an earlier version of them did)."""
    event = {
        "k": "opened",
        "o": message.organization_id,
        "c": message.candidate_id,
        "m": message.pk,
        "ua": HUMAN,
        "ip": "203.0.113.9",
        "id": f"raw-{message.pk}",
        "t": timezone.now().timestamp(),
    }
    event.update(fields)
    tracking._redis().rpush(tracking._buffer_key(), json.dumps(event, separators=(",", ":")))


def test_nul_in_the_user_agent_is_recorded_without_it(sent, client, in_org):
    _, messages = sent
    client.get(pixel_path(messages[0]), headers={"user-agent": HUMAN})
    client.get(pixel_path(messages[1]), HTTP_USER_AGENT="Mozilla\x00/5.0 (X11) evil")
    # Buffered before the endpoints stripped it: the flush strips it too.
    _buffer_raw(messages[2], ua="Mozilla/5.0 \x00(X11)")

    report = tracking.tracking_flush()

    assert (report.events, report.written) == (3, 3)
    assert tracking.buffered_count() == 0
    with in_org():
        agents = list(
            EngagementEvent.objects.order_by("message_id").values_list(
                "data__user_agent", flat=True
            )
        )
    assert agents == [HUMAN, "Mozilla/5.0 (X11) evil", "Mozilla/5.0 (X11)"]


def test_a_batch_that_keeps_failing_goes_to_the_dead_letter_list(sent, client, in_org, caplog):
    _, messages = sent
    # An event PostgreSQL refuses (a message id beyond bigint): its batch fails every time.
    _buffer_raw(messages[0], m=2**63)
    poisoned = tracking._redis().lrange(tracking._buffer_key(), 0, -1)
    failures = []
    for _ in range(tracking.FLUSH_BATCH_ATTEMPTS - 1):
        with pytest.raises(Exception) as error:
            tracking.tracking_flush()
        failures.append(type(error.value).__name__)
        # Meanwhile the next opens come in and wait behind the failing batch.
        client.get(pixel_path(messages[len(failures)]), headers={"user-agent": HUMAN})

    with caplog.at_level(logging.ERROR, logger="campaigns.services.tracking"):
        report = tracking.tracking_flush()

    assert failures == ["DataError"] * (tracking.FLUSH_BATCH_ATTEMPTS - 1)
    assert (report.dead_letters, report.written, report.first_opens) == (1, 2, 2)
    assert tracking._redis().lrange(tracking._dead_letter_key(), 0, -1) == poisoned
    assert tracking.buffered_count() == 0
    assert len(_events(in_org, kind="opened")) == 2
    assert "moved to the dead-letter list" in caplog.text


def test_dead_letters_are_shown_and_put_back_for_the_next_flush(sent, in_org):
    """An operator's way back once what made a batch fail is fixed: the command lists the
    dead-letter list, then --requeue puts it in front of the buffer, in its order."""
    from io import StringIO

    from django.core.management import call_command

    _, messages = sent
    # Two good opens that a failing batch took with it to the dead-letter list.
    for message in messages[:2]:
        _buffer_raw(message)
    client = tracking._redis()
    moved = client.lrange(tracking._buffer_key(), 0, -1)
    client.delete(tracking._buffer_key())
    client.rpush(tracking._dead_letter_key(), *moved)
    _buffer_raw(messages[2])  # a later event, already waiting

    shown = StringIO()
    call_command("tracking_dead_letters", stdout=shown)
    requeued = StringIO()
    call_command("tracking_dead_letters", "--requeue", stdout=requeued)

    assert "2 tracking events wait in the dead-letter list" in shown.getvalue()
    assert f"opened message {messages[0].pk}" in shown.getvalue()
    assert "2 events are back in the buffer" in requeued.getvalue()
    assert client.lrange(tracking._buffer_key(), 0, 1) == moved
    assert client.llen(tracking._dead_letter_key()) == 0
    report = tracking.tracking_flush()
    assert (report.written, report.first_opens) == (3, 3)
    assert len(_events(in_org, kind="opened")) == 3
    empty = StringIO()
    call_command("tracking_dead_letters", stdout=empty)
    assert "No tracking events wait" in empty.getvalue()


def test_flush_lock_is_renewed_only_by_the_flusher_holding_it():
    client = tracking._redis()
    lock_key = tracking._buffer_key() + ":lock"
    client.set(lock_key, "this-flusher", ex=5)

    kept = tracking.tracking_lock_renew(token="this-flusher")
    ttl = client.ttl(lock_key)
    client.set(lock_key, "another-flusher", ex=5)
    lost = tracking.tracking_lock_renew(token="this-flusher")

    assert (kept, ttl > 5) == (True, True)
    assert (lost, client.get(lock_key), client.ttl(lock_key) <= 5) == (
        False,
        b"another-flusher",
        True,
    )


def test_flush_drops_events_of_a_message_of_another_organisation(sent, client, in_org, other_org):
    _, messages = sent
    forged = tokens.token_make(
        salt=tokens.OPEN_SALT,
        organization_id=other_org.pk,
        candidate_id=messages[0].candidate_id,
        message_id=messages[0].pk,
    )
    client.get(f"/e/o/{forged}.gif", headers={"user-agent": HUMAN})

    report = tracking.tracking_flush()

    assert (report.events, report.dropped, report.written) == (1, 1, 0)
    assert _events(in_org) == []


def test_flush_records_events_for_the_messages_candidate_not_the_tokens(sent, client, in_org):
    # Only a merge makes the two differ (test_merge_tokens.py); the message's candidate counts.
    _, messages = sent
    token = tokens.token_make(
        salt=tokens.OPEN_SALT,
        organization_id=messages[0].organization_id,
        candidate_id=messages[1].candidate_id,
        message_id=messages[0].pk,
    )
    client.get(f"/e/o/{token}.gif", headers={"user-agent": HUMAN})

    report = tracking.tracking_flush()

    assert (report.events, report.dropped, report.written) == (1, 0, 1)
    with in_org():
        event = EngagementEvent.objects.get()
    assert (event.message_id, event.candidate_id) == (messages[0].pk, messages[0].candidate_id)


# --- machine opens and clicks --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_agent", "ip", "reason"),
    [
        ("Mozilla/5.0", "203.0.113.9", "apple_privacy_proxy"),
        (HUMAN, "17.58.101.12", "apple_privacy_proxy"),
        (GOOGLE_PROXY, "66.249.84.1", "google_image_proxy"),
        ("Mozilla/5.0 (compatible; Barracuda Sentinel)", "203.0.113.9", "scanner_user_agent"),
        ("python-requests/2.31", "203.0.113.9", "scanner_user_agent"),
        ("", "203.0.113.9", "no_user_agent"),
        (HUMAN, "203.0.113.9", ""),
    ],
)
def test_open_classification(sent, client, in_org, user_agent, ip, reason):
    _, messages = sent
    client.get(pixel_path(messages[0]), headers={"user-agent": user_agent}, REMOTE_ADDR=ip)
    tracking.tracking_flush()
    assert _events(in_org) == [("opened", bool(reason), reason)]
    with in_org():
        messages[0].refresh_from_db()
    assert (messages[0].opened_at is not None) == (not reason)


def test_open_seconds_after_the_send_is_a_scanner(sent, client, in_org):
    _, messages = sent
    with in_org():
        Message.objects.filter(pk=messages[0].pk).update(sent_at=timezone.now())
    client.get(pixel_path(messages[0]), headers={"user-agent": HUMAN})
    tracking.tracking_flush()
    assert _events(in_org) == [("opened", True, "seconds_after_send")]


def test_clicks_on_many_links_within_a_second_are_a_machine(sent, client, in_org, clock):
    _, messages = sent
    links = click_paths(messages[0])
    assert len(links) >= 3
    for path in links[:3]:
        assert client.get(path, headers={"user-agent": HUMAN}).status_code == 302

    flush_settled(clock)

    assert _events(in_org) == [("clicked", True, "many_links_at_once")] * 3
    with in_org():
        messages[0].refresh_from_db()
        assert Activity.objects.filter(kind=Activity.Kind.EMAIL_CLICKED).count() == 0
    assert messages[0].clicked_at is None


def test_a_burst_split_over_two_flushes_is_still_a_machine(sent, client, in_org, clock):
    _, messages = sent
    links = click_paths(messages[0])
    client.get(links[0], headers={"user-agent": HUMAN})
    clock.move(seconds=0.3)
    tracking.tracking_flush()  # the beat's flush, between the scanner's clicks
    clock.move(seconds=0.3)
    for path in links[1:3]:
        client.get(path, headers={"user-agent": HUMAN})
    tracking.tracking_flush()
    flush_settled(clock)

    assert _events(in_org) == [("clicked", True, "many_links_at_once")] * 3
    with in_org():
        messages[0].refresh_from_db()
        assert Activity.objects.filter(kind=Activity.Kind.EMAIL_CLICKED).count() == 0
    assert messages[0].clicked_at is None


def test_a_burst_straddling_the_settling_time_is_still_a_machine(sent, client, in_org, clock):
    # The flush takes the first click (settled) while the rest of the burst still waits: it is
    # classified with the waiting clicks, and they later with it.
    _, messages = sent
    links = click_paths(messages[0])
    client.get(links[0], headers={"user-agent": HUMAN})
    clock.move(seconds=0.6)
    for path in links[1:3]:
        client.get(path, headers={"user-agent": HUMAN})
    clock.move(seconds=tracking.CLICK_HOLD_SECONDS - 0.3)

    first = tracking.tracking_flush()
    waiting = tracking.buffered_count()
    clock.move(seconds=1)
    second = tracking.tracking_flush()

    assert (first.written, waiting, second.written) == (1, 2, 2)
    assert _events(in_org) == [("clicked", True, "many_links_at_once")] * 3
    with in_org():
        messages[0].refresh_from_db()
    assert messages[0].clicked_at is None


def test_a_trap_click_seconds_later_flags_the_click_a_flush_saw_before_it(
    sent, client, in_org, clock
):
    # A scanner follows the links in the order of the email, the trap last, 9 seconds apart;
    # beat flushes every 3 seconds all along.
    _, messages = sent
    client.get(click_paths(messages[0])[0], headers={"user-agent": HUMAN})
    for second in range(3, 31, 3):
        clock.move(seconds=3)
        if second == 9:
            client.get(trap_path(messages[0]), headers={"user-agent": HUMAN})
        tracking.tracking_flush()

    assert _events(in_org) == [
        ("clicked", True, "trap_link_scanner"),
        ("clicked", True, "trap_link"),
    ]
    with in_org():
        messages[0].refresh_from_db()
        assert Activity.objects.filter(kind=Activity.Kind.EMAIL_CLICKED).count() == 0
    assert messages[0].clicked_at is None


def test_trap_link_is_invisible_and_flags_the_scanner(sent, client, in_org, clock):
    _, messages = sent
    assert 'aria-hidden="true" tabindex="-1" style="display:none' in messages[0].html
    trap = client.get(trap_path(messages[0]), headers={"user-agent": HUMAN})
    real = client.get(click_paths(messages[0])[0], headers={"user-agent": HUMAN})

    flush_settled(clock)

    assert (trap.status_code, "Location" in trap) == (200, False)
    assert real.status_code == 302
    assert _events(in_org) == [
        ("clicked", True, "trap_link"),
        ("clicked", True, "trap_link_scanner"),
    ]
    with in_org():
        messages[0].refresh_from_db()
    assert messages[0].clicked_at is None


def test_a_single_human_click_counts_once_it_has_settled(sent, client, in_org, clock):
    _, messages = sent
    client.get(click_paths(messages[1])[1], headers={"user-agent": HUMAN})
    client.get(pixel_path(messages[1]), headers={"user-agent": HUMAN})

    fresh = tracking.tracking_flush()
    waiting = tracking.buffered_count()
    settled = flush_settled(clock)

    assert (fresh.written, fresh.first_opens, waiting) == (1, 1, 1)  # the open does not wait
    assert (settled.written, settled.first_clicks) == (1, 1)
    assert _events(in_org, kind="clicked") == [("clicked", False, "")]


def test_a_last_flush_without_holding_writes_every_click(sent, client, in_org):
    _, messages = sent
    client.get(click_paths(messages[1])[1], headers={"user-agent": HUMAN})
    report = tracking.tracking_flush(hold_seconds=0)
    assert (report.first_clicks, tracking.buffered_count()) == (1, 0)
    assert _events(in_org) == [("clicked", False, "")]


def test_machine_engagement_is_shown_separately_in_campaign_stats(sent, client, in_org, clock):
    campaign, messages = sent
    client.get(pixel_path(messages[0]), headers={"user-agent": "Mozilla/5.0"})
    client.get(pixel_path(messages[1]), headers={"user-agent": HUMAN})
    client.get(trap_path(messages[2]), headers={"user-agent": HUMAN})
    flush_settled(clock)

    with in_org():
        machine = campaign_machine_engagement(campaign=campaign)

    assert machine == {
        "opened": 1,
        "clicked": 1,
        "reasons": [
            ("Apple Mail Privacy Protection", 1),
            ("link scanner: followed a link no person can see", 1),
        ],
    }


# --- open tracking off ---------------------------------------------------------------------------


def test_open_tracking_off_leaves_the_pixel_out_and_drops_old_pixels(
    org, recruiter_user, in_org, client
):
    _, messages = _launch(org, recruiter_user, in_org, 1, track_opens=False)
    assert "/e/o/" not in messages[0].html
    pixel = tokens.token_make(
        salt=tokens.OPEN_SALT,
        organization_id=org.pk,
        candidate_id=messages[0].candidate_id,
        message_id=messages[0].pk,
    )
    client.get(f"/e/o/{pixel}.gif", headers={"user-agent": HUMAN})

    report = tracking.tracking_flush()

    assert (report.events, report.dropped, report.written) == (1, 1, 0)
    assert _events(in_org) == []


# --- no open redirect ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "suffix",
    ["?url=https://evil.example", "?url=//evil.example", "?next=javascript:alert(1)"],
)
def test_click_with_a_url_in_the_request_is_a_400(sent, client, suffix):
    _, messages = sent
    response = client.get(click_paths(messages[0])[0] + suffix)
    assert response.status_code == 400
    assert "Location" not in response
    assert tracking.buffered_count() == 0


@pytest.mark.parametrize(
    "path",
    [
        "/e/c///evil.example/",
        "/e/c/javascript:alert(1)/",
        "/e/c/https:%2F%2Fevil.example/",
        "/e/c/https://evil.example/x/",
    ],
)
def test_click_with_a_url_instead_of_a_signed_id_is_a_400(db, client, path):
    response = client.get(path)
    assert response.status_code == 400
    assert "Location" not in response


@pytest.mark.parametrize("stored", ["//evil.example/x", "javascript:alert(1)", "https:evil"])
def test_click_never_redirects_to_an_unsafe_stored_link(sent, client, in_org, stored):
    _, messages = sent
    with in_org():
        Message.objects.filter(pk=messages[0].pk).update(links=[stored])
    response = client.get(click_paths(messages[0])[0], headers={"user-agent": HUMAN})
    assert response.status_code == 400
    assert tracking.buffered_count() == 0


def test_click_token_of_another_message_cannot_reach_its_links(sent, client):
    # The message id is signed (the click trusts it and no longer asks whose message it is):
    # a genuine token with another message's id in it is worthless.
    _, messages = sent
    token = click_paths(messages[0])[0].removeprefix("/e/c/").removesuffix("/")
    ids, timestamp, signature = token.split(".")
    organization, candidate, _, link = ids.split("-")
    altered = f"{organization}-{candidate}-{int_to_base36(messages[1].pk)}-{link}"
    response = client.get(f"/e/c/{altered}.{timestamp}.{signature}/")
    assert response.status_code == 400
    assert tracking.buffered_count() == 0
    assert client.get(f"/e/c/{token}/").status_code == 302  # the genuine token works


def test_tracking_paths_skip_sessions_and_the_rest_of_the_stack(sent, client):
    _, messages = sent
    with scopes_disabled():
        response = client.get(pixel_path(messages[0]), headers={"user-agent": HUMAN})
    assert response.status_code == 200
    assert "Set-Cookie" not in response
    assert "Content-Security-Policy" not in response
    assert not hasattr(response.wsgi_request, "user")


def test_click_token_naming_another_organisation_cannot_reach_the_message(sent, client, other_org):
    _, messages = sent
    forged = tokens.token_make(
        salt=tokens.CLICK_SALT,
        organization_id=other_org.pk,
        candidate_id=messages[0].candidate_id,
        message_id=messages[0].pk,
    )
    response = client.get(f"/e/c/{forged}/", headers={"user-agent": HUMAN})
    assert response.status_code == 400
    assert "Location" not in response
    assert tracking.buffered_count() == 0


def test_tracking_answers_carry_their_length(sent, client):
    _, messages = sent
    pixel = client.get(pixel_path(messages[0]), headers={"user-agent": HUMAN})
    click = client.get(click_paths(messages[0])[0], headers={"user-agent": HUMAN})
    assert pixel["Content-Length"] == str(len(pixel.content))
    assert click.status_code == 302
    assert click["Content-Length"] == "0"
