"""The profile in a real browser: logging a call through the note form (an htmx request) puts
it on the timeline and updates the header's "Last contacted" in place, without a reload."""

import pytest
from django_scopes import scopes_disabled
from playwright.sync_api import expect

from candidates.models import Note
from candidates.services.activities import candidate_last_contacted
from candidates.tests.factories import CandidateFactory
from tests.test_browser import ARTIFACTS, browser_recruiter, chromium_page, log_in


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_logging_a_call_updates_the_timeline_and_last_contacted_in_place(live_server, monkeypatch):
    organization, user = browser_recruiter(
        monkeypatch, name="Profile Org", slug="profile-org", email="call.recruiter@example.com"
    )
    candidate = CandidateFactory(
        organization=organization, first_name="Marta", last_name="Ruiz", last_contacted_at=None
    )
    problems: list[str] = []

    with chromium_page(problems) as page:
        log_in(page, live_server, user.email)
        page.goto(f"{live_server.url}/o/{organization.slug}/candidates/{candidate.pk}/")
        expect(page.locator("#last-contacted")).to_have_text("Never")
        # Anything the swap replaces is gone afterwards; this marker survives only if the page
        # was not reloaded.
        page.evaluate("window.notReloaded = true")

        page.locator("#note-form textarea").fill("Called her about the data team. Keen.")
        page.get_by_label("This note records").select_option("call")
        page.locator("#note-form button[type=submit]").click()

        entry = page.locator("#activity .timeline-item").first
        expect(entry).to_contain_text("Call")
        expect(entry).to_contain_text("Called her about the data team. Keen.")
        expect(page.locator("#last-contacted")).to_contain_text("now")
        assert page.evaluate("window.notReloaded") is True
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "profile-call-logged.png"), full_page=True)

    assert problems == []
    with scopes_disabled():
        note = Note.objects.get(candidate=candidate)
        contacted = candidate_last_contacted(candidate)
    assert note.contact == "call" and contacted == note.created_at


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_empty_note_gets_its_error_and_the_focus(live_server, monkeypatch):
    """The form comes back from htmx with the error; focus goes to the field in error (not to
    <body>, where the swap left it), so a screen reader reads the field and its message."""
    organization, user = browser_recruiter(
        monkeypatch, name="Profile Org", slug="profile-org", email="note.recruiter@example.com"
    )
    candidate = CandidateFactory(organization=organization)
    problems: list[str] = []

    with chromium_page(problems) as page:
        log_in(page, live_server, user.email)
        page.goto(f"{live_server.url}/o/{organization.slug}/candidates/{candidate.pk}/")
        # Spaces pass the browser's own `required` check; the server refuses them.
        page.locator("#note-form textarea").fill("   ")
        page.locator("#note-form button[type=submit]").click()

        expect(page.locator("#note-form .invalid-feedback")).to_contain_text("required")
        expect(page.locator("#note-form textarea")).to_be_focused()
        assert page.locator("#note-form textarea").get_attribute("aria-describedby")

    assert problems == []
    with scopes_disabled():
        assert not Note.objects.filter(candidate=candidate).exists()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_new_profile_with_errors_comes_back_with_the_focus_on_the_first(live_server, monkeypatch):
    """A whole page re-rendered with field errors (no htmx): focus starts on the first field in
    error, not at the top of the page."""
    organization, user = browser_recruiter(
        monkeypatch, name="Profile Org", slug="profile-org", email="new.recruiter@example.com"
    )
    problems: list[str] = []

    with chromium_page(problems) as page:
        log_in(page, live_server, user.email)
        page.goto(f"{live_server.url}/o/{organization.slug}/candidates/new/")
        # Both pass the browser's own checks; the server refuses both.
        page.get_by_label("First name").fill("   ")
        page.get_by_label("LinkedIn").fill("https://example.com/not-linkedin")
        page.get_by_role("button", name="Add candidate").click()

        expect(page.get_by_text("on linkedin.com")).to_be_visible()
        expect(page.get_by_label("First name")).to_be_focused()

    assert problems == []
