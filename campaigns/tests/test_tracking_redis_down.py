"""Open and click tracking while Redis is down: the pixel still answers its GIF and the click its
redirect, and the event is written straight to the database in the request — the rows the flush
would have written; when the database refuses the write too, the visitor still gets the GIF or
the redirect and the lost event is logged. Redis is down for real: tracking's Redis URL
(settings.REDIS_URL) names a port where nothing listens. Through Django's test client, and
through the tracking front's WSGI and ASGI adapters (what answers these paths in production)."""

import logging
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application
from django.db import connection, connections
from django.utils import timezone
from django_scopes import scopes_disabled

from analytics.models import EngagementEvent
from campaigns.models import Message
from campaigns.services import tracking
from campaigns.services.campaigns import campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.tests.factories import free_port, make_broadcast, make_candidates
from campaigns.tests.test_tracking import Clock
from campaigns.tests.test_tracking_front import call
from campaigns.tests.tracking_links import click_paths, pixel_path, trap_path
from campaigns.tracking_asgi import TrackingASGIApplication
from campaigns.tracking_wsgi import TrackingApplication
from campaigns.views.public import PIXEL
from candidates.models import Activity

HUMAN = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko)"
JOB = "https://jobs.example.com/roles/42?ref=mail&x=1"
LOST = "the database write failed too"

# The database refuses every new engagement event (what a full disk or a broken table would do).
_REFUSE_EVENTS = """
CREATE FUNCTION rapport_test_refuse_events() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'no more events'; END $$;
CREATE TRIGGER rapport_test_refuse_events BEFORE INSERT ON analytics_engagementevent
FOR EACH ROW EXECUTE FUNCTION rapport_test_refuse_events();
"""
_ACCEPT_EVENTS = """
DROP TRIGGER IF EXISTS rapport_test_refuse_events ON analytics_engagementevent;
DROP FUNCTION IF EXISTS rapport_test_refuse_events();
"""


@pytest.fixture
def redis_down(settings):
    """Tracking's Redis is unreachable (the cache keeps its own server)."""
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture
def sent(org, recruiter_user, in_org):
    """Two sent broadcast emails (two candidates), ten minutes old."""
    make_candidates(org, 2)
    campaign = make_broadcast(org, user=recruiter_user)
    with in_org():
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
        Message.objects.update(status="sent", sent_at=timezone.now() - timedelta(minutes=10))
        return list(Message.objects.order_by("pk"))


def _events():
    with scopes_disabled():
        return list(
            EngagementEvent.objects.order_by("pk").values_list(
                "kind", "message_id", "is_machine", "machine_reason"
            )
        )


def _firsts(message):
    with scopes_disabled():
        message.refresh_from_db()
        return (
            message.opened_at is not None,
            message.clicked_at is not None,
            list(
                Activity.objects.filter(candidate_id=message.candidate_id)
                .order_by("pk")
                .values_list("kind", flat=True)
            ),
        )


def _lost(caplog) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.ERROR and LOST in record.getMessage()
    ]


# --- through Django ------------------------------------------------------------------------------


def test_pixel_answers_its_gif_and_writes_the_open_when_redis_is_down(sent, client, redis_down):
    response = client.get(pixel_path(sent[0]), headers={"user-agent": HUMAN})

    assert (response.status_code, response["Content-Type"]) == (200, "image/gif")
    assert response.content == PIXEL
    assert _events() == [("opened", sent[0].pk, False, "")]
    assert _firsts(sent[0]) == (True, False, [Activity.Kind.EMAIL_OPENED])


def test_click_redirects_and_writes_the_click_when_redis_is_down(sent, client, redis_down):
    response = client.get(click_paths(sent[0])[0], headers={"user-agent": HUMAN})

    assert (response.status_code, response["Location"]) == (302, JOB)
    assert _events() == [("clicked", sent[0].pk, False, "")]
    assert _firsts(sent[0]) == (False, True, [Activity.Kind.EMAIL_CLICKED])


def test_second_click_is_written_but_counts_first_only_once(sent, client, redis_down):
    for _ in range(2):
        assert client.get(click_paths(sent[0])[0], headers={"user-agent": HUMAN}).status_code == 302

    assert _events() == [("clicked", sent[0].pk, False, "")] * 2
    assert _firsts(sent[0]) == (False, True, [Activity.Kind.EMAIL_CLICKED])


def test_trap_link_and_the_clicks_after_it_are_machines_when_redis_is_down(
    sent, client, redis_down
):
    trap = client.get(trap_path(sent[0]), headers={"user-agent": HUMAN})
    real = client.get(click_paths(sent[0])[0], headers={"user-agent": HUMAN})

    assert (trap.status_code, trap.content) == (200, b"")
    assert (real.status_code, real["Location"]) == (302, JOB)
    assert _events() == [
        ("clicked", sent[0].pk, True, "trap_link"),
        ("clicked", sent[0].pk, True, "trap_link_scanner"),
    ]
    assert _firsts(sent[0]) == (False, False, [])


