"""Hostile input never gets a server error: a sweep over every URL of the project.

The product rule: bad input gets a clear error and loses nothing; never a 500 for user input.
An answer may be anything a person (or a mail provider) can act on — the page with field errors,
a 400, 403, 404 or 405, a redirect — but never a 5xx, and the view may not raise (the test
client re-raises a view's exception; the sweep records it, with where it was raised, and goes
on).

What is swept, all derived from the resolver (a new URL is covered by construction, and a URL
the sweep does not know how to reach fails `test_hostile_sweep_covers_every_url`):

* every page under /o/<org_slug>/ (the isolation sweep's enumeration, with consistent objects
  of a seeded organisation in the URL, and once more with each other kind of an object that
  has one: a sequence besides a broadcast, a pool with its own stages, an import), as its admin
  in full and as a recruiter, a viewer and an anonymous visitor in part;
* the candidate-facing pages, the tracking pixel, click redirect and one-click unsubscribe
  (through Django and through the tracking front that answers them in production), with valid
  and forged tokens;
* the ESP webhooks (anymail): garbage from anyone, and from the ESP well-formed events and
  inbound emails full of hostile values (an inbound email is whatever anyone wrote);
* the account pages (django-allauth), signed in and out. Django's admin is left out (operators
  only, Django's own code).

The names sent to a page are the names it reads: its forms' fields and its links' query
parameters (read from the page itself, and from every other page whose form posts to it or
links to it), the names its view reads from the request by hand and the fields of the forms
and filter sets it builds (read from its source and its helpers'), and one unknown name.

Each name gets the hostile values in rotation: request r gives name j the value
(j + r) mod len(values), so that len(values) requests per method give every name every value
(every third request sends each name twice, a list where one value is expected). A name the
view reads by hand is also sent alone with each value, so that a hostile neighbour cannot hide
it by sending the view down another path. A failing request is sent again one name at a time
to name the culprit. Besides: htmx's headers on every other request, a POST of invalid JSON
with none of the fields, a multipart POST with files where text is expected (and text where a
file is), and ids in the path that name nothing.

On the code before 2026-11-28 the sweep found: a `next` that is not a path (`?next=-1`) taken
for a view's name (NoReverseMatch, six views); cursors of the candidate list, the board and the
timeline with an offset PostgreSQL refuses (`-23:59`) or past the ends of time in UTC; a NUL in
a saved search's query (PostgreSQL's JSON cannot hold it); and a NUL in an ESP event or an
inbound email (a reply that was lost, the ESP retrying for ever).

A second sweep sends what a browser's own widgets allow rather than what they refuse: each form
filled in as a person would, with one date, date-time or number field at a time at the ends of
its range (9999-12-31, 3e9, 1e5000) in an organisation west of UTC. Those values pass
validation, so they test the date arithmetic, time-zone conversion and integer columns behind
it; on the code before 2026-11-28 it found four 500s (a date filter, a scheduled broadcast,
two sending-domain fields).
"""

import base64
import importlib
import inspect
import json
import re
import secrets
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import django_filters
import pytest
from django import forms
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns.tests.factories import EmailTemplateFactory, SavedSearchFactory
from candidates.tests.factories import CandidateFactory, CustomFieldFactory
from tests.test_isolation import OBJECT_KWARGS, PUBLIC_URL_NAMES, all_routes, tenant_routes

pytestmark = pytest.mark.django_db
ROOT = str(Path(__file__).resolve().parents[1]) + "/"


class Raw(str):
    """A value already percent-encoded, sent as it is (bytes no `str` can hold)."""


# Cursors and page tokens, tampered: the list's and the timeline's (`<moment>,<id>`) with an
# offset PostgreSQL refuses and an id past bigint, the board's (`<moment>_<id>`) at the start
# of time east of UTC (year 0 in UTC), garbage base64.
CURSORS = ("2026-01-01T00:00:00-23:59,99999999999999999999", "0001-01-01T00:00:00+23:59_1")
TAMPERED_TOKEN = "eyJpZCI6ICIxOyBkcm9wIn0====="
# A query string inside a field (a saved search's, the board's filters sent back).
NESTED_QUERY = (
    "after=0001-01-01T00%3A00%3A00%2B23%3A59_1&before=9999-12-31T23%3A59%3A59-23%3A59%2C1"
    "&q=%00&sort=-id%3Bdrop&page=-1&status=nope&skills=%FF"
)
# One value of each kind no form would produce. Each is also junk wherever another kind is
# expected (a date where a number goes, a cursor where a choice goes).
VALUES: tuple[str, ...] = (
    "a\x00b",  # NUL: PostgreSQL text cannot hold it
    "x" * 10_000,  # longer than any column or any limit
    "-1",
    "0",
    "99999999999999999999",  # past PostgreSQL's bigint
    "-id;drop'\"<b>\u202e",  # not a number, an unknown choice, an injected sort column, markup
    "2026-02-30",  # a well-formed date that does not exist
    "0000-00-00",
    "\u00b2",  # "²": str.isdigit() says yes, int() says no
    "1e5000",  # a number no float holds (Decimal takes it)
    Raw("%ff%fe%ed%a0%80"),  # not UTF-8, and a lone surrogate as UTF-8 would spell it
    *CURSORS,
    TAMPERED_TOKEN,
    NESTED_QUERY,
)
# What a query string's names get in the rotation: the cursors go to the names read by hand,
# which are the ones that parse them (SINGLE_VALUES).
QUERY_VALUES = tuple(value for value in VALUES if value not in CURSORS)
# What a form's fields get: no cursors or page tokens, one impossible date and one id that
# names nothing.
FORM_VALUES = tuple(
    value for value in QUERY_VALUES if value not in {"0", "0000-00-00", TAMPERED_TOKEN}
)
# What a name the view reads by hand gets when it is sent alone: what hand-written parsing
# trips on (ids, pages, cursors, a query string inside a field).
SINGLE_VALUES = tuple(
    value
    for value in VALUES
    if not isinstance(value, Raw)
    and value not in {"0", "2026-02-30", "0000-00-00", "1e5000", TAMPERED_TOKEN}
)
# A name no page reads: extra fields must be ignored, not trip anything.
UNKNOWN_NAME = "zz_unknown_field"
# Django's CSRF token (the test client does not check it; a broken token is CSRF's business).
SKIP_NAMES = {"csrfmiddlewaretoken"}
# An id in a URL that names nothing: past PostgreSQL's bigint.
NO_SUCH_ID = "99999999999999999999"
INVALID_JSON = b'{"a": [1, \x00 "\xff'
# A file's name and content where text was expected.
HOSTILE_FILES = (
    ("a\x00b.csv", b"\x00\xff\xfe" * 100),
    ("../../" + "x" * 300 + ".pdf", b"%PDF-1.4 not really"),
    (".empty", b""),
)


def _encode(pairs: Iterable[tuple[str, str]]) -> str:
    """A query string (or urlencoded body) of `pairs`; a Raw value goes as it is."""
    return "&".join(
        f"{quote(name, safe='')}={value if isinstance(value, Raw) else quote(value, safe='')}"
        for name, value in pairs
    )


