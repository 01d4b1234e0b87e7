"""The tracking endpoints' answers in front of Django, whichever server carries them.

Right after a big send the open pixel, the click redirect and the one-click unsubscribe POST
(RFC 8058) take thousands of requests a second. Through Django, even with the fast-path
middleware, each one cost ~0.5 ms (pixel) to ~7 ms (unsubscribe) of CPU on the web worker:
the handler, request and response objects, signals, decorators and, for the unsubscribe, the
ORM and a template. Here the same services answer them without Django's stack:

* the pixel verifies its token (HMAC) and buffers the open (one RPUSH): the 43-byte GIF;
* the click verifies its token, reads the message's links (one plain indexed query naming the
  token's organisation and message; after a merge the message may belong to another profile) and buffers the click: 302 to the stored link;
* when Redis is down, the pixel and the click write their event to the database instead (the
  service does: `tracking.open_record`, `tracking.click_record`) and answer the same GIF and
  redirect; an event the database refuses too is logged as lost, never a 500;
* the one-click POST from a mail provider (urlencoded ``List-Unsubscribe=One-Click``, no
  cookies) writes the preference and the suppression in one statement (what the send path
  checks) and buffers the rest for the flush: 200 with the confirmation page, which is rendered
  once per organisation and filled with the token and a fresh CSRF token (the cookie is set, as
  CsrfViewMiddleware would, for the page's Resubscribe form).

Everything else, and every case these do not cover exactly, goes to Django unchanged: other
methods (405 there), a query string on a click (400 there), a POST with cookies (a person's
browser) or another body, a token that does not verify (the neutral 404 page), a merged
profile, an insecure request when SECURE_SSL_REDIRECT is on. The answers carry the headers
Django's stack adds to the same responses (tests compare them).

`TrackingFront` decides and answers; it knows nothing of the server. Two thin adapters carry
it: `campaigns.tracking_wsgi` (gunicorn's sync and gthread workers, crm/wsgi.py) and
`campaigns.tracking_asgi` (gunicorn with uvicorn's worker, crm/asgi.py). An adapter turns its
request into a `TrackingRequest`, asks `route()` whether the front answers it (None: Django
does), reads the body when the route needs one, calls `answer()` (which blocks on Redis, and on
PostgreSQL for the click and the unsubscribe: in a thread, if the adapter runs on an event loop)
and sends the `TrackingAnswer`, or hands the request to Django when the answer is None.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from enum import Enum
from http import HTTPStatus
from urllib.parse import parse_qsl

from django.conf import settings
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.utils.encoding import iri_to_uri
from django.utils.http import http_date

from campaigns.services import tracking
from campaigns.views.public import PIXEL

logger = logging.getLogger("django.request")

# The same paths TrackingFastPathMiddleware answers (see there).
_TRACKING_PATH = re.compile(
    r"^/e/(?:o/(?P<open>[^/]+)\.gif|c/(?P<click>.+?)/?|u/(?P<unsubscribe>[^/]+)/)$"
)
PREFIX = "/e/"  # every path the front may answer starts with this
_FORM = "application/x-www-form-urlencoded"
_MAX_BODY = 1024
_TOKEN_MARK = "TRACKINGWSGITOKEN"  # noqa: S105 (a placeholder in the page, not a secret)
_CSRF_MARK = "TRACKINGWSGICSRF"
_PAGES_KEPT = 256


class Endpoint(Enum):
    OPEN = "open"
    CLICK = "click"
    UNSUBSCRIBE = "unsubscribe"


@dataclass(frozen=True, slots=True)
class TrackingRequest:
    """What the answers need of a request, as any server gives it."""

    method: str
    path: str  # the path without the script prefix, percent-decoded
    query_string: str
    is_secure: bool
    user_agent: str = ""
    remote_addr: str = ""
    cookie: str = ""
    content_type: str = ""
    content_length: str = ""
    body: bytes = b""  # read by the adapter only when the route asks for it


@dataclass(frozen=True, slots=True)
class Route:
    """The front answers this request (unless `answer` finds out otherwise)."""

    endpoint: Endpoint
    token: str
    body_length: int = 0  # bytes of body the answer reads


@dataclass(frozen=True, slots=True)
class TrackingAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def status_line(self) -> str:
        """'302 Found': the status as WSGI's start_response takes it."""
        return f"{self.status} {HTTPStatus(self.status).phrase}"


