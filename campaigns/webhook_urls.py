"""ESP tracking and inbound webhooks: anymail's views, each answering 400 instead of a server
error where the request itself is at fault.

Anymail checks the basic auth of ANYMAIL_WEBHOOK_SECRET and the ESP's signature where it has
one, and answers a failed check with 400 (AnymailWebhookValidationFailure is a
SuspiciousOperation, logged by django.security). A few of its views fail on a body they cannot
read, some before they check anything (Amazon SES parses the SNS envelope first, Unisender Go
reads a JSON list as an object); an ESP that is not configured here (a signing key missing,
Resend without its `svix` package) fails when its view is built. Neither is a reason for a
500. Here:

- an error while anymail *checks or parses* the request becomes its own validation failure:
  400, nothing written, logged like any failed check;
- an ESP that is not configured answers 400 and logs, at ERROR, what is missing, for the
  operator who did mean to use it;
- an error in *our* handling of a well-formed event (the tracking and inbound signals) stays
  a 500, as anymail intends: ESPs retry those later, and the event tables ignore a repeat.
"""

import logging

from anymail import urls as anymail_urls
from anymail.exceptions import (
    AnymailConfigurationError,
    AnymailError,
    AnymailWebhookValidationFailure,
)
from django.http import HttpResponseBadRequest
from django.urls import URLPattern

logger = logging.getLogger(__name__)

# What reading a malformed body raises inside anymail's checks and parsers (AnymailError: its
# own word for it, e.g. "Malformed SNS message body").
MALFORMED_BODY_ERRORS = (AnymailError, ValueError, KeyError, TypeError, AttributeError, IndexError)


def _unreadable(phase: str) -> AnymailWebhookValidationFailure:
    return AnymailWebhookValidationFailure(f"The webhook body could not be read ({phase}).")


class RequestErrorsAre400:
    """Mixed in before an anymail webhook view (see the module's docstring)."""

    def __init__(self, **kwargs):
        self.configuration_error = None
        try:
            super().__init__(**kwargs)
        except (AnymailConfigurationError, ImportError) as error:
            self.configuration_error = error

    def dispatch(self, request, *args, **kwargs):
        if self.configuration_error is not None:
            logger.error(
                "ESP webhook %s is not configured: %s", request.path, self.configuration_error
            )
            return HttpResponseBadRequest("This webhook is not configured.")
        return super().dispatch(request, *args, **kwargs)

    def run_validators(self, request):
        try:
            super().run_validators(request)
        except AnymailWebhookValidationFailure:
            raise
        except MALFORMED_BODY_ERRORS as error:
            raise _unreadable("checking it") from error

    def parse_events(self, request):
        try:
            return super().parse_events(request)
        except AnymailWebhookValidationFailure:
            raise
        except MALFORMED_BODY_ERRORS as error:
            raise _unreadable("parsing it") from error


def _guard(pattern: URLPattern) -> URLPattern:
    view = pattern.callback
    guarded = type(view.view_class.__name__, (RequestErrorsAre400, view.view_class), {})
    pattern.callback = guarded.as_view(**view.view_initkwargs)
    return pattern


app_name = anymail_urls.app_name
urlpatterns = [_guard(pattern) for pattern in anymail_urls.urlpatterns]
