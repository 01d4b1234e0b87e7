from allauth.account.adapter import DefaultAccountAdapter
from django.urls import reverse


class AccountAdapter(DefaultAccountAdapter):
    def get_login_redirect_url(self, request):
        """After login, go back to a pending invitation if there is one, else home."""
        token = request.session.pop("pending_invitation", None)
        if token:
            return reverse("invitation_accept", kwargs={"token": token})
        return super().get_login_redirect_url(request)

    def get_signup_redirect_url(self, request):
        return self.get_login_redirect_url(request)
