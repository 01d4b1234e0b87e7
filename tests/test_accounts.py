"""Accounts through django-allauth: sign-up and email verification, login, password reset, MFA.

Every flow goes through the real views, templates (templates/allauth/) and PostgreSQL, with
emails read from pytest-django's `mailoutbox`. allauth keeps rate limits and used TOTP codes in
the Redis cache; conftest.py gives every test its own cache namespace, so no test is throttled
because of another.
"""

import base64
import hashlib
import hmac
import re
import struct
import time

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"  # tests.factories.UserFactory's password
NEW_PASSWORD = "a brand new long passphrase"
LOGIN_ERROR = "The email address and/or password you specified are not correct."


def _link(message, path_prefix: str) -> str:
    """The path of the first link in an email's text that starts with path_prefix."""
    match = re.search(rf"https?://[^/\s]+({re.escape(path_prefix)}\S+)", message.body)
    assert match, f"no {path_prefix} link in:\n{message.body}"
    return match.group(1)


def _totp(secret: str) -> str:
    """The current RFC 6238 code (SHA-1, 30 s, 6 digits), as an authenticator app computes it."""
    counter = int(time.time()) // 30
    digest = hmac.new(
        base64.b32decode(secret, casefold=True), struct.pack(">Q", counter), hashlib.sha1
    ).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def _fresh_totp(secret: str) -> str:
    """A code that stays valid for at least a second (the server allows no clock drift)."""
    if time.time() % 30 > 29:
        time.sleep(30 - time.time() % 30 + 0.05)
    return _totp(secret)


def _login(client, email: str, password: str = PASSWORD):
    return client.post(reverse("account_login"), {"login": email, "password": password})


def _reauthenticate(client):
    """allauth asks for the password again (not just a login) before security changes."""
    response = client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    assert response.status_code == 302
    return response


def _is_logged_in(client) -> bool:
    return "_auth_user_id" in client.session


# --- sign-up and email verification ----------------------------------------------------------


