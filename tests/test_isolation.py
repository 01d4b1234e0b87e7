"""The tenant isolation sweep.

Every URL pattern of the project is enumerated from the resolver. Each one under
/o/<org_slug>/ is requested (GET and POST) by a logged-in admin of organisation B:

1. with organisation A's slug and A's objects — the middleware must answer 404;
2. with B's own slug but A's objects in the other URL arguments — the view's access helper
   must answer 404 (no object of another tenant is reachable by id); a POST-only view may
   answer a GET with 405, which it does before looking at any object;

and no answer may contain A's data. A URL keyword argument that this file does not know how to
fill makes the test fail, so every new view is covered by construction: add an entry to
OBJECT_KWARGS that creates an object of the given organisation and returns the value.
URLs outside /o/<org_slug>/ must be listed in PUBLIC_URL_NAMES with a reason.
"""

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django_scopes import scopes_disabled

from crm.models import Invitation, Membership, Role
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

SECRET_MARKER = "Zanzibar-Quillfeather"  # appears in organisation A's data and nowhere else


def _membership(org) -> int:
    return MembershipFactory(organization=org, role=Role.RECRUITER).pk


def _invitation(org) -> int:
    with scopes_disabled():
        return Invitation.objects.create(
            organization=org,
            email=f"{SECRET_MARKER.lower()}@example.com",
            token_hash=secrets.token_hex(32),
            expires_at="2099-01-01T00:00:00Z",
        ).pk


def _candidate(org) -> int:
    from candidates.models import Candidate

    with scopes_disabled():
        return Candidate.objects.create(
            organization=org,
            first_name=SECRET_MARKER,
            last_name="Candidate",
            email=f"{secrets.token_hex(4)}@example.com",
        ).pk


def _job(org) -> int:
    from candidates.models import Job

    with scopes_disabled():
        return Job.objects.create(
            organization=org, kind=Job.Kind.EXPORT, input_name=f"{SECRET_MARKER}.csv"
        ).pk


# URL keyword argument -> function(organization) returning a value that names an object of
# that organisation.
OBJECT_KWARGS: dict[str, Callable] = {
    "membership_id": _membership,
    "invitation_id": _invitation,
    "candidate_id": _candidate,
    "job_id": _job,
}

# URLs outside /o/<org_slug>/, by name, with why they are not tenant pages.
PUBLIC_URL_NAMES = {
    "home": "redirects to the user's own organisations",
    "healthz": "operational health, no tenant data",
    "organization_create": "creates a new organisation for the current user",
    "invitation_accept": "addressed by a secret single-use token, not by organisation",
}


@dataclass
class Route:
    name: str
    kwargs: list[str]
    route: str


def _walk(patterns, prefix="", namespace="", kwargs=()) -> Iterator[tuple]:
    for entry in patterns:
        converters = list(getattr(entry.pattern, "converters", {}).keys())
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            ns = namespace
            if entry.namespace:
                ns = f"{namespace}{entry.namespace}:"
            yield from _walk(entry.url_patterns, route, ns, (*kwargs, *converters))
        elif isinstance(entry, URLPattern):
            yield entry, route, namespace, [*kwargs, *converters]


def all_routes() -> list[tuple[URLPattern, Route]]:
    routes = []
    for pattern, route, namespace, kwargs in _walk(get_resolver().url_patterns):
        name = f"{namespace}{pattern.name}" if pattern.name else None
        routes.append((pattern, Route(name=name, kwargs=kwargs, route=route)))
    return routes


def tenant_routes() -> list[Route]:
    return [route for _, route in all_routes() if "org_slug" in route.kwargs]


def _is_third_party(pattern: URLPattern, route: Route) -> bool:
    module = getattr(pattern.callback, "__module__", "")
    return route.route.startswith(("admin/", "accounts/")) or module.startswith(
        ("allauth.", "django.contrib.admin")
    )


def test_isolation_every_url_is_classified():
    unclassified = [
        route.route
        for pattern, route in all_routes()
        if "org_slug" not in route.kwargs
        and not _is_third_party(pattern, route)
        and route.name not in PUBLIC_URL_NAMES
    ]
    assert unclassified == [], "New URLs outside /o/<org_slug>/ must be listed in PUBLIC_URL_NAMES"


def test_isolation_every_url_argument_can_be_filled():
    unknown = sorted(
        {
            kwarg
            for route in tenant_routes()
            for kwarg in route.kwargs
            if kwarg != "org_slug" and kwarg not in OBJECT_KWARGS
        }
    )
    assert unknown == [], f"Add these URL arguments to OBJECT_KWARGS in {__file__}: {unknown}"


@pytest.fixture
def tenants(db):
    org_a = OrganizationFactory(name=f"{SECRET_MARKER} Org", slug="tenant-a")
    org_b = OrganizationFactory(name="Other Org", slug="tenant-b")
    MembershipFactory(organization=org_a, role=Role.ADMIN)
    outsider = UserFactory(email="outsider@tenant-b.example")
    with scopes_disabled():
        Membership.objects.create(organization=org_b, user=outsider, role=Role.ADMIN)
    return org_a, org_b, outsider


def _requests(client, url):
    yield "GET", client.get(url)
    yield "POST", client.post(url, {"name": "x", "email": "x@example.com", "role": "admin"})


@pytest.mark.django_db
def test_isolation_member_of_another_org_gets_404_everywhere(client, tenants):
    org_a, org_b, outsider = tenants
    client.force_login(outsider)
    routes = tenant_routes()
    assert len(routes) >= 10
    failures = []
    for route in routes:
        objects_of_a = {k: OBJECT_KWARGS[k](org_a) for k in route.kwargs if k != "org_slug"}
        for slug in (org_a.slug, org_b.slug):
            if slug == org_b.slug and not objects_of_a:
                continue  # B's own page without object arguments is B's business
            url = reverse(route.name, kwargs={"org_slug": slug, **objects_of_a})
            for method, response in _requests(client, url):
                body = response.content.decode(errors="replace")
                # A POST-only view answers GET with 405 before looking at any object, the same
                # for every id, so it reveals nothing; every other answer must be 404.
                expected = {404, 405} if method == "GET" else {404}
                if response.status_code not in expected or SECRET_MARKER in body:
                    failures.append(f"{method} {url} -> {response.status_code}")
    assert failures == []


@pytest.mark.django_db
def test_isolation_anonymous_is_sent_to_login_everywhere(client, tenants):
    org_a, _, _ = tenants
    failures = []
    for route in tenant_routes():
        kwargs = {k: OBJECT_KWARGS[k](org_a) for k in route.kwargs if k != "org_slug"}
        url = reverse(route.name, kwargs={"org_slug": org_a.slug, **kwargs})
        response = client.get(url)
        if response.status_code != 302 or "/accounts/login/" not in response["Location"]:
            failures.append(f"GET {url} -> {response.status_code}")
    assert failures == []
