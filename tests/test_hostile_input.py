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

A second sweep sends what a browser's own widgets allow rather than what they refuse: each form
filled in as a person would, with one date, date-time or number field at a time at the ends of
its range (9999-12-31, 3e9, 1e5000) in an organisation west of UTC. Those values pass
validation, so they test the date arithmetic, time-zone conversion and integer columns behind
it; on the code before 2026-11-28 it found four 500s (a date filter, a scheduled broadcast,
two sending-domain fields).
"""

from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.db import transaction
from django.urls import reverse

from campaigns.tests.factories import EmailTemplateFactory, SavedSearchFactory
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


# Values a browser's own widgets produce (a date picker allows 9999-12-31, a number box 3e9),
# in a form that is otherwise valid, so that they get past validation to the code behind it:
# date arithmetic at the calendar's ends, integer columns, time-zone conversion, exponents.
EXTREME_VALUES = {
    "date": ["9999-12-31", "0001-01-01"],
    "datetime-local": ["9999-12-31T23:59", "0001-01-01T00:00"],
    "number": ["3000000000", "-3000000000", "1e5000"],
}
# What a person would type into an empty required field of each kind.
PLAUSIBLE = {
    "email": "hostile.test@example.com",
    "url": "https://example.com/hostile",
    "number": "1",
    "date": "2031-05-06",
    "datetime-local": "2031-05-06T10:00",
    "tel": "+44 20 7946 0000",
}
CONTROL_TAGS = {"input", "select", "textarea"}


class _Forms(HTMLParser):
    """A page's forms as a browser would submit them: action, method and each control's name,
    type and current value (checked boxes, selected options, textarea text)."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._form: dict | None = None
        self._select: dict | None = None
        self._textarea: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._form = {
                "action": attrs.get("action") or "",
                "method": (attrs.get("method") or "get").lower(),
                "controls": [],
            }
            self.forms.append(self._form)
        elif tag == "option" and self._select is not None:
            self._select["options"].append(attrs.get("value") or "")
            if "selected" in attrs:
                self._select["value"] = attrs.get("value") or ""
                self._select["chosen"] = True
        elif self._form is not None and attrs.get("name") and tag in CONTROL_TAGS:
            kind = (attrs.get("type") or "text").lower() if tag == "input" else tag
            if kind in {"submit", "button", "file", "image", "reset"}:
                return
            control = {
                "name": attrs["name"],
                "type": kind,
                "required": "required" in attrs,
                # A box without a value attribute is sent as "on".
                "value": attrs.get("value") or ("on" if kind == "checkbox" else ""),
                "options": [],
                "off": kind in {"checkbox", "radio"} and "checked" not in attrs,
            }
            self._form["controls"].append(control)
            if tag == "select":
                self._select = control
            elif tag == "textarea":
                self._textarea = control

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea["value"] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def _filled(controls: list[dict], *, everything: bool = False) -> list[tuple[str, str]]:
    """The form's data as submitted, with empty required fields given a plausible value. With
    `everything`, as a thorough person fills it in: every box ticked (an object's box once, so
    that a saved search is not both included and excluded), the last choice of each set of
    radio buttons (often the one that switches more fields on: "later", "custom"), and every
    empty date, number, email or address field filled in."""
    radios: dict[str, str] = {}
    if everything:
        for control in controls:
            if control["type"] == "radio":
                radios[control["name"]] = control["value"]
    ticked: set[str] = set()
    data = []
    for control in controls:
        if control["type"] == "radio" and control["name"] in radios:
            if control["value"] == radios[control["name"]]:
                data.append((control["name"], control["value"]))
            continue
        if control["off"]:
            if not (everything and control["type"] == "checkbox"):
                continue
            if control["value"] != "on" and control["value"] in ticked:
                continue
            ticked.add(control["value"])
        value = control["value"]
        if control["type"] == "select" and not value:
            # A person picks a real option where one is needed ("Choose a template").
            choices = [option for option in control["options"] if option]
            value = choices[0] if (control["required"] or everything) and choices else ""
        if not value and (control["required"] or (everything and control["type"] in PLAUSIBLE)):
            value = PLAUSIBLE.get(control["type"], "Hostile test")
        data.append((control["name"], value))
    return data


def _forms(body: bytes) -> list[dict]:
    parser = _Forms()
    parser.feed(body.decode(errors="replace"))
    return parser.forms


def _extreme_sweep(client, route, org, failures: list[str], tried: list[str]) -> None:
    objects = {k: OBJECT_KWARGS[k](org) for k in route.kwargs if k != "org_slug"}
    url = reverse(route.name, kwargs={"org_slug": org.slug, **objects})
    page = client.get(url)
    if page.status_code != 200 or not page.get("Content-Type", "").startswith("text/html"):
        return
    for form in _forms(page.content):
        action = form["action"] or url
        if not action.startswith(f"/o/{org.slug}/"):
            continue
        send = client.get if form["method"] == "get" else client.post
        # As the page offers it, and as filled in by someone who sets every option.
        bases = [_filled(form["controls"]), _filled(form["controls"], everything=True)]
        for base in bases:
            for control in form["controls"]:
                for value in EXTREME_VALUES.get(control["type"], []):
                    data: dict[str, list[str]] = {}
                    for name, current in base:
                        data.setdefault(name, []).append(current)
                    data[control["name"]] = [value]
                    # Followed, so that a value saved but unreadable shows on the next page.
                    response = send(action, data, follow=True)
                    _check(failures, form["method"].upper(), action, response, value)
                    tried.append(f"{route.name}:{control['name']}")


def test_no_form_answers_extreme_widget_values_with_a_server_error(client, org, admin_user):
    """Each form of each page, filled in as its page offers it (a plausible value in each
    empty required field), sent with one date, date-time or number field at a time set to the
    ends of what the browser's widget allows. The organisation is west of UTC, so that its
    last wall-clock minute is already past year 9999 in UTC."""
    org.time_zone = "America/Los_Angeles"
    org.save(update_fields=["time_zone"])
    for _ in range(3):
        CandidateFactory(organization=org, skills=["python"], tags=["x"], owner=admin_user)
    # What a broadcast needs to be valid: a template and an audience.
    EmailTemplateFactory(organization=org)
    SavedSearchFactory(organization=org, owner=admin_user)
    client.force_login(admin_user)
    client.raise_request_exception = False  # a 500 is recorded and the sweep goes on
    failures: list[str] = []
    tried: list[str] = []
    for route in tenant_routes():
        with transaction.atomic():
            _extreme_sweep(client, route, org, failures, tried)
            transaction.set_rollback(True)
    assert failures == []
    # The sweep reached the fields the audit found unguarded.
    assert {"candidates:list:created_before", "campaigns:create:scheduled_at"} <= set(tried)
