"""An email server that cannot be reached — an SMTP relay or an ESP's API down, refusing
connections, or turning them away at the greeting — takes nothing: the chunk waits in the
queue, its attempts unchanged, and goes out once the server is back, each email once. Before,
an SMTP relay that was down made the send task crash with its chunk left `sending` until the
lease ran out, and an ESP that was down failed every email as an attempt (all of a campaign
failed after ~31 minutes of outage). The outside world here: an SMTP relay (aiosmtpd) started
late, a socket that answers the greeting with 421, and the fake Postmark API; the clock is
frozen and moved on by the tests."""

import socket
import threading

import pytest
from django_scopes import scope

from campaigns.conf import MAX_ATTEMPTS
from campaigns.selectors import campaign_waiting
from campaigns.services import sending
from campaigns.tests import test_throttling
from campaigns.tests.factories import free_port, send_all, smtp_relay
from campaigns.tests.test_throttling_smtp_ses import Relay

clock = test_throttling.clock  # the frozen clock (a fixture), moved on by the tests
_messages = test_throttling._messages


@pytest.fixture
def smtp_port(settings):
    """Django's SMTP backend pointed at a port where nothing listens (yet)."""
    port = free_port()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_TIMEOUT = 5
    return port


def _waiting(campaign) -> list[tuple[str, int]]:
    return [(m.status, m.attempts) for m in _messages(campaign)]


def test_smtp_relay_down_holds_the_chunk_without_counting_an_attempt(
    launched_broadcast, org, smtp_port, clock
):
    campaign, _ = launched_broadcast
    report = send_all(org, campaign)
    messages = _messages(campaign)

    assert _waiting(campaign) == [("queued", 0)] * 3
    assert {m.next_attempt_at for m in messages} == {clock.now + sending.throttle_delay(1)}
    assert {m.last_error.split(" (", 1)[0] for m in messages} == {
        "Waiting: could not connect to the email server, 1 in a row"
    }
    assert all("Connection refused" in m.last_error for m in messages)
    assert (report.sent, report.unreachable, report.retried, report.failed) == (0, 3, 0, 0)
    # The campaign page says why they wait.
    with scope(organization=org):
        [waiting] = campaign_waiting(campaign=campaign, now=clock.now)
    assert waiting["count"] == 3
    assert waiting["reason"].startswith("could not connect to the email server, 1 in a row (")
    assert not waiting["due"]
    # Its time come, it still says why until the dispatcher's next round tries it again.
    clock.move(sending.throttle_delay(1))
    with scope(organization=org):
        [waiting] = campaign_waiting(campaign=campaign, now=clock.now)
    assert (waiting["count"], waiting["due"]) == (3, True)


def test_smtp_relay_down_never_fails_an_email_and_it_goes_out_once_the_relay_is_back(
    launched_broadcast, org, smtp_port, clock, settings
):
    campaign, candidates = launched_broadcast
    waits = []
    for _ in range(MAX_ATTEMPTS + 3):  # well past the attempts a transient failure has
        send_all(org, campaign)
        first = _messages(campaign)[0]
        waits.append(first.next_attempt_at - clock.now)
        clock.move(first.next_attempt_at - clock.now)

    assert _waiting(campaign) == [("queued", 0)] * 3
    assert [int(wait.total_seconds() // 60) for wait in waits] == [1, 2, 4, 8, 15, 15, 15, 15, 15]
    assert {m.last_error.split(" (", 1)[0].rsplit(", ", 1)[-1] for m in _messages(campaign)} == {
        f"{MAX_ATTEMPTS + 3} in a row"
    }

    with smtp_relay(settings, Relay(), port=smtp_port) as relay:
        report = send_all(org, campaign)

    assert report.sent == 3
    assert [(m.status, m.attempts, m.last_error) for m in _messages(campaign)] == [
        ("sent", 1, "")
    ] * 3
    assert sorted(relay.received) == sorted(c.email for c in candidates)


@pytest.fixture
def greeting_421(smtp_port):
    """A relay that answers every connection's greeting with a 421 and hangs up."""
    listener = socket.create_server(("127.0.0.1", smtp_port))
    stop = threading.Event()
    greeting = b"421 4.7.0 Too many concurrent connections from this IP, try again later\r\n"

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            with client:
                client.sendall(greeting)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join()
    listener.close()


def test_a_relay_that_throttles_at_the_greeting_holds_the_chunk_as_throttling(
    launched_broadcast, org, greeting_421, clock
):
    campaign, _ = launched_broadcast
    report = send_all(org, campaign)

    assert _waiting(campaign) == [("queued", 0)] * 3
    assert {m.last_error for m in _messages(campaign)} == {
        "Waiting: the email provider is throttling sends, 1 in a row"
    }
    assert (report.sent, report.provider_throttled, report.failed) == (0, 3, 0)


@pytest.fixture
def esp_down(settings):
    """Our anymail Postmark backend pointed at an API address where nothing listens."""
    settings.ANYMAIL = {
        "POSTMARK_SERVER_TOKEN": "server-token",
        "POSTMARK_API_URL": f"http://127.0.0.1:{free_port()}/",
    }
    settings.EMAIL_BACKEND = "campaigns.backends.PostmarkBackend"


def test_an_esp_that_cannot_be_reached_holds_the_chunk_without_counting_an_attempt(
    launched_broadcast, org, esp_down, clock
):
    campaign, _ = launched_broadcast
    for _ in range(MAX_ATTEMPTS + 1):
        report = send_all(org, campaign)
        clock.move(_messages(campaign)[0].next_attempt_at - clock.now)

    assert _waiting(campaign) == [("queued", 0)] * 3
    assert {m.last_error.split(" (", 1)[0] for m in _messages(campaign)} == {
        f"Waiting: could not connect to the email server, {MAX_ATTEMPTS + 1} in a row"
    }
    assert (report.sent, report.unreachable, report.retried, report.failed) == (0, 3, 0, 0)


def test_the_esp_back_sends_each_email_once(launched_broadcast, org, settings, clock, postmark):
    campaign, _ = launched_broadcast
    reachable = dict(settings.ANYMAIL)
    settings.ANYMAIL = {**reachable, "POSTMARK_API_URL": f"http://127.0.0.1:{free_port()}/"}
    send_all(org, campaign)
    clock.move(_messages(campaign)[0].next_attempt_at - clock.now)

    settings.ANYMAIL = reachable
    report = send_all(org, campaign)

    assert report.sent == 3
    assert [(m.status, m.attempts) for m in _messages(campaign)] == [("sent", 1)] * 3
    assert len(postmark.requests) == 3
