"""The tracking fast path: the candidate-facing URLs that a big send makes busy skip the rest
of the stack.

Right after a big send the open pixel, the click redirect and the one-click unsubscribe
(RFC 8058: mail providers POST ``List-Unsubscribe=One-Click`` without cookies) take thousands
of requests a second. None of them has a session or a user, and the signed token is all the
authentication there is. This middleware sits right after SecurityMiddleware and hands those
requests straight to their views (no URL resolving, no session, auth, messages, htmx, allauth
or organisation middleware); every other request passes through untouched.

* The pixel (a GIF) and the click (a redirect) need nothing else.
* The unsubscribe POST answers an HTML page, so it keeps the three middlewares that page needs:
  CSRF (its "Resubscribe" form posts to a CSRF-protected view: the cookie is read and set as
  usual), X-Frame-Options and the Content Security Policy. Its GET and HEAD (the confirmation
  page a person sees) take the ordinary path.
"""

import re

from csp.middleware import CSPMiddleware
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.csrf import CsrfViewMiddleware

from campaigns.views import public

# Anything under /e/c/ is a click: a path that is not one signed link id (a URL pasted in,
# "//evil.example", "javascript:…") reaches the click view and gets its 400, never a redirect.
# /e/u/<token>/ is exactly the unsubscribe URL (not /e/u/<token>/resubscribe/).
_TRACKING_PATH = re.compile(
    r"^/e/(?:o/(?P<open>[^/]+)\.gif|c/(?P<click>.+?)/?|u/(?P<unsubscribe>[^/]+)/)$"
)


def _unsubscribe_view(request):
    return public.unsubscribe(request, request.tracking_token)


class TrackingFastPathMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        # The same middleware classes as in settings.MIDDLEWARE, in the same order.
        self.unsubscribe = CsrfViewMiddleware(
            XFrameOptionsMiddleware(CSPMiddleware(_unsubscribe_view))
        )

    def __call__(self, request):
        match = _TRACKING_PATH.match(request.path_info)
        if match is None:
            return self.get_response(request)
        if match["open"] is not None:
            response = public.open_pixel(request, match["open"])
        elif match["click"] is not None:
            response = public.click(request, match["click"])
        elif request.method == "POST":
            request.tracking_token = match["unsubscribe"]
            response = self.unsubscribe(request)
        else:
            return self.get_response(request)
        # As CommonMiddleware would: a length lets the server answer without chunking.
        if not response.streaming and not response.has_header("Content-Length"):
            response.headers["Content-Length"] = str(len(response.content))
        return response