def _rotation(names: list[str], step: int, values: tuple = VALUES) -> list[tuple[str, str]]:
    """Step `step` of the rotation: name j gets value (j + step) mod len(values). On every
    third step each name comes twice, "1" then its value (a list where the view expects one
    value; `.get()` takes the last)."""
    pairs = [(name, values[(index + step) % len(values)]) for index, name in enumerate(names)]
    if step % 3 == 2:
        pairs = [pair for name, value in pairs for pair in ((name, "1"), (name, value))]
    return pairs


# --- reading pages: the names they send back ----------------------------------------------------


class _Page(HTMLParser):
    """The names a page sends back, by method and by the path they go to ("" for the page
    itself): each form's fields (a control outside any form goes both ways) and the query
    parameters of its links; and the ids its htmx attributes target."""

    def __init__(self):
        super().__init__()
        self.sent: dict[tuple[str, str], set[str]] = {}
        self.targets: set[str] = set()
        self._form: tuple[str, str] | None = None

    def _add(self, method: str, url: str, names: Iterable[str]) -> None:
        self.sent.setdefault((method, urlsplit(url).path), set()).update(names)

    def handle_starttag(self, tag, attrs):
        attrs = {key: value or "" for key, value in attrs}
        if tag == "form":
            method = "post" if attrs.get("hx-post") else attrs.get("method", "get").lower()
            action = attrs.get("action") or attrs.get("hx-post") or attrs.get("hx-get") or ""
            self._form = (method, action)
        name = attrs.get("name")
        if tag in {"input", "select", "textarea", "button"} and name:
            if attrs.get("hx-post") or attrs.get("hx-get"):
                own = (
                    ("post", attrs["hx-post"]) if attrs.get("hx-post") else ("get", attrs["hx-get"])
                )
                self._add(*own, [name])
            if self._form is not None:
                self._add(*self._form, [name])
            else:
                self._add("get", "", [name])
                self._add("post", "", [name])
        for attribute in ("href", "hx-get", "hx-post", "action", "formaction"):
            url = attrs.get(attribute, "")
            if "?" in url:
                self._add("get", url, (name for name, _ in parse_qsl(urlsplit(url).query)))
        target = attrs.get("hx-target", "")
        if target.startswith("#"):
            self.targets.add(target[1:])

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None

    def names(self) -> set[str]:
        return set().union(*self.sent.values()) - SKIP_NAMES if self.sent else set()


# `name = request.POST if … else request.GET`: a variable the view reads the request through.
_REQUEST_VARIABLE = re.compile(r"^\s*(\w+)\s*=\s*(request\.(?:GET|POST|FILES)\b.*)$", re.M)
# `helper(request.GET)`: a helper of the module that reads the request through a parameter.
_HELPER_CALL = r"\b{name}\(\s*(request\.(?:GET|POST|FILES))\b"
# `SomeForm(request.GET or None, …)`: a form or filter set built from the request.
_BUILT_FROM = r"\b{name}\(\s*({variables})\b"


@dataclass
class Reads:
    """The names a view reads from the query string and from the body: `direct` ones its own
    code (or a helper of its module) takes out of the request, `forms` the fields of the forms
    and filter sets it builds (validated field by field)."""

    get_direct: set[str] = field(default_factory=set)
    post_direct: set[str] = field(default_factory=set)
    get_forms: set[str] = field(default_factory=set)
    post_forms: set[str] = field(default_factory=set)


def _sides(text: str) -> set[str]:
    """Which of the query string ("GET") and the body ("POST") an expression reads."""
    return {side for side in ("GET", "POST") if side in text} | (
        {"POST"} if "FILES" in text else set()
    )


def _helpers(module, source: str) -> list[tuple[str, Callable]]:
    """The functions of the view's module, and of the project's other view modules it names
    (`sequences.sequence_detail(…)`), that `source` calls, by the name it calls them."""
    found = []
    for name, value in vars(module).items():
        if inspect.isfunction(value) and value.__module__ == module.__name__:
            if re.search(rf"(?<![\w.]){name}\(", source):
                found.append((name, value))
        elif inspect.ismodule(value) and ".views" in value.__name__:
            for function in re.findall(rf"(?<![\w.]){name}\.(\w+)\(", source):
                helper = getattr(value, function, None)
                if inspect.isfunction(helper):
                    found.append((f"{name}.{function}", inspect.unwrap(helper)))
    for module_name, name in re.findall(r"from ([\w.]+\.views[\w.]*) import (\w+)", source):
        helper = getattr(importlib.import_module(module_name), name, None)
        if inspect.isfunction(helper):
            found.append((name, inspect.unwrap(helper)))
    return found


def _view_reads(callback) -> Reads:
    """What a view reads of the request (see Reads), from its source and that of the module's
    functions it calls."""
    view = inspect.unwrap(callback)
    view = getattr(view, "view_class", view)
    module = inspect.getmodule(view)
    try:
        source = inspect.getsource(view)
    except (OSError, TypeError):
        return Reads()
    variables = {"request.GET": {"GET"}, "request.POST": {"POST"}, "request.FILES": {"POST"}}
    seen = {view}
    modules = [module]
    for _ in range(3):  # helpers of helpers, three calls deep
        for name, value in _helpers(module, source):
            if value in seen:
                continue
            seen.add(value)
            modules.append(inspect.getmodule(value))
            source += "\n" + inspect.getsource(value)
            for argument in re.findall(_HELPER_CALL.format(name=re.escape(name)), source):
                parameters = list(inspect.signature(value).parameters)
                if parameters:
                    variables.setdefault(parameters[0], set()).update(_sides(argument))
    for name, expression in _REQUEST_VARIABLE.findall(source):
        variables.setdefault(name, set()).update(_sides(expression))
    alternatives = "|".join(re.escape(variable) for variable in variables)
    reads = Reads()
    pattern = (
        rf"(?<![\w.])({alternatives})\s*(?:\.(?:get|getlist|pop)\(|\[)\s*"
        r"""(?:["']([\w-]+)["']|([A-Z][A-Z_]+)\b)"""
    )
    for variable, literal, constant in re.findall(pattern, source):
        value = literal or getattr(module, constant, None)
        names = {value} if isinstance(value, str) else set(value or ())
        sides = variables[variable]
        reads.get_direct |= names if "GET" in sides else set()
        reads.post_direct |= names if "POST" in sides else set()
    classes = {name: value for each in modules for name, value in vars(each).items()}
    for name, value in classes.items():
        if not isinstance(value, type):
            continue
        if issubclass(value, forms.BaseForm):
            fields = set(value.base_fields)
        elif issubclass(value, django_filters.FilterSet):
            fields = set(value.base_filters)
        else:
            continue
        built = _BUILT_FROM.format(name=re.escape(name), variables=alternatives)
        for variable in re.findall(built, source):
            reads.get_forms |= fields if "GET" in variables[variable] else set()
            reads.post_forms |= fields if "POST" in variables[variable] else set()
    return reads


