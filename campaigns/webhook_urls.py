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

Each view stays exempt from the CSRF check (no ESP sends a token), as anymail's own are.

The inbound views (`<esp>/inbound/`) take bodies up to CAMPAIGNS_INBOUND_MAX_BYTES instead of
Django's DATA_UPLOAD_MAX_MEMORY_SIZE (10 MB, which every other URL keeps): an ESP posts a
candidate's reply with its attachments, base64 in JSON (a CV of 8 MB makes ~11 MB), and a reply
refused is a reply lost, its sequence emailing on. `InboundBodyLimit` below.
"""

import logging
from io import BytesIO

from anymail import urls as anymail_urls
from anymail.exceptions import (
    AnymailConfigurationError,
    AnymailError,
    AnymailWebhookValidationFailure,
)
from anymail.signals import inbound
from anymail.webhooks.base import AnymailBasicAuthMixin
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse, HttpResponseBadRequest
from django.urls import URLPattern
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt

from campaigns.conf import setting

logger = logging.getLogger(__name__)

# What ESPs post for one inbound email, with room to spare: Postmark up to 35 MB of attachments,
# SendGrid 30 MB, Mailgun 25 MB, each grown by a third in base64. Below the proxy's limit on
# request bodies (docs/operations.md: 55 MB), so that Rapport is the one that refuses, with 413.
INBOUND_MAX_BYTES = 50 * 1024 * 1024


def inbound_max_bytes() -> int:
    return int(setting("CAMPAIGNS_INBOUND_MAX_BYTES", INBOUND_MAX_BYTES))


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

    @method_decorator(csrf_exempt)
    @method_decorator(login_not_required)
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


class InboundBodyLimit:
    """Mixed in before an anymail inbound view: the body is read here, up to
    `inbound_max_bytes()`, before anymail's view reads it; a larger one is refused with 413.

    Django holds `request.body` to DATA_UPLOAD_MAX_MEMORY_SIZE when it reads it itself, and not
    once it has been read (django/http/request.py, `HttpRequest.body`): so the body is read
    here and kept where Django keeps it. Only from a sender with the webhook's credentials:
    anymail's basic auth is checked first, from the headers, and anyone else gets its refusal
    (400) before anything is read. A multipart body (Mailgun's, SendGrid's) is not read
    here: Django streams its files to temporary files and limits only its text fields; its
    declared length is held to the same limit. A text field over Django's limit (a raw-MIME
    post of a large email carries it all in one) is refused with 413 too, and logged."""

    def post(self, request, *args, **kwargs):
        if isinstance(self, AnymailBasicAuthMixin):
            AnymailBasicAuthMixin.validate_request(self, request)
        limit = inbound_max_bytes()
        if not _body_read(request, limit=limit):
            logger.warning(
                "Inbound email refused (413) at %s: its body is over CAMPAIGNS_INBOUND_MAX_BYTES"
                " (%d bytes)",
                request.path,
                limit,
            )
            return _too_large()
        try:
            return super().post(request, *args, **kwargs)
        except RequestDataTooBig:
            logger.warning(
                "Inbound email refused (413) at %s: a form field of its body is over"
                " DATA_UPLOAD_MAX_MEMORY_SIZE (%d bytes), as a raw-MIME post of a large email"
                " is; the ESP's parsed form sends attachments as files",
                request.path,
                settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
            )
            return _too_large()


def _body_read(request, *, limit: int) -> bool:
    """Read the request's body, up to `limit` bytes, for Django and anymail to use; False when
    it is longer (nothing past `limit` + 1 bytes is read)."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return False
    if request.content_type == "multipart/form-data":
        return True
    body = request.read(limit + 1)
    if len(body) > limit:
        return False
    # As `HttpRequest.body` keeps what it has read: `request.body` and `request.POST` use it.
    request._body = body
    request._stream = BytesIO(body)
    return True


def _too_large() -> HttpResponse:
    return HttpResponse("This email is too large.", status=413, content_type="text/plain")


def _guard(pattern: URLPattern) -> URLPattern:
    view = pattern.callback
    limits = (InboundBodyLimit,) if view.view_class.signal is inbound else ()
    guarded = type(view.view_class.__name__, (RequestErrorsAre400, *limits, view.view_class), {})
    pattern.callback = guarded.as_view(**view.view_initkwargs)
    return pattern


app_name = anymail_urls.app_name
urlpatterns = [_guard(pattern) for pattern in anymail_urls.urlpatterns]