def test_signup_verification_link_logs_in_and_leads_to_organization_create(client, mailoutbox):
    response = client.post(
        reverse("account_signup"),
        {"email": "nora.new@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert not _is_logged_in(client)
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["nora.new@example.com"]
    confirm_path = _link(mailoutbox[0], "/accounts/confirm-email/")

    page = client.get(confirm_path)  # opening the link only shows the confirm button
    assert page.status_code == 200
    assert b'type="submit"' in page.content
    assert EmailAddress.objects.get(email="nora.new@example.com").verified is False

    response = client.post(confirm_path, follow=True)

    assert EmailAddress.objects.get(email="nora.new@example.com").verified is True
    assert _is_logged_in(client)
    assert response.redirect_chain[-1] == (reverse("organization_create"), 302)
    assert b"Create your organisation" in response.content


def test_signup_invalid_input_shows_errors_next_to_fields(client, mailoutbox):
    response = client.post(
        reverse("account_signup"),
        {"email": "nora.new@example.com", "password1": "short", "password2": "different"},
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'<input[^>]*class="form-control is-invalid"[^>]*id="id_password1"', html)
    assert 'id="id_password1_errors"' in html
    assert "This password is too short." in html
    assert mailoutbox == []


def test_signup_unverified_user_cannot_log_in_until_confirmed(client, mailoutbox):
    client.post(
        reverse("account_signup"),
        {"email": "nora.new@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    client.logout()

    response = _login(client, "nora.new@example.com")

    assert response["Location"] == reverse("account_email_verification_sent")
    assert not _is_logged_in(client)


# --- login and account enumeration ------------------------------------------------------------


def test_login_correct_password_goes_home(client):
    user = UserFactory(email="kim@example.com")

    response = _login(client, "kim@example.com")

    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert client.session["_auth_user_id"] == str(user.pk)


def test_login_wrong_password_shows_the_same_error_as_an_unknown_email(client):
    UserFactory(email="kim@example.com")

    wrong_password = _login(client, "kim@example.com", "not my password")
    unknown_email = _login(client, "nobody@example.com", "not my password")

    assert (wrong_password.status_code, unknown_email.status_code) == (200, 200)
    assert wrong_password.context["form"].non_field_errors() == [LOGIN_ERROR]
    assert unknown_email.context["form"].non_field_errors() == [LOGIN_ERROR]
    assert LOGIN_ERROR in wrong_password.content.decode()
    assert not _is_logged_in(client)


def test_password_reset_unknown_email_shows_the_same_page_as_a_known_one(client, mailoutbox):
    UserFactory(email="kim@example.com")
    url = reverse("account_reset_password")

    known = client.post(url, {"email": "kim@example.com"})
    unknown = client.post(url, {"email": "nobody@example.com"})

    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"] == reverse("account_reset_password_done")
    # Both addresses get an email; only the account holder's contains a reset link.
    assert [message.to for message in mailoutbox] == [["kim@example.com"], ["nobody@example.com"]]
    assert "/accounts/password/reset/key/" in mailoutbox[0].body
    assert "/accounts/password/reset/key/" not in mailoutbox[1].body


# --- password reset ----------------------------------------------------------------------------


def test_password_reset_link_sets_a_new_password(client, mailoutbox):
    UserFactory(email="kim@example.com")
    client.post(reverse("account_reset_password"), {"email": "kim@example.com"})
    key_path = _link(mailoutbox[0], "/accounts/password/reset/key/")

    opened = client.get(key_path)  # allauth moves the key into the session and redirects
    form_path = opened["Location"]
    form_page = client.get(form_path)
    response = client.post(form_path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    assert opened.status_code == 302
    assert form_page.status_code == 200
    assert b'id="id_password1"' in form_page.content
    assert response["Location"] == reverse("account_reset_password_from_key_done")
    assert _login(client, "kim@example.com", PASSWORD).status_code == 200  # old one refused
    assert _login(client, "kim@example.com", NEW_PASSWORD)["Location"] == reverse("home")


def test_password_reset_link_works_only_once(client, mailoutbox):
    UserFactory(email="kim@example.com")
    client.post(reverse("account_reset_password"), {"email": "kim@example.com"})
    key_path = _link(mailoutbox[0], "/accounts/password/reset/key/")
    form_path = client.get(key_path)["Location"]
    client.post(form_path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    response = client.get(key_path, follow=True)

    assert response.context["token_fail"] is True
    assert b"Bad token" in response.content  # allauth's titles in sentence case


# --- two-factor authentication ------------------------------------------------------------------


def test_mfa_totp_activation_then_login_requires_the_code(client):
    user = UserFactory(email="kim@example.com")
    _login(client, "kim@example.com")
    asked = client.get(reverse("mfa_activate_totp"))
    assert asked["Location"].startswith(reverse("account_reauthenticate"))
    _reauthenticate(client)
    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200
    assert b'src="data:image/svg+xml;base64,' in page.content  # the QR code, allowed by the CSP
    secret = page.context["form"].secret

    activated = client.post(reverse("mfa_activate_totp"), {"code": _fresh_totp(secret)})

    assert activated.status_code == 302
    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).count() == 1

    client.post(reverse("account_logout"))
    password_step = _login(client, "kim@example.com")
    assert password_step["Location"] == reverse("mfa_authenticate")
    assert not _is_logged_in(client)

    wrong_code = f"{(int(_totp(secret)) + 1) % 1_000_000:06d}"
    refused = client.post(reverse("mfa_authenticate"), {"code": wrong_code})
    assert refused.status_code == 200
    assert "Incorrect code." in refused.content.decode()
    assert not _is_logged_in(client)

    accepted = client.post(reverse("mfa_authenticate"), {"code": _fresh_totp(secret)})
    assert accepted["Location"] == reverse("home")
    assert client.session["_auth_user_id"] == str(user.pk)


def test_mfa_activation_wrong_code_is_refused(client):
    user = UserFactory(email="kim@example.com")
    _login(client, "kim@example.com")
    _reauthenticate(client)
    secret = client.get(reverse("mfa_activate_totp")).context["form"].secret

    wrong_code = f"{(int(_totp(secret)) + 1) % 1_000_000:06d}"
    response = client.post(reverse("mfa_activate_totp"), {"code": wrong_code})

    assert response.status_code == 200
    assert 'id="id_code_errors"' in response.content.decode()
    assert not Authenticator.objects.filter(user=user).exists()


# --- the pages themselves --------------------------------------------------------------------


@pytest.mark.parametrize(
    "url_name",
    ["account_login", "account_signup", "account_reset_password", "account_reset_password_done"],
)
def test_entrance_page_renders_as_card_without_app_navigation(client, url_name):
    response = client.get(reverse(url_name))

    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="flex-grow-1 auth-entrance"' in html
    assert 'id="org-switcher"' not in html  # the navbar's organisation menu is for members
    assert "btn btn-primary" in html or url_name == "account_reset_password_done"


@pytest.mark.parametrize(
    "url_name", ["account_email", "account_change_password", "mfa_index", "account_logout"]
)
def test_account_page_renders_for_logged_in_user(client, url_name):
    UserFactory(email="kim@example.com")
    _login(client, "kim@example.com")

    response = client.get(reverse(url_name))

    html = response.content.decode()
    assert response.status_code == 200
    if url_name == "account_logout":
        assert "auth-entrance" in html  # confirming sign-out is an entrance card
    else:
        assert 'aria-label="Account settings"' in html
        assert 'class="nav nav-underline section-tabs mb-4"' in html  # like Settings' tabs
        assert 'aria-current="page"' in html


# --- Django's admin and the rate limits behind a proxy --------------------------------------


def test_admin_login_goes_through_allauth_and_its_second_factor(client):
    staff = UserFactory(email="ops@example.com", is_staff=True, is_superuser=True)
    Authenticator.objects.create(
        user=staff, type=Authenticator.Type.TOTP, data={"secret": "JBSWY3DPEHPK3PXP"}
    )
    shown = client.get("/admin/login/?next=/admin/")
    assert shown.status_code == 302
    assert shown["Location"].startswith(reverse("account_login"))

    # Django's own admin form is not there to take the password instead.
    posted = client.post(
        "/admin/login/?next=/admin/", {"username": "ops@example.com", "password": PASSWORD}
    )
    assert posted.status_code == 302
    assert not _is_logged_in(client)
    assert _login(client, "ops@example.com")["Location"] == reverse("mfa_authenticate")
    # The password alone does not open the admin: the second factor is still to come.
    assert not _is_logged_in(client)
    assert client.get("/admin/").status_code == 302


def test_admin_refuses_a_signed_in_user_who_is_not_staff(client):
    UserFactory(email="recruiter@example.com")
    _login(client, "recruiter@example.com")
    refused = client.get("/admin/login/")
    assert refused.status_code == 403
    page = " ".join(refused.content.decode().split())
    assert "It is for the people who run this Rapport site." in page
    assert "Ask an admin of this organisation" not in page


def _login_from(client, email, password, address):
    """A login through one reverse proxy at 10.0.0.1, for the client at `address`."""
    return client.post(
        reverse("account_login"),
        {"login": email, "password": password},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR=address,
    )


def test_failed_logins_behind_the_proxy_are_counted_per_client_not_per_proxy(client, settings):
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1  # production's default (TRUSTED_PROXY_COUNT)
    UserFactory(email="dana@example.com")
    for index in range(12):  # over the 10 failures a minute allowed to one address
        other = _login_from(
            client, f"nobody{index}@example.com", "wrong password", f"198.51.100.{index}"
        )
        assert LOGIN_ERROR in other.content.decode()

    ok = _login_from(client, "dana@example.com", PASSWORD, "203.0.113.7")
    assert ok.status_code == 302
    assert _is_logged_in(client)


def test_failed_logins_from_one_client_behind_the_proxy_are_throttled(client, settings):
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    UserFactory(email="dana@example.com")
    for index in range(10):
        _login_from(client, f"nobody{index}@example.com", "wrong password", "198.51.100.9")
    throttled = _login_from(client, "dana@example.com", PASSWORD, "198.51.100.9")
    assert "Too many failed login attempts" in throttled.content.decode()
    assert not _is_logged_in(client)


class _MailServerDown:
    """EMAIL_BACKEND for a mail server that refuses connections."""

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError(111, "Connection refused")


MAIL_DOWN = "We could not send the email just now"


def test_password_reset_while_the_mail_server_is_down_says_so(client, settings):
    settings.EMAIL_BACKEND = f"{__name__}._MailServerDown"
    UserFactory(email="kim@example.com")
    response = client.post(
        reverse("account_reset_password"), {"email": "kim@example.com"}, follow=True
    )
    assert response.status_code == 200
    assert MAIL_DOWN in response.content.decode()


def test_signup_while_the_mail_server_is_down_keeps_the_account_and_says_so(client, settings):
    settings.EMAIL_BACKEND = f"{__name__}._MailServerDown"
    response = client.post(
        reverse("account_signup"),
        {"email": "new@example.com", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        follow=True,
    )
    assert response.status_code == 200
    assert MAIL_DOWN in response.content.decode()
    assert EmailAddress.objects.filter(email="new@example.com", verified=False).exists()


def _texts(html: str, name: str) -> list[str]:
    from crm.tests.markup import elements, text

    return [text(element) for element in elements(html) if element.name == name]


def test_allauth_pages_write_titles_labels_and_buttons_in_sentence_case(client):
    html = client.get(reverse("account_login")).content.decode()

    assert _texts(html, "h1") == ["Sign in"]  # allauth says "Sign In"
    assert "Remember me" in _texts(html, "label")
    assert "Sign in" in _texts(html, "button")


def test_email_page_offers_make_primary_only_with_another_address(client):
    user = UserFactory(email="solo@example.com")
    client.force_login(user)

    alone = client.get(reverse("account_email")).content.decode()
    EmailAddress.objects.create(user=user, email="other@example.com", verified=True)
    two = client.get(reverse("account_email")).content.decode()

    # The only address is the primary one already.
    assert 'name="action_primary"' not in alone
    assert "Make primary" in _texts(two, "button")