# --- sending, and recording what went wrong -----------------------------------------------------


def _where(error: BaseException) -> str:
    """Where the error was raised: the innermost frame of the project's own code (not this
    test's), else the innermost frame of all."""
    frames = traceback.extract_tb(error.__traceback__)
    own = [
        frame
        for frame in frames
        if "site-packages" not in frame.filename
        and "/lib/python3" not in frame.filename
        and not frame.filename.endswith(__file__.rsplit("/", 1)[-1])
    ]
    frame = (own or frames)[-1]
    return f"{frame.filename.removeprefix(ROOT)}:{frame.lineno}"


@dataclass
class Request:
    method: str
    path: str
    query: list[tuple[str, str]] = field(default_factory=list)
    body: list[tuple[str, str]] | None = None  # urlencoded
    raw_body: bytes | None = None
    content_type: str = "application/x-www-form-urlencoded"
    multipart: dict | None = None
    headers: dict[str, str] | None = None

    def describe(self) -> str:
        def shown(pairs: list) -> str:
            text = "&".join(f"{n}={v[:24]!r}" for n, v in pairs[:4])
            return text + (f" (+{len(pairs) - 4})" if len(pairs) > 4 else "")

        query = f"?{shown(self.query)}" if self.query else ""
        extra = f" body {shown(self.body)}" if self.body else ""
        extra += " [htmx]" if self.headers else ""
        if self.raw_body is not None:
            extra += f" body={self.raw_body[:24]!r} ({self.content_type})"
        if self.multipart is not None:
            extra += " [multipart]"
        return f"{self.method} {self.path[:120]}{query}{extra}"


class Sweep:
    """Sends requests with a client, each in a savepoint rolled back after it (every request
    meets the same objects; a failing one cannot spoil the next), and records 5xx answers and
    exceptions."""

    def __init__(self, client: Client, who: str):
        self.client = client
        self.who = who
        self.failures: list[str] = []

    def status(self, request: Request) -> tuple[int | None, object]:
        """(status, response) — status None when the view raised (the error instead)."""
        send = getattr(self.client, request.method.lower())
        path = request.path + (f"?{_encode(request.query)}" if request.query else "")
        kwargs: dict = {"headers": request.headers or {}}
        if request.multipart is not None:
            kwargs["data"] = request.multipart
        elif request.raw_body is not None:
            kwargs.update(data=request.raw_body, content_type=request.content_type)
        elif request.body is not None:
            kwargs.update(data=_encode(request.body), content_type=request.content_type)
        try:
            with transaction.atomic():
                response = send(path, **kwargs)
                transaction.set_rollback(True)
        except Exception as error:  # the view's exception, re-raised by the test client
            return None, error
        return response.status_code, response

    def check(self, request: Request, *, allowed: Callable[[int], bool] | None = None):
        """Send `request`; on a 5xx or an exception, find which of its names caused it."""
        status, response = self.status(request)
        if not self._failed(status, allowed):
            return response
        culprits = []
        if request.query or request.body:
            for single in self._singles(request):
                single_status, single_response = self.status(single)
                if self._failed(single_status, allowed):
                    culprits.append((single, single_status, single_response))
        for failed, failed_status, failed_response in culprits or [(request, status, response)]:
            self.failures.append(
                f"{self.who}: {failed.describe()} -> {self._outcome(failed_status, failed_response)}"
            )
        return response

    @staticmethod
    def _failed(status, allowed) -> bool:
        if status is None:
            return True
        return not allowed(status) if allowed else status >= 500

    @staticmethod
    def _outcome(status, response) -> str:
        if status is None:
            return f"{type(response).__name__}: {str(response)[:160]} at {_where(response)}"
        return str(status)

    @staticmethod
    def _singles(request: Request) -> Iterable[Request]:
        for part in ("query", "body"):
            pairs = getattr(request, part) or []
            for pair in pairs:
                if pair[0] == UNKNOWN_NAME and len(pairs) > 1:
                    continue
                single = Request(request.method, request.path, headers=request.headers)
                single.body = [] if request.body is not None else None
                setattr(single, part, [pair])
                yield single


