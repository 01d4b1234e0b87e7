"""End to end in a real browser: Playwright drives Debian's Chromium against the live server.

Run with `pytest -m browser`. There is no skipping: without Chromium the test fails and says how
to install it. The live server runs in this process, so its emails land in `mailoutbox`.
"""

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connections
from playwright.sync_api import Page, expect, sync_playwright

PASSWORD = "a long and memorable passphrase"
FACTORY_PASSWORD = "correct horse battery"  # tests.factories.UserFactory's
ARTIFACTS = Path(django_settings.BASE_DIR) / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def chromium_page(console_problems: list[str]) -> Iterator[Page]:
    """A page in headless Debian Chromium; console errors and warnings go to console_problems.

    Called from the test body (not a fixture) so that a missing browser is a test failure.
    """
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "Browser tests need Debian's Chromium on PATH as `chromium` "
            "(apt-get install chromium); it was not found."
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.on(
            "console",
            lambda message: (
                message.type in {"error", "warning"} and console_problems.append(message.text)
            ),
        )
        page.on("pageerror", lambda error: console_problems.append(str(error)))
        try:
            yield page
        finally:
            browser.close()
            # Playwright's loop makes this thread "async" to Django: ORM calls inside the block
            # get connections of their own (asgiref's Local follows the context), which
            # nothing else would close; left open, they block dropping the test database.
            connections.close_all()


def browser_recruiter(monkeypatch, *, name: str, slug: str, email: str):
    """An organisation with one recruiter, for a browser test: (organization, user). Also lets
    the test touch the database while Playwright's sync API runs an event loop in this
    thread."""
    from crm.models import Role
    from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    organization = OrganizationFactory(name=name, slug=slug)
    user = UserFactory(email=email)
    MembershipFactory(organization=organization, user=user, role=Role.RECRUITER)
    return organization, user


def log_in(page: Page, live_server, email: str, password: str = FACTORY_PASSWORD) -> None:
    """Sign in through the login form: a factory-made user (tests.factories.UserFactory) unless
    told the password. `live_server`: anything with the site's `url`."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", password)
    page.locator("form button[type=submit]").first.click()
    page.wait_for_load_state("networkidle")


@pytest.mark.browser
def test_browser_signup_verify_and_create_organization(live_server, mailoutbox, monkeypatch):
    # Playwright's sync API runs an event loop in this thread, and Django refuses ORM calls
    # from a thread with a running loop (the fixtures' database teardown included).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    console_problems: list[str] = []
    with chromium_page(console_problems) as page:
        page.goto(f"{live_server.url}/accounts/signup/")
        page.get_by_label("Email").fill("ines.browser@example.com")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Password (again)").fill(PASSWORD)
        page.get_by_role("button", name="Sign up").click()

        expect(page.get_by_role("heading", name="Verify your email address")).to_be_visible()
        assert len(mailoutbox) == 1, "the live server's email did not reach the locmem outbox"
        assert mailoutbox[0].to == ["ines.browser@example.com"]
        link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", mailoutbox[0].body).group(0)

        page.goto(link)
        expect(page.get_by_role("heading", name="Confirm email address")).to_be_visible()
        page.get_by_role("button", name="Confirm").click()

        expect(page).to_have_url(f"{live_server.url}/organizations/new/")
        expect(page.get_by_role("heading", name="Create your organisation")).to_be_visible()
        page.get_by_label("Name", exact=True).fill("Browser Talent")
        page.get_by_label("URL name").fill("browser-talent")
        page.get_by_role("button", name="Create organisation").click()

        expect(page).to_have_url(f"{live_server.url}/o/browser-talent/")
        expect(page.get_by_role("heading", name="Browser Talent", exact=True)).to_be_visible()
        expect(page.get_by_text("Browser Talent is ready. Welcome!")).to_be_visible()
        # The empty dashboard: every home panel shows its empty state.
        expect(page.get_by_role("heading", name="No candidates yet")).to_be_visible()
        expect(page.get_by_role("heading", name="Nothing due today")).to_be_visible()
        expect(page.get_by_role("heading", name="No campaigns yet")).to_be_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / "signup-dashboard.png", full_page=True)
        assert console_problems == []  # e.g. no Content-Security-Policy violations
