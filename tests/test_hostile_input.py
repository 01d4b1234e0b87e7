"""Hostile input never gets a 500: a sweep over every page of an organisation.

Every URL pattern under /o/<org_slug>/ (the same enumeration as the isolation sweep) is requested
by the organisation's own admin, with its objects in the URL. The page is fetched once as it is;
then the names of everything it offers to send back — its form fields and the query parameters
of its own links — are sent back with values no form would produce: NUL bytes (PostgreSQL text
cannot hold them), a 10,000-character string, numbers out of every column's range, broken dates
and cursors, SQL and markup. GET with them in the query string, POST with them in the body (the
page's own forms, CSRF aside).

An answer may be anything a user can act on — the page with field errors, a 400, 404 or 405, a
redirect — but never a server error: the test client re-raises a view's exception, and a 5xx
answer fails the test too. Like the isolation sweep, a new page is covered by construction.
"""

from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.db import transaction
from django.urls import reverse

from candidates.tests.factories import CandidateFactory
from tests.test_isolation import OBJECT_KWARGS, tenant_routes

pytestmark = pytest.mark.django_db

HOSTILE_VALUES = [
    "a\x00b",
    "x" * 10_000,
    "-99999999999999999999999999",
    "2024-13-45T99:99",
    "Zm9v:bar,,'; DROP TABLE x; --<script>\u202e",
    "\u00b2",  # "²": str.isdigit() says yes, int() says no
]

# Django's CSRF token (the test client does not check it; a broken token is CSRF's business).
SKIP_NAMES = {"csrfmiddlewaretoken"}


class _Names(HTMLParser):
    """The field names of a page's forms and the query parameter names of its links."""

    def __init__(self):
        super().__init__()
        self.fields: set[str] = set()
        self.params: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in {"input", "select", "textarea", "button"} and attrs.get("name"):
            self.fields.add(attrs["name"])
        for attribute in ("href", "hx-get", "action"):
            value = attrs.get(attribute) or ""
            if "?" in value:
                self.params.update(name for name, _ in parse_qsl(urlsplit(value).query))


def _names(body: bytes) -> tuple[set[str], set[str]]:
    parser = _Names()
    parser.feed(body.decode(errors="replace"))
    return parser.fields - SKIP_NAMES, parser.params - SKIP_NAMES


def _check(failures: list[str], method: str, url: str, response, value: str) -> None:
    if response.status_code >= 500:
        failures.append(f"{method} {url} with {value[:20]!r} -> {response.status_code}")


def _sweep(client, route, org, failures: list[str], seen: dict) -> None:
    objects = {k: OBJECT_KWARGS[k](org) for k in route.kwargs if k != "org_slug"}
    url = reverse(route.name, kwargs={"org_slug": org.slug, **objects})
    page = client.get(url)
    if page.status_code >= 500:
        failures.append(f"GET {url} -> {page.status_code}")
        return
    html = page.status_code == 200 and page.get("Content-Type", "").startswith("text/html")
    fields, params = _names(page.content) if html else (set(), set())
    names = sorted(fields | params) or ["q"]
    for value in HOSTILE_VALUES:
        query = {name: value for name in names}
        _check(failures, "GET", url, client.get(url, query), value)
        _check(failures, "POST", url, client.post(url, query), value)
    # The same names, each twice (a list where a view expects one value).
    value = HOSTILE_VALUES[0]
    _check(failures, "GET", url, client.get(url, {n: [value, "1"] for n in names}), value)
    _check(failures, "POST", url, client.post(url, {n: [value, "1"] for n in names}), value)
    seen[route.name] = set(names)


def test_no_page_answers_hostile_input_with_a_server_error(client, org, admin_user):
    # A few candidates, so that lists show the links they have only with rows (sorting,
    # paging, the selection's bulk actions).
    for _ in range(3):
        CandidateFactory(organization=org, skills=["python"], tags=["x"], owner=admin_user)
    client.force_login(admin_user)
    failures: list[str] = []
    seen: dict[str, set[str]] = {}
    routes = tenant_routes()
    assert len(routes) >= 50
    for route in routes:
        # Each page's writes are rolled back, so a POST that deletes or leaves something
        # cannot take the next page's objects (or the admin's own membership) with it.
        with transaction.atomic():
            _sweep(client, route, org, failures, seen)
            transaction.set_rollback(True)
    assert failures == []
    # The sweep read what the pages offer (so a page's new field is swept without listing it).
    assert {"q", "sort", "skills", "status", "created_after"} <= seen["candidates:list"]
    assert {"name", "subject"} & seen["campaigns:create"]


def test_no_candidate_page_answers_hostile_input_with_a_server_error(client, org):
    """The pages a candidate opens from an email (no login; a signed token in the address),
    with a valid token, given the same treatment."""
    from django_scopes import scope

    from campaigns.services.consent import consent_request_double_opt_in, consent_token
    from campaigns.services.tokens import candidate_token

    candidate = CandidateFactory(organization=org)
    token = candidate_token(organization_id=org.pk, candidate_id=candidate.pk)
    with scope(organization=org):
        consent = consent_request_double_opt_in(
            candidate=candidate, source="Sign-up form", wording="Keep me posted."
        )
    urls = [
        reverse("campaigns_public:preferences", args=[token]),
        reverse("campaigns_public:unsubscribe", args=[token]),
        reverse("campaigns_public:resubscribe", args=[token]),
        reverse("campaigns_public:consent_confirm", args=[consent_token(consent=consent)]),
    ]
    failures: list[str] = []
    for url in urls:
        page = client.get(url)
        fields, params = _names(page.content) if page.status_code == 200 else (set(), set())
        names = sorted(fields | params) or ["q"]
        for value in HOSTILE_VALUES:
            query = {name: value for name in names}
            _check(failures, "GET", url, client.get(url, query), value)
            _check(failures, "POST", url, client.post(url, query), value)
            _check(failures, "POST", url, client.post(url, {n: [value, "1"] for n in names}), value)
    assert failures == []
    assert "topics" in _names(client.get(urls[0]).content)[0]