def _htmx(step: int, targets: list[str]) -> dict[str, str] | None:
    """htmx's headers on every other step, with a target the pages use or a hostile one."""
    if step % 2 == 0:
        return None
    choices = [*targets, "x" * 2000, "<script>\u202e"]
    return {
        "HX-Request": "true",
        "HX-Target": choices[(step // 2) % len(choices)],
        "HX-Current-URL": "http://testserver/" + "y" * 3000,
        "HX-Trigger": "\u202e'\"",
        **({"HX-Boosted": "true"} if step % 4 == 3 else {}),
    }


def _files(names: list[str], step: int) -> dict:
    """A multipart body: every other name a hostile file, the rest hostile text."""
    data = {}
    for index, name in enumerate(names):
        if (index + step) % 2:
            file_name, content = HOSTILE_FILES[(index + step) % len(HOSTILE_FILES)]
            data[name] = SimpleUploadedFile(file_name, content, "application/octet-stream")
        else:
            value = VALUES[(index + step) % len(VALUES)]
            data[name] = "\x00" if isinstance(value, Raw) else value
    return data


# --- the organisation's pages --------------------------------------------------------------------


@dataclass
class Target:
    """A route of the organisation, the kinds of objects in its URL, and the names the sweep
    sends to it."""

    name: str
    kwargs: list[str]
    callback: Callable
    variant: str = ""  # a URL argument whose object is of its other kind (VARIANTS)
    get_names: set[str] = field(default_factory=set)
    post_names: set[str] = field(default_factory=set)
    singles: set[tuple[str, str]] = field(default_factory=set)  # (method, name)
    get_allowed: bool = True
    # False when its page answers 403 or 404 with these objects (a pool without its own
    # stages on a page of a pool's stages): another kind of them reaches it (VARIANTS).
    reachable: bool = True

    @property
    def label(self) -> str:
        return f"{self.name} ({self.variant})" if self.variant else self.name


def _model(label: str):
    from django.apps import apps

    return apps.get_model(label)


def _pool_with_own_stages(org) -> int:
    from pipelines.services import pool_customize_stages

    pool_id = OBJECT_KWARGS["pool_id"](org)
    with scope(organization=org):
        pool_customize_stages(pool=_model("pipelines.Pool").objects.get(pk=pool_id))
    return pool_id


def _sequence(org) -> int:
    with scopes_disabled():
        return _model("campaigns.Step").objects.get(pk=OBJECT_KWARGS["step_id"](org)).campaign_id


def _import_job(org) -> int:
    """An import waiting for its columns to be mapped (the pages of its later steps send it
    back to the mapping until then)."""
    from candidates.forms import ImportUploadForm
    from candidates.services.imports import import_create

    with scopes_disabled():
        user = _model("crm.Membership").objects.filter(organization=org).first().user
    upload = SimpleUploadedFile("people.csv", b"First name,Email\nAda,ada@example.com\n")
    form = ImportUploadForm({}, {"file": upload})
    assert form.is_valid(), form.errors
    with scope(organization=org):
        job = import_create(
            organization=org, user=user, upload=form.cleaned_data["file"], info=form.info
        )
    return job.pk


# Another kind of the object a URL argument names, whose pages show and take other things: a
# sequence (steps, enrollments) besides a broadcast, a pool with its own stages, an import
# besides an export. A route with such an argument is swept with each kind.
VARIANTS: dict[str, tuple[str, Callable]] = {
    "campaign_id": ("sequence", _sequence),
    "pool_id": ("own stages", _pool_with_own_stages),
    "job_id": ("import", _import_job),
}
# A URL argument that names an object inside another (a note of a candidate): the other one is
# that object's own, so that the page finds them together.
PARENTS = {
    "note_id": ("candidate_id", "candidates.Note"),
    "pool_membership_id": ("pool_id", "pipelines.PoolMembership"),
    "message_id": ("campaign_id", "campaigns.Message"),
    "step_id": ("campaign_id", "campaigns.Step"),
    "enrollment_id": ("campaign_id", "campaigns.Enrollment"),
    "stage_id": ("pool_id", "pipelines.Stage"),
}


def _objects(target: Target, org) -> dict[str, int]:
    """Objects of `org` for the target's URL arguments, consistent with each other."""
    kwargs = [k for k in target.kwargs if k != "org_slug"]
    values: dict[str, int] = {}
    if {"pool_id", "stage_id"} <= set(kwargs):
        # A pool's own stage (the organisation's stages are edited without a pool).
        values["pool_id"] = _pool_with_own_stages(org)
        with scopes_disabled():
            stage = _model("pipelines.Stage").objects.filter(pool_id=values["pool_id"]).first()
        values["stage_id"] = stage.pk
    for child, (parent, label) in PARENTS.items():
        if child in kwargs and parent in kwargs and child not in values:
            values[child] = OBJECT_KWARGS[child](org)
            with scopes_disabled():
                row = _model(label).objects.get(pk=values[child])
            values[parent] = getattr(row, parent)
    for kwarg in kwargs:
        if kwarg not in values:
            variant = VARIANTS.get(kwarg)
            make = variant[1] if variant and variant[0] == target.variant else OBJECT_KWARGS[kwarg]
            values[kwarg] = make(org)
    return values


def _seed(org, admin_user) -> None:
    """Rows that make the pages show everything they can: candidates (lists show sorting,
    paging and bulk selection only with rows), custom fields of every type (their filters),
    a template and a saved search (what a broadcast needs to be valid)."""
    for key, kind in (
        ("years", "number"),
        ("start", "date"),
        ("level", "choice"),
        ("team", "text"),
    ):
        CustomFieldFactory(
            organization=org,
            key=key,
            label=key.title(),
            field_type=kind,
            **({"choices": ["junior", "senior"]} if kind == "choice" else {}),
        )
    for index in range(3):
        CandidateFactory(
            organization=org,
            skills=["python"],
            tags=["x"],
            owner=admin_user,
            custom_fields={"years": index, "start": f"2030-01-0{index + 1}", "team": "a"},
        )
    EmailTemplateFactory(organization=org)
    SavedSearchFactory(organization=org, owner=admin_user)


def _url(target: Target, org, override: str | None = None) -> str:
    """The target's URL with fresh objects of `org` (or every id set to `override`)."""
    if override is None:
        objects = _objects(target, org)
    else:
        objects = {kwarg: override for kwarg in target.kwargs if kwarg != "org_slug"}
    return reverse(target.name, kwargs={"org_slug": org.slug, **objects})


def _targets() -> list[Target]:
    """Every route of the organisation, once with each variant of its URL arguments' objects
    (not for an argument whose object is taken from another: a step's campaign)."""
    targets = []
    for pattern, route in all_routes():
        if "org_slug" not in route.kwargs:
            continue
        targets.append(Target(route.name, route.kwargs, pattern.callback))
        derived = {
            parent
            for child, (parent, _) in PARENTS.items()
            if child in route.kwargs and parent in route.kwargs
        }
        for kwarg in route.kwargs:
            if kwarg in VARIANTS and kwarg not in derived:
                variant = VARIANTS[kwarg][0]
                targets.append(Target(route.name, route.kwargs, pattern.callback, variant))
    return targets


# What the pages read, found once per test session (by target label), and their htmx targets.
_DISCOVERED: dict[str, object] = {}


def _discover(client: Client, org) -> tuple[list[Target], list[str]]:
    """Every target with the names it reads (see the module's docstring), found by reading
    each page as the organisation's admin; and the htmx targets the pages use."""
    targets = _targets()
    if "names" in _DISCOVERED:
        for target in targets:
            known = _DISCOVERED["names"][target.label]
            target.get_names, target.post_names = known.get_names, known.post_names
            target.singles, target.get_allowed = known.singles, known.get_allowed
            target.reachable = known.reachable
        return targets, _DISCOVERED["hx_targets"]
    sent: dict[tuple[str, str], set[str]] = {}
    hx_targets: set[str] = set()
    for target in targets:
        reads = _view_reads(target.callback)
        target.get_names = reads.get_direct | reads.get_forms
        target.post_names = reads.post_direct | reads.post_forms
        target.singles = {("GET", n) for n in reads.get_direct} | {
            ("POST", n) for n in reads.post_direct
        }
        with transaction.atomic():
            url = _url(target, org)
            response = client.get(url)
            transaction.set_rollback(True)
        target.get_allowed = response.status_code != 405
        target.reachable = response.status_code not in {403, 404}
        if response.status_code == 200 and "html" in response.get("Content-Type", ""):
            page = _Page()
            page.feed(response.content.decode(errors="replace"))
            hx_targets |= page.targets
            for (method, path), names in page.sent.items():
                sent.setdefault((method, path or urlsplit(url).path), set()).update(names)
    by_name: dict[str, list[Target]] = {}
    for target in targets:
        by_name.setdefault(target.name, []).append(target)
    for (method, path), names in sent.items():
        try:
            match = resolve(path)
        except Resolver404:
            continue
        for target in by_name.get(match.view_name, []):
            (target.get_names if method == "get" else target.post_names).update(names)
    for target in targets:
        target.get_names = (target.get_names - SKIP_NAMES) | {UNKNOWN_NAME}
        target.post_names = (target.post_names - SKIP_NAMES) | {UNKNOWN_NAME}
    _DISCOVERED.update(names={t.label: t for t in targets}, hx_targets=sorted(hx_targets))
    return targets, sorted(hx_targets)


def _sweep_as_admin(
    sweep: Sweep, target: Target, org, hx_targets: list[str], *, singles: bool = True
) -> None:
    get_names, post_names = sorted(target.get_names), sorted(target.post_names)
    url = _url(target, org)
    # The rotation: every name gets every value, GET in the query string, POST in the body
    # (with the query string's names in it too: some POST views read them). A method the view
    # refuses (405) is tried once. Where the view reads nothing but the names also sent alone
    # (below), or stops before it reads anything (an unreachable page), one step each: a
    # plain GET and a POST with htmx's headers.
    alone = {name for _, name in target.singles} | {UNKNOWN_NAME}
    rotated = target.reachable
    get_steps = range(len(QUERY_VALUES)) if rotated and set(get_names) - alone else range(1)
    post_steps = range(len(FORM_VALUES)) if rotated and set(post_names) - alone else range(1, 2)
    for step in get_steps if target.get_allowed else get_steps[:1]:
        query = _rotation(get_names, step, QUERY_VALUES)
        sweep.check(Request("GET", url, query=query, headers=_htmx(step, hx_targets)))
    post_allowed = True
    for step in post_steps:
        query = _rotation(get_names, step + 1, QUERY_VALUES)
        body = _rotation(post_names, step, FORM_VALUES)
        headers = _htmx(step, hx_targets)
        response = sweep.check(Request("POST", url, query=query, body=body, headers=headers))
        post_allowed = getattr(response, "status_code", None) != 405
        if not post_allowed:
            break
    # Each name the view's own code reads, alone with every value: a hostile neighbour may not
    # hide it by sending the view down another path (a search that is not sorted by date).
    for method, name in sorted(target.singles) if singles and target.reachable else ():
        allowed = target.get_allowed if method == "GET" else post_allowed
        for value in SINGLE_VALUES if allowed else ():
            request = Request(method, url)
            if method == "GET":
                request.query = [(name, value)]
            else:
                request.body = [(name, value)]
            sweep.check(request)
    if post_allowed and len(post_names) > 1:
        # None of the fields, in a body that is not even JSON.
        sweep.check(Request("POST", url, raw_body=INVALID_JSON, content_type="application/json"))
        # Files where text is expected, text where a file is.
        sweep.check(Request("POST", url, multipart=_files(post_names, 1), headers=_htmx(1, [])))
    # Ids in the path that name nothing (past bigint: no row has them, no column holds them).
    if len(target.kwargs) > 1 and not target.variant:
        missing = _url(target, org, override=NO_SUCH_ID)
        sweep.check(Request("GET", missing, query=_rotation(get_names, 0)))
        sweep.check(Request("POST", missing, body=_rotation(post_names, 1, FORM_VALUES)))


@pytest.fixture
def seeded(client, org, admin_user):
    _seed(org, admin_user)
    client.force_login(admin_user)
    return _discover(client, org)


def test_no_page_answers_hostile_input_with_a_server_error(client, org, admin_user, seeded):
    targets, hx_targets = seeded
    sweep = Sweep(client, "admin")
    # A view's names read by hand are sent alone once, with the first kind of objects its page
    # is reached with (the same code reads them whatever the kind).
    reached = {target.name for target in targets if target.reachable and not target.variant}
    for target in targets:
        singles = not (target.variant and target.name in reached)
        _sweep_as_admin(sweep, target, org, hx_targets, singles=singles)
    assert sweep.failures == [], "\n".join(sweep.failures)
    # The sweep read what the pages offer and their views take (so a page's new field is
    # swept without listing it), and reached the pages of every kind of object.
    by_label = {target.label: target for target in targets}
    listing = by_label["candidates:list"]
    assert {"q", "sort", "skills", "status", "created_after", "after"} <= listing.get_names
    assert {"cf_years_min", "cf_start_after", "cf_level"} <= listing.get_names
    assert {("GET", "after"), ("GET", "editing"), ("GET", "selected")} <= listing.singles
    assert {"name", "send_when", "scheduled_at"} <= by_label["campaigns:create"].post_names
    assert {"stage"} <= by_label["pipelines:card_move"].post_names  # from the board's form
    assert {"page"} <= by_label["campaigns:detail (sequence)"].get_names
    assert {"name"} <= by_label["pipelines:pool_stage_edit"].post_names
    assert {"column_0"} <= by_label["candidates:import_mapping (import)"].post_names
    assert "candidate-results" in hx_targets


def test_no_page_answers_hostile_input_with_a_server_error_for_other_roles(
    org, recruiter_user, viewer_user, seeded
):
    """A recruiter and a viewer see other pages and branches than the admin (read-only forms,
    403s), and an anonymous visitor is sent to log in with the hostile query in `next`: a
    rotation step each, htmx on some."""
    targets, hx_targets = seeded
    failures = []
    for who, user, step in (
        ("recruiter", recruiter_user, 3),
        ("viewer", viewer_user, 6),
        ("anonymous", None, 9),
    ):
        role_client = Client()
        if user is not None:
            role_client.force_login(user)
        sweep = Sweep(role_client, who)
        for index, target in enumerate(t for t in targets if t.reachable):
            get_names, post_names = sorted(target.get_names), sorted(target.post_names)
            url = _url(target, org)
            headers = _htmx(index, hx_targets)
            sweep.check(Request("GET", url, query=_rotation(get_names, step), headers=headers))
            body = _rotation(post_names, step, FORM_VALUES)
            sweep.check(Request("POST", url, body=body, headers=headers))
        failures += sweep.failures
    assert failures == [], "\n".join(failures)


# --- candidate-facing pages and tracking ----------------------------------------------------------


def _forged(token: str) -> list[str]:
    """Tokens no email carried: altered, truncated, for another purpose, garbage, hostile."""
    value, _, signature = token.rpartition(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    return [
        f"{value}.{flipped}",
        token[:-5],
        token + "." + token,
        value,
        "0-0-0-0.1.AAAAAAAAAAAAAAAAAAAAAA",
        base64.urlsafe_b64encode(b'{"org": 1, "candidate": "1; drop"}').decode(),
        "a\x00b",
        "x" * 10_000,
        "%ff%fe%ed%a0%80",
        "\u00b2",
        "..",
    ]


def _public_tokens(org, admin_user) -> dict[str, list[str]]:
    """Valid tokens of every candidate-facing kind: a candidate's link (with and without a
    message), a consent request's, a message's pixel and click links, an invitation's; and a
    candidate's link whose candidate has since been erased (valid signature, no row)."""
    from campaigns.models import Message
    from campaigns.services import tokens
    from campaigns.services.campaigns import campaign_launch
    from campaigns.services.consent import consent_request_double_opt_in, consent_token
    from campaigns.services.dispatch import dispatch_due
    from campaigns.tests.factories import make_broadcast, make_candidates
    from campaigns.tests.tracking_links import click_paths, pixel_path, trap_path
    from crm.models import Invitation
    from crm.services import _hash_token

    body = "Hi, [a role](https://jobs.example.com/1)."
    candidate = make_candidates(org, 1)[0]
    campaign = make_broadcast(org, user=admin_user, body=body)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=admin_user)
        dispatch_due()
        message = Message.objects.get(campaign=campaign)
        consent = consent_request_double_opt_in(
            candidate=candidate, source="Sign-up form", wording="Keep me posted."
        )
    invitation_token = secrets.token_urlsafe(32)
    with scopes_disabled():
        Invitation.objects.create(
            organization=org,
            email="invited@example.com",
            token_hash=_hash_token(invitation_token),
            expires_at=timezone.now() + timedelta(days=7),
        )
    candidate_link = tokens.candidate_token(organization_id=org.pk, candidate_id=candidate.pk)
    gone = tokens.candidate_token(organization_id=org.pk, candidate_id=candidate.pk + 10_000)
    from_message = tokens.candidate_token(
        organization_id=org.pk, candidate_id=message.candidate_id, message_id=message.pk
    )

    def last(path: str) -> str:
        return path.rstrip("/").rsplit("/", 1)[-1]

    return {
        "candidate": [candidate_link, from_message, gone],
        "consent": [consent_token(consent=consent)],
        "open": [last(pixel_path(message)).removesuffix(".gif")],
        "click": [last(path) for path in click_paths(message)] + [last(trap_path(message))],
        "invitation": [invitation_token],
    }


# Candidate-facing routes: the kind of token each is addressed by.
TOKEN_ROUTES = {
    "campaigns_public:unsubscribe": "candidate",
    "campaigns_public:resubscribe": "candidate",
    "campaigns_public:preferences": "candidate",
    "campaigns_public:consent_confirm": "consent",
    "campaigns_public:open": "open",
    "campaigns_public:click": "click",
    "invitation_accept": "invitation",
}
# The other URLs outside /o/<org_slug>/ that are the project's own.
OTHER_PUBLIC_ROUTES = {"home", "healthz", "organization_create", "campaigns_public:logo"}


def _path_with(route_name: str, token: str) -> str:
    """The route's URL with `token` in it, percent-encoded as a browser would send it (a
    `%ff` token goes raw: bytes that are not UTF-8)."""
    placeholder = "TOKENPLACEHOLDER"
    url = reverse(route_name, kwargs={"token": placeholder})
    encoded = token if token == "%ff%fe%ed%a0%80" else quote(token, safe="")
    return url.replace(placeholder, encoded)


def _public_names(client: Client, url: str) -> list[str]:
    """The names a page outside the organisation sends back (both ways: these are few)."""
    page = _Page()
    response = client.get(url)
    if response.status_code == 200 and "html" in response.get("Content-Type", ""):
        page.feed(response.content.decode(errors="replace"))
    return sorted(page.names() | {UNKNOWN_NAME, "List-Unsubscribe"})


def test_no_candidate_page_or_tracking_link_answers_hostile_input_with_a_server_error(
    org, admin_user
):
    """The pages a candidate opens from an email and the links in it (no login; a signed
    token in the address), with valid tokens in full rotation and forged ones, as a candidate
    (anonymous) and as a signed-in member (an invitation's page differs for them)."""
    from campaigns.services.branding import logo_key

    tokens = _public_tokens(org, admin_user)
    failures = []
    anonymous, member = Client(), Client()
    member.force_login(admin_user)
    for who, client in (("anonymous", anonymous), ("member", member)):
        sweep = Sweep(client, who)
        for route_name, kind in TOKEN_ROUTES.items():
            for token in tokens[kind]:
                url = _path_with(route_name, token)
                names = _public_names(client, url)
                # In full for a candidate's first token, and for a member's invitation (the
                # page a signed-in member gets differs); a few steps otherwise.
                full = who == "anonymous" or route_name == "invitation_accept"
                steps = range(len(FORM_VALUES)) if full and token == tokens[kind][0] else (0, 7)
                for step in steps:
                    headers = _htmx(step, [])
                    query = _rotation(names, step, QUERY_VALUES)
                    sweep.check(Request("GET", url, query=query, headers=headers))
                    body = _rotation(names, step, FORM_VALUES)
                    sweep.check(Request("POST", url, body=body, headers=headers))
                sweep.check(Request("HEAD", url))
                sweep.check(Request("POST", url, body=[("List-Unsubscribe", "One-Click")]))
                sweep.check(Request("POST", url, multipart=_files(names, 1)))
                sweep.check(
                    Request("POST", url, raw_body=INVALID_JSON, content_type="application/json")
                )
            for forged in _forged(tokens[kind][0]):
                url = _path_with(route_name, forged)
                sweep.check(Request("GET", url, query=_rotation(["resubscribed", "q"], 1)))
                sweep.check(Request("POST", url, body=[("List-Unsubscribe", "One-Click")]))
                sweep.check(Request("POST", url, body=_rotation(["topics", "pause"], 3)))
        # The logo: a real one, then ids and keys that name nothing.
        with scopes_disabled():
            org.logo.save("logo.png", SimpleUploadedFile("logo.png", b"\x89PNG fake"))
        key = logo_key(org)
        for organization_id, logo in ((org.pk, key), (org.pk, "x" * 300), (10**19, key)):
            url = reverse(
                "campaigns_public:logo", kwargs={"organization_id": 1, "key": "KEY"}
            ).replace("/1/KEY", f"/{organization_id}/{quote(logo, safe='')}")
            sweep.check(Request("GET", url, query=_rotation(["v"], 2)))
            sweep.check(Request("HEAD", url))
            sweep.check(Request("POST", url, body=_rotation(["v"], 3)))
        # The rest of the project's own public pages.
        for route_name in ("home", "organization_create"):
            url = reverse(route_name)
            names = _public_names(client, url)
            for step in range(len(FORM_VALUES)):
                headers = _htmx(step, [])
                query = _rotation(names, step, QUERY_VALUES)
                sweep.check(Request("GET", url, query=query, headers=headers))
                body = _rotation(names, step, FORM_VALUES)
                sweep.check(Request("POST", url, body=body, headers=headers))
        # healthz answers 503 when a dependency is down, by design: hostile input changes nothing.
        healthy = client.get(reverse("healthz")).status_code
        for step in (0, 5):
            sweep.check(
                Request("GET", reverse("healthz"), query=_rotation(["q", "format"], step)),
                allowed=lambda status, healthy=healthy: status == healthy,
            )
        failures += sweep.failures
    assert failures == [], "\n".join(failures)


@pytest.mark.django_db(transaction=True)  # the front's database work is autocommitted
def test_no_tracking_link_answers_hostile_input_with_a_server_error_in_front_of_django(
    org, admin_user
):
    """In production the pixel, the click and the one-click unsubscribe are answered by the
    tracking front (campaigns/tracking_front.py) before Django: the same tokens, valid and
    forged (as a server decodes them into PATH_INFO: NUL and bytes that are not UTF-8), with
    hostile query strings and bodies, through its WSGI adapter."""
    from django.core.wsgi import get_wsgi_application

    from campaigns.tests.test_tracking_front import call
    from campaigns.tracking_wsgi import TrackingApplication

    tokens = _public_tokens(org, admin_user)
    app = TrackingApplication(get_wsgi_application())
    form = "application/x-www-form-urlencoded"
    requests = (
        ("GET", b"", "", ""),
        ("GET", b"", "", _encode(_rotation(["url", "u", "next"], 3))),
        ("HEAD", b"", "", ""),
        ("POST", b"List-Unsubscribe=One-Click", form, ""),
        ("POST", b"List-Unsubscribe=One-Click&x=" + b"\x00\xff" * 400, form, ""),
        ("POST", INVALID_JSON, "application/json", ""),
        ("POST", b"List-Unsubscribe=" + b"y" * 5000, form, ""),
    )
    failures = []
    for kind, prefix, suffix in (
        ("open", "/e/o/", ".gif"),
        ("click", "/e/c/", "/"),
        ("candidate", "/e/u/", "/"),
    ):
        for token in [*tokens[kind], *_forged(tokens[kind][0]), "\xff\xfe\xed\xa0\x80", ""]:
            for method, body, content_type, query in requests:
                path = prefix + token + suffix
                try:
                    answer = call(
                        app, method, path, body=body, content_type=content_type, query=query
                    )
                    status = answer.status_code
                except Exception as error:
                    status = f"{type(error).__name__}: {error}"[:200]
                if not isinstance(status, int) or status >= 500:
                    failures.append(
                        f"{method} {path[:80]!r} ?{query[:20]} {body[:20]!r} -> {status}"
                    )
    assert failures == [], "\n".join(failures)


# --- ESP webhooks ----------------------------------------------------------------------------------

WEBHOOK_SECRET = "hostile-hooks:s3cret-passphrase"
MAILGUN_KEY = "hostile-mailgun-signing-key"
# Each ESP's own webhook setting, as a deployment on that ESP has it, so that the sweep reaches
# each ESP's parser. (Without it the ESP's URLs answer 400 and log what is missing:
# campaigns/webhook_urls.py, campaigns/tests/test_webhooks.py.)
ESP_SETTINGS = {
    "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY,
    "MAILERSEND_SIGNING_SECRET": "hostile",
    "MAILERSEND_INBOUND_SECRET": "hostile",
    "MANDRILL_WEBHOOK_KEY": "hostile",
    "POSTAL_WEBHOOK_KEY": "aG9zdGlsZQ==",
    "UNISENDER_GO_API_KEY": "hostile",
    "SENDINBLUE_API_KEY": "hostile",
    "BREVO_API_KEY": "hostile",
    "RESEND_API_KEY": "hostile",
    "RESEND_SIGNING_SECRET": "whsec_aG9zdGlsZQ==",
    "MAILTRAP_API_TOKEN": "hostile",
}
ESP_ID = "8f9b6d8e-hostile-esp-id"
# anymail's own views that answer garbage from anyone with a 500, before any code of ours runs
# (django-anymail 15.2; worth reporting upstream, and a reason to mount only the URLs of the ESP
# a deployment uses). The sweep checks that they still do, so that this list cannot go stale.
GARBAGE_BODIES = (
    (INVALID_JSON, "application/json"),
    (b"", "application/json"),
    (b"[]", "application/json"),
    (
        _encode(_rotation(["event", "timestamp", "token", "signature"], 2)).encode(),
        "application/x-www-form-urlencoded",
    ),
)


def _text_values() -> list[str]:
    """VALUES that JSON can carry (a Raw value is bytes no JSON string holds)."""
    return [value for value in VALUES if not isinstance(value, Raw)]


def _postmark_events(message) -> list[dict]:
    """Postmark's tracking events, well-formed, with hostile values where Postmark puts ids,
    addresses, tags and text: half of them naming the sent message, so that they get as far as
    our receiver can take them."""
    kinds = ("Delivery", "Bounce", "Open", "Click", "SpamComplaint", "SubscriptionChange", "Nope")
    events = []
    for index, value in enumerate(_text_values()):
        events.append(
            {
                "RecordType": kinds[index % len(kinds)],
                "Type": "HardBounce" if index % 2 else value,
                "ID": value if index % 3 else 4323372036854775807,
                "MessageID": ESP_ID if index % 2 else value,
                "Recipient": value,
                "Email": value if index % 2 else message.to_email,
                "Tag": value,
                "Metadata": {"candidate": value},
                "Description": value,
                "Details": value,
                "UserAgent": value,
                "OriginalLink": value,
                "SuppressSending": bool(index % 2),
                "SuppressionReason": "ManualSuppression",
                "DeliveredAt": "2026-01-05T10:00:00Z",
                "BouncedAt": "2026-01-05T10:00:00Z",
                "ReceivedAt": "2026-01-05T10:00:00Z",
                "ChangedAt": "2026-01-05T10:00:00Z",
            }
        )
    return events


def _inbound_emails(message) -> list[dict]:
    """Postmark inbound emails (anyone can write to a reply address): hostile senders,
    subjects, dates, references, bodies, and reply and unsubscribe addresses whose tokens
    are forged."""
    emails = []
    for index, value in enumerate(_text_values()):
        # Forged, in what a mail provider passes on as an address (anymail refuses the rest).
        token = value if re.fullmatch(r"[\w.-]+", value) else "0-0-0-0.1.AAAAAAAAAAAAAAAAAAAAAA"
        emails.append(
            {
                # Postmark's parsed sender (anymail refuses a non-address there: a 500 that
                # no code of ours sees); the raw From header below is anyone's to write.
                "FromFull": {"Email": "jane@example.com", "Name": value},
                "ToFull": [
                    {"Email": f"unsubscribe+{token}@reply.example.com", "Name": ""},
                    {"Email": f"reply+{token}@reply.example.com", "Name": value},
                ],
                "Subject": value,
                "MessageID": value,
                "Date": value if index % 2 else "Mon, 30 Feb 2026 25:61:00 +9900",
                "TextBody": value,
                "HtmlBody": f"<p>{value}</p>",
                "Headers": [
                    {"Name": "Message-ID", "Value": value},
                    {"Name": "In-Reply-To", "Value": message.message_id if index % 2 else value},
                    {"Name": "References", "Value": f"<{value}> " * 50},
                    {"Name": "Auto-Submitted", "Value": value},
                ],
            }
        )
    return emails


def _mailgun_events(message) -> list[dict]:
    import hashlib
    import hmac
    import time

    timestamp, token = str(int(time.time())), "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"
    signature = hmac.new(MAILGUN_KEY.encode(), (timestamp + token).encode(), hashlib.sha256)
    events = []
    for index, value in enumerate(_text_values()):
        event = {
            "event": ("delivered", "failed", "opened", "clicked", "complained", value)[index % 6],
            "severity": "permanent",
            "timestamp": time.time(),
            "id": value,
            "recipient": value if index % 2 else message.to_email,
            "message": {"headers": {"message-id": ESP_ID if index % 2 else value}},
            "delivery-status": {"code": value, "message": value, "description": value},
            "user-variables": {"candidate": value},
            "tags": [value],
            "url": value,
        }
        events.append(
            {
                "signature": {
                    "timestamp": timestamp,
                    "token": token,
                    "signature": signature.hexdigest(),
                },
                "event-data": event,
            }
        )
    return events


def test_no_webhook_answers_hostile_input_with_a_server_error(settings, org, admin_user):
    """Every ESP's tracking and inbound webhook (anymail's views): from anyone without the
    credentials, garbage of every kind; from the ESP (credentials and signature right),
    well-formed events and inbound emails full of hostile values, which reach our receivers
    (campaigns/receivers.py): an inbound email is whatever anyone wrote to a reply address."""
    from campaigns.models import Message
    from campaigns.services.campaigns import campaign_launch
    from campaigns.services.dispatch import dispatch_due
    from campaigns.tests.factories import make_broadcast, make_candidates

    settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_SECRET, **ESP_SETTINGS}
    make_candidates(org, 1)
    with scope(organization=org):
        campaign_launch(campaign=make_broadcast(org, user=admin_user), user=admin_user)
        dispatch_due()
        Message.objects.update(
            status="sent", esp_message_id=ESP_ID, sent_at=timezone.now() - timedelta(hours=1)
        )
        message = Message.objects.get()
    failures = []
    routes = [route for _, route in all_routes() if (route.name or "").startswith("anymail:")]
    for who, authorization in (
        ("stranger", "Basic " + base64.b64encode(b"hostile:guess").decode()),
        ("anonymous", None),
    ):
        client = Client(**({"HTTP_AUTHORIZATION": authorization} if authorization else {}))
        sweep = Sweep(client, who)
        for route in routes:
            url = reverse(route.name)
            sweep.check(Request("GET", url, query=_rotation(["a", "b"], 0)))
            for body, content_type in GARBAGE_BODIES:
                sweep.check(Request("POST", url, raw_body=body, content_type=content_type))
            sweep.check(Request("POST", url, multipart=_files(["event", "email"], 1)))
        failures += sweep.failures
    auth = "Basic " + base64.b64encode(WEBHOOK_SECRET.encode()).decode()
    sweep = Sweep(Client(HTTP_AUTHORIZATION=auth), "ESP")
    for url, payloads in (
        ("/webhooks/anymail/postmark/tracking/", _postmark_events(message)),
        ("/webhooks/anymail/postmark/inbound/", _inbound_emails(message)),
        ("/webhooks/anymail/mailgun/tracking/", _mailgun_events(message)),
    ):
        for payload in payloads:
            body = json.dumps(payload).encode()
            sweep.check(Request("POST", url, raw_body=body, content_type="application/json"))
    failures += sweep.failures
    assert failures == [], "\n".join(failures)


def test_inbound_reply_with_nul_characters_is_recorded_without_them(settings, org, admin_user):
    """Loses nothing: a reply whose mailer put NUL characters in its headers and body is kept
    (without them), not refused with a 500 that the ESP retries until it gives up."""
    from campaigns.models import InboundEmail, Message
    from campaigns.services.campaigns import campaign_launch
    from campaigns.services.dispatch import dispatch_due
    from campaigns.tests.factories import make_broadcast, make_candidates

    settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_SECRET}
    make_candidates(org, 1)
    with scope(organization=org):
        campaign_launch(campaign=make_broadcast(org, user=admin_user), user=admin_user)
        dispatch_due()
        message = Message.objects.get()
    email = {
        "FromFull": {"Email": "jane@example.com", "Name": "Jane\x00 Doe"},
        "ToFull": [{"Email": "rex.recruiter@acme.example", "Name": ""}],
        "Subject": "Re: a\x00 role",
        "TextBody": "Yes,\x00 let us talk.",
        "HtmlBody": "",
        "Headers": [
            {"Name": "Message-ID", "Value": "<reply\x00-1@mail.example.com>"},
            {"Name": "In-Reply-To", "Value": message.message_id + "\x00"},
        ],
    }
    auth = "Basic " + base64.b64encode(WEBHOOK_SECRET.encode()).decode()
    response = Client(HTTP_AUTHORIZATION=auth).post(
        "/webhooks/anymail/postmark/inbound/",
        data=json.dumps(email),
        content_type="application/json",
    )

    assert response.status_code == 200
    with scope(organization=org):
        inbound = InboundEmail.objects.get()
    assert (inbound.subject, inbound.text, inbound.email_message_id) == (
        "Re: a role",
        "Yes, let us talk.",
        "<reply-1@mail.example.com>",
    )
    assert inbound.message_id == message.pk


