"""Accessibility: axe-core checks Rapport's pages in a real browser (Debian's Chromium through
Playwright), each page in a realistic state with the demo organisation's data, at a laptop's
width (1366 px) and a phone's (390 px).

A test fails on any violation of impact "serious" or "critical" under WCAG 2.0, 2.1 and 2.2
A/AA (axe's tags in WCAG_TAGS) and prints, for each, the rule, what it asks for and the
selectors of the offending elements. axe-core is an npm devDependency (package.json), loaded
from node_modules into each page; it is never copied into the repository.

The demo data is seeded once for the module (it takes seconds) and removed afterwards, as a
transactional test's flush would; the pages are served by a live server of the module's own,
because pytest-django's `live_server` flushes the database after every test. Run with
`pytest -m browser`. There is no skipping: without Chromium each test fails and says how to
install it.
"""

import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connections
from django.db.models import Count
from django.test import override_settings
from django.urls import reverse
from django_scopes import scope, scopes_disabled
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from pytest_django.live_server_helper import LiveServer

from tests.test_browser import CHROMIUM_ARGS, log_in

# The marker makes pytest-django create the test database; the module's own fixture commits
# the demo data outside each test's transaction, where the live server's thread can read it.
pytestmark = [pytest.mark.browser, pytest.mark.django_db]

