"""The tracking endpoints' front (campaigns/tracking_front.py) through both of its adapters —
the WSGI one (crm/wsgi.py, gunicorn's own workers) and the ASGI one (crm/asgi.py, the tracking
process on uvicorn's worker): the pixel, the click and the one-click unsubscribe POST answer
with what Django's stack answers — status, headers, body — without it; every other case is
Django's (its WSGI or ASGI handler, with the body the front read); the one-click unsubscribe
takes effect for sending before the answer and the flush, and the flush writes its bookkeeping
once. Every test runs against both adapters."""

import asyncio
import io
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from analytics.models import EngagementEvent
from campaigns.models import (
    CandidateEmailPreference,
    Enrollment,
    Message,
    Suppression,
)
from campaigns.services import tokens, tracking
from campaigns.services.campaigns import campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.services.sending import messages_send
from campaigns.tests.factories import make_broadcast, make_candidates
from campaigns.tests.test_tracking import Clock, flush_settled
from campaigns.tests.tracking_links import click_paths, pixel_path, trap_path
from campaigns.tracking_asgi import TrackingASGIApplication
from campaigns.tracking_wsgi import TrackingApplication
from candidates.models import Activity, Candidate
from crm import asgi as crm_asgi

# The front's database work is autocommitted, as in gunicorn: no test transaction around it.
pytestmark = pytest.mark.django_db(transaction=True)

HUMAN = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko)"
ONE_CLICK = b"List-Unsubscribe=One-Click"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(params=["wsgi", "asgi"])
def make_app(request):
    """Builds the front behind one adapter (after a test changed settings, if it does)."""
    if request.param == "wsgi":
        yield lambda: TrackingApplication(get_wsgi_application())
        return
    # One database thread, so that its connection can be closed after the test. Django's ASGI
    # handler, built anew for the test's settings, closes each of its requests' connections
    # since crm.asgi (imported above) is (see the last test).
    executor = ThreadPoolExecutor(max_workers=1)
    yield lambda: TrackingASGIApplication(get_asgi_application(), executor=executor)
    executor.submit(connections.close_all).result()
    executor.shutdown()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def clock(monkeypatch):
    """`timezone.now()` frozen at the start of the test; `clock.move(...)` moves it on."""
    frozen = Clock()
    monkeypatch.setattr(timezone, "now", lambda: frozen.now)
    return frozen


@pytest.fixture
def sent(org, recruiter_user, in_org):
    """A sent broadcast email to one candidate, whose enrollment is still active."""
    make_candidates(org, 1)
    campaign = make_broadcast(org, user=recruiter_user)
    with in_org():
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
        Message.objects.update(status="sent", sent_at=timezone.now() - timedelta(minutes=10))
        Enrollment.objects.update(status="active")
        return Message.objects.get()


class Answer:
    def __init__(self, status: str, headers: list, body: bytes):
        self.status_code = int(status.split()[0])
        self.headers = headers
        self.content = body

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return values[-1] if values else None


def call(
    app,
    method,
    path,
    *,
    body=b"",
    content_type="",
    cookie="",
    query="",
    headers=None,
    on_start=None,
):
    """The answer of `app` (either adapter) to one request from a mail client or provider;
    `on_start()` runs when the answer's status and headers are sent."""
    headers = {"User-Agent": HUMAN, **(headers or {})}
    if content_type:
        headers["Content-Type"] = content_type
    if cookie:
        headers["Cookie"] = cookie
    if isinstance(app, TrackingASGIApplication):
        return asyncio.run(
            _call_asgi(
                app, method, path, body=body, query=query, headers=headers, on_start=on_start
            )
        )
    return _call_wsgi(app, method, path, body=body, query=query, headers=headers, on_start=on_start)


def _call_wsgi(app, method, path, *, body, query, headers, on_start):
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SCRIPT_NAME": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
    started = {}

    def start_response(status, headers, exc_info=None):
        started.update(status=status, headers=headers)
        if on_start:
            on_start()

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return Answer(started["status"], started["headers"], body)


