"""The role sweep: a viewer (an HR leader, read-only) changes nothing, and a recruiter does no
admin's work, whatever they send.

Every URL under /o/<org_slug>/ is taken from the resolver (the isolation sweep's enumeration),
with consistent objects of a seeded organisation in it and once more with each other kind of an
object that has one (the hostile-input sweep's targets: a sequence besides a broadcast, a pool
with its own stages, an import). The body sent to each is what its forms would send: the admin
reads every page, and each form that posts to a URL gives that URL a body as a person would
submit it with every field filled in (`_filled`); a URL no form posts to gets the names its
pages and its view read.

1. A logged-in viewer of the organisation POSTs to every URL (and, where the view ran, again
   with htmx's headers). The answer must be 403 or 405 — not a page, not a redirect (not even
   to the login: a member is logged in) — unless the view is in VIEWER_MAY_POST, with why that
   is safe; those must answer 200. The viewer also GETs every URL (any answer).
2. Not one row of any table changes across the viewer's requests: before and after each request
   (and across the whole sweep), a checksum of every table of the database — its row count and
   an md5 of all its rows as text, in one SQL statement. This sees inserts, deletes and updates
   in any column, where `max(updated_at)` and a count would miss an update of a table without a
   timestamp or a delete-plus-insert. The viewer's requests are not rolled back, so the
   before/after of the whole sweep means something.
3. A logged-in recruiter sends each admin-only request (every view decorated `admin_required`,
   and the admin checks inside views listed in ADMIN_ONLY): the answer must be 403, no table may
   change, and the admin sending the same request must not get a 403 (so the 403 is the role's).
   The declared list keeps a view that loses its decorator in the sweep.
4. The sweep must have reached every URL the resolver lists.

A view that forgets its role decorator fails 1 (and 2 if the body is enough to change
something); an admin view that forgets it fails 3, for it stays in ADMIN_ONLY.
"""

from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from django.db import connection, transaction
from django.test import Client
from django.urls import Resolver404, resolve, reverse
from django_scopes import scopes_disabled

from crm.models import Role
from tests.test_hostile_input import (
    SKIP_NAMES,
    Target,
    _filled,
    _forms,
    _Page,
    _seed,
    _targets,
    _url,
    _view_reads,
)
from tests.test_isolation import tenant_routes

pytestmark = pytest.mark.django_db

# Views that answer a viewer's POST (200) because they do not change anything; the sweep still
# checks that not a row changed. Read-only pages take no POST at all (`require_safe`: 405).
VIEWER_MAY_POST = {
    # Previews: a POST carries the candidate to preview as (and for those who may edit, the
    # editor's unsaved text); the answer is HTML for the preview frame, nothing is saved.
    "campaigns:preview": "preview of a campaign's email as a chosen candidate; saves nothing",
    "campaigns:step_preview": "preview of a sequence step's email; saves nothing",
    "campaigns:template_preview": "preview of a template as a chosen candidate (the saved "
    "text for a viewer, campaigns/views/templates.py); saves nothing",
}

# Everything only an admin may do, by route: the views decorated `admin_required` (the sweep
# finds them by their `required_role` too, and fails until a new one is listed here), and the
# admin checks inside views, which no decorator shows.
ADMIN_ONLY = {
    "organization_settings",
    "member_invite",
    "member_change_role",
    "member_remove",
    "invitation_revoke",
    "invitation_resend",
    "candidates:fields",
    "candidates:field_add",
    "candidates:field_edit",
    "candidates:field_archive",
    "pipelines:pool_delete",
    "campaigns:email_settings",
    "campaigns:sending_domain_edit",
    "campaigns:sending_domain_verify",
    "campaigns:topic_list",
    "campaigns:topic_edit",
    "campaigns:topic_archive",
    "campaigns:role_family_list",
    "campaigns:role_family_edit",
    "campaigns:role_family_archive",
    "campaigns:suppression_list",
    "campaigns:suppression_lift",
    "campaigns:suppressions_export",
    # Inside the view: the organisation's default stages (pipelines/views.py, _stage_scope).
    "pipelines:stage_list",
    "pipelines:stage_add",
    "pipelines:stage_edit",
    "pipelines:stage_reorder",
    "pipelines:stage_archive",
}
# Besides, admin checks inside views that depend on what is sent rather than on the URL: a
# bulk delete and resuming one (_admin_only_requests).

HTMX = {"HX-Request": "true"}


# --- the database: a checksum of every table ----------------------------------------------------


TABLE_CHECKSUM = (
    "(SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '')"
    " FROM {} AS t)"
)


def _checksums() -> dict[str, str]:
    """Each table's row count and md5 of all its rows as text (sorted), in one statement."""
    tables = sorted(connection.introspection.table_names())
    # Table names come from the database itself, quoted.
    columns = ", ".join(TABLE_CHECKSUM.format(connection.ops.quote_name(t)) for t in tables)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns}")
        return dict(zip(tables, cursor.fetchone(), strict=True))


