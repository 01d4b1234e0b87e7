"""ESP tracking and inbound webhooks: anymail's views, each behind a guard that answers a
body it cannot read with 400 instead of a server error.

Anymail checks the basic auth of ANYMAIL_WEBHOOK_SECRET and the ESP's signature where it has
one, and answers a failed check with 400. A few of its views read the body before they check
anything, and fail on a malformed one (Amazon SES parses the SNS envelope first, Unisender Go
reads a JSON list as an object); an ESP that is not configured here (a signing key missing, or
Resend without its `svix` package) fails when its view is built. Neither is a reason for a 500:
the request is refused, nothing is written, and the exception goes to the log, where an
operator who did mean to use that ESP sees what is missing.
"""

import functools
import logging

from anymail import urls as anymail_urls
from anymail.exceptions import AnymailConfigurationError, AnymailError
from django.http import HttpResponseBadRequest
from django.urls import URLPattern

logger = logging.getLogger(__name__)

# What reading a malformed body raises inside anymail's parsers (AnymailError: its own word
# for it, e.g. "Malformed SNS message body"; a failed signature check never gets here, anymail
# answers it with 400 itself).
MALFORMED_BODY_ERRORS = (AnymailError, ValueError, KeyError, TypeError, AttributeError, IndexError)


def _guarded(view):
    @functools.wraps(view)  # keeps csrf_exempt: ESPs post without a CSRF token
    def guarded(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except (AnymailConfigurationError, ImportError):
            logger.exception("ESP webhook %s is not configured", request.path)
            return HttpResponseBadRequest("This webhook is not configured.")
        except MALFORMED_BODY_ERRORS:
            logger.warning("ESP webhook %s: unreadable body", request.path, exc_info=True)
            return HttpResponseBadRequest("The webhook body could not be read.")

    return guarded


def _guard(pattern: URLPattern) -> URLPattern:
    pattern.callback = _guarded(pattern.callback)
    return pattern


app_name = anymail_urls.app_name
urlpatterns = [_guard(pattern) for pattern in anymail_urls.urlpatterns]
