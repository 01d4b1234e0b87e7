"""Personas and helpers for every test (see STYLE.md rule 12).

Each organisation comes with three logged-in-able people: an admin, a recruiter and a viewer.
`other_org` is a second tenant whose members must never see `org`'s data.
"""

import uuid

import pytest
from django.test import Client
from django_scopes import scope, scopes_disabled

from crm.models import Role
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory


@pytest.fixture(autouse=True)
def _isolated_files_and_cache(settings, tmp_path):
    """Each test gets its own media folder and its own cache namespace in the real Redis
    (rate limits and cached sessions never leak between tests or into a running dev server)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}
    }


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Hashing a password the production way (PBKDF2, a million rounds) takes ~0.6 s here, and
    every test makes users: a fast hasher for tests. The production hasher is Django's
    default, PASSWORD_HASHERS is not set in crm/settings.py."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch):
    """The DNS is the outside world: every test resolves names against a fake where no name
    exists until the test adds its records (campaigns/tests/fake_dns.py)."""
    from campaigns.tests.fake_dns import FakeDNS

    fake = FakeDNS()
    monkeypatch.setattr("dns.resolver.resolve", fake.resolve)
    return fake


@pytest.fixture
def org(db):
    return OrganizationFactory(name="Acme Talent", slug="acme")


@pytest.fixture
def other_org(db):
    return OrganizationFactory(name="Globex Hiring", slug="globex")


def _member(organization, role, email):
    user = UserFactory(email=email)
    MembershipFactory(organization=organization, user=user, role=role)
    return user


@pytest.fixture
def admin_user(org):
    return _member(org, Role.ADMIN, "ada.admin@acme.example")


@pytest.fixture
def recruiter_user(org):
    return _member(org, Role.RECRUITER, "rex.recruiter@acme.example")


@pytest.fixture
def viewer_user(org):
    return _member(org, Role.VIEWER, "vera.viewer@acme.example")


@pytest.fixture
def outsider_user(other_org):
    """An admin of another organisation: every URL of `org` must answer 404 to them."""
    return _member(other_org, Role.ADMIN, "olga.outsider@globex.example")


def _client_for(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_client(admin_user):
    return _client_for(admin_user)


@pytest.fixture
def recruiter_client(recruiter_user):
    return _client_for(recruiter_user)


@pytest.fixture
def viewer_client(viewer_user):
    return _client_for(viewer_user)


@pytest.fixture
def outsider_client(outsider_user):
    return _client_for(outsider_user)


@pytest.fixture
def in_org(org):
    """Run a block of test code inside the organisation's scope: `with in_org(): ...`."""
    return lambda: scope(organization=org)


@pytest.fixture
def unscoped():
    return scopes_disabled
