"""The tracking fast path: the open pixel and the click redirect skip the rest of the stack.

Right after a big send these two URLs take thousands of requests a second. They need no
session, user, CSRF check, organisation scope or CSP header (a GIF and a redirect): the signed
token is all the authentication there is. This middleware sits right after SecurityMiddleware
and hands those paths straight to their views; every other request passes through untouched.
"""

import re

from campaigns.views import public

# Anything under /e/c/ is a click: a path that is not one signed link id (a URL pasted in,
# "//evil.example", "javascript:…") reaches the click view and gets its 400, never a redirect.
_TRACKING_PATH = re.compile(r"^/e/(?:o/(?P<open>[^/]+)\.gif|c/(?P<click>.+?)/?)$")


class TrackingFastPathMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        match = _TRACKING_PATH.match(request.path_info)
        if match is None:
            return self.get_response(request)
        if match["open"] is not None:
            return public.open_pixel(request, match["open"])
        return public.click(request, match["click"])
