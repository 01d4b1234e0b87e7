"""The tracking endpoints' own WSGI front, in front of Django (crm/wsgi.py).

Right after a big send the open pixel, the click redirect and the one-click unsubscribe POST
(RFC 8058) take thousands of requests a second. Through Django, even with the fast-path
middleware, each one cost ~0.5 ms (pixel) to ~7 ms (unsubscribe) of CPU on the web worker:
the handler, request and response objects, signals, decorators and, for the unsubscribe, the
ORM and a template. Here the same services answer them as plain WSGI:

* the pixel verifies its token (HMAC) and buffers the open (one RPUSH): the 43-byte GIF;
* the click verifies its token, reads the message's links (one plain indexed query naming the
  token's organisation, candidate and message) and buffers the click: 302 to the stored link;
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
"""

from __future__ import annotations

import io
import logging
import re
import time
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
_FORM = "application/x-www-form-urlencoded"
_MAX_BODY = 1024
_TOKEN_MARK = "TRACKINGWSGITOKEN"  # noqa: S105 (a placeholder in the page, not a secret)
_CSRF_MARK = "TRACKINGWSGICSRF"
_PAGES_KEPT = 256


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


class TrackingApplication:
    """WSGI: the three tracking answers here, everything else to `django_application`."""

    def __init__(self, django_application):
        self.django = django_application
        self.security = _security_headers()
        self.hsts = _hsts_header()
        proxy = settings.SECURE_PROXY_SSL_HEADER
        self.proxy_header = proxy[0] if proxy else None
        self.proxy_value = proxy[1] if proxy else None
        self.pages: dict[tuple, str] = {}
        self._expires = (0, "")

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/e/"):
            return self.django(environ, start_response)
        match = _TRACKING_PATH.match(path)
        if match is None:
            return self.django(environ, start_response)
        secure = self._is_secure(environ)
        if settings.SECURE_SSL_REDIRECT and not secure:
            return self.django(environ, start_response)
        try:
            if match["open"] is not None:
                answer = self._open(environ, match["open"])
            elif match["click"] is not None:
                answer = self._click(environ, match["click"])
            else:
                answer = self._unsubscribe(environ, match["unsubscribe"])
        except Exception:
            logger.exception("Tracking request failed: %s", path)
            answer = ("500 Internal Server Error", [("Content-Type", "text/plain")], b"")
        if answer is None:
            return self.django(environ, start_response)
        status, headers, body = answer
        headers = [*headers, ("Content-Length", str(len(body))), *self.security]
        if secure and self.hsts:
            headers.append(self.hsts)
        start_response(status, headers)
        return [body]

    def _is_secure(self, environ) -> bool:
        if self.proxy_header and environ.get(self.proxy_header) == self.proxy_value:
            return True
        return environ.get("wsgi.url_scheme") == "https"

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

    def _open(self, environ, token):
        if environ.get("REQUEST_METHOD") != "GET":
            return None
        tracking.open_record(
            token=token,
            user_agent=environ.get("HTTP_USER_AGENT", ""),
            ip=environ.get("REMOTE_ADDR", ""),
        )
        return "200 OK", [("Content-Type", "image/gif"), *self._never_cache()], PIXEL

    def _click(self, environ, token):
        if environ.get("REQUEST_METHOD") != "GET" or environ.get("QUERY_STRING"):
            return None
        close_old_connections()
        try:
            outcome = tracking.click_record(
                token=token,
                user_agent=environ.get("HTTP_USER_AGENT", ""),
                ip=environ.get("REMOTE_ADDR", ""),
            )
        finally:
            close_old_connections()
        headers = [("Content-Type", "text/html; charset=utf-8"), *self._never_cache()]
        if outcome is None:
            return "400 Bad Request", headers, b"This link is not valid."
        if outcome.is_trap:
            return "200 OK", [("Content-Type", "text/plain"), *self._never_cache()], b""
        return "302 Found", [*headers, ("Location", iri_to_uri(outcome.target))], b""

    def _unsubscribe(self, environ, token):
        if (
            environ.get("REQUEST_METHOD") != "POST"
            or environ.get("HTTP_COOKIE")
            or environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower() != _FORM
        ):
            return None
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        if not 0 < length <= _MAX_BODY:
            return None
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)  # Django reads it if it answers after all
        fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
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

    def _unsubscribed_page(self, organization, token):
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
            *(("Set-Cookie", cookie.output(header="")) for cookie in response.cookies.values()),
        ]
        return "200 OK", headers, response.content

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
