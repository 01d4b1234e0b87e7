import logging

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context
from django.contrib import messages
from django.urls import reverse

from crm.services import MAIL_ERRORS

logger = logging.getLogger(__name__)


class AccountAdapter(DefaultAccountAdapter):
    def get_login_redirect_url(self, request):
        """After login, go back to a pending invitation if there is one, else home."""
        token = request.session.pop("pending_invitation", None)
        if token:
            return reverse("invitation_accept", kwargs={"token": token})
        return super().get_login_redirect_url(request)

    def get_signup_redirect_url(self, request):
        return self.get_login_redirect_url(request)

    def send_mail(self, template_prefix: str, email: str, context_data: dict) -> None:
        """allauth's emails (sign-up confirmation, password reset): a mail server that is down
        or refuses is said on the page, not a server error, and the person can ask again."""
        try:
            super().send_mail(template_prefix, email, context_data)
        except MAIL_ERRORS as error:
            logger.warning(
                "crm.accounts: the %s email could not be sent: %r", template_prefix, error
            )
            request = getattr(context, "request", None)
            if request is not None:
                messages.error(
                    request,
                    "We could not send the email just now: our mail server did not accept it. "
                    "Please try again in a few minutes.",
                )