def is_secure(*, proxy_header_value: str | None, scheme: str) -> bool:
    """HttpRequest.is_secure(): the proxy's header when settings name one and it was sent
    (its first value), else the server's own scheme."""
    if settings.SECURE_PROXY_SSL_HEADER and proxy_header_value is not None:
        secure_value = settings.SECURE_PROXY_SSL_HEADER[1]
        return proxy_header_value.split(",", 1)[0].strip() == secure_value
    return scheme == "https"


def proxy_ssl_header() -> str | None:
    """The request.META name of the header that tells HTTPS (SECURE_PROXY_SSL_HEADER)."""
    proxy = settings.SECURE_PROXY_SSL_HEADER
    return proxy[0] if proxy else None


def _security_headers() -> list[tuple[str, str]]:
    """What SecurityMiddleware adds to every response."""
    headers = []
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        policy = settings.SECURE_REFERRER_POLICY
        if not isinstance(policy, str):
            policy = ",".join(policy)
        headers.append(("Referrer-Policy", policy))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    return headers


def _hsts_header() -> tuple[str, str] | None:
    if not settings.SECURE_HSTS_SECONDS:
        return None
    value = f"max-age={settings.SECURE_HSTS_SECONDS}"
    if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
        value += "; includeSubDomains"
    if settings.SECURE_HSTS_PRELOAD:
        value += "; preload"
    return ("Strict-Transport-Security", value)


