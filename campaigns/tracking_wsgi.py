"""The tracking endpoints' WSGI front, in front of Django (crm/wsgi.py): what gunicorn's sync and
gthread workers serve. The decisions and answers are `campaigns.tracking_front`'s; this only
turns the environ into a `TrackingRequest` and the answer into start_response, and hands
everything the front does not answer to Django's WSGI application unchanged.
"""

from __future__ import annotations

import io
from dataclasses import replace

from campaigns.tracking_front import (
    PREFIX,
    TrackingFront,
    TrackingRequest,
    is_secure,
    proxy_ssl_header,
)


class TrackingApplication:
    """WSGI: the three tracking answers here, everything else to `django_application`."""

    def __init__(self, django_application):
        self.django = django_application
        self.front = TrackingFront()
        self.proxy_header = proxy_ssl_header()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX):
            return self.django(environ, start_response)
        request = TrackingRequest(
            method=environ.get("REQUEST_METHOD", ""),
            path=path,
            query_string=environ.get("QUERY_STRING", ""),
            is_secure=is_secure(
                proxy_header_value=environ.get(self.proxy_header) if self.proxy_header else None,
                scheme=environ.get("wsgi.url_scheme", "http"),
            ),
            user_agent=environ.get("HTTP_USER_AGENT", ""),
            remote_addr=environ.get("REMOTE_ADDR", ""),
            cookie=environ.get("HTTP_COOKIE", ""),
            content_type=environ.get("CONTENT_TYPE", ""),
            content_length=environ.get("CONTENT_LENGTH", ""),
        )
        route = self.front.route(request)
        if route is None:
            return self.django(environ, start_response)
        if route.body_length:
            body = environ["wsgi.input"].read(route.body_length)
            environ["wsgi.input"] = io.BytesIO(body)  # Django reads it if it answers after all
            request = replace(request, body=body)
        answer = self.front.answer(route, request)
        if answer is None:
            return self.django(environ, start_response)
        start_response(answer.status_line, answer.headers)
        return [answer.body]