async def _call_asgi(app, method, path, *, body, query, headers, on_start):
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-length", str(len(body)).encode()),
            *((name.lower().encode(), value.encode("latin-1")) for name, value in headers.items()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    # The body in two parts, as a server may deliver it.
    incoming = [
        {"type": "http.request", "body": body[:5], "more_body": True},
        {"type": "http.request", "body": body[5:], "more_body": False},
    ]

    async def receive():
        if incoming:
            return incoming.pop(0)
        await asyncio.Event().wait()  # the client stays connected until it is answered

    sent = []

    async def send(message):
        sent.append(message)
        if on_start and message["type"] == "http.response.start":
            # Off the event loop, as the database must be (a thread of its own, closed after).
            await asyncio.to_thread(_closing_connections, on_start)

    await app(scope, receive, send)
    start = sent[0]
    assert start["type"] == "http.response.start"
    assert all(m["type"] == "http.response.body" for m in sent[1:])
    return Answer(
        str(start["status"]),
        [(name.decode("latin-1"), value.decode("latin-1")) for name, value in start["headers"]],
        b"".join(m.get("body", b"") for m in sent[1:]),
    )


def _closing_connections(function):
    try:
        function()
    finally:
        connections.close_all()


def _unsubscribe(message) -> str:
    return re.search(
        r"<https://rapport\.example\.com(/e/u/[^>]+)>", message.headers["List-Unsubscribe"]
    )[1]


def _comparable(headers) -> dict:
    """Headers by name, without the ones that differ per answer (a date, a fresh cookie)."""
    return {
        name.lower(): value
        for name, value in headers
        if name.lower() not in ("expires", "set-cookie", "date")
    }


def _django(method, path, **kwargs):
    """The same request through Django's own stack (the test client)."""
    client = Client(enforce_csrf_checks=True, headers={"user-agent": HUMAN})
    return getattr(client, method)(path, **kwargs)


def _state(candidate_id):
    with scopes_disabled():
        preference = CandidateEmailPreference.objects.filter(candidate_id=candidate_id).first()
        return (
            preference.unsubscribed_at is not None if preference else False,
            list(Suppression.objects.values_list("email", "reason")),
            EngagementEvent.objects.filter(kind="unsubscribed").count(),
            Activity.objects.filter(kind=Activity.Kind.UNSUBSCRIBED).count(),
        )


# --- the pixel and the click --------------------------------------------------------------------


def test_pixel_answers_like_django_and_buffers_the_open(app, sent, in_org):
    answer = call(app, "GET", pixel_path(sent))
    assert tracking.buffered_count() == 1
    reference = _django("get", pixel_path(sent))
    tracking.tracking_flush()

    assert answer.status_code == 200
    assert answer.content == reference.content
    assert answer.header("Content-Type") == "image/gif"
    assert _comparable(answer.headers) == _comparable(reference.items())
    assert answer.header("Expires") is not None
    with in_org():
        assert EngagementEvent.objects.filter(kind="opened", is_machine=False).count() == 2
        sent.refresh_from_db()
    assert sent.opened_at is not None


def test_pixel_with_a_forged_token_is_the_same_gif_and_records_nothing(app, db):
    answer = call(app, "GET", "/e/o/forged.x.y.gif")
    assert (answer.status_code, answer.header("Content-Type")) == (200, "image/gif")
    assert tracking.buffered_count() == 0


def test_pixel_head_is_djangos_405(app, sent):
    assert call(app, "HEAD", pixel_path(sent)).status_code == 405
    assert tracking.buffered_count() == 0


def test_click_redirects_like_django_and_buffers_the_click(app, sent, in_org, clock):
    answer = call(app, "GET", click_paths(sent)[0])
    reference = _django("get", click_paths(sent)[0])
    flush_settled(clock)

    assert answer.status_code == 302
    assert answer.header("Location") == "https://jobs.example.com/roles/42?ref=mail&x=1"
    assert _comparable(answer.headers) == _comparable(reference.items())
    assert answer.content == b""
    with in_org():
        clicks = list(EngagementEvent.objects.filter(kind="clicked").values_list("is_machine"))
        sent.refresh_from_db()
    assert clicks == [(False,), (False,)]
    assert sent.clicked_at is not None


@pytest.mark.parametrize(
    "query", ["url=https://evil.example", "url=//evil.example", "next=javascript:alert(1)"]
)
def test_click_with_a_query_string_is_a_400(app, sent, query):
    answer = call(app, "GET", click_paths(sent)[0], query=query)
    assert answer.status_code == 400
    assert answer.header("Location") is None
    assert tracking.buffered_count() == 0


@pytest.mark.parametrize(
    "path",
    ["/e/c//evil.example/", "/e/c/javascript:alert(1)/", "/e/c/https://evil.example/x/"],
)
def test_click_with_a_url_instead_of_a_signed_id_is_a_400(app, db, path):
    answer = call(app, "GET", path)
    assert answer.status_code == 400
    assert answer.header("Location") is None


def test_click_with_a_forged_or_foreign_token_is_a_400(app, sent, other_org):
    foreign = tokens.token_make(
        salt=tokens.CLICK_SALT,
        organization_id=other_org.pk,
        candidate_id=sent.candidate_id,
        message_id=sent.pk,
    )
    out_of_range = tokens.token_make(
        salt=tokens.CLICK_SALT,
        organization_id=sent.organization_id,
        candidate_id=sent.candidate_id,
        message_id=sent.pk,
        link_index=7,
    )
    for path in (f"/e/c/{foreign}/", f"/e/c/{out_of_range}/", "/e/c/not-a-token/"):
        answer = call(app, "GET", path)
        assert (answer.status_code, answer.header("Location")) == (400, None)
    assert tracking.buffered_count() == 0


def test_trap_link_answers_empty_and_is_flagged(app, sent, in_org, clock):
    answer = call(app, "GET", trap_path(sent))
    flush_settled(clock)
    assert (answer.status_code, answer.content) == (200, b"")
    with in_org():
        event = EngagementEvent.objects.get(kind="clicked")
    assert (event.is_machine, event.machine_reason) == (True, "trap_link")


# --- the one-click unsubscribe ------------------------------------------------------------------


def test_one_click_answers_like_django_without_a_redirect(app, sent):
    answer = call(app, "POST", _unsubscribe(sent), body=ONE_CLICK, content_type=FORM)
    # Django's answer for the same page (already unsubscribed: same page, nothing changes).
    reference = _django("post", _unsubscribe(sent), data=ONE_CLICK, content_type=FORM)

    assert answer.status_code == 200
    assert answer.header("Location") is None
    mask = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')
    assert mask.sub(b"", answer.content) == mask.sub(b"", reference.content)
    assert _comparable(answer.headers) == _comparable(reference.items())
    assert answer.header("X-Frame-Options") == "DENY"
    assert "frame-ancestors 'none'" in answer.header("Content-Security-Policy")
    cookies = [v for k, v in answer.headers if k == "Set-Cookie"]
    assert len(cookies) == 1 and cookies[0].strip().startswith(f"{settings.CSRF_COOKIE_NAME}=")
    assert settings.SESSION_COOKIE_NAME not in " ".join(cookies)


def test_one_click_takes_effect_for_sending_before_the_flush(
    app, sent, org, recruiter_user, in_org
):
    second = make_broadcast(org, user=recruiter_user, name="Second")
    with in_org():
        campaign_launch(campaign=second, user=recruiter_user)
        dispatch_due()
    answer = call(app, "POST", _unsubscribe(sent), body=ONE_CLICK, content_type=FORM)

    # Not flushed: the bookkeeping waits in the buffer, the opt-out does not.
    assert tracking.buffered_count() == 1
    assert _state(sent.candidate_id)[:3] == (True, [(sent.to_email.lower(), "unsubscribed")], 0)
    with scope(organization=org):
        queued = list(
            Message.objects.filter(campaign=second, status="queued").values_list("pk", flat=True)
        )
        messages_send(organization=org, message_ids=queued)
        skipped = Message.objects.get(campaign=second)
    assert answer.status_code == 200
    assert len(queued) == 1
    assert mail.outbox == []
    # The suppression is checked first (the preference would hold it too).
    assert (skipped.status, skipped.skip_reason) == ("skipped", "suppressed")


def test_one_click_bookkeeping_is_written_once_by_the_flush(app, sent, in_org):
    url = _unsubscribe(sent)
    call(app, "POST", url, body=ONE_CLICK, content_type=FORM)
    call(app, "POST", url, body=ONE_CLICK, content_type=FORM)  # already: nothing buffered
    assert tracking.buffered_count() == 1
    batch = tracking.tracking_batch_claim()
    tracking.tracking_batch_write(batch)  # written, then the flusher dies before the ack
    report = tracking.tracking_flush()  # the next one writes the same batch again

    assert (report.events, report.written, report.unsubscribes) == (1, 0, 0)
    assert tracking.buffered_count() == 0
    with in_org():
        enrollment = Enrollment.objects.get(campaign=sent.campaign)
        event = EngagementEvent.objects.get(kind="unsubscribed")
        summaries = list(
            Activity.objects.filter(kind=Activity.Kind.UNSUBSCRIBED).values_list(
                "summary", flat=True
            )
        )
        sent.refresh_from_db()
    assert (enrollment.status, enrollment.stop_reason) == ("stopped", "unsubscribed")
    assert (event.campaign_id, event.message_id, event.data) == (
        sent.campaign_id,
        sent.pk,
        {"source": "one-click"},
    )
    assert summaries == [f"Unsubscribed from campaign email ({sent.campaign.name})"]
    assert sent.unsubscribed_at is not None


def test_one_click_bookkeeping_does_not_wait_behind_a_click(app, sent, in_org, clock):
    call(app, "GET", click_paths(sent)[0])
    call(app, "POST", _unsubscribe(sent), body=ONE_CLICK, content_type=FORM)

    report = tracking.tracking_flush()  # the click has not settled: it waits

    assert (report.unsubscribes, tracking.buffered_count()) == (1, 1)
    with in_org():
        enrollment = Enrollment.objects.get(campaign=sent.campaign)
    assert (enrollment.status, enrollment.stop_reason) == ("stopped", "unsubscribed")


def test_resubscribe_from_the_page_the_front_answered(app, sent):
    url = _unsubscribe(sent)
    answer = call(app, "POST", url, body=ONE_CLICK, content_type=FORM)
    tracking.tracking_flush()
    csrf = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', answer.content)[1].decode()
    cookie = next(v for k, v in answer.headers if k == "Set-Cookie").strip().split(";")[0]
    browser = Client(enforce_csrf_checks=True)
    browser.cookies.load(cookie)
    response = browser.post(
        reverse("campaigns_public:resubscribe", args=[url.split("/")[3]]),
        {"csrfmiddlewaretoken": csrf},
    )
    assert response.status_code == 302
    assert _state(sent.candidate_id)[:2] == (False, [])


@pytest.mark.parametrize(
    ("body", "content_type", "cookie", "status"),
    [
        (b"List-Unsubscribe=One-Click", FORM, "csrftoken=abc", 200),  # a browser: Django's
        (b"something=else", FORM, "", 400),
        (b"", FORM, "", 400),
    ],
)
def test_other_unsubscribe_posts_are_djangos(app, sent, body, content_type, cookie, status):
    answer = call(
        app, "POST", _unsubscribe(sent), body=body, content_type=content_type, cookie=cookie
    )
    assert answer.status_code == status
    # Django's one-click path writes everything at once; nothing waits in the buffer.
    assert tracking.buffered_count() == 0
    assert _state(sent.candidate_id)[0] is (status == 200)


def test_one_click_with_a_forged_or_foreign_token_changes_nothing(app, sent, other_org):
    foreign = tokens.candidate_token(organization_id=other_org.pk, candidate_id=sent.candidate_id)
    pixel = tokens.token_make(
        salt=tokens.OPEN_SALT,
        organization_id=sent.organization_id,
        candidate_id=sent.candidate_id,
        message_id=sent.pk,
    )
    for token in (foreign, pixel, "forged.token.here"):
        answer = call(app, "POST", f"/e/u/{token}/", body=ONE_CLICK, content_type=FORM)
        assert answer.status_code == 404
        assert b"Acme" not in answer.content
    assert _state(sent.candidate_id) == (False, [], 0, 0)
    assert tracking.buffered_count() == 0


def test_one_click_of_a_merged_profile_unsubscribes_the_surviving_one(app, sent, org, in_org):
    survivor = make_candidates(org, 1, tags=())[0]
    with in_org():
        Candidate.objects.filter(pk=sent.candidate_id).update(merged_into=survivor)
    answer = call(app, "POST", _unsubscribe(sent), body=ONE_CLICK, content_type=FORM)
    assert answer.status_code == 200
    assert _state(sent.candidate_id)[0] is False
    assert _state(survivor.pk)[0] is True


def test_one_click_suppresses_a_non_ascii_address_as_python_lower_cases_it(app, sent, in_org):
    with in_org():
        # Stored lower-cased, as the services (and the candidate_email_lower_case constraint)
        # have it; still an address outside ASCII, which SQL's lower() may not fold as Python.
        Candidate.objects.filter(pk=sent.candidate_id).update(email="åsa.öberg@example.com")
    call(app, "POST", _unsubscribe(sent), body=ONE_CLICK, content_type=FORM)
    assert _state(sent.candidate_id)[1] == [("åsa.öberg@example.com", "unsubscribed")]


def test_one_click_of_a_deleted_candidate_is_dropped_by_the_flush(app, sent):
    call(app, "POST", _unsubscribe(sent), body=ONE_CLICK, content_type=FORM)
    with scopes_disabled():
        Candidate.objects.filter(pk=sent.candidate_id).delete()
    report = tracking.tracking_flush()
    assert (report.dropped, report.written) == (1, 0)
    assert tracking.buffered_count() == 0


def test_one_click_is_written_before_the_answer_starts(app, sent):
    seen = []
    answer = call(
        app,
        "POST",
        _unsubscribe(sent),
        body=ONE_CLICK,
        content_type=FORM,
        on_start=lambda: seen.append(_state(sent.candidate_id)[:2]),
    )
    assert answer.status_code == 200
    assert seen == [(True, [(sent.to_email.lower(), "unsubscribed")])]


@pytest.mark.parametrize("path", ["/e/nothing/", "/e/o/", "/accounts/login/"])
def test_other_paths_are_djangos(app, db, path):
    answer = call(app, "GET", path)
    reference = _django("get", path)
    assert (answer.status_code, answer.header("Content-Type")) == (
        reference.status_code,
        reference["Content-Type"],
    )


def test_insecure_request_is_djangos_redirect_when_https_is_required(make_app, sent, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = False
    settings.SECURE_HSTS_PRELOAD = False
    app = make_app()

    insecure = call(app, "GET", pixel_path(sent))
    assert insecure.status_code == 301
    assert tracking.buffered_count() == 0
    secure = call(app, "GET", pixel_path(sent), headers={"X-Forwarded-Proto": "https"})
    assert (secure.status_code, secure.header("Content-Type")) == (200, "image/gif")
    assert secure.header("Strict-Transport-Security") == "max-age=3600"
    assert tracking.buffered_count() == 1


def _open_sessions() -> int:
    """Sessions on the test database other than this test's own."""
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def test_djangos_asgi_requests_leave_no_database_session_open():
    """Django's ASGI handler runs each request in a thread of its own: without crm.asgi closing
    the request's connections, every request's persistent connection stays open, idle, until
    the garbage collector happens to find it."""
    import gc

    before = _open_sessions()
    gc.disable()  # what collects the leaked connections now and then
    try:
        answers = [call(crm_asgi.application, "GET", reverse("healthz")) for _ in range(5)]
        after = _open_sessions()
    finally:
        gc.enable()
    assert [answer.status_code for answer in answers] == [200] * 5
    assert after == before