AXE_SCRIPT = Path(django_settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
BLOCKING_IMPACTS = {"serious", "critical"}
WIDTHS = {"1366px": 1366, "390px": 390}
HEIGHT = 900
SHOWN = re.compile(r"(^|\s)show(\s|$)")


@dataclass
class DemoSite:
    """The live server's address and the ids of the demo's objects that the pages show."""

    url: str
    slug: str
    logins: dict[str, str]  # who → email
    ids: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def org(self, name: str, *args) -> str:
        return reverse(name, args=[self.slug, *args])


@dataclass(frozen=True)
class Visit:
    """One page in one state: who looks at it, its address, what shows that it is in that
    state (a selector that must be visible), and what to do before checking (fill a form)."""

    who: str  # "anonymous", "recruiter", "admin" or "viewer"
    path: Callable[[DemoSite], str]
    shows: str
    act: Callable[[Page], None] | None = None
    widths: tuple[str, ...] = tuple(WIDTHS)  # only where the state exists at that width


def _submit_invalid_candidate(page: Page) -> None:
    """Add a candidate with no name and a mistyped email: the form comes back with errors."""
    page.get_by_label("Email").first.fill("not-an-email")
    page.get_by_role("button", name="Add candidate").click()
    page.wait_for_load_state("networkidle")


def _shown(page: Page, selector: str) -> None:
    """Wait for Bootstrap to finish showing a collapse, offcanvas or dropdown: `show` is set
    when its transition ends (colours mid-fade would be checked otherwise)."""
    element = page.locator(selector)
    expect(element).to_have_class(SHOWN)
    expect(element).not_to_have_class(re.compile(r"\b(collapsing|showing)\b"))


def _open_navigation(page: Page) -> None:
    """A phone folds the menu behind its toggle: open it."""
    toggler = page.locator(".navbar-toggler")
    if toggler.is_visible():
        toggler.click()
        _shown(page, "#main-nav")


def _open_organisation_switcher(page: Page) -> None:
    _open_navigation(page)
    page.locator("#org-switcher").click()
    _shown(page, "[aria-labelledby=org-switcher]")


def _open_account_menu(page: Page) -> None:
    _open_navigation(page)
    page.locator("#user-menu").click()
    _shown(page, "[aria-labelledby=user-menu]")


def _open_candidate_filters(page: Page) -> None:
    """A phone keeps the filters in a panel that slides in."""
    page.get_by_role("button", name="Filters").click()
    _shown(page, "#candidate-filter-panel")


def _select_page_of_candidates(page: Page) -> None:
    page.locator("#select-page").check()


def _save_email_with_unknown_field(page: Page) -> None:
    """Save a subject with a merge field that does not exist: the editor says so."""
    page.locator("#email-form [name=subject]").fill("Hello {{ favourite_colour }}")
    page.get_by_role("button", name="Save email").click()
    page.wait_for_load_state("networkidle")


def _unsubscribe(page: Page) -> None:
    """Press Unsubscribe (the phone's visit finds it done at the laptop's: the same page)."""
    button = page.get_by_role("button", name="Unsubscribe")
    if button.count():
        button.click()
        page.wait_for_load_state("networkidle")


PAGES: dict[str, Visit] = {
    "login": Visit("anonymous", lambda s: reverse("account_login"), "input[name=login]"),
    "signup": Visit("anonymous", lambda s: reverse("account_signup"), "input[name=email]"),
    "dashboard": Visit("recruiter", lambda s: s.org("dashboard"), "main h1"),
    "menu-organisations": Visit(
        "recruiter",
        lambda s: s.org("dashboard"),
        "[aria-labelledby=org-switcher] .dropdown-item.active",
        act=_open_organisation_switcher,
    ),
    "menu-account": Visit(
        "recruiter",
        lambda s: s.org("dashboard"),
        "[aria-labelledby=user-menu] .dropdown-item",
        act=_open_account_menu,
    ),
    "follow-ups": Visit("recruiter", lambda s: s.org("pipelines:follow_ups"), "main h1"),
    "candidate-list": Visit(
        "recruiter", lambda s: s.org("candidates:list"), ".candidate-table tbody tr"
    ),
    "candidate-list-filtered": Visit(
        "recruiter",
        lambda s: s.org("candidates:list") + "?q=python&status=active&has_resume=",
        ".candidate-table tbody tr mark",
    ),
    "candidate-list-filters-open": Visit(
        "recruiter",
        lambda s: s.org("candidates:list") + "?status=active",
        "#candidate-filter-panel select",
        act=_open_candidate_filters,
        widths=("390px",),  # from 992px the filters are a column beside the results
    ),
    "candidate-list-selected": Visit(
        "recruiter",
        lambda s: s.org("candidates:list"),
        ".candidate-table tbody input:checked",
        act=_select_page_of_candidates,
    ),
    "candidate-profile": Visit(
        "recruiter",
        lambda s: s.org("candidates:detail", s.ids["candidate"]),
        "#activity .note-body",
    ),
    "candidate-form-errors": Visit(
        "recruiter",
        lambda s: s.org("candidates:new"),
        ".invalid-feedback",
        act=_submit_invalid_candidate,
    ),
    "candidate-import": Visit(
        "recruiter", lambda s: s.org("candidates:import"), "input[type=file]"
    ),
    "pool-list": Visit("recruiter", lambda s: s.org("pipelines:pool_list"), "main h1"),
    "pool-board": Visit(
        "recruiter", lambda s: s.org("pipelines:pool_board", s.ids["pool"]), ".board-card"
    ),
    "campaign-list": Visit("recruiter", lambda s: s.org("campaigns:list"), "main table"),
    "campaign-detail-broadcast": Visit(
        "recruiter", lambda s: s.org("campaigns:detail", s.ids["broadcast"]), "main h1"
    ),
    "campaign-detail-draft": Visit(
        "recruiter", lambda s: s.org("campaigns:detail", s.ids["draft"]), "main h1"
    ),
    "campaign-detail-sequence": Visit(
        "recruiter", lambda s: s.org("campaigns:detail", s.ids["sequence"]), "main h1"
    ),
    "campaign-emails": Visit(
        "recruiter", lambda s: s.org("campaigns:messages", s.ids["broadcast"]), "main table"
    ),
    "campaign-sent-email": Visit(
        "recruiter",
        lambda s: s.org("campaigns:message_detail", s.ids["broadcast"], s.ids["message"]),
        "main h1",
    ),
    # The email itself, as its candidate reads it (the pages above show it in a sandboxed
    # frame, which axe cannot enter).
    "campaign-sent-email-html": Visit(
        "recruiter",
        lambda s: s.org("campaigns:message_html", s.ids["broadcast"], s.ids["message"]),
        "[role=article]",
    ),
    "campaign-email-editor": Visit(
        "recruiter", lambda s: s.org("campaigns:email_edit", s.ids["draft"]), "textarea"
    ),
    "campaign-email-editor-errors": Visit(
        "recruiter",
        lambda s: s.org("campaigns:email_edit", s.ids["draft"]),
        "#email-form .invalid-feedback",
        act=_save_email_with_unknown_field,
    ),
    "campaign-step-editor": Visit(
        "recruiter",
        lambda s: s.org("campaigns:step_edit", s.ids["sequence"], s.ids["step"]),
        "textarea",
    ),
    "settings-organisation": Visit("admin", lambda s: s.org("organization_settings"), "main form"),
    "settings-members": Visit("admin", lambda s: s.org("members"), "main h2"),
    "settings-custom-fields": Visit("admin", lambda s: s.org("candidates:fields"), "main h1"),
    "settings-email": Visit("admin", lambda s: s.org("campaigns:email_settings"), "main form"),
    "settings-topics": Visit("admin", lambda s: s.org("campaigns:topic_list"), "main h1"),
    "settings-suppressions": Visit(
        "admin", lambda s: s.org("campaigns:suppression_list"), "main h1"
    ),
    "account-settings": Visit("recruiter", lambda s: reverse("account_email"), "main h1"),
    "forbidden-403": Visit("viewer", lambda s: s.org("candidates:new"), "main h1"),
    "not-found-404": Visit(
        "recruiter", lambda s: s.org("candidates:detail", 2_000_000_000), "main h1"
    ),
    "public-unsubscribe": Visit(
        "anonymous",
        lambda s: reverse("campaigns_public:unsubscribe", args=[s.tokens["candidate"]]),
        "form button[type=submit]",
    ),
    "public-unsubscribed": Visit(
        "anonymous",
        lambda s: reverse("campaigns_public:unsubscribe", args=[s.tokens["other_candidate"]]),
        "form[action$='/resubscribe/'] button",
        act=_unsubscribe,
    ),
    "public-preferences": Visit(
        "anonymous",
        lambda s: reverse("campaigns_public:preferences", args=[s.tokens["candidate"]]),
        "form button[type=submit]",
    ),
    "public-opt-in": Visit(
        "anonymous",
        lambda s: reverse("campaigns_public:consent_confirm", args=[s.tokens["consent"]]),
        "form button[type=submit]",
    ),
}


def _demo_objects(site: DemoSite) -> None:
    """Find the demo's objects that the pages show, and sign the candidate's links."""
    from campaigns.models import Campaign, Message
    from campaigns.services.consent import consent_request_double_opt_in, consent_token
    from campaigns.services.tokens import candidate_token
    from candidates.models import Candidate
    from crm.models import Organization
    from pipelines.models import Pool

    with scopes_disabled():
        organization = Organization.objects.get(slug=site.slug)
    with scope(organization=organization):
        # The profile with the most to show: a resume, notes, pools and emails on its timeline.
        candidate = (
            Candidate.objects.filter(attachments__kind="resume", pool_memberships__isnull=False)
            .annotate(notes_count=Count("notes", distinct=True))
            .filter(notes_count__gt=0)
            .order_by("-notes_count", "pk")
            .first()
        )
        pool = (
            Pool.objects.annotate(cards=Count("memberships"))
            .filter(kind=Pool.Kind.STATIC)
            .order_by("-cards", "pk")
            .first()
        )
        sent = Campaign.objects.filter(kind=Campaign.Kind.BROADCAST, status=Campaign.Status.DONE)
        draft = Campaign.objects.filter(kind=Campaign.Kind.BROADCAST, status=Campaign.Status.DRAFT)
        sequence = Campaign.objects.get(kind=Campaign.Kind.SEQUENCE)
        # A candidate's own links come in an email: sign them for one that the broadcast sent,
        # one that the candidate replied to (its page shows the reply).
        message = (
            Message.objects.filter(campaign=sent.get(), replies__isnull=False).order_by("pk")
        ).first()
        other_message = (
            Message.objects.filter(campaign=sent.get()).exclude(pk=message.pk).order_by("pk")
        ).first()
        recipient = message.candidate
        consent = consent_request_double_opt_in(
            candidate=recipient, source="Career fair", wording="Yes, keep me posted."
        )
        site.ids.update(
            candidate=candidate.pk,
            pool=pool.pk,
            broadcast=sent.get().pk,
            draft=draft.get().pk,
            sequence=sequence.pk,
            step=sequence.steps.order_by("position").first().pk,
            message=message.pk,
        )
        site.tokens.update(
            candidate=candidate_token(
                organization_id=organization.pk,
                candidate_id=recipient.pk,
                message_id=message.pk,
            ),
            # Unsubscribes on its page (public-unsubscribed): another candidate, so that the
            # first one's pages stay as they were.
            other_candidate=candidate_token(
                organization_id=organization.pk,
                candidate_id=other_message.candidate_id,
                message_id=other_message.pk,
            ),
            consent=consent_token(consent=consent),
        )


@pytest.fixture(scope="module")
def demo_site(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[DemoSite]:
    from crm.management.commands.seed_demo import DEMO_SLUG, DEMO_USERS

    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        django_db_blocker.unblock(),
        override_settings(
            MEDIA_ROOT=tmp_path_factory.mktemp("media"),
            # The fast hasher of conftest.py's _fast_passwords, which each test switches to:
            # the demo's passwords are hashed with it so that the logins can check them.
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        ),
    ):
        # Playwright's sync API runs an event loop in this thread, and Django refuses ORM calls
        # from a thread with a running loop (the live server's requests are in another thread).
        monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        server = None
        try:
            call_command("seed_demo", stdout=StringIO())
            site = DemoSite(
                url="",
                slug=DEMO_SLUG,
                logins={role.value: email for email, _name, _title, role in DEMO_USERS},
            )
            _demo_objects(site)
            server = LiveServer("localhost")
            server._live_server_modified_settings.enable()
            site.url = server.url
            yield site
        finally:
            if server is not None:
                server._live_server_modified_settings.disable()
                server.stop()
            connections.close_all()
            # What a transactional test leaves behind: nothing.
            call_command("flush", interactive=False, verbosity=0)


@dataclass
class Browsers:
    """One Chromium for the module, and one signed-in tab per person, made when first needed.
    `browser` is None when Chromium is missing: each test then fails (a fixture would error)."""

    browser: Browser | None
    site: DemoSite
    pages: dict[str, Page] = field(default_factory=dict)
    contexts: list[BrowserContext] = field(default_factory=list)

    def page_for(self, who: str) -> Page:
        if self.browser is None:
            pytest.fail(
                "Browser tests need Debian's Chromium on PATH as `chromium` "
                "(apt-get install chromium); it was not found."
            )
        if who not in self.pages:
            # axe is added to each page as a <script>; the Content Security Policy (no inline
            # scripts) would block it, so this context ignores the policy. tests/test_browser.py
            # and its kin check the policy itself. Reduced motion turns Bootstrap's transitions
            # off, so axe never measures a button halfway between two colours.
            context = self.browser.new_context(bypass_csp=True, reduced_motion="reduce")
            self.contexts.append(context)
            page = context.new_page()
            if who != "anonymous":
                from crm.management.commands.seed_demo import DEMO_PASSWORD

                log_in(page, self.site, self.site.logins[who], DEMO_PASSWORD)
                assert "/accounts/login/" not in page.url, f"{who} could not sign in"
            self.pages[who] = page
        return self.pages[who]


@pytest.fixture(scope="module")
def browsers(demo_site) -> Iterator[Browsers]:
    path = shutil.which("chromium")
    if path is None:
        yield Browsers(browser=None, site=demo_site)
        return
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield Browsers(browser=browser, site=demo_site)
        finally:
            browser.close()
            # Playwright's loop makes this thread "async" to Django: the ORM calls made while it
            # ran (each test's transaction) had connections of their own (asgiref's Local
            # follows the context), which nothing else would close; left open, they block
            # dropping the test database.
            connections.close_all()


def axe_violations(page: Page) -> list[dict]:
    """axe-core's serious and critical violations of WCAG 2.x A/AA on the page as it is now."""
    page.add_script_tag(path=AXE_SCRIPT)
    results = page.evaluate(
        """async (tags) => await axe.run(document, {
            runOnly: {type: "tag", values: tags},
            resultTypes: ["violations"],
        })""",
        WCAG_TAGS,
    )
    return [v for v in results["violations"] if v["impact"] in BLOCKING_IMPACTS]


def describe(violations: list[dict]) -> str:
    """Each violation: its rule, impact and help text, then each offending element's selector
    and axe's summary of what to fix there."""
    lines = []
    for violation in violations:
        lines.append(
            f"{violation['id']} ({violation['impact']}): {violation['help']}"
            f"\n  {violation['helpUrl']}"
        )
        for node in violation["nodes"]:
            selector = " >> ".join(
                " ".join(part) if isinstance(part, list) else part for part in node["target"]
            )
            lines.append(f"  - {selector}")
            summary = (node.get("failureSummary") or "").replace("\n", "\n      ")
            if summary:
                lines.append(f"      {summary}")
    return "\n".join(lines)


@pytest.mark.parametrize(
    ("name", "width"),
    [
        pytest.param(name, WIDTHS[width], id=f"{name}-{width}")
        for name, visit in PAGES.items()
        for width in visit.widths
    ],
)
def test_page_has_no_serious_accessibility_violations(browsers, demo_site, name, width):
    visit = PAGES[name]
    page = browsers.page_for(visit.who)
    page.set_viewport_size({"width": width, "height": HEIGHT})
    page.goto(demo_site.url + visit.path(demo_site))
    page.wait_for_load_state("networkidle")
    if visit.act is not None:
        visit.act(page)
    expect(page.locator(visit.shows).first).to_be_visible()

    violations = axe_violations(page)

    assert not violations, (
        f"{len(violations)} serious or critical accessibility violations on {name} at "
        f"{width}px ({page.url}):\n{describe(violations)}"
    )


def test_axe_check_reports_what_it_should(browsers):
    """The check itself: a page with a nameless button, an unlabelled field and faint text
    fails it, and the report names each rule and element (so a clean page is clean, not
    unchecked)."""
    page = browsers.page_for("anonymous")
    page.set_viewport_size({"width": 1366, "height": HEIGHT})
    page.set_content(
        '<html lang="en"><head><title>Bad</title></head><body><main>'
        '<button id="nameless"><svg width="10" height="10"></svg></button>'
        '<input id="unlabelled" type="text">'
        '<p id="faint" style="color:#ccc;background:#fff">Faint text</p>'
        "</main></body></html>"
    )

    violations = axe_violations(page)

    assert sorted(v["id"] for v in violations) == ["button-name", "color-contrast", "label"]
    report = describe(violations)
    assert "#nameless" in report and "#unlabelled" in report and "#faint" in report