def _changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(
        table for table in before.keys() | after.keys() if before.get(table) != after.get(table)
    )


# --- what is sent where -------------------------------------------------------------------------


def required_role(callback) -> str | None:
    """The highest role the view's decorators require (None for none)."""
    roles = []
    while callback is not None:
        if getattr(callback, "required_role", None):
            roles.append(Role(callback.required_role))
        callback = getattr(callback, "__wrapped__", None)
    return Role.ADMIN if Role.ADMIN in roles else (roles[0] if roles else None)


@dataclass
class Visit:
    target: Target
    url: str
    body: list[tuple[str, str]] = field(default_factory=list)

    @property
    def data(self) -> dict[str, list[str]]:
        data: dict[str, list[str]] = {}
        for name, value in self.body:
            data.setdefault(name, []).append(value)
        return data


def _route_name(path: str) -> str | None:
    try:
        return resolve(path).view_name
    except Resolver404:
        return None


def _plan(org, admin_user) -> list[Visit]:
    """Every target with objects of `org` in its URL and the body its forms would send (read
    from every page as the admin)."""
    _seed(org, admin_user)
    admin = Client()
    admin.force_login(admin_user)
    visits = [Visit(target, _url(target, org)) for target in _targets()]
    by_path: dict[str, list] = {}
    by_route: dict[str, list] = {}
    names_by_route: dict[str, set[str]] = {}
    for visit in visits:
        response = admin.get(visit.url)
        if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
            continue
        for form in _forms(response.content):
            path = urlsplit(form["action"] or visit.url).path
            name = _route_name(path)
            if form["method"] == "post" and name:
                # Every field filled in (an empty one as if it were required: a plausible
                # value, the first choice), so that a view that lets the POST through changes
                # something the checksums see.
                controls = [
                    {**control, "required": True, "value": control["value"].strip()}
                    for control in form["controls"]
                ]
                body = _filled(controls)
                by_path.setdefault(path, body)
                by_route.setdefault(name, body)
        page = _Page()
        page.feed(response.content.decode(errors="replace"))
        for (method, path), names in page.sent.items():
            name = _route_name(path or urlsplit(visit.url).path)
            if method == "post" and name:
                names_by_route.setdefault(name, set()).update(names - SKIP_NAMES)
    for visit in visits:
        name = visit.target.name
        body = by_path.get(urlsplit(visit.url).path) or by_route.get(name)
        if body is None:  # no form posts here: the names its pages and its view read
            reads = _view_reads(visit.target.callback)
            names = names_by_route.get(name, set()) | reads.post_direct | reads.post_forms
            body = [(each, "1") for each in sorted(names - SKIP_NAMES)]
        visit.body = body
    return visits


def _send(client: Client, method: str, url: str, data=None, headers=None, *, rollback=False):
    """The status (or the view's exception). In a savepoint: an exception cannot spoil the next
    request, and `rollback` undoes what the request did."""
    try:
        with transaction.atomic():
            response = getattr(client, method)(url, data or {}, headers=headers or {})
            transaction.set_rollback(rollback)
    except Exception as error:  # the view's own exception, re-raised by the test client
        return f"{type(error).__name__}: {str(error)[:120]}"
    if response.status_code in (301, 302, 303, 307, 308):
        return f"{response.status_code} to {response['Location'][:80]}"
    return response.status_code


class Tables:
    """The checksums of every table, taken again after each request: which tables it changed."""

    def __init__(self):
        self.start = self.last = _checksums()

    def changed(self) -> list[str]:
        before, self.last = self.last, _checksums()
        return _changed(before, self.last)


# --- the sweeps ---------------------------------------------------------------------------------


@dataclass
class ViewerSweep:
    urls: int = 0
    reached: set[str] = field(default_factory=set)
    answered: list[str] = field(default_factory=list)  # a POST not refused (nor allowed a 200)
    stale: list[str] = field(default_factory=list)  # allowed routes that now refuse the POST
    changes: list[str] = field(default_factory=list)  # a request that changed a table
    whole: list[str] = field(default_factory=list)  # tables changed across the sweep