# --- account pages (django-allauth) ----------------------------------------------------------------


def _account_routes() -> list:
    return [
        (pattern, route)
        for pattern, route in all_routes()
        if route.route.startswith("accounts/") and route.name
    ]


def _account_url(pattern, route) -> str:
    """The account page's URL; a key in the path (an email confirmation, a password reset) is
    a forged one."""
    groups = list(pattern.pattern.regex.groupindex)
    forged = {"key": "x" * 300 + ":\u00b2", "uidb36": "zz"}
    return reverse(route.name, kwargs={group: forged.get(group, "x") for group in groups})


def test_no_account_page_answers_hostile_input_with_a_server_error(org, admin_user):
    """Sign-in, sign-up, password reset, e-mail and two-factor pages, signed out and in."""
    failures = []
    for who in ("anonymous", "member"):
        client = Client()
        sweep = Sweep(client, who)
        for pattern, route in _account_routes():
            if who == "member":
                client.force_login(admin_user)  # again: the logout page may have logged out
            url = _account_url(pattern, route)
            names = _public_names(client, url)
            for step in (0, 6, 11):
                headers = _htmx(step, [])
                sweep.check(Request("GET", url, query=_rotation(names, step), headers=headers))
                sweep.check(Request("POST", url, body=_rotation(names, step), headers=headers))
        failures += sweep.failures
    assert failures == [], "\n".join(failures)