class TrackingFront:
    """The three tracking answers, for any server's adapter (see the module's docstring)."""

    def __init__(self):
        self.security = _security_headers()
        self.hsts = _hsts_header()
        self.pages: dict[tuple, str] = {}
        self._expires = (0, "")

    def route(self, request: TrackingRequest) -> Route | None:
        """Whether the front answers this request, from what is known before its body.
        None: Django answers it."""
        if not request.path.startswith(PREFIX):
            return None
        match = _TRACKING_PATH.match(request.path)
        if match is None:
            return None
        if settings.SECURE_SSL_REDIRECT and not request.is_secure:
            return None
        if match["open"] is not None:
            if request.method != "GET":
                return None
            return Route(Endpoint.OPEN, match["open"])
        if match["click"] is not None:
            if request.method != "GET" or request.query_string:
                return None
            return Route(Endpoint.CLICK, match["click"])
        if (
            request.method != "POST"
            or request.cookie
            or request.content_type.split(";")[0].strip().lower() != _FORM
        ):
            return None
        try:
            length = int(request.content_length or 0)
        except ValueError:
            return None
        if not 0 < length <= _MAX_BODY:
            return None
        return Route(Endpoint.UNSUBSCRIBE, match["unsubscribe"], body_length=length)

    def answer(self, route: Route, request: TrackingRequest) -> TrackingAnswer | None:
        """The answer to a routed request (its body read, if the route needs one), with every
        header; None: Django answers it after all. Blocks on Redis, and on PostgreSQL for a
        click or an unsubscribe."""
        try:
            if route.endpoint is Endpoint.OPEN:
                answer = self._open(request, route.token)
            elif route.endpoint is Endpoint.CLICK:
                answer = self._click(request, route.token)
            else:
                answer = self._unsubscribe(request, route.token)
        except Exception:
            logger.exception("Tracking request failed: %s", request.path)
            answer = (500, [("Content-Type", "text/plain")], b"")
        if answer is None:
            return None
        status, headers, body = answer
        headers = [*headers, ("Content-Length", str(len(body))), *self.security]
        if request.is_secure and self.hsts:
            headers.append(self.hsts)
        return TrackingAnswer(status, headers, body)

    def _never_cache(self) -> list[tuple[str, str]]:
        """never_cache's headers (Expires is now, to the second)."""
        now = int(time.time())
        if self._expires[0] != now:
            self._expires = (now, http_date(now))
        return [
            ("Expires", self._expires[1]),
            ("Cache-Control", "max-age=0, no-cache, no-store, must-revalidate, private"),
        ]

    # --- the answers: (status, headers, body), or None for "Django answers this one" ---------

    def _open(self, request: TrackingRequest, token: str):
        used_database = tracking.open_record(
            token=token, user_agent=request.user_agent, ip=request.remote_addr
        )
        if used_database:  # Redis was down: the connection is checked as after a click
            close_old_connections()
        return 200, [("Content-Type", "image/gif"), *self._never_cache()], PIXEL

    def _click(self, request: TrackingRequest, token: str):
        close_old_connections()
        try:
            outcome = tracking.click_record(
                token=token, user_agent=request.user_agent, ip=request.remote_addr
            )
        finally:
            close_old_connections()
        headers = [("Content-Type", "text/html; charset=utf-8"), *self._never_cache()]
        if outcome is None:
            return 400, headers, b"This link is not valid."
        if outcome.is_trap:
            return 200, [("Content-Type", "text/plain"), *self._never_cache()], b""
        return 302, [*headers, ("Location", iri_to_uri(outcome.target))], b""

    def _unsubscribe(self, request: TrackingRequest, token: str):
        fields = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        if fields.get("List-Unsubscribe") != "One-Click":
            return None
        close_old_connections()
        try:
            outcome = tracking.one_click_unsubscribe(token=token)
        finally:
            close_old_connections()
        if outcome is None or outcome.organization is None or outcome.merged:
            return None
        return self._unsubscribed_page(outcome.organization, token)

    def _unsubscribed_page(self, organization, token: str):
        request = HttpRequest()
        csrf_token = get_token(request)
        page = self._page(organization).replace(_TOKEN_MARK, token).replace(_CSRF_MARK, csrf_token)
        response = HttpResponse(page)
        add_never_cache_headers(response)
        response.headers["X-Frame-Options"] = settings.X_FRAME_OPTIONS
        response.headers["Content-Security-Policy"] = _content_security_policy()
        response.set_cookie(
            settings.CSRF_COOKIE_NAME,
            request.META["CSRF_COOKIE"],
            max_age=settings.CSRF_COOKIE_AGE,
            domain=settings.CSRF_COOKIE_DOMAIN,
            path=settings.CSRF_COOKIE_PATH,
            secure=settings.CSRF_COOKIE_SECURE,
            httponly=settings.CSRF_COOKIE_HTTPONLY,
            samesite=settings.CSRF_COOKIE_SAMESITE,
        )
        patch_vary_headers(response, ("Cookie",))
        headers = [
            *response.items(),
            *(
                ("Set-Cookie", cookie.output(header="").strip())
                for cookie in response.cookies.values()
            ),
        ]
        return 200, headers, response.content

    def _page(self, organization) -> str:
        """The confirmation page of this organisation as it is now (its name, logo and address
        are all the page shows of it), with marks for the token and the CSRF token."""
        key = tuple(
            repr(getattr(organization, f.attname)) for f in organization._meta.concrete_fields
        )
        page = self.pages.get(key)
        if page is None:
            page = render_to_string(
                "campaigns/public/unsubscribe.html",
                {
                    "organization": organization,
                    "token": _TOKEN_MARK,
                    "unsubscribed": True,
                    "just_unsubscribed": True,
                    "csrf_token": _CSRF_MARK,
                },
            )
            if len(self.pages) >= _PAGES_KEPT:
                self.pages.clear()
            self.pages[key] = page
        return page


def _content_security_policy() -> str:
    from csp.utils import build_policy

    return build_policy()