def viewer_sweep(visits: list[Visit], viewer_user) -> ViewerSweep:
    viewer = Client()
    viewer.force_login(viewer_user)
    result = ViewerSweep(urls=len(visits))
    refused: dict[str, bool] = {}
    tables = Tables()
    for visit in visits:
        name, label = visit.target.name, f"{visit.target.label} {visit.url}"
        outcome = _send(viewer, "get", visit.url)
        if changed := tables.changed():
            result.changes.append(f"GET {label} -> {outcome}, changed {changed}")
        # Plainly, then (where the view ran: a refusal comes before its htmx branches) as
        # htmx sends it.
        for headers in (None, HTMX):
            how = "POST (htmx)" if headers else "POST"
            outcome = _send(viewer, "post", visit.url, visit.data, headers)
            if changed := tables.changed():
                result.changes.append(f"{how} {label} -> {outcome}, changed {changed}")
            if isinstance(outcome, int) and _route_name(urlsplit(visit.url).path) == name:
                result.reached.add(name)
            was_refused = outcome in (403, 405)
            refused[name] = refused.get(name, True) and was_refused
            if not was_refused and not (name in VIEWER_MAY_POST and outcome == 200):
                result.answered.append(f"{how} {label} -> {outcome}")
            if was_refused:
                break
    result.stale = sorted(name for name in VIEWER_MAY_POST if refused.get(name))
    result.whole = _changed(tables.start, _checksums())
    return result


def _admin_only_requests(org, visits: list[Visit]) -> list[tuple[str, str, dict]]:
    """(label, url, body) of each admin-only request: ADMIN_ONLY's routes and those decorated
    `admin_required` with their visits' bodies; a bulk delete (candidates/views/search.py,
    bulk.ADMIN_ONLY_ACTIONS) and resuming one (candidates/views/jobs.py, _may_start)."""
    from candidates.models import Candidate, Job

    requests = [
        (visit.target.label, visit.url, visit.data)
        for visit in visits
        if visit.target.name in ADMIN_ONLY or required_role(visit.target.callback) == Role.ADMIN
    ]
    with scopes_disabled():
        candidate = Candidate.objects.filter(organization=org).first()
        job = Job.objects.create(
            organization=org,
            kind=Job.Kind.BULK,
            status=Job.Status.FAILED,
            params={"action": "delete", "ids": [candidate.pk]},
        )
    slug = {"org_slug": org.slug}
    requests += [
        (
            "candidates:bulk (action=delete)",
            reverse("candidates:bulk", kwargs=slug),
            {"action": ["delete"], "ids": [str(candidate.pk)], "confirm": ["1"]},
        ),
        (
            "candidates:job_resume (a bulk delete)",
            reverse("candidates:job_resume", kwargs={**slug, "job_id": job.pk}),
            {},
        ),
    ]
    return requests


def recruiter_sweep(org, visits: list[Visit], recruiter_user, admin_user) -> list[str]:
    """What went wrong: a recruiter not refused, a table changed, or the admin refused too."""
    recruiter, admin = Client(), Client()
    recruiter.force_login(recruiter_user)
    admin.force_login(admin_user)
    failures = []
    requests = _admin_only_requests(org, visits)
    tables = Tables()
    for label, url, data in requests:
        outcome = _send(recruiter, "post", url, data)
        if outcome == 405:  # a page that takes no POST: its GET must be refused
            outcome = _send(recruiter, "get", url)
        changed = tables.changed()
        if outcome != 403 or changed:
            failures.append(f"recruiter: {label} {url} -> {outcome}, changed {changed}")
        if _send(admin, "post", url, data, rollback=True) == 403:
            failures.append(f"admin: {label} {url} -> 403 (so the recruiter's proves nothing)")
    return failures


# One sweep per test session, shared by the tests below (whichever runs first runs it).
_RESULTS: dict[str, object] = {}


@pytest.fixture
def sweeps(org, admin_user, recruiter_user, viewer_user) -> dict[str, object]:
    if not _RESULTS:
        visits = _plan(org, admin_user)
        _RESULTS["viewer"] = viewer_sweep(visits, viewer_user)
        _RESULTS["recruiter"] = recruiter_sweep(org, visits, recruiter_user, admin_user)
    return _RESULTS


def test_role_sweep_viewer_post_is_refused_everywhere(sweeps):
    result = sweeps["viewer"]
    assert result.answered == [], "A viewer's POST must get 403 or 405:\n" + "\n".join(
        result.answered
    )
    assert result.stale == [], "These refuse a viewer's POST now: take them off VIEWER_MAY_POST"


def test_role_sweep_viewer_changes_no_table(sweeps):
    result = sweeps["viewer"]
    assert result.changes == [], "\n".join(result.changes)
    assert result.whole == []


def test_role_sweep_recruiter_is_refused_admin_work(sweeps):
    failures = sweeps["recruiter"]
    assert failures == [], "\n".join(failures)


def test_role_sweep_reaches_every_url(sweeps):
    routes = {route.name for route in tenant_routes()}
    result = sweeps["viewer"]
    assert result.reached == routes
    assert result.urls >= len(routes) >= 100
    # The lists name routes that exist, and every admin-decorated view is listed.
    assert set(VIEWER_MAY_POST) <= routes
    assert routes >= ADMIN_ONLY
    decorated = {
        target.name for target in _targets() if required_role(target.callback) == Role.ADMIN
    }
    assert decorated - ADMIN_ONLY == set(), "Add these admin views to ADMIN_ONLY"