def test_written_in_the_request_are_the_rows_the_flush_writes(sent, client, settings, monkeypatch):
    """The same open and click, one buffered and flushed (Redis up), one written in the request
    (Redis down): the same event rows and timeline entries, but for their message."""
    clock = Clock()
    monkeypatch.setattr(timezone, "now", lambda: clock.now)
    flushed, direct = sent
    for message in (flushed, direct):
        if message is direct:
            settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
        client.get(pixel_path(message), headers={"user-agent": HUMAN})
        client.get(click_paths(message)[0], headers={"user-agent": HUMAN})
        if message is flushed:
            clock.move(seconds=tracking.CLICK_HOLD_SECONDS + 1)
            assert tracking.tracking_flush().written == 2

    def rows(message):
        with scopes_disabled():
            events = EngagementEvent.objects.filter(message=message).order_by("kind")
            timeline = Activity.objects.filter(candidate_id=message.candidate_id).order_by("kind")
            return (
                list(events.values_list("kind", "campaign_id", "is_machine", "data")),
                [(a.kind, a.summary.replace(message.subject, "…")) for a in timeline],
                [{**a.data, "message_id": "#"} for a in timeline],
            )

    assert rows(direct) == rows(flushed)
    assert _firsts(direct)[:2] == _firsts(flushed)[:2] == (True, True)


def test_pixel_and_click_answer_when_redis_and_the_database_both_refuse(
    sent, client, redis_down, caplog
):
    with connection.cursor() as cursor:
        cursor.execute(_REFUSE_EVENTS)  # undone with the test's transaction

    pixel = client.get(pixel_path(sent[0]), headers={"user-agent": HUMAN})
    click = client.get(click_paths(sent[0])[0], headers={"user-agent": HUMAN})

    assert (pixel.status_code, pixel.content) == (200, PIXEL)
    assert (click.status_code, click["Location"]) == (302, JOB)
    assert _events() == []
    assert _firsts(sent[0]) == (False, False, [])
    assert len(_lost(caplog)) == 2


# --- through the tracking front (production's servers) ------------------------------------------


@pytest.fixture(params=["wsgi", "asgi"])
def app(request):
    """The front behind one adapter; its database work is autocommitted, as in gunicorn."""
    if request.param == "wsgi":
        yield TrackingApplication(get_wsgi_application())
        return
    executor = ThreadPoolExecutor(max_workers=1)  # one thread: its connection is closed after
    yield TrackingASGIApplication(get_asgi_application(), executor=executor)
    executor.submit(connections.close_all).result()
    executor.shutdown()


@pytest.mark.django_db(transaction=True)
def test_front_answers_and_writes_open_and_click_when_redis_is_down(app, sent, redis_down):
    pixel = call(app, "GET", pixel_path(sent[0]))
    click = call(app, "GET", click_paths(sent[0])[0])

    assert (pixel.status_code, pixel.header("Content-Type"), pixel.content) == (
        200,
        "image/gif",
        PIXEL,
    )
    assert (click.status_code, click.header("Location")) == (302, JOB)
    assert _events() == [
        ("opened", sent[0].pk, False, ""),
        ("clicked", sent[0].pk, False, ""),
    ]
    assert _firsts(sent[0]) == (
        True,
        True,
        [Activity.Kind.EMAIL_OPENED, Activity.Kind.EMAIL_CLICKED],
    )


@pytest.fixture
def database_refuses_events(transactional_db):
    with connection.cursor() as cursor:
        cursor.execute(_REFUSE_EVENTS)
    yield
    with connection.cursor() as cursor:
        cursor.execute(_ACCEPT_EVENTS)


@pytest.mark.django_db(transaction=True)
def test_front_answers_when_redis_and_the_database_both_refuse(
    app, sent, redis_down, database_refuses_events, caplog
):
    pixel = call(app, "GET", pixel_path(sent[0]))
    click = call(app, "GET", click_paths(sent[0])[0])
    after = call(app, "GET", click_paths(sent[1])[0])  # the thread's connection still works

    assert (pixel.status_code, pixel.content) == (200, PIXEL)
    assert (click.status_code, click.header("Location")) == (302, JOB)
    assert (after.status_code, after.header("Location")) == (302, JOB)
    assert _events() == []
    assert len(_lost(caplog)) == 3


@pytest.mark.django_db(transaction=True)
def test_front_pixel_checks_its_connection_as_a_click_does(sent, redis_down):
    """The tracking process's thread writes an open (Redis down), then PostgreSQL drops that
    connection (a restart, an idle timeout): the next open is written on a new one."""
    executor = ThreadPoolExecutor(max_workers=1)
    app = TrackingASGIApplication(get_asgi_application(), executor=executor)
    try:
        first = call(app, "GET", pixel_path(sent[0]))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            dropped = cursor.fetchall()
        second = call(app, "GET", pixel_path(sent[1]))
    finally:
        executor.submit(connections.close_all).result()
        executor.shutdown()

    assert dropped == [(True,)]
    assert (first.status_code, second.status_code) == (200, 200)
    assert _events() == [("opened", sent[0].pk, False, ""), ("opened", sent[1].pk, False, "")]


@pytest.fixture
def redis_hangs(settings, monkeypatch):
    """Tracking's Redis accepts connections and never answers (a hung server or host), with
    tracking's give-up times shortened so that the test is quick."""
    port = free_port()
    listener = socket.create_server(("127.0.0.1", port))  # never accepted, never answered
    monkeypatch.setattr(tracking, "REDIS_TIMEOUT_SECONDS", 0.5)
    tracking._client_for.cache_clear()
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    yield
    listener.close()
    tracking._client_for.cache_clear()


def test_pixel_and_click_do_not_wait_for_a_redis_that_hangs(sent, client, redis_hangs):
    started = time.monotonic()
    pixel = client.get(pixel_path(sent[0]), headers={"user-agent": HUMAN})
    click = client.get(click_paths(sent[1])[0], headers={"user-agent": HUMAN})

    assert (pixel.status_code, click.status_code, click["Location"]) == (200, 302, JOB)
    assert time.monotonic() - started < 10
    assert sorted(_events()) == [
        ("clicked", sent[1].pk, False, ""),
        ("opened", sent[0].pk, False, ""),
    ]