def test_hostile_sweep_covers_every_url():
    """Every URL pattern is swept by one of the tests above, or is Django's admin."""
    covered_elsewhere = set(TOKEN_ROUTES) | OTHER_PUBLIC_ROUTES
    uncovered = [
        route.route
        for _, route in all_routes()
        if "org_slug" not in route.kwargs  # every tenant route is swept, by construction
        and route.name not in covered_elsewhere
        and not (route.name or "").startswith("anymail:")
        and not route.route.startswith(("accounts/", "admin/"))
    ]
    assert uncovered == [], "Sweep these URLs in tests/test_hostile_input.py"
    # Public URLs the isolation sweep knows, and URL arguments it knows how to fill.
    assert covered_elsewhere <= set(PUBLIC_URL_NAMES)
    assert set(VARIANTS) | set(PARENTS) <= set(OBJECT_KWARGS)
    assert _account_routes() and len(tenant_routes()) >= 100


# --- widget-extreme values -------------------------------------------------------------------------

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
                    if response.status_code >= 500:
                        failures.append(f"{form['method'].upper()} {action} with {value!r} -> 500")
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
    assert failures == [], "\n".join(failures)
    # The sweep reached the fields the audit found unguarded.
    assert {"candidates:list:created_before", "campaigns:create:scheduled_at"} <= set(tried)
